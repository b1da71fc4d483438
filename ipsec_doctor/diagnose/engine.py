"""The decision tree: run the rules stage by stage, mask what an earlier failure explains.

Contract:
- :func:`diagnose` takes one :class:`~ipsec_doctor.model.state.TunnelView` and returns its
  findings in report order; :func:`diagnose_tunnels` does it for many views (the audit).
- Order: the chain first, by stage ``prereq`` -> ``traffic`` -> ``ike`` -> ``ipsec`` ->
  ``data`` -> ``routing``; within a stage failures by severity (critical, warning, info) in
  rule order, then TUNNEL_HEALTHY. Then INSUFFICIENT_DATA, whose ``stage`` is the stage it
  leaves unjudged (ordered by it): a blind spot never precedes a fault that was found, and
  stands first when nothing else was. Then posture (``audit``), outside the chain.
- Explains edges (:data:`EXPLAINS`): a symptom whose cause is also reported (one-way traffic
  and a missing return route, flapping and aggressive DPD, ...) is listed right after its
  cause, even when the cause sits at a later stage, and carries ``detail["explained_by"]``.
- Masking:
  1. While phase 1 is down (the ISAKMP/IKE SA table was read and holds no established SA with
     the peer) no ``ipsec``, ``data`` or ``routing`` finding is emitted: a phase-1 failure
     explains a missing phase 2, and phase 2 is never blamed.
  2. Once a stage fails critically, failure codes of later chain stages are dropped unless the
     tunnel demonstrably got that far: ``ike`` and ``ipsec`` findings stay only while phase 1
     is up, ``data`` and ``routing`` findings only while IPsec SAs are installed (``routing``
     also after a ``data`` failure, which it explains), and explained symptoms of a reported
     cause stay.
  3. ``audit`` findings and INSUFFICIENT_DATA are never masked.
- TUNNEL_HEALTHY only when phase 1 is established on the local end, a flow has inbound and
  outbound SAs, encaps and decaps both rise between samples (one sample: both > 0), and no
  critical or warning finding of the chain stands (posture findings do not count).
- When phase 1 (or, with phase 1 up, phase 2) is down and nothing explains it, or health
  cannot be confirmed and no fault is found, one INSUFFICIENT_DATA says what is missing
  (a warning when a phase is down, info otherwise).
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


#: cause -> the symptoms it explains (listed after it, never masked by it).
EXPLAINS: dict[Code, frozenset[Code]] = {
    Code.NO_ISAKMP_POLICY: frozenset({Code.PHASE1_PROPOSAL_MISMATCH}),
    # an ACL only counts while its map is applied and traffic reaches it
    Code.CRYPTO_MAP_NOT_APPLIED: frozenset({Code.NO_INTERESTING_TRAFFIC}),
    Code.SOURCE_INTERFACE_DOWN: frozenset({Code.NO_INTERESTING_TRAFFIC}),
    Code.CRYPTO_MAP_WRONG_INTERFACE: frozenset(
        {Code.NO_INTERESTING_TRAFFIC, Code.ONE_WAY_TRAFFIC, Code.NO_TRAFFIC_ENCRYPTED}
    ),
    Code.NAT_T_NOT_ENABLED: frozenset({Code.ONE_WAY_TRAFFIC}),
    Code.DPD_TOO_AGGRESSIVE: frozenset({Code.SA_FLAPPING}),
    Code.CRYPTO_ACL_OVERLAP: frozenset({Code.ONE_WAY_TRAFFIC, Code.NO_TRAFFIC_ENCRYPTED}),
    Code.SPI_OUT_OF_SYNC: frozenset({Code.ONE_WAY_TRAFFIC}),
    Code.PACKET_NOT_IPSEC: frozenset({Code.ONE_WAY_TRAFFIC}),
    Code.HW_CRYPTO_ENGINE_FAULT: frozenset({Code.ONE_WAY_TRAFFIC}),
    Code.SEND_ERRORS: frozenset({Code.ONE_WAY_TRAFFIC}),
    Code.NO_ROUTE_TO_REMOTE_LAN: frozenset({Code.ONE_WAY_TRAFFIC, Code.NO_TRAFFIC_ENCRYPTED}),
    Code.VRF_ROUTE_MISSING: frozenset({Code.ONE_WAY_TRAFFIC, Code.NO_TRAFFIC_ENCRYPTED}),
}


def causes_of(finding: Finding, findings: Iterable[Finding]) -> list[Finding]:
    """The reported findings that explain ``finding`` (by :data:`EXPLAINS`)."""
    return [c for c in findings if c is not finding and finding.code in EXPLAINS.get(c.code, ())]


def mask(findings: list[Finding], phase1: Phase1, phase2_up: bool = False) -> list[Finding]:
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
        if _survives(f, kept, critical, limit, phase1, phase2_up):
            out.append(f)
    return out


def _survives(
    f: Finding, kept: list[Finding], critical: Stage, limit: int, phase1: Phase1, phase2_up: bool
) -> bool:
    if not is_failure(f) or f.stage not in CHAIN or stage_index(f.stage) <= limit:
        return True
    # the tunnel got past the failing stage: later findings are real observations
    reached = (f.stage in (Stage.IKE, Stage.IPSEC) and phase1 is Phase1.UP) or (
        f.stage in (Stage.DATA, Stage.ROUTING) and phase2_up
    )
    routing_after_data = f.stage is Stage.ROUTING and critical is Stage.DATA
    return reached or routing_after_data or bool(causes_of(f, kept))


def _explain(findings: list[Finding]) -> list[Finding]:
    """Mark each explained symptom and move it right after its causes (keeping symptom order)."""
    symptoms = [f for f in findings if causes_of(f, findings)]
    if not symptoms:
        return findings
    out = [f for f in findings if not any(f is s for s in symptoms)]
    moved: list[Finding] = []
    for symptom in symptoms:
        causes = causes_of(symptom, findings)
        marked = replace(
            symptom,
            detail={**symptom.detail, "explained_by": sorted({c.code.value for c in causes})},
        )
        index = max(i for i, f in enumerate(out) if any(f is c for c in causes)) + 1
        while index < len(out) and any(out[index] is m for m in moved):
            index += 1
        out.insert(index, marked)
        moved.append(marked)
    return out


def order(findings: list[Finding]) -> list[Finding]:
    """Report order: the chain by stage (failures by severity, then TUNNEL_HEALTHY), then
    INSUFFICIENT_DATA by the stage it leaves unjudged, then posture (audit)."""

    def key(item: tuple[int, Finding]) -> tuple[int, int, int, int, int]:
        index, f = item
        if f.code is Code.INSUFFICIENT_DATA:
            block = 1
        elif f.stage is Stage.AUDIT:
            block = 2
        else:
            block = 0
        healthy = 1 if f.code is Code.TUNNEL_HEALTHY else 0
        return block, stage_index(f.stage), healthy, -f.severity.rank, index

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
    fl = flows(t.local)
    if t.phase1 is Phase1.UP and fl is not None and not fl and not t.local.has_ipsec:
        return [
            t.finding(
                Code.INSUFFICIENT_DATA,
                t.local,
                f"{t.local.name}: phase 1 with {t.local.peer_label} is up but no IPsec SA is "
                "installed, and nothing collected tells why; run `debug crypto ipsec` on both "
                "ends",
                evidence=evidence,
                detail={"unjudged_stage": Stage.IPSEC.value, "missing": missing},
                reference="ipsec.sa",
                severity=Severity.WARNING,
                stage=Stage.IPSEC,
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
    phase2_up = any(end.has_ipsec for end in t.ends)
    found = mask(found, t.phase1, phase2_up)
    found.extend(_healthy_or_gap(t, found))
    return _explain(order(_stamp_devices(found)))


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
