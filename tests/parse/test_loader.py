"""The platform loader: typed plan, signatures and fixes; clear errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code
from ipsec_doctor.platforms.loader import available_platforms, load_platform, load_platform_file

PLAN = """\
platform: demo
netmiko_device_type: cisco_ios
read_timeout: 15
redaction: [x]
commands:
  - id: ipsec_sa
    command: show crypto ipsec sa peer {peer}
    wider: [show crypto ipsec sa]
    samples: 2
    reference: ipsec.sa
  - id: route
    command: show ip route {peer}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cisco_ios_plan_loads() -> None:
    platform = load_platform("cisco_ios")
    assert "cisco_ios" in available_platforms()
    assert platform.converter == "cisco_ios" and platform.textfsm_platform == "cisco_ios"
    assert platform.log_command == "show logging"
    ipsec = platform.command("ipsec_sa")
    assert ipsec.samples == 2 and ipsec.variables == ("peer",)
    assert ipsec.render({"peer": "10.2.2.1"}) == "show crypto ipsec sa peer 10.2.2.1"
    assert ipsec.render({}) is None
    assert ipsec.matches("show crypto ipsec sa peer 10.9.9.9") == {"peer": "10.9.9.9"}
    assert ("show crypto ipsec sa peer {peer}", ["show crypto ipsec sa"]) in (
        platform.wider_patterns()
    )
    assert {s.event for s in platform.signatures} >= {Event.ISAKMP_OFF, Event.PSK_MISSING}


def test_sidecars_and_extra_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "demo.yaml", PLAN)
    _write(
        tmp_path,
        "demo_signatures.yaml",
        "log_command: show log\nsignatures:\n"
        "  # No pre-shared key with 10.2.2.1!\n"
        "  - event: psk_missing\n    regex: 'No pre-shared key with (?P<peer>{IP})'\n",
    )
    _write(
        tmp_path,
        "demo_fixes.yaml",
        "fixes:\n  PSK_MISSING: crypto isakmp key KEY address {peer}\n"
        "  NO_ROUTE_TO_PEER: {text: 'ip route {peer} 255.255.255.255 NH', reference: ike.route}\n",
    )
    platform = load_platform_file(path)
    assert platform.extra == {"redaction": ["x"]}
    assert platform.log_command == "show log"
    signature = platform.signatures[0]
    match = signature.pattern.search("ISAKMP:(0): no PRE-SHARED key with 2001:db8::1!")
    assert match is not None and match["peer"] == "2001:db8::1"
    assert platform.fixes[Code.NO_ROUTE_TO_PEER].reference == "ike.route"
    assert "crypto isakmp key" in platform.fixes[Code.PSK_MISSING].text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("platform: demo\ncommands: [\n", "invalid YAML"),
        ("platform: other\ncommands: [{id: a, command: b}]\n", "does not match the file name"),
        ("platform: demo\ncommands: []\n", "non-empty list of commands"),
        ("platform: demo\ncommands: [{id: a, command: b, sampels: 2}]\n", "unknown key 'sampels'"),
        ("platform: demo\ncommands: [{id: a, command: b, samples: 0}]\n", "samples"),
        ("platform: demo\ncommands: [{id: a}]\n", "commands[0].command"),
        (
            "platform: demo\ncommands: [{id: a, command: b}, {id: a, command: c}]\n",
            "duplicate id 'a'",
        ),
        (
            "platform: demo\ncommands: [{id: a, command: b}]\n"
            "signatures: [{event: not_an_event, regex: x}]\n",
            "unknown event 'not_an_event'",
        ),
        (
            "platform: demo\ncommands: [{id: a, command: b}]\n"
            "signatures: [{event: psk_missing, regex: '(unclosed'}]\n",
            "invalid regular expression",
        ),
        (
            "platform: demo\ncommands: [{id: a, command: b}]\nfixes: {NOT_A_CODE: x}\n",
            "unknown finding code",
        ),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "demo.yaml", text)
    with pytest.raises(ConfigError) as raised:
        load_platform_file(path)
    assert str(raised.value).startswith("demo.yaml")
    assert message in str(raised.value)


def test_unknown_platform_lists_known(tmp_path: Path) -> None:
    _write(tmp_path, "demo.yaml", PLAN)
    with pytest.raises(ConfigError, match="known: demo"):
        load_platform("nope", tmp_path)


def test_unknown_plan_id() -> None:
    with pytest.raises(ConfigError, match="no command with id"):
        load_platform("cisco_ios").command("nope")


def test_only_plan_files_are_platforms(tmp_path: Path) -> None:
    _write(tmp_path, "demo.yaml", PLAN)
    _write(tmp_path, "demo_intrusive.yaml", "platform: demo\ndebug: {}\n")
    _write(tmp_path, "fixes.yaml", "fixes: {}\n")
    _write(tmp_path, "broken.yaml", "platform: [\n")
    assert available_platforms(tmp_path) == ["demo"]
    assert "fixes" not in available_platforms()
