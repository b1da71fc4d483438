"""A hand-built AuditReport with every kind of row, for the renderer tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ipsec_doctor.audit.model import (
    AuditReport,
    Changes,
    DeviceOutcome,
    ProblemAge,
    ProblemChange,
    RunInfo,
    RunStatus,
    SilencedFinding,
    TrendPoint,
    TunnelChange,
    TunnelRecord,
)
from ipsec_doctor.model.findings import Code, Severity, make_finding
from ipsec_doctor.model.state import Evidence

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def finding(code: Code, device: str, peer: str, summary: str = "", **kw: object):  # type: ignore[no-untyped-def]
    return make_finding(
        code,
        device=device,
        peer=peer,
        summary=summary or f"{device}: {code.value} with {peer}",
        evidence=[
            Evidence("show crypto isakmp sa", f"{peer} 10.1.1.1 MM_KEY_EXCH 1001", 3, 1, device)
        ],
        fix="crypto isakmp key <new key> address " + peer,
        fix_device=device,
        **kw,  # type: ignore[arg-type]
    )


def sample_report() -> AuditReport:
    psk = finding(Code.PSK_MISMATCH, "hub|1", "10.2.2.1", 'keys differ "<script>alert(1)</script>"')
    weak = finding(Code.WEAK_CRYPTO, "hub|1", "10.2.2.1")
    down = TunnelRecord(
        device="hub|1",
        peer="10.2.2.1",
        remote="spoke-2",
        remote_peer="10.1.1.1",
        paired=True,
        findings=(psk, weak),
        silenced=(
            SilencedFinding(
                finding(Code.NO_ROUTE_TO_REMOTE_LAN, "hub|1", "10.2.2.1"),
                7,
                "change CHG-42 pending",
                T0 + timedelta(days=3),
            ),
        ),
    )
    healthy = TunnelRecord(
        device="spoke-3",
        peer="10.3.3.1",
        findings=(
            make_finding(
                Code.TUNNEL_HEALTHY, device="spoke-3", peer="10.3.3.1", summary="spoke-3: up"
            ),
        ),
    )
    flap = TunnelRecord(
        device="spoke-4",
        peer="10.4.4.1",
        findings=(finding(Code.SA_FLAPPING, "spoke-4", "10.4.4.1", detail={"across_runs": True}),),
    )
    blind = TunnelRecord(
        device="spoke-5",
        peer="10.5.5.1",
        observed=False,
        findings=(
            make_finding(
                Code.INSUFFICIENT_DATA,
                device="spoke-5",
                peer="10.5.5.1",
                summary="spoke-5 could not be collected: timed out",
                severity=Severity.WARNING,
            ),
        ),
    )
    run = RunInfo(
        id=5,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=83),
        status=RunStatus.COMPLETE,
        source="inventory ./inventory",
        filters=("site=ams",),
        tool_version="0.1.0",
        devices_total=4,
    )
    trend = tuple(
        TrendPoint(
            run_id=i,
            started_at=T0 - timedelta(days=5 - i),
            counts={"healthy": 10 + i, "down": 5 - i, "unreachable": 1},
        )
        for i in range(1, 6)
    )
    return AuditReport(
        run=run,
        tunnels=(healthy, flap, down, blind),
        devices=(
            DeviceOutcome("hub|1", "cisco_ios", commands_ok=15, tunnels=1),
            DeviceOutcome("spoke-3", "cisco_ios", commands_ok=15, tunnels=1),
            DeviceOutcome("spoke-4", "cisco_ios", commands_ok=15, tunnels=1),
            DeviceOutcome("spoke-5", "cisco_ios", reachable=False, error="spoke-5: timed out"),
        ),
        changes=Changes(
            previous_run=4,
            new=(ProblemChange("spoke-4", "10.4.4.1", "SA_FLAPPING", "warning", "flaps"),),
            resolved=(ProblemChange("spoke-3", "10.3.3.1", "NO_ROUTE_TO_PEER", "critical", "x"),),
            appeared=(TunnelChange("spoke-4", "10.4.4.1", "", "new tunnel"),),
            vanished=(TunnelChange("spoke-6", "10.6.6.1", "", "not found on the device any more"),),
        ),
        ages={
            ("hub|1", "10.2.2.1", "PSK_MISMATCH"): ProblemAge(T0 - timedelta(days=3), 4),
            ("hub|1", "10.2.2.1", "WEAK_CRYPTO"): ProblemAge(T0 - timedelta(days=30), 31),
            ("spoke-4", "10.4.4.1", "SA_FLAPPING"): ProblemAge(T0, 1),
        },
        trend=trend,
        notes=("runs 3 had been interrupted",),
        generated_at=T0 + timedelta(seconds=83),
    )
