"""Platform data of the intrusive steps (``platforms/<platform>_intrusive.yaml``) and text helpers.

Contract:
- :func:`load_intrusive` reads and validates ``<platform>_intrusive.yaml`` from the platforms
  directory (:func:`ipsec_doctor.resources.data_dir`) into a frozen :class:`IntrusiveData`
  (cached). A platform without the file raises :class:`~ipsec_doctor.errors.UsageError`
  ("intrusive steps are not available for ..."); a broken file raises
  :class:`~ipsec_doctor.errors.ConfigError` naming the file and the key.
- Validation refuses any command that would enter configuration mode (first word an
  abbreviation of ``configure``) and any clear that is not scoped by ``{peer}`` or
  ``{conn_id}``; the tool never sends either.
- :func:`fill` puts validated values into a command template: ``peer`` must be an IP address,
  ``conn_id`` a positive integer, ``repeat``/``timeout`` small integers, other values one
  safe word (an interface or ACL name). Anything else is a UsageError: nothing unchecked is
  ever typed on a device CLI.
- Text helpers: :func:`split_messages` (log text -> messages, continuation lines joined),
  :func:`read_log_buffer` (``show logging`` -> level, message count, messages),
  :func:`new_messages` (what a later ``show logging`` added), :func:`parse_show_debugging`
  (debug flags and condition peers), :func:`end_of_negotiation` (does a message end it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import yaml

from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.resources import data_dir

# A value typed into a device CLI: one word of a safe alphabet (interface, ACL name).
# Sample values: "GigabitEthernet0/1", "VPN-TRAFFIC", "Port-channel1.100", "101"
_SAFE_WORD = re.compile(r"^[A-Za-z0-9][\w.:/+-]{0,63}$")
# Sample template: "clear crypto isakmp {conn_id}" -> variable "conn_id"
_VARIABLE = re.compile(r"\{(\w+)\}")
_INTEGER_LIMITS = {"conn_id": (1, 2**31 - 1), "repeat": (1, 1000), "timeout": (0, 36)}


@dataclass(frozen=True)
class DebugSpec:
    """One ``debug`` command, its own undo and the lines it prints (``owns``)."""

    name: str
    command: str
    undo: str
    owns: re.Pattern[str]


@dataclass(frozen=True)
class IntrusiveData:
    """The commands and patterns of the intrusive steps of one platform."""

    platform: str
    source: Path
    condition: str
    condition_undo: str
    debugs: Mapping[str, DebugSpec]
    default_debugs: tuple[str, ...]
    undo_all: str
    show_debugging: str
    log_read: str
    monitor_on: str
    monitor_off: str
    patterns: Mapping[str, re.Pattern[str]]
    end_established: tuple[re.Pattern[str], ...]
    end_failed: tuple[re.Pattern[str], ...]
    ping_command: str
    ping_repeat: int
    ping_timeout: int
    acl_counters: str
    ping_derive: Mapping[str, str]
    ping_patterns: Mapping[str, re.Pattern[str]]
    clear_sa_peer: str
    clear_isakmp_conn: str
    snapshot_isakmp: str
    snapshot_ipsec: str
    established_states: tuple[str, ...] = field(default=("QM_IDLE",))

    def pattern(self, name: str) -> re.Pattern[str]:
        return self.patterns[name]


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}.{key}", "expected a non-empty string")
    return " ".join(value.split())


def _regex(value: Any, where: str, flags: int = 0) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise _fail(where, "expected a regular expression")
    try:
        return re.compile(value, flags)
    except re.error as exc:
        raise _fail(where, f"invalid regular expression: {exc}") from exc


def is_configuration_command(command: str) -> bool:
    """Whether ``command`` would enter configuration mode (``conf t``, ``configure terminal``)."""
    words = command.split()
    return bool(words) and len(words[0]) >= 4 and "configure".startswith(words[0].lower())


def _checked_command(data: Mapping[str, Any], key: str, where: str) -> str:
    command = _text(data, key, where)
    if is_configuration_command(command):
        raise _fail(f"{where}.{key}", f"{command!r} would enter configuration mode; refused")
    words = command.lower().split()
    if words and words[0] == "clear" and not ({"{peer}", "{conn_id}"} & set(words)):
        raise _fail(f"{where}.{key}", f"{command!r} is not scoped to a peer or conn-id; refused")
    return command


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "expected an integer")
    return value


def _load_file(path: Path) -> IntrusiveData:
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(where, f"cannot read: {exc}") from exc
    data = _mapping(raw, where)
    platform = _text(data, "platform", where)
    debug = _mapping(data.get("debug"), f"{where}: debug")
    dwhere = f"{where}: debug"
    debugs: dict[str, DebugSpec] = {}
    for name, entry in _mapping(debug.get("debugs"), f"{dwhere}.debugs").items():
        ewhere = f"{dwhere}.debugs.{name}"
        entry = _mapping(entry, ewhere)
        debugs[str(name)] = DebugSpec(
            name=str(name),
            command=_checked_command(entry, "command", ewhere),
            undo=_checked_command(entry, "undo", ewhere),
            owns=_regex(entry.get("owns"), f"{ewhere}.owns"),
        )
    defaults = debug.get("default_debugs") or list(debugs)
    if not isinstance(defaults, list) or any(str(d) not in debugs for d in defaults):
        raise _fail(f"{dwhere}.default_debugs", f"expected a list of {sorted(debugs)}")
    patterns = {
        str(k): _regex(v, f"{dwhere}.patterns.{k}", re.IGNORECASE if k.endswith("level") else 0)
        for k, v in _mapping(debug.get("patterns"), f"{dwhere}.patterns").items()
    }
    for needed in ("buffer_level", "buffer_start", "message_start", "debug_on", "prompt"):
        if needed not in patterns:
            raise _fail(f"{dwhere}.patterns", f"missing {needed!r}")
    end = _mapping(debug.get("end"), f"{dwhere}.end")

    def regexes(key: str) -> tuple[re.Pattern[str], ...]:
        items = end.get(key) or []
        if not isinstance(items, list):
            raise _fail(f"{dwhere}.end.{key}", "expected a list")
        return tuple(_regex(v, f"{dwhere}.end.{key}[{i}]") for i, v in enumerate(items))

    ping = _mapping(data.get("ping"), f"{where}: ping")
    pwhere = f"{where}: ping"
    derive = _mapping(ping.get("derive"), f"{pwhere}.derive")
    clear = _mapping(data.get("clear"), f"{where}: clear")
    cwhere = f"{where}: clear"
    snapshot = _mapping(clear.get("snapshot"), f"{cwhere}.snapshot")
    states = clear.get("established_states") or ["QM_IDLE"]
    ping_patterns = {
        str(k): _regex(v, f"{pwhere}.patterns.{k}", re.MULTILINE)
        for k, v in _mapping(ping.get("patterns"), f"{pwhere}.patterns").items()
    }
    for needed in ("success", "refused", "acl_hits"):
        if needed not in ping_patterns:
            raise _fail(f"{pwhere}.patterns", f"missing {needed!r}")
    return IntrusiveData(
        platform=platform,
        source=path,
        condition=_checked_command(debug, "condition", dwhere),
        condition_undo=_checked_command(debug, "condition_undo", dwhere),
        debugs=debugs,
        default_debugs=tuple(str(d) for d in defaults),
        undo_all=_checked_command(debug, "undo_all", dwhere),
        show_debugging=_checked_command(debug, "show", dwhere),
        log_read=_checked_command(debug, "log_read", dwhere),
        monitor_on=_checked_command(debug, "monitor_on", dwhere),
        monitor_off=_checked_command(debug, "monitor_off", dwhere),
        patterns=patterns,
        end_established=regexes("established"),
        end_failed=regexes("failed"),
        ping_command=_checked_command(ping, "command", pwhere),
        ping_repeat=_int(ping.get("repeat", 5), f"{pwhere}.repeat"),
        ping_timeout=_int(ping.get("timeout", 2), f"{pwhere}.timeout"),
        acl_counters=_checked_command(ping, "acl_counters", pwhere),
        ping_derive={
            key: _checked_command(derive, key, f"{pwhere}.derive")
            for key in ("crypto_map", "acl", "route")
        },
        ping_patterns=ping_patterns,
        clear_sa_peer=_checked_command(clear, "sa_peer", cwhere),
        clear_isakmp_conn=_checked_command(clear, "isakmp_conn", cwhere),
        snapshot_isakmp=_checked_command(snapshot, "isakmp", f"{cwhere}.snapshot"),
        snapshot_ipsec=_checked_command(snapshot, "ipsec", f"{cwhere}.snapshot"),
        established_states=tuple(str(s) for s in states),
    )


@lru_cache(maxsize=8)
def _load_cached(platform: str, directory: str) -> IntrusiveData:
    path = Path(directory) / f"{platform}_intrusive.yaml"
    if not path.is_file():
        raise UsageError(
            f"intrusive steps (debug, clear, ping) are not available for platform {platform!r}"
        )
    return _load_file(path)


def load_intrusive(platform: str, directory: Path | None = None) -> IntrusiveData:
    """The intrusive-step data of ``platform`` (see the module contract)."""
    if not re.fullmatch(r"[a-z0-9_]+", platform):
        raise UsageError(f"unknown platform {platform!r}")
    return _load_cached(platform, str(directory or data_dir("platforms")))


def check_value(name: str, value: object) -> str:
    """``value`` as it may be typed for the template variable ``name`` (UsageError if unsafe)."""
    text = str(value).strip()
    if name in ("peer", "destination", "address"):
        try:
            return str(ip_address(text))
        except ValueError:
            raise UsageError(f"{name} {text!r} is not an IP address") from None
    if name in _INTEGER_LIMITS:
        low, high = _INTEGER_LIMITS[name]
        if not text.isdigit() or not low <= int(text) <= high:
            raise UsageError(f"{name} {text!r} is not an integer from {low} to {high}")
        return str(int(text))
    if not _SAFE_WORD.match(text):
        raise UsageError(f"{name} {text!r} is not a single safe word (interface or ACL name)")
    return text


def fill(template: str, **values: object) -> str:
    """``template`` with each ``{name}`` replaced by the checked value (see :func:`check_value`)."""
    missing = [n for n in _VARIABLE.findall(template) if n not in values]
    if missing:
        raise UsageError(f"{template!r}: no value for {', '.join(missing)}")
    command = _VARIABLE.sub(lambda m: check_value(m.group(1), values[m.group(1)]), template)
    if is_configuration_command(command):  # defence in depth: never configuration mode
        raise UsageError(f"{command!r} would enter configuration mode; refused")
    return command


# -- text helpers -----------------------------------------------------------------------------


def split_messages(lines: Sequence[str], message_start: re.Pattern[str]) -> list[str]:
    """Log lines -> messages: a line that starts a message, with its continuation lines."""
    messages: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        if messages and not message_start.search(line):
            messages[-1] += "\n" + line.rstrip()
        else:
            messages.append(line.rstrip())
    return messages


@dataclass(frozen=True)
class LogBuffer:
    """What one ``show logging`` says about the buffer, and its messages in order."""

    level: str  # "debugging", "informational", ... ; "disabled"; "" when not shown
    count: int | None  # "N messages logged", when shown
    messages: tuple[str, ...]

    @property
    def takes_debugs(self) -> bool:
        return self.level in ("", "debugging")


def read_log_buffer(text: str, data: IntrusiveData) -> LogBuffer:
    """Parse ``show logging``: buffer level, message count and the buffer's messages."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    level, count = "", None
    match = data.pattern("buffer_level").search(text)
    if match is not None:
        if match.group("off"):
            level = "disabled"
        else:
            level = match.group("level").lower()
            count = int(match.group("count")) if match.group("count") else None
    start = data.pattern("buffer_start")
    body = lines
    for index, line in enumerate(lines):
        if start.match(line.strip()):
            body = lines[index + 1 :]
            break
    else:
        if match is not None:  # a header but no buffer section: no messages
            body = []
    return LogBuffer(level, count, tuple(split_messages(body, data.pattern("message_start"))))


def monitor_level(text: str, data: IntrusiveData) -> str:
    """The ``Monitor logging`` level of ``show logging`` ("" when not shown)."""
    pattern = data.patterns.get("monitor_level")
    match = pattern.search(text) if pattern is not None else None
    if match is None:
        return ""
    return "disabled" if match.group("off") else match.group("level").lower()


ANCHOR_MESSAGES = 3


def new_messages(before: LogBuffer, after: LogBuffer) -> tuple[list[str], str]:
    """The messages ``after`` added to ``before``, and a note when some may have been lost.

    The last :data:`ANCHOR_MESSAGES` messages of ``before`` are looked for in ``after`` (last
    occurrence); what follows them is new. When they are gone (the circular buffer wrapped or
    was cleared), the message counter says how many are new; without a counter, every message
    of ``after`` counts as new.
    """
    anchor = list(before.messages[-ANCHOR_MESSAGES:])
    found = list(after.messages)
    if not anchor:
        return found, ""
    size = len(anchor)
    for end in range(len(found), size - 1, -1):
        if found[end - size : end] == anchor:
            return found[end:], ""
    if before.count is not None and after.count is not None and after.count >= before.count:
        added = after.count - before.count
        if added <= len(found):
            return (found[len(found) - added :] if added else []), ""
        lost = added - len(found)
        return found, f"the log buffer wrapped: {lost} message(s) were lost between two reads"
    return found, "the log buffer changed beyond recognition; all its messages are kept"


@dataclass(frozen=True)
class DebugListing:
    """What ``show debugging`` says is on."""

    flags: tuple[str, ...]  # "Crypto ISAKMP", "All possible", ...
    conditional: bool
    condition_peers: tuple[str, ...]

    @property
    def crypto_flags(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags if "crypto" in f.lower() or f.lower() == "all possible")


def parse_show_debugging(text: str, data: IntrusiveData) -> DebugListing:
    """Debug flags that are on, and the peers of crypto conditions, from ``show debugging``."""
    flags: list[str] = []
    peers: list[str] = []
    conditional = False
    in_peers = False
    debug_on = data.pattern("debug_on")
    condition_on = data.patterns.get("condition_on")
    peers_header = data.patterns.get("condition_peers")
    peer_line = data.patterns.get("condition_peer")
    for line in text.replace("\r\n", "\n").split("\n"):
        if in_peers and peer_line is not None:
            match = peer_line.match(line)
            if match is not None:
                peers.append(match.group("peer"))
                continue
            in_peers = False
        if peers_header is not None and peers_header.match(line):
            in_peers = True
            continue
        if condition_on is not None and condition_on.match(line):
            conditional = True
            continue
        match = debug_on.match(line)
        if match is not None:
            flags.append(match.group("what").strip())
    return DebugListing(tuple(flags), conditional, tuple(peers))


def end_of_negotiation(message: str, data: IntrusiveData) -> str:
    """``"established"``, ``"failed"`` or ``""``: whether ``message`` ends the negotiation."""
    for pattern in data.end_established:
        if pattern.search(message):
            return "established"
    for pattern in data.end_failed:
        if pattern.search(message):
            return "failed"
    return ""


def owner_of(message: str, data: IntrusiveData, enabled: Sequence[str]) -> str:
    """The enabled debug (name) whose lines ``message`` belongs to; the first one otherwise."""
    for name in enabled:
        if data.debugs[name].owns.search(message):
            return name
    return enabled[0] if enabled else ""
