"""INSUFFICIENT_DATA: what could not be judged, and at which stage.

A failed, refused, timed-out or unparsed command leaves its state section ``None`` and a
:class:`~ipsec_doctor.model.state.CommandProblem` behind; each becomes one ``info`` finding at
the stage that section informs. Its summary quotes the most telling line of the answer and
``detail["raw"]`` holds the raw text; it has no evidence lines, because what a device prints
when it refuses a command and what an offline folder lacks differ while the diagnosis is the
same (a live check and `analyze` of the same captures must agree). A device that could not be
collected at all is one ``warning`` finding at ``prereq`` (everything on it is unjudged), with
the connection error as evidence, and its single command problems are not repeated.

Commands skipped because a plan variable could not be derived
(``CommandProblem.variables``; typically no crypto map entry names the peer, so there is no
crypto ACL, LAN or interface to ask about) are one consequence of one gap: each device gets a
single ``info`` finding for all of them. Its summary gives the reason(s), its stage is the
earliest stage they leave unjudged (``detail["unjudged_stages"]`` lists every one), and
``detail["commands"]`` lists each skipped command with its section, variables, reason, stage
and strategy step. Real failures (rejected, timeout, error, unparsed, not collected) keep one
finding per command.
"""

from __future__ import annotations

from functools import lru_cache

from ipsec_doctor.diagnose.context import End, Tunnel
from ipsec_doctor.diagnose.references import REFERENCES
from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.findings import STAGE_ORDER, Code, Finding, Severity, Stage
from ipsec_doctor.model.state import CommandProblem, Evidence
from ipsec_doctor.platforms.loader import load_platform

#: Fallback when the platform plan gives no step: state section (plan command id or
#: DeviceState field) -> (stage it informs, strategy step).
SECTIONS: dict[str, tuple[Stage, str]] = {
    "clock": (Stage.PREREQ, "prereq.clock"),
    "running_config": (Stage.PREREQ, "prereq.config"),
    "config": (Stage.PREREQ, "prereq.config"),
    "crypto_map": (Stage.TRAFFIC, "traffic.crypto_map"),
    "crypto_maps": (Stage.TRAFFIC, "traffic.crypto_map"),
    "crypto_interface": (Stage.TRAFFIC, "traffic.crypto_map"),
    "crypto_acl": (Stage.TRAFFIC, "traffic.acl"),
    "route_local_lan": (Stage.TRAFFIC, "traffic.source"),
    "source_interface": (Stage.TRAFFIC, "traffic.source"),
    "interfaces": (Stage.TRAFFIC, "traffic.source"),
    "isakmp_sa": (Stage.IKE, "ike.sa"),
    "ike_sas": (Stage.IKE, "ike.sa"),
    "ikev2_sa": (Stage.IKE, "ike.sa"),
    "isakmp_policy": (Stage.IKE, "ike.proposal"),
    "ike_policies": (Stage.IKE, "ike.proposal"),
    "route_peer": (Stage.IKE, "ike.route"),
    "logging": (Stage.IKE, "ike.logs"),
    "logs": (Stage.IKE, "ike.logs"),
    "ipsec_sa": (Stage.IPSEC, "ipsec.sa"),
    "ipsec_sas": (Stage.IPSEC, "ipsec.sa"),
    "transform_sets": (Stage.IPSEC, "ipsec.transform"),
    "engine_connections": (Stage.DATA, "data.engine"),
    "engine": (Stage.DATA, "data.engine"),
    "crypto_engine": (Stage.DATA, "data.engine"),
    "route_remote_lan": (Stage.ROUTING, "routing.remote_lan"),
}

RAW_LIMIT = 2000


def _first_line(text: str) -> str:
    """The most telling line: an error line (``% ...``), else the first line with a word."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("%"):
            return line
    for line in lines:
        if any(ch.isalnum() for ch in line):
            return line
    return ""


@lru_cache(maxsize=64)
def _plan_steps(platform: str) -> dict[str, str]:
    """Plan command id -> strategy step id, from the platform's plan ({} when unknown)."""
    try:
        plan = load_platform(platform)
    except (ConfigError, OSError, ValueError):
        return {}
    return {c.id: c.reference for c in plan.commands if c.reference in REFERENCES}


def section_step(platform: str, section: str) -> tuple[Stage, str]:
    """The stage a section informs and its strategy step: the plan's ``reference`` for that
    command, else :data:`SECTIONS`, else ``meta``."""
    reference = _plan_steps(platform).get(section)
    if reference:
        return Stage(reference.split(".", 1)[0]), reference
    return SECTIONS.get(section, (Stage.META, "meta.collection"))


def _problem_finding(t: Tunnel, end: End, problem: CommandProblem) -> Finding:
    stage, reference = section_step(end.platform, problem.section)
    why = problem.reason or _first_line(problem.raw) or problem.outcome
    what = f"{stage.value} stage" if stage is not Stage.META else "its section"
    return t.finding(
        Code.INSUFFICIENT_DATA,
        end,
        f"{end.name}: `{problem.command}` {problem.outcome} ({why}); "
        f"{what} not judged for {end.peer_label or 'the tunnel'}",
        detail={
            "command": problem.command,
            "outcome": problem.outcome,
            "reason": problem.reason,
            "section": problem.section,
            "unjudged_stage": stage.value,
            "raw": problem.raw[:RAW_LIMIT],
        },
        reference=reference,
        severity=Severity.INFO,
        stage=stage,
    )


def _unreachable(t: Tunnel, end: End) -> Finding:
    reason = end.state.unreachable
    return t.finding(
        Code.INSUFFICIENT_DATA,
        end,
        f"{end.name} ({end.role} end) could not be collected: {reason}; "
        "its side of the tunnel is not judged",
        evidence=[
            Evidence(command="(connect)", line=_first_line(reason) or reason, device=end.name)
        ],
        detail={"role": end.role, "reason": reason, "raw": reason[:RAW_LIMIT]},
        reference="meta.collection",
        severity=Severity.WARNING,
        stage=Stage.PREREQ,
    )


def _reason_text(problem: CommandProblem) -> str:
    """The reason of a skipped command without its ``variable:`` prefixes."""
    parts = []
    for part in (problem.reason or "").split("; "):
        name, sep, rest = part.partition(": ")
        parts.append(rest if sep and name in problem.variables else part)
    return "; ".join(p for p in parts if p)


def _skipped_finding(t: Tunnel, end: End, problems: list[CommandProblem]) -> Finding:
    """One finding for every command of ``end`` skipped for an underivable variable."""
    commands: list[dict[str, object]] = []
    reasons: list[str] = []
    steps: list[tuple[Stage, str]] = []
    for problem in problems:
        stage, reference = section_step(end.platform, problem.section)
        steps.append((stage, reference))
        reason = _reason_text(problem) or "a variable could not be derived"
        for item in reason.split("; "):
            if item not in reasons:
                reasons.append(item)
        commands.append(
            {
                "command": problem.command,
                "section": problem.section,
                "variables": list(problem.variables),
                "reason": problem.reason,
                "unjudged_stage": stage.value,
                "reference": reference,
            }
        )
    order = {stage: index for index, stage in enumerate(STAGE_ORDER)}
    stage, reference = min(steps, key=lambda step: order.get(step[0], len(order)))
    stages = sorted({s for s, _ in steps}, key=lambda s: order.get(s, len(order)))
    names = ", ".join(s.value for s in stages)
    count = len(problems)
    what = "command" if count == 1 else "commands"
    return t.finding(
        Code.INSUFFICIENT_DATA,
        end,
        f"{end.name}: {count} plan {what} skipped because {'its' if count == 1 else 'their'} "
        f"variables could not be derived ({'; '.join(reasons)}); "
        f"{names} {'stage' if len(stages) == 1 else 'stages'} not fully judged for "
        f"{end.peer_label or 'the tunnel'}",
        detail={
            "outcome": "skipped",
            "reason": "; ".join(reasons),
            "unjudged_stage": stage.value,
            "unjudged_stages": [s.value for s in stages],
            "commands": commands,
        },
        reference=reference,
        severity=Severity.INFO,
        stage=stage,
    )


def insufficient_data(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    ends = [t.local] + ([t.remote] if t.remote is not None else [])
    for end in ends:
        if not end.reachable:
            out.append(_unreachable(t, end))
            continue
        skipped = [p for p in end.state.problems if p.variables]
        out.extend(_problem_finding(t, end, p) for p in end.state.problems if not p.variables)
        if skipped:
            out.append(_skipped_finding(t, end, skipped))
    return out
