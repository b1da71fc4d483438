"""Changes since the previous run, problem durations and silences (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ipsec_doctor.audit.changes import (
    PreviousIndex,
    ages,
    apply_silences,
    carry_over,
    compute_changes,
)
from ipsec_doctor.audit.model import Silence, TunnelRecord, TunnelStatus, status_of
from ipsec_doctor.model.findings import Code, Severity, make_finding

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)


def tunnel(
    *codes: Code,
    device: str = "R1",
    peer: str = "10.2.2.1",
    remote: str = "",
    remote_peer: str = "",
    observed: bool = True,
    facts: dict[str, object] | None = None,
) -> TunnelRecord:
    findings = tuple(
        make_finding(code, device=device, peer=peer, summary=f"{device} {code.value}")
        for code in codes
    )
    return TunnelRecord(
        device=device,
        peer=peer,
        remote=remote,
        remote_peer=remote_peer,
        findings=findings,
        observed=observed,
        facts=facts or {},
    )


def test_status_order() -> None:
    assert tunnel(Code.TUNNEL_HEALTHY, Code.WEAK_CRYPTO).status is TunnelStatus.HEALTHY
    assert tunnel(Code.PSK_MISMATCH).status is TunnelStatus.DOWN
    assert tunnel(Code.SA_FLAPPING).status is TunnelStatus.DEGRADED
    assert tunnel(Code.INSUFFICIENT_DATA).status is TunnelStatus.UNKNOWN
    assert tunnel(Code.INSUFFICIENT_DATA, observed=False).status is TunnelStatus.UNREACHABLE
    warning = make_finding(
        Code.INSUFFICIENT_DATA, device="R1", peer="x", summary="s", severity=Severity.WARNING
    )
    assert status_of([warning]) is TunnelStatus.UNKNOWN


def test_a_problem_keeps_its_first_run_while_it_lasts() -> None:
    first = tunnel(Code.PSK_MISMATCH)
    facts1 = carry_over(first, None, T0)
    assert facts1["since"] == {"PSK_MISMATCH": T0.isoformat()}
    assert facts1["streak"] == {"PSK_MISMATCH": 1} and facts1["history"] == "D"
    second = tunnel(Code.PSK_MISMATCH, Code.SA_FLAPPING)
    facts2 = carry_over(second, tunnel(Code.PSK_MISMATCH, facts=facts1), T1)
    assert facts2["since"] == {"PSK_MISMATCH": T0.isoformat(), "SA_FLAPPING": T1.isoformat()}
    assert facts2["streak"] == {"PSK_MISMATCH": 2, "SA_FLAPPING": 1}
    assert facts2["history"] == "DD"
    record = TunnelRecord("R1", "10.2.2.1", findings=second.findings, facts=facts2)
    age = ages([record])[("R1", "10.2.2.1", "PSK_MISMATCH")]
    assert age.first_seen == T0 and age.runs == 2 and age.seconds(T1) == 86400


def test_a_resolved_problem_starts_over_when_it_returns() -> None:
    facts1 = carry_over(tunnel(Code.PSK_MISMATCH), None, T0)
    facts2 = carry_over(tunnel(Code.TUNNEL_HEALTHY), tunnel(Code.PSK_MISMATCH, facts=facts1), T1)
    assert facts2["since"] == {} and facts2["history"] == "DH"
    later = T1 + timedelta(days=1)
    facts3 = carry_over(tunnel(Code.PSK_MISMATCH), tunnel(Code.TUNNEL_HEALTHY, facts=facts2), later)
    assert facts3["since"] == {"PSK_MISMATCH": later.isoformat()}


def test_an_unreachable_night_keeps_problems_dormant() -> None:
    facts1 = carry_over(tunnel(Code.PSK_MISMATCH), None, T0)
    blind = tunnel(Code.INSUFFICIENT_DATA, observed=False)
    facts2 = carry_over(blind, tunnel(Code.PSK_MISMATCH, facts=facts1), T1)
    assert facts2["since"]["PSK_MISMATCH"] == T0.isoformat()
    assert facts2["history"] == "D"  # nothing observed, nothing added
    later = T1 + timedelta(days=1)
    facts3 = carry_over(
        tunnel(Code.PSK_MISMATCH),
        tunnel(Code.INSUFFICIENT_DATA, facts=facts2, observed=False),
        later,
    )
    assert facts3["since"]["PSK_MISMATCH"] == T0.isoformat()


def test_changes_new_resolved_appeared_vanished() -> None:
    previous = PreviousIndex(
        [
            tunnel(Code.PSK_MISMATCH, device="R1", peer="10.2.2.1"),
            tunnel(Code.WEAK_CRYPTO, Code.TUNNEL_HEALTHY, device="R3", peer="10.4.4.1"),
            tunnel(Code.TUNNEL_HEALTHY, device="R5", peer="10.6.6.1"),
            tunnel(Code.PSK_MISMATCH, device="R7", peer="10.8.8.1"),
        ]
    )
    current = [
        tunnel(Code.TUNNEL_HEALTHY, Code.SA_FLAPPING, device="R1", peer="10.2.2.1"),
        tunnel(Code.TUNNEL_HEALTHY, device="R3", peer="10.4.4.1"),
        tunnel(Code.NO_ROUTE_TO_PEER, device="R3", peer="10.9.9.1"),
        tunnel(Code.INSUFFICIENT_DATA, device="R7", peer="10.8.8.1", observed=False),
    ]
    changes = compute_changes(current, previous, reached={"R1", "R3", "R5"}, previous_run=4)
    assert changes.previous_run == 4
    assert {(c.device, c.code) for c in changes.new} == {
        ("R1", "SA_FLAPPING"),
        ("R3", "NO_ROUTE_TO_PEER"),
        ("R7", "INSUFFICIENT_DATA"),
    }
    # R7 was not observed: its PSK_MISMATCH is not "resolved"
    assert {(c.device, c.code) for c in changes.resolved} == {
        ("R1", "PSK_MISMATCH"),
        ("R3", "WEAK_CRYPTO"),
    }
    assert [(t.device, t.peer, t.reason) for t in changes.appeared] == [
        ("R3", "10.9.9.1", "new tunnel")
    ]
    assert [(t.device, t.peer) for t in changes.vanished] == [("R5", "10.6.6.1")]


def test_a_pair_keeps_its_history_whichever_end_stores_it() -> None:
    before = tunnel(
        Code.PSK_MISMATCH, device="R2", peer="10.1.1.1", remote="R1", remote_peer="10.2.2.1"
    )
    now = tunnel(
        Code.PSK_MISMATCH, device="R1", peer="10.2.2.1", remote="R2", remote_peer="10.1.1.1"
    )
    index = PreviousIndex([before])
    assert index.match(now) is before
    changes = compute_changes([now], index, reached={"R1", "R2"}, previous_run=1)
    assert changes.empty
    assert index.peers_of("R1") == ["10.2.2.1"] and index.peers_of("R2") == ["10.1.1.1"]


def test_silences_hide_findings_until_they_expire() -> None:
    record = tunnel(
        Code.PSK_MISMATCH,
        Code.WEAK_CRYPTO,
        device="R1",
        peer="10.2.2.1",
        remote="R2",
        remote_peer="10.1.1.1",
    )
    psk = Silence(1, peer="10.2.2.1", code="PSK_MISMATCH", until=T1, reason="RMA")
    every = Silence(2, peer="10.1.1.1", code="*", until=T1, reason="far end", device="R2")
    other_device = Silence(3, peer="10.2.2.1", code="*", until=T1, reason="x", device="R9")
    expired = Silence(4, peer="10.2.2.1", code="WEAK_CRYPTO", until=T0, reason="old")
    out = apply_silences(record, [psk, other_device, expired], T0)
    assert out.codes == ["WEAK_CRYPTO"]
    assert [(s.finding.code.value, s.silence_id, s.reason) for s in out.silenced] == [
        ("PSK_MISMATCH", 1, "RMA")
    ]
    assert apply_silences(record, [every], T0).codes == []
    assert apply_silences(record, [every], T1).codes == ["PSK_MISMATCH", "WEAK_CRYPTO"]
    healthy = tunnel(Code.TUNNEL_HEALTHY)
    assert apply_silences(healthy, [every, psk], T0).findings == healthy.findings
