"""What every collector shares: the command-runner and clock protocols, and collection errors.

Contract:
- A :class:`CommandRunner` sends one command to one device and returns the raw text it printed
  (prompt and command echo already removed), or raises one of the :class:`CollectionError`
  subclasses below. It never classifies, redacts or builds captures: the plan runner does that
  in one place for live and offline collection alike.
- :class:`CommandTimeoutError` leaves the session usable (the next command may run);
  :class:`ConnectionLostError` means the session is gone (the plan runner may call
  :meth:`CommandRunner.reconnect` once); :class:`OutputMissingError` is the offline "no file";
  :class:`DeviceUnreachableError` / :class:`AuthenticationFailedError` /
  :class:`SshNegotiationError` stop a whole device before any command runs.
- Messages name the device and never contain a password or secret.
- A :class:`Clock` gives ``monotonic()`` and ``sleep()``: the sampling interval is waited on
  it, so tests inject a fake clock and never sleep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ipsec_doctor.errors import CollectionError
from ipsec_doctor.model.capture import Outcome


class CommandCollectionError(CollectionError):
    """One command could not be read; ``outcome`` says how it ends up in the capture."""

    outcome: Outcome = Outcome.ERROR

    def __init__(self, message: str, *, device: str = "", command: str = "") -> None:
        super().__init__(message)
        self.device = device
        self.command = command


class CommandTimeoutError(CommandCollectionError):
    """The device did not finish answering within the read timeout (session still usable)."""

    outcome = Outcome.TIMEOUT


class ConnectionLostError(CommandCollectionError):
    """The session dropped while a command ran; later commands cannot run on it."""

    outcome = Outcome.ERROR


class OutputMissingError(CommandCollectionError):
    """Offline: the capture folder holds no output for this command and sample."""

    outcome = Outcome.MISSING


class DeviceCollectionError(CollectionError):
    """A whole device could not be collected (nothing ran)."""

    def __init__(self, message: str, *, device: str = "") -> None:
        super().__init__(message)
        self.device = device


class DeviceUnreachableError(DeviceCollectionError):
    """TCP connect or SSH banner failed: host down, port closed, filtered, DNS."""


class AuthenticationFailedError(DeviceCollectionError):
    """The device refused the username/password (or the enable secret)."""


class SshNegotiationError(DeviceCollectionError):
    """SSH algorithms could not be agreed (old IOS offering only SHA-1 kex / ssh-rsa)."""


@runtime_checkable
class CommandRunner(Protocol):
    """Sends one command to one device and returns its raw output."""

    @property
    def device(self) -> str:
        """The device name used in messages."""
        ...

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        """Raw output of ``command`` (``sample`` matters only offline).

        Raises :class:`CommandTimeoutError`, :class:`ConnectionLostError` or
        :class:`OutputMissingError`.
        """
        ...

    def reconnect(self) -> bool:
        """Open a fresh session after :class:`ConnectionLostError`; ``True`` if it worked."""
        ...


class Clock(Protocol):
    """Where time comes from: the real clock live, a fake one in tests and offline."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class NoWaitClock:
    """A clock that never waits: ``sleep`` only advances its own time (offline collection)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.now += seconds


@dataclass(frozen=True)
class ProgressEvent:
    """Reported after each command (or when a device fails as a whole: ``command`` empty)."""

    device: str
    command: str
    sample: int
    outcome: Outcome | None
    message: str = ""
    waiting: float = 0.0  # > 0: the runner is about to wait this long for the second sample


class ProgressCallback(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...
