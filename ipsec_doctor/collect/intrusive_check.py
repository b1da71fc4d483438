"""The intrusive steps of ``check`` (``--debug``, ``--ping``, ``--clear``) over a Nornir inventory.

Contract:
- :func:`add_intrusive_options` adds the command-line flags; :func:`options_from_args` reads
  them into :class:`IntrusiveOptions`. Nothing intrusive runs unless one of ``debug``,
  ``ping`` or ``clear`` is set.
- :func:`run_intrusive` runs them on the given hosts (each for its peer), after the normal
  collection, and returns one :class:`DeviceIntrusive` per host (never raises for a device
  problem; it lands in ``error``). Before touching any device it checks the audit log is
  writable and refuses (IntrusiveRefusedError) when a host is ``production: true`` without
  ``allow_intrusive``. Sessions are opened through the collector's
  :class:`~ipsec_doctor.collect.nornir_collector.NetmikoCommandRunner` (which also gives the
  reconnect used to undo); a host whose enable failed is refused.
- Order per host: clears are planned and confirmed first, in the calling (main) thread, one
  device after the other (``confirm``; default :func:`~ipsec_doctor.collect.intrusive.
  terminal_confirm` with ``yes``). Then each host runs in its own thread: debugs on; the
  confirmed clear; the ping (it brings the tunnel back); the wait for the tunnel (bounded);
  the debug watch; debugs off. Debugs on both ends therefore watch the same negotiation.
- Which debugs: :meth:`IntrusiveOptions.debugs_for` a host's features (decided from its
  collected captures when ``run_intrusive`` gets them, else unknown): ``debug crypto isakmp``
  (IKEv1), ``debug crypto ikev2`` for a router that runs IKEv2 (instead of isakmp when it has
  no IKEv1 at all), then ``debug crypto ipsec`` (and ``engine`` with ``--debug-engine``).
- Ctrl-C (or SIGTERM/SIGHUP) in the main thread: every session is told to stop, the main
  thread waits for all undos (signals held meanwhile), then KeyboardInterrupt propagates.
- :meth:`DeviceIntrusive.debug_captures` are the captures to add to the host's
  :class:`~ipsec_doctor.model.capture.DeviceCapture` (commands ``debug crypto ...``, unique);
  :func:`with_debug_events` adds the debug lines' log events to a parsed
  :class:`~ipsec_doctor.model.state.DeviceState`, so that findings quote them. Ping and clear
  evidence (ACL counters, snapshots) are in :meth:`DeviceIntrusive.evidence` and
  :meth:`DeviceIntrusive.summary` (their commands repeat plan commands, so they are kept out
  of the DeviceCapture).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipsec_doctor.collect.audit_log import AuditLog, default_audit_path
from ipsec_doctor.collect.base import Clock, SystemClock
from ipsec_doctor.collect.intrusive import (
    MAX_DEBUG_SECONDS,
    ClearPlan,
    ClearResult,
    Confirm,
    DebugResult,
    DebugSession,
    IntrusiveRefusedError,
    LogSource,
    PingResult,
    PingTarget,
    Warn,
    execute_clear,
    ping_target,
    plan_clear,
    production_flag,
    run_ping,
    terminal_confirm,
)
from ipsec_doctor.collect.intrusive_cli import signals_deferred, signals_interrupt
from ipsec_doctor.errors import IpsecDoctorError, UsageError
from ipsec_doctor.model.capture import CaptureSet, CommandCapture
from ipsec_doctor.model.features import Feature
from ipsec_doctor.model.state import DeviceState, Evidence

if TYPE_CHECKING:
    from nornir.core import Nornir

    from ipsec_doctor.collect.nornir_collector import CollectOptions, NetmikoCommandRunner


@dataclass(frozen=True)
class IntrusiveOptions:
    """What the user asked for (all off by default: nothing intrusive runs)."""

    debug: bool = False
    debug_seconds: float = 60.0
    debug_engine: bool = False
    debug_source: LogSource = "auto"
    ping: bool = False
    ping_destination: str | None = None
    ping_source: str | None = None
    ping_repeat: int | None = None
    clear: bool = False
    clear_wait: float = 60.0
    yes: bool = False
    allow_intrusive: bool = False
    audit_log: Path | None = None
    poll_interval: float = 2.0
    read_timeout: float = 30.0

    @property
    def requested(self) -> bool:
        return self.debug or self.ping or self.clear

    @property
    def debugs(self) -> tuple[str, ...]:
        """The debugs of an IKEv1 router, or of one whose features are unknown."""
        return ("isakmp", "ipsec", "engine") if self.debug_engine else ("isakmp", "ipsec")

    def debugs_for(self, features: Mapping[str, bool]) -> tuple[str, ...]:
        """The debugs for a router with these features (see the module contract)."""
        if not features.get(Feature.IKEV2.value):
            return self.debugs
        ike = ("ikev2",) if features.get(Feature.IKEV1.value) is False else ("ikev2", "isakmp")
        return (*ike, *(d for d in self.debugs if d != "isakmp"))


def add_intrusive_options(parser: argparse.ArgumentParser) -> None:
    """The ``check`` flags of the intrusive steps (and ``--yes`` / ``--allow-intrusive``)."""
    group = parser.add_argument_group(
        "intrusive steps (run only when asked; scoped to the peer; always undone)"
    )
    group.add_argument(
        "--debug",
        action="store_true",
        help="turn on debug crypto isakmp/ipsec (ikev2 on IKEv2 routers) limited to the peer, "
        "read them, turn them off",
    )
    group.add_argument(
        "--debug-seconds",
        type=float,
        default=60.0,
        metavar="N",
        help=f"read debugs at most N seconds (default 60, at most {MAX_DEBUG_SECONDS:g})",
    )
    group.add_argument("--debug-engine", action="store_true", help="also debug crypto engine")
    group.add_argument(
        "--debug-source",
        choices=("auto", "buffer", "monitor"),
        default="auto",
        help="read debugs from the logging buffer or the terminal (default: what works)",
    )
    group.add_argument(
        "--ping",
        action="store_true",
        help="extended ping from the protected LAN to the remote protected network",
    )
    group.add_argument("--ping-destination", metavar="ADDRESS", help="host to ping")
    group.add_argument("--ping-source", metavar="INTERFACE", help="interface (or address)")
    group.add_argument("--ping-repeat", type=int, metavar="N", help="echoes to send (5)")
    group.add_argument(
        "--clear",
        action="store_true",
        help="clear crypto sa/isakmp of this peer only (asks first) and time the recovery",
    )
    group.add_argument(
        "--clear-wait",
        type=float,
        default=60.0,
        metavar="N",
        help="seconds to wait for the tunnel to come back after --clear (default 60)",
    )
    group.add_argument("--yes", action="store_true", help="confirm --clear without asking")
    group.add_argument(
        "--allow-intrusive",
        action="store_true",
        help="allow intrusive steps on hosts marked production: true in the inventory",
    )
    group.add_argument(
        "--audit-log",
        type=Path,
        metavar="FILE",
        help="audit log of intrusive commands (default $IPSEC_DOCTOR_STATE_DIR/intrusive.log "
        "or ~/.local/state/ipsec-doctor/intrusive.log)",
    )


def options_from_args(args: argparse.Namespace) -> IntrusiveOptions:
    """:class:`IntrusiveOptions` from the flags of :func:`add_intrusive_options`."""
    seconds = float(getattr(args, "debug_seconds", 60.0))
    if not 0 < seconds <= MAX_DEBUG_SECONDS:
        raise UsageError(f"--debug-seconds must be within 0-{MAX_DEBUG_SECONDS:g}")
    return IntrusiveOptions(
        debug=bool(getattr(args, "debug", False)),
        debug_seconds=seconds,
        debug_engine=bool(getattr(args, "debug_engine", False)),
        debug_source=getattr(args, "debug_source", "auto") or "auto",
        ping=bool(getattr(args, "ping", False)),
        ping_destination=getattr(args, "ping_destination", None),
        ping_source=getattr(args, "ping_source", None),
        ping_repeat=getattr(args, "ping_repeat", None),
        clear=bool(getattr(args, "clear", False)),
        clear_wait=float(getattr(args, "clear_wait", 60.0)),
        yes=bool(getattr(args, "yes", False)),
        allow_intrusive=bool(getattr(args, "allow_intrusive", False)),
        audit_log=getattr(args, "audit_log", None),
    )


@dataclass
class DeviceIntrusive:
    """What the intrusive steps did on one device."""

    device: str
    peer: str
    debug: DebugResult | None = None
    ping: PingResult | None = None
    clear: ClearResult | None = None
    clear_plan: ClearPlan | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def debug_captures(self) -> list[CommandCapture]:
        """The debug captures, to add to this host's DeviceCapture (commands are unique)."""
        return list(self.debug.captures) if self.debug is not None else []

    def evidence(self) -> list[Evidence]:
        """Ping (ACL counters, success rate) and debug lines that ended the negotiation."""
        found: list[Evidence] = []
        if self.ping is not None:
            found.extend(self.ping.evidence())
        if self.debug is not None and self.debug.end_message:
            for item in self.debug.evidence():
                if item.line == self.debug.end_message:
                    found.append(item)
                    break
        return found

    def summary(self) -> list[str]:
        """Lines for a person: what ran and what came of it."""
        lines: list[str] = []
        if self.debug is not None:
            d = self.debug
            end = f": {d.end_message}" if d.end_message else ""
            lines.append(
                f"{self.device}: debugs ({', '.join(d.debugs) or 'none'}) read {len(d.lines)} "
                f"line(s) from the {d.source} in {d.seconds:.0f} s, {d.ended}{end}; "
                + ("turned off again" if d.undone else "NOT VERIFIED OFF")
            )
        if self.ping is not None:
            p = self.ping
            hits = "" if p.hits_delta is None else f", crypto ACL {p.target.acl} +{p.hits_delta}"
            rate = "?" if p.success_percent is None else f"{p.success_percent}%"
            lines.append(f"{self.device}: `{p.command}` success {rate}{hits} ({p.target.how})")
        if self.clear is not None:
            lines.append(self.clear.summary())
        lines += [f"{self.device}: {note}" for note in self.notes]
        if self.error:
            lines.append(f"{self.device}: {self.error}")
        return lines


def with_debug_events(state: DeviceState, result: DebugResult | None) -> DeviceState:
    """``state`` with the debug lines' log events added (classified by the platform's
    signature table; their evidence names the ``debug crypto ...`` command)."""
    if result is None or not result.messages:
        return state
    from ipsec_doctor.parse.logs import classify_log_text

    events = list(state.logs or ())
    unclassified = list(state.unclassified_log_lines)
    for capture in result.captures:
        if not capture.raw.strip():
            continue
        found, rest = classify_log_text(
            state.platform,
            capture.raw,
            reference=state.clock,
            command=capture.command,
            device=state.name,
        )
        events.extend(found)
        unclassified.extend(rest)
    return replace(state, logs=tuple(events), unclassified_log_lines=tuple(unclassified))


# -- running --------------------------------------------------------------------------------------


@dataclass
class _Host:
    name: str
    peer: str
    runner: NetmikoCommandRunner
    platform: str
    outcome: DeviceIntrusive
    target: PingTarget | None = None
    features: Mapping[str, bool] = field(default_factory=dict)


def _open(nr: Nornir, name: str, options: CollectOptions) -> NetmikoCommandRunner:
    from ipsec_doctor.collect.nornir_collector import NetmikoCommandRunner, host_settings

    host = nr.inventory.hosts[name]
    runner = NetmikoCommandRunner(host, nr.config, host_settings(host, options), options)
    runner.open()
    if runner.enable_error:
        runner.close()
        raise IntrusiveRefusedError(
            f"{runner.enable_error}; debug and clear need privileged EXEC, nothing was run"
        )
    return runner


def run_intrusive(
    nr: Nornir,
    peer_for_host: Mapping[str, str],
    options: IntrusiveOptions,
    *,
    hosts: Sequence[str] | None = None,
    clock: Clock | None = None,
    confirm: Confirm | None = None,
    warn: Warn | None = None,
    collect_options: CollectOptions | None = None,
    progress: Callable[[str], None] | None = None,
    captures: CaptureSet | None = None,
) -> dict[str, DeviceIntrusive]:
    """Run the requested intrusive steps on ``hosts`` (see the module contract); ``captures``,
    the run's collection, tells which debugs each host needs."""
    from ipsec_doctor.collect.nornir_collector import CollectOptions

    names = list(hosts if hosts is not None else peer_for_host)
    if not options.requested or not names:
        return {}
    unknown = [n for n in names if n not in nr.inventory.hosts]
    if unknown:
        raise UsageError(f"not in the inventory: {', '.join(unknown)}")
    production = [n for n in names if production_flag(dict(nr.inventory.hosts[n].data))]
    if production and not options.allow_intrusive:
        raise IntrusiveRefusedError(
            f"{', '.join(production)} marked production: true in the inventory; refusing "
            "intrusive steps there without --allow-intrusive"
        )
    audit = AuditLog(options.audit_log or default_audit_path())
    audit.check_writable()
    say = progress or (lambda message: None)
    clock = clock or SystemClock()
    collect_options = collect_options or CollectOptions()
    confirm = confirm or terminal_confirm(options.yes)
    results: dict[str, DeviceIntrusive] = {}
    opened: list[_Host] = []
    try:
        for name in names:  # main thread: log in, plan and confirm clears, derive ping targets
            peer = peer_for_host[name]
            outcome = DeviceIntrusive(device=name, peer=peer)
            results[name] = outcome
            try:
                runner = _open(nr, name, collect_options)
            except IpsecDoctorError as exc:
                outcome.error = str(exc)
                continue
            platform = nr.inventory.hosts[name].platform or "cisco_ios"
            item = _Host(name, peer, runner, platform, outcome)
            if options.debug and captures is not None and name in captures.devices:
                item.features = _features(captures, name, peer)
            opened.append(item)
            try:
                if options.clear:
                    plan = plan_clear(
                        runner.connection,
                        peer,
                        device=name,
                        platform=platform,
                        clock=clock,
                        read_timeout=options.read_timeout,
                        known_secrets=runner.settings.known,
                    )
                    outcome.clear_plan = plan
                    if not confirm(plan.describe()):
                        outcome.clear = ClearResult(plan, False, message="not confirmed")
                if options.ping:
                    item.target = ping_target(
                        runner.connection,
                        peer,
                        device=name,
                        destination=options.ping_destination,
                        source=options.ping_source,
                        platform=platform,
                        read_timeout=options.read_timeout,
                        known_secrets=runner.settings.known,
                    )
            except IntrusiveRefusedError:
                raise
            except IpsecDoctorError as exc:
                outcome.error = str(exc)
        runnable = [item for item in opened if not item.outcome.error]
        _run_parallel(runnable, options, audit, clock, warn, say)
    finally:
        for item in opened:
            item.runner.close()
    return results


def _features(captures: CaptureSet, name: str, peer: str) -> dict[str, bool]:
    """The host's features (IKEv1, IKEv2 ...) as its collected outputs show them."""
    from ipsec_doctor.collect.plan_runner import parse_layer_deriver

    return parse_layer_deriver(captures.devices[name], peer).features


def _run_parallel(
    items: Sequence[_Host],
    options: IntrusiveOptions,
    audit: AuditLog,
    clock: Clock,
    warn: Warn | None,
    say: Callable[[str], None],
) -> None:
    if not items:
        return
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="ipsec-doctor-intrusive")
    futures: dict[Future[None], _Host] = {
        pool.submit(_run_host, item, options, audit, clock, warn, say, stop): item for item in items
    }
    try:
        with signals_interrupt():  # SIGTERM / SIGHUP: stop and undo like Ctrl-C
            pending = set(futures)
            while pending:
                _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
    except BaseException:
        stop.set()
        message = "ipsec-doctor: interrupted; turning the debugs off first, please wait"
        (warn or _stderr)(message)
        with signals_deferred():
            wait(set(futures))
        raise
    finally:
        pool.shutdown(wait=True)
    for future, item in futures.items():
        error = future.exception()
        if error is not None and not item.outcome.error:
            item.outcome.error = f"{type(error).__name__}: {error}"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_host(
    item: _Host,
    options: IntrusiveOptions,
    audit: AuditLog,
    clock: Clock,
    warn: Warn | None,
    say: Callable[[str], None],
    stop: threading.Event,
) -> None:
    """One host: debugs on, clear, ping, wait, watch, debugs off (the module contract)."""
    outcome = item.outcome
    runner = item.runner
    known = runner.settings.known
    common: dict[str, Any] = {
        "platform": item.platform,
        "read_timeout": options.read_timeout,
        "known_secrets": known,
    }

    def reconnect() -> Any:
        return runner.connection if runner.reconnect() else None

    def traffic(connection: Any) -> None:
        if options.ping and item.target is not None:
            outcome.ping = run_ping(
                connection,
                item.peer,
                device=item.name,
                target=item.target,
                repeat=options.ping_repeat,
                audit=audit,
                production=False,
                **common,
            )
            say(f"{item.name}: pinged {item.target.destination} from {item.target.source}")

    def clear_then_traffic(connection: Any) -> None:
        plan = outcome.clear_plan
        if plan is not None and outcome.clear is None:  # planned and confirmed
            outcome.clear = execute_clear(
                connection,
                plan,
                clock=clock,
                wait_seconds=options.clear_wait,
                poll_interval=options.poll_interval,
                trigger=lambda: traffic(connection),
                audit=audit,
                stop=stop,
                **common,
            )
            say(outcome.clear.summary())
        else:
            traffic(connection)

    session: DebugSession | None = None
    try:
        if options.debug:
            session = DebugSession(
                runner.connection,
                peer=item.peer,
                device=item.name,
                debugs=options.debugs_for(item.features),
                max_seconds=options.debug_seconds,
                clock=clock,
                reconnect=reconnect,
                platform=item.platform,
                source=options.debug_source,
                poll_interval=options.poll_interval,
                read_timeout=options.read_timeout,
                audit=audit,
                allow_intrusive=True,  # checked for all hosts before any session was opened
                warn=warn,
                on_started=lambda s: say(f"{item.name}: debugs on ({', '.join(s.debugs)})"),
                known_secrets=known,
                stop=stop,
            )
            with session:
                clear_then_traffic(session.trigger_cli)
                session.watch()
            say(f"{item.name}: debugs off")
        else:
            clear_then_traffic(runner.connection)
    except IpsecDoctorError as exc:
        outcome.error = str(exc)
    finally:
        if session is not None:
            outcome.debug = session.result


def add_debug_captures(results: Mapping[str, DeviceIntrusive], captures: CaptureSet) -> CaptureSet:
    """Add every host's debug captures to ``captures`` (changed in place, and returned)."""
    for name, outcome in results.items():
        device = captures.devices.get(name)
        if device is not None:
            device.captures.extend(outcome.debug_captures())
    return captures


__all__ = [
    "DeviceIntrusive",
    "IntrusiveOptions",
    "add_debug_captures",
    "add_intrusive_options",
    "options_from_args",
    "run_intrusive",
    "with_debug_events",
]
