"""Phase 1: route, no response, proposals, keys, addresses, NAT-T, DPD, flapping, remote access."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_address, ip_interface, ip_network

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Severity
from ipsec_doctor.model.state import IkeStatus, RouteLookup

from .builders import (
    R1_WAN,
    R2_WAN,
    codes,
    ev,
    healthy_view,
    ike_sa,
    local,
    log,
    one_ended,
    phase1_down,
    remote,
)

PHASE2 = {
    Code.TRANSFORM_SET_MISMATCH.value,
    Code.PROXY_ID_MISMATCH.value,
    Code.PFS_MISMATCH.value,
    Code.ONE_WAY_TRAFFIC.value,
    Code.NO_TRAFFIC_ENCRYPTED.value,
    Code.TUNNEL_HEALTHY.value,
}


def test_no_route_to_peer_explains_no_response() -> None:
    view = phase1_down(healthy_view())
    gone = RouteLookup(
        query=str(R2_WAN),
        found=False,
        source=ev(f"show ip route {R2_WAN}", "% Subnet not in table", 1),
    )
    retx = log(Event.PHASE1_RETRANSMIT, line="retransmitting phase 1 MM_NO_STATE...")
    found = diagnose(local(view, routes={**view.local.routes, "route_peer": gone}, logs=(retx,)))
    assert codes(found)[0] == Code.NO_ROUTE_TO_PEER.value
    assert Code.PHASE1_NO_RESPONSE.value not in codes(found)
    assert found[0].fix == f"ip route {R2_WAN} 255.255.255.255 <next-hop>"


def test_phase1_no_response_remote_silent() -> None:
    view = phase1_down(healthy_view(), "MM_WAIT_MSG2", IkeStatus.WAITING_RESPONSE)
    retx = log(Event.PHASE1_RETRANSMIT, R2_WAN, "retransmitting phase 1 MM_WAIT_MSG2...")
    found = diagnose(local(view, logs=(retx,)))
    assert codes(found)[0] == Code.PHASE1_NO_RESPONSE.value
    assert not PHASE2 & set(codes(found))
    assert found[0].detail["remote_sees_us"] is False
    assert "R2 shows no SA" in found[0].summary
    assert found[0].fix_device == "R2"


def test_mm_no_state_one_end_no_logs_is_ambiguous() -> None:
    found = diagnose(phase1_down(one_ended()))
    assert codes(found)[:2] == [Code.PHASE1_NO_RESPONSE.value, Code.PHASE1_PROPOSAL_MISMATCH.value]
    assert "cannot tell apart" in found[0].summary and "cannot tell apart" in found[1].summary
    assert found[0].fix_device == str(R2_WAN)  # the peer was not read


def test_mm_no_state_with_retransmissions_is_no_response_only() -> None:
    retx = log(Event.PHASE1_RETRANSMIT, line="retransmitting phase 1 MM_NO_STATE...")
    found = diagnose(local(phase1_down(one_ended()), logs=(retx,)))
    assert codes(found)[0] == Code.PHASE1_NO_RESPONSE.value
    assert Code.PHASE1_PROPOSAL_MISMATCH.value not in codes(found)


def test_proposal_mismatch_from_the_responders_log_and_configs() -> None:
    view = phase1_down(healthy_view())
    weak = replace(view.remote.ike_policies[0], encryption="aes-128", hash="sha", dh_group=2)
    rejected = log(Event.PHASE1_PROPOSAL_REJECTED, R1_WAN, "atts are not acceptable", 7)
    view = remote(view, ike_policies=(weak,), logs=(rejected,))
    found = diagnose(view)
    first = found[0]
    assert first.code is Code.PHASE1_PROPOSAL_MISMATCH
    assert first.detail["differing"] == ["encryption", "hash", "group"]
    assert first.fix_device == "R2"  # R2 offers the weaker policy
    assert first.fix.startswith("crypto isakmp policy 10\n encryption aes 256\n hash sha256")
    assert " group 14" in first.fix
    assert {e.device for e in first.evidence} == {"R1", "R2"}
    assert Code.PHASE1_NO_RESPONSE.value not in codes(found)
    assert not PHASE2 & set(codes(found))


def test_proposal_mismatch_from_config_comparison_alone() -> None:
    view = phase1_down(healthy_view())
    other = replace(view.remote.ike_policies[0], hash="sha384")
    found = diagnose(remote(view, ike_policies=(other,)))
    assert found[0].code is Code.PHASE1_PROPOSAL_MISMATCH
    assert found[0].detail["differing"] == ["hash"]
    assert found[0].fix_device == "R1"  # sha384 is stronger: R1 adopts it
    assert "hash sha384" in found[0].fix


def test_undecidable_proposal_side_is_the_remote() -> None:
    view = phase1_down(healthy_view())
    other = replace(view.remote.ike_policies[0], authentication="rsa-sig")
    found = diagnose(remote(view, ike_policies=(other,)))
    assert found[0].code is Code.PHASE1_PROPOSAL_MISMATCH
    assert found[0].fix_device == "R2"
    assert "by convention" in found[0].detail["fix_reason"]


def test_attribute_named_by_the_log_one_end() -> None:
    view = phase1_down(one_ended())
    hashmsg = log(
        Event.PHASE1_PROPOSAL_REJECTED,
        None,
        "Hash algorithm offered does not match policy!",
        attribute="hash",
    )
    found = diagnose(local(view, logs=(hashmsg,)))
    assert found[0].code is Code.PHASE1_PROPOSAL_MISMATCH
    assert found[0].detail["differing"] == ["hash"]


def test_psk_mismatch_from_bad_message_and_mm_key_exch() -> None:
    view = phase1_down(healthy_view(), "MM_KEY_EXCH", IkeStatus.NEGOTIATING)
    bad = log(
        Event.AUTH_FAILED,
        R1_WAN,
        "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 10.1.1.1 failed its sanity check",
    )
    view = remote(
        view, ike_sas=(ike_sa(R1_WAN, R2_WAN, "MM_KEY_EXCH", IkeStatus.NEGOTIATING),), logs=(bad,)
    )
    found = diagnose(view)
    assert codes(found)[0] == Code.PSK_MISMATCH.value
    assert Code.PHASE1_PROPOSAL_MISMATCH.value not in codes(found)
    assert Code.PSK_MISSING.value not in codes(found)
    assert Code.PHASE1_NO_RESPONSE.value not in codes(found)
    assert "<pre-shared-key>" in found[0].fix
    assert "cannot be told" in found[0].summary
    assert found[0].fix_device == "R2"


def test_mode_failure_resolved_by_neighbouring_lines() -> None:
    view = phase1_down(one_ended())
    bad = log(Event.AUTH_FAILED, None, "reserved not zero on payload 5!", 10)
    mode = log(
        Event.PHASE1_MODE_FAILURE,
        R2_WAN,
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at 10.2.2.1",
        12,
    )
    found = diagnose(local(view, logs=(bad, mode)))
    assert codes(found)[0] == Code.PSK_MISMATCH.value
    assert Code.PHASE1_PROPOSAL_MISMATCH.value not in codes(found)


def test_mode_failure_resolved_by_config_comparison() -> None:
    view = phase1_down(healthy_view(), "MM_KEY_EXCH", IkeStatus.NEGOTIATING)
    mode = log(Event.PHASE1_MODE_FAILURE, R2_WAN, "IKMP_MODE_FAILURE", 12)
    found = diagnose(local(view, logs=(mode,)))  # policies match: keys it is
    assert codes(found)[0] == Code.PSK_MISMATCH.value


def test_mode_failure_alone_reports_both_causes() -> None:
    view = local(one_ended(), ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())
    mode = log(Event.PHASE1_MODE_FAILURE, R2_WAN, "IKMP_MODE_FAILURE", 12)
    found = diagnose(local(view, logs=(mode,)))
    assert codes(found)[:2] == [Code.PHASE1_PROPOSAL_MISMATCH.value, Code.PSK_MISMATCH.value]
    assert all("cannot tell apart" in f.summary for f in found[:2])
    assert found[0].detail["ambiguous"]


def test_psk_missing_from_log_explains_the_rejection() -> None:
    view = phase1_down(healthy_view())
    lines = (
        log(Event.PSK_MISSING, R1_WAN, "No pre-shared key with 10.1.1.1!", 3),
        log(
            Event.PSK_MISSING,
            None,
            "Preshared authentication offered but does not match policy!",
            4,
        ),
        log(Event.PHASE1_PROPOSAL_REJECTED, None, "atts are not acceptable. Next payload is 0", 5),
    )
    cfg = replace(view.remote.config, psk_peers=())
    found = diagnose(remote(view, logs=lines, config=cfg))
    assert codes(found)[0] == Code.PSK_MISSING.value
    assert found[0].device == "R2" and found[0].fix_device == "R2"
    assert found[0].fix == f"crypto isakmp key <pre-shared-key> address {R1_WAN}"
    for wrong in (Code.PSK_MISMATCH, Code.PHASE1_NO_RESPONSE, Code.PHASE1_PROPOSAL_MISMATCH):
        assert wrong.value not in codes(found)


def test_psk_missing_from_config() -> None:
    view = phase1_down(healthy_view())
    cfg = replace(view.local.config, psk_peers=())
    found = diagnose(local(view, config=cfg))
    assert Code.PSK_MISSING.value in codes(found)
    assert (
        next(f for f in found if f.code is Code.PSK_MISSING).detail["found_in"] == "configuration"
    )


def test_wildcard_key_covers_the_peer() -> None:
    view = phase1_down(healthy_view())
    cfg = replace(view.local.config, psk_peers=(), psk_wildcard=True)
    assert Code.PSK_MISSING.value not in codes(diagnose(local(view, config=cfg)))


def test_peer_address_typo_in_the_local_map() -> None:
    view = phase1_down(healthy_view())
    typo = ip_address("10.2.2.9")
    entry = replace(view.local.crypto_maps[0], peers=(typo,))
    nokeys = log(
        Event.PEER_ADDRESS_MISMATCH,
        typo,
        "ISAKMP: No cert, and no keys (public or pre-shared) with remote peer 10.2.2.9",
    )
    found = diagnose(
        local(view, crypto_maps=(entry,), logs=(nokeys,), ike_sas=(), ike_sas_later=())
    )
    assert codes(found)[0] == Code.PEER_ADDRESS_MISMATCH.value
    assert found[0].fix_device == "R1"
    assert f"no set peer {typo}\n set peer {R2_WAN}" in found[0].fix
    for wrong in (Code.PSK_MISMATCH, Code.PHASE1_PROPOSAL_MISMATCH, Code.PEER_NOT_FOUND):
        assert wrong.value not in codes(found)


def test_peer_address_mismatch_from_the_configs() -> None:
    view = phase1_down(healthy_view())
    wrong = ip_address("10.2.2.9")
    entry = replace(view.local.crypto_maps[0], peers=(wrong,))
    cfg = replace(view.local.config, psk_peers=(wrong,))
    view = replace(view, peer=wrong)
    view = local(
        view,
        crypto_maps=(entry,),
        config=cfg,
        ike_sas=(ike_sa(wrong, R1_WAN, "MM_NO_STATE", IkeStatus.NO_STATE),),
        ike_sas_later=None,
    )
    found = diagnose(view)
    assert codes(found)[0] == Code.PEER_ADDRESS_MISMATCH.value
    assert found[0].detail["suggested"] == str(R2_WAN)


def test_nat_t_disabled_with_nat_in_the_path() -> None:
    view = healthy_view()
    public = ip_address("203.0.113.10")
    cfg = replace(
        view.local.config,
        nat_traversal_enabled=False,
        sources=(
            ev("show running-config", "no crypto ipsec nat-transparency udp-encapsulation", 30),
        ),
    )
    view = local(view, config=cfg)
    # R2 sees R1 at its translated address; R2's view of the peer is the public one
    view = remote(view, ike_sas=(ike_sa(public, R2_WAN),), ike_sas_later=None)
    view = replace(view, remote_peer=public)
    found = diagnose(view)
    assert codes(found)[0] == Code.NAT_T_NOT_ENABLED.value
    assert found[0].fix_device == "R1"
    assert "crypto ipsec nat-transparency udp-encapsulation" in found[0].fix


def test_nat_t_not_detected_without_nat_is_normal() -> None:
    found = diagnose(
        local(
            healthy_view(),
            logs=(log(Event.NAT_T_NOT_DETECTED, None, "No NAT Found for self or peer"),),
        )
    )
    assert codes(found) == [Code.TUNNEL_HEALTHY.value]


def test_dpd_repeating_teardowns_explain_flapping() -> None:
    view = healthy_view()
    teardown = [
        log(
            Event.DPD_TEARDOWN,
            R2_WAN,
            "DPD: Peer 10.2.2.1 not responding, tearing down SA",
            i,
            timedelta(minutes=i),
        )
        for i in (2, 4, 6)
    ]
    cfg = replace(view.local.config, dpd_seconds=10, dpd_retry_seconds=3)
    view = local(
        view,
        logs=tuple(teardown),
        config=cfg,
        ike_sas_later=(ike_sa(R2_WAN, R1_WAN, conn_id=1002, sample=2),),
    )
    found = diagnose(view)
    assert codes(found)[:2] == [Code.DPD_TOO_AGGRESSIVE.value, Code.SA_FLAPPING.value]
    assert found[1].detail["explained_by"] == [Code.DPD_TOO_AGGRESSIVE.value]
    assert "keepalive 30" in found[0].fix
    assert Code.TUNNEL_HEALTHY.value not in codes(found)


def test_aggressive_timer_alone_is_not_a_fault() -> None:
    view = healthy_view()
    cfg = replace(view.local.config, dpd_seconds=10, dpd_retry_seconds=3)
    assert codes(diagnose(local(view, config=cfg))) == [Code.TUNNEL_HEALTHY.value]


def test_sa_flapping_conn_id_change() -> None:
    view = local(healthy_view(), ike_sas_later=(ike_sa(R2_WAN, R1_WAN, conn_id=1002, sample=2),))
    found = diagnose(view)
    assert codes(found)[0] == Code.SA_FLAPPING.value
    assert found[0].severity is Severity.WARNING
    assert "conn-id" in found[0].summary


def test_rekey_near_lifetime_is_not_a_flap() -> None:
    old = ike_sa(R2_WAN, R1_WAN, conn_id=1001, established_seconds=86000)
    new = ike_sa(R2_WAN, R1_WAN, conn_id=1002, sample=2, established_seconds=3)
    assert codes(diagnose(local(healthy_view(), ike_sas=(old,), ike_sas_later=(new,)))) == [
        Code.TUNNEL_HEALTHY.value
    ]


def test_ipsec_spis_replaced_early_is_a_flap_late_is_a_rekey() -> None:
    from .builders import R1_LAN, R2_LAN, ipsec_sa

    view = healthy_view()
    new = ipsec_sa(
        R2_WAN,
        R1_WAN,
        R1_LAN,
        R2_LAN,
        5,
        4,
        sample=2,
        inbound_spis=("0x9999",),
        outbound_spis=("0x8888",),
    )
    found = diagnose(local(view, ipsec_sas_later=(new,)))
    assert codes(found)[0] == Code.SA_FLAPPING.value
    expiring = ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 100, 98, remaining_seconds=30)
    assert Code.SA_FLAPPING.value not in codes(
        diagnose(local(view, ipsec_sas=(expiring,), ipsec_sas_later=(new,)))
    )


def test_remote_access_failures() -> None:
    view = phase1_down(one_ended(), "CONF_XAUTH", IkeStatus.NEGOTIATING)
    for event, code in (
        (Event.XAUTH_FAILED, Code.XAUTH_FAILED),
        (Event.VPN_GROUP_NOT_FOUND, Code.VPN_GROUP_NOT_FOUND),
        (Event.ADDRESS_POOL_FAILURE, Code.ADDRESS_POOL_FAILURE),
    ):
        found = diagnose(local(view, logs=(log(event, None, f"{event} line", group="ezvpn"),)))
        assert codes(found)[0] == code.value
        assert Code.PSK_MISMATCH.value not in codes(found)


def test_unnamed_remote_access_lines_do_not_touch_a_working_tunnel() -> None:
    view = local(healthy_view(), logs=(log(Event.XAUTH_FAILED, None, "User not found"),))
    assert codes(diagnose(view)) == [Code.TUNNEL_HEALTHY.value]


def test_phase1_down_without_any_explanation() -> None:
    view = phase1_down(one_ended(), "MM_SA_SETUP", IkeStatus.NEGOTIATING)
    found = diagnose(view)
    assert codes(found) == [Code.INSUFFICIENT_DATA.value]
    assert found[0].severity is Severity.WARNING
    assert "MM_SA_SETUP" in found[0].summary


def test_own_addresses_need_interface_or_config() -> None:
    view = one_ended()
    assert ip_interface("10.1.1.1/24").ip in view.local.own_addresses()


def test_not_in_table_is_no_proof_when_a_default_route_exists() -> None:
    view = phase1_down(healthy_view())
    gone = RouteLookup(
        query=str(R2_WAN),
        found=False,
        source=ev(f"show ip route {R2_WAN}", "% Network not in table", 1),
    )
    default = RouteLookup(
        query="192.168.2.0",
        found=True,
        prefix=ip_network("0.0.0.0/0"),
        interfaces=("GigabitEthernet0/0",),
        is_default=True,
    )
    routes = {**view.local.routes, "route_peer": gone, "route_remote_lan": default}
    found = diagnose(local(view, routes=routes))
    assert Code.NO_ROUTE_TO_PEER.value not in codes(found)


def test_dpd_retransmissions_after_teardown_are_not_phase1_silence() -> None:
    view = local(one_ended(), ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())
    cfg = replace(view.local.config, dpd_seconds=5)
    lines = (
        log(Event.PHASE1_RETRANSMIT, None, "retransmit 1 of request with message ID 2", 1),
        log(Event.DPD_TEARDOWN, None, "DPD check timed out, enforcing DPD action", 2),
    )
    found = diagnose(local(view, config=cfg, logs=lines))
    assert codes(found)[0] == Code.DPD_TOO_AGGRESSIVE.value
    assert Code.PHASE1_NO_RESPONSE.value not in codes(found)
