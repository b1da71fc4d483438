"""Helpers for runbook tests: a scripted IO, sessions over bundled scenarios, fault injection."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ipsec_doctor.collect.base import CommandRunner
from ipsec_doctor.collect.file_collector import FileCommandRunner, list_devices
from ipsec_doctor.model.capture import CommandCapture, Outcome
from ipsec_doctor.resources import data_dir
from ipsec_doctor.runbook.engine import RunbookEngine, RunbookRun
from ipsec_doctor.runbook.io import (
    Action,
    Change,
    Conclusion,
    Intro,
    StepPreview,
    StepResult,
)
from ipsec_doctor.runbook.schema import Runbook, Step, find_runbook, load_runbook_file
from ipsec_doctor.runbook.session import End, IntrusiveOutcome, PipelineSession, folder_session

INTERRUPT = "^C"


def scenario(name: str) -> Path:
    return data_dir("scenarios") / name


def crypto_map() -> Runbook:
    return load_runbook_file(find_runbook("crypto-map"))


@dataclass
class ScriptedIO:
    """A RunbookIO answering from a script: an Action, a key word, or "^C" (Ctrl-C).

    Every call is recorded in ``events`` as (kind, payload). When the script runs out it
    answers NEXT to steps and SKIP to intrusive confirmations.
    """

    script: list[Any] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)

    def _answer(self, default: Action) -> Action:
        if not self.script:
            return default
        answer = self.script.pop(0)
        if answer == INTERRUPT:
            raise KeyboardInterrupt
        return answer if isinstance(answer, Action) else Action(answer)

    def show_intro(self, intro: Intro) -> None:
        self.events.append(("intro", intro))

    def show_step(self, preview: StepPreview) -> None:
        self.events.append(("step", preview))

    def confirm_intrusive(self, preview: StepPreview) -> Action:
        self.events.append(("confirm", preview))
        return self._answer(Action.SKIP)

    def show_result(self, result: StepResult) -> None:
        self.events.append(("result", result))

    def show_raw(self, result: StepResult) -> None:
        self.events.append(("raw", result))

    def ask(self, result: StepResult, choices: Sequence[Action]) -> Action:
        self.events.append(("ask", result.step.id))
        return self._answer(Action.NEXT)

    def show_conclusion(self, conclusion: Conclusion) -> None:
        self.events.append(("conclusion", conclusion))

    def message(self, text: str) -> None:
        self.events.append(("message", text))

    def kinds(self, kind: str) -> list[Any]:
        return [payload for k, payload in self.events if k == kind]

    @property
    def steps_shown(self) -> list[str]:
        return [p.step.id for p in self.kinds("step")]


class FaultyRunner:
    """A FileCommandRunner that raises ``error`` when a command containing ``on`` runs."""

    def __init__(self, inner: FileCommandRunner, on: str, error: BaseException) -> None:
        self.inner = inner
        self.on = on
        self.error = error
        self.ran: list[str] = []

    @property
    def device(self) -> str:
        return self.inner.device

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        self.ran.append(command)
        if self.on in command:
            raise self.error
        return self.inner.run(command, sample=sample, read_timeout=read_timeout)

    def reconnect(self) -> bool:
        return False


def files_opener(folder: Path, wrap: Callable[[FileCommandRunner], CommandRunner] | None = None):
    devices = {d.name: d for d in list_devices(folder)}

    def opener(end: End) -> CommandRunner:
        found = devices[end.name]
        runner = FileCommandRunner(
            found.directory, device=end.name, wider_patterns=end.plan.wider_patterns
        )
        return wrap(runner) if wrap is not None else runner

    return opener


@dataclass
class FakeDriver:
    """An IntrusiveDriver that records calls; ``interrupt`` makes run() raise Ctrl-C midway."""

    lines: dict[str, str] = field(
        default_factory=lambda: {"R1": "ISAKMP:(0):atts are not acceptable. Next payload is 0"}
    )
    interrupt: bool = False
    runs: list[str] = field(default_factory=list)
    undo_calls: int = 0
    pending: list[Change] = field(default_factory=list)
    can_run: bool = True

    def available(self, step: Step, ends: Sequence[End]) -> tuple[bool, str]:
        return (True, "") if self.can_run else (False, "not here")

    def describe(self, step: Step, ends: Sequence[End]) -> list[str]:
        return [f"{end.name}: fake {step.action}" for end in ends]

    def run(self, step: Step, ends: Sequence[End]) -> IntrusiveOutcome:
        self.runs.append(step.id)
        change = Change("R1", f"fake {step.action}", datetime.now(UTC), undo="fake undo")
        if self.interrupt:
            self.pending.append(change)
            raise KeyboardInterrupt
        captures = {
            name: [CommandCapture(f"debug crypto {step.action}", 1, Outcome.OK, text + "\n")]
            for name, text in self.lines.items()
        }
        return IntrusiveOutcome(
            captures=captures,
            changes=[Change("R1", f"fake {step.action}", datetime.now(UTC), "fake undo", True)],
            notes=["fake ran"],
        )

    def undo_all(self) -> list[Change]:
        self.undo_calls += 1
        done = [
            Change(c.device, c.what, c.at, c.undo, True, "undone at the end") for c in self.pending
        ]
        self.pending.clear()
        return done


def session_for(
    name: str,
    *,
    wrap: Callable[[FileCommandRunner], CommandRunner] | None = None,
    driver: Any = None,
) -> PipelineSession:
    folder = scenario(name)
    return folder_session(
        folder, "10.2.2.1", opener=files_opener(folder, wrap) if wrap else None, intrusive=driver
    )


def walk(
    name: str,
    script: Iterable[Any] = (),
    *,
    tmp_path: Path,
    runbook: Runbook | None = None,
    wrap: Callable[[FileCommandRunner], CommandRunner] | None = None,
    driver: Any = None,
) -> tuple[RunbookRun, ScriptedIO, PipelineSession]:
    io = ScriptedIO(list(script))
    session = session_for(name, wrap=wrap, driver=driver)
    engine = RunbookEngine(
        runbook or crypto_map(),
        session,
        io,
        transcript_path=tmp_path / "transcript.md",
        user="tester",
    )
    return engine.run(), io, session


@pytest.fixture
def audit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Intrusive steps write their audit log here, never into the home directory."""
    state = tmp_path / "state"
    monkeypatch.setenv("IPSEC_DOCTOR_STATE_DIR", str(state))
    return state
