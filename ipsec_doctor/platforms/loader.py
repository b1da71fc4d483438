"""Validating loader for platform data: command plans, log signatures and fix texts.

Contract:
- :func:`load_platform` reads ``<name>.yaml`` from the platforms directory
  (:func:`ipsec_doctor.resources.data_dir`) plus, when present, ``<name>_signatures.yaml`` and
  ``<name>_fixes.yaml`` beside it (the same data may sit inline under ``signatures:`` /
  ``fixes:``), and returns a frozen :class:`Platform`. Results are cached per directory.
- Any problem is a :class:`~ipsec_doctor.errors.ConfigError` whose message starts with the file
  name and the key path at fault (``cisco_ios.yaml: commands[3]: unknown key 'sampels'``).
- Plan entries (:class:`PlanCommand`): ``id`` and ``command`` are required; ``samples``
  (>= 1), ``wider`` (list of commands whose output contains the answer), ``variants`` (other
  forms of the command, run instead of it: the first whose variables are all derived, see
  :func:`~ipsec_doctor.model.lookup.render_command`; their variables are optional, the
  command's own are required), ``reference`` (the strategy step id), ``privileged``,
  ``intrusive``, ``read_timeout``, ``description`` and ``when`` are optional; unknown keys
  are errors (typos must not pass silently). ``when`` is a feature word of
  :class:`~ipsec_doctor.model.features.Feature` (``crypto_map``, ``tunnel_protection``,
  ``ikev1``, ``ikev2``) or a list of them: the command is meant only for devices that have one
  of them (run when present or not yet known, left out when absent; see
  :mod:`ipsec_doctor.collect.plan_runner`). An unknown word is an error.
- Unknown top-level keys of the platform file are kept in :attr:`Platform.extra` for the
  layers that own them (redaction, failure indicators, prompts ...).
- Log signatures (:class:`LogSignature`): ``event`` (a :class:`~ipsec_doctor.model.events.Event`
  value) and ``regex`` are required; ``detail`` (static key/value strings) is optional. A
  regex is searched case-insensitively in the whole device line; ``{IP}`` stands for an IPv4
  or IPv6 address; named groups become the event's detail and ``peer`` its peer address. The
  first signature that matches a line wins, so specific wordings go before general ones.
- Fix texts (:class:`FixText`): ``fixes: {CODE: text}`` or ``{CODE: {text: ..., reference:
  ...}}``; CODE must be a finding code of :class:`~ipsec_doctor.model.findings.Code`.
- ``converter`` names the module ``ipsec_doctor.parse.<converter>`` (default: the platform
  name); ``textfsm_platform`` the Platform column of the TextFSM index (default: the platform
  name); ``log_command`` the command whose output holds the device log (from the signature
  file, default ``show logging``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.features import Feature
from ipsec_doctor.model.findings import Code
from ipsec_doctor.model.lookup import (
    match_pattern,
    optional_variables_of,
    render_command,
    variables_of,
)
from ipsec_doctor.resources import data_dir

#: What ``{IP}`` in a signature regex stands for: an IPv4 or IPv6 address.
IP_REGEX = r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"

_COMMAND_KEYS = frozenset(
    {
        "id",
        "command",
        "samples",
        "wider",
        "variants",
        "reference",
        "privileged",
        "intrusive",
        "read_timeout",
        "description",
        "when",
    }
)
_SIGNATURE_KEYS = frozenset({"event", "regex", "detail", "name"})
_PLATFORM_KEYS = frozenset(
    {
        "platform",
        "netmiko_device_type",
        "description",
        "read_timeout",
        "commands",
        "converter",
        "textfsm_platform",
        "log_command",
        "signatures",
        "fixes",
    }
)


@dataclass(frozen=True)
class PlanCommand:
    """One command of a platform's collection plan."""

    id: str
    command: str  # may hold {variables}
    samples: int = 1
    wider: tuple[str, ...] = ()
    reference: str = ""
    privileged: bool = False
    intrusive: bool = False
    read_timeout: float | None = None
    description: str = ""
    when: tuple[str, ...] = ()  # Feature values: run only on devices with one of them
    variants: tuple[str, ...] = ()  # other forms, used instead when their variables are known

    @property
    def variables(self) -> tuple[str, ...]:
        """The ``{variables}`` the command needs, in order of appearance."""
        return variables_of(self.command)

    @property
    def optional_variables(self) -> tuple[str, ...]:
        """The variables only its ``variants`` use (unknown: the command itself runs)."""
        return optional_variables_of(self.command, self.variants)

    def render(self, values: Mapping[str, str]) -> str | None:
        """The concrete command (the first variant whose variables all have a value, else the
        command), or None when a variable the command needs has no value."""
        return render_command(self.command, self.variants, values)

    def matches(self, command: str) -> dict[str, str] | None:
        """The variable values if ``command`` is an instance of this plan command (or of one
        of its variants)."""
        for template in (self.command, *self.variants):
            found = match_pattern(command, template)
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class LogSignature:
    """A device message wording mapped to a normalised event."""

    event: Event
    regex: str
    pattern: re.Pattern[str]
    detail: Mapping[str, str] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class FixText:
    """The fix advice for one finding code on one platform."""

    code: Code
    text: str
    reference: str = ""


@dataclass(frozen=True)
class Platform:
    """Everything ipsec-doctor knows about one platform, as data."""

    name: str
    netmiko_device_type: str
    description: str
    read_timeout: float
    commands: tuple[PlanCommand, ...]
    signatures: tuple[LogSignature, ...] = ()
    fixes: Mapping[Code, FixText] = field(default_factory=dict)
    converter: str = ""
    textfsm_platform: str = ""
    log_command: str = "show logging"
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # the platform YAML as loaded
    extra: Mapping[str, Any] = field(default_factory=dict)  # top-level keys not typed here

    def command(self, command_id: str) -> PlanCommand:
        """The plan entry with ``command_id``; :class:`ConfigError` if there is none."""
        for entry in self.commands:
            if entry.id == command_id:
                return entry
        raise ConfigError(f"{self.name}: no command with id {command_id!r} in the plan")

    def wider_patterns(self) -> list[tuple[str, list[str]]]:
        """``[(command pattern, [wider, ...])]`` for :mod:`ipsec_doctor.model.lookup`."""
        return [(entry.command, list(entry.wider)) for entry in self.commands if entry.wider]


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _check_keys(data: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise _fail(path.name, f"cannot read: {error}") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _fail(path.name, f"invalid YAML: {error}") from error


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _string(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where, f"expected a non-empty string, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"expected true or false, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _fail(where, f"expected a positive number, got {value!r}")
    return float(value)


def _when(value: Any, where: str) -> tuple[str, ...]:
    """``when:`` as a tuple of feature words (a single word or a list of them)."""
    if value is None:
        return ()
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise _fail(where, f"expected a feature or a list of features, got {value!r}")
    known = {f.value for f in Feature}
    for word in words:
        if word not in known:
            raise _fail(where, f"unknown feature {word!r} (known: {', '.join(sorted(known))})")
    return tuple(dict.fromkeys(words))


def _parse_command(entry: Any, where: str) -> PlanCommand:
    data = _mapping(entry, where)
    unknown = sorted(set(data) - _COMMAND_KEYS)
    if unknown:
        raise _fail(
            where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_COMMAND_KEYS))})"
        )
    samples = data.get("samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise _fail(f"{where}.samples", f"expected an integer >= 1, got {samples!r}")
    wider = data.get("wider", [])
    if not isinstance(wider, list) or not all(isinstance(w, str) and w.strip() for w in wider):
        raise _fail(f"{where}.wider", f"expected a list of commands, got {wider!r}")
    variants = data.get("variants", [])
    if not isinstance(variants, list) or not all(
        isinstance(v, str) and v.strip() for v in variants
    ):
        raise _fail(f"{where}.variants", f"expected a list of commands, got {variants!r}")
    read_timeout = data.get("read_timeout")
    return PlanCommand(
        id=_string(data.get("id"), f"{where}.id"),
        command=" ".join(_string(data.get("command"), f"{where}.command").split()),
        samples=samples,
        wider=tuple(" ".join(w.split()) for w in wider),
        variants=tuple(" ".join(v.split()) for v in variants),
        reference=_string(data.get("reference"), f"{where}.reference", required=False),
        privileged=_bool(data.get("privileged", False), f"{where}.privileged"),
        intrusive=_bool(data.get("intrusive", False), f"{where}.intrusive"),
        read_timeout=None
        if read_timeout is None
        else _number(read_timeout, f"{where}.read_timeout"),
        description=_string(data.get("description"), f"{where}.description", required=False),
        when=_when(data.get("when"), f"{where}.when"),
    )


def _parse_signature(entry: Any, where: str) -> LogSignature:
    data = _mapping(entry, where)
    unknown = sorted(set(data) - _SIGNATURE_KEYS)
    if unknown:
        raise _fail(
            where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_SIGNATURE_KEYS))})"
        )
    event_name = _string(data.get("event"), f"{where}.event")
    try:
        event = Event(event_name)
    except ValueError as error:
        known = ", ".join(e.value for e in Event)
        raise _fail(f"{where}.event", f"unknown event {event_name!r} (known: {known})") from error
    regex = _string(data.get("regex"), f"{where}.regex")
    try:
        pattern = re.compile(regex.replace("{IP}", IP_REGEX), re.IGNORECASE)
    except re.error as error:
        raise _fail(f"{where}.regex", f"invalid regular expression {regex!r}: {error}") from error
    detail = data.get("detail", {})
    detail_map = _mapping(detail, f"{where}.detail")
    if not all(isinstance(k, str) and isinstance(v, str | int) for k, v in detail_map.items()):
        raise _fail(f"{where}.detail", "expected string keys and string values")
    return LogSignature(
        event=event,
        regex=regex,
        pattern=pattern,
        detail={str(k): str(v) for k, v in detail_map.items()},
        name=_string(data.get("name"), f"{where}.name", required=False),
    )


def _parse_signatures(value: Any, where: str) -> tuple[LogSignature, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(where, f"expected a list of signatures, got {type(value).__name__}")
    return tuple(_parse_signature(item, f"{where}[{i}]") for i, item in enumerate(value))


def _parse_fixes(value: Any, where: str) -> dict[Code, FixText]:
    if value is None:
        return {}
    fixes: dict[Code, FixText] = {}
    for key, item in _mapping(value, where).items():
        here = f"{where}.{key}"
        try:
            code = Code(str(key))
        except ValueError as error:
            raise _fail(here, f"unknown finding code {key!r}") from error
        if isinstance(item, str):
            fixes[code] = FixText(code=code, text=_string(item, here))
            continue
        data = _mapping(item, here)
        _check_keys(data, frozenset({"text", "reference"}), here)
        fixes[code] = FixText(
            code=code,
            text=_string(data.get("text"), f"{here}.text"),
            reference=_string(data.get("reference"), f"{here}.reference", required=False),
        )
    return fixes


def load_signatures_file(path: Path) -> tuple[tuple[LogSignature, ...], str]:
    """The signatures of one ``<name>_signatures.yaml`` and its ``log_command`` ("" if unset)."""
    data = _mapping(_read_yaml(path), path.name)
    unknown = sorted(set(data) - {"platform", "log_command", "signatures"})
    if unknown:
        raise _fail(
            path.name, f"unknown key {unknown[0]!r} (known: log_command, platform, signatures)"
        )
    log_command = _string(data.get("log_command"), f"{path.name}: log_command", required=False)
    return _parse_signatures(data.get("signatures"), f"{path.name}: signatures"), log_command


def load_platform_file(path: Path) -> Platform:
    """The platform described by ``path`` and its sidecar files (see the module docstring)."""
    name = path.stem
    where = path.name
    data = _mapping(_read_yaml(path), where)
    declared = _string(data.get("platform"), f"{where}: platform")
    if declared != name:
        raise _fail(f"{where}: platform", f"{declared!r} does not match the file name {name!r}")
    commands_value = data.get("commands")
    if not isinstance(commands_value, list) or not commands_value:
        raise _fail(f"{where}: commands", "expected a non-empty list of commands")
    commands = tuple(
        _parse_command(item, f"{where}: commands[{i}]") for i, item in enumerate(commands_value)
    )
    seen: set[str] = set()
    for i, entry in enumerate(commands):
        if entry.id in seen:
            raise _fail(f"{where}: commands[{i}].id", f"duplicate id {entry.id!r}")
        seen.add(entry.id)

    signatures = _parse_signatures(data.get("signatures"), f"{where}: signatures")
    log_command = _string(data.get("log_command"), f"{where}: log_command", required=False)
    sidecar = path.with_name(f"{name}_signatures.yaml")
    if sidecar.is_file():
        more, sidecar_log_command = load_signatures_file(sidecar)
        signatures += more
        log_command = log_command or sidecar_log_command

    fixes = _parse_fixes(data.get("fixes"), f"{where}: fixes")
    fixes_file = path.with_name(f"{name}_fixes.yaml")
    if fixes_file.is_file():
        fixes_data = _mapping(_read_yaml(fixes_file), fixes_file.name)
        fixes.update(_parse_fixes(fixes_data.get("fixes"), f"{fixes_file.name}: fixes"))

    read_timeout = data.get("read_timeout", 20)
    return Platform(
        name=name,
        netmiko_device_type=_string(
            data.get("netmiko_device_type", name), f"{where}: netmiko_device_type"
        ),
        description=_string(data.get("description"), f"{where}: description", required=False),
        read_timeout=_number(read_timeout, f"{where}: read_timeout"),
        commands=commands,
        signatures=signatures,
        fixes=fixes,
        converter=_string(data.get("converter", name), f"{where}: converter"),
        textfsm_platform=_string(data.get("textfsm_platform", name), f"{where}: textfsm_platform"),
        log_command=log_command or "show logging",
        source=path,
        raw=dict(data),
        extra={k: v for k, v in data.items() if k not in _PLATFORM_KEYS},
    )


def available_platforms(directory: Path | None = None) -> list[str]:
    """Names of the platforms that have a plan file (``platform: <file name>`` and
    ``commands``); other YAML files of the folder (signatures, fixes, intrusive steps) are not
    platforms."""
    folder = directory or data_dir("platforms")
    names = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if (
            isinstance(data, Mapping)
            and data.get("platform") == path.stem
            and isinstance(data.get("commands"), list)
        ):
            names.append(path.stem)
    return names


@lru_cache(maxsize=32)
def _load_cached(name: str, directory: str) -> Platform:
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_platforms(Path(directory))) or "none"
        raise ConfigError(f"unknown platform {name!r} (known: {known})")
    return load_platform_file(path)


#: One loader at a time, so that threads starting together (an audit's collector threads) read
#: a platform's files once instead of each reading them while the cache is still empty.
_loading = threading.RLock()


def load_platform(name: str, directory: Path | None = None) -> Platform:
    """The platform ``name`` from ``directory`` (default: the packaged platforms)."""
    folder = directory or data_dir("platforms")
    with _loading:
        return _load_cached(name, str(folder))
