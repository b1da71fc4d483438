"""The terminal report of `check` and `analyze`: read top to bottom during an outage.

Contract: renders a :class:`~ipsec_doctor.model.report.Report` as plain text lines (no
decisions are made here). Layout: the devices read, then one line per step of the
troubleshooting strategy (prereq → traffic → ike → ipsec → data → routing, then posture)
with what was checked and its verdict, then every finding with its evidence lines quoted
from the device and the fix as configuration text. :func:`render_text` returns a string;
colour is added by the caller only when writing to a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable

from ipsec_doctor.model.findings import STAGE_ORDER, Finding, Severity, Stage
from ipsec_doctor.model.report import Report

STAGE_TITLES: dict[Stage, str] = {
    Stage.PREREQ: "Prerequisites (ISAKMP on, policies, config)",
    Stage.TRAFFIC: "Interesting traffic (crypto ACL, source interface, crypto map)",
    Stage.IKE: "IKE phase 1 (route to peer, proposals, authentication)",
    Stage.IPSEC: "IPsec phase 2 (transform sets, selectors, PFS)",
    Stage.DATA: "Data plane (encaps / decaps counters)",
    Stage.ROUTING: "Routing after the tunnel (remote LAN)",
    Stage.AUDIT: "Posture (weak crypto, lifetimes)",
}

#: Evidence lines shown per finding in the terminal (JSON always has them all).
MAX_EVIDENCE_LINES = 10

SEVERITY_MARK: dict[Severity, str] = {
    Severity.CRITICAL: "FAIL",
    Severity.WARNING: "WARN",
    Severity.INFO: "INFO",
    Severity.OK: " OK ",
}


def _stage_verdicts(findings: Iterable[Finding]) -> dict[Stage, list[Finding]]:
    by_stage: dict[Stage, list[Finding]] = {stage: [] for stage in STAGE_ORDER}
    for finding in findings:
        if finding.stage in by_stage:
            by_stage[finding.stage].append(finding)
    return by_stage


def _stage_line(stage: Stage, stage_findings: list[Finding], blocked_by: Finding | None) -> str:
    problems = [f for f in stage_findings if f.severity is not Severity.OK]
    title = STAGE_TITLES[stage]
    if problems:
        worst = max(problems, key=lambda f: f.severity.rank)
        codes = ", ".join(dict.fromkeys(f.code.value for f in problems))
        return f"  [{SEVERITY_MARK[worst.severity]}] {title}: {codes}"
    if blocked_by is not None:
        return f"  [ -- ] {title}: not judged, {blocked_by.code.value} comes first"
    if any(f.severity is Severity.OK for f in stage_findings):
        return f"  [ OK ] {title}: healthy"
    return f"  [ OK ] {title}: nothing wrong found"


def _finding_block(index: int, finding: Finding) -> list[str]:
    lines = [
        f"{index}. {finding.code.value} ({finding.severity.value}, stage {finding.stage.value})"
        f" on {finding.device or '-'} for peer {finding.peer or '-'}",
        f"   {finding.summary}",
    ]
    if finding.evidence:
        lines.append("   Evidence:")
        shown = finding.evidence[:MAX_EVIDENCE_LINES]
        last_where = ""
        for evidence in shown:
            where = f"{evidence.device or finding.device} `{evidence.command}`"
            if evidence.sample > 1:
                where += f" (sample {evidence.sample})"
            if where != last_where:
                lines.append(f"     {where}:")
                last_where = where
            lines.append(f"       {evidence.line.rstrip()}")
        hidden = len(finding.evidence) - len(shown)
        if hidden > 0:
            lines.append(f"     (+{hidden} more line(s); --format json lists them all)")
    if finding.fix:
        target = f" (on {finding.fix_device})" if finding.fix_device else ""
        lines.append(f"   Fix{target}:")
        lines.extend(f"     {line}" for line in finding.fix.rstrip().splitlines())
    if finding.reference:
        lines.append(f"   Step: {finding.reference}")
    return lines


def render_text(report: Report) -> str:
    """The whole report as text, top to bottom."""
    lines = [f"ipsec-doctor {report.mode} — peer {report.peer}  ({report.started_at})", ""]
    lines.append("Devices read:")
    if not report.devices:
        lines.append("  (none)")
    for device in report.devices:
        status = device.summary_line()
        role = f", {device.role}" if device.role else ""
        lines.append(f"  {device.name} ({device.platform}{role}): {status}")
    lines.append("")
    lines.append("Troubleshooting strategy:")
    by_stage = _stage_verdicts(report.findings)
    blocked_by: Finding | None = None
    for stage in STAGE_ORDER:
        stage_findings = by_stage[stage]
        lines.append(_stage_line(stage, stage_findings, blocked_by))
        critical = [f for f in stage_findings if f.severity is Severity.CRITICAL]
        if critical and blocked_by is None and stage is not Stage.AUDIT:
            blocked_by = critical[0]
    meta = [f for f in report.findings if f.stage is Stage.META]
    if meta:
        lines.append(f"  [INFO] Data gaps: {len(meta)} command(s) could not be judged")
    lines.append("")
    problems = [f for f in report.findings if f.severity is not Severity.OK]
    if not report.findings:
        lines.append("No findings.")
    elif not problems:
        lines.append("Verdict: the tunnel is healthy.")
    else:
        first = problems[0]
        lines.append(f"Root cause: {first.code.value} on {first.device} — {first.summary}")
    lines.append("")
    for index, finding in enumerate(report.findings, start=1):
        lines.extend(_finding_block(index, finding))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
