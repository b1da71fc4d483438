"""DebugSession against the SSH emulator: debugs always undone, and the lines it reads.

Every test runs on ``make_lab``, which fails the test at the end if any device still has a
debug or a crypto condition on. Time is a :class:`NoWaitClock` (``sleep`` advances it), so
no test sleeps; the emulator releases debug lines as commands are answered.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from netmiko import BaseConnection

from ipsec_doctor.collect.audit_log import AuditLog, commands_of, read_audit_log
from ipsec_doctor.collect.base import (
    CommandTimeoutError,
    ConnectionLostError,
    NoWaitClock,
)
from ipsec_doctor.collect.intrusive import (
    DebugCleanupError,
    DebugSession,
    IntrusiveRefusedError,
    run_debug,
)
from ipsec_doctor.collect.intrusive_cli import IntrusiveCli, NetmikoCli
from ipsec_doctor.lab.emulator import DeviceBehaviour, EmulatorLab

from .conftest import ENDLESS_ISAKMP, PEER, LabFactory, connect

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]

Sessions = Callable[..., BaseConnection]

CONDITION = f"debug crypto condition peer ipv4 {PEER}"
CONDITION_UNDO = f"no debug crypto condition peer ipv4 {PEER}"


def factory(lab: EmulatorLab, sessions: Sessions, name: str = "R1") -> Callable[[], Any]:
    return lambda: sessions(lab, name)


def test_success_reads_the_negotiation_and_undoes(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock, audit: AuditLog
) -> None:
    lab = make_lab("healthy")
    started: list[str] = []
    with DebugSession(
        sessions(lab),
        peer=PEER,
        device="R1",
        clock=clock,
        audit=audit,
        on_started=lambda s: started.append(s.source),
    ) as session:
        assert lab.device("R1").debug_state.conditions == {f"peer ipv4 {PEER}"}
        result = session.watch()
    assert started == ["buffer"]
    assert result.ended == "established"
    assert "IKE_QM_PHASE2_COMPLETE" in result.end_message or "sa created" in result.end_message
    assert any("atts are acceptable" in line for line in result.lines)
    commands = {capture.command: capture.raw for capture in result.captures}
    assert set(commands) == {"debug crypto isakmp", "debug crypto ipsec"}
    assert "IPSEC(create_sa): sa created" in commands["debug crypto ipsec"]
    assert "New State = IKE_QM_PHASE2_COMPLETE" in commands["debug crypto isakmp"]
    assert session.result is not None and session.result.undone

    device = lab.device("R1")
    assert device.debug_state.clean
    # the condition comes first, before any debug; the undo removes both
    assert device.history == [
        CONDITION,
        "debug crypto isakmp",
        "debug crypto ipsec",
        "undebug all",
        CONDITION_UNDO,
    ]
    records = read_audit_log(audit.path)
    assert commands_of(records, "do") == [CONDITION, "debug crypto isakmp", "debug crypto ipsec"]
    assert commands_of(records, "undo") == ["undebug all", CONDITION_UNDO]
    assert commands_of(records, "check") == ["show debugging"]
    assert {r["user"] for r in records} == {audit._user}
    assert {r["device"] for r in records} == {"R1"}
    assert all(r["result"] == "ok" and r["time"] for r in records)
    assert len({r["session"] for r in records}) == 1


def test_the_log_buffer_is_read_as_deltas(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    """Lines already in the buffer before the debugs are not part of the result."""
    lab = make_lab("healthy")
    result = run_debug(sessions(lab), peer=PEER, device="R1", clock=clock)
    assert not any("%SYS-5-CONFIG_I" in line for line in result.lines)
    assert not any("LOGIN_SUCCESS" in line for line in result.lines)
    # each message once, in time order
    assert len(result.messages) == len(set(result.messages))
    assert result.messages[0].startswith("*Nov 23 10:20:01.099: IPSEC(sa_request)")


def test_exception_in_the_middle_is_undone_and_propagates(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy")
    with (
        pytest.raises(RuntimeError, match="boom"),
        DebugSession(sessions(lab), peer=PEER, device="R1", clock=clock) as session,
    ):
        session.poll()
        raise RuntimeError("boom")
    assert lab.device("R1").debug_state.clean
    assert session.result is not None and session.result.ended == "error"
    assert session.result.undone


def test_time_limit_ends_the_watch_and_undoes(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("psk-mismatch")  # R1 retransmits MM_KEY_EXCH: no end in sight
    result = run_debug(
        sessions(lab), peer=PEER, device="R1", clock=clock, max_seconds=60, poll_interval=2
    )
    assert result.ended == "time limit"
    assert result.seconds == pytest.approx(60.0)
    assert sum(clock.slept) == pytest.approx(60.0)
    assert len(clock.slept) == 30
    assert any("retransmitting phase 1 MM_KEY_EXCH" in line for line in result.lines)
    assert lab.device("R1").debug_state.clean


def test_keyboard_interrupt_while_watching_is_undone(
    make_lab: LabFactory, sessions: Sessions
) -> None:
    class InterruptingClock(NoWaitClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    lab = make_lab("psk-mismatch")
    with (
        pytest.raises(KeyboardInterrupt),
        DebugSession(sessions(lab), peer=PEER, device="R1", clock=InterruptingClock()) as session,
    ):
        session.watch()
    assert lab.device("R1").debug_state.clean
    assert session.result is not None and session.result.ended == "interrupted"
    assert session.result.messages  # what was read before the interrupt is kept


class SignalOnUndo:
    """An IntrusiveCli that delivers SIGINT to this process while `undebug all` runs."""

    def __init__(self, inner: IntrusiveCli) -> None:
        self.inner = inner
        self.sent: list[str] = []

    @property
    def device(self) -> str:
        return self.inner.device

    def send(self, command: str, *, read_timeout: float) -> str:
        self.sent.append(command)
        if command == "undebug all":
            signal.raise_signal(signal.SIGINT)
        return self.inner.send(command, read_timeout=read_timeout)

    def read_pending(self) -> str:
        return self.inner.read_pending()

    def resync(self) -> bool:
        return self.inner.resync()

    def close(self) -> None:
        self.inner.close()


def test_sigint_during_the_undo_is_held_until_the_undo_is_done(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy")
    cli = SignalOnUndo(NetmikoCli(sessions(lab), "R1"))
    warnings: list[str] = []
    with (
        pytest.raises(KeyboardInterrupt),
        DebugSession(cli, peer=PEER, device="R1", clock=clock, warn=warnings.append) as session,
    ):
        session.watch()
    assert cli.sent[-3:] == ["undebug all", CONDITION_UNDO, "show debugging"]
    assert lab.device("R1").debug_state.clean
    assert any("still turning debugs off on R1" in w for w in warnings)


def test_dropped_session_reconnects_to_undo(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("psk-mismatch")
    device = lab.device("R1")

    def drop_next_log_read(session: DebugSession) -> None:
        device.behaviour.drop_on = "show logging"

    with (
        pytest.raises(ConnectionLostError),
        DebugSession(
            sessions(lab),
            peer=PEER,
            device="R1",
            clock=clock,
            reconnect=factory(lab, sessions),
            read_timeout=2.0,
            on_started=drop_next_log_read,
        ) as session,
    ):
        session.watch()
    assert device.debug_state.clean
    assert session.result is not None and session.result.undone
    assert any("reconnected to R1" in note for note in session.result.notes)


def test_hung_session_times_out_and_is_undone_on_a_new_one(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("psk-mismatch")
    device = lab.device("R1")

    def hang_next_log_read(session: DebugSession) -> None:
        device.behaviour.hang_on = "show logging"

    with (
        pytest.raises(CommandTimeoutError),
        DebugSession(
            sessions(lab),
            peer=PEER,
            device="R1",
            clock=clock,
            read_timeout=1.0,
            reconnect=factory(lab, sessions),
            on_started=hang_next_log_read,
        ) as session,
    ):
        session.watch()
    assert device.debug_state.clean


def test_undo_that_cannot_reconnect_is_loud_and_names_the_device(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock, tmp_path: Path
) -> None:
    lab = make_lab("psk-mismatch")
    device = lab.device("R1")
    warnings: list[str] = []

    def lose_everything(session: DebugSession) -> None:
        device.behaviour.drop_on = "show logging"
        device.behaviour.refuse_login = True

    def reconnect() -> Any:
        return connect(lab, "R1", conn_timeout=5, auth_timeout=5)

    with (
        pytest.raises(ConnectionLostError),
        DebugSession(
            sessions(lab),
            peer=PEER,
            device="R1",
            clock=clock,
            reconnect=reconnect,
            read_timeout=2.0,
            on_started=lose_everything,
            warn=warnings.append,
        ) as session,
    ):
        session.watch()
    assert isinstance(session.cleanup_error, DebugCleanupError)
    loud = "\n".join(warnings)
    assert "DEBUGS MAY STILL BE ON on R1" in loud
    assert "undebug all" in loud and CONDITION_UNDO in loud
    assert not device.debug_state.clean  # really left on: the test cleans up for the fixture
    device.reset_intrusive()


def test_undo_failure_after_success_raises(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy")
    device = lab.device("R1")
    warnings: list[str] = []
    with pytest.raises(DebugCleanupError, match="R1"):  # noqa: SIM117 (the raise is on exit)
        with DebugSession(
            sessions(lab),
            peer=PEER,
            device="R1",
            clock=clock,
            warn=warnings.append,
            read_timeout=1.0,
        ) as session:
            session.watch()
            device.behaviour.hang_on = "undebug"
    assert warnings and "DEBUGS MAY STILL BE ON on R1" in warnings[0]
    device.reset_intrusive()


def test_production_device_is_refused_before_anything_is_sent(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy")
    with pytest.raises(IntrusiveRefusedError, match="production"):
        DebugSession(
            sessions(lab), peer=PEER, device="R1", clock=clock, production=True
        ).__enter__()
    assert lab.device("R1").history == []
    result = run_debug(
        sessions(lab), peer=PEER, device="R1", clock=clock, production=True, allow_intrusive=True
    )
    assert result.undone


def test_a_refused_condition_means_no_debugs(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    """An old IOS without conditional debugging: never turn on debugs for every tunnel."""

    class NoConditions(SignalOnUndo):
        def send(self, command: str, *, read_timeout: float) -> str:
            self.sent.append(command)
            if "condition" in command:
                return "                  ^\n% Invalid input detected at '^' marker.\n"
            return self.inner.send(command, read_timeout=read_timeout)

    lab = make_lab("healthy")
    cli = NoConditions(NetmikoCli(sessions(lab), "R1"))
    with pytest.raises(IntrusiveRefusedError, match="limited to the peer"):
        DebugSession(cli, peer=PEER, device="R1", clock=clock).__enter__()
    assert not any(c.startswith("debug crypto isakmp") for c in cli.sent)
    assert lab.device("R1").debug_state.clean


def test_buffer_at_informational_reads_the_terminal(
    make_lab: LabFactory, sessions: Sessions
) -> None:
    """No debug lines reach the buffer: the session uses terminal monitor (real clock, bounded)."""

    def informational(folder: Path) -> None:
        log = folder / "R1" / "show_logging.txt"
        log.write_text(
            log.read_text().replace(
                "Buffer logging:  level debugging", "Buffer logging:  level informational"
            )
        )

    lab = make_lab("healthy", edit=informational)
    result = run_debug(sessions(lab), peer=PEER, device="R1", max_seconds=20, poll_interval=0.05)
    assert result.source == "monitor"
    assert result.ended == "established"
    assert any("atts are acceptable" in line for line in result.lines)
    assert not any(line.startswith("R1#") for line in result.lines)
    assert "terminal monitor" not in lab.device("R1").history  # per session, not a device state


def test_no_way_to_see_debugs_is_refused(make_lab: LabFactory, sessions: Sessions) -> None:
    def nowhere(folder: Path) -> None:
        log = folder / "R1" / "show_logging.txt"
        text = log.read_text().replace(
            "Buffer logging:  level debugging", "Buffer logging:  level informational"
        )
        log.write_text(
            text.replace("Monitor logging: level debugging", "Monitor logging: disabled")
        )

    lab = make_lab("healthy", edit=nowhere)
    with pytest.raises(IntrusiveRefusedError, match="never changes configuration"):
        DebugSession(sessions(lab), peer=PEER, device="R1").__enter__()
    assert lab.device("R1").history == []


def test_condition_for_another_peer_prints_nothing(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy")
    result = run_debug(sessions(lab), peer="10.9.9.9", device="R1", clock=clock, max_seconds=6)
    assert result.ended == "time limit"
    assert result.messages == ()


def test_engine_debug_when_asked(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab(
        "psk-mismatch",
        edit=lambda f: (f / "R1" / "debug_crypto_isakmp.txt").write_text(ENDLESS_ISAKMP),
    )
    result = run_debug(
        sessions(lab),
        peer=PEER,
        device="R1",
        clock=clock,
        max_seconds=4,
        debugs=("isakmp", "ipsec", "engine"),
    )
    assert result.debugs == ("debug crypto isakmp", "debug crypto ipsec", "debug crypto engine")
    assert [c.command for c in result.captures] == list(result.debugs)
    assert lab.device("R1").history[:4] == [
        CONDITION,
        "debug crypto isakmp",
        "debug crypto ipsec",
        "debug crypto engine",
    ]


def test_debugs_already_on_are_reported(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock
) -> None:
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(debug_autostart=False)})
    other = sessions(lab)
    other.send_command("debug crypto engine")
    result = run_debug(sessions(lab), peer=PEER, device="R1", clock=clock, max_seconds=2)
    assert any("already on" in note and "Crypto Engine" in note for note in result.notes)
    assert lab.device("R1").debug_state.clean


def test_ctrl_c_just_before_the_undo_still_undoes(
    make_lab: LabFactory, sessions: Sessions, clock: NoWaitClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C in the instant before __exit__ holds the signals: the undo runs anyway."""
    import ipsec_doctor.collect.intrusive as intrusive

    real = intrusive.signals_deferred
    calls: list[int] = []

    @contextlib.contextmanager
    def late_ctrl_c(on_signal: Any = None) -> Iterator[list[int]]:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        with real(on_signal) as received:
            yield received

    monkeypatch.setattr(intrusive, "signals_deferred", late_ctrl_c)
    lab = make_lab("healthy")
    with (
        pytest.raises(KeyboardInterrupt),
        DebugSession(sessions(lab), peer=PEER, device="R1", clock=clock) as session,
    ):
        session.watch()
    assert len(calls) == 2
    assert lab.device("R1").debug_state.clean
