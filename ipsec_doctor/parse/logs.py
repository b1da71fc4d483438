"""Device logs and debug output -> normalised :class:`~ipsec_doctor.model.state.LogEvent` objects.

Contract (generic over platforms; the wording lives in each platform's signature table, see
:mod:`ipsec_doctor.platforms.loader`):
- :func:`classify_log_text` splits a text into log lines, reads their timestamps and maps every
  line a signature matches to a ``LogEvent`` (event name, peer, timestamp, the message, the
  named groups as ``detail``, and an :class:`~ipsec_doctor.model.state.Evidence` pointing at
  the exact line and its 1-based line number). Lines no signature matches come back as
  ``Evidence`` in the second element: context for a person, never evidence for a rule.
- Which lines are log lines: when the platform has a TextFSM template for its log command
  (``show logging``), that template decides (it skips the IOS header up to ``Log Buffer``);
  otherwise every non-blank line is one. Pasted debug output works either way.
- Timestamps: ``*Nov 23 10:14:02.311``, ``.Nov 23 2023 10:14:02 UTC``, ``2023-11-23T10:14:02``,
  ``Nov 23 10:14:02`` (syslog) become naive datetimes in the device's own clock; a timestamp
  without a year takes the year of ``reference`` (the device clock, ``show clock``) and the
  year before when it would otherwise lie more than a day after the reference; without a
  reference it gives ``None`` (the printed stamp is kept in ``detail["stamp"]``). Uptime stamps
  (``1d09h``, ``2w3d``, ``00:26:15``) and unknown forms give ``None`` (kept in
  ``detail["uptime"]`` / the message). A line without a timestamp (a wrapped debug line)
  inherits the one before it.
- Matching: the first signature whose regex is found in the line wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address

from ipsec_doctor.errors import ParseError
from ipsec_doctor.model.state import Evidence, IPAddress, LogEvent
from ipsec_doctor.parse.textfsm_parser import parse_output
from ipsec_doctor.platforms.loader import LogSignature, Platform, load_platform

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}

# Sample device lines:
#   "000123: *Nov 23 10:14:02.311: %CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF"  (sequence, '*')
#   ".Nov 23 2023 10:14:02.311 UTC: ISAKMP:(0): no offers accepted!"        (year, zone)
#   "Nov 23 10:14:02 gw1 charon[812]: 09[IKE] received NO_PROPOSAL_CHOSEN" (syslog, no ms)
_CALENDAR = re.compile(
    r"^(?:(?P<seq>\d+):\s+)?(?P<stamp>[*.]?(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2})\s+"
    r"(?:(?P<year>\d{4})\s+)?(?P<time>\d{1,2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"(?:\s+(?P<zone>[A-Z][A-Za-z0-9+-]*)(?=:))?):?\s*(?P<rest>.*)$"
)
# Sample device line: "2023-11-23T10:14:02.311+01:00 gw1 charon: 10[IKE] retransmit 2 of request"
_ISO = re.compile(
    r"^(?P<stamp>(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?):?\s*(?P<rest>.*)$"
)
# Sample device lines: "1d09h: ISAKMP (16): beginning Main Mode exchange", "2w3d: %SYS-5-...",
#   "00:26:15: IPSEC(create_sa): sa created,", "000042: 1d00h:%CRPTO-4-IKMP_BAD_MESSAGE: ..."
_UPTIME = re.compile(
    r"^(?:(?P<seq>\d+):\s+)?(?P<stamp>[*.]?(?:\d+[ywd]\d+[wdh]|\d{1,2}:\d{2}:\d{2}(?:\.\d+)?))"
    r":\s*(?P<rest>.*)$"
)


@dataclass(frozen=True)
class LogLine:
    """One line of a log text: where it is, its timestamp as printed and as a datetime."""

    line_no: int  # 1-based line number in the text
    text: str  # the line as printed (trailing blanks removed)
    stamp: str  # the timestamp as printed, "" if none
    timestamp: datetime | None
    uptime: bool = False  # the stamp is an uptime (1d09h), not a date


def _calendar_time(match: re.Match[str], reference: datetime | None) -> datetime | None:
    month = _MONTHS.get(match.group("mon").lower())
    if month is None:
        return None
    hour, minute, second = (int(part) for part in match.group("time").split(":"))
    micro = int(float(match.group("frac") or 0) * 1_000_000)
    year_text = match.group("year")
    if year_text:
        year = int(year_text)
    elif reference is not None:
        year = reference.year
    else:
        return None  # a day without a year cannot be placed without the device clock
    try:
        stamp = datetime(year, month, int(match.group("day")), hour, minute, second, micro)
    except ValueError:
        return None
    if not year_text and reference is not None and stamp - reference > timedelta(days=1):
        try:
            stamp = stamp.replace(year=year - 1)
        except ValueError:  # 29 February
            return None
    return stamp


def parse_log_line(line_no: int, text: str, reference: datetime | None = None) -> LogLine:
    """The timestamp of one log line (see the module docstring for the forms)."""
    stripped = text.strip()
    match = _CALENDAR.match(stripped)
    if match:
        return LogLine(
            line_no, text.rstrip(), match.group("stamp"), _calendar_time(match, reference)
        )
    match = _ISO.match(stripped)
    if match:
        iso: datetime | None
        try:
            iso = datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}")
            iso = iso.replace(microsecond=int(float(match.group("frac") or 0) * 1_000_000))
        except ValueError:
            iso = None
        return LogLine(line_no, text.rstrip(), match.group("stamp"), iso)
    match = _UPTIME.match(stripped)
    if match:
        return LogLine(line_no, text.rstrip(), match.group("stamp"), None, uptime=True)
    return LogLine(line_no, text.rstrip(), "", None)


def _template_lines(platform: Platform, text: str) -> list[tuple[int, str]] | None:
    """(line number, line) of the log lines the platform's log template finds, in order."""
    try:
        rows = parse_output(platform.textfsm_platform, platform.log_command, text)
    except ParseError:
        return None
    lines = text.split("\n")
    found: list[tuple[int, str]] = []
    cursor = 0
    for row in rows:
        message = str(row.get("message", "")).strip()
        if not message:
            continue
        for index in range(cursor, len(lines)):
            if message in lines[index]:
                found.append((index + 1, lines[index]))
                cursor = index + 1
                break
    return found


def split_log_lines(
    text: str, platform: Platform | None = None, reference: datetime | None = None
) -> list[LogLine]:
    """The log lines of ``text`` with their timestamps (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    numbered = _template_lines(platform, text) if platform is not None else None
    if numbered is None:
        numbered = [(i + 1, line) for i, line in enumerate(text.split("\n")) if line.strip()]
    result: list[LogLine] = []
    previous: LogLine | None = None
    for line_no, line in numbered:
        parsed = parse_log_line(line_no, line, reference)
        if not parsed.stamp and previous is not None:
            parsed = LogLine(line_no, parsed.text, "", previous.timestamp, previous.uptime)
        result.append(parsed)
        if parsed.stamp:
            previous = parsed
    return result


#: Characters with a meaning in an expression (outside a character class).
_SPECIAL = set(".^$*+?{}[]()|\\")
#: Escapes that stand for one literal character.
_ESCAPED_LITERAL = set(".^$*+?{}[]()|\\-%/:#=<>!@&~'\" ,;_")


def required_literal(expression: str) -> str:
    """The longest piece of plain text every match of ``expression`` contains, or "".

    Only text outside any group (a group may be optional or one of several alternatives) and
    not made optional by a following quantifier counts; an expression with a top-level ``|``
    has none. Used to pass over, with one substring test, the log lines a signature cannot
    match (most lines of a router's log match no signature).
    """
    runs: list[str] = []
    current: list[str] = []
    depth = 0
    index = 0

    def close(optional_last: bool = False) -> None:
        if optional_last and current:
            current.pop()
        if current:
            runs.append("".join(current))
        current.clear()

    while index < len(expression):
        char = expression[index]
        if char == "\\" and index + 1 < len(expression):
            escaped = expression[index + 1]
            index += 2
            if depth == 0 and escaped in _ESCAPED_LITERAL:
                current.append(escaped)
                continue
            close()  # \s, \d, \b ...: not plain text
            continue
        if char == "[":  # a character class: skip to its end
            close()
            index += 1
            if index < len(expression) and expression[index] == "^":
                index += 1
            if index < len(expression) and expression[index] == "]":
                index += 1
            while index < len(expression) and expression[index] != "]":
                index += 2 if expression[index] == "\\" else 1
            index += 1
            continue
        if char == "(":
            close()
            depth += 1
        elif char == ")":
            close()
            depth -= 1
        elif char == "|":
            if depth == 0:
                return ""
        elif char in "*?" or (char == "{" and depth == 0):
            close(optional_last=True)  # the character before may be absent (or repeated)
        elif char in _SPECIAL:  # "+" (one or more) keeps what came before; . ^ $ { } too
            close()
        elif depth == 0:
            current.append(char)
        index += 1
    close()
    return max(runs, key=len, default="")


#: Per signature table: each signature with the text a line must hold for it to match
#: (lower-case when the signature ignores case; "" when there is none).
_LITERALS: dict[tuple[int, ...], list[tuple[LogSignature, str, bool]]] = {}


def _with_literals(signatures: Sequence[LogSignature]) -> list[tuple[LogSignature, str, bool]]:
    key = tuple(id(s.pattern) for s in signatures)
    found = _LITERALS.get(key)
    if found is None:
        found = []
        for signature in signatures:
            folded = bool(signature.pattern.flags & re.IGNORECASE)
            literal = required_literal(signature.pattern.pattern)
            if signature.pattern.flags & re.VERBOSE or signature.pattern.pattern.startswith("(?"):
                literal = ""  # inline flags or verbose layout: no shortcut
            found.append((signature, literal.lower() if folded else literal, folded))
        if len(_LITERALS) > 64:
            _LITERALS.clear()
        _LITERALS[key] = found
    return found


def match_signature(
    line: str, signatures: Sequence[LogSignature]
) -> tuple[LogSignature, re.Match[str]] | None:
    """The first signature found in ``line`` and its match, or None."""
    lowered = line.lower()
    for signature, literal, folded in _with_literals(signatures):
        if literal and literal not in (lowered if folded else line):
            continue  # the line lacks text every match holds
        match = signature.pattern.search(line)
        if match:
            return signature, match
    return None


def _peer(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        return ip_address(value)
    except ValueError:
        return None


def classify_lines(
    lines: Iterable[LogLine],
    signatures: Sequence[LogSignature],
    *,
    command: str = "",
    device: str = "",
    sample: int = 1,
) -> tuple[tuple[LogEvent, ...], tuple[Evidence, ...]]:
    """Events for the lines a signature matches, evidence for the others."""
    events: list[LogEvent] = []
    unclassified: list[Evidence] = []
    for line in lines:
        evidence = Evidence(
            command=command, line=line.text, line_no=line.line_no, sample=sample, device=device
        )
        found = match_signature(line.text, signatures)
        if found is None:
            unclassified.append(evidence)
            continue
        signature, match = found
        detail = dict(signature.detail)
        detail.update({k: v for k, v in match.groupdict().items() if v is not None})
        if line.uptime and line.stamp:
            detail["uptime"] = line.stamp.lstrip("*.")
        elif line.stamp and line.timestamp is None:
            detail["stamp"] = line.stamp.lstrip("*.")
        events.append(
            LogEvent(
                event=signature.event.value,
                peer=_peer(detail.get("peer")),
                timestamp=line.timestamp,
                message=line.text.strip(),
                source=evidence,
                detail=detail,
            )
        )
    return tuple(events), tuple(unclassified)


def classify_log_text(
    platform: str | Platform,
    text: str,
    *,
    reference: datetime | None = None,
    command: str = "",
    device: str = "",
    sample: int = 1,
) -> tuple[tuple[LogEvent, ...], tuple[Evidence, ...]]:
    """(events, unclassified lines) of a device log or debug text for ``platform``.

    ``reference`` is the device clock used to give year-less timestamps a year; ``command``
    defaults to the platform's log command (a file given to ``analyze --log`` is still
    quoted as coming from it unless the caller says otherwise).
    """
    loaded = load_platform(platform) if isinstance(platform, str) else platform
    lines = split_log_lines(text, loaded, reference)
    return classify_lines(
        lines,
        loaded.signatures,
        command=command or loaded.log_command,
        device=device,
        sample=sample,
    )
