"""Engine invariants under random combinations of faults (hypothesis).

- With faults injected at several stages at once, the report starts at the earliest failing
  stage (a symptom explained by a reported cause follows that cause; EXPLAINS in the engine).
- No phase-2 / data / routing code while phase 1 is down.
- A healthy tunnel never yields a critical (or warning) finding, whatever harmless variations.
- Unknown sections (None, with the command problem recorded) never crash a rule and are
  reported as INSUFFICIENT_DATA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import ip_network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.diagnose.context import Phase1, Tunnel
from ipsec_doctor.diagnose.engine import CHAIN, causes_of, is_failure, stage_index
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Severity, Stage
from ipsec_doctor.model.state import (
    IkePolicy,
    IkeStatus,
    InterfaceStatus,
    RouteLookup,
    TransformSet,
    TunnelView,
)

from .builders import (
    LAN_IF,
    R1_LAN,
    R1_WAN,
    R2_LAN,
    R2_WAN,
    ev,
    healthy_view,
    ike_sa,
    ipsec_sa,
    local,
    log,
    phase1_down,
    phase2_down,
    problem,
    remote,
)

Fault = Callable[[TunnelView], TunnelView]

PHASE2_CODES = {
    Code.TRANSFORM_SET_MISMATCH,
    Code.PROXY_ID_MISMATCH,
    Code.INVALID_LOCAL_ADDRESS,
    Code.PFS_MISMATCH,
    Code.LIFETIME_MISMATCH,
    Code.CRYPTO_ACL_OVERLAP,
    Code.ONE_WAY_TRAFFIC,
    Code.NO_TRAFFIC_ENCRYPTED,
    Code.SPI_OUT_OF_SYNC,
    Code.PACKET_NOT_IPSEC,
    Code.SEND_ERRORS,
    Code.HW_CRYPTO_ENGINE_FAULT,
    Code.NO_ROUTE_TO_REMOTE_LAN,
    Code.VRF_ROUTE_MISSING,
    Code.TUNNEL_HEALTHY,
}


def no_sas(view: TunnelView) -> TunnelView:
    view = local(view, ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())
    return remote(view, ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())


# ----------------------------------------------------------------------------- faults


def isakmp_disabled(view: TunnelView) -> TunnelView:
    cfg = replace(view.local.config, isakmp_enabled=False)
    return no_sas(local(view, config=cfg))


def no_policy(view: TunnelView) -> TunnelView:
    default = IkePolicy(65507, "aes-128", "sha", "pre-share", 5, 86400, is_default=True)
    return phase1_down(local(view, ike_policies=(default,)))


def map_not_applied_remote(view: TunnelView) -> TunnelView:
    entry = replace(view.remote.crypto_maps[0], interfaces=())
    cfg = replace(view.remote.config, crypto_map_interfaces={})
    return no_sas(remote(view, crypto_maps=(entry,), config=cfg))


def source_down(view: TunnelView) -> TunnelView:
    iface = replace(view.local.interfaces[LAN_IF], status=InterfaceStatus.ADMIN_DOWN)
    return no_sas(local(view, interfaces={**view.local.interfaces, LAN_IF: iface}))


def wrong_interface(view: TunnelView) -> TunnelView:
    away = RouteLookup(
        query="192.168.2.0",
        found=True,
        interfaces=("GigabitEthernet0/2",),
        source=ev("show ip route 192.168.2.0", "via GigabitEthernet0/2", 3),
    )
    return no_sas(local(view, routes={**view.local.routes, "route_remote_lan": away}))


def no_route_to_peer(view: TunnelView) -> TunnelView:
    gone = RouteLookup(
        query=str(R2_WAN),
        found=False,
        source=ev("show ip route 10.2.2.1", "% Subnet not in table", 1),
    )
    return phase1_down(local(view, routes={**view.local.routes, "route_peer": gone}))


def proposal_mismatch(view: TunnelView) -> TunnelView:
    other = replace(view.remote.ike_policies[0], encryption="aes-128", dh_group=19)
    return phase1_down(remote(view, ike_policies=(other,)))


def psk_mismatch(view: TunnelView) -> TunnelView:
    view = phase1_down(view, "MM_KEY_EXCH", IkeStatus.NEGOTIATING)
    bad = log(Event.AUTH_FAILED, R1_WAN, "IKMP_BAD_MESSAGE: IKE message from 10.1.1.1", 40)
    return remote(view, logs=(*(view.remote.logs or ()), bad))


def no_response(view: TunnelView) -> TunnelView:
    view = phase1_down(view, "MM_WAIT_MSG2", IkeStatus.WAITING_RESPONSE)
    retx = log(Event.PHASE1_RETRANSMIT, R2_WAN, "retransmitting phase 1 MM_WAIT_MSG2", 41)
    return local(view, logs=(*(view.local.logs or ()), retx))


def transform_mismatch(view: TunnelView) -> TunnelView:
    legacy = TransformSet("TS-LEGACY", ("esp-3des", "esp-md5-hmac"))
    entry = replace(view.remote.crypto_maps[0], transform_sets=("TS-LEGACY",))
    return phase2_down(remote(view, crypto_maps=(entry,), transform_sets=(legacy,)))


def proxy_mismatch(view: TunnelView) -> TunnelView:
    entry = replace(view.remote.crypto_maps[0], remote_selectors=(ip_network("10.99.0.0/16"),))
    return phase2_down(remote(view, crypto_maps=(entry,)))


def pfs_mismatch(view: TunnelView) -> TunnelView:
    entry = replace(view.local.crypto_maps[0], pfs_group="")
    return phase2_down(local(view, crypto_maps=(entry,)))


def one_way(view: TunnelView) -> TunnelView:
    return local(
        view,
        ipsec_sas=(ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 100, 0),),
        ipsec_sas_later=(ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 140, 0, sample=2),),
    )


def no_traffic(view: TunnelView) -> TunnelView:
    zero = (ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 0, 0),)
    zero2 = (ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 0, 0, sample=2),)
    rzero = (ipsec_sa(R1_WAN, R2_WAN, R2_LAN, R1_LAN, 0, 0),)
    return remote(
        local(view, ipsec_sas=zero, ipsec_sas_later=zero2), ipsec_sas=rzero, ipsec_sas_later=None
    )


def no_route_remote_lan(view: TunnelView) -> TunnelView:
    gone = RouteLookup(
        query="192.168.1.0",
        found=False,
        source=ev("show ip route 192.168.1.0", "% Network not in table", 1),
    )
    return remote(view, routes={**view.remote.routes, "route_remote_lan": gone})


FAULTS: dict[Stage, list[Fault]] = {
    Stage.PREREQ: [isakmp_disabled, no_policy],
    Stage.TRAFFIC: [map_not_applied_remote, source_down, wrong_interface],
    Stage.IKE: [no_route_to_peer, proposal_mismatch, psk_mismatch, no_response],
    Stage.IPSEC: [transform_mismatch, proxy_mismatch, pfs_mismatch],
    Stage.DATA: [one_way, no_traffic],
    Stage.ROUTING: [no_route_remote_lan],
}

fault_sets = st.dictionaries(
    st.sampled_from(list(FAULTS)),
    st.integers(min_value=0, max_value=3),
    min_size=1,
    max_size=4,
)


def inject(choice: dict[Stage, int]) -> TunnelView:
    """Apply the chosen faults, latest stage first: an earlier failure overrides the state."""
    view = healthy_view()
    for stage in sorted(choice, key=stage_index, reverse=True):
        faults = FAULTS[stage]
        view = faults[choice[stage] % len(faults)](view)
    return view


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_sets)
def test_earliest_failing_stage_comes_first(choice: dict[Stage, int]) -> None:
    view = inject(choice)
    findings = diagnose(view)
    assert findings, choice
    earliest = min(choice, key=stage_index)
    failures = [f for f in findings if is_failure(f) and f.stage in CHAIN]
    assert failures, (choice, [f.code for f in findings])
    unexplained = [f for f in failures if not causes_of(f, findings)]
    first = findings[0]
    assert is_failure(first)
    assert not causes_of(first, findings), "a symptom never leads"
    assert first.stage == min((f.stage for f in unexplained), key=stage_index)
    if earliest is not Stage.DATA:  # a data symptom may follow a routing cause
        assert first.stage == earliest, (choice, [(f.code, f.stage) for f in findings])
    assert not any(f.code is Code.TUNNEL_HEALTHY for f in findings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_sets)
def test_one_ended_reports_stay_ordered(choice: dict[Stage, int]) -> None:
    """Only our end read: some faults are invisible, but the report is still ordered."""
    view = replace(inject(choice), remote=None, remote_peer=None)
    findings = diagnose(view)
    assert findings
    if Tunnel(view).phase1 is Phase1.DOWN:
        assert not {f.code for f in findings} & PHASE2_CODES
    failures = [f for f in findings if is_failure(f) and f.stage in CHAIN]
    unexplained = [f for f in failures if not causes_of(f, findings)]
    if unexplained:
        assert findings[0].stage == min((f.stage for f in unexplained), key=stage_index)
    else:
        assert findings[0].code in (Code.INSUFFICIENT_DATA, Code.TUNNEL_HEALTHY)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_sets)
def test_no_phase2_code_while_phase1_is_down(choice: dict[Stage, int]) -> None:
    view = inject(choice)
    findings = diagnose(view)
    if Tunnel(view).phase1 is Phase1.DOWN:
        assert not {f.code for f in findings} & PHASE2_CODES, [f.code for f in findings]
    if min(choice, key=stage_index) in (Stage.PREREQ, Stage.TRAFFIC, Stage.IKE):
        assert Tunnel(view).phase1 is Phase1.DOWN  # the faults do take phase 1 down


harmless = st.fixed_dictionaries(
    {
        "enc": st.integers(min_value=1, max_value=10**9),
        "dec": st.integers(min_value=1, max_value=10**9),
        "enc_step": st.integers(min_value=1, max_value=10**6),
        "dec_step": st.integers(min_value=1, max_value=10**6),
        "conn_id": st.integers(min_value=1, max_value=65535),
        "sampled_twice": st.booleans(),
        "one_ended": st.booleans(),
        "old_failure": st.sampled_from(
            [
                Event.PHASE1_PROPOSAL_REJECTED,
                Event.AUTH_FAILED,
                Event.PHASE1_MODE_FAILURE,
                Event.DPD_TEARDOWN,
                Event.PHASE2_PROXY_REJECTED,
            ]
        ),
        "keepalive": st.sampled_from([None, 10, 30, 60]),
    }
)


@settings(max_examples=200, deadline=None)
@given(harmless)
def test_a_healthy_tunnel_never_yields_a_critical_finding(v: dict[str, object]) -> None:
    from datetime import timedelta

    enc, dec = int(v["enc"]), int(v["dec"])  # type: ignore[call-overload]
    later = (
        (
            ipsec_sa(
                R2_WAN,
                R1_WAN,
                R1_LAN,
                R2_LAN,
                enc + int(v["enc_step"]),  # type: ignore[call-overload]
                dec + int(v["dec_step"]),
                sample=2,
            ),
        )  # type: ignore[call-overload]
        if v["sampled_twice"]
        else None
    )
    conn = int(v["conn_id"])  # type: ignore[call-overload]
    old = log(str(v["old_failure"]), R2_WAN, "old failure", 2, age=timedelta(days=1))
    view = healthy_view()
    cfg = replace(view.local.config, dpd_seconds=v["keepalive"])
    view = local(
        view,
        ipsec_sas=(ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, enc, dec),),
        ipsec_sas_later=later,
        ike_sas=(ike_sa(R2_WAN, R1_WAN, conn_id=conn),),
        ike_sas_later=(ike_sa(R2_WAN, R1_WAN, conn_id=conn, sample=2),),
        logs=(old,),
        config=cfg,
    )
    if v["one_ended"]:
        view = replace(view, remote=None, remote_peer=None)
    findings = diagnose(view)
    assert [f.code for f in findings] == [Code.TUNNEL_HEALTHY]
    assert not any(f.severity in (Severity.CRITICAL, Severity.WARNING) for f in findings)


SECTIONS = {
    "ike_sas": "isakmp_sa",
    "ipsec_sas": "ipsec_sa",
    "crypto_acl": "crypto_acl",
    "crypto_maps": "crypto_map",
    "ike_policies": "isakmp_policy",
    "transform_sets": "transform_sets",
    "config": "running_config",
    "logs": "logging",
    "engine": "engine_connections",
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fault_sets,
    st.sets(st.sampled_from(sorted(SECTIONS))),
    st.sets(st.sampled_from(sorted(SECTIONS))),
    st.booleans(),
)
def test_unknown_sections_never_crash(
    choice: dict[Stage, int], lost_local: set[str], lost_remote: set[str], unreachable: bool
) -> None:
    view = inject(choice)

    def blind(state, lost):  # type: ignore[no-untyped-def]
        changes: dict[str, object] = {name: None for name in lost}
        for name in lost:
            if name in ("ike_sas", "ipsec_sas", "crypto_acl", "engine"):
                changes[f"{name}_later"] = None
        problems = tuple(problem(f"show {SECTIONS[n]}", SECTIONS[n]) for n in sorted(lost))
        return replace(state, problems=problems, **changes)

    view = replace(
        view, local=blind(view.local, lost_local), remote=blind(view.remote, lost_remote)
    )
    if unreachable:
        view = remote(view, unreachable="connection refused")
    findings = diagnose(view)
    insufficient = [f for f in findings if f.code is Code.INSUFFICIENT_DATA]
    assert len(insufficient) >= len(lost_local) + (1 if unreachable else len(lost_remote))
    if Tunnel(view).phase1 is Phase1.DOWN:
        assert not {f.code for f in findings} & PHASE2_CODES
    for f in findings:
        assert f.summary and f.reference
        assert all(e.device for e in f.evidence)


noise = st.lists(
    st.tuples(
        st.sampled_from(sorted(e.value for e in Event)),
        st.sampled_from([None, R1_WAN, R2_WAN]),
        st.booleans(),  # on the remote end
        st.sampled_from(
            [
                {},
                {"error": "32"},
                {"error": "256"},
                {"attribute": "hash"},
                {"mode": "Main"},
                {"mode": "Transaction"},
                {"local": "10.1.3.1"},
            ]
        ),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_sets, noise)
def test_any_log_noise_keeps_the_invariants(
    choice: dict[Stage, int], events: list[tuple[str, object, bool, dict[str, str]]]
) -> None:
    view = inject(choice)
    mine, theirs = list(view.local.logs or ()), list(view.remote.logs or ())
    for number, (name, peer, on_remote, detail) in enumerate(events):
        event = log(name, peer, f"noise {name}", 100 + number, **detail)  # type: ignore[arg-type]
        (theirs if on_remote else mine).append(event)
    view = remote(local(view, logs=tuple(mine)), logs=tuple(theirs))
    findings = diagnose(view)
    assert findings
    if Tunnel(view).phase1 is Phase1.DOWN:
        assert not {f.code for f in findings} & PHASE2_CODES
    failures = [f for f in findings if is_failure(f) and f.stage in CHAIN]
    unexplained = [f for f in failures if not causes_of(f, findings)]
    if unexplained:
        assert findings[0].stage == min((f.stage for f in unexplained), key=stage_index)
    assert not (
        any(f.code is Code.TUNNEL_HEALTHY for f in findings)
        and any(f.severity is Severity.CRITICAL for f in findings)
    )
