"""Collect and diagnose one device for the audit: one session, every tunnel, shared outputs.

Contract:
- :func:`audit_device` runs over any :class:`~ipsec_doctor.collect.base.CommandRunner`
  (netmiko live, files offline). It splits the platform plan (:func:`split_plan`): steps
  without variables (their variants' included), and steps whose variables are only ``{peer}``
  (no variants) but that list a wider output without variables (``show crypto ipsec sa peer
  {peer}`` -> ``show crypto ipsec sa``, ``show access-lists {crypto_acl}`` -> ``show
  access-lists``), are *shared*: run once per
  device, sampled twice when ``interval`` is set. The other steps (routes, interfaces) run per
  tunnel, once each (a :class:`CachingRunner` never sends the same command twice per device).
  The shared steps' ``when`` conditions are decided by :class:`SharedDeriver`: the parse
  layer's deriver until the configuration has decided every feature, then that answer.
- The shared outputs are parsed without a peer and the device's tunnels enumerated
  (:func:`~ipsec_doctor.audit.tunnels.enumerate_tunnels`, plus the inventory's declared
  peers). For each tunnel the per-tunnel steps run with the plan variables derived from the
  shared state (``derive_variables``), the tunnel's capture (shared + its own outputs) is
  parsed for the peer by the parse layer and diagnosed alone (``diagnose``); both ends are
  paired later, by the runner, once the far end is known.
- Failures never raise: a device that cannot be opened is a :class:`DeviceAudit` with
  ``error``; a lost session is reconnected once per device (after that every command not yet
  run ends as ``error``); a command that timed out is not retried for the next tunnel.
- :func:`audit_host` is the Nornir task: it opens the host's netmiko session the way
  ``check`` does (:class:`~ipsec_doctor.collect.nornir_collector.NetmikoCommandRunner`: one
  round trip per command, the prompt found once), calls :func:`audit_device`, closes the
  session, and hands the result to ``emit`` from the worker thread as soon as it is ready.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import ip_address
from typing import Any

from nornir.core.task import Result, Task

from ipsec_doctor.audit.model import DeviceOutcome
from ipsec_doctor.audit.tunnels import TunnelRef, enumerate_tunnels
from ipsec_doctor.collect.base import (
    Clock,
    CommandCollectionError,
    CommandRunner,
    ConnectionLostError,
    DeviceCollectionError,
    SystemClock,
)
from ipsec_doctor.collect.nornir_collector import (
    CollectOptions,
    NetmikoCommandRunner,
    host_settings,
)
from ipsec_doctor.collect.plan_runner import (
    Derivation,
    PlanStep,
    parse_layer_deriver,
    plan_info,
    run_plan,
)
from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.diagnose import Settings, diagnose
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.findings import Finding
from ipsec_doctor.model.report import CommandRecord
from ipsec_doctor.model.state import DeviceState, Interface, RouteLookup, TunnelView
from ipsec_doctor.parse import converter_module, parse_device
from ipsec_doctor.parse.derive import derive_variables
from ipsec_doctor.platforms.loader import load_platform

_VARIABLE = re.compile(r"\{(\w+)\}")
#: run_plan wants a peer even for steps that use none
_NO_PEER = "0.0.0.0"
#: Plan steps whose outputs play no part in finding a device's tunnels (not parsed for it)
NOT_FOR_ENUMERATION = frozenset({"logging"})


def split_plan(steps: Sequence[PlanStep]) -> tuple[list[PlanStep], list[PlanStep]]:
    """(shared steps, per-tunnel steps) of a plan (see the module contract)."""
    shared, per_tunnel = _split(tuple(steps))
    return list(shared), list(per_tunnel)


@lru_cache(maxsize=16)
def _split(steps: tuple[PlanStep, ...]) -> tuple[tuple[PlanStep, ...], tuple[PlanStep, ...]]:
    shared: list[PlanStep] = []
    per_tunnel: list[PlanStep] = []
    for step in steps:
        if not step.variables and not step.optional_variables:
            shared.append(step)
            continue
        wide = next((w for w in step.wider if not _VARIABLE.search(w)), None)
        if wide is not None and set(step.variables) == {"peer"} and not step.optional_variables:
            shared.append(replace(step, command=" ".join(wide.split()), wider=(), variants=()))
        else:
            per_tunnel.append(step)
    return tuple(shared), tuple(per_tunnel)


def _enumeration_state(base: DeviceCapture, steps: Sequence[PlanStep]) -> DeviceState:
    """The shared outputs parsed without a peer, logs left out (they tell no tunnel)."""
    skip = {" ".join(s.command.split()) for s in steps if s.id in NOT_FOR_ENUMERATION}
    kept = [c for c in base.captures if " ".join(c.command.split()) not in skip]
    return parse_device(replace(base, captures=kept), None)


class SharedDeriver:
    """The parse layer's deriver for the shared steps, kept once the features are settled.

    The shared steps use no variable but ``{peer}`` (given), so their derivations serve only
    the ``when`` conditions. ``device_features`` (``ipsec_doctor.parse.derive``) decides the
    features from the running configuration, and from ``show crypto map`` only while the
    configuration is unknown; so once a derivation knows every feature word the steps name,
    the configuration has decided them and later outputs cannot change them: that derivation
    is returned from then on instead of parsing the growing capture again (one parse per
    device instead of one per conditional step). Before any output was read, nothing is known
    and nothing is parsed.
    """

    def __init__(self, steps: Sequence[PlanStep]) -> None:
        self.words = frozenset(word for step in steps for word in step.when)
        self.settled: Derivation | None = None
        self.parses = 0

    def __call__(self, capture: DeviceCapture, peer: str) -> Derivation:
        if self.settled is not None:
            return self.settled
        if not any(c.ok for c in capture.captures):
            return Derivation()  # nothing read yet: nothing known, nothing to parse
        self.parses += 1
        found = parse_layer_deriver(capture, peer)
        if self.words and self.words <= found.features.keys():
            self.settled = found
        return found


def _merge(into: DeviceCapture, captures: Iterable[CommandCapture]) -> None:
    have = {(c.command, c.sample) for c in into.captures}
    for capture in captures:
        if (capture.command, capture.sample) not in have:
            into.captures.append(capture)
            have.add((capture.command, capture.sample))


class CachingRunner:
    """A CommandRunner that sends each (command, sample) once per device.

    Outputs and command failures are remembered; a lost session is reconnected once per
    device, after which every new command fails at once with the first loss's reason.
    """

    def __init__(self, inner: CommandRunner) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, int], str | CommandCollectionError] = {}
        self.sent = 0
        self.reconnects = 0
        self.dead = ""

    @property
    def device(self) -> str:
        return self.inner.device

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        key = (" ".join(command.split()).lower(), sample)
        hit = self.cache.get(key)
        if isinstance(hit, str):
            return hit
        if hit is not None:
            raise hit
        if self.dead:
            raise ConnectionLostError(self.dead, device=self.device, command=command)
        self.sent += 1
        try:
            output = self.inner.run(command, sample=sample, read_timeout=read_timeout)
        except ConnectionLostError as exc:
            if self.reconnects:
                self.dead = str(exc)
            raise
        except CommandCollectionError as exc:
            self.cache[key] = exc
            raise
        self.cache[key] = output
        return output

    def reconnect(self) -> bool:
        if self.reconnects or self.dead:
            return False
        self.reconnects += 1
        try:
            ok = self.inner.reconnect()
        except Exception:
            ok = False
        if not ok:
            self.dead = (
                self.dead or f"{self.device}: the session was lost and could not be reopened"
            )
        return ok


@dataclass
class TunnelState:
    """One tunnel of a device: how it was found, its parsed state, its one-end diagnosis."""

    ref: TunnelRef
    state: DeviceState
    findings: tuple[Finding, ...]


@dataclass
class DeviceAudit:
    """Everything the audit learnt from one device (picklable: crosses process borders)."""

    name: str
    platform: str
    host: str = ""
    hostname: str = ""
    error: str = ""
    note: str = ""
    commands: tuple[CommandRecord, ...] = ()
    addresses: tuple[str, ...] = ()
    tunnels: list[TunnelState] = field(default_factory=list)
    base: DeviceCapture | None = None  # the shared outputs (to parse for another peer)
    elapsed: float = 0.0
    finished_at: datetime | None = None

    @property
    def reachable(self) -> bool:
        return not self.error

    def outcome(self) -> DeviceOutcome:
        ok = sum(1 for c in self.commands if c.outcome == Outcome.OK.value)
        return DeviceOutcome(
            name=self.name,
            platform=self.platform,
            host=self.host,
            hostname=self.hostname,
            reachable=self.reachable,
            error=self.error,
            commands_ok=ok,
            commands_failed=len(self.commands) - ok,
            elapsed=self.elapsed,
            addresses=self.addresses,
            tunnels=len(self.tunnels),
            note=self.note,
        )

    def state_for(self, peer: str) -> DeviceState | None:
        """The parsed state for ``peer``: its tunnel's, else the shared outputs parsed for it."""
        for tunnel in self.tunnels:
            if tunnel.ref.peer == peer:
                return tunnel.state
        if self.error:
            return DeviceState(name=self.name, platform=self.platform, unreachable=self.error)
        if self.base is None:
            return None
        return parse_device(self.base, peer)


def _cheap_deriver(
    base_state: DeviceState, platform: str, steps: Sequence[PlanStep]
) -> Callable[[DeviceCapture, str], Derivation]:
    """Derive per-tunnel variables from the shared state plus the tunnel's own outputs.

    Only the tunnel's own outputs (routes, interfaces) are parsed, by the platform converter's
    ``convert_command``; anything unexpected falls back to the parse layer's full deriver.
    """
    converter = converter_module(platform)
    loaded = load_platform(platform)
    # a converter's convert_value gives the section alone, memoised for the tunnel's parse
    convert: Callable[..., Any] = getattr(converter, "convert_value", None) or (
        lambda *args, **kwargs: converter.convert_command(*args, **kwargs)[1]
    )

    def derive(capture: DeviceCapture, peer: str) -> Derivation:
        try:
            values = derive_variables(base_state, peer)
            routes: dict[str, RouteLookup] = dict(base_state.routes)
            interfaces: dict[str, Interface] = dict(base_state.interfaces)
            for _round in range(3):  # values unlock commands whose outputs unlock values
                for step in steps:
                    wanted = step.render(values)
                    if wanted is None:
                        continue
                    found = capture.get(wanted)
                    if found is None or not found.ok or step.id in routes:
                        continue
                    value = convert(
                        step.id,
                        found.command,
                        found.raw,
                        device=capture.name,
                        sample=found.sample,
                        peer=peer,
                        platform=loaded,
                    )
                    if isinstance(value, RouteLookup):
                        routes[step.id] = value
                    elif isinstance(value, Interface):
                        interfaces[value.name] = value
                state = replace(base_state, routes=routes, interfaces=interfaces)
                more = derive_variables(state, peer)
                if more == values:
                    break
                values = more
            return Derivation(values={k: str(v) for k, v in values.items()})
        except Exception:  # never worse than the parse layer's own deriver
            return parse_layer_deriver(capture, peer)

    return derive


def _records(captures: Iterable[CommandCapture]) -> tuple[CommandRecord, ...]:
    seen: dict[tuple[str, int], CommandRecord] = {}
    for capture in captures:
        seen.setdefault((capture.command, capture.sample), CommandRecord.from_capture(capture))
    return tuple(seen.values())


def _enumeration_note(state: DeviceState) -> str:
    if state.crypto_maps is not None or state.ike_sas is not None or state.ipsec_sas is not None:
        return ""
    sections = {"crypto_map", "isakmp_sa", "ipsec_sa", "running_config"}
    reasons = [
        f"`{p.command}` {p.outcome}" + (f" ({p.reason})" if p.reason else "")
        for p in state.problems
        if p.section in sections or not p.section
    ]
    return "its tunnels could not be enumerated" + (f": {'; '.join(reasons)}" if reasons else "")


def audit_device(
    runner: CommandRunner,
    *,
    name: str,
    platform: str,
    host: str = "",
    hostname: str = "",
    declared: Iterable[str] = (),
    interval: float | None = None,
    clock: Clock | None = None,
    read_timeout: float | None = None,
    known_secrets: Sequence[str] = (),
    settings: Settings | None = None,
    preamble: Sequence[CommandCapture] = (),
) -> DeviceAudit:
    """Collect, enumerate, parse and diagnose one device (see the module contract)."""
    started = time.monotonic()
    info = plan_info(platform)
    shared_steps, tunnel_steps = split_plan(info.steps)
    timeout = read_timeout or info.read_timeout
    clock = clock or SystemClock()
    cache = CachingRunner(runner)
    base = DeviceCapture(
        name=name,
        platform=platform,
        host=host,
        hostname=hostname,
        captures=list(preamble),
        started_at=datetime.now(UTC),
    )
    run_plan(
        cache,
        shared_steps,
        device=base,
        peer=_NO_PEER,
        interval=None,
        clock=clock,
        read_timeout=timeout,
        deriver=SharedDeriver(shared_steps),
        known_secrets=known_secrets,
    )
    base_state = _enumeration_state(base, shared_steps)
    if interval is not None:  # second samples of every counter, shared and per tunnel, once
        sampled = [s for s in shared_steps if s.samples > 1]
        for ref in enumerate_tunnels(base_state, declared):
            values = derive_variables(base_state, ref.peer)
            for step in tunnel_steps:
                command = step.render(values) if step.samples > 1 else None
                if command is not None:
                    sampled.append(replace(step, command=command, variants=()))
        second = DeviceCapture(name=name, platform=platform, host=host, hostname=hostname)
        run_plan(
            cache,
            list({s.command: s for s in sampled}.values()),
            device=second,
            peer=_NO_PEER,
            interval=interval,
            clock=clock,
            read_timeout=timeout,
            known_secrets=known_secrets,
        )
        _merge(base, second.captures)
        base_state = _enumeration_state(base, shared_steps)
    refs = enumerate_tunnels(base_state, declared)
    audit = DeviceAudit(
        name=name,
        platform=platform,
        host=host,
        hostname=hostname or base_state.hostname,
        note="" if refs else _enumeration_note(base_state),
        base=base,
    )
    derive = _cheap_deriver(base_state, platform, tunnel_steps)
    all_captures: list[CommandCapture] = list(base.captures)
    addresses = {str(a) for a in base_state.own_addresses()}
    for ref in refs:
        capture = DeviceCapture(
            name=name,
            platform=platform,
            host=host,
            hostname=audit.hostname,
            captures=list(base.captures),
            started_at=base.started_at,
        )
        values = {k: v for k, v in derive_variables(base_state, ref.peer).items() if k != "peer"}
        run_plan(
            cache,
            tunnel_steps,
            device=capture,
            peer=ref.peer,
            interval=None,
            clock=clock,
            read_timeout=timeout,
            deriver=derive,
            known_secrets=known_secrets,
            variables=values,
        )
        all_captures.extend(capture.captures[len(base.captures) :])
        state = parse_device(capture, ref.peer)
        addresses.update(str(a) for a in state.own_addresses())
        findings = diagnose(TunnelView(local=state, peer=ip_address(ref.peer)), settings)
        audit.tunnels.append(TunnelState(ref=ref, state=state, findings=tuple(findings)))
    audit.commands = _records(all_captures)
    audit.addresses = tuple(sorted(addresses))
    audit.elapsed = time.monotonic() - started
    audit.finished_at = datetime.now(UTC)
    return audit


# -- the Nornir task ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCollectOptions:
    """How the audit collects (per-device timeouts come in through ``collect``)."""

    interval: float | None = None
    collect: CollectOptions = field(default_factory=CollectOptions)
    declared: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    settings: Settings | None = None


def audit_host(
    task: Task,
    options: AuditCollectOptions,
    emit: Callable[[DeviceAudit], None] | None = None,
) -> Result:
    """Nornir task: audit one host; the result is its :class:`DeviceAudit` (also emitted)."""
    host = task.host
    started = time.monotonic()
    runner: NetmikoCommandRunner | None = None
    known: tuple[str, ...] = ()
    try:
        hs = host_settings(host, options.collect)
        known = hs.known
        runner = NetmikoCommandRunner(host, task.nornir.config, hs, options.collect)
        runner.open()
        preamble: list[CommandCapture] = []
        if runner.enable_error:
            preamble.append(
                CommandCapture("enable", 1, Outcome.REJECTED, "", error=runner.enable_error)
            )
        audit = audit_device(
            runner,
            name=host.name,
            platform=hs.platform,
            host=hs.hostname,
            hostname=runner.prompt.rstrip("#>$% ").strip(),
            declared=options.declared.get(host.name, ()),
            interval=options.interval,
            read_timeout=hs.read_timeout or options.collect.read_timeout,
            known_secrets=known,
            settings=options.settings,
            preamble=preamble,
        )
    except (DeviceCollectionError, ConfigError, UsageError) as exc:
        audit = _failed(host.name, host.platform or "", str(host.hostname or ""), str(exc), known)
    except Exception as exc:  # one bad router never stops the audit
        message = f"{host.name}: internal error: {type(exc).__name__}: {exc}"
        audit = _failed(host.name, host.platform or "", str(host.hostname or ""), message, known)
    finally:
        if runner is not None:
            runner.close()
    audit.elapsed = time.monotonic() - started
    audit.finished_at = datetime.now(UTC)
    if emit is not None:
        emit(audit)
    return Result(host=host, result=audit, failed=bool(audit.error))


def _failed(name: str, platform: str, host: str, message: str, known: Sequence[str]) -> DeviceAudit:
    return DeviceAudit(
        name=name, platform=platform, host=host, error=redact(message, known) or message
    )


def failed_device(name: str, platform: str, host: str, message: str) -> DeviceAudit:
    """A device the audit could not collect (used when a worker process dies)."""
    return _failed(name, platform, host, message, ())
