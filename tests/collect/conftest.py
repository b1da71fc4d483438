"""Fakes shared by the collect tests: a clock that never sleeps and a scripted command runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from ipsec_doctor.collect.base import ConnectionLostError


@dataclass
class FakeClock:
    """Time moves only when a command runs (``tick``) or someone sleeps."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


Answer = str | BaseException | Callable[[int], str]


@dataclass
class FakeRunner:
    """Answers commands from a dict; each command costs ``cost`` seconds of fake time.

    A value may be text, an exception to raise, or a callable of the sample number.
    ``drop_after`` raises ConnectionLostError for every command after that many calls.
    """

    answers: dict[str, Answer]
    clock: FakeClock
    cost: float = 1.0
    device: str = "R1"
    drop_after: int | None = None
    reconnect_ok: bool = False
    calls: list[tuple[str, int, float]] = field(default_factory=list)
    reconnects: int = 0

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        self.calls.append((command, sample, self.clock.now))
        self.clock.now += self.cost
        if self.drop_after is not None and len(self.calls) > self.drop_after:
            raise ConnectionLostError(f"{self.device}: connection lost", device=self.device)
        answer = self.answers.get(command, "")
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(sample)
        return answer

    def reconnect(self) -> bool:
        self.reconnects += 1
        if self.reconnect_ok:
            self.drop_after = None
        return self.reconnect_ok


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
