"""Guard-railed intrusive steps: conditional debugs, generated traffic and peer-scoped clears.

Steps 3-5, 8 and 10 of the guide's "IPsec Troubleshooting Strategy" turn on debugs, generate
interesting traffic and clear SAs while someone watches. This module does them safely; the
commands themselves are data (``platforms/<platform>_intrusive.yaml``).

Contract (every function and class below):
- Intrusive steps run only when called; nothing here is used by plain collection. Each entry
  point first calls :func:`check_intrusive_allowed`: a device marked ``production: true`` in
  the inventory is refused (:class:`IntrusiveRefusedError`, a UsageError) unless
  ``allow_intrusive`` is set.
- Never configuration mode: every command comes from the platform data, which the loader
  refuses to hold a ``configure`` command, and values are validated before they are typed
  (:func:`~ipsec_doctor.collect.intrusive_data.fill`).
- Every intrusive command and every undo is written to the :class:`~ipsec_doctor.collect.
  audit_log.AuditLog` (time, user, device, command, result); the log is checked writable
  before the first command, and nothing runs if it is not.
- :class:`DebugSession` (a context manager) limits debugging to the peer first (``debug
  crypto condition peer ipv4 X``; a router that refuses the condition gets no debug at all
  unless ``allow_unconditional``), turns the debugs on, and :meth:`DebugSession.watch` reads
  the output - deltas of the logging buffer (``show logging``), or the terminal after
  ``terminal monitor`` - until the negotiation ends (an established or failure signature of
  the platform data, plus ``settle_reads`` more reads for the trailing lines) or
  ``max_seconds`` have passed on the injected clock (polls every ``poll_interval``). Its exit
  ALWAYS undoes (``terminal no monitor``, ``undebug all``, the condition removed) and checks
  with ``show debugging`` - after success, an exception, a timeout, KeyboardInterrupt, SIGTERM
  or SIGHUP (those raise :class:`~ipsec_doctor.collect.intrusive_cli.Terminated` while debugs
  are on). Signals that arrive during the undo are held until it is done, then re-raised.
  When the session is unusable (dropped, hung) it reconnects through the ``reconnect``
  factory (``reconnect_attempts`` tries) to undo. If the undo cannot be completed or verified
  it prints a loud message naming the device and the commands to type (``warn``) and raises
  :class:`DebugCleanupError` - unless another exception is already propagating, which then
  wins (the cleanup error stays in :attr:`DebugSession.cleanup_error`).
- The debug lines come back as :class:`~ipsec_doctor.model.capture.CommandCapture` objects
  named after the debug that prints them (``debug crypto isakmp``; lines no debug owns go to
  the first one), redacted, ready for :func:`ipsec_doctor.parse.logs.classify_log_text`.
- Ping (:func:`run_ping`): an extended ping sourced from the protected LAN interface to the
  first usable host of the crypto ACL's destination (or the given ones); the ACL's hit
  counters are read before and after (``show access-lists NAME``) as evidence.
- Clear (:func:`plan_clear`, :func:`clear_peer`): ``clear crypto sa peer X`` and ``clear
  crypto isakmp <conn-id>`` for the conn-ids of the peer's ISAKMP SAs only - never an unscoped
  clear. The plan is shown and confirmed (an injected ``confirm``; :func:`terminal_confirm`
  refuses without a TTY unless ``yes``); a snapshot is taken before and after, and the result
  says whether the tunnel came back and how long it took (bounded polling on the clock).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from types import TracebackType
from typing import Any, Literal, Self, TextIO

from ipsec_doctor.collect.audit_log import AuditLog, new_session_id
from ipsec_doctor.collect.base import (
    Clock,
    CommandCollectionError,
    ConnectionLostError,
    SystemClock,
)
from ipsec_doctor.collect.intrusive_cli import (
    CliFactory,
    IntrusiveCli,
    Terminated,
    as_cli,
    cli_factory,
    signals_deferred,
    signals_interrupt,
)
from ipsec_doctor.collect.intrusive_data import (
    IntrusiveData,
    LogBuffer,
    check_value,
    end_of_negotiation,
    fill,
    load_intrusive,
    monitor_level,
    new_messages,
    owner_of,
    parse_show_debugging,
    read_log_buffer,
)
from ipsec_doctor.collect.plan_runner import rejection_line
from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.errors import CollectionError, ParseError, UsageError
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.state import Evidence

MAX_DEBUG_SECONDS = 900.0
DEFAULT_READ_TIMEOUT = 30.0

Warn = Callable[[str], None]
Confirm = Callable[[str], bool]
LogSource = Literal["auto", "buffer", "monitor"]


class IntrusiveRefusedError(UsageError):
    """An intrusive step was refused before anything was sent (production, no way to read)."""


class DebugCleanupError(CollectionError):
    """Debugs (or the condition) could not be turned off, or are still on after the undo."""

    def __init__(self, message: str, *, device: str, manual: Sequence[str]) -> None:
        super().__init__(message)
        self.device = device
        self.manual = tuple(manual)

    def loud(self) -> str:
        """The message for a person: what may still be on, and what to type."""
        bar = "!" * 78
        commands = "\n".join(f"!!!     {device_line}" for device_line in self.manual)
        return (
            f"{bar}\n!!! ipsec-doctor: DEBUGS MAY STILL BE ON on {self.device}\n!!! {self}\n"
            f"!!! Log into {self.device} now and type:\n{commands}\n{bar}"
        )


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- guards -----------------------------------------------------------------------------------


def production_flag(data: Mapping[str, Any] | None) -> bool:
    """Whether inventory ``data`` marks the host ``production: true`` (also "yes", "1")."""
    if not data:
        return False
    value = data.get("production")
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "yes", "1", "on"}


def check_intrusive_allowed(
    device: str, *, production: bool, allow_intrusive: bool, what: str
) -> None:
    """Refuse ``what`` on a production device unless explicitly allowed."""
    if production and not allow_intrusive:
        raise IntrusiveRefusedError(
            f"{device} is marked production: true in the inventory; refusing to {what} there "
            "without --allow-intrusive"
        )


def _peer(peer: str) -> str:
    return check_value("peer", peer)


# -- one command, audited ------------------------------------------------------------------------


class _Typist:
    """Sends commands on one session and writes the intrusive ones to the audit log."""

    def __init__(
        self,
        cli: IntrusiveCli,
        *,
        device: str,
        peer: str,
        audit: AuditLog | None,
        read_timeout: float,
        known: tuple[str, ...],
    ) -> None:
        self.cli = cli
        self.device = device
        self.peer = peer
        self.audit = audit
        self.read_timeout = read_timeout
        self.known = known
        self.session = new_session_id()

    def _record(self, command: str, result: str, action: str) -> None:
        if self.audit is not None:
            self.audit.record(
                device=self.device,
                command=command,
                result=result,
                action=action,
                peer=self.peer,
                session=self.session,
            )

    def send(self, command: str, *, action: str = "read", read_timeout: float | None = None) -> str:
        """Output of ``command``; ``action`` other than ``read`` is audited (do/undo/check)."""
        audited = action != "read"
        try:
            output = self.cli.send(command, read_timeout=read_timeout or self.read_timeout)
        except KeyboardInterrupt:
            if audited:
                self._record(command, "interrupted", action)
            raise
        except CommandCollectionError as exc:
            if audited:
                self._record(command, f"error: {exc}", action)
            raise
        if audited:
            refused = rejection_line(output)
            self._record(command, f"rejected: {refused}" if refused else "ok", action)
        return redact(output, self.known)


# -- debugs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebugResult:
    """What one debug session read, and how it ended."""

    device: str
    peer: str
    debugs: tuple[str, ...]  # the debug commands that were turned on
    source: str  # "buffer" or "monitor"
    messages: tuple[str, ...]  # debug/log messages in order (continuation lines joined)
    captures: tuple[CommandCapture, ...]
    ended: str  # "established", "failed", "time limit", "interrupted", "error", "not started"
    end_message: str = ""  # the message that ended the negotiation
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    undone: bool = False  # the undo completed and `show debugging` showed nothing left

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(line for message in self.messages for line in message.split("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.messages else "")

    def evidence(self) -> tuple[Evidence, ...]:
        """Every debug line as evidence (command, line, 1-based line number in its capture)."""
        found: list[Evidence] = []
        for capture in self.captures:
            for number, line in enumerate(capture.raw.split("\n"), 1):
                if line.strip():
                    found.append(Evidence(capture.command, line, number, 1, self.device))
        return tuple(found)


class DebugSession:
    """Conditional debugs on one device for one peer, always undone (see the module contract).

    ``connection`` is a logged-in, enabled netmiko connection (or an
    :class:`~ipsec_doctor.collect.intrusive_cli.IntrusiveCli`); ``reconnect`` a factory of
    fresh ones, used only to undo when the session is gone. ``debugs`` names entries of the
    platform data (default: its ``default_debugs``: isakmp and ipsec). ``on_started`` is
    called once the debugs are on (progress output; tests synchronise on it). ``stop`` (a
    ``threading.Event``) ends :meth:`watch` early, for callers that run sessions in threads.
    """

    def __init__(
        self,
        connection: Any,
        *,
        peer: str,
        device: str = "",
        debugs: Sequence[str] | None = None,
        max_seconds: float = 60.0,
        clock: Clock | None = None,
        reconnect: Callable[[], Any] | None = None,
        platform: str = "cisco_ios",
        source: LogSource = "auto",
        poll_interval: float = 2.0,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        audit: AuditLog | None = None,
        production: bool = False,
        allow_intrusive: bool = False,
        allow_unconditional: bool = False,
        warn: Warn | None = None,
        on_started: Callable[[DebugSession], None] | None = None,
        settle_reads: int = 1,
        reconnect_attempts: int = 2,
        known_secrets: Iterable[str] = (),
        stop: threading.Event | None = None,
    ) -> None:
        self.peer = _peer(peer)
        self.data: IntrusiveData = load_intrusive(platform)
        names = tuple(debugs) if debugs is not None else self.data.default_debugs
        unknown = [name for name in names if name not in self.data.debugs]
        if unknown or not names:
            known = ", ".join(sorted(self.data.debugs))
            raise UsageError(f"unknown debug {', '.join(unknown) or '(none)'}; known: {known}")
        if not 0 < max_seconds <= MAX_DEBUG_SECONDS:
            raise UsageError(f"debug time must be within 0-{MAX_DEBUG_SECONDS:g} s")
        if source not in ("auto", "buffer", "monitor"):
            raise UsageError(f"unknown debug output source {source!r}")
        self.known = tuple(s for s in known_secrets if s)
        resync = min(5.0, read_timeout)
        self.cli = as_cli(connection, device, self.known, resync_timeout=resync)
        self.device = device or self.cli.device
        self.debugs = names
        self.max_seconds = float(max_seconds)
        self.clock: Clock = clock or SystemClock()
        self.source: str = source
        self.poll_interval = max(0.0, poll_interval)
        self.read_timeout = read_timeout
        self.audit = audit
        self.production = production
        self.allow_intrusive = allow_intrusive
        self.allow_unconditional = allow_unconditional
        self.warn: Warn = warn or _stderr
        self.on_started = on_started
        self.settle_reads = max(0, settle_reads)
        self.reconnect_attempts = max(0, reconnect_attempts)
        self.stop = stop
        self._factory: CliFactory | None = cli_factory(
            reconnect, self.device, self.known, resync_timeout=resync
        )
        self._typist = _Typist(
            self.cli,
            device=self.device,
            peer=self.peer,
            audit=audit,
            read_timeout=read_timeout,
            known=self.known,
        )
        self._condition_sent = False
        self._debugs_sent: list[str] = []
        self._monitor_sent = False
        self._entered = False
        self._exited = False
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._last: LogBuffer | None = None
        self._partial = ""
        self._messages: list[str] = []
        self._ended = ""
        self._end_message = ""
        self._notes: list[str] = []
        self._undone = False
        self._signals: Any = None
        self.cleanup_error: DebugCleanupError | None = None
        self.result: DebugResult | None = None

    # -- entering ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._entered:
            raise UsageError("a DebugSession can be entered once")
        check_intrusive_allowed(
            self.device,
            production=self.production,
            allow_intrusive=self.allow_intrusive,
            what="turn on debugs",
        )
        if self.audit is not None:
            self.audit.check_writable()
        self._entered = True
        self._signals = signals_interrupt()
        self._signals.__enter__()
        try:
            self._start()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _start(self) -> None:
        data = self.data
        before = parse_show_debugging(self._typist.send(data.show_debugging), data)
        if before.flags:
            self._note(
                f"debugging was already on ({', '.join(before.flags)}); `{data.undo_all}` at "
                "the end turns that off as well"
            )
        if self.peer in before.condition_peers:
            self._note(f"a crypto debug condition for {self.peer} was already set; it is removed")
        log_text = self._typist.send(data.log_read)
        buffer = read_log_buffer(log_text, data)
        self.source = self._choose_source(buffer, monitor_level(log_text, data))
        self._last = buffer
        self._condition_sent = True
        condition = fill(data.condition, peer=self.peer)
        refused = rejection_line(self._typist.send(condition, action="do"))
        if refused and not self.allow_unconditional:
            raise IntrusiveRefusedError(
                f"{self.device} refused `{condition}` ({refused}); refusing to turn on "
                "debugs that would not be limited to the peer"
            )
        if refused:
            self._note(f"`{condition}` was refused ({refused}): the debugs are NOT conditional")
        for name in self.debugs:
            self._debugs_sent.append(name)
            command = data.debugs[name].command
            refused = rejection_line(self._typist.send(command, action="do"))
            if refused:
                self._note(f"`{command}` was refused: {refused}")
        if self.source == "monitor":
            self._monitor_sent = True
            self._typist.send(data.monitor_on, action="do")
            self.cli.read_pending()  # what was printed before: not part of this negotiation
        self._started_at = self.clock.monotonic()
        if self.on_started is not None:
            self.on_started(self)

    def _choose_source(self, buffer: LogBuffer, monitor: str) -> str:
        buffer_ok = buffer.takes_debugs
        monitor_ok = monitor in ("", "debugging")
        if self.source == "buffer" and not buffer_ok:
            raise IntrusiveRefusedError(
                f"{self.device}: the logging buffer is {buffer.level or 'off'}, so debug lines "
                "would not reach it (the fix is `logging buffered <size> debugging`; "
                "ipsec-doctor never changes configuration); try --debug-source monitor"
            )
        if self.source in ("buffer", "monitor"):
            return self.source
        if buffer_ok:
            return "buffer"
        if monitor_ok:
            self._note(f"the logging buffer is {buffer.level}: reading debugs on the terminal")
            return "monitor"
        raise IntrusiveRefusedError(
            f"{self.device}: neither the logging buffer ({buffer.level}) nor terminal monitor "
            f"logging ({monitor}) is at level debugging, so debug output would go nowhere; "
            "`logging buffered <size> debugging` on the router fixes that (ipsec-doctor never "
            "changes configuration)"
        )

    def _note(self, message: str) -> None:
        self._notes.append(message)

    # -- watching ----------------------------------------------------------------------------

    def watch(self) -> DebugResult:
        """Read debug output until the negotiation ends or the time is up (module contract)."""
        if not self._entered or self._exited or self._started_at is None:
            raise UsageError("watch() needs an entered, running DebugSession")
        deadline = self._started_at + self.max_seconds
        reads_after_end = 0
        while True:
            self.poll()
            if self._ended:
                if reads_after_end >= self.settle_reads:
                    break
                reads_after_end += 1
            now = self.clock.monotonic()
            if now >= deadline:
                break
            if self.stop is not None and self.stop.is_set():
                self._note("stopped before the negotiation ended")
                break
            self._sleep(min(self.poll_interval, deadline - now))
        self._finished_at = self.clock.monotonic()
        return self.snapshot(self._ended or "time limit")

    def _sleep(self, seconds: float) -> None:
        if self.stop is not None and isinstance(self.clock, SystemClock):
            self.stop.wait(seconds)
        else:
            self.clock.sleep(seconds)

    def poll(self) -> list[str]:
        """Read once; returns the new messages (also kept for the result)."""
        if self.source == "monitor":
            chunk = self.cli.read_pending()
            text = (self._partial + chunk).replace("\r\n", "\n").replace("\r", "\n")
            complete, _, self._partial = text.rpartition("\n")
            prompt = self.data.pattern("prompt")
            return self._add_lines(
                [ln for ln in complete.split("\n") if ln.strip() and not prompt.match(ln)]
            )
        text = self._typist.send(self.data.log_read)
        buffer = read_log_buffer(text, self.data)
        new, note = new_messages(self._last or LogBuffer("", None, ()), buffer)
        self._last = buffer
        if note:
            self._note(note)
        return self._add_messages(new)

    def _add_lines(self, lines: Sequence[str]) -> list[str]:
        """Terminal lines -> messages (a continuation line joins the message before it)."""
        start = self.data.pattern("message_start")
        added: list[str] = []
        for line in lines:
            if (self._messages or added) and not start.search(line):
                if added:
                    added[-1] += "\n" + line.rstrip()
                else:
                    self._messages[-1] += "\n" + redact(line.rstrip(), self.known)
            else:
                added.append(line.rstrip())
        return self._add_messages(added)

    def _add_messages(self, new: Sequence[str]) -> list[str]:
        new = [redact(message, self.known) for message in new]
        self._messages.extend(new)
        for message in new:
            if not self._ended:
                verdict = end_of_negotiation(message, self.data)
                if verdict:
                    self._ended = verdict
                    self._end_message = message.split("\n")[0]
        return new

    @property
    def trigger_cli(self) -> IntrusiveCli:
        """The session for commands typed while debugging (ping, clear): on a terminal-monitor
        session the debug lines printed among their output are taken out and kept."""
        return _HarvestingCli(self)

    def harvest(self, output: str) -> str:
        """``output`` without the debug lines a monitor session printed into it (kept)."""
        if self.source != "monitor":
            return output
        start = self.data.pattern("message_start")
        kept: list[str] = []
        taken: list[str] = []
        taking = False
        for line in output.replace("\r\n", "\n").split("\n"):
            if start.search(line):
                taken.append(line)
                taking = True
            elif taking and line[:1].isspace() and line.strip():
                taken.append(line)
            else:
                taking = False
                kept.append(line)
        if taken:
            self._add_lines(taken)
        return "\n".join(kept)

    # -- the result --------------------------------------------------------------------------

    def captures(self) -> tuple[CommandCapture, ...]:
        """The messages so far, one capture per debug that was turned on (module contract)."""
        enabled = [n for n in self.debugs if n in self._debugs_sent] or list(self.debugs)
        owned: dict[str, list[str]] = {name: [] for name in enabled}
        for message in self._messages:
            owned[owner_of(message, self.data, enabled)].append(message)
        elapsed = self._elapsed()
        return tuple(
            CommandCapture(
                command=self.data.debugs[name].command,
                sample=1,
                outcome=Outcome.OK,
                raw="\n".join(messages) + ("\n" if messages else ""),
                elapsed=elapsed,
            )
            for name, messages in owned.items()
        )

    def _elapsed(self) -> float:
        if self._started_at is None:
            return 0.0
        end = self._finished_at if self._finished_at is not None else self.clock.monotonic()
        return max(0.0, end - self._started_at)

    def snapshot(self, ended: str) -> DebugResult:
        """The result as it stands (``ended`` says why it stopped)."""
        result = DebugResult(
            device=self.device,
            peer=self.peer,
            debugs=tuple(self.data.debugs[n].command for n in self._debugs_sent),
            source=self.source,
            messages=tuple(self._messages),
            captures=self.captures(),
            ended=ended,
            end_message=self._end_message,
            seconds=self._elapsed(),
            notes=tuple(self._notes),
            undone=self._undone,
        )
        self.result = result
        return result

    # -- leaving: the undo -------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if self._exited:
            return False
        self._exited = True
        if self._finished_at is None:
            self._finished_at = self.clock.monotonic()

        def holding(signum: int) -> None:
            self.warn(f"ipsec-doctor: still turning debugs off on {self.device}; please wait")

        held: list[int] = []
        error: DebugCleanupError | None = None
        try:
            for _attempt in range(3):
                try:
                    with signals_deferred(holding) as received:
                        error = self._undo(dirty=exc is not None or bool(held))
                    held += received
                    break
                except KeyboardInterrupt:
                    # Ctrl-C landed in the instant before the signals were held (or just after
                    # they were released): the undo runs (again: it is idempotent) regardless.
                    held.append(signal.SIGINT)
            if error is None and not self._undone:
                error = DebugCleanupError(
                    f"{self.device}: interrupted again and again before the undo could finish",
                    device=self.device,
                    manual=self.manual_undo(),
                )
        finally:
            if self._signals is not None:
                self._signals.__exit__(None, None, None)
        if isinstance(exc, KeyboardInterrupt):
            ended = "interrupted"
        elif exc is not None:
            ended = "error"
        elif self.result is not None:
            ended = self.result.ended  # as watch() ended
        else:
            ended = self._ended or "not watched"
        self.snapshot(ended)
        if error is not None:
            self.cleanup_error = error
            self.warn(error.loud())
            if exc is None:
                raise error
        if held and exc is None:
            if any(sig != signal.SIGINT for sig in held):
                raise Terminated("signal received while the debugs were being turned off")
            raise KeyboardInterrupt
        return False

    def _undo_steps(self) -> list[tuple[str, str]]:
        data = self.data
        steps: list[tuple[str, str]] = []
        if self._monitor_sent:
            steps.append((data.monitor_off, "undo"))
        if self._debugs_sent:
            steps.append((data.undo_all, "undo"))
        if self._condition_sent:
            steps.append((fill(data.condition_undo, peer=self.peer), "undo"))
        return steps

    def manual_undo(self) -> list[str]:
        """What a person types to undo by hand."""
        return [fill(self.data.condition_undo, peer=self.peer), self.data.undo_all][::-1]

    def _undo(self, *, dirty: bool) -> DebugCleanupError | None:
        """Run the undo steps and verify; reconnect when the session is gone (module contract)."""
        steps = self._undo_steps()
        if not steps:
            self._undone = True
            return None
        check = (self.data.show_debugging, "check")
        pending = [*steps, check]
        cli: IntrusiveCli | None = self.cli
        if dirty and cli is not None and not cli.resync():
            self._note("the session did not come back to the prompt after the interruption")
            cli.close()
            cli = None
        attempts = 0
        verified_retry = False
        reason = ""
        while pending:
            if cli is None:
                if self._factory is None or attempts >= self.reconnect_attempts:
                    break
                attempts += 1
                try:
                    cli = self._factory()
                except Exception as exc:  # any login failure: try again or give up below
                    reason = f"reconnect failed: {exc}"
                    continue
                self.cli = cli
                self._typist.cli = cli
                # terminal monitor belongs to the old session: nothing to turn off on this one
                pending = [step for step in pending if step[0] != self.data.monitor_off]
                self._note(f"reconnected to {self.device} to turn the debugs off")
                continue
            command, action = pending[0]
            try:
                output = self._typist.send(command, action=action)
            except CommandCollectionError as exc:
                reason = str(exc)
                if command == self.data.monitor_off:  # harmless: the session is going anyway
                    pending.pop(0)
                cli.close()
                cli = None
                continue
            if action != "check":
                pending.pop(0)
                continue
            listing = parse_show_debugging(output, self.data)
            left = list(listing.crypto_flags)
            if self._condition_sent and self.peer in listing.condition_peers:
                left.append(f"condition peer {self.peer}")
            if not left:
                pending.pop(0)
                continue
            if verified_retry:
                return DebugCleanupError(
                    f"{self.device}: still on after the undo: {', '.join(left)}",
                    device=self.device,
                    manual=self.manual_undo(),
                )
            verified_retry = True
            pending = [step for step in steps if step[0] != self.data.monitor_off] + [check]
        if pending:
            return DebugCleanupError(
                f"{self.device}: could not turn the debugs off ({reason or 'no session'}); "
                f"not done: {', '.join(step[0] for step in pending if step[1] != 'check')}",
                device=self.device,
                manual=self.manual_undo(),
            )
        self._undone = True
        return None


class _HarvestingCli:
    """The debug session's CLI for trigger commands (see :attr:`DebugSession.trigger_cli`)."""

    def __init__(self, session: DebugSession) -> None:
        self._session = session

    @property
    def device(self) -> str:
        return self._session.cli.device

    def send(self, command: str, *, read_timeout: float) -> str:
        output = self._session.cli.send(command, read_timeout=read_timeout)
        return self._session.harvest(output)

    def read_pending(self) -> str:
        return self._session.harvest(self._session.cli.read_pending())

    def resync(self) -> bool:
        return self._session.cli.resync()

    def close(self) -> None:
        """The debug session owns the connection: nothing to do."""


def run_debug(
    connection: Any,
    *,
    peer: str,
    trigger: Callable[[DebugSession], object] | None = None,
    **options: Any,
) -> DebugResult:
    """Open a :class:`DebugSession`, call ``trigger`` (ping, clear) once the debugs are on,
    watch, undo; returns the result (``options`` are DebugSession's)."""
    with DebugSession(connection, peer=peer, **options) as session:
        if trigger is not None:
            trigger(session)
        session.watch()
    assert session.result is not None
    return session.result


def with_debug_captures(device: DeviceCapture, result: DebugResult) -> DeviceCapture:
    """``device`` with the debug captures appended (the one place they join a capture set)."""
    device.captures.extend(result.captures)
    return device


# -- snapshots (clear, ping) ----------------------------------------------------------------------


def _rows(platform: str, command: str, text: str) -> list[dict[str, Any]] | None:
    from ipsec_doctor.parse.textfsm_parser import parse_output
    from ipsec_doctor.platforms.loader import load_platform

    try:
        return parse_output(load_platform(platform).textfsm_platform, command, text)
    except ParseError:
        return None


@dataclass(frozen=True)
class IkeRow:
    """One phase-1 SA with the peer, as ``show crypto isakmp sa`` prints it."""

    conn_id: int | None
    state: str
    status: str
    line: str


@dataclass(frozen=True)
class Snapshot:
    """The peer's SAs at one moment: phase 1 rows and whether phase-2 SAs exist both ways."""

    peer: str
    isakmp: CommandCapture
    ipsec: CommandCapture
    ike: tuple[IkeRow, ...] | None  # None: the output could not be read or parsed
    ipsec_up: bool | None
    at: float
    established_states: tuple[str, ...] = ("QM_IDLE",)

    @property
    def phase1_up(self) -> bool:
        return any(row.state in self.established_states for row in self.ike or ())

    @property
    def up(self) -> bool:
        return self.phase1_up and bool(self.ipsec_up)

    def describe(self) -> str:
        if self.ike is None:
            return "phase 1 unknown (output unreadable)"
        states = ", ".join(f"{r.state} (conn-id {r.conn_id})" for r in self.ike) or "no SA"
        phase2 = {True: "SAs in both directions", False: "no SAs", None: "unknown"}
        return f"phase 1: {states}; phase 2: {phase2[self.ipsec_up]}"


def take_snapshot(
    typist: _Typist, data: IntrusiveData, peer: str, clock: Clock, platform: str
) -> Snapshot:
    """Read ``show crypto isakmp sa`` and ``show crypto ipsec sa peer X`` once."""
    isakmp_cmd = fill(data.snapshot_isakmp, peer=peer)
    ipsec_cmd = fill(data.snapshot_ipsec, peer=peer)
    captures: list[CommandCapture] = []
    texts: list[str | None] = []
    for command in (isakmp_cmd, ipsec_cmd):
        start = clock.monotonic()
        try:
            text = typist.send(command)
        except CommandCollectionError as exc:
            captures.append(CommandCapture(command, 1, exc.outcome, "", error=str(exc)))
            texts.append(None)
            continue
        refused = rejection_line(text)
        outcome = Outcome.REJECTED if refused else Outcome.OK
        elapsed = clock.monotonic() - start
        captures.append(CommandCapture(command, 1, outcome, text, refused or "", elapsed))
        texts.append(None if refused else text)
    ike: tuple[IkeRow, ...] | None = None
    if texts[0] is not None:
        rows = _rows(platform, isakmp_cmd, texts[0])
        if rows is not None:
            lines = texts[0].split("\n")
            found = []
            for row in rows:
                if peer not in (row.get("dst"), row.get("src")):
                    continue
                conn = str(row.get("conn_id") or "")
                line = next((ln for ln in lines if row.get("state", "") in ln and conn in ln), "")
                found.append(
                    IkeRow(
                        conn_id=int(conn) if conn.isdigit() else None,
                        state=str(row.get("state") or ""),
                        status=str(row.get("status") or ""),
                        line=line.strip(),
                    )
                )
            ike = tuple(found)
    ipsec_up: bool | None = None
    if texts[1] is not None:
        rows = _rows(platform, ipsec_cmd, texts[1])
        if rows is not None:
            mine = [
                r for r in rows if peer in (r.get("current_peer"), r.get("remote_crypto_endpt"))
            ]
            ipsec_up = any(r.get("inbound_esp_spi") and r.get("outbound_esp_spi") for r in mine)
    return Snapshot(
        peer=peer,
        isakmp=captures[0],
        ipsec=captures[1],
        ike=ike,
        ipsec_up=ipsec_up,
        at=clock.monotonic(),
        established_states=data.established_states,
    )


# -- clear ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClearPlan:
    """Exactly what a clear will type on one device, and why."""

    device: str
    peer: str
    commands: tuple[str, ...]
    conn_ids: tuple[int, ...]
    before: Snapshot
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [
            f"{self.device}: the tunnel to {self.peer} now: {self.before.describe()}",
            f"{self.device}: will clear only the SAs of peer {self.peer}:",
        ]
        lines += [f"    {self.device}# {command}" for command in self.commands]
        lines += [f"    ({note})" for note in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class ClearResult:
    """What a clear did: confirmed or not, the commands, before/after and the recovery."""

    plan: ClearPlan
    confirmed: bool
    ran: tuple[tuple[str, str], ...] = ()  # (command, result: ok / rejected: ... / error: ...)
    after: Snapshot | None = None
    came_back: bool | None = None  # None: not waited for (not confirmed, or an error)
    seconds: float | None = None  # from the clear to the first snapshot showing it up
    polls: int = 0
    message: str = ""

    def captures(self) -> tuple[CommandCapture, ...]:
        """The snapshots as captures (before: sample 1, after: sample 2)."""
        found = [self.plan.before.isakmp, self.plan.before.ipsec]
        if self.after is not None:
            found += [_as_sample(self.after.isakmp, 2), _as_sample(self.after.ipsec, 2)]
        return tuple(found)

    def summary(self) -> str:
        if not self.confirmed:
            return f"{self.plan.device}: clear not confirmed; nothing was cleared"
        if self.came_back:
            return (
                f"{self.plan.device}: the tunnel to {self.plan.peer} came back "
                f"{self.seconds:.1f} s after the clear"
            )
        if self.came_back is False:
            return (
                f"{self.plan.device}: the tunnel to {self.plan.peer} did not come back within "
                f"the wait ({self.after.describe() if self.after else 'no snapshot'})"
            )
        return f"{self.plan.device}: {self.message}"


def _as_sample(capture: CommandCapture, sample: int) -> CommandCapture:
    return CommandCapture(
        capture.command, sample, capture.outcome, capture.raw, capture.error, capture.elapsed
    )


def plan_clear(
    connection: Any,
    peer: str,
    *,
    device: str = "",
    platform: str = "cisco_ios",
    clock: Clock | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    known_secrets: Iterable[str] = (),
) -> ClearPlan:
    """Read the peer's SAs and build the peer-scoped clear commands (nothing is cleared)."""
    peer = _peer(peer)
    data = load_intrusive(platform)
    known = tuple(s for s in known_secrets if s)
    cli = as_cli(connection, device, known)
    typist = _Typist(
        cli,
        device=device or cli.device,
        peer=peer,
        audit=None,
        read_timeout=read_timeout,
        known=known,
    )
    before = take_snapshot(typist, data, peer, clock or SystemClock(), platform)
    commands = [fill(data.clear_sa_peer, peer=peer)]
    notes: list[str] = []
    conn_ids: list[int] = []
    if before.ike is None:
        notes.append(
            "the ISAKMP SA table could not be read: no `clear crypto isakmp` (never unscoped)"
        )
    for row in before.ike or ():
        if row.conn_id is None or row.conn_id <= 0:
            notes.append(f"phase-1 SA in {row.state} has no conn-id to clear")
        elif row.conn_id not in conn_ids:
            conn_ids.append(row.conn_id)
    commands += [fill(data.clear_isakmp_conn, conn_id=conn) for conn in conn_ids]
    return ClearPlan(
        device=device or cli.device,
        peer=peer,
        commands=tuple(commands),
        conn_ids=tuple(conn_ids),
        before=before,
        notes=tuple(notes),
    )


def execute_clear(
    connection: Any,
    plan: ClearPlan,
    *,
    platform: str = "cisco_ios",
    clock: Clock | None = None,
    wait_seconds: float = 60.0,
    poll_interval: float = 2.0,
    trigger: Callable[[], object] | None = None,
    audit: AuditLog | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    known_secrets: Iterable[str] = (),
    stop: threading.Event | None = None,
) -> ClearResult:
    """Type the plan's (confirmed) commands, then poll until the tunnel is back or time is up.

    ``trigger`` (e.g. a ping) is called once after the clear to bring the tunnel up again.
    """
    data = load_intrusive(platform)
    clock = clock or SystemClock()
    known = tuple(s for s in known_secrets if s)
    cli = as_cli(connection, plan.device, known)
    typist = _Typist(
        cli,
        device=plan.device,
        peer=plan.peer,
        audit=audit,
        read_timeout=read_timeout,
        known=known,
    )
    scoped = {fill(data.clear_sa_peer, peer=plan.peer)}
    scoped |= {fill(data.clear_isakmp_conn, conn_id=conn) for conn in plan.conn_ids}
    for command in plan.commands:  # only what plan_clear built: scoped to the peer
        if command not in scoped:
            raise UsageError(f"{command!r} is not a clear scoped to {plan.peer}; refused")
    if audit is not None:
        audit.check_writable()
    ran: list[tuple[str, str]] = []
    for command in plan.commands:
        try:
            output = typist.send(command, action="do")
        except CommandCollectionError as exc:
            ran.append((command, f"error: {exc}"))
            return ClearResult(plan, True, tuple(ran), message=f"clear failed: {exc}")
        refused = rejection_line(output)
        ran.append((command, f"rejected: {refused}" if refused else "ok"))
    cleared_at = clock.monotonic()
    if trigger is not None:
        trigger()
    return _wait_for_tunnel(
        typist,
        data,
        plan,
        tuple(ran),
        clock,
        cleared_at,
        wait_seconds,
        poll_interval,
        platform,
        stop,
    )


def _wait_for_tunnel(
    typist: _Typist,
    data: IntrusiveData,
    plan: ClearPlan,
    ran: tuple[tuple[str, str], ...],
    clock: Clock,
    cleared_at: float,
    wait_seconds: float,
    poll_interval: float,
    platform: str,
    stop: threading.Event | None,
) -> ClearResult:
    deadline = cleared_at + max(0.0, wait_seconds)
    polls = 0
    after: Snapshot | None = None
    while True:
        try:
            after = take_snapshot(typist, data, plan.peer, clock, platform)
        except CommandCollectionError as exc:
            return ClearResult(plan, True, ran, after, None, None, polls, f"snapshot failed: {exc}")
        polls += 1
        if after.up:
            return ClearResult(plan, True, ran, after, True, after.at - cleared_at, polls)
        now = clock.monotonic()
        if now >= deadline or (stop is not None and stop.is_set()):
            return ClearResult(plan, True, ran, after, False, None, polls)
        seconds = min(max(poll_interval, 0.0), deadline - now)
        if stop is not None and isinstance(clock, SystemClock):
            stop.wait(seconds)
        else:
            clock.sleep(seconds)


def clear_peer(
    connection: Any,
    peer: str,
    *,
    confirm: Confirm,
    device: str = "",
    platform: str = "cisco_ios",
    clock: Clock | None = None,
    wait_seconds: float = 60.0,
    poll_interval: float = 2.0,
    trigger: Callable[[], object] | None = None,
    audit: AuditLog | None = None,
    production: bool = False,
    allow_intrusive: bool = False,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    known_secrets: Iterable[str] = (),
) -> ClearResult:
    """Guard, plan, show and confirm, clear, and wait for the tunnel (the module contract)."""
    name = device or as_cli(connection, device).device
    check_intrusive_allowed(
        name, production=production, allow_intrusive=allow_intrusive, what="clear SAs"
    )
    if audit is not None:
        audit.check_writable()
    plan = plan_clear(
        connection,
        peer,
        device=name,
        platform=platform,
        clock=clock,
        read_timeout=read_timeout,
        known_secrets=known_secrets,
    )
    if not confirm(plan.describe()):
        return ClearResult(plan, False, message="not confirmed")
    return execute_clear(
        connection,
        plan,
        platform=platform,
        clock=clock,
        wait_seconds=wait_seconds,
        poll_interval=poll_interval,
        trigger=trigger,
        audit=audit,
        read_timeout=read_timeout,
        known_secrets=known_secrets,
    )


def terminal_confirm(
    yes: bool = False,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    question: str = "Clear these SAs? [y/N] ",
) -> Confirm:
    """A confirm function: ``yes`` confirms; otherwise it asks on a terminal, and refuses
    (UsageError) when there is none to ask on."""

    def confirm(plan_text: str) -> bool:
        out = stdout or sys.stderr
        print(plan_text, file=out, flush=True)
        if yes:
            print("(confirmed by --yes)", file=out, flush=True)
            return True
        source = stdin or sys.stdin
        if source is None or not source.isatty():
            raise IntrusiveRefusedError(
                "refusing to clear without a confirmation: there is no terminal to ask on; "
                "pass --yes to confirm in a script"
            )
        print(question, end="", file=out, flush=True)
        answer = source.readline()
        return answer.strip().lower() in {"y", "yes"}

    return confirm


# -- ping -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingTarget:
    """Where the ping goes and where from, and how that was found."""

    destination: str
    source: str
    acl: str  # the crypto ACL whose hits are read ("" when unknown)
    how: str


@dataclass(frozen=True)
class PingResult:
    """The ping, its success rate, and the crypto ACL's hit counters before and after."""

    device: str
    peer: str
    target: PingTarget
    command: str
    output: str
    sent: int | None
    received: int | None
    success_percent: int | None
    acl_before: CommandCapture | None
    acl_after: CommandCapture | None
    hits_before: tuple[tuple[str, int | None], ...] = ()  # (ACL line, matches)
    hits_after: tuple[tuple[str, int | None], ...] = ()
    message: str = ""

    @property
    def hits_delta(self) -> int | None:
        """How many more matches the crypto ACL counted after the ping (None: unknown)."""
        before = [m for _l, m in self.hits_before if m is not None]
        after = [m for _l, m in self.hits_after if m is not None]
        if not self.hits_after or not after:
            return None
        return sum(after) - sum(before)

    def captures(self) -> tuple[CommandCapture, ...]:
        found = [c for c in (self.acl_before,) if c is not None]
        found.append(CommandCapture(self.command, 1, Outcome.OK, self.output))
        if self.acl_after is not None:
            found.append(_as_sample(self.acl_after, 2))
        return tuple(found)

    def evidence(self) -> tuple[Evidence, ...]:
        """The ACL lines before and after, and the ping's success line."""
        found: list[Evidence] = []
        for capture, sample in ((self.acl_before, 1), (self.acl_after, 2)):
            if capture is None:
                continue
            for number, line in enumerate(capture.raw.split("\n"), 1):
                if "permit" in line:
                    found.append(
                        Evidence(capture.command, line.strip(), number, sample, self.device)
                    )
        for number, line in enumerate(self.output.split("\n"), 1):
            if "Success rate" in line:
                found.append(Evidence(self.command, line.strip(), number, 1, self.device))
        return tuple(found)


def _first_host(network: IPv4Network | IPv6Network) -> str:
    if network.num_addresses <= 2:
        return str(network.network_address)
    return str(network.network_address + 1)


def ping_target(
    connection: Any,
    peer: str,
    *,
    device: str = "",
    destination: str | None = None,
    source: str | None = None,
    platform: str = "cisco_ios",
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    known_secrets: Iterable[str] = (),
) -> PingTarget:
    """Derive the ping's destination (first host of the crypto ACL's destination) and source
    (the interface of the protected LAN) from the device, unless both are given."""
    from ipsec_doctor.parse import parse_device
    from ipsec_doctor.parse.derive import derive_variables

    peer = _peer(peer)
    known = tuple(s for s in known_secrets if s)
    cli = as_cli(connection, device, known)
    name = device or cli.device
    typist = _Typist(
        cli, device=name, peer=peer, audit=None, read_timeout=read_timeout, known=known
    )
    capture = DeviceCapture(name=name, platform=platform)

    def read(command: str) -> None:
        try:
            text = typist.send(command)
        except CommandCollectionError as exc:
            capture.captures.append(CommandCapture(command, 1, exc.outcome, "", str(exc)))
            return
        refused = rejection_line(text)
        outcome = Outcome.REJECTED if refused else Outcome.OK
        capture.captures.append(CommandCapture(command, 1, outcome, text, refused or ""))

    data = load_intrusive(platform)
    read(data.ping_derive["crypto_map"])
    state = parse_device(capture, peer)
    values = derive_variables(state, peer)
    acl = values.get("crypto_acl", "")
    if acl:
        read(fill(data.ping_derive["acl"], acl=acl))
        state = parse_device(capture, peer)
        values = derive_variables(state, peer)
    if values.get("local_lan") and not source:
        read(fill(data.ping_derive["route"], address=values["local_lan"]))
    state = parse_device(capture, peer)
    values = derive_variables(state, peer)
    how: list[str] = []
    if destination:
        destination = check_value("destination", destination)
        how.append(f"destination {destination} as given")
    else:
        remote = None
        for entry in state.crypto_acl or ():
            if entry.acl == acl and entry.action.value == "permit":
                remote = entry.destination_net
                break
        if remote is None:
            for map_entry in state.map_entries_for(ip_address(peer)):
                if map_entry.remote_selectors:
                    remote = map_entry.remote_selectors[0]
                    break
        if remote is None:
            raise UsageError(
                f"{name}: cannot derive a host in the remote protected network of {peer} "
                f"(crypto ACL {acl or 'unknown'}); give it with --ping-destination"
            )
        destination = _first_host(remote)
        how.append(f"destination {destination}: first host of {remote} (crypto ACL {acl})")
    if source:
        source = check_value("source", source)
        how.append(f"source {source} as given")
    else:
        found = values.get("source_interface", "")
        if not found:
            raise UsageError(
                f"{name}: cannot find the interface of the protected LAN "
                f"({values.get('local_lan', 'unknown')}); give it with --ping-source"
            )
        source = check_value("source", found)
        how.append(f"source {source}: the interface of {values.get('local_lan')}")
    return PingTarget(destination=destination, source=source, acl=acl, how="; ".join(how))


def _acl_hits(text: str, data: IntrusiveData) -> tuple[tuple[str, int | None], ...]:
    """(line, matches) of each permit/deny line of an ACL output (None: no counter shown)."""
    pattern = data.ping_patterns["acl_hits"]
    found: list[tuple[str, int | None]] = []
    for line in text.split("\n"):
        if "permit" not in line and "deny" not in line:
            continue
        match = pattern.search(line)
        found.append((line.strip(), int(match.group("hits")) if match else None))
    return tuple(found)


def run_ping(
    connection: Any,
    peer: str,
    *,
    device: str = "",
    destination: str | None = None,
    source: str | None = None,
    repeat: int | None = None,
    target: PingTarget | None = None,
    platform: str = "cisco_ios",
    audit: AuditLog | None = None,
    production: bool = False,
    allow_intrusive: bool = False,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    known_secrets: Iterable[str] = (),
) -> PingResult:
    """Guard, derive the target (unless given), read the ACL, ping, read the ACL again."""
    peer = _peer(peer)
    data = load_intrusive(platform)
    known = tuple(s for s in known_secrets if s)
    cli = as_cli(connection, device, known)
    name = device or cli.device
    check_intrusive_allowed(
        name, production=production, allow_intrusive=allow_intrusive, what="generate traffic"
    )
    if audit is not None:
        audit.check_writable()
    if target is None:
        target = ping_target(
            cli,
            peer,
            device=name,
            destination=destination,
            source=source,
            platform=platform,
            read_timeout=read_timeout,
            known_secrets=known,
        )
    typist = _Typist(
        cli, device=name, peer=peer, audit=audit, read_timeout=read_timeout, known=known
    )
    count = int(check_value("repeat", repeat or data.ping_repeat))
    command = fill(
        data.ping_command,
        destination=target.destination,
        source=target.source,
        repeat=count,
        timeout=data.ping_timeout,
    )

    def read_acl() -> CommandCapture | None:
        if not target.acl:
            return None
        acl_command = fill(data.acl_counters, acl=target.acl)
        try:
            text = typist.send(acl_command)
        except CommandCollectionError as exc:
            return CommandCapture(acl_command, 1, exc.outcome, "", str(exc))
        return CommandCapture(acl_command, 1, Outcome.OK, text)

    before = read_acl()
    wait = read_timeout + count * data.ping_timeout
    output = typist.send(command, action="do", read_timeout=wait)
    after = read_acl()
    match = data.ping_patterns["success"].search(output)
    refusal = data.ping_patterns["refused"].search(output)
    message = f"the ping was refused: {refusal.group(0).strip()}" if refusal else ""
    return PingResult(
        device=name,
        peer=peer,
        target=target,
        command=command,
        output=output,
        sent=int(match.group("sent")) if match else None,
        received=int(match.group("received")) if match else None,
        success_percent=int(match.group("percent")) if match else None,
        acl_before=before,
        acl_after=after,
        hits_before=_acl_hits(before.raw, data) if before is not None and before.ok else (),
        hits_after=_acl_hits(after.raw, data) if after is not None and after.ok else (),
        message=message,
    )


__all__ = [
    "ClearPlan",
    "ClearResult",
    "ConnectionLostError",
    "DebugCleanupError",
    "DebugResult",
    "DebugSession",
    "IntrusiveRefusedError",
    "PingResult",
    "PingTarget",
    "Snapshot",
    "check_intrusive_allowed",
    "clear_peer",
    "execute_clear",
    "ping_target",
    "plan_clear",
    "production_flag",
    "run_debug",
    "run_ping",
    "take_snapshot",
    "terminal_confirm",
    "with_debug_captures",
]
