"""The runbook engine: walk the steps, run them through the pipeline, ask, conclude, record.

Contract:
- :class:`RunbookEngine` walks a validated :class:`~ipsec_doctor.runbook.schema.Runbook` from
  its ``start`` step. For each step it shows the text and what will run
  (:meth:`RunbookIO.show_step`), runs the step's commands on the open sessions
  (:meth:`PipelineSession.collect`), re-diagnoses everything read so far
  (:meth:`PipelineSession.report`), shows the verdict (:meth:`RunbookIO.show_result`) and asks
  what to do (:meth:`RunbookIO.ask`): next (the step the tree chooses), re-run, raw output,
  skip, back, quit.
- Intrusive steps are never run without :meth:`RunbookIO.confirm_intrusive` returning ``RUN``
  (asked again on every re-run); when they cannot run (offline, no driver) they are shown
  with the reason and count as skipped.
- The verdict of a step (:func:`judge`) is made of the findings of the diagnosis whose
  ``reference`` is one of the step's references or whose code the step ``confirms``, plus the
  INSUFFICIENT_DATA findings about commands this step ran. INSUFFICIENT_DATA about commands
  the runbook has not run yet is never shown: it only means "not read yet". Outcome: ``found``
  when the verdict holds a failure; ``unknown`` when it holds INSUFFICIENT_DATA, when a
  command of the step did not answer, or when a critical failure of an earlier stage masks the
  step's stage (as the diagnosis masks: a data-plane failure does not mask routing);
  ``clear`` otherwise, and then the step's ``rules_out`` codes not found anywhere are ruled
  out.
- The conclusion's root cause is the first failure of the final diagnosis in report order,
  posture (audit) findings excepted; INSUFFICIENT_DATA about commands never run is left out.
- However it ends -- the last step, quit, Ctrl-C at any point (``KeyboardInterrupt``), or an
  unexpected error -- the engine interrupts any sampling wait, closes the session (which
  undoes every debug still on before the sessions close), builds the conclusion from
  everything read, writes the Markdown transcript (when a path was given) and shows the
  conclusion. A second Ctrl-C during that clean-up is deferred, not obeyed. Unexpected errors
  are re-raised after the transcript is written.
"""

from __future__ import annotations

import contextlib
import getpass
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from ipsec_doctor.model.findings import STAGE_ORDER, Code, Finding, Severity, Stage
from ipsec_doctor.model.report import Report
from ipsec_doctor.runbook.io import (
    AFTER_STEP,
    Action,
    Change,
    CommandRun,
    Conclusion,
    Intro,
    RunbookIO,
    StepPreview,
    StepResult,
)
from ipsec_doctor.runbook.schema import END, Outcome, Runbook, Step
from ipsec_doctor.runbook.session import PipelineSession
from ipsec_doctor.runbook.transcript import TranscriptMeta, render_transcript

_NOT_FAILURES = frozenset({Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY})
_CHAIN = tuple(s for s in STAGE_ORDER if s is not Stage.AUDIT)


def _norm(command: str) -> str:
    return " ".join(command.split())


def is_failure(finding: Finding) -> bool:
    """A finding that says something is wrong (not INSUFFICIENT_DATA, not TUNNEL_HEALTHY)."""
    return finding.code not in _NOT_FAILURES and finding.severity is not Severity.OK


def _stage_of(reference: str) -> Stage | None:
    try:
        stage = Stage(reference.partition(".")[0])
    except ValueError:
        return None
    return stage if stage in _CHAIN else None


def step_stage(step: Step) -> Stage | None:
    """The earliest chain stage among the step's references (None for audit/meta only)."""
    stages = [s for s in (_stage_of(r) for r in step.references) if s is not None]
    return min(stages, key=_CHAIN.index) if stages else None


def finding_commands(finding: Finding) -> list[tuple[str, str]] | None:
    """(device, command) pairs an INSUFFICIENT_DATA finding is about; None if not about commands.

    One command (``detail["command"]``), or the commands skipped together for an underivable
    plan variable (``detail["commands"]``, each with its ``command``).
    """
    detail = finding.detail if isinstance(finding.detail, dict) else {}
    device = (finding.evidence[0].device if finding.evidence else "") or finding.device
    command = detail.get("command")
    if isinstance(command, str) and command:
        return [(device, _norm(command))]
    grouped = detail.get("commands")
    if isinstance(grouped, list):
        found = [
            (device, _norm(item["command"]))
            for item in grouped
            if isinstance(item, dict) and isinstance(item.get("command"), str)
        ]
        return found or None
    return None


def unread_gap(finding: Finding, attempted: set[tuple[str, str]]) -> bool:
    """INSUFFICIENT_DATA that only says commands were not run (yet): none of them was run."""
    if finding.code is not Code.INSUFFICIENT_DATA:
        return False
    about = finding_commands(finding)
    return about is not None and not any(item in attempted for item in about)


@dataclass
class Verdict:
    """What :func:`judge` decided for one step."""

    findings: list[Finding]
    others: list[Finding]
    outcome: Outcome
    ruled_out: list[Code] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def judge(step: Step, report: Report, runs: list[CommandRun]) -> Verdict:
    """The verdict of ``step`` from the diagnosis ``report`` and the step's command runs."""
    ran = {(r.device, _norm(r.command)) for r in runs}
    mine: list[Finding] = []
    for finding in report.findings:
        if finding.code is Code.INSUFFICIENT_DATA:
            about = finding_commands(finding)
            if about is not None:  # a gap about commands: this step's if it ran one of them
                if any(item in ran for item in about):
                    mine.append(finding)
                continue
        if finding.reference in step.references or finding.code in step.confirms:
            mine.append(finding)
    failures = [f for f in mine if is_failure(f)]
    others = [f for f in report.findings if is_failure(f) and f not in mine]
    notes: list[str] = []
    if failures:
        return Verdict(mine, others, Outcome.FOUND)
    stage = step_stage(step)
    if stage is not None:
        earlier = [
            f
            for f in others
            if f.severity is Severity.CRITICAL
            and f.stage in _CHAIN
            and _CHAIN.index(f.stage) < _CHAIN.index(stage)
            # as in the diagnosis: a data-plane failure does not mask routing, it needs it
            and not (f.stage is Stage.DATA and stage is Stage.ROUTING)
        ]
        if earlier:
            notes.append(
                f"not judged: {earlier[0].code.value} ({earlier[0].stage.value} stage) comes "
                f"first, and a tunnel that fails there never reaches the {stage.value} stage"
            )
            return Verdict(mine, others, Outcome.UNKNOWN, notes=notes)
    failed = [r for r in runs if r.outcome != "ok"]
    if failed:
        for run in failed:
            why = run.error or run.outcome
            notes.append(f"{run.device}: `{run.command}` {run.outcome}: {why}")
    if failed or any(f.code is Code.INSUFFICIENT_DATA for f in mine):
        return Verdict(mine, others, Outcome.UNKNOWN, notes=notes)
    if not runs:
        return Verdict(mine, others, Outcome.SKIPPED, notes=["nothing was run"])
    found = {f.code for f in report.findings}
    ruled_out = [c for c in step.rules_out if c not in found]
    return Verdict(mine, others, Outcome.CLEAR, ruled_out=ruled_out)


@contextlib.contextmanager
def deferred_sigint() -> Iterator[list[int]]:
    """While inside, Ctrl-C is recorded instead of raising (main thread only)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class RunbookRun:
    """The end of one runbook: how it ended, the conclusion, the final diagnosis, the log."""

    ended: str  # completed / quit / interrupted / error
    conclusion: Conclusion
    report: Report | None
    visits: list[StepResult]
    transcript_path: Path | None = None


class _QuitRequestedError(Exception):
    """The engineer chose quit."""


class RunbookEngine:
    """Walks one runbook over one session (see the module contract)."""

    def __init__(
        self,
        runbook: Runbook,
        session: PipelineSession,
        io: RunbookIO,
        *,
        transcript_path: Path | None = None,
        user: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.runbook = runbook
        self.session = session
        self.io = io
        self.transcript_path = transcript_path
        self.user = user if user is not None else current_user()
        self.now = now or (lambda: datetime.now(UTC))
        self.visits: list[StepResult] = []
        self.path: list[StepResult] = []

    # -- one step ---------------------------------------------------------------------------------
    def _preview(self, step: Step) -> StepPreview:
        available, reason = (True, "")
        intrusive_plan: tuple[str, ...] = ()
        if step.intrusive:
            available, reason = self.session.intrusive_available(step)
            if available:
                intrusive_plan = tuple(self.session.intrusive_plan(step))
        planned = tuple(self.session.plan(step)) if available else ()
        return StepPreview(
            number=len(self.path) + 1,
            step=step,
            planned=planned,
            intrusive_plan=intrusive_plan,
            available=available,
            unavailable_reason=reason,
        )

    def _run_intrusive(self, result: StepResult, preview: StepPreview) -> Action | None:
        """Confirm and run the intrusive action; an action to act on instead, or None."""
        step = result.step
        if not preview.available:
            result.notes.append(f"not run: {preview.unavailable_reason}")
            return None
        answer = self.io.confirm_intrusive(preview)
        if answer is not Action.RUN:
            result.notes.append("not run: the engineer declined the intrusive step")
            if answer is Action.SKIP:
                return None
            result.outcome = Outcome.SKIPPED
            result.next_step = step.next_step(Outcome.SKIPPED)
            result.finished_at = self.now()
            return answer
        result.actions.append("confirmed")
        outcome = self.session.run_intrusive(step)
        result.changes.extend(outcome.changes)
        result.notes.extend(outcome.notes)
        result.commands.extend(self.session.add_captures(outcome.captures))
        return None

    def _evaluate(self, result: StepResult, *, again: bool) -> None:
        step = result.step
        intrusive_ran = any(c.intrusive for c in result.commands)
        if step.intrusive and not intrusive_ran:
            result.outcome = Outcome.SKIPPED
            result.next_step = step.next_step(Outcome.SKIPPED)
            result.finished_at = self.now()
            return
        # after an intrusive action the state changed: its commands are read afresh
        result.commands.extend(self.session.collect(step, again=again or step.intrusive))
        result.runs += 1
        for device, ids in self.session.missing_ids(step).items():
            result.notes.append(f"{device}: its platform plan has no {', '.join(ids)}")
        result.notes.extend(self.session.left_out(step))
        verdict = judge(step, self.session.report(), result.commands)
        result.verdict = verdict.findings
        result.others = verdict.others
        result.outcome = verdict.outcome
        result.ruled_out = verdict.ruled_out
        result.notes.extend(verdict.notes)
        result.next_step = step.next_step(verdict.outcome, result.failure_codes)
        result.finished_at = self.now()

    def _start_step(self, step: Step) -> tuple[StepResult, Action | None]:
        preview = self._preview(step)
        self.io.show_step(preview)
        result = StepResult(number=preview.number, step=step, started_at=self.now())
        self.visits.append(result)
        decided: Action | None = None
        if step.intrusive:
            decided = self._run_intrusive(result, preview)
            if decided is not None:
                return result, decided
        self._evaluate(result, again=False)
        self.io.show_result(result)
        return result, None

    def _rerun(self, result: StepResult) -> Action | None:
        step = result.step
        result.verdict, result.others, result.ruled_out, result.notes = [], [], [], []
        if step.intrusive:
            preview = self._preview(step)
            self.io.show_step(preview)
            decided = self._run_intrusive(result, preview)
            if decided is not None:
                return decided
        result.commands = [c for c in result.commands if c.intrusive]
        self._evaluate(result, again=True)
        self.io.show_result(result)
        return None

    # -- the walk ---------------------------------------------------------------------------------
    def _walk(self) -> None:
        current = self.runbook.start
        revisit: StepResult | None = None
        while current != END:
            step = self.runbook.step(current)
            decided: Action | None
            if revisit is not None:
                result, decided = revisit, None
                revisit = None
                self.io.show_step(self._preview(step))
                self.io.show_result(result)
            else:
                result, decided = self._start_step(step)
            while True:
                action = decided or self.io.ask(result, AFTER_STEP)
                decided = None
                if action is Action.RAW:
                    result.actions.append("raw")
                    self.io.show_raw(result)
                    continue
                if action is Action.RERUN:
                    result.actions.append("rerun")
                    decided = self._rerun(result)
                    continue
                if action is Action.BACK:
                    if not self.path:
                        self.io.message("This is the first step; there is no step to go back to.")
                        continue
                    result.actions.append("back")
                    revisit = self.path.pop()
                    current = revisit.step.id
                    break
                if action is Action.QUIT:
                    result.actions.append("quit")
                    if result not in self.path:
                        self.path.append(result)
                    raise _QuitRequestedError
                if action is Action.SKIP:
                    result.actions.append("skip")
                    result.outcome = Outcome.SKIPPED
                    result.ruled_out = []
                    result.next_step = step.next_step(Outcome.SKIPPED)
                else:  # NEXT (and RUN, which only confirm_intrusive offers)
                    result.actions.append("next")
                self.path.append(result)
                current = result.next_step or END
                break

    def run(self) -> RunbookRun:
        """Walk the runbook to its end (see the module contract); never leaves debugs on."""
        started = self.now()
        ended = "completed"
        failure: BaseException | None = None
        try:
            self.io.show_intro(
                Intro(
                    runbook=self.runbook,
                    peer=self.session.peer,
                    mode=self.session.mode,
                    devices=self.session.devices,
                    notes=self.session.notes,
                    transcript_path=str(self.transcript_path or ""),
                )
            )
            self._walk()
        except _QuitRequestedError:
            ended = "quit"
        except KeyboardInterrupt:
            ended = "interrupted"
            self.session.interrupt()
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self.io.message(
                    "\nInterrupted: turning off anything the runbook turned on, closing the "
                    "sessions and writing the transcript."
                )
            if self.visits and not self.visits[-1].finished_at:
                self.visits[-1].finished_at = self.now()
            if self.visits:
                self.visits[-1].actions.append("interrupted (Ctrl-C)")
        except Exception as exc:  # record what happened, then let the CLI report the bug
            ended = "error"
            failure = exc
        with deferred_sigint():
            return self._finish(started, ended, failure)

    def _finish(self, started: datetime, ended: str, failure: BaseException | None) -> RunbookRun:
        undone = self.session.close()
        report: Report | None = None
        message = ""
        try:
            report = self.session.report()
        except Exception as exc:  # the transcript must still be written
            message = f"the final diagnosis failed: {type(exc).__name__}: {exc}"
        if failure is not None:
            message = f"stopped by an error: {type(failure).__name__}: {failure}"
        conclusion = self._conclusion(report, ended, undone, message)
        if self.transcript_path is not None:
            meta = TranscriptMeta(
                runbook=self.runbook,
                peer=self.session.peer,
                mode=self.session.mode,
                user=self.user,
                started_at=started,
                finished_at=self.now(),
                devices=self.session.devices,
                notes=self.session.notes,
            )
            text = render_transcript(meta, self.visits, self.path, conclusion)
            try:
                self.transcript_path.parent.mkdir(parents=True, exist_ok=True)
                self.transcript_path.write_text(text, encoding="utf-8")
            except OSError as exc:
                conclusion = replace(
                    conclusion,
                    transcript_path="",
                    message=f"could not write the transcript: {exc}",
                )
        with contextlib.suppress(Exception):
            self.io.show_conclusion(conclusion)
        if failure is not None:
            raise failure
        return RunbookRun(
            ended=ended,
            conclusion=conclusion,
            report=report,
            visits=self.visits,
            transcript_path=self.transcript_path if conclusion.transcript_path else None,
        )

    def _conclusion(
        self, report: Report | None, ended: str, undone: list[Change], message: str
    ) -> Conclusion:
        changes = [c for visit in self.visits for c in visit.changes]
        changes += undone
        findings: tuple[Finding, ...] = ()
        if report is not None:
            attempted = self.session.attempted()
            findings = tuple(f for f in report.findings if not unread_gap(f, attempted))
        # posture findings (weak crypto) are reported, but they are not why a tunnel is down
        failures = [f for f in findings if is_failure(f) and f.stage is not Stage.AUDIT]
        return Conclusion(
            ended=ended,
            root_cause=failures[0] if failures else None,
            findings=findings,
            not_read=tuple(self.session.not_read()),
            changes=tuple(changes),
            transcript_path=str(self.transcript_path) if self.transcript_path else "",
            message=message,
        )


def current_user() -> str:
    """The login name for the transcript ("unknown" when the system cannot say)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container: say so rather than fail
        return "unknown"
