"""The device session the intrusive steps type on, and signal handling while they run.

Contract:
- :class:`IntrusiveCli` is what the intrusive steps need from a session: ``send`` one command
  and get its output (errors translated by :func:`~ipsec_doctor.collect.netmiko_errors.
  command_error`: :class:`~ipsec_doctor.collect.base.CommandTimeoutError`,
  :class:`~ipsec_doctor.collect.base.ConnectionLostError`, ...), ``read_pending`` what the
  device printed unasked (``terminal monitor`` output), ``resync`` back to a clean prompt
  after an interruption, and ``close``.
- :class:`NetmikoCli` adapts a logged-in, enabled netmiko ``BaseConnection``: it finds the
  prompt once and sends each command with ``send_command(expect_string=<the prompt at a line
  start>)`` so that debug lines printed after a prompt on a monitor session do not hide it.
  It refuses (UsageError) any command that would enter configuration mode.
- :func:`as_cli` accepts a ``BaseConnection`` or anything that already is an
  :class:`IntrusiveCli`; :func:`cli_factory` turns a connection factory into a CLI factory.
- :func:`signals_deferred` holds SIGINT, SIGTERM and SIGHUP while an undo runs (main thread
  only): the undo completes, then the caller re-raises. :func:`signals_interrupt` makes
  SIGTERM and SIGHUP raise :class:`Terminated` (a ``KeyboardInterrupt``) while debugs are on,
  so that ``finally`` blocks run instead of the process dying with the debugs on.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, Protocol, runtime_checkable

from ipsec_doctor.collect.base import CommandCollectionError, ConnectionLostError
from ipsec_doctor.collect.intrusive_data import is_configuration_command
from ipsec_doctor.collect.netmiko_errors import command_error
from ipsec_doctor.errors import UsageError


@runtime_checkable
class IntrusiveCli(Protocol):
    """One privileged EXEC session on one device (see the module contract)."""

    @property
    def device(self) -> str: ...

    def send(self, command: str, *, read_timeout: float) -> str: ...

    def read_pending(self) -> str: ...

    def resync(self) -> bool: ...

    def close(self) -> None: ...


class NetmikoCli:
    """:class:`IntrusiveCli` over a netmiko ``BaseConnection`` (logged in, enable mode)."""

    def __init__(
        self,
        connection: Any,
        device: str = "",
        *,
        known_secrets: Iterable[str] = (),
        resync_timeout: float = 5.0,
    ) -> None:
        self.connection = connection
        self._device = device or str(getattr(connection, "host", "") or "device")
        self.known = tuple(s for s in known_secrets if s)
        self.resync_timeout = resync_timeout
        self._pattern = ""
        self._broken = False  # a command timed out or the session dropped: close without ceremony

    @property
    def device(self) -> str:
        return self._device

    def _prompt_pattern(self) -> str:
        if not self._pattern:
            try:
                prompt = str(self.connection.find_prompt()).strip()
            except Exception as exc:
                raise command_error(
                    exc, device=self.device, command="(find prompt)", read_timeout=10
                ) from None
            # Sample device line: "R1#" then a newline or the end of the output; a debug line
            # printed after the prompt on a monitor session must not hide it.
            self._pattern = rf"(?:^|[\r\n]){re.escape(prompt)}[ \t]*(?:\r|\n|$)"
        return self._pattern

    def alive(self) -> bool:
        """Whether the SSH channel is still open (netmiko itself only notices by timing out)."""
        channel = getattr(self.connection, "remote_conn", None)
        if channel is None:
            return True  # not an SSH channel we can ask (telnet, a test double)
        try:
            transport = channel.get_transport()
            return bool(transport is not None and transport.is_active() and not channel.closed)
        except Exception:
            return True

    def _lost(self, command: str) -> ConnectionLostError:
        return ConnectionLostError(
            f"{self.device}: the SSH session is closed (during {command!r})",
            device=self.device,
            command=command,
        )

    def send(self, command: str, *, read_timeout: float) -> str:
        if is_configuration_command(command):
            raise UsageError(f"{command!r} would enter configuration mode; refused")
        if not self.alive():
            raise self._lost(command)
        pattern = self._prompt_pattern()
        try:
            output = self.connection.send_command(
                command,
                expect_string=pattern,
                read_timeout=read_timeout,
                auto_find_prompt=False,
                strip_prompt=True,
                strip_command=True,
            )
        except Exception as exc:
            self._broken = True
            if not self.alive():
                raise self._lost(command) from None
            raise command_error(
                exc,
                device=self.device,
                command=command,
                read_timeout=read_timeout,
                known=self.known,
            ) from None
        return output if isinstance(output, str) else str(output)

    def read_pending(self) -> str:
        if not self.alive():
            raise self._lost("(read terminal)")
        try:
            return str(self.connection.read_channel())
        except Exception as exc:
            raise command_error(
                exc,
                device=self.device,
                command="(read terminal)",
                read_timeout=0,
                known=self.known,
            ) from None

    def resync(self) -> bool:
        """Back to a clean prompt after an interrupted read: False if the session is unusable."""
        try:
            pattern = self._prompt_pattern()
            self.connection.write_channel("\n")
            self.connection.read_until_pattern(pattern=pattern, read_timeout=self.resync_timeout)
        except Exception:
            self._broken = True
            return False
        self._broken = False
        return True

    def close(self) -> None:
        """Log out; a broken session is closed at once (netmiko's logout would wait on it)."""
        with suppress(Exception):  # closing a dead session may fail: nothing to do about it
            if self._broken and hasattr(self.connection, "paramiko_cleanup"):
                self.connection.paramiko_cleanup()
            else:
                self.connection.disconnect()


def as_cli(
    session: Any,
    device: str = "",
    known_secrets: Iterable[str] = (),
    *,
    resync_timeout: float = 5.0,
) -> IntrusiveCli:
    """An :class:`IntrusiveCli` for a netmiko connection (or the CLI itself)."""
    if isinstance(session, IntrusiveCli):
        return session
    if not hasattr(session, "send_command"):
        raise UsageError(f"not a device session: {type(session).__name__}")
    return NetmikoCli(session, device, known_secrets=known_secrets, resync_timeout=resync_timeout)


CliFactory = Callable[[], IntrusiveCli]


def cli_factory(
    factory: Callable[[], Any] | None,
    device: str = "",
    known_secrets: Iterable[str] = (),
    *,
    resync_timeout: float = 5.0,
) -> CliFactory | None:
    """A factory of fresh sessions as :class:`IntrusiveCli` (None stays None).

    The factory may return a netmiko connection, an :class:`IntrusiveCli`, or ``None`` / raise
    when it cannot log in: both count as "could not reconnect".
    """
    if factory is None:
        return None

    def make() -> IntrusiveCli:
        session = factory()
        if session is None:
            raise ConnectionLostError(f"{device}: could not open a new session", device=device)
        return as_cli(session, device, known_secrets, resync_timeout=resync_timeout)

    return make


# -- signals --------------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while debugs were on (handled like Ctrl-C: undo, exit 130)."""


_HELD = tuple(
    s
    for s in (
        getattr(signal, "SIGINT", None),
        getattr(signal, "SIGTERM", None),
        getattr(signal, "SIGHUP", None),
    )
    if s is not None
)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM / SIGHUP raise :class:`Terminated` inside the block (main thread only)."""
    if not _in_main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signal.Signals(signum).name}")

    previous: dict[int, Any] = {}
    for sig in _HELD:
        if sig == signal.SIGINT:
            continue
        with suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_deferred(on_signal: Callable[[int], None] | None = None) -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM/SIGHUP in the block; the list yielded gets the signals that came.

    Outside the main thread signals cannot be handled here; the block then runs unprotected
    (signals are delivered to the main thread anyway).
    """
    received: list[int] = []
    if not _in_main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if on_signal is not None:
            on_signal(signum)

    previous: dict[int, Any] = {}
    for sig in _HELD:
        with suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def is_session_lost(error: BaseException) -> bool:
    """Whether an error means the session cannot take more commands (reconnect to go on)."""
    if isinstance(error, ConnectionLostError):
        return True
    return isinstance(error, CommandCollectionError) and error.outcome.value == "timeout"
