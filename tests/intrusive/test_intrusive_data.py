"""The intrusive-step data (YAML), value checks, log deltas, and the audit log."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.audit_log import AuditLog, default_audit_path, read_audit_log
from ipsec_doctor.collect.intrusive import production_flag
from ipsec_doctor.collect.intrusive_cli import NetmikoCli
from ipsec_doctor.collect.intrusive_data import (
    LogBuffer,
    end_of_negotiation,
    fill,
    is_configuration_command,
    load_intrusive,
    new_messages,
    parse_show_debugging,
    read_log_buffer,
)
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.resources import data_dir

DATA = load_intrusive("cisco_ios")


def test_the_packaged_data_loads_and_never_configures() -> None:
    commands = [
        DATA.condition,
        DATA.condition_undo,
        DATA.undo_all,
        DATA.show_debugging,
        DATA.log_read,
        DATA.monitor_on,
        DATA.monitor_off,
        DATA.ping_command,
        DATA.acl_counters,
        DATA.clear_sa_peer,
        DATA.clear_isakmp_conn,
        *(spec.command for spec in DATA.debugs.values()),
        *(spec.undo for spec in DATA.debugs.values()),
    ]
    assert not any(is_configuration_command(command) for command in commands)
    assert DATA.default_debugs == ("isakmp", "ipsec")
    assert DATA.condition == "debug crypto condition peer ipv4 {peer}"


def test_every_hand_written_regex_has_a_sample_line_above_it() -> None:
    text = (data_dir("platforms") / "cisco_ios_intrusive.yaml").read_text()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        is_regex = stripped.startswith("- '") or (
            ": '" in stripped and not stripped.startswith("#")
        )
        if not is_regex:
            continue
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("# Sample"):
            above -= 1
        assert above < index - 1, f"line {index + 1}: no '# Sample device line' above {stripped}"


def _write(tmp_path: Path, mutate: str, value: object) -> Path:
    data = yaml.safe_load((data_dir("platforms") / "cisco_ios_intrusive.yaml").read_text())
    section, key = mutate.split(".")
    data[section][key] = value
    (tmp_path / "cisco_ios_intrusive.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


@pytest.mark.parametrize(
    ("mutate", "value", "message"),
    [
        ("debug.condition", "configure terminal", "configuration mode"),
        ("debug.undo_all", "conf t", "configuration mode"),
        ("clear.sa_peer", "clear crypto sa", "not scoped"),
        ("clear.isakmp_conn", "clear crypto isakmp", "not scoped"),
        ("debug.patterns", {"buffer_level": "("}, "invalid regular expression"),
    ],
)
def test_broken_data_is_refused_with_the_key(
    tmp_path: Path, mutate: str, value: object, message: str
) -> None:
    folder = _write(tmp_path, mutate, value)
    with pytest.raises(ConfigError, match=message) as raised:
        load_intrusive("cisco_ios", folder)
    assert "cisco_ios_intrusive.yaml" in str(raised.value)


def test_platform_without_intrusive_data() -> None:
    with pytest.raises(UsageError, match="not available for platform 'strongswan'"):
        load_intrusive("strongswan")


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("debug crypto condition peer ipv4 {peer}", {"peer": "10.2.2.1"}, "10.2.2.1"),
        ("clear crypto isakmp {conn_id}", {"conn_id": 1001}, "1001"),
        ("show access-lists {acl}", {"acl": "VPN-TRAFFIC"}, "VPN-TRAFFIC"),
    ],
)
def test_fill_accepts_checked_values(
    template: str, values: dict[str, object], expected: str
) -> None:
    assert fill(template, **values).endswith(expected)


@pytest.mark.parametrize(
    ("template", "values"),
    [
        ("debug crypto condition peer ipv4 {peer}", {"peer": "10.2.2.1\nreload"}),
        ("debug crypto condition peer ipv4 {peer}", {"peer": "any"}),
        ("clear crypto isakmp {conn_id}", {"conn_id": "0"}),
        ("clear crypto isakmp {conn_id}", {"conn_id": "1 2"}),
        ("show access-lists {acl}", {"acl": "X | redirect tftp://x"}),
        ("show access-lists {acl}", {}),
    ],
)
def test_fill_refuses_anything_unsafe(template: str, values: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        fill(template, **values)


LOG = """\
    Buffer logging:  level debugging, 1389 messages logged, xml disabled,
                    filtering disabled

Log Buffer (16384 bytes):

*Nov 23 10:14:58.246: IPSEC(sa_request): ,
  (key eng. msg.) OUTBOUND local= 10.1.1.1:500, remote= 10.2.2.1:500,
*Nov 23 10:14:58.250: ISAKMP:(0): SA request profile is (NULL)
*Nov 23 10:14:58.254: ISAKMP: Created a peer struct for 10.2.2.1, peer port 500
"""


def test_log_buffer_messages_and_deltas() -> None:
    before = read_log_buffer(LOG, DATA)
    assert (before.level, before.count, len(before.messages)) == ("debugging", 1389, 3)
    assert before.messages[0].count("\n") == 1  # the continuation line stays with its message
    more = LOG.replace("1389", "1391") + (
        "*Nov 23 10:14:58.258: ISAKMP: New peer created\n"
        "*Nov 23 10:14:58.262: ISAKMP: Locking peer struct\n"
    )
    added, note = new_messages(before, read_log_buffer(more, DATA))
    assert [m.split(": ", 1)[1] for m in added] == [
        "ISAKMP: New peer created",
        "ISAKMP: Locking peer struct",
    ]
    assert note == ""


def test_log_delta_after_the_buffer_wrapped_uses_the_counter() -> None:
    before = read_log_buffer(LOG, DATA)
    wrapped = (
        "    Buffer logging:  level debugging, 1394 messages logged, xml disabled,\n"
        "Log Buffer (16384 bytes):\n"
        + "".join(f"*Nov 23 10:15:0{i}.000: ISAKMP: message {i}\n" for i in range(4))
    )
    added, note = new_messages(before, read_log_buffer(wrapped, DATA))
    assert len(added) == 4 and "1 message(s) were lost" in note
    added, note = new_messages(LogBuffer("", None, ()), read_log_buffer(LOG, DATA))
    assert len(added) == 3 and note == ""


def test_buffer_levels() -> None:
    informational = LOG.replace("level debugging", "level informational")
    assert not read_log_buffer(informational, DATA).takes_debugs
    disabled = "    Buffer logging:  disabled, xml disabled,\n"
    assert read_log_buffer(disabled, DATA).level == "disabled"
    assert read_log_buffer("pasted debug lines only\n", DATA).takes_debugs


def test_show_debugging_listing() -> None:
    text = (
        "Cryptographic Subsystem:\n  Crypto ISAKMP debugging is on\n\n"
        "Crypto conditional debug currently is turned ON\nIKE peer IP address filters:\n"
        "10.2.2.1 \n10.3.3.1 \n\nIP:\n  IP packet debugging is on\n"
    )
    listing = parse_show_debugging(text, DATA)
    assert listing.flags == ("Crypto ISAKMP", "IP packet")
    assert listing.crypto_flags == ("Crypto ISAKMP",)
    assert listing.conditional and listing.condition_peers == ("10.2.2.1", "10.3.3.1")
    assert parse_show_debugging("", DATA).flags == ()


@pytest.mark.parametrize(
    ("line", "verdict"),
    [
        (
            "*Nov 23 10:20:01.461: ISAKMP:(1002):Old State = IKE_QM_I_QM1  New State = "
            "IKE_QM_PHASE2_COMPLETE",
            "established",
        ),
        ("*Nov 23 10:20:01.441: IPSEC(create_sa): sa created,", "established"),
        ("*Apr 20 09:14:23.441: ISAKMP:(0): no offers accepted!", "failed"),
        (
            "*Nov 23 10:14:51.452: ISAKMP:(1003): IPSec policy invalidated proposal with error 32",
            "failed",
        ),
        (
            'ISAKMP:(0):deleting SA reason "Death by retransmission P1" state (I) MM_NO_STATE',
            "failed",
        ),
        ("*Nov 23 10:15:18.521: ISAKMP:(1001): retransmitting phase 1 MM_KEY_EXCH...", ""),
        ("ISAKMP (1001): received packet from 10.2.2.1 dport 500 sport 500 Global (I) QM_IDLE", ""),
    ],
)
def test_end_of_negotiation(line: str, verdict: str) -> None:
    assert end_of_negotiation(line, DATA) == verdict


def test_production_flag() -> None:
    assert production_flag({"production": True})
    assert production_flag({"production": "yes"})
    assert not production_flag({"production": False})
    assert not production_flag({})
    assert not production_flag(None)


# -- audit log ------------------------------------------------------------------------------------


def test_audit_log_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "deep" / "intrusive.log", known_secrets=("s3cret",))
    log.check_writable()
    log.record(
        device="R1", command="debug crypto isakmp", result="ok", peer="10.2.2.1", session="abc"
    )
    log.record(device="R1", command="undebug all", result="error: s3cret leaked", action="undo")
    records = read_audit_log(log.path)
    assert [r["command"] for r in records] == ["debug crypto isakmp", "undebug all"]
    first = records[0]
    assert set(first) >= {"time", "user", "device", "command", "result", "action", "peer"}
    assert first["time"].endswith("+00:00") and first["user"]
    assert "s3cret" not in records[1]["result"]
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    for line in log.path.read_text().splitlines():
        json.loads(line)


def test_audit_log_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IPSEC_DOCTOR_STATE_DIR", str(tmp_path / "state"))
    assert default_audit_path() == tmp_path / "state" / "intrusive.log"
    monkeypatch.delenv("IPSEC_DOCTOR_STATE_DIR")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_audit_path() == tmp_path / ".local" / "state" / "ipsec-doctor" / "intrusive.log"


def test_unwritable_audit_log_stops_everything(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = AuditLog(blocker / "intrusive.log")
    with pytest.raises(ConfigError, match="cannot write the audit log"):
        log.check_writable()


def test_the_session_refuses_configuration_mode() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send_command(self, command: str, **kwargs: object) -> str:
            self.sent.append(command)
            return ""

        def find_prompt(self) -> str:
            return "R1#"

    connection = Recorder()
    cli = NetmikoCli(connection, "R1")
    for command in ("configure terminal", "conf t", "CONFIG replace flash:x"):
        with pytest.raises(UsageError, match="configuration mode"):
            cli.send(command, read_timeout=1)
    cli.send("show debugging", read_timeout=1)
    assert connection.sent == ["show debugging"]
