"""The decision tree: run the rules stage by stage, mask what an earlier failure explains.

Contract:
- :func:`diagnose` takes one :class:`~ipsec_doctor.model.state.TunnelView` and returns its
  findings in report order; :func:`diagnose_tunnels` does it for many views (the audit).
- Order: stages ``prereq`` -> ``traffic`` -> ``ike`` -> ``ipsec`` -> ``data`` -> ``routing``,
  then ``audit`` (posture), then ``meta``. Within a stage: failures by severity (critical,
  warning, info) in rule order, then INSUFFICIENT_DATA, then TUNNEL_HEALTHY.
  INSUFFICIENT_DATA stands at the stage it leaves unjudged.
- Masking:
  1. While phase 1 is down (the ISAKMP/IKE SA table was read and holds no established SA with
     the peer) no ``ipsec``, ``data`` or ``routing`` finding is emitted: a phase-1 failure
     explains a missing phase 2, and phase 2 is never blamed.
  2. Once a stage fails critically, failure codes of later chain stages are dropped, except
     that a ``data`` failure keeps ``routing`` findings (a missing return route is the usual
     cause of one-way traffic, and must be named).
  3. ``audit`` findings and INSUFFICIENT_DATA are never masked.
- TUNNEL_HEALTHY only when phase 1 is established on the local end, a flow has inbound and
  outbound SAs, encaps and decaps both rise between samples (one sample: both > 0), and no
  critical or warning finding of the chain stands (posture findings do not count).
- When phase 1 is down and nothing explains it, or health cannot be confirmed and no fault
  is found, one INSUFFICIENT_DATA says what is missing (warning while phase 1 is down).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ipsec_doctor.diagnose.context import Phase1, Settings, Tunnel
from ipsec_doctor.diagnose.rules import RULES
from ipsec_doctor.diagnose.rules.data import flows
from ipsec_doctor.diagnose.rules.meta import insufficient_data
from ipsec_doctor.model.findings import STAGE_ORDER, Code, Finding, Severity, Stage
from ipsec_doctor.model.report import TunnelResult
from ipsec_doctor.model.state import Evidence, IkeStatus, TunnelView

CHAIN: tuple[Stage, ...] = (
    Stage.PREREQ,
    Stage.TRAFFIC,
    Stage.IKE,
    Stage.IPSEC,
    Stage.DATA,
    Stage.ROUTING,
)
PHASE2_STAGES = frozenset({Stage.IPSEC, Stage.DATA, Stage.ROUTING})
_ORDER = {stage: index for index, stage in enumerate((*STAGE_ORDER, Stage.META))}


def stage_index(stage: Stage) -> int:
    return _ORDER.get(stage, len(_ORDER))


def is_failure(finding: Finding) -> bool:
    """A finding that says something is wrong (not INSUFFICIENT_DATA, not TUNNEL_HEALTHY)."""
    return finding.code not in (Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY)


def first_critical_stage(findings: Iterable[Finding]) -> Stage | None:
    stages = [
        f.stage
        for f in findings
        if is_failure(f) and f.severity is Severity.CRITICAL and f.stage in CHAIN
    ]
    return min(stages, key=stage_index) if stages else None


def mask(findings: list[Finding], phase1: Phase1) -> list[Finding]:
    """Drop what an earlier failure explains (see the module contract)."""
    kept = [
        f
        for f in findings
        if not (phase1 is Phase1.DOWN and is_failure(f) and f.stage in PHASE2_STAGES)
    ]
    critical = first_critical_stage(kept)
    if critical is None:
        return kept
    limit = stage_index(critical)
    out: list[Finding] = []
    for f in kept:
        later = is_failure(f) and f.stage in CHAIN and stage_index(f.stage) > limit
        explains = critical is Stage.DATA and f.stage is Stage.ROUTING
        if not later or explains:
            out.append(f)
    return out


def order(findings: list[Finding]) -> list[Finding]:
    """Report order: stage, then failures by severity, INSUFFICIENT_DATA, TUNNEL_HEALTHY."""

    def key(item: tuple[int, Finding]) -> tuple[int, int, int, int]:
        index, f = item
        group = 0 if is_failure(f) else (1 if f.code is Code.INSUFFICIENT_DATA else 2)
        return stage_index(f.stage), group, -f.severity.rank, index

    return [f for _, f in sorted(enumerate(findings), key=key)]


def _chain_trouble(findings: list[Finding]) -> bool:
    return any(
        f.severity in (Severity.CRITICAL, Severity.WARNING) and f.stage is not Stage.AUDIT
        for f in findings
        if f.code is not Code.TUNNEL_HEALTHY
    )


def _health(t: Tunnel) -> tuple[list[str], list[Evidence | None]]:
    """What keeps the tunnel from being called healthy ([] when nothing), and the proof."""
    end = t.local
    missing: list[str] = []
    evidence: list[Evidence | None] = []
    latest = end.ike_sas(later=True)
    if latest is None:
        latest = end.ike_sas()
    if latest is None:
        missing.append("the ISAKMP SA table could not be read")
    else:
        up = [sa for sa in latest if sa.status is IkeStatus.ESTABLISHED]
        if not up:
            missing.append("phase 1 is not established")
        evidence += [end.ev(sa.source) for sa in up]
    fl = flows(end)
    if fl is None:
        missing.append("the IPsec SAs could not be read")
    elif not fl:
        missing.append("no flow has inbound and outbound SAs")
    else:
        enc = any(f.encaps_moving for f in fl)
        dec = any(f.decaps_moving for f in fl)
        if not (enc and dec):
            missing.append("the counters do not move both ways")
        for f in fl:
            evidence += f.evidence(end)
    return missing, evidence


def _healthy_or_gap(t: Tunnel, findings: list[Finding]) -> list[Finding]:
    if _chain_trouble(findings):
        return []
    missing, evidence = _health(t)
    if not missing:
        local = t.local
        twice = all(f.sampled_twice for f in flows(local) or [])
        return [
            t.finding(
                Code.TUNNEL_HEALTHY,
                local,
                f"{local.name}: the tunnel with {local.peer_label} is up and carries traffic "
                "both ways" + (" (counters rising between samples)" if twice else ""),
                evidence=evidence,
                detail={
                    "sampled_twice": twice,
                    "flows": [f.counters() for f in flows(local) or []],
                },
            )
        ]
    if t.phase1 is Phase1.DOWN:
        states = sorted({sa.state for end in t.ends for sa in end.ike_all()})
        return [
            t.finding(
                Code.INSUFFICIENT_DATA,
                t.local,
                f"{t.local.name}: phase 1 with {t.local.peer_label} is not established"
                + (f" ({', '.join(states)})" if states else " (no ISAKMP SA)")
                + " and nothing collected tells why; run `debug crypto isakmp` on both ends",
                evidence=[e.ev(sa.source) for e in t.ends for sa in e.ike_all()],
                detail={"unjudged_stage": Stage.IKE.value, "missing": missing, "states": states},
                reference="ike.sa",
                severity=Severity.WARNING,
                stage=Stage.IKE,
            )
        ]
    if any(f.code is Code.INSUFFICIENT_DATA for f in findings):
        return []  # the blind spot is already named
    return [
        t.finding(
            Code.INSUFFICIENT_DATA,
            t.local,
            f"{t.local.name}: no fault found with {t.local.peer_label}, but health is not "
            f"confirmed: {'; '.join(missing)}",
            evidence=evidence,
            detail={"unjudged_stage": Stage.DATA.value, "missing": missing},
            reference="data.counters",
            severity=Severity.INFO,
            stage=Stage.DATA,
        )
    ]


def _stamp_devices(findings: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        if all(e.device for e in f.evidence):
            out.append(f)
            continue
        evidence = tuple(e if e.device else replace(e, device=f.device) for e in f.evidence)
        out.append(replace(f, evidence=evidence))
    return out


def diagnose(view: TunnelView, settings: Settings | None = None) -> list[Finding]:
    """The findings for one tunnel, in report order."""
    t = Tunnel(view, settings)
    found = insufficient_data(t)
    if not t.local.reachable:
        return order(found)
    for stage in (*CHAIN, Stage.AUDIT):
        for rule in RULES[stage]:
            found.extend(rule(t))
    found = mask(found, t.phase1)
    found.extend(_healthy_or_gap(t, found))
    return order(_stamp_devices(found))


def diagnose_tunnels(
    views: Iterable[TunnelView], settings: Settings | None = None
) -> list[TunnelResult]:
    """One :class:`TunnelResult` per view, in the given order (the audit's unit)."""
    results: list[TunnelResult] = []
    for view in views:
        results.append(
            TunnelResult(
                device=view.local.name,
                peer=str(view.peer),
                remote=view.remote.name if view.remote is not None else "",
                remote_peer=str(view.remote_peer) if view.remote_peer is not None else "",
                findings=tuple(diagnose(view, settings)),
            )
        )
    return results
