"""The Markdown transcript of a runbook, ready to paste into an incident ticket.

Contract: :func:`render_transcript` is pure (no I/O, no clock) and returns Markdown with, in
this order: a header table (runbook, peer, user, devices with role and why chosen, mode,
start and end time, how it ended), the conclusion (root cause with its evidence and fix, the
other findings, what was never read), what was changed on the devices and whether it was
undone, and every step visited in the order it was visited, each with the time, the commands
per device and their outcome, the evidence lines, the verdict, what was ruled out, notes and
what the engineer chose. Device text is quoted in fenced blocks; it was redacted when it
was collected, so no secret reaches the transcript.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ipsec_doctor import __version__
from ipsec_doctor.model.findings import Code, Finding
from ipsec_doctor.runbook.io import Change, CommandRun, Conclusion, DeviceInfo, StepResult
from ipsec_doctor.runbook.schema import END, Outcome, Runbook

ENDED = {
    "completed": "completed (the last step of the runbook was reached)",
    "quit": "quit by the engineer before the end",
    "interrupted": "interrupted with Ctrl-C",
    "error": "stopped by an internal error",
}

OUTCOME_TEXT = {
    Outcome.FOUND: "FOUND",
    Outcome.CLEAR: "clear",
    Outcome.UNKNOWN: "not judged",
    Outcome.SKIPPED: "skipped",
}


@dataclass(frozen=True)
class TranscriptMeta:
    """Who ran which runbook against what, and when."""

    runbook: Runbook | None  # None: stopped before one was chosen
    peer: str
    mode: str
    user: str
    started_at: datetime
    finished_at: datetime
    devices: tuple[DeviceInfo, ...]
    notes: tuple[str, ...] = ()


def _time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fence(lines: Iterable[str]) -> list[str]:
    body = [line.rstrip() for line in lines]
    if not body:
        return []
    fence = "````" if any(line.startswith("```") for line in body) else "```"
    return [fence, *body, fence]


def evidence_lines(findings: Sequence[Finding], limit: int = 12) -> list[str]:
    """``device `command`: line`` for the evidence of ``findings`` (first ``limit`` each)."""
    out: list[str] = []
    seen: set[tuple[str, str, str, int]] = set()
    for finding in findings:
        for evidence in finding.evidence[:limit]:
            device = evidence.device or finding.device
            key = (device, evidence.command, evidence.line, evidence.sample)
            if key in seen:
                continue
            seen.add(key)
            sample = f" (sample {evidence.sample})" if evidence.sample > 1 else ""
            out.append(f"{device} `{evidence.command}`{sample}: {evidence.line.strip()}")
    return out


def command_summary(runs: Sequence[CommandRun]) -> list[str]:
    """One line per device and command: outcome, samples, reused or produced by the action."""
    grouped: dict[tuple[str, str], list[CommandRun]] = {}
    for run in runs:
        grouped.setdefault((run.device, " ".join(run.command.split())), []).append(run)
    lines: list[str] = []
    for (device, command), items in grouped.items():
        outcomes = sorted({r.outcome for r in items})
        samples = len({r.sample for r in items})
        extra = []
        if samples > 1:
            extra.append(f"{samples} samples")
        if all(r.reused for r in items):
            extra.append("read at an earlier step")
        if any(r.intrusive for r in items):
            extra.append("from the intrusive action")
        errors = sorted({r.error for r in items if r.error})
        text = f"{device}: `{command}` — {', '.join(outcomes)}"
        if extra:
            text += f" ({', '.join(extra)})"
        if errors:
            text += f": {errors[0]}"
        lines.append(text)
    return lines


def change_line(change: Change) -> str:
    """One change on a device, and whether it was undone."""
    text = f"{_time(change.at)} {change.device}: `{change.what}`"
    if change.undone is True:
        text += f" — undone ({change.undo})" if change.undo else " — undone"
    elif change.undone is False:
        text += " — **NOT UNDONE**" + (f": run `{change.undo}`" if change.undo else "")
    if change.note:
        text += f" — {change.note}"
    return text


def finding_block(finding: Finding, heading: str) -> list[str]:
    lines = [
        f"{heading}: **{finding.code.value}** ({finding.severity.value}, {finding.stage.value}"
        f" stage, step `{finding.reference or '-'}`) on {finding.device or '-'}",
        "",
        finding.summary,
        "",
    ]
    evidence = evidence_lines([finding])
    if evidence:
        lines += ["Evidence:", "", *_fence(evidence), ""]
    if finding.fix:
        target = f" (on {finding.fix_device})" if finding.fix_device else ""
        lines += [f"Fix{target}:", "", *_fence(finding.fix.splitlines()), ""]
    return lines


def _verdict_line(visit: StepResult) -> str:
    codes = list(
        dict.fromkeys(f.code.value for f in visit.verdict if f.code is not Code.TUNNEL_HEALTHY)
    )
    healthy = any(f.code is Code.TUNNEL_HEALTHY for f in visit.verdict)
    text = OUTCOME_TEXT[visit.outcome]
    if codes:
        text += f": {', '.join(codes)}"
    elif healthy:
        text += ": TUNNEL_HEALTHY"
    if visit.ruled_out:
        text += f"; rules out {', '.join(c.value for c in visit.ruled_out)}"
    return text


def _step_block(index: int, visit: StepResult, on_path: bool) -> list[str]:
    step = visit.step
    lines = [f"### {index}. `{step.id}` — {step.title}", ""]
    facts = [f"- Time: {_time(visit.started_at)}"]
    if step.intrusive:
        facts.append(f"- Intrusive: yes ({step.action})")
    if visit.runs > 1:
        facts.append(f"- Run {visit.runs} times (re-run)")
    facts.append(f"- Verdict: {_verdict_line(visit)}")
    if visit.next_step:
        target = "the end" if visit.next_step == END else f"`{visit.next_step}`"
        facts.append(f"- The runbook's next step: {target}")
    facts.append(f"- Engineer: {', '.join(visit.actions) or '-'}")
    if not on_path:
        facts.append("- (left with back: not on the final path)")
    lines += [*facts, ""]
    commands = command_summary(visit.commands)
    if commands:
        lines += ["Commands:", "", *(f"- {c}" for c in commands), ""]
    for change in visit.changes:
        lines.append(f"- Changed: {change_line(change)}")
    if visit.changes:
        lines.append("")
    evidence = evidence_lines(visit.verdict)
    if evidence:
        lines += ["Evidence:", "", *_fence(evidence), ""]
    for finding in visit.verdict:
        if finding.code is Code.INSUFFICIENT_DATA or finding.code is Code.TUNNEL_HEALTHY:
            lines.append(f"- {finding.code.value}: {finding.summary}")
        else:
            lines.append(f"- **{finding.code.value}** on {finding.device}: {finding.summary}")
    if visit.verdict:
        lines.append("")
    for note in visit.notes:
        lines.append(f"- Note: {note}")
    if visit.notes:
        lines.append("")
    return lines


def render_transcript(
    meta: TranscriptMeta,
    visits: Sequence[StepResult],
    path: Sequence[StepResult],
    conclusion: Conclusion,
) -> str:
    """The whole transcript (see the module contract)."""
    runbook = meta.runbook
    if runbook is None:
        which = "(not chosen yet)"
    else:
        source = f" (`{runbook.source}`)" if runbook.source else ""
        which = f"{_cell(runbook.name)} — {_cell(runbook.title)}{_cell(source)}"
    lines = [
        f"# IPsec outage runbook: peer {meta.peer}",
        "",
        "| | |",
        "|---|---|",
        f"| Runbook | {which} |",
        f"| Peer | {meta.peer} |",
        f"| User | {_cell(meta.user)} |",
        f"| Mode | {_cell(meta.mode)} |",
        f"| Started | {_time(meta.started_at)} |",
        f"| Finished | {_time(meta.finished_at)} |",
        f"| Ended | {_cell(ENDED.get(conclusion.ended, conclusion.ended))} |",
        f"| Tool | ipsec-doctor {__version__} |",
    ]
    for device in meta.devices:
        why = f" — {device.reason}" if device.reason else ""
        lines.append(
            f"| Device {_cell(device.name)} | {device.role} end ({device.platform}), checked for "
            f"{device.peer}{_cell(why)} |"
        )
    lines.append("")
    for note in meta.notes:
        lines.append(f"> {note}")
    if meta.notes:
        lines.append("")

    lines += ["## Conclusion", ""]
    if conclusion.message:
        lines += [f"**{conclusion.message}**", ""]
    if conclusion.root_cause is not None:
        lines += finding_block(conclusion.root_cause, "Root cause")
        rest = [f for f in conclusion.findings if f is not conclusion.root_cause]
        others = [f for f in rest if f.code is not Code.INSUFFICIENT_DATA]
        if others:
            lines += ["Also found:", ""]
            lines += [f"- **{f.code.value}** on {f.device}: {f.summary}" for f in others]
            lines.append("")
    else:
        if any(f.code is Code.TUNNEL_HEALTHY for f in conclusion.findings):
            lines += ["The tunnel is healthy: no failure was found in what was read.", ""]
        else:
            lines += ["No failure was found in what was read.", ""]
        posture = [
            f
            for f in conclusion.findings
            if f.code not in (Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY)
        ]
        if posture:
            lines += ["Also found:", ""]
            lines += [f"- **{f.code.value}** on {f.device}: {f.summary}" for f in posture]
            lines.append("")
    gaps = [f for f in conclusion.findings if f.code is Code.INSUFFICIENT_DATA]
    if gaps:
        lines += ["Not judged (data missing):", ""]
        lines += [f"- {f.summary}" for f in gaps]
        lines.append("")
    if conclusion.not_read:
        lines += ["Never read by this runbook:", ""]
        lines += [f"- `{item}`" for item in conclusion.not_read]
        lines.append("")

    lines += ["## Changes made on the devices", ""]
    if conclusion.changes:
        lines += [f"- {change_line(c)}" for c in conclusion.changes]
    else:
        lines.append("None: only show commands were run.")
    lines.append("")

    lines += ["## Steps", ""]
    if not visits:
        lines += ["No step was reached.", ""]
    on_path = {id(v) for v in path}
    for index, visit in enumerate(visits, start=1):
        lines += _step_block(index, visit, id(visit) in on_path or visit.answer != "back")
    return "\n".join(lines).rstrip() + "\n"
