"""The audit's terminal summary: read in the morning, worst first.

Contract: :func:`render_audit_text` renders an :class:`~ipsec_doctor.audit.model.AuditReport`
as plain text (colour is the caller's business): the run line; devices reached and not;
tunnels by status; active findings by severity and by code (with the silenced count); what
changed since the previous run (new and resolved findings, tunnels that appeared or
vanished); the worst tunnels first (``limit`` of them, each with its codes, how long its
first problem has lasted and its first summary); unreachable devices; notes.
"""

from __future__ import annotations

from ipsec_doctor.audit.model import AuditReport, TunnelStatus
from ipsec_doctor.report.audit_common import (
    SEVERITY_MARK,
    STATUS_ORDER,
    duration,
    headline,
    run_title,
    since_text,
    stamp,
)

LIST_LIMIT = 15


def _more(lines: list[str], shown: int, total: int) -> None:
    if total > shown:
        lines.append(f"    ... and {total - shown} more")


def render_audit_text(report: AuditReport, limit: int = 20) -> str:
    """The summary as text lines (see the module contract)."""
    lines = [f"ipsec-doctor {run_title(report)}", ""]
    reached = report.reachable_devices
    unreachable = len(report.devices) - reached
    lines.append(
        f"Devices: {len(report.devices)} ({reached} reached"
        + (f", {unreachable} unreachable" if unreachable else "")
        + ")"
    )
    counts = report.counts_by_status()
    parts = [f"{counts[s.value]} {s.value}" for s in STATUS_ORDER if counts[s.value]]
    lines.append(f"Tunnels: {len(report.tunnels)}" + (f" ({', '.join(parts)})" if parts else ""))
    severity = report.counts_by_severity()
    text = ", ".join(f"{name} {n}" for name, n in severity.items())
    silenced = report.silenced_count
    lines.append(f"Findings: {text}" + (f"; {silenced} silenced" if silenced else ""))
    by_code = report.counts_by_code()
    if by_code:
        lines.append("")
        lines.append("By code (tunnels):")
        for code, (worst, n) in by_code.items():
            lines.append(f"  {code:28} {worst:8} {n}")
    lines.append("")
    changes = report.changes
    if changes is None:
        lines.append("Changes: first run in this history, nothing to compare with.")
    elif changes.empty:
        lines.append(f"Changes since run {changes.previous_run}: none.")
    else:
        lines.append(f"Changes since run {changes.previous_run}:")
        for title, items in (("new", changes.new), ("resolved", changes.resolved)):
            for item in items[:LIST_LIMIT]:
                lines.append(
                    f"  {title:9} {item.code:26} {item.device} -> {item.peer or '-'} "
                    f"({item.severity})"
                )
            _more(lines, min(len(items), LIST_LIMIT), len(items))
        for title, tunnels in (("appeared", changes.appeared), ("vanished", changes.vanished)):
            for tunnel in tunnels[:LIST_LIMIT]:
                far = f" <-> {tunnel.remote}" if tunnel.remote else ""
                lines.append(
                    f"  {title:9} tunnel {tunnel.device} -> {tunnel.peer}{far} ({tunnel.reason})"
                )
            _more(lines, min(len(tunnels), LIST_LIMIT), len(tunnels))
    problems = [t for t in report.worst_first() if t.status is not TunnelStatus.HEALTHY]
    lines.append("")
    if not report.tunnels:
        lines.append("No tunnels found.")
    elif not problems:
        lines.append("Every tunnel is healthy.")
    else:
        lines.append(f"Worst tunnels (first {min(limit, len(problems))} of {len(problems)}):")
        for record in problems[:limit]:
            mark = SEVERITY_MARK[record.worst]
            codes = ", ".join(record.codes) or "-"
            age = since_text(report, record, record.codes[0]) if record.codes else ""
            lines.append(
                f"  [{mark}] {record.label}  {record.status.value}: {codes}"
                + (f" ({age})" if age else "")
            )
            summary = headline(record)
            if summary:
                lines.append(f"         {summary}")
    down = [d for d in report.devices if not d.reachable]
    if down:
        lines.append("")
        lines.append(f"Unreachable devices ({len(down)}):")
        for device in down[:LIST_LIMIT]:
            lines.append(f"  {device.name}: {device.error}")
        _more(lines, min(len(down), LIST_LIMIT), len(down))
    if report.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  {note}" for note in report.notes[:LIST_LIMIT])
    if report.trend and len(report.trend) > 1:
        lines.append("")
        last = report.trend[-6:]
        trend = "  ".join(
            f"#{p.run_id} {p.count(TunnelStatus.HEALTHY)}ok/{p.broken}bad" for p in last
        )
        lines.append(f"Trend (healthy/broken per run): {trend}")
    lines.append("")
    lines.append(f"Generated {stamp(report.now)}; took {duration(report.run.duration or 0)}.")
    return "\n".join(lines).rstrip() + "\n"
