"""Where a runbook's commands run: open SSH sessions or a capture folder, one pipeline.

Contract:
- A :class:`PipelineSession` holds, per chosen device (:class:`End`), one open
  :class:`~ipsec_doctor.collect.base.CommandRunner` (netmiko live, files offline, opened on
  first use and kept open for the whole runbook) and ONE growing
  :class:`~ipsec_doctor.model.capture.DeviceCapture`. Nothing else collects or parses.
- :meth:`PipelineSession.collect` runs only the plan commands a step names, on every device
  whose platform plan has them, through :func:`~ipsec_doctor.collect.plan_runner.run_plan`
  (same redaction, refusals, sampling on the clock, per-command error handling as ``check``).
  A command already read by an earlier step is reused, not run again; ``again=True`` (re-run)
  drops the step's earlier outputs and reads them afresh, so counters that must move are
  sampled again. When a command needs a plan variable that earlier outputs do not give yet
  (``{crypto_acl}`` before ``show crypto map`` was read), or a variant whose variable is not
  known while no feature is (``{fvrf}`` before the configuration was read), or has a ``when``
  condition that no known feature decides yet, the plan's earlier single-sample commands that
  were not read yet are run first, as ``check`` would have (the configuration among them);
  those appear as the step's commands too.
- A plan command whose ``when`` features the device is known not to have is left out by the
  plan runner (nothing recorded); :meth:`PipelineSession.plan` and
  :meth:`PipelineSession.left_out` say so.
- :meth:`PipelineSession.report` re-diagnoses everything collected so far with
  :func:`~ipsec_doctor.workflow.flow.diagnose_captures`: the rules are never written twice.
- Live devices run in parallel (one thread per device); the sampling wait is interruptible:
  :meth:`PipelineSession.interrupt` (called on Ctrl-C) ends it at once.
- Intrusive steps go through an :class:`IntrusiveDriver` (the adapter over
  ``ipsec_doctor.collect.intrusive``); without one, or offline, they are unavailable with a
  reason. :meth:`PipelineSession.close` makes the driver undo whatever is still on (debugs,
  conditions) and only then closes the sessions; it reports what it undid and never raises.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ipsec_doctor.collect.base import Clock, CommandRunner, NoWaitClock
from ipsec_doctor.collect.discovery import Discovery, discover_in_folder
from ipsec_doctor.collect.file_collector import FileCommandRunner, list_devices
from ipsec_doctor.collect.plan_runner import (
    Derivation,
    PlanInfo,
    PlanStep,
    parse_layer_deriver,
    plan_info,
    run_plan,
)
from ipsec_doctor.model.capture import CaptureSet, CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.report import Report
from ipsec_doctor.runbook.io import Change, CommandRun, DeviceInfo, PlannedCommand
from ipsec_doctor.runbook.schema import Step
from ipsec_doctor.workflow.flow import diagnose_captures

_VARIABLE_FREE = ("peer",)


class InterruptibleClock:
    """The system clock, whose ``sleep`` returns early once :meth:`interrupt` was called."""

    def __init__(self, base: Clock | None = None) -> None:
        self._stop = threading.Event()
        self._base = base

    def monotonic(self) -> float:
        return self._base.monotonic() if self._base is not None else time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0 or self._stop.is_set():
            return
        if self._base is not None:
            self._base.sleep(seconds)
            return
        self._stop.wait(seconds)

    def interrupt(self) -> None:
        self._stop.set()


@dataclass
class End:
    """One chosen device: who it is, its plan, its open session and all its outputs so far."""

    info: DeviceInfo
    plan: PlanInfo
    capture: DeviceCapture
    known_secrets: tuple[str, ...] = ()
    runner: CommandRunner | None = None
    _derived_at: int = -1
    _values: dict[str, str] = field(default_factory=dict)
    _features: dict[str, bool] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name

    def _derive(self) -> None:
        if self._derived_at == len(self.capture.captures):
            return
        self._derived_at = len(self.capture.captures)
        try:
            found = parse_layer_deriver(self.capture, self.info.peer)
        except Exception:  # a parse failure only means "not derivable yet"
            found = Derivation()
        values = {k: v for k, v in found.values.items() if v}
        self._values = {"peer": self.info.peer, **values}
        self._features = dict(found.features)

    def values(self) -> dict[str, str]:
        """Plan variables derivable from the outputs so far (cached until new outputs)."""
        self._derive()
        return self._values

    def features(self) -> dict[str, bool]:
        """The device's known features (the plan's ``when`` words) from the outputs so far."""
        self._derive()
        return self._features

    def left_out(self, step: PlanStep) -> str:
        """Why the plan runner leaves ``step`` out on this device ("" when it runs): it has
        a ``when`` condition and every feature it names is known to be absent."""
        if not step.when:
            return ""
        features = self.features()
        if all(features.get(word) is False for word in step.when):
            return "the device has no " + " or ".join(step.when)
        return ""

    def render(self, step: PlanStep) -> str | None:
        """The command text of ``step`` with variables filled (its first variant whose
        variables are known, else the command), or None while a variable it needs is
        unknown."""
        return step.render(self.values())

    def outputs(self, step: PlanStep) -> list[CommandCapture]:
        """The captures that answer ``step`` so far (all samples; a MISSING record included)."""
        rendered = self.render(step)
        wanted = {" ".join(step.command.split())}
        if rendered:
            wanted.add(rendered)
        return [c for c in self.capture.captures if " ".join(c.command.split()) in wanted]

    def read(self, step: PlanStep) -> bool:
        """True when ``step`` was run and answered (anything but MISSING)."""
        return any(c.outcome is not Outcome.MISSING for c in self.outputs(step))


@dataclass
class IntrusiveOutcome:
    """What an intrusive action did: new outputs per device, changes, notes."""

    captures: dict[str, list[CommandCapture]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ran: bool = True  # False: refused or could not start (the step counts as skipped)


class IntrusiveDriver(Protocol):
    """Runs the intrusive actions of runbook steps (debug, ping, clear) with guaranteed undo."""

    def available(self, step: Step, ends: Sequence[End]) -> tuple[bool, str]:
        """Whether ``step``'s action can run on ``ends``, and why not."""
        ...

    def describe(self, step: Step, ends: Sequence[End]) -> list[str]:
        """What the action will do, device by device, including how it is undone."""
        ...

    def run(self, step: Step, ends: Sequence[End]) -> IntrusiveOutcome:
        """Do it (bounded in time) and undo it before returning, even on Ctrl-C."""
        ...

    def undo_all(self) -> list[Change]:
        """Safety net at the end: undo anything still on; what was undone."""
        ...


RunnerOpener = Callable[[End], CommandRunner]
RunnerCloser = Callable[[End], None]


class PipelineSession:
    """The runbook's view of the devices (see the module contract)."""

    def __init__(
        self,
        discovery: Discovery,
        ends: Sequence[End],
        opener: RunnerOpener,
        *,
        mode: str,
        interval: float | None,
        clock: Clock | None = None,
        closer: RunnerCloser | None = None,
        intrusive: IntrusiveDriver | None = None,
        parallel: bool = True,
        unavailable_reason: str = "",
    ) -> None:
        self.discovery = discovery
        self.ends = list(ends)
        self.mode = mode
        self.interval = interval
        self.clock: Clock = clock or (InterruptibleClock() if mode != "offline" else NoWaitClock())
        self._opener = opener
        self._closer = closer
        self.intrusive = intrusive
        self.parallel = parallel and len(self.ends) > 1
        self.unavailable_reason = unavailable_reason or (
            "intrusive steps cannot run offline (saved captures)"
            if mode == "offline"
            else "no intrusive driver"
        )
        self.started_at = datetime.now(UTC)
        self._closed = False

    # -- who --------------------------------------------------------------------------------------
    @property
    def peer(self) -> str:
        return self.discovery.peer

    @property
    def devices(self) -> tuple[DeviceInfo, ...]:
        return tuple(end.info for end in self.ends)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self.discovery.notes)

    # -- planning ---------------------------------------------------------------------------------
    def _steps(self, end: End, ids: Sequence[str]) -> list[PlanStep]:
        wanted = set(ids)
        return [s for s in end.plan.steps if s.id in wanted]

    def plan(self, step: Step) -> list[PlannedCommand]:
        """What ``step`` will run where (commands whose variables are unknown show as typed)."""
        planned: list[PlannedCommand] = []
        for end in self.ends:
            for plan_step in self._steps(end, step.commands):
                command = end.render(plan_step) or plan_step.command
                reused = end.read(plan_step) and not step.intrusive  # read afresh after it
                planned.append(
                    PlannedCommand(
                        end.name, command, plan_step.samples, reused, end.left_out(plan_step)
                    )
                )
        return planned

    def left_out(self, step: Step) -> list[str]:
        """``device: command -- why`` for each command of ``step`` the plan leaves out."""
        notes: list[str] = []
        for end in self.ends:
            for plan_step in self._steps(end, step.commands):
                why = end.left_out(plan_step)
                if why:
                    notes.append(f"{end.name}: `{plan_step.command}` left out: {why}")
        return notes

    def read_first(self, ids: Sequence[str], role: str = "local") -> None:
        """Read plan commands ``ids`` on the devices of ``role`` before any step (to choose the
        runbook); later steps reuse them."""
        for end in self.ends:
            if end.info.role == role:
                self._collect_end(end, ids, False)

    def missing_ids(self, step: Step) -> dict[str, list[str]]:
        """Device -> the step's command ids its platform plan lacks."""
        out: dict[str, list[str]] = {}
        for end in self.ends:
            known = {s.id for s in end.plan.steps}
            lacking = [i for i in step.commands if i not in known]
            if lacking:
                out[end.name] = lacking
        return out

    # -- collecting -------------------------------------------------------------------------------
    def runner_for(self, end: End) -> CommandRunner:
        """The open session of ``end`` (opened on first use)."""
        if end.runner is None:
            end.runner = self._opener(end)
        return end.runner

    def _prerequisites(self, end: End, todo: list[PlanStep]) -> list[PlanStep]:
        """Earlier unread single-sample plan steps, when a command of ``todo`` lacks a variable
        or has a ``when`` condition no known feature decides yet (the configuration decides)."""
        features = end.features()

        def undecided(step: PlanStep) -> bool:
            return bool(step.when) and all(features.get(word) is None for word in step.when)

        def unsettled(step: PlanStep) -> bool:
            """A variant's variable is unknown while nothing decided the device's features
            yet: the configuration, which decides those, chooses the form too (``check``
            reads it before the route lookups)."""
            values = end.values()
            missing = any(not values.get(name) for name in step.optional_variables)
            return missing and not features

        blocked = [s for s in todo if end.render(s) is None or undecided(s) or unsettled(s)]
        if not blocked:
            return []
        order = {s.id: i for i, s in enumerate(end.plan.steps)}
        last = max(order[s.id] for s in blocked)
        chosen = {s.id for s in todo}
        return [
            s
            for s in end.plan.steps[:last]
            if s.samples == 1 and s.id not in chosen and not end.read(s)
        ]

    def _collect_end(self, end: End, ids: Sequence[str], again: bool) -> list[CommandRun]:
        steps = self._steps(end, ids)
        reused: list[CommandRun] = []
        todo: list[PlanStep] = []
        for plan_step in steps:
            earlier = end.outputs(plan_step)
            if again or not end.read(plan_step):
                drop = {id(c) for c in earlier}
                end.capture.captures = [c for c in end.capture.captures if id(c) not in drop]
                todo.append(plan_step)
            else:
                reused.extend(_run(end.name, c, reused=True) for c in earlier)
        if not todo:
            return reused
        extra = self._prerequisites(end, todo)
        before = len(end.capture.captures)
        try:
            runner = self.runner_for(end)
        except Exception as exc:  # the device cannot be reached: every command says so
            message = str(exc)
            if not end.capture.error:
                end.capture.error = message
            return reused + [
                CommandRun(end.name, s.command, 1, Outcome.ERROR.value, error=message) for s in todo
            ]
        run_plan(
            runner,
            [*extra, *todo],
            device=end.capture,
            peer=end.info.peer,
            interval=self.interval,
            clock=self.clock,
            read_timeout=end.plan.read_timeout,
            known_secrets=end.known_secrets,
        )
        new = end.capture.captures[before:]
        # a prerequisite that could not run stays "not collected", not a problem of this step
        extra_patterns = {" ".join(s.command.split()) for s in extra}
        end.capture.captures = end.capture.captures[:before] + [
            c
            for c in new
            if not (c.outcome is Outcome.MISSING and " ".join(c.command.split()) in extra_patterns)
        ]
        new = end.capture.captures[before:]
        return reused + [_run(end.name, c) for c in new]

    def collect(self, step: Step, *, again: bool = False) -> list[CommandRun]:
        """Run ``step``'s commands on every device (see the module contract)."""
        if not step.commands:
            return []
        if not self.parallel:
            runs: list[CommandRun] = []
            for end in self.ends:
                runs.extend(self._collect_end(end, step.commands, again))
            return runs
        pool = ThreadPoolExecutor(max_workers=len(self.ends), thread_name_prefix="runbook")
        try:
            futures = [pool.submit(self._collect_end, e, step.commands, again) for e in self.ends]
            results = [f.result() for f in futures]
        except BaseException:
            # Ctrl-C: end the sampling waits now; do not wait for commands still running
            # (closing the sessions ends them)
            self.interrupt()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return [run for result in results for run in result]

    def add_captures(self, captures: dict[str, list[CommandCapture]]) -> list[CommandRun]:
        """Outputs an intrusive action produced (debug lines, ping): part of the diagnosis now."""
        runs: list[CommandRun] = []
        for end in self.ends:
            for capture in captures.get(end.name, ()):
                end.capture.captures.append(capture)
                runs.append(_run(end.name, capture, intrusive=True))
        return runs

    # -- diagnosing -------------------------------------------------------------------------------
    def capture_set(self) -> CaptureSet:
        return CaptureSet(
            devices={end.name: end.capture for end in self.ends},
            peer=self.peer,
            started_at=self.started_at,
        )

    def report(self) -> Report:
        """The diagnosis of everything read so far (the same function as ``check``)."""
        return diagnose_captures(
            self.capture_set(), self.discovery, mode="runbook", notes=self.discovery.notes
        )

    def attempted(self) -> set[tuple[str, str]]:
        """(device, command) of every command run so far, whatever its outcome."""
        return {
            (end.name, " ".join(c.command.split()))
            for end in self.ends
            for c in end.capture.captures
        }

    def not_read(self) -> list[str]:
        """``device: command`` of every plan command never read (stages not fully judged);
        commands the plan leaves out on that device are not listed."""
        out: list[str] = []
        for end in self.ends:
            for plan_step in end.plan.steps:
                if not end.read(plan_step) and not end.left_out(plan_step):
                    out.append(f"{end.name}: {end.render(plan_step) or plan_step.command}")
        return out

    # -- intrusive --------------------------------------------------------------------------------
    def intrusive_available(self, step: Step) -> tuple[bool, str]:
        if self.intrusive is None:
            return False, self.unavailable_reason
        return self.intrusive.available(step, self.ends)

    def intrusive_plan(self, step: Step) -> list[str]:
        if self.intrusive is None:
            return []
        return self.intrusive.describe(step, self.ends)

    def run_intrusive(self, step: Step) -> IntrusiveOutcome:
        if self.intrusive is None:
            return IntrusiveOutcome(ran=False, notes=[self.unavailable_reason])
        return self.intrusive.run(step, self.ends)

    # -- ending -----------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """Ctrl-C: end any sampling wait at once."""
        interrupt = getattr(self.clock, "interrupt", None)
        if callable(interrupt):
            interrupt()

    def close(self) -> list[Change]:
        """Undo anything intrusive still on, then close every session. Never raises."""
        if self._closed:
            return []
        self._closed = True
        changes: list[Change] = []
        if self.intrusive is not None:
            try:
                changes = self.intrusive.undo_all()
            except Exception as exc:  # report it; the sessions must still be closed
                changes = [
                    Change(
                        device="*",
                        what="undo of intrusive steps",
                        at=datetime.now(UTC),
                        undone=False,
                        note=f"FAILED: {type(exc).__name__}: {exc}",
                    )
                ]
        for end in self.ends:
            if end.runner is not None and self._closer is not None:
                # a dead session may fail to close: nothing left to do then
                with contextlib.suppress(Exception):
                    self._closer(end)
            end.runner = None
        return changes


def _run(
    device: str, capture: CommandCapture, *, reused: bool = False, intrusive: bool = False
) -> CommandRun:
    return CommandRun(
        device=device,
        command=capture.command,
        sample=capture.sample,
        outcome=capture.outcome.value,
        raw=capture.raw,
        error=capture.error,
        reused=reused,
        intrusive=intrusive,
    )


def make_end(
    info: DeviceInfo, *, hostname: str = "", host: str = "", secrets: Sequence[str] = ()
) -> End:
    """An :class:`End` for ``info`` with an empty capture and its platform's plan."""
    return End(
        info=info,
        plan=plan_info(info.platform),
        capture=DeviceCapture(
            name=info.name,
            platform=info.platform,
            hostname=hostname,
            host=host,
            started_at=datetime.now(UTC),
        ),
        known_secrets=tuple(s for s in secrets if s),
    )


def folder_session(
    folder: Path,
    peer: str,
    *,
    device: str | None = None,
    interval: float | None = 0.0,
    opener: RunnerOpener | None = None,
    intrusive: IntrusiveDriver | None = None,
) -> PipelineSession:
    """A session over a capture folder (``--captures DIR``): devices chosen as ``analyze`` does.

    ``opener`` defaults to a :class:`~ipsec_doctor.collect.file_collector.FileCommandRunner`
    per device (tests pass their own to inject faults). Intrusive steps are unavailable unless
    a driver is given.
    """
    discovery = discover_in_folder(folder, peer, device=device)
    devices = {d.name: d for d in list_devices(folder)}
    ends = [
        make_end(
            DeviceInfo(c.device, c.role, c.peer, devices[c.device].platform, c.reason),
            hostname=devices[c.device].hostname,
            secrets=devices[c.device].secrets,
        )
        for c in discovery.chosen
    ]

    def files(end: End) -> CommandRunner:
        found = devices[end.name]
        return FileCommandRunner(
            found.directory,
            device=end.name,
            wider_patterns=end.plan.wider_patterns,
            recorded=found.recorded,
        )

    return PipelineSession(
        discovery,
        ends,
        opener or files,
        mode=f"offline over captures in {folder}",
        interval=interval,
        parallel=False,
        intrusive=intrusive,
        unavailable_reason="offline: intrusive steps cannot run on saved captures",
    )
