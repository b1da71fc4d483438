"""Helpers shared by the audit renderers: durations, marks, short lines. No decisions here."""

from __future__ import annotations

from datetime import datetime

from ipsec_doctor.audit.model import AuditReport, TunnelRecord, TunnelStatus
from ipsec_doctor.model.findings import Severity

SEVERITY_MARK: dict[Severity, str] = {
    Severity.CRITICAL: "FAIL",
    Severity.WARNING: "WARN",
    Severity.INFO: "INFO",
    Severity.OK: " OK ",
}

STATUS_ORDER: tuple[TunnelStatus, ...] = (
    TunnelStatus.HEALTHY,
    TunnelStatus.DOWN,
    TunnelStatus.DEGRADED,
    TunnelStatus.UNKNOWN,
    TunnelStatus.UNREACHABLE,
)


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``5 h 3 min``, ``3 d 4 h``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "-"


def since_text(report: AuditReport, record: TunnelRecord, code: str) -> str:
    """``for 3 d (4 runs)`` or ``new``."""
    age = report.age(record, code)
    if age is None:
        return ""
    if age.runs <= 1:
        return "new"
    return f"for {duration(age.seconds(report.now))} ({age.runs} runs)"


def headline(record: TunnelRecord) -> str:
    """The first problem's summary, or the healthy line."""
    problems = record.problems
    if problems:
        return problems[0].summary
    if record.findings:
        return record.findings[0].summary
    return ""


def run_title(report: AuditReport) -> str:
    run = report.run
    took = f" in {duration(run.duration)}" if run.duration is not None else ""
    filters = f", filter {' '.join(run.filters)}" if run.filters else ""
    return f"audit run {run.id} of {stamp(run.started_at)}{took} ({run.source}{filters})"
