"""Runbooks as data: the schema of ``runbooks/*.yaml`` and its validating loader.

A runbook is a small decision tree over the strategy steps of the Cisco guide. Example::

    runbook: crypto-map                  # its name (`--runbook crypto-map`)
    title: Site-to-site tunnel over a crypto map (IKEv1)
    description: |                       # optional, shown by `--list` (first line)
      ...
    platform: cisco_ios                  # whose command plan the steps' command ids name
    when: [crypto_map]                   # optional: the designs it is for (model/features.py);
                                         # `--runbook auto` picks by the peer's design
    start: traffic.acl                   # optional: the first step (default: the first listed)
    steps:
      - id: traffic.acl                  # a strategy step id (diagnose/references.py)
        title: Is the router receiving and recognizing interesting traffic?
        text: |                          # what the engineer reads before it runs
          ...
        commands: [crypto_map, crypto_acl]   # plan command ids, run on every chosen device
        references: [traffic.acl]        # optional: step ids whose findings are this step's
                                         # verdict (default: [id])
        confirms: [NO_INTERESTING_TRAFFIC]   # finding codes this step can name
        rules_out: [NO_INTERESTING_TRAFFIC]  # codes excluded when the step ends clear
        next:                            # where to go per outcome (a string: always there)
          NO_INTERESTING_TRAFFIC: traffic.source   # this code was found
          found: end                     # another failure of this step was found
          clear: ike.sa                  # the step found nothing wrong
          unknown: ike.sa                # the step could not judge (INSUFFICIENT_DATA)
          skipped: ike.sa                # the engineer skipped it (default: unknown's target)
          default: ike.sa                # any outcome not listed
      - id: ike.debug
        references: [ike.logs, ike.proposal, ike.auth, ike.sa]
        intrusive: true                  # asks first, explaining the risk
        action: debug                    # debug | ping | clear (ipsec_doctor.collect.intrusive)
        options: {seconds: 30}           # the action's options (debug: seconds, engine,
                                         # debugs: [isakmp, ipsec]; ping: count, target;
                                         # clear: wait)
        risk: |
          ...

Contract:
- :func:`load_runbook_file` / :func:`load_runbook_text` return a frozen :class:`Runbook` or
  raise :class:`~ipsec_doctor.errors.ConfigError` listing EVERY problem found, one per line,
  each as ``<file>:<line>: <what is wrong>``: unknown keys, wrong types, unknown finding codes
  (:class:`~ipsec_doctor.model.findings.Code`), unknown command ids (the platform plan's
  ``id`` s), unknown strategy step ids (:data:`~ipsec_doctor.diagnose.references.REFERENCES`),
  unknown next-step targets, outcomes without a target, a ``next`` code the step can never
  name, intrusive steps without a risk or action, read-only steps that name an intrusive plan
  command, duplicate step ids and steps that cannot be reached from ``start``.
- ``next`` omitted means "the step listed after this one" (``end`` after the last one).
  ``end`` is the reserved target that concludes the runbook.
- Outcome resolution (:meth:`Step.next_step`): the first failure code found by the step that
  has its own key, else the outcome key (``found`` / ``clear`` / ``unknown`` / ``skipped``;
  ``skipped`` falls back to ``unknown``), else ``default``. Every step must resolve
  ``found``, ``clear`` and ``unknown``.
- :func:`runbook_paths` lists the packaged runbooks (``data_dir("runbooks")``);
  :func:`find_runbook` resolves ``--runbook NAME|FILE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ipsec_doctor.diagnose.references import CODE_REFERENCE, REFERENCES
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.features import Feature
from ipsec_doctor.model.findings import Code
from ipsec_doctor.platforms.loader import Platform, load_platform
from ipsec_doctor.resources import data_dir
from ipsec_doctor.runbook.yaml_lines import LocatedList, LocatedMap, load_located

END = "end"


class Outcome(StrEnum):
    """How a step ended, as far as choosing the next step goes."""

    FOUND = "found"  # the step's verdict holds at least one failure finding
    CLEAR = "clear"  # its commands were read and nothing in its remit is wrong
    UNKNOWN = "unknown"  # it could not judge: commands failed, or INSUFFICIENT_DATA
    SKIPPED = "skipped"  # the engineer skipped it (or an intrusive step could not run)


#: Intrusive actions a step may take, and the options each one accepts (name -> type check).
ACTION_OPTIONS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "debug": {
        "seconds": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 600,
        "engine": lambda v: isinstance(v, bool),
        "debugs": lambda v: (
            isinstance(v, list)
            and bool(v)
            and all(isinstance(w, str) and w.isidentifier() for w in v)
        ),
        "ping": lambda v: isinstance(v, bool),
    },
    "ping": {
        "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1000,
        "target": lambda v: isinstance(v, str) and bool(v.strip()),
    },
    "clear": {
        "wait": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 600,
    },
}

_TOP_KEYS = ("runbook", "title", "description", "platform", "when", "start", "steps")
_STEP_KEYS = (
    "id",
    "title",
    "text",
    "commands",
    "references",
    "confirms",
    "rules_out",
    "intrusive",
    "action",
    "options",
    "risk",
    "next",
)
_OUTCOME_KEYS = (*(o.value for o in Outcome), "default")


@dataclass(frozen=True)
class Step:
    """One step of a runbook (see the module docstring for each field's meaning)."""

    id: str
    title: str
    text: str = ""
    commands: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    confirms: tuple[Code, ...] = ()
    rules_out: tuple[Code, ...] = ()
    intrusive: bool = False
    action: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    risk: str = ""
    next: Mapping[str, str] = field(default_factory=dict)  # outcome or code -> step id / end
    line: int = 0

    @property
    def codes(self) -> frozenset[Code]:
        """Every code this step can name: its ``confirms`` and the codes of its references."""
        found = {code for code, ref in CODE_REFERENCE.items() if ref in self.references}
        return frozenset(found | set(self.confirms))

    def next_step(self, outcome: Outcome, codes: Sequence[Code] = ()) -> str:
        """The step id (or :data:`END`) to go to after ``outcome`` with failure ``codes``."""
        if outcome is Outcome.FOUND:
            for code in codes:
                if code.value in self.next:
                    return self.next[code.value]
        if outcome.value in self.next:
            return self.next[outcome.value]
        if outcome is Outcome.SKIPPED and Outcome.UNKNOWN.value in self.next:
            return self.next[Outcome.UNKNOWN.value]
        return self.next.get("default", END)


@dataclass(frozen=True)
class Runbook:
    """A validated runbook."""

    name: str
    title: str
    platform: str
    steps: tuple[Step, ...]
    start: str
    description: str = ""
    when: tuple[Feature, ...] = ()  # the tunnel designs it is for (empty: any)
    source: Path | None = None

    def step(self, step_id: str) -> Step:
        """The step ``step_id``; :class:`KeyError` when there is none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def summary(self) -> str:
        """The first line of the description, or the title."""
        lines = self.description.strip().splitlines()
        return lines[0] if lines else self.title


class _Errors:
    """Collects every problem of one file, each with its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"{self.source}:{line}: {message}" for line, message in sorted(self.items)]
        raise ConfigError("\n".join(lines))


def _known(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _check_keys(data: LocatedMap, allowed: Sequence[str], errors: _Errors, what: str) -> None:
    for key in data:
        if key not in allowed:
            errors.add(
                data.line_of(key), f"{what}: unknown key {key!r} (known: {', '.join(allowed)})"
            )


def _text(data: LocatedMap, key: str, errors: _Errors, what: str, *, required: bool) -> str:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(data.line, f"{what}: missing {key!r}")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        errors.add(data.line_of(key), f"{what}: {key!r} must be a non-empty string")
        return ""
    return value


def _words(data: LocatedMap, key: str, errors: _Errors, what: str) -> list[tuple[str, int]]:
    """A list of strings (a single string is a list of one), each with its line."""
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [(value, data.line_of(key))]
    if not isinstance(value, LocatedList) or not all(isinstance(v, str) for v in value):
        errors.add(data.line_of(key), f"{what}: {key!r} must be a list of names")
        return []
    return [(str(v), value.item_line(i)) for i, v in enumerate(value)]


def _codes(data: LocatedMap, key: str, errors: _Errors, what: str) -> tuple[Code, ...]:
    codes: list[Code] = []
    for name, line in _words(data, key, errors, what):
        try:
            codes.append(Code(name))
        except ValueError:
            errors.add(line, f"{what}: unknown finding code {name!r} in {key!r}")
    return tuple(codes)


class _StepParser:
    def __init__(self, platform: Platform | None, errors: _Errors) -> None:
        self.platform = platform
        self.errors = errors
        self.plan_ids = [c.id for c in platform.commands] if platform else []
        self.intrusive_ids = {c.id for c in platform.commands if c.intrusive} if platform else set()

    def parse(self, raw: Any, index: int, line: int) -> tuple[Step, dict[str, int]] | None:
        """One step, and the line of each of its next targets; None if unusable."""
        errors = self.errors
        if not isinstance(raw, LocatedMap):
            errors.add(line, f"steps[{index}]: expected a mapping with id, title, ...")
            return None
        step_id = _text(raw, "id", errors, f"steps[{index}]", required=True)
        what = f"step {step_id!r}" if step_id else f"steps[{index}]"
        _check_keys(raw, _STEP_KEYS, errors, what)
        if step_id == END:
            errors.add(raw.line_of("id"), f"{what}: {END!r} is reserved for the end")
        title = _text(raw, "title", errors, what, required=True)
        text = _text(raw, "text", errors, what, required=False)

        commands: list[str] = []
        for command_id, cline in _words(raw, "commands", errors, what):
            if self.platform is not None and command_id not in self.plan_ids:
                errors.add(
                    cline,
                    f"{what}: unknown command id {command_id!r} for platform "
                    f"{self.platform.name} (known: {_known(self.plan_ids, 40)})",
                )
            commands.append(command_id)

        references = [r for r, _ in _words(raw, "references", errors, what)]
        for reference, rline in _words(raw, "references", errors, what):
            if reference not in REFERENCES:
                errors.add(rline, f"{what}: unknown strategy step id {reference!r} in references")
        if "references" not in raw:
            if step_id in REFERENCES:
                references = [step_id]
            elif step_id:
                errors.add(
                    raw.line_of("id"),
                    f"{what}: {step_id!r} is not a strategy step id "
                    f"(diagnose/references.py: {_known(sorted(REFERENCES), 8)}); "
                    "use one, or list the ids whose findings this step shows in 'references'",
                )

        confirms = _codes(raw, "confirms", errors, what)
        rules_out = _codes(raw, "rules_out", errors, what)

        intrusive = raw.get("intrusive", False)
        if not isinstance(intrusive, bool):
            errors.add(raw.line_of("intrusive"), f"{what}: 'intrusive' must be true or false")
            intrusive = False
        action = _text(raw, "action", errors, what, required=False)
        risk = _text(raw, "risk", errors, what, required=False)
        options = raw.get("options", {})
        if not isinstance(options, LocatedMap):
            if "options" in raw:
                errors.add(raw.line_of("options"), f"{what}: 'options' must be a mapping")
            options = LocatedMap(raw.line)
        if intrusive:
            if not risk.strip():
                errors.add(raw.line, f"{what}: an intrusive step must explain its 'risk'")
            if not action:
                errors.add(
                    raw.line,
                    f"{what}: an intrusive step needs an 'action' ({', '.join(ACTION_OPTIONS)})",
                )
            elif action not in ACTION_OPTIONS:
                errors.add(
                    raw.line_of("action"),
                    f"{what}: unknown action {action!r} (known: {', '.join(ACTION_OPTIONS)})",
                )
            else:
                allowed = ACTION_OPTIONS[action]
                for key, value in options.items():
                    check = allowed.get(key)
                    if check is None:
                        errors.add(
                            options.line_of(key),
                            f"{what}: unknown option {key!r} for action {action!r} "
                            f"(known: {', '.join(allowed) or 'none'})",
                        )
                    elif not check(value):
                        errors.add(options.line_of(key), f"{what}: bad value {value!r} for {key!r}")
        else:
            for key in ("action", "options", "risk"):
                if key in raw:
                    errors.add(raw.line_of(key), f"{what}: {key!r} needs 'intrusive: true'")
            for command_id in commands:
                if command_id in self.intrusive_ids:
                    errors.add(
                        raw.line_of("commands"),
                        f"{what}: command {command_id!r} is intrusive; mark the step "
                        "'intrusive: true' and explain its 'risk'",
                    )

        next_map: dict[str, str] = {}
        next_lines: dict[str, int] = {}
        value = raw.get("next")
        if isinstance(value, str):
            next_map["default"] = value
            next_lines["default"] = raw.line_of("next")
        elif isinstance(value, LocatedMap):
            for key, target in value.items():
                kline = value.line_of(key)
                if key not in _OUTCOME_KEYS and key not in Code.__members__:
                    errors.add(
                        kline,
                        f"{what}: next: {key!r} is neither an outcome "
                        f"({', '.join(_OUTCOME_KEYS)}) nor a finding code",
                    )
                    continue
                if not isinstance(target, str) or not target.strip():
                    errors.add(kline, f"{what}: next: {key!r} must name a step id or {END!r}")
                    continue
                next_map[key] = target
                next_lines[key] = kline
        elif value is not None:
            errors.add(raw.line_of("next"), f"{what}: 'next' must be a step id or a mapping")

        step = Step(
            id=step_id,
            title=title,
            text=text,
            commands=tuple(commands),
            references=tuple(references),
            confirms=confirms,
            rules_out=rules_out,
            intrusive=intrusive,
            action=action if intrusive else "",
            options=dict(options) if intrusive else {},
            risk=risk if intrusive else "",
            next=next_map,
            line=raw.line,
        )
        can_name = step.codes
        for key, kline in next_lines.items():
            if key in Code.__members__ and Code(key) not in can_name:
                errors.add(
                    kline,
                    f"{what}: next: {key} is a code this step never names "
                    "(add it to 'confirms' or to a reference of the step)",
                )
        return step, next_lines


def _check_graph(
    steps: list[Step],
    lines: dict[str, dict[str, int]],
    start: str,
    start_line: int,
    errors: _Errors,
) -> None:
    ids = {s.id for s in steps}
    if start not in ids:
        errors.add(start_line, f"start: no step {start!r}")
        return
    edges: dict[str, set[str]] = {}
    for step in steps:
        targets = set(step.next.values())
        for key, target in step.next.items():
            if target != END and target not in ids:
                errors.add(
                    lines[step.id].get(key, step.line),
                    f"step {step.id!r}: next: {key}: no step {target!r} (nor {END!r})",
                )
        for outcome in (Outcome.FOUND, Outcome.CLEAR, Outcome.UNKNOWN):
            if outcome.value not in step.next and "default" not in step.next:
                errors.add(
                    step.line,
                    f"step {step.id!r}: next gives no step for outcome {outcome.value!r} "
                    "(add it or 'default')",
                )
        edges[step.id] = {t for t in targets if t in ids}
    seen = {start}
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for step in steps:
        if step.id not in seen:
            errors.add(step.line, f"step {step.id!r} cannot be reached from {start!r}")


def _load_platform(name: str, line: int, errors: _Errors) -> Platform | None:
    try:
        return load_platform(name)
    except ConfigError as error:
        errors.add(line, f"platform: {error}")
        return None


def load_runbook_text(text: str, source: str = "<runbook>", path: Path | None = None) -> Runbook:
    """Parse and validate a runbook (see the module contract); ``source`` names it in errors."""
    data = load_located(text, source)
    errors = _Errors(source)
    if not isinstance(data, LocatedMap):
        errors.add(1, "a runbook is a mapping with runbook, title, platform and steps")
        errors.raise_if_any()
        raise AssertionError("unreachable")  # pragma: no cover
    _check_keys(data, _TOP_KEYS, errors, "runbook")
    name = _text(data, "runbook", errors, "runbook", required=True)
    title = _text(data, "title", errors, "runbook", required=True)
    description = _text(data, "description", errors, "runbook", required=False)
    platform_name = _text(data, "platform", errors, "runbook", required=True)
    platform = (
        _load_platform(platform_name, data.line_of("platform"), errors) if platform_name else None
    )

    when: list[Feature] = []
    for word, wline in _words(data, "when", errors, "runbook"):
        try:
            when.append(Feature(word))
        except ValueError:
            known = ", ".join(f.value for f in Feature)
            errors.add(wline, f"runbook: when: unknown feature {word!r} (known: {known})")

    raw_steps = data.get("steps")
    steps: list[Step] = []
    next_lines: dict[str, dict[str, int]] = {}
    if not isinstance(raw_steps, LocatedList) or not raw_steps:
        errors.add(data.line_of("steps"), "runbook: 'steps' must be a non-empty list")
        errors.raise_if_any()
    assert isinstance(raw_steps, LocatedList)
    parser = _StepParser(platform, errors)
    for index, raw in enumerate(raw_steps):
        parsed = parser.parse(raw, index, raw_steps.item_line(index))
        if parsed is None:
            continue
        step, lines = parsed
        if step.id in next_lines:
            errors.add(step.line, f"step {step.id!r}: duplicate id")
            continue
        steps.append(step)
        next_lines[step.id] = lines
    # `next` omitted: the following step (end after the last)
    for index, step in enumerate(steps):
        if not step.next:
            following = steps[index + 1].id if index + 1 < len(steps) else END
            steps[index] = replace(step, next={"default": following})
    start = data.get("start", steps[0].id if steps else "")
    if not isinstance(start, str):
        errors.add(data.line_of("start"), "runbook: 'start' must be a step id")
        start = ""
    if steps:
        _check_graph(steps, next_lines, start, data.line_of("start"), errors)
    errors.raise_if_any()
    return Runbook(
        name=name,
        title=title,
        platform=platform_name,
        steps=tuple(steps),
        start=start,
        description=description,
        when=tuple(when),
        source=path,
    )


def load_runbook_file(path: Path) -> Runbook:
    """Load and validate the runbook at ``path``; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read runbook: {error.strerror or error}") from error
    return load_runbook_text(text, str(path), path)


def runbook_paths(directory: Path | None = None) -> list[Path]:
    """The runbook files of ``directory`` (default: the packaged runbooks), by name."""
    folder = directory or data_dir("runbooks")
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def find_runbook(name_or_path: str, directory: Path | None = None) -> Path:
    """``--runbook``: an existing file, or the packaged runbook of that name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for candidate in runbook_paths(directory):
        if candidate.stem == name_or_path:
            return candidate
        try:
            if load_runbook_file(candidate).name == name_or_path:
                return candidate
        except ConfigError:
            continue
    known = ", ".join(p.stem for p in runbook_paths(directory)) or "none"
    raise UsageError(f"no runbook {name_or_path!r}: not a file, nor a packaged one ({known})")
