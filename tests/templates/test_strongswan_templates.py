"""strongSwan TextFSM templates: ntc-style ``.raw`` + ``.yml`` cases and checks on real captures.

Layout: ``tests/templates/strongswan/<template name>/<case>.raw`` + ``<case>.yml``
(``parsed_sample:`` rows with lower-case keys) for ``textfsm_templates/<template name>.textfsm``.
The cases are real outputs of the strongSwan lab (shared/lab/strongswan) unless the ``.yml``
says ``SYNTHETIC`` in its source comment.  The index lines live in
``textfsm_templates/index.strongswan.part`` until they are merged into the shared index; the
lookup tests here build a private index from that part.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import textfsm
import yaml
from textfsm import clitable

from ipsec_doctor.model.capture import command_filename

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "textfsm_templates"
CASES_DIR = Path(__file__).resolve().parent / "strongswan"
INDEX_PART = TEMPLATES / "index.strongswan.part"
PLAN = REPO / "ipsec_doctor" / "platforms" / "strongswan.yaml"
CAPTURES = REPO / "tests" / "captures" / "strongswan"
PLATFORM = "strongswan"

# The strongSwan templates: every file of these names belongs to this suite.
_OURS = re.compile(r"^linux_(?:swanctl_\w+|ip_xfrm_\w+|ip_route_get|charon_log)\.textfsm$")
TEMPLATE_FILES = sorted(p for p in TEMPLATES.glob("*.textfsm") if _OURS.match(p.name))

# Plan command -> template that must parse it (commands without a template are parsed by the
# converter from the raw text: date -R, pgrep, systemctl, swanctl --version, ip -br addr,
# ip route show table 220, nft list ruleset, cat swanctl.conf).
EXPECTED_TEMPLATE = {
    "swanctl --list-sas": "linux_swanctl_list_sas.textfsm",
    "swanctl --list-conns": "linux_swanctl_list_conns.textfsm",
    "swanctl --list-pols": "linux_swanctl_list_pols.textfsm",
    "swanctl --stats": "linux_swanctl_stats.textfsm",
    "ip -s xfrm state list nokeys": "linux_ip_xfrm_state.textfsm",
    "ip xfrm policy": "linux_ip_xfrm_policy.textfsm",
    "ip route get {peer}": "linux_ip_route_get.textfsm",
    "tail -n 1000 /var/log/charon.log": "linux_charon_log.textfsm",
}


def parse(template: Path, text: str) -> list[dict[str, Any]]:
    with template.open(encoding="utf-8") as handle:
        fsm = textfsm.TextFSM(handle)
        records = fsm.ParseText(text)
    header = [str(name).lower() for name in fsm.header]
    return [dict(zip(header, record, strict=True)) for record in records]


def _cases() -> list[tuple[Path, Path]]:
    return [
        (TEMPLATES / f"{raw.parent.name}.textfsm", raw) for raw in sorted(CASES_DIR.glob("*/*.raw"))
    ]


CASES = _cases()


@pytest.mark.parametrize(
    ("template", "raw"), CASES, ids=[f"{raw.parent.name}/{raw.stem}" for _, raw in CASES]
)
def test_raw_parses_to_parsed_sample(template: Path, raw: Path) -> None:
    expected = yaml.safe_load(raw.with_suffix(".yml").read_text(encoding="utf-8"))
    assert parse(template, raw.read_text(encoding="utf-8")) == expected["parsed_sample"]


def test_every_template_has_at_least_two_cases() -> None:
    assert TEMPLATE_FILES, "no strongSwan templates found"
    for template in TEMPLATE_FILES:
        raws = list((CASES_DIR / template.stem).glob("*.raw"))
        assert len(raws) >= 2, f"{template.name}: needs at least 2 cases, has {len(raws)}"


def test_every_case_folder_has_a_template() -> None:
    for folder in CASES_DIR.iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            assert (TEMPLATES / f"{folder.name}.textfsm").is_file(), folder


def test_every_raw_has_a_yml_and_back() -> None:
    for raw in CASES_DIR.glob("*/*.raw"):
        assert raw.with_suffix(".yml").is_file(), raw
    for yml in CASES_DIR.glob("*/*.yml"):
        assert yml.with_suffix(".raw").is_file(), yml


def test_parsed_samples_use_lower_case_keys_and_strings() -> None:
    for yml in CASES_DIR.glob("*/*.yml"):
        rows = yaml.safe_load(yml.read_text(encoding="utf-8"))["parsed_sample"]
        for row in rows:
            for key, value in row.items():
                assert key == key.lower(), f"{yml}: key {key!r}"
                assert isinstance(value, str | list), f"{yml}: {key} is {type(value)}"


def _index_part_rows() -> list[list[str]]:
    rows = []
    for line in INDEX_PART.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append([part.strip() for part in line.split(",", 3)])
    return rows


def test_index_part_lists_every_template_once_for_the_platform() -> None:
    rows = _index_part_rows()
    names = [row[0] for row in rows]
    assert sorted(names) == sorted(p.name for p in TEMPLATE_FILES)
    assert len(names) == len(set(names))
    for row in rows:
        assert len(row) == 4, row
        assert row[2] == PLATFORM, row


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> clitable.CliTable:
    """A CliTable over the index part alone (header added), as the merged index will behave."""
    folder = tmp_path_factory.mktemp("strongswan_index")
    header = "Template, Hostname, Platform, Command\n\n"
    (folder / "index").write_text(header + INDEX_PART.read_text(encoding="utf-8"))
    for template in TEMPLATE_FILES:
        shutil.copy(template, folder / template.name)
    return clitable.CliTable("index", str(folder))


def _lookup(table: clitable.CliTable, command: str) -> str | None:
    row = table.index.GetRowMatch({"Platform": PLATFORM, "Command": command})
    return str(table.index.index[row]["Template"]) if row else None


def _plan_commands() -> list[str]:
    plan = yaml.safe_load(PLAN.read_text(encoding="utf-8"))
    return [" ".join(str(entry["command"]).split()) for entry in plan["commands"]]


def test_plan_commands_find_their_template(table: clitable.CliTable) -> None:
    commands = _plan_commands()
    for command, template in EXPECTED_TEMPLATE.items():
        assert command in commands, f"{command!r} is no longer in the plan"
        assert _lookup(table, command.replace("{peer}", "198.51.100.129")) == template, command
    for command in commands:
        if command not in EXPECTED_TEMPLATE:
            assert _lookup(table, command) is None, f"{command!r} unexpectedly has a template"


@pytest.mark.parametrize(
    ("command", "template"),
    [
        ("swanctl --list-sas --ike s2s-ikev2", "linux_swanctl_list_sas.textfsm"),
        ("swanctl --list-sas --noblock", "linux_swanctl_list_sas.textfsm"),
        ("swanctl --list-pols --trap", "linux_swanctl_list_pols.textfsm"),
        ("ip xfrm state", "linux_ip_xfrm_state.textfsm"),
        ("ip -s xfrm state", "linux_ip_xfrm_state.textfsm"),
        ("ip -s xfrm policy", "linux_ip_xfrm_policy.textfsm"),
        ("ip xfrm policy list", "linux_ip_xfrm_policy.textfsm"),
        ("ip route get 192.0.2.140", "linux_ip_route_get.textfsm"),
        ("tail -n 300 /var/log/charon.log", "linux_charon_log.textfsm"),
        ("cat /var/log/charon.log", "linux_charon_log.textfsm"),
        ("swanctl --list-sas --raw", None),
        ("swanctl --list-conns --pretty", None),
        ("ip route show table 220", None),
        ("ip xfrm state flush", None),
    ],
)
def test_index_variants(table: clitable.CliTable, command: str, template: str | None) -> None:
    assert _lookup(table, command) == template


def _captured_outputs() -> list[tuple[Path, Path]]:
    """(template, capture file) for every real capture of a command that has a template."""
    found = []
    for command, template in EXPECTED_TEMPLATE.items():
        for device in sorted(CAPTURES.glob("*/gw*")):
            peer = "198.51.100.1" if device.name == "gw2" else "198.51.100.129"
            for sample in (1, 2):
                path = device / command_filename(command.replace("{peer}", peer), sample)
                if path.is_file():
                    found.append((TEMPLATES / template, path))
    return found


CAPTURED = _captured_outputs()
_VICI_DOWN = re.compile(r"^connecting to '\S+' failed", re.MULTILINE)


@pytest.mark.parametrize(
    ("template", "path"),
    CAPTURED,
    ids=[str(path.relative_to(CAPTURES)) for _, path in CAPTURED],
)
def test_every_real_capture_parses_or_is_refused_for_a_stopped_daemon(
    template: Path, path: Path
) -> None:
    text = path.read_text(encoding="utf-8")
    if _VICI_DOWN.search(text):
        with pytest.raises(textfsm.TextFSMError, match="not reachable over VICI"):
            parse(template, text)
        return
    rows = parse(template, text)
    if text.strip() and template.name != "linux_ip_route_get.textfsm":
        assert rows, f"{path}: non-empty output gave no rows"


def test_capture_set_is_complete() -> None:
    scenarios = {p.parent.name for p in CAPTURES.glob("*/scenario.yaml")}
    assert len(scenarios) == 11
    assert len(CAPTURED) >= 11 * 2 * len(EXPECTED_TEMPLATE)


def test_log_rows_keep_the_failure_wording() -> None:
    """The charon lines the strongSwan converter keys on come through verbatim."""
    wanted = {
        "psk-mismatch/gw1": "received AUTHENTICATION_FAILED notify error",
        "psk-mismatch/gw2": "tried 1 shared key for 'gw2.example.net' - 'gw1.example.net', "
        "but MAC mismatched",
        "ike-proposal-mismatch/gw1": "received NO_PROPOSAL_CHOSEN notify error",
        "ike-proposal-mismatch/gw2": "received proposals unacceptable",
        "esp-proposal-mismatch/gw1": "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built",
        "ts-mismatch/gw1": "received TS_UNACCEPTABLE notify, no CHILD_SA built",
        "ts-mismatch/gw2": "traffic selectors 192.0.2.128/26 === 192.0.2.0/26 unacceptable",
        "no-route-to-peer/gw1": "error writing to socket: Network is unreachable",
        "udp500-blocked/gw1": "establishing IKE_SA failed, peer not responding",
        "dpd-teardown/gw1": "DPD check timed out, enforcing DPD action",
        "peer-down/gw2": "SIGTERM received, shutting down",
    }
    template = TEMPLATES / "linux_charon_log.textfsm"
    log = command_filename("tail -n 1000 /var/log/charon.log")
    for where, message in wanted.items():
        rows = parse(template, (CAPTURES / where / log).read_text(encoding="utf-8"))
        assert any(row["message"] == message for row in rows), f"{where}: {message!r}"


@pytest.mark.parametrize(
    "text",
    [
        "tail: cannot open '/var/log/charon.log' for reading: No such file or directory\n",
        "cat: /var/log/charon.log: Permission denied\n",
    ],
)
def test_unreadable_log_is_an_error(text: str) -> None:
    with pytest.raises(textfsm.TextFSMError):
        parse(TEMPLATES / "linux_charon_log.textfsm", text)


@pytest.mark.parametrize(
    "template",
    ["linux_ip_xfrm_state.textfsm", "linux_ip_xfrm_policy.textfsm"],
)
def test_xfrm_error_message_is_an_error(template: str) -> None:
    with pytest.raises(textfsm.TextFSMError):
        parse(TEMPLATES / template, "RTNETLINK answers: Operation not permitted\n")
