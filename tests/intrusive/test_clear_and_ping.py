"""Peer-scoped, confirmed clears and generated traffic, against the SSH emulator."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace

import pytest
from netmiko import BaseConnection

from ipsec_doctor.collect.audit_log import AuditLog, commands_of, read_audit_log
from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.collect.intrusive import (
    IntrusiveRefusedError,
    clear_peer,
    execute_clear,
    ping_target,
    plan_clear,
    run_debug,
    run_ping,
    terminal_confirm,
)
from ipsec_doctor.errors import UsageError
from ipsec_doctor.lab.emulator import DeviceBehaviour

from .conftest import PEER, LabFactory

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]

Sessions = Callable[..., BaseConnection]


class Asked:
    """A confirm function that records the plan it was shown."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.shown: list[str] = []

    def __call__(self, plan_text: str) -> bool:
        self.shown.append(plan_text)
        return self.answer


# -- clear ----------------------------------------------------------------------------------------


def test_clear_plan_is_scoped_to_the_peer(make_lab: LabFactory, sessions: Sessions) -> None:
    lab = make_lab("healthy")
    plan = plan_clear(sessions(lab), PEER, device="R1")
    assert plan.commands == (f"clear crypto sa peer {PEER}", "clear crypto isakmp 1001")
    assert plan.conn_ids == (1001,)
    assert plan.before.up
    text = plan.describe()
    assert "R1# clear crypto sa peer 10.2.2.1" in text and "QM_IDLE (conn-id 1001)" in text
    assert lab.device("R1").history == []  # planning clears nothing


def test_declined_clear_sends_nothing(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock, audit: AuditLog
) -> None:
    lab = make_lab("healthy")
    asked = Asked(False)
    result = clear_peer(sessions(lab), PEER, device="R1", confirm=asked, clock=clock, audit=audit)
    assert not result.confirmed and result.came_back is None
    assert len(asked.shown) == 1 and "clear crypto isakmp 1001" in asked.shown[0]
    assert lab.device("R1").history == []
    assert read_audit_log(audit.path) == []


def test_confirmed_clear_comes_back_and_says_how_long(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock, audit: AuditLog
) -> None:
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(clear_recovery=4)})
    result = clear_peer(
        sessions(lab),
        PEER,
        device="R1",
        confirm=Asked(True),
        clock=clock,
        audit=audit,
        wait_seconds=30,
        poll_interval=3,
    )
    assert result.confirmed
    assert [command for command, _ in result.ran] == [
        f"clear crypto sa peer {PEER}",
        "clear crypto isakmp 1001",
    ]
    assert all(outcome == "ok" for _, outcome in result.ran)
    # four SA outputs (two polls) served empty, then the tunnel is back on the third poll
    assert result.came_back is True
    assert result.polls == 3
    assert result.seconds == pytest.approx(6.0)
    assert result.after is not None and result.after.up
    assert "came back 6.0 s after the clear" in result.summary()
    assert lab.device("R1").history == [f"clear crypto sa peer {PEER}", "clear crypto isakmp 1001"]
    assert commands_of(read_audit_log(audit.path), "do") == lab.device("R1").history
    before, after = result.captures()[0], result.captures()[2]
    assert before.command == after.command == "show crypto isakmp sa"
    assert (before.sample, after.sample) == (1, 2)


def test_tunnel_that_does_not_come_back_is_reported_within_the_wait(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(clear_recovery=None)})
    result = clear_peer(
        sessions(lab),
        PEER,
        device="R1",
        confirm=Asked(True),
        clock=clock,
        wait_seconds=10,
        poll_interval=2,
    )
    assert result.came_back is False and result.seconds is None
    assert result.polls == 6  # t = 0, 2, 4, 6, 8, 10: bounded
    assert result.after is not None and result.after.ike == ()
    assert "did not come back" in result.summary()


def test_an_unscoped_clear_is_refused_even_in_a_tampered_plan(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy")
    connection = sessions(lab)
    plan = plan_clear(connection, PEER, device="R1")
    for bad in (("clear crypto sa",), ("clear crypto isakmp",), ("clear crypto isakmp 7",)):
        with pytest.raises(UsageError, match="not a clear scoped"):
            execute_clear(connection, replace(plan, commands=bad), clock=clock)
    assert lab.device("R1").history == []


def test_production_device_is_not_cleared(make_lab: LabFactory, sessions: Sessions) -> None:
    lab = make_lab("healthy")
    asked = Asked(True)
    with pytest.raises(IntrusiveRefusedError, match="production"):
        clear_peer(sessions(lab), PEER, device="R1", confirm=asked, production=True)
    assert asked.shown == [] and lab.device("R1").history == []


def test_terminal_confirm_refuses_without_a_terminal_and_accepts_yes() -> None:
    out = io.StringIO()
    with pytest.raises(IntrusiveRefusedError, match="--yes"):
        terminal_confirm(stdin=io.StringIO("y\n"), stdout=out)("the plan")
    assert "the plan" in out.getvalue()
    assert terminal_confirm(True, stdin=io.StringIO(""), stdout=io.StringIO())("plan")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert terminal_confirm(stdin=Tty("yes\n"), stdout=io.StringIO())("plan") is True
    assert terminal_confirm(stdin=Tty("\n"), stdout=io.StringIO())("plan") is False


def test_clear_while_debugging_regenerates_the_debugs(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    """Strategy step 8: clear the sessions and regenerate the debugs."""
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(debug_autostart=False)})
    connection = sessions(lab)
    plan = plan_clear(connection, PEER, device="R1")
    result = run_debug(
        connection,
        peer=PEER,
        device="R1",
        clock=clock,
        max_seconds=30,
        trigger=lambda session: execute_clear(
            connection, plan, clock=clock, wait_seconds=0, poll_interval=0
        ),
    )
    assert result.ended == "established"
    history = lab.device("R1").history
    assert history.index("clear crypto sa peer 10.2.2.1") > history.index("debug crypto ipsec")
    assert lab.device("R1").debug_state.clean


# -- ping -----------------------------------------------------------------------------------------


def test_ping_target_comes_from_the_crypto_acl_and_the_lan_route(
    make_lab: LabFactory, sessions: Sessions
) -> None:
    lab = make_lab("healthy")
    target = ping_target(sessions(lab), PEER, device="R1")
    assert (target.destination, target.source, target.acl) == (
        "192.168.2.1",
        "GigabitEthernet0/1",
        "VPN-TRAFFIC",
    )
    assert "first host of 192.168.2.0/24" in target.how


def test_ping_counts_acl_hits_before_and_after(
    make_lab: LabFactory, sessions: Sessions, audit: AuditLog
) -> None:
    lab = make_lab("healthy")
    result = run_ping(sessions(lab), PEER, device="R1", audit=audit)
    assert result.command == ("ping 192.168.2.1 source GigabitEthernet0/1 repeat 5 timeout 2")
    assert (result.sent, result.received, result.success_percent) == (5, 5, 100)
    assert result.hits_delta is not None and result.hits_delta >= 5
    evidence = [e.line for e in result.evidence()]
    assert any("permit ip 192.168.1.0" in line and "matches" in line for line in evidence)
    assert any(line.startswith("Success rate is 100 percent") for line in evidence)
    assert commands_of(read_audit_log(audit.path), "do") == [result.command]
    assert [c.command for c in result.captures()] == [
        "show access-lists VPN-TRAFFIC",
        result.command,
        "show access-lists VPN-TRAFFIC",
    ]


def test_ping_to_a_given_host_and_failed_replies(make_lab: LabFactory, sessions: Sessions) -> None:
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(ping_replies=".")})
    result = run_ping(
        sessions(lab), PEER, device="R1", destination="192.168.2.77", source="GigabitEthernet0/1"
    )
    assert result.target.how.startswith("destination 192.168.2.77 as given")
    assert (result.received, result.success_percent) == (0, 0)


def test_ping_values_are_checked_before_typing(make_lab: LabFactory, sessions: Sessions) -> None:
    lab = make_lab("healthy")
    with pytest.raises(UsageError, match="not an IP address"):
        run_ping(sessions(lab), PEER, device="R1", destination="192.168.2.1; reload")
    with pytest.raises(UsageError, match="single safe word"):
        run_ping(sessions(lab), PEER, device="R1", destination="192.168.2.1", source="Gi0/1 x")
    assert lab.device("R1").history == []


def test_ping_triggers_a_negotiation_under_debug(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    """Strategy step 4: generate interesting traffic while the debugs are on."""
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(debug_autostart=False)})
    connection = sessions(lab)
    pings = []
    result = run_debug(
        connection,
        peer=PEER,
        device="R1",
        clock=clock,
        max_seconds=30,
        trigger=lambda session: pings.append(run_ping(connection, PEER, device="R1")),
    )
    assert pings and pings[0].received == 5
    assert result.ended == "established"
