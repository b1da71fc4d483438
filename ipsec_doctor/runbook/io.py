"""What the runbook engine shows and asks, as data, and the IO protocol that does it.

Contract:
- The engine never prints nor reads a terminal: it hands :class:`StepPreview`,
  :class:`StepResult` and :class:`Conclusion` objects to a :class:`RunbookIO` and gets an
  :class:`Action` back. :class:`~ipsec_doctor.runbook.terminal.TerminalIO` implements it for a
  person at a terminal; tests implement it with scripted answers.
- :meth:`RunbookIO.ask` is called after every step that ran; it returns one of the actions
  offered (``NEXT``, ``RERUN``, ``RAW``, ``SKIP``, ``BACK``, ``QUIT``).
  :meth:`RunbookIO.confirm_intrusive` is called before an intrusive step; it returns ``RUN``
  only when the person agreed after reading the risk, else ``SKIP``, ``BACK`` or ``QUIT``.
- A ``KeyboardInterrupt`` raised by an IO method (Ctrl-C at a prompt) is handled by the engine
  like one raised while commands run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ipsec_doctor.model.findings import Code, Finding
from ipsec_doctor.runbook.schema import Outcome, Runbook, Step


class Action(StrEnum):
    """What the person chose at a prompt."""

    NEXT = "next"  # go on to the step the tree chooses
    RERUN = "rerun"  # run the step's commands again (counters are sampled again)
    RAW = "raw"  # show the raw output of the step's commands, then ask again
    SKIP = "skip"  # leave the step without its verdict (outcome "skipped")
    BACK = "back"  # return to the previous step
    QUIT = "quit"  # stop here: conclusion and transcript from what was read so far
    RUN = "run"  # run the intrusive step (only from confirm_intrusive)


#: The actions offered after a step ran, in the order they are listed.
AFTER_STEP: tuple[Action, ...] = (
    Action.NEXT,
    Action.RERUN,
    Action.RAW,
    Action.SKIP,
    Action.BACK,
    Action.QUIT,
)


@dataclass(frozen=True)
class DeviceInfo:
    """One device the runbook works on."""

    name: str
    role: str  # local / remote
    peer: str  # the peer it is checked for
    platform: str
    reason: str = ""  # why it was chosen


@dataclass(frozen=True)
class Intro:
    """What is shown once, before the first step."""

    runbook: Runbook
    peer: str
    mode: str  # live / offline / lab
    devices: tuple[DeviceInfo, ...]
    notes: tuple[str, ...] = ()
    transcript_path: str = ""


@dataclass(frozen=True)
class PlannedCommand:
    """A command a step will run on one device (or reuse from an earlier step)."""

    device: str
    command: str
    samples: int = 1
    reused: bool = False  # already read by an earlier step: not run again
    left_out: str = ""  # why the plan leaves it out on this device ("": it runs)


@dataclass(frozen=True)
class StepPreview:
    """A step about to run: its text, and what it will run where."""

    number: int  # 1-based position on the current path
    step: Step
    planned: tuple[PlannedCommand, ...]
    intrusive_plan: tuple[str, ...] = ()  # for an intrusive step: what it will do per device
    available: bool = True  # False: the intrusive step cannot run here (offline, no module)
    unavailable_reason: str = ""


@dataclass(frozen=True)
class CommandRun:
    """One command as run (or reused) for a step: its outcome and raw text."""

    device: str
    command: str
    sample: int
    outcome: str  # the capture's Outcome value: ok, rejected, timeout, error, missing
    raw: str = ""
    error: str = ""
    reused: bool = False
    intrusive: bool = False  # produced by the intrusive action (debug output, ping)


@dataclass(frozen=True)
class Change:
    """Something the runbook changed on a device, and whether it was undone."""

    device: str
    what: str  # e.g. "debug crypto isakmp", "clear crypto sa peer 10.2.2.1"
    at: datetime
    undo: str = ""  # the command that undid it ("" when nothing needs undoing)
    undone: bool | None = None  # True undone, False NOT undone, None nothing to undo
    note: str = ""


@dataclass
class StepResult:
    """One visit of one step: what ran, what the diagnosis says, where the tree goes."""

    number: int
    step: Step
    started_at: datetime
    finished_at: datetime | None = None
    commands: list[CommandRun] = field(default_factory=list)
    verdict: list[Finding] = field(default_factory=list)  # this step's findings
    others: list[Finding] = field(default_factory=list)  # failures seen elsewhere so far
    outcome: Outcome = Outcome.UNKNOWN
    ruled_out: list[Code] = field(default_factory=list)
    next_step: str = ""
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: int = 0  # how many times its commands ran (re-runs count)
    actions: list[str] = field(default_factory=list)  # what the person chose, in order

    @property
    def answer(self) -> str:
        """The last action taken at this step ("" while it is still open)."""
        return self.actions[-1] if self.actions else ""

    @property
    def failure_codes(self) -> list[Code]:
        return [f.code for f in self.verdict if f.code not in _NOT_FAILURES]


_NOT_FAILURES = frozenset({Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY})


@dataclass(frozen=True)
class Conclusion:
    """How the runbook ended and what it found."""

    ended: str  # completed / quit / interrupted / error
    root_cause: Finding | None  # the first failure of the chain (posture findings excepted)
    findings: tuple[Finding, ...]  # the final diagnosis, without "not read yet" data gaps
    not_read: tuple[str, ...] = ()  # plan commands never read (their stages not fully judged)
    changes: tuple[Change, ...] = ()
    transcript_path: str = ""
    message: str = ""


class RunbookIO(Protocol):
    """How the engine talks to the person (see the module contract)."""

    def show_intro(self, intro: Intro) -> None:
        """The runbook, the devices and why they were chosen, the keys."""
        ...

    def show_step(self, preview: StepPreview) -> None:
        """A step's title and text and what it will run where."""
        ...

    def confirm_intrusive(self, preview: StepPreview) -> Action:
        """Explain the risk of an intrusive step; RUN, SKIP, BACK or QUIT."""
        ...

    def show_result(self, result: StepResult) -> None:
        """The evidence lines and the verdict of a step that ran."""
        ...

    def show_raw(self, result: StepResult) -> None:
        """The raw output of every command of the step."""
        ...

    def ask(self, result: StepResult, choices: Sequence[Action]) -> Action:
        """What to do next; one of ``choices``."""
        ...

    def show_conclusion(self, conclusion: Conclusion) -> None:
        """The root cause, the fix, what was changed on the devices, where the transcript is."""
        ...

    def message(self, text: str) -> None:
        """A one-line notice (progress, a refused choice)."""
        ...
