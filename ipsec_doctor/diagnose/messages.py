"""What a log message points to: normalised event -> finding code(s), as an expert reads it.

Contract:
- The table is data, ``ipsec_doctor/platforms/event_codes.yaml`` (its header explains the
  format). :func:`load_event_codes` reads and validates it once (cached); any problem is a
  :class:`~ipsec_doctor.errors.ConfigError` naming the file and the key at fault, and an event
  name or code the model does not know is one.
- :func:`interpret` reads a sequence of :class:`~ipsec_doctor.model.state.LogEvent` (one log, in
  line order) and returns one :class:`Reading` per event, in the same order: the entry of the
  table that applies (the first whose ``when`` matches the event's detail), the codes it points
  to (likelier first), whether it stays ambiguous, and which neighbouring message narrowed it
  (``near`` clauses: an event of the clause within ``window`` lines of it, same command and
  device; the nearest such line is named). An event the table lacks gets ``entry None`` and no
  codes. Pure: no I/O beyond the cached table.
- The rules of :mod:`ipsec_doctor.diagnose.rules` remain the authority for findings; this table
  explains single lines (``analyze --log``) and never emits a finding itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code
from ipsec_doctor.model.state import LogEvent

TABLE_PACKAGE = "ipsec_doctor.platforms"
TABLE_FILE = "event_codes.yaml"

_ENTRY_KEYS = frozenset({"when", "codes", "means", "ambiguous", "near"})
_NEAR_KEYS = frozenset({"events", "codes"})


@dataclass(frozen=True)
class Near:
    """A refinement: when one of ``events`` stands near the message, ``codes`` apply."""

    events: frozenset[str]
    codes: tuple[Code, ...]


@dataclass(frozen=True)
class CodeEntry:
    """One entry of the table: what an event (with matching detail) points to."""

    event: str
    codes: tuple[Code, ...]
    means: str
    ambiguous: str = ""
    when: tuple[tuple[str, re.Pattern[str]], ...] = ()
    near: tuple[Near, ...] = ()

    def matches(self, detail: Mapping[str, str]) -> bool:
        """Every ``when`` key is in ``detail`` and its whole value matches the pattern."""
        return all(
            pattern.fullmatch(str(detail.get(key, "")).strip()) is not None
            for key, pattern in self.when
        )


@dataclass(frozen=True)
class EventCodes:
    """The whole table: entries per event name and the neighbourhood in lines."""

    window: int
    entries: Mapping[str, tuple[CodeEntry, ...]]

    def entry_for(self, event: LogEvent) -> CodeEntry | None:
        """The first entry for ``event.event`` whose ``when`` matches its detail."""
        for entry in self.entries.get(event.event, ()):
            if entry.matches(event.detail):
                return entry
        return None


@dataclass(frozen=True)
class Reading:
    """One classified line as the table reads it."""

    event: LogEvent
    entry: CodeEntry | None
    codes: tuple[Code, ...]  # likelier first ( () = progress / housekeeping / not in table)
    decided_by: LogEvent | None = None  # the neighbouring line that narrowed the codes

    @property
    def ambiguous(self) -> bool:
        return len(self.codes) > 1

    @property
    def note(self) -> str:
        """What the message means, and why it is ambiguous while it still is."""
        if self.entry is None:
            return "no entry in the event table"
        if self.ambiguous and self.entry.ambiguous:
            return f"{self.entry.means} Ambiguous: {self.entry.ambiguous}"
        return self.entry.means


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{TABLE_FILE}: {where}: {message}")


def _codes(value: Any, where: str) -> tuple[Code, ...]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list of finding codes, got {value!r}")
    codes: list[Code] = []
    for item in value:
        try:
            codes.append(Code(str(item)))
        except ValueError as error:
            raise _fail(where, f"unknown finding code {item!r}") from error
    return tuple(codes)


def _events(value: Any, where: str) -> frozenset[str]:
    known = {e.value for e in Event}
    if not isinstance(value, list) or not value:
        raise _fail(where, f"expected a list of event names, got {value!r}")
    for name in value:
        if name not in known:
            raise _fail(where, f"unknown event {name!r}")
    return frozenset(str(n) for n in value)


def _entry(event: str, data: Any, where: str) -> CodeEntry:
    if not isinstance(data, Mapping):
        raise _fail(where, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _ENTRY_KEYS)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_ENTRY_KEYS))})")
    means = data.get("means")
    if not isinstance(means, str) or not means.strip():
        raise _fail(f"{where}.means", "expected a sentence saying what the message means")
    codes = _codes(data.get("codes"), f"{where}.codes")
    ambiguous = str(data.get("ambiguous") or "")
    if len(codes) > 1 and not ambiguous:
        raise _fail(where, "several codes need an 'ambiguous' note saying why")
    when: list[tuple[str, re.Pattern[str]]] = []
    for key, pattern in dict(data.get("when") or {}).items():
        try:
            when.append((str(key), re.compile(str(pattern), re.IGNORECASE)))
        except re.error as error:
            raise _fail(f"{where}.when.{key}", f"invalid regular expression: {error}") from error
    near: list[Near] = []
    for index, clause in enumerate(data.get("near") or []):
        here = f"{where}.near[{index}]"
        if not isinstance(clause, Mapping) or set(clause) - _NEAR_KEYS:
            raise _fail(here, "expected a mapping with 'events' and 'codes'")
        near.append(
            Near(_events(clause.get("events"), f"{here}.events"), _codes(clause.get("codes"), here))
        )
    return CodeEntry(
        event=event,
        codes=codes,
        means=" ".join(means.split()),
        ambiguous=" ".join(ambiguous.split()),
        when=tuple(when),
        near=tuple(near),
    )


def parse_event_codes(data: Any) -> EventCodes:
    """The validated table from its parsed YAML (see the module docstring)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("events"), Mapping):
        raise _fail("top level", "expected a mapping with an 'events' mapping")
    window = data.get("window", 15)
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise _fail("window", f"expected a number of lines, got {window!r}")
    known = {e.value for e in Event}
    entries: dict[str, tuple[CodeEntry, ...]] = {}
    for event, items in data["events"].items():
        if event not in known:
            raise _fail(f"events.{event}", "unknown event (model/events.py)")
        if not isinstance(items, list) or not items:
            raise _fail(f"events.{event}", "expected a non-empty list of entries")
        parsed = tuple(_entry(event, item, f"events.{event}[{i}]") for i, item in enumerate(items))
        if parsed[-1].when:
            raise _fail(f"events.{event}", "the last entry must have no 'when' (the default)")
        entries[event] = parsed
    return EventCodes(window=window, entries=entries)


@lru_cache(maxsize=1)
def load_event_codes() -> EventCodes:
    """The packaged table (cached)."""
    text = resources.files(TABLE_PACKAGE).joinpath(TABLE_FILE).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _fail("file", f"invalid YAML: {error}") from error
    return parse_event_codes(data)


def _same_log(a: LogEvent, b: LogEvent) -> bool:
    sa, sb = a.source, b.source
    return sa is not None and sb is not None and (sa.command, sa.device) == (sb.command, sb.device)


def _nearest(
    event: LogEvent, names: frozenset[str], events: Sequence[LogEvent], window: int
) -> LogEvent | None:
    if event.source is None:
        return None
    best: tuple[int, LogEvent] | None = None
    for other in events:
        if other is event or other.event not in names or not _same_log(event, other):
            continue
        assert other.source is not None
        distance = abs(other.source.line_no - event.source.line_no)
        if distance <= window and (best is None or distance < best[0]):
            best = (distance, other)
    return best[1] if best else None


def interpret(events: Sequence[LogEvent], table: EventCodes | None = None) -> list[Reading]:
    """One :class:`Reading` per event, in order (see the module docstring)."""
    table = table or load_event_codes()
    readings: list[Reading] = []
    for event in events:
        entry = table.entry_for(event)
        if entry is None:
            readings.append(Reading(event=event, entry=None, codes=()))
            continue
        codes, decided_by = entry.codes, None
        for clause in entry.near:
            found = _nearest(event, clause.events, events, table.window)
            if found is not None:
                codes, decided_by = clause.codes, found
                break
        readings.append(Reading(event=event, entry=entry, codes=codes, decided_by=decided_by))
    return readings
