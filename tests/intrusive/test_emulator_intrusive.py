"""The emulator's model of the intrusive steps: debug state, debug output, clears and ping."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsec_doctor.lab.emulator import (
    DebugState,
    DeviceBehaviour,
    EmulatedDevice,
    EmulatorLab,
    load_devices,
)

from .conftest import PEER, LabFactory, connect, copy_scenario


@pytest.fixture
def device(tmp_path: Path) -> EmulatedDevice:
    folder = copy_scenario("healthy", tmp_path)
    return EmulatedDevice(load_devices([folder])["R1"])


def run(device: EmulatedDevice, line: str, privileged: bool = True) -> str:
    result = device.run(line, privileged)
    assert result.accepted, f"{line!r} was refused"
    return result.output


def test_debug_state_is_kept_per_device_and_shown(device: EmulatedDevice) -> None:
    assert run(device, "show debugging") == ""
    run(device, f"debug crypto condition peer ipv4 {PEER}")
    assert run(device, "deb cry isa") == "Crypto ISAKMP debugging is on\n"
    assert run(device, "debug crypto ipsec") == "Crypto IPSEC debugging is on\n"
    shown = run(device, "sh debug")
    assert "  Crypto ISAKMP debugging is on" in shown
    assert "Crypto conditional debug currently is turned ON" in shown
    assert "IKE peer IP address filters:\n10.2.2.1 " in shown
    assert device.debug_state == DebugState(
        {"crypto isakmp", "crypto ipsec"}, {f"peer ipv4 {PEER}"}
    )
    assert run(device, "no debug crypto ipsec") == "Crypto IPSEC debugging is off\n"
    assert device.debug_state.flags == {"crypto isakmp"}


def test_undebug_all_keeps_conditions_as_ios_does(device: EmulatedDevice) -> None:
    run(device, f"debug crypto condition peer ipv4 {PEER}")
    run(device, "debug crypto isakmp")
    assert run(device, "undebug all") == "All possible debugging has been turned off\n"
    assert device.debug_state.flags == set()
    assert device.debug_state.conditions == {f"peer ipv4 {PEER}"}
    assert not device.debug_state.clean
    assert "debug crypto condition peer ipv4 10.2.2.1" in device.debug_state.describe()
    run(device, f"no debug crypto condition peer ipv4 {PEER}")
    assert device.debug_state.clean


@pytest.mark.parametrize(
    "line",
    [
        "debug crypto bogus",
        "debug crypto condition peer ipv4 10.2.2",
        "debug crypto condition peer ipv4 10.2.2.1 extra",
        "debug crypto condition peer ipv6 10.2.2.1",
        "clear crypto sa peer nowhere",
        "clear crypto isakmp abc",
        "ping 192.168.2.1 sauce Gi0/1",
    ],
)
def test_malformed_intrusive_commands_are_refused(device: EmulatedDevice, line: str) -> None:
    result = device.run(line, True)
    assert not result.accepted
    assert device.history == [] and device.debug_state.clean


def test_debug_and_clear_need_privileged_mode(device: EmulatedDevice) -> None:
    for line in ("debug crypto isakmp", "undebug all", "clear crypto sa peer 10.2.2.1"):
        assert not device.run(line, False).accepted
    assert device.run("ping 192.168.2.1", False).accepted  # ping is EXEC
    assert device.debug_state.clean


def test_debug_lines_appear_in_the_log_only_while_debugging(device: EmulatedDevice) -> None:
    before = run(device, "show logging")
    assert "ISAKMP" not in before
    run(device, "debug crypto isakmp")  # autostart: a negotiation begins
    first = run(device, "show logging")
    assert len(device.log_lines) == 4
    second = run(device, "show logging")
    assert len(device.log_lines) == 9
    # debug_burst (5) messages per answer; the IPSEC(sa_request) one is not printed (that debug
    # is off), so 4 then 9 lines, and the buffer's message count moves with them
    assert all(line in second for line in device.log_lines)
    assert "IPSEC(" not in second
    assert "1321 messages logged" in first and "1326 messages logged" in second
    run(device, "undebug all")
    run(device, "show logging")
    assert len(device.log_lines) == 9  # nothing new while the debug is off
    assert device.log_lines[0].startswith("*Nov 23 10:20:01.101: ISAKMP")


def test_a_condition_for_another_peer_filters_everything(device: EmulatedDevice) -> None:
    run(device, "debug crypto condition peer ipv4 10.9.9.9")
    run(device, "debug crypto isakmp")
    for _ in range(5):
        run(device, "show clock")
    assert device.log_lines == ()
    run(device, "undebug all")
    run(device, "no debug crypto condition peer ipv4 10.9.9.9")


def test_clear_empties_the_sa_outputs_then_the_tunnel_returns(tmp_path: Path) -> None:
    folder = copy_scenario("healthy", tmp_path)
    after = (
        "IPv4 Crypto ISAKMP SA\ndst src state conn-id status\n"
        "10.2.2.1 10.1.1.1 MM_NO_STATE 0 ACTIVE\n"
    )
    (folder / "R1" / "show_crypto_isakmp_sa.after-clear.txt").write_text(after)
    device = EmulatedDevice(load_devices([folder])["R1"], DeviceBehaviour(clear_recovery=2))
    run(device, "clear crypto sa peer 10.9.9.9")  # another peer: our tunnel stays
    assert "QM_IDLE" in run(device, "show crypto isakmp sa")
    run(device, f"clear crypto sa peer {PEER}")
    assert "MM_NO_STATE" in run(device, "show crypto isakmp sa")  # the after-clear file
    assert run(device, f"show crypto ipsec sa peer {PEER}") == ""
    assert "QM_IDLE" in run(device, "show crypto isakmp sa")  # renegotiated
    assert device.history == ["clear crypto sa peer 10.9.9.9", f"clear crypto sa peer {PEER}"]


def test_clear_isakmp_by_conn_id(device: EmulatedDevice) -> None:
    run(device, "clear crypto isakmp 4242")  # not ours
    assert "1001" in run(device, "show crypto isakmp sa")
    run(device, "clear crypto isakmp 1001")
    empty = run(device, "show crypto isakmp sa")
    assert "dst             src" in empty and "1001" not in empty


def test_ping_adds_hits_to_the_matching_acl_lines(device: EmulatedDevice) -> None:
    assert "(1528 matches)" in run(device, "show access-lists VPN-TRAFFIC")
    output = run(device, "ping 192.168.2.10 source GigabitEthernet0/1 repeat 20")
    assert "Sending 20, 100-byte ICMP Echos to 192.168.2.10" in output
    assert "Packet sent with a source address of 192.168.1.1" in output
    assert "Success rate is 100 percent (20/20)" in output
    assert "(1558 matches)" in run(device, "show access-lists VPN-TRAFFIC")  # 1538 + 20
    run(device, "ping 10.99.0.1 repeat 3")  # outside the crypto ACL: no hits
    assert "(1558 matches)" in run(device, "show access-lists VPN-TRAFFIC")


def test_extended_ping_dialog_over_ssh(make_lab: LabFactory) -> None:
    lab = make_lab("healthy")
    connection = connect(lab)
    try:
        answers = [
            ("ping", r"Protocol \[ip\]:"),
            ("", r"Target IP address:"),
            ("192.168.2.10", r"Repeat count \[5\]:"),
            ("3", r"Datagram size \[100\]:"),
            ("", r"Timeout in seconds \[2\]:"),
            ("", r"Extended commands \[n\]:"),
            ("y", r"Ingress ping \[n\]:"),
            ("", r"Source address or interface:"),
            ("GigabitEthernet0/1", r"DSCP Value \[0\]:"),
        ]
        for answer, expect in answers:
            connection.send_command(answer, expect_string=expect, cmd_verify=False)
        for _ in range(7):  # DSCP ... Sweep range: take the defaults
            connection.write_channel("\n")
        output = connection.read_until_pattern(pattern=r"Success rate is.*\n.*R1#")
    finally:
        connection.disconnect()
    assert "Sending 3, 100-byte ICMP Echos to 192.168.2.10" in output
    assert "Packet sent with a source address of 192.168.1.1" in output
    assert lab.device("R1").history == [
        "ping 192.168.2.10 source GigabitEthernet0/1 repeat 3 size 100 timeout 2"
    ]


def test_terminal_monitor_session_receives_debug_lines(make_lab: LabFactory) -> None:
    lab = make_lab("healthy")
    watcher, other = connect(lab), connect(lab)
    try:
        watcher.send_command("terminal monitor")
        other.send_command(f"debug crypto condition peer ipv4 {PEER}")
        other.send_command("debug crypto isakmp")
        text = watcher.read_until_pattern(pattern=r"IKE_QM_PHASE2_COMPLETE", read_timeout=20)
        assert "ISAKMP:(0): beginning Main Mode exchange" in text
        other.send_command("undebug all")
        other.send_command(f"no debug crypto condition peer ipv4 {PEER}")
    finally:
        watcher.disconnect()
        other.disconnect()


def test_leftover_debugs_fail_the_lab_check(tmp_path: Path) -> None:
    folder = copy_scenario("healthy", tmp_path)
    with EmulatorLab([folder]) as lab:
        lab.device("R2").run("debug crypto isakmp", True)
        assert lab.leftover_debugs() == {"R2": "debug crypto isakmp"}
        with pytest.raises(AssertionError, match="R2: debug crypto isakmp"):
            lab.assert_debugs_off()
        lab.device("R2").reset_intrusive()
        lab.assert_debugs_off()
