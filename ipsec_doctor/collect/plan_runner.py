"""Runs a platform command plan against one device: the one code path for live and offline.

Contract:
- Input: the plan's steps (:func:`steps_from_plan` accepts the loaded plan object or the raw
  YAML mapping), a :class:`~ipsec_doctor.collect.base.CommandRunner`, the peer being checked,
  the sampling ``interval`` and a :class:`~ipsec_doctor.collect.base.Clock`. Output: the
  :class:`~ipsec_doctor.model.capture.DeviceCapture` with one
  :class:`~ipsec_doctor.model.capture.CommandCapture` per command run (and sample).
- Variables: ``{peer}`` is given; any other ``{name}`` is derived from this device's earlier
  outputs by calling the deriver (by default ``derive_variables(parse_device(partial, peer),
  peer)`` of the parse layer) only when a command needs a variable not yet known and new
  outputs arrived since the last derivation. A command whose variable cannot be derived is
  recorded as ``MISSING`` with the reason; a derived value that is not one safe word (it would
  be typed on a device CLI or shell) is refused the same way. A step's ``variants`` (other
  forms of its command: ``show ip route vrf {fvrf} {peer}``) are tried first: the first whose
  variables are all known runs instead of the command; their variables are optional (derived
  again when new outputs arrived, never a reason to record the step as missing).
- Order: the ``samples: 2`` commands are run first (sample 1) in plan order; if one needs a
  variable that is not derivable yet, the pending commands that precede it in the plan are run
  first (``show crypto map`` before ``show access-lists {crypto_acl}``), and if that does not
  help it is retried after the others. Then every other command runs in plan order, filling the
  interval; then the runner waits on the clock until ``interval`` seconds have passed since the
  last first sample ended, and reads sample 2 of each sampled command whose sample 1 was OK,
  with the same command text. A sample 2 is never taken (nor recorded) after a failed sample 1.
  ``interval=None`` takes one sample only. Two steps that resolve to the same command text
  (``show interfaces {crypto_interface}`` and ``{source_interface}`` naming one interface)
  run it once.
- Conditions: a step with ``when`` (feature words, see
  :class:`~ipsec_doctor.model.features.Feature`) runs only on a device that has one of those
  features. The deriver also reports the device's features (by default
  ``device_features(state)`` of the parse layer); a feature not reported is unknown. Before a
  conditional step is decided with a feature still unknown, the pending single-sample steps
  that precede it in the plan are run (the configuration is read first); a feature that stays
  unknown runs the step (unknown is not absent). A step whose features are all absent is left
  out: nothing is recorded for it (no capture, no ``MISSING``), only a progress event saying
  so, and the converters leave its section out the same way.
- Every command has its own try/except: a timeout, a refusal or an unexpected error is
  recorded for that command and the plan goes on. A dropped connection triggers one
  :meth:`~ipsec_doctor.collect.base.CommandRunner.reconnect` per device; if that fails, this
  and every remaining command is recorded as ``ERROR`` with the reason.
- Device refusals (``% Invalid input detected``, ``% Incomplete command``, ``% Ambiguous
  command``, ``% Unknown command``, ``Permission denied``) near the top of an output become
  ``REJECTED`` with the raw text kept.
- Every raw text and error message is redacted (:func:`~ipsec_doctor.collect.redaction.redact`)
  before it is stored.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ipsec_doctor.collect.base import (
    Clock,
    CommandCollectionError,
    CommandRunner,
    ConnectionLostError,
    ProgressCallback,
    ProgressEvent,
)
from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.lookup import optional_variables_of, render_command, variables_of
from ipsec_doctor.platforms.loader import load_platform

DEFAULT_READ_TIMEOUT = 20.0

# Sample plan line: "show access-lists {crypto_acl}" -> variable "crypto_acl"
_VARIABLE = re.compile(r"\{(\w+)\}")

# A value typed into a device CLI or shell: one word of a safe alphabet.
# Sample values: "10.2.2.1", "VPN-ACL", "GigabitEthernet0/1", "192.168.1.0", "Port-channel1.100"
_SAFE_VALUE = re.compile(r"^[\w.:/@+,%=-]{1,128}$")

# Device refusals, matched on the first few non-blank lines of an output.
# Sample device line: "% Invalid input detected at '^' marker."
# Sample device line: "ERROR: % Invalid input detected at '^' marker."   (ASA)
# Sample device line: "% Incomplete command."
# Sample device line: '% Ambiguous command:  "show cr"'
# Sample device line: "% Unknown command or computer name, or unable to find computer address"
_REJECTION = re.compile(
    r"%\s*(?:Invalid input detected|Incomplete command|Ambiguous command|Unknown command)",
    re.IGNORECASE,
)
# Sample device line: "bash: /usr/sbin/swanctl: Permission denied"
# Sample device line: "sudo: a password is required" is not a refusal of the command itself;
# Sample device line: "% Permission denied" / "Permission denied (publickey)."
_PERMISSION = re.compile(r"\bPermission denied\b", re.IGNORECASE)
_REJECTION_LINES = 3


def rejection_line(text: str) -> str | None:
    """The refusal line if the device refused the command (see module contract), else None."""
    seen = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        if _REJECTION.search(line) or _PERMISSION.search(line):
            return line.strip()
        seen += 1
        if seen >= _REJECTION_LINES:
            break
    return None


@dataclass(frozen=True)
class PlanStep:
    """One command of a platform plan."""

    id: str
    command: str  # may hold {variables}
    samples: int = 1
    wider: tuple[str, ...] = ()
    read_timeout: float | None = None
    reference: str = ""
    when: tuple[str, ...] = ()  # feature words: run only on a device that has one of them
    variants: tuple[str, ...] = ()  # other forms of the command, first known one runs instead

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables the command needs (the variants' own are optional)."""
        return variables_of(self.command)

    @property
    def optional_variables(self) -> tuple[str, ...]:
        """The variables only the variants use."""
        return optional_variables_of(self.command, self.variants)

    def template(self, values: Mapping[str, str]) -> str | None:
        """The form that runs with ``values``: the first variant whose variables all have a
        value, else the command; None when the command needs a value that is missing."""
        for template in (*self.variants, self.command):
            if all(values.get(name) for name in variables_of(template)):
                return template
        return None

    def render(self, values: Mapping[str, str]) -> str | None:
        """The command text with ``values`` filled in (see :meth:`template`), or None."""
        return render_command(self.command, self.variants, values)


def _get(entry: Any, key: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)


def steps_from_plan(plan: Any) -> list[PlanStep]:
    """The steps of a plan: a loaded plan object or the raw YAML mapping (``commands`` list)."""
    commands = _get(plan, "commands")
    if not isinstance(commands, Iterable) or isinstance(commands, str | bytes | Mapping):
        raise ConfigError("platform plan has no 'commands' list")
    steps: list[PlanStep] = []
    for index, entry in enumerate(commands):
        command = entry if isinstance(entry, str) else _get(entry, "command")
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"platform plan command #{index + 1} has no 'command' text")
        if isinstance(entry, str):
            steps.append(PlanStep(id=command, command=command))
            continue
        wider = _get(entry, "wider") or ()
        variants = _get(entry, "variants") or ()
        timeout = _get(entry, "read_timeout")
        when = _get(entry, "when") or ()
        if isinstance(when, str):
            when = (when,)
        steps.append(
            PlanStep(
                id=str(_get(entry, "id") or command),
                command=" ".join(command.split()),
                samples=max(1, int(_get(entry, "samples") or 1)),
                wider=tuple(str(w) for w in wider),
                variants=tuple(" ".join(str(v).split()) for v in variants),
                read_timeout=float(timeout) if timeout is not None else None,
                reference=str(_get(entry, "reference") or ""),
                when=tuple(str(w) for w in when),
            )
        )
    return steps


def plan_read_timeout(plan: Any) -> float:
    """The plan's default ``read_timeout`` (seconds), or :data:`DEFAULT_READ_TIMEOUT`."""
    value = _get(plan, "read_timeout")
    try:
        return float(value) if value is not None else DEFAULT_READ_TIMEOUT
    except (TypeError, ValueError):
        return DEFAULT_READ_TIMEOUT


@dataclass
class Derivation:
    """What a deriver found: values of plan variables, and why others are unknown."""

    values: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    features: dict[str, bool] = field(default_factory=dict)  # feature word -> present


Deriver = Callable[[DeviceCapture, str], Derivation]


def parse_layer_deriver(capture: DeviceCapture, peer: str) -> Derivation:
    """Default deriver: ``derive_variables(parse_device(capture, peer), peer)`` (parse layer).

    If the parse layer offers ``missing_reasons(state, peer) -> dict[str, str]`` in
    ``ipsec_doctor.parse.derive``, its reasons are used for variables it could not derive;
    ``device_features(state) -> dict[str, bool]`` gives the device's features.
    """
    parse_module = importlib.import_module("ipsec_doctor.parse")
    derive_module = importlib.import_module("ipsec_doctor.parse.derive")
    state = parse_module.parse_device(capture, peer)
    values = {str(k): str(v) for k, v in derive_module.derive_variables(state, peer).items()}
    reasons: dict[str, str] = {}
    explain = getattr(derive_module, "missing_reasons", None)
    if callable(explain):
        found = explain(state, peer)
        if isinstance(found, Mapping):
            reasons = {str(k): str(v) for k, v in found.items()}
    features: dict[str, bool] = {}
    decide = getattr(derive_module, "device_features", None)
    if callable(decide):
        known = decide(state)
        if isinstance(known, Mapping):
            features = {str(k): bool(v) for k, v in known.items()}
    return Derivation(values=values, reasons=reasons, features=features)


class _PlanRun:
    def __init__(
        self,
        runner: CommandRunner,
        steps: Sequence[PlanStep],
        device: DeviceCapture,
        peer: str,
        clock: Clock,
        read_timeout: float,
        deriver: Deriver,
        known_secrets: Sequence[str],
        progress: ProgressCallback | None,
        variables: Mapping[str, str],
        preloaded: Sequence[CommandCapture] = (),
    ) -> None:
        self.runner = runner
        self.steps = list(steps)
        self.device = device
        self.peer = peer
        self.clock = clock
        self.read_timeout = read_timeout
        self.deriver = deriver
        self.known = tuple(s for s in known_secrets if s)
        self.progress = progress
        self.values: dict[str, str] = {"peer": peer, **variables}
        self.reasons: dict[str, str] = {}
        self.features: dict[str, bool] = {}
        self.derived_at = -1
        self.done: set[int] = set()
        self.first: dict[int, tuple[str, CommandCapture]] = {}
        self.ran: dict[str, CommandCapture] = {}
        self.preloaded = {
            " ".join(c.command.split()).lower(): c
            for c in preloaded
            if c.sample == 1 and c.outcome in (Outcome.OK, Outcome.REJECTED)
        }
        self.dead = ""
        self.reconnect_tried = False

    # -- variables ------------------------------------------------------------------------
    def _derive(self) -> None:
        self.derived_at = len(self.device.captures)
        try:
            found = self.deriver(self.device, self.peer)
        except Exception as exc:  # a parse failure must not abort collection
            message = redact(f"{type(exc).__name__}: {exc}", self.known)
            for step in self.steps:
                for name in step.variables:
                    if name not in self.values:
                        self.reasons[name] = f"could not derive {{{name}}}: {message}"
            return
        for name, value in found.values.items():
            if name not in self.values and value:
                self.values[name] = value
        self.reasons.update(found.reasons)
        self.features = dict(found.features)

    def applies(self, step: PlanStep) -> bool | None:
        """Whether ``step`` is meant for this device: True (a feature is present, or the step
        has no condition), False (all its features are absent), None (not decided yet)."""
        if not step.when:
            return True
        if len(self.device.captures) != self.derived_at:
            self._derive()
        known = [self.features.get(word) for word in step.when]
        if any(value is True for value in known):
            return True
        if all(value is False for value in known):
            return False
        return None

    def decide(self, index: int) -> bool:
        """Run step ``index``? Reads what precedes it when its features are still unknown;
        unknown after that means run. A step left out is marked done and reported."""
        step = self.steps[index]
        decision = self.applies(step)
        if decision is None:
            self.run_prerequisites(index)
            decision = self.applies(step)
        if decision is False:
            self.done.add(index)
            if self.progress is not None:
                self.progress(
                    ProgressEvent(
                        self.device.name,
                        "",
                        1,
                        None,
                        message=f"{step.command}: left out, the device has no "
                        + " or ".join(step.when),
                    )
                )
            return False
        return True

    def resolve(self, step: PlanStep) -> tuple[str | None, str]:
        """The command text with variables filled, or None and the reason."""
        wanted = (*step.variables, *step.optional_variables)
        needed = [name for name in wanted if name not in self.values]
        if needed and len(self.device.captures) != self.derived_at:
            self._derive()
        for name in step.variables:
            if name not in self.values:
                reason = self.reasons.get(name) or (
                    f"{{{name}}} could not be derived for peer {self.peer} from "
                    f"{_summary(self.device.captures)}"
                )
                return None, reason
        template = step.template(self.values) or step.command
        for name in variables_of(template):
            if not _SAFE_VALUE.match(self.values[name]):
                return None, f"{{{name}}} = {self.values[name]!r} is not a safe single word"
        command = _VARIABLE.sub(lambda m: self.values[m.group(1)], template)
        return " ".join(command.split()), ""

    # -- running --------------------------------------------------------------------------
    def record(self, capture: CommandCapture) -> CommandCapture:
        self.device.captures.append(capture)
        if self.progress is not None:
            self.progress(
                ProgressEvent(
                    device=self.device.name,
                    command=capture.command,
                    sample=capture.sample,
                    outcome=capture.outcome,
                    message=capture.error,
                )
            )
        return capture

    def missing(self, step: PlanStep, reason: str) -> None:
        if self.dead:  # the variable is unknown because the session died: say so
            capture = CommandCapture(step.command, 1, Outcome.ERROR, "", f"not run: {self.dead}")
        else:
            capture = CommandCapture(step.command, 1, Outcome.MISSING, "", error=reason)
        self.record(capture)

    def execute(self, step: PlanStep, command: str, sample: int) -> CommandCapture:
        if self.dead:
            return self.record(
                CommandCapture(command, sample, Outcome.ERROR, "", error=f"not run: {self.dead}")
            )
        timeout = step.read_timeout or self.read_timeout
        start = self.clock.monotonic()
        try:
            raw = self._run(command, sample, timeout)
        except CommandCollectionError as exc:
            return self.record(
                CommandCapture(
                    command,
                    sample,
                    exc.outcome,
                    "",
                    error=redact(str(exc), self.known),
                    elapsed=self.clock.monotonic() - start,
                )
            )
        except Exception as exc:  # one bad command never aborts the others
            message = redact(f"{type(exc).__name__}: {exc}", self.known)
            return self.record(
                CommandCapture(
                    command,
                    sample,
                    Outcome.ERROR,
                    "",
                    error=f"{self.runner.device}: {command!r} failed: {message}",
                    elapsed=self.clock.monotonic() - start,
                )
            )
        elapsed = self.clock.monotonic() - start
        raw = redact(raw, self.known)
        refusal = rejection_line(raw)
        if refusal is not None:
            return self.record(
                CommandCapture(
                    command,
                    sample,
                    Outcome.REJECTED,
                    raw,
                    error=f"{self.runner.device} refused {command!r}: {refusal}",
                    elapsed=elapsed,
                )
            )
        return self.record(CommandCapture(command, sample, Outcome.OK, raw, elapsed=elapsed))

    def _run(self, command: str, sample: int, timeout: float) -> str:
        try:
            return self.runner.run(command, sample=sample, read_timeout=timeout)
        except ConnectionLostError as exc:
            if self.reconnect_tried:
                self.dead = redact(str(exc), self.known)
                raise
            self.reconnect_tried = True
            try:
                reconnected = self.runner.reconnect()
            except Exception:
                reconnected = False
            if not reconnected:
                self.dead = redact(str(exc), self.known)
                raise
        try:
            return self.runner.run(command, sample=sample, read_timeout=timeout)
        except ConnectionLostError as exc:
            self.dead = redact(str(exc), self.known)
            raise

    def run_step(self, index: int, command: str) -> None:
        self.done.add(index)
        key = command.lower()
        capture = self.ran.get(key)
        if capture is None and key in self.preloaded:  # read moments ago on this session
            capture = self.record(self.preloaded.pop(key))
            self.ran[key] = capture
        if capture is None:  # two plan steps may resolve to one command: run it once
            capture = self.execute(self.steps[index], command, 1)
            self.ran[key] = capture
        if self.steps[index].samples > 1 and not any(c == command for c, _ in self.first.values()):
            self.first[index] = (command, capture)

    def run_prerequisites(self, before: int) -> None:
        """Run the pending single-sample steps that precede ``before`` in the plan."""
        for index in range(before):
            step = self.steps[index]
            if index in self.done or step.samples > 1:
                continue
            if step.when and self.applies(step) is False:
                self.decide(index)
                continue
            command, _ = self.resolve(step)
            if command is not None:
                self.run_step(index, command)

    def run(self, interval: float | None) -> DeviceCapture:
        sampled = [i for i, s in enumerate(self.steps) if s.samples > 1]
        deferred: list[int] = []
        last_first_end: float | None = None
        for index in sampled:
            if not self.decide(index):
                continue
            command, _ = self.resolve(self.steps[index])
            if command is None:
                self.run_prerequisites(index)
                command, _ = self.resolve(self.steps[index])
            if command is None:
                deferred.append(index)
                continue
            self.run_step(index, command)
            last_first_end = self.clock.monotonic()
        for index, step in enumerate(self.steps):
            if index in self.done or step.samples > 1:
                continue
            if not self.decide(index):
                continue
            command, reason = self.resolve(step)
            self.done.add(index)
            if command is None:
                self.missing(step, reason)
            else:
                self.run_step(index, command)
        for index in deferred:
            command, reason = self.resolve(self.steps[index])
            self.done.add(index)
            if command is None:
                self.missing(self.steps[index], reason)
            else:
                self.run_step(index, command)
                last_first_end = self.clock.monotonic()
        if interval is None:
            return self.device
        rounds = max((self.steps[i].samples for i in self.first), default=1)
        for sample in range(2, rounds + 1):
            due = [
                (i, command)
                for i, (command, capture) in sorted(self.first.items())
                if capture.ok and self.steps[i].samples >= sample
            ]
            if not due:
                break
            if not self.dead and last_first_end is not None:
                wait = last_first_end + interval - self.clock.monotonic()
                if wait > 0:
                    if self.progress is not None:
                        message = f"waiting {wait:.1f} s before sample {sample} of the counters"
                        self.progress(
                            ProgressEvent(
                                self.device.name, "", sample, None, message=message, waiting=wait
                            )
                        )
                    self.clock.sleep(wait)
            for index, command in due:
                self.execute(self.steps[index], command, sample)
            last_first_end = self.clock.monotonic()
        return self.device


def _summary(captures: Sequence[CommandCapture]) -> str:
    ok = [c.command for c in captures if c.ok and c.sample == 1]
    if not ok:
        return "no successful output yet"
    return "the outputs of " + ", ".join(repr(c) for c in ok)


def run_plan(
    runner: CommandRunner,
    steps: Sequence[PlanStep],
    *,
    device: DeviceCapture,
    peer: str,
    interval: float | None,
    clock: Clock,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    deriver: Deriver | None = None,
    known_secrets: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    variables: Mapping[str, str] | None = None,
    preloaded: Sequence[CommandCapture] = (),
) -> DeviceCapture:
    """Run ``steps`` on ``runner`` for ``peer``, appending captures to ``device`` (returned).

    ``known_secrets`` (the device's password and enable secret) are masked in every text on
    top of the pattern redaction. ``variables`` pre-sets plan variables (they win over derived
    ones). ``preloaded`` are first samples this session read moments ago (discovery): a plan
    command with the same text takes that capture instead of running again. See the module
    contract for order, sampling and failure handling.
    """
    if not _SAFE_VALUE.match(peer):
        raise UsageError(f"peer {peer!r} is not an address")
    state = _PlanRun(
        runner=runner,
        steps=steps,
        device=device,
        peer=peer,
        clock=clock,
        read_timeout=read_timeout,
        deriver=deriver or parse_layer_deriver,
        known_secrets=known_secrets,
        progress=progress,
        variables=dict(variables or {}),
        preloaded=preloaded,
    )
    return state.run(interval)


@dataclass(frozen=True)
class PlanInfo:
    """What the collectors need of a platform plan."""

    platform: str
    steps: tuple[PlanStep, ...]
    read_timeout: float
    netmiko_device_type: str
    wider_patterns: tuple[tuple[str, tuple[str, ...]], ...]
    discovery: tuple[str, ...] = ()  # the plan's own discovery commands, if it names any


#: PlanInfo of each loaded plan object (the loader caches those), by identity
_INFO: dict[int, tuple[Any, PlanInfo]] = {}


def plan_info(platform: str) -> PlanInfo:
    """Steps, read timeout, netmiko device type and wider outputs of ``platform``'s plan.

    The plan comes from the validating platform loader (a bad or unknown plan is its
    :class:`~ipsec_doctor.errors.ConfigError`). Worked out once per loaded plan (every host
    and every audited device asks).
    """
    plan = load_platform(platform)
    known = _INFO.get(id(plan))
    if known is not None and known[0] is plan:
        return known[1]
    info = _plan_info(platform, plan)
    _INFO[id(plan)] = (plan, info)
    return info


def _plan_info(platform: str, plan: Any) -> PlanInfo:
    steps = tuple(steps_from_plan(plan))
    discovery = (plan.extra or {}).get("discovery") or ()
    return PlanInfo(
        platform=platform,
        steps=steps,
        read_timeout=plan_read_timeout(plan),
        netmiko_device_type=str(plan.netmiko_device_type or platform),
        wider_patterns=tuple((s.command, s.wider) for s in steps if s.wider),
        discovery=tuple(str(c) for c in discovery) if isinstance(discovery, list) else (),
    )
