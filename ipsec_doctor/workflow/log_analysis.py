"""`analyze --log`: a pasted debug or syslog dump, read on its own or joined to a capture folder.

Contract:
- :func:`read_log` reads a file, or standard input for ``-``, as text (undecodable bytes are
  replaced, CR/LF normalised by the classifier); a file that cannot be read is a
  :class:`~ipsec_doctor.errors.UsageError`.
- :func:`analyze_log` interprets a log on its own: every line the platform's signature table
  knows becomes a :class:`~ipsec_doctor.diagnose.messages.Reading` (event, the finding codes it
  points to, likelier first, ambiguity and the neighbouring line that narrowed it), the others
  are returned as unclassified lines, and the diagnosis rules run on a device state that holds
  only this log (every other section unknown), so the findings are the ones the log alone
  supports, with its lines as evidence. The peer is ``peer`` when given, else the address the
  most classified lines name (the others are listed in a note); with no address at all the
  diagnosis runs for an unknown peer and findings carry ``peer ""``. The log's lines are quoted
  as coming from the command ``source`` (the file name, ``stdin`` for ``-``) on the device
  ``device`` (default ``log``). An empty log is a report in which nothing was collected.
- :func:`analyze_folder_with_log` is `analyze DIR --log FILE`: the capture folder is diagnosed
  as `analyze DIR` does, with the log's events joined to the logs of ``log_device`` (default:
  the local end chosen for the peer) before the diagnosis; the log is classified with that
  device's platform (unless ``platform`` is given) and clock, so year-less timestamps get the
  device's year and messages older than the check window stay context.
- Both return the :class:`LogAnalysis` for printing and the :class:`~ipsec_doctor.model.report.
  Report` of the diagnosis; :meth:`LogAnalysis.to_dict` is the ``log`` object of the JSON
  document.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.diagnose.messages import Reading, interpret
from ipsec_doctor.errors import UsageError
from ipsec_doctor.model.findings import Finding
from ipsec_doctor.model.report import CommandRecord, DeviceRecord, Report
from ipsec_doctor.model.state import DeviceState, Evidence, IPAddress, LogEvent, TunnelView
from ipsec_doctor.parse.logs import classify_log_text
from ipsec_doctor.platforms.loader import load_platform
from ipsec_doctor.workflow.flow import diagnose_states, parse_peer, parse_states, read_folder

DEFAULT_PLATFORM = "cisco_ios"
LOG_DEVICE = "log"
#: Stands for "no peer known" inside the diagnosis; never shown (findings get peer "").
_NO_PEER = ip_address("0.0.0.0")


@dataclass(frozen=True)
class LogAnalysis:
    """One log as read: what each classified line points to, and the lines not classified."""

    source: str  # the file name as given ("-" for standard input)
    platform: str
    device: str  # the device the log is quoted from (standalone: "log")
    lines: int  # non-blank lines read
    readings: tuple[Reading, ...]
    unclassified: tuple[Evidence, ...]
    peer: str = ""  # the peer the diagnosis was run for ("" = unknown)
    joined: bool = False  # the events joined a capture folder's device
    notes: tuple[str, ...] = ()  # which peer was chosen and why, where the log went

    @property
    def events(self) -> tuple[LogEvent, ...]:
        return tuple(r.event for r in self.readings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "platform": self.platform,
            "device": self.device,
            "joined": self.joined,
            "peer": self.peer,
            "lines": self.lines,
            "classified": len(self.readings),
            "notes": list(self.notes),
            "messages": [_reading_dict(r) for r in self.readings],
            "unclassified": [{"line_no": e.line_no, "line": e.line} for e in self.unclassified],
        }


def _reading_dict(reading: Reading) -> dict[str, Any]:
    event = reading.event
    source = event.source
    decided = reading.decided_by.source if reading.decided_by is not None else None
    return {
        "line_no": source.line_no if source is not None else 0,
        "line": source.line if source is not None else event.message,
        "event": event.event,
        "peer": str(event.peer) if event.peer is not None else "",
        "detail": dict(event.detail),
        "codes": [c.value for c in reading.codes],
        "ambiguous": reading.ambiguous,
        "note": reading.note,
        "decided_by_line": decided.line_no if decided is not None else None,
    }


def read_log(path: str) -> tuple[str, str]:
    """(text, source name) of ``path``, or of standard input for ``-``."""
    if path == "-":
        return sys.stdin.read(), "stdin"
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise UsageError(f"--log {path}: cannot read: {error.strerror or error}") from error
    return data.decode("utf-8", errors="replace"), file.name


def _classify(
    text: str, platform: str, *, source: str, device: str, reference: datetime | None
) -> tuple[tuple[LogEvent, ...], tuple[Evidence, ...], int]:
    loaded = load_platform(platform)
    events, unclassified = classify_log_text(
        loaded, text, reference=reference, command=source, device=device
    )
    lines = sum(1 for line in text.replace("\r", "\n").split("\n") if line.strip())
    return events, unclassified, lines


def _peer_of(events: tuple[LogEvent, ...], peer_text: str | None) -> tuple[IPAddress | None, str]:
    """The peer to diagnose for, and a note when the log names several."""
    if peer_text:
        return parse_peer(peer_text), ""
    counts = Counter(e.peer for e in events if e.peer is not None)
    if not counts:
        return None, ""
    ranked = counts.most_common()
    chosen = ranked[0][0]
    note = ""
    if len(ranked) > 1:
        named = ", ".join(f"{p} ({n} lines)" for p, n in ranked)
        note = f"the log names several peers: {named}; diagnosed for {chosen} (use --peer)"
    return chosen, note


def _unknown_peer(finding: Finding) -> Finding:
    text = str(_NO_PEER)
    return replace(
        finding,
        peer="",
        summary=finding.summary.replace(f"with {text}", "with the peer").replace(text, "the peer"),
        fix=finding.fix.replace(text, "<peer>"),
        fix_device="the peer" if finding.fix_device == text else finding.fix_device,
    )


def analyze_log(
    text: str,
    *,
    source: str,
    platform: str | None = None,
    peer: str | None = None,
    device: str | None = None,
) -> tuple[LogAnalysis, Report]:
    """Interpret a log on its own (see the module docstring)."""
    platform = platform or DEFAULT_PLATFORM
    name = device or LOG_DEVICE
    events, unclassified, lines = _classify(
        text, platform, source=source, device=name, reference=None
    )
    chosen, note = _peer_of(events, peer)
    state = DeviceState(
        name=name, platform=platform, logs=events, unclassified_log_lines=unclassified
    )
    findings = diagnose(TunnelView(local=state, peer=chosen or _NO_PEER))
    if chosen is None:
        findings = [_unknown_peer(f) for f in findings]
    notes = []
    if note:
        notes.append(note)
    if chosen is None and events:
        notes.append("no line names the peer's address; use --peer to name it")
    analysis = LogAnalysis(
        source=source,
        platform=platform,
        device=name,
        lines=lines,
        readings=tuple(interpret(events)),
        unclassified=unclassified,
        peer=str(chosen) if chosen is not None else "",
        notes=tuple(notes),
    )
    record = DeviceRecord(
        name=name,
        platform=platform,
        role="local",
        peer=analysis.peer,
        reason=f"the log {source}",
        commands=(CommandRecord(source, 1, "ok" if lines else "missing"),),
    )
    report = Report(
        peer=analysis.peer,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mode="analyze",
        devices=(record,),
        findings=tuple(findings),
        notes=(f"log {source} read on its own: {len(events)} of {lines} lines classified", *notes),
    )
    return analysis, report


def analyze_folder_with_log(
    folder: Path,
    text: str,
    *,
    source: str,
    peer_text: str | None = None,
    device: str | None = None,
    log_device: str | None = None,
    platform: str | None = None,
) -> tuple[LogAnalysis, Report]:
    """`analyze DIR --log FILE` (see the module docstring)."""
    peer, plan, captures = read_folder(folder, peer_text, device)
    states = parse_states(captures, plan)
    target = log_device or device or (plan.local[0].device if plan.local else None)
    if target is None or target not in states:
        known = ", ".join(sorted(states)) or "none"
        raise UsageError(f"--log-device {target}: no such device in {folder} (devices: {known})")
    state = states[target]
    log_platform = platform or state.platform
    events, unclassified, lines = _classify(
        text, log_platform, source=source, device=target, reference=state.clock
    )
    states = dict(states)
    states[target] = replace(
        state,
        logs=(*(state.logs or ()), *events),
        unclassified_log_lines=(*state.unclassified_log_lines, *unclassified),
    )
    joined = f"log {source}: {len(events)} of {lines} lines classified, joined to {target}'s logs"
    report = diagnose_states(captures, plan, states, mode="analyze", notes=[*plan.notes, joined])
    analysis = LogAnalysis(
        source=source,
        platform=log_platform,
        device=target,
        lines=lines,
        readings=tuple(interpret(events)),
        unclassified=unclassified,
        peer=str(peer),
        joined=True,
        notes=(joined,),
    )
    return analysis, report
