"""The runbook's intrusive steps (debug, ping, clear) over :mod:`ipsec_doctor.collect.intrusive`.

Contract:
- :class:`IntrusiveSteps` implements :class:`~ipsec_doctor.runbook.session.IntrusiveDriver`.
  It writes nothing of its own to a device: every command, guard, undo and audit-log line is
  the intrusive module's (:class:`~ipsec_doctor.collect.intrusive.DebugSession`,
  :func:`~ipsec_doctor.collect.intrusive.run_ping`,
  :func:`~ipsec_doctor.collect.intrusive.plan_clear` /
  :func:`~ipsec_doctor.collect.intrusive.execute_clear`).
- ``debug`` (options ``seconds``, ``debugs``, ``engine``): one conditional debug session
  per device of the step (both ends), all entered in the main thread inside one
  ``ExitStack`` and read side by side (:meth:`DebugSession.poll` in turn every
  ``poll_interval``) until one of them printed the end of the negotiation (plus one more
  round) or ``seconds`` passed (capped by ``max_debug_seconds``). Without ``debugs``, each
  device gets what ``check --debug`` turns on for it
  (:meth:`~ipsec_doctor.collect.intrusive_check.IntrusiveOptions.debugs_for` its features as
  the outputs so far show them): isakmp and ipsec, ikev2 too on a router that runs IKEv2
  (instead of isakmp when it has no IKEv1 at all); ``engine`` adds the engine debug. Debugs
  the platform's intrusive data does not know are left out with a note. Leaving the stack -
  normally, on an error or on Ctrl-C - undoes every session (``undebug all``, condition
  removed, verified with ``show debugging``). The debug lines join the device's captures
  (``debug crypto isakmp`` ...), so the re-diagnosis reads them.
- ``ping`` (options ``count``, ``target``): an extended ping from each local end's protected
  LAN to the remote LAN; the crypto ACL hits before and after are shown, the ping output joins
  the captures. ``clear`` (option ``wait``): on each local end, the peer-scoped clear that
  :func:`plan_clear` builds (shown by :meth:`describe` before the confirmation, and exactly
  that is typed), then polling until the tunnel is back or ``wait`` seconds passed.
- ``notify`` (progress for the person) is called once each debug session is on.
- A device marked ``production: true`` is refused unless ``allow_intrusive``; a refusal, a
  platform without intrusive data, or a failure to start is a note, and the step counts as not
  run. Every change is reported as a :class:`~ipsec_doctor.runbook.io.Change` with whether it
  was undone; changes of a run cut short by Ctrl-C are reported by :meth:`undo_all`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ipsec_doctor.collect.audit_log import AuditLog
from ipsec_doctor.collect.base import Clock, SystemClock
from ipsec_doctor.collect.intrusive import (
    ClearPlan,
    DebugCleanupError,
    DebugSession,
    check_intrusive_allowed,
    execute_clear,
    plan_clear,
    run_ping,
)
from ipsec_doctor.collect.intrusive_check import IntrusiveOptions
from ipsec_doctor.collect.intrusive_data import end_of_negotiation, load_intrusive
from ipsec_doctor.errors import IpsecDoctorError
from ipsec_doctor.model.capture import CommandCapture, Outcome
from ipsec_doctor.runbook.io import Change
from ipsec_doctor.runbook.schema import Step
from ipsec_doctor.runbook.session import End, IntrusiveOutcome

ACTIONS = ("debug", "ping", "clear")
DEFAULT_DEBUG_SECONDS = 30
DEFAULT_CLEAR_WAIT = 30

Connect = Callable[[End], Any]


@dataclass
class _Running:
    """One debug session that was entered, and its change record."""

    end: End
    session: DebugSession
    change: Change
    reported: bool = False


class IntrusiveSteps:
    """The intrusive actions of runbook steps (see the module contract)."""

    def __init__(
        self,
        connect: Connect,
        *,
        reconnect: Connect | None = None,
        production: Mapping[str, bool] | None = None,
        allow_intrusive: bool = False,
        audit: AuditLog | None = None,
        max_debug_seconds: float | None = None,
        poll_interval: float = 2.0,
        clock: Clock | None = None,
        warn: Callable[[str], None] | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.connect = connect
        self.reconnect = reconnect
        self.production = dict(production or {})
        self.allow_intrusive = allow_intrusive
        self.audit = audit if audit is not None else AuditLog()
        self.max_debug_seconds = max_debug_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        self.warn = warn
        self.notify = notify
        self.stop = threading.Event()
        self._running: list[_Running] = []
        self._plans: dict[str, ClearPlan] = {}

    # -- which devices ----------------------------------------------------------------------------
    @staticmethod
    def _targets(step: Step, ends: Sequence[End]) -> list[End]:
        if step.action == "debug":
            return list(ends)  # both peers (question 2, step 7)
        return [e for e in ends if e.info.role == "local"]

    def available(self, step: Step, ends: Sequence[End]) -> tuple[bool, str]:
        if step.action not in ACTIONS:
            return False, f"unknown intrusive action {step.action!r}"
        targets = self._targets(step, ends)
        if not targets:
            return False, "no local device to run it on"
        problems: list[str] = []
        usable = 0
        for end in targets:
            try:
                load_intrusive(end.info.platform)
                check_intrusive_allowed(
                    end.name,
                    production=self.production.get(end.name, False),
                    allow_intrusive=self.allow_intrusive,
                    what=f"run the {step.action} step",
                )
            except IpsecDoctorError as exc:
                problems.append(str(exc))
                continue
            if step.action == "debug" and not self._debugs(step, end):
                wanted = ", ".join(self._wanted_debugs(step, end))
                problems.append(
                    f"{end.name}: no debug of {wanted} is known for {end.info.platform}"
                )
                continue
            usable += 1
        if not usable:
            return False, "; ".join(problems)
        return True, ""

    def _seconds(self, step: Step) -> float:
        seconds = float(step.options.get("seconds", DEFAULT_DEBUG_SECONDS))
        if self.max_debug_seconds is not None:
            seconds = min(seconds, self.max_debug_seconds)
        return max(1.0, seconds)

    @staticmethod
    def _wanted_debugs(step: Step, end: End) -> list[str]:
        """The step's ``debugs``, else those ``check --debug`` picks for the device."""
        engine = bool(step.options.get("engine"))
        wanted = step.options.get("debugs")
        if not isinstance(wanted, list):
            options = IntrusiveOptions(debug=True, debug_engine=engine)
            return list(options.debugs_for(end.features()))
        names = [str(n) for n in wanted]
        if engine and "engine" not in names:
            names.append("engine")
        return names

    def _debugs(self, step: Step, end: End) -> list[str]:
        """The step's debugs that the platform's intrusive data knows (the others are noted)."""
        known = load_intrusive(end.info.platform).debugs
        return [name for name in self._wanted_debugs(step, end) if name in known]

    def _unknown_debugs(self, step: Step, end: End) -> list[str]:
        known = load_intrusive(end.info.platform).debugs
        return [name for name in self._wanted_debugs(step, end) if name not in known]

    def describe(self, step: Step, ends: Sequence[End]) -> list[str]:
        lines: list[str] = []
        targets = self._targets(step, ends)
        if step.action == "debug":
            for end in targets:
                data = load_intrusive(end.info.platform)
                peer = end.info.peer
                on = [data.condition.replace("{peer}", peer)]
                on += [data.debugs[name].command for name in self._debugs(step, end)]
                off = [data.undo_all, data.condition_undo.replace("{peer}", peer)]
                lines.append(
                    f"{end.name}: {'; '.join(on)} -- read for at most {self._seconds(step):g} s "
                    f"-- then {'; '.join(off)}, checked with `{data.show_debugging}`"
                )
        elif step.action == "ping":
            count = int(step.options.get("count", 5))
            target = step.options.get("target")
            where = f"to {target}" if target else "to the first host of the remote protected LAN"
            for end in targets:
                lines.append(
                    f"{end.name}: ping {where}, sourced from the protected LAN interface, "
                    f"{count} packets; crypto ACL hits read before and after"
                )
        elif step.action == "clear":
            for end in targets:
                try:
                    plan = plan_clear(
                        self.connect(end),
                        end.info.peer,
                        device=end.name,
                        platform=end.info.platform,
                        known_secrets=end.known_secrets,
                    )
                except IpsecDoctorError as exc:
                    lines.append(f"{end.name}: cannot plan the clear: {exc}")
                    continue
                self._plans[end.name] = plan
                lines.extend(plan.describe().splitlines())
        return lines

    # -- running ----------------------------------------------------------------------------------
    def run(self, step: Step, ends: Sequence[End]) -> IntrusiveOutcome:
        self.stop.clear()
        if step.action == "debug":
            return self._debug(step, ends)
        if step.action == "ping":
            return self._ping(step, ends)
        if step.action == "clear":
            return self._clear(step, ends)
        return IntrusiveOutcome(ran=False, notes=[f"unknown action {step.action!r}"])

    def _allowed(self, end: End, what: str, outcome: IntrusiveOutcome) -> bool:
        try:
            load_intrusive(end.info.platform)
            check_intrusive_allowed(
                end.name,
                production=self.production.get(end.name, False),
                allow_intrusive=self.allow_intrusive,
                what=what,
            )
        except IpsecDoctorError as exc:
            outcome.notes.append(f"{end.name}: not run: {exc}")
            return False
        return True

    def _debug(self, step: Step, ends: Sequence[End]) -> IntrusiveOutcome:
        outcome = IntrusiveOutcome(ran=False)
        running: list[_Running] = []
        failed: list[_Running] = []
        cleanup_failed: DebugCleanupError | None = None
        try:
            with contextlib.ExitStack() as stack:
                for end in self._targets(step, ends):
                    if not self._allowed(end, "turn on debugs", outcome):
                        continue
                    unknown = self._unknown_debugs(step, end)
                    if unknown:
                        outcome.notes.append(
                            f"{end.name}: {', '.join(unknown)} debugging is not known for "
                            f"{end.info.platform}; not turned on"
                        )
                    if not self._debugs(step, end):
                        continue
                    session = self._debug_session(step, end)
                    # recorded BEFORE entering: Ctrl-C inside __enter__ (the session undoes
                    # itself) must still be reported by undo_all
                    item = _Running(end, session, self._debug_change(step, end))
                    self._running.append(item)
                    try:
                        stack.enter_context(session)
                    except IpsecDoctorError as exc:
                        outcome.notes.append(f"{end.name}: debug not started: {exc}")
                        if session.result is not None and session.result.debugs:
                            failed.append(item)  # partly on, then undone: on record
                        else:
                            self._running.remove(item)
                        continue
                    running.append(item)
                self._watch_all(running, self._seconds(step))
        except DebugCleanupError as exc:  # the undo could not be verified: loud, not fatal
            cleanup_failed = exc
        for item in failed:
            self._settle(item)
            item.reported = True
            outcome.changes.append(item.change)
        for item in running:
            self._settle(item)
            item.reported = True
            outcome.changes.append(item.change)
            result = item.session.result
            if result is None:
                continue
            outcome.ran = True
            outcome.captures[item.end.name] = list(result.captures)
            ended = f"{result.ended}" + (f" ({result.end_message})" if result.end_message else "")
            outcome.notes.append(
                f"{item.end.name}: {len(result.messages)} debug message(s) read from the "
                f"{result.source} in {result.seconds:.0f} s; negotiation {ended}"
            )
            outcome.notes.extend(f"{item.end.name}: {note}" for note in result.notes)
        if cleanup_failed is not None:
            outcome.notes.append(cleanup_failed.loud())
        return outcome

    def _watch_all(self, running: Sequence[_Running], seconds: float) -> None:
        """Poll every session in turn until one sees the negotiation end, or time is up.

        The two ends see one negotiation: the responder logs why it refused, the initiator
        may only retransmit. So all are read side by side (not one after the other), and
        reading stops one round after any of them printed the end of the negotiation.
        """
        if not running:
            return
        clock = self.clock or SystemClock()
        deadline = clock.monotonic() + seconds
        ended: dict[str, str] = {}
        rounds_after_end = 0
        while True:
            for item in running:
                data = item.session.data
                for message in item.session.poll():
                    verdict = end_of_negotiation(message, data)
                    if verdict and item.end.name not in ended:
                        ended[item.end.name] = verdict
            if ended:
                if rounds_after_end >= 1:
                    break
                rounds_after_end += 1
            now = clock.monotonic()
            if now >= deadline or self.stop.is_set():
                break
            wait = min(self.poll_interval, deadline - now)
            if isinstance(clock, SystemClock):
                self.stop.wait(wait)
            else:
                clock.sleep(wait)
        for item in running:
            item.session.snapshot(
                ended.get(item.end.name) or ("ended on the other end" if ended else "time limit")
            )

    def _debug_session(self, step: Step, end: End) -> DebugSession:
        reconnect = None
        if self.reconnect is not None:
            opener = self.reconnect

            def reconnect() -> Any:
                return opener(end)

        return DebugSession(
            self.connect(end),
            peer=end.info.peer,
            device=end.name,
            debugs=self._debugs(step, end),
            max_seconds=self._seconds(step),
            clock=self.clock,
            reconnect=reconnect,
            platform=end.info.platform,
            poll_interval=self.poll_interval,
            audit=self.audit,
            production=self.production.get(end.name, False),
            allow_intrusive=self.allow_intrusive,
            warn=self.warn,
            known_secrets=end.known_secrets,
            stop=self.stop,
            on_started=self._started,
        )

    def _started(self, session: DebugSession) -> None:
        if self.notify is not None:
            self.notify(
                f"{session.device}: debugs on for {session.peer}; reading them for at most "
                f"{session.max_seconds:g} s (Ctrl-C stops safely: they are turned off first)"
            )

    def _debug_change(self, step: Step, end: End) -> Change:
        data = load_intrusive(end.info.platform)
        peer = end.info.peer
        what = [data.condition.replace("{peer}", peer)]
        what += [data.debugs[name].command for name in self._debugs(step, end)]
        undo = [data.undo_all, data.condition_undo.replace("{peer}", peer)]
        return Change(
            device=end.name,
            what="; ".join(what),
            at=datetime.now(UTC),
            undo="; ".join(undo),
            undone=None,
        )

    @staticmethod
    def _settle(item: _Running) -> None:
        """Fill in whether the session's undo completed and was verified."""
        session = item.session
        result = session.result
        undone = bool(result is not None and result.undone and session.cleanup_error is None)
        note = "verified with show debugging" if undone else ""
        if session.cleanup_error is not None:
            note = str(session.cleanup_error)
        item.change = replace(item.change, undone=undone, note=note)

    def _ping(self, step: Step, ends: Sequence[End]) -> IntrusiveOutcome:
        outcome = IntrusiveOutcome(ran=False)
        count = int(step.options.get("count", 5))
        target = step.options.get("target")
        for end in self._targets(step, ends):
            if not self._allowed(end, "generate traffic", outcome):
                continue
            try:
                result = run_ping(
                    self.connect(end),
                    end.info.peer,
                    device=end.name,
                    destination=str(target) if target else None,
                    repeat=count,
                    platform=end.info.platform,
                    audit=self.audit,
                    production=self.production.get(end.name, False),
                    allow_intrusive=self.allow_intrusive,
                    known_secrets=end.known_secrets,
                )
            except IpsecDoctorError as exc:
                outcome.notes.append(f"{end.name}: ping not run: {exc}")
                continue
            outcome.ran = True
            ping = CommandCapture(result.command, 1, Outcome.OK, result.output)
            outcome.captures.setdefault(end.name, []).append(ping)
            rate = (
                f"{result.success_percent}% ({result.received}/{result.sent})"
                if result.success_percent is not None
                else "unknown"
            )
            delta = result.hits_delta
            hits = f"; crypto ACL matches +{delta}" if delta is not None else ""
            outcome.notes.append(
                f"{end.name}: `{result.command}` success rate {rate}{hits} ({result.target.how})"
            )
            if result.message:
                outcome.notes.append(f"{end.name}: {result.message}")
            outcome.changes.append(
                Change(
                    device=end.name,
                    what=result.command,
                    at=datetime.now(UTC),
                    undone=None,
                    note="traffic only; nothing to undo",
                )
            )
        return outcome

    def _clear(self, step: Step, ends: Sequence[End]) -> IntrusiveOutcome:
        outcome = IntrusiveOutcome(ran=False)
        wait = float(step.options.get("wait", DEFAULT_CLEAR_WAIT))
        for end in self._targets(step, ends):
            if not self._allowed(end, "clear SAs", outcome):
                continue
            connection = self.connect(end)
            plan = self._plans.pop(end.name, None)
            try:
                if plan is None:
                    plan = plan_clear(
                        connection,
                        end.info.peer,
                        device=end.name,
                        platform=end.info.platform,
                        known_secrets=end.known_secrets,
                    )
                result = execute_clear(
                    connection,
                    plan,
                    platform=end.info.platform,
                    wait_seconds=wait,
                    poll_interval=self.poll_interval,
                    audit=self.audit,
                    known_secrets=end.known_secrets,
                    stop=self.stop,
                    clock=self.clock,
                )
            except IpsecDoctorError as exc:
                outcome.notes.append(f"{end.name}: clear not run: {exc}")
                continue
            outcome.ran = True
            for command, status in result.ran:
                outcome.changes.append(
                    Change(
                        device=end.name,
                        what=command,
                        at=datetime.now(UTC),
                        undone=None,
                        note=f"{status}; {result.summary()}",
                    )
                )
            outcome.notes.append(result.summary())
        return outcome

    # -- the end ----------------------------------------------------------------------------------
    def undo_all(self) -> list[Change]:
        """Debug sessions are undone when their block is left; report those cut short."""
        self.stop.set()
        changes: list[Change] = []
        for item in self._running:
            if item.reported:
                continue
            self._settle(item)
            item.reported = True
            changes.append(item.change)
        return changes
