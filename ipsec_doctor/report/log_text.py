"""The terminal view of `analyze --log`: each classified message and what it points to.

Contract: renders a :class:`~ipsec_doctor.workflow.log_analysis.LogAnalysis` as plain text (no
decisions): a heading with the counts, then one block per classified line (``L<n>``, the
event, ``->`` the finding code(s) it points to - "A or B (ambiguous, likelier first)" while
it stays ambiguous, "(line N decides: event)" when a neighbouring line narrowed it, "no finding
of its own" for progress and housekeeping - the line as printed and what it means), then every
line it could not classify with its line number. The diagnosis itself is the ordinary report
(:mod:`ipsec_doctor.report.text`), printed after it by the caller.
"""

from __future__ import annotations

import textwrap

from ipsec_doctor.diagnose.messages import Reading
from ipsec_doctor.workflow.log_analysis import LogAnalysis

WIDTH = 100


def _codes(reading: Reading) -> str:
    if not reading.codes:
        return "no finding of its own" if reading.entry is not None else "not in the event table"
    names = [c.value for c in reading.codes]
    text = " or ".join(names)
    if reading.ambiguous:
        text += " (ambiguous, likelier first)"
    decided = reading.decided_by
    if decided is not None and decided.source is not None:
        text += f" (line {decided.source.line_no} decides: {decided.event})"
    return text


def _block(reading: Reading) -> list[str]:
    source = reading.event.source
    number = f"L{source.line_no}" if source is not None else "L?"
    line = source.line if source is not None else reading.event.message
    out = [f"  {number:<6}{reading.event.event} -> {_codes(reading)}", f"        {line.strip()}"]
    out += textwrap.wrap(
        reading.note, WIDTH, initial_indent="        ", subsequent_indent="        "
    )
    return out


def render_log_analysis(analysis: LogAnalysis) -> str:
    """The text of one log analysis (see the module docstring)."""
    how = f"joined to {analysis.device}'s logs" if analysis.joined else "read on its own"
    lines = [
        f"ipsec-doctor analyze --log {analysis.source} ({analysis.platform}), {how}: "
        f"{len(analysis.readings)} of {analysis.lines} lines classified, "
        f"{len(analysis.unclassified)} not",
    ]
    lines += [f"  note: {note}" for note in analysis.notes if not analysis.joined]
    lines.append("")
    if analysis.readings:
        lines.append("Messages (line, event -> the finding code(s) it points to):")
        for reading in analysis.readings:
            lines += _block(reading)
        lines.append("")
    if analysis.unclassified:
        lines.append(f"Lines not classified ({len(analysis.unclassified)}), context only:")
        for evidence in analysis.unclassified:
            lines.append(f"  L{evidence.line_no:<5}{evidence.line.strip()}")
        lines.append("")
    return "\n".join(lines) + "\n"
