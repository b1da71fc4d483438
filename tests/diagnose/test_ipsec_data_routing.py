"""Phase 2, data plane, routing, posture and INSUFFICIENT_DATA on hand-built state."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Severity, Stage
from ipsec_doctor.model.state import CommandProblem, Evidence, IkePolicy, RouteLookup, TransformSet

from .builders import (
    R1_LAN,
    R1_WAN,
    R2_LAN,
    R2_WAN,
    acl,
    codes,
    ev,
    healthy_view,
    ipsec_sa,
    local,
    log,
    one_ended,
    phase2_down,
    problem,
    remote,
)


def legacy_set() -> TransformSet:
    return TransformSet(
        "TS-LEGACY",
        ("esp-3des", "esp-md5-hmac"),
        source=ev(
            "show crypto ipsec transform-set",
            "Transform set TS-LEGACY: { esp-3des esp-md5-hmac }",
            4,
        ),
    )


def test_transform_set_mismatch_from_configs_and_error_256() -> None:
    view = phase2_down(healthy_view())
    entry = replace(view.remote.crypto_maps[0], transform_sets=("TS-LEGACY",))
    err = log(
        Event.PHASE2_POLICY_INVALIDATED,
        None,
        "IPSec policy invalidated proposal with error 256",
        9,
        error="256",
    )
    view = remote(view, crypto_maps=(entry,), transform_sets=(legacy_set(),), logs=(err,))
    found = diagnose(view)
    first = found[0]
    assert first.code is Code.TRANSFORM_SET_MISMATCH
    assert first.fix_device == "R2"  # the weaker side adopts the stronger set
    assert first.fix == (
        "crypto ipsec transform-set TS-AES256 esp-aes 256 esp-sha256-hmac\n mode tunnel\n"
        "crypto map VPNMAP 10 ipsec-isakmp\n set transform-set TS-AES256"
    )
    assert Code.PROXY_ID_MISMATCH.value not in codes(found)
    assert Code.WEAK_CRYPTO.value in codes(found)


def test_error_32_is_proxy_not_transform() -> None:
    view = phase2_down(one_ended())
    err = log(
        Event.PHASE2_POLICY_INVALIDATED,
        None,
        "IPSec policy invalidated proposal with error 32",
        9,
        error="32",
    )
    found = diagnose(local(view, logs=(err,)))
    assert codes(found)[0] == Code.PROXY_ID_MISMATCH.value
    assert Code.TRANSFORM_SET_MISMATCH.value not in codes(found)


def test_error_without_number_is_decided_by_its_neighbour() -> None:
    view = phase2_down(one_ended())
    lines = (
        log(Event.PHASE2_TRANSFORM_REJECTED, None, "transform proposal not supported", 8),
        log(Event.PHASE2_POLICY_INVALIDATED, None, "IPsec policy invalidated proposal", 9),
    )
    assert codes(diagnose(local(view, logs=lines)))[0] == Code.TRANSFORM_SET_MISMATCH.value


def test_proxy_id_mismatch_from_configs_names_the_side_to_fix() -> None:
    view = phase2_down(healthy_view())
    bad = ip_network("192.168.10.0/24")
    entry = replace(view.remote.crypto_maps[0], remote_selectors=(bad,))
    view = remote(
        view, crypto_maps=(entry,), crypto_acl=(acl(R2_LAN, bad, 3),), crypto_acl_later=None
    )
    found = diagnose(view)
    first = found[0]
    assert first.code is Code.PROXY_ID_MISMATCH
    assert first.fix_device == "R2"
    assert "R1's LAN 192.168.1.0/24" in first.detail["fix_reason"]
    assert first.fix.endswith(" permit ip 192.168.2.0 0.0.0.255 192.168.1.0 0.0.0.255")


def test_non_mirror_with_sas_up_is_a_warning() -> None:
    view = healthy_view()
    wider = ip_network("192.168.0.0/16")
    entry = replace(view.remote.crypto_maps[0], remote_selectors=(wider,))
    found = diagnose(remote(view, crypto_maps=(entry,)))
    proxy = next(f for f in found if f.code is Code.PROXY_ID_MISMATCH)
    assert proxy.severity is Severity.WARNING
    assert Code.TUNNEL_HEALTHY.value not in codes(found)


def test_phase2_codes_never_while_phase1_is_down() -> None:
    from .builders import phase1_down

    view = phase1_down(healthy_view())
    entry = replace(view.remote.crypto_maps[0], transform_sets=("TS-LEGACY",), pfs_group="")
    err = log(Event.PHASE2_PROXY_REJECTED, None, "proxy identities not supported", 9)
    view = remote(view, crypto_maps=(entry,), transform_sets=(legacy_set(),), logs=(err,))
    found = codes(diagnose(view))
    for phase2 in (
        Code.TRANSFORM_SET_MISMATCH,
        Code.PROXY_ID_MISMATCH,
        Code.PFS_MISMATCH,
        Code.LIFETIME_MISMATCH,
        Code.ONE_WAY_TRAFFIC,
    ):
        assert phase2.value not in found


def test_pfs_mismatch() -> None:
    view = phase2_down(healthy_view())
    entry = replace(view.local.crypto_maps[0], pfs_group="")
    rejected = log(Event.PHASE2_PROPOSAL_REJECTED, None, "atts not acceptable", 5)
    found = diagnose(remote(local(view, crypto_maps=(entry,)), logs=(rejected,)))
    assert codes(found)[0] == Code.PFS_MISMATCH.value
    assert found[0].fix_device == "R1"
    assert found[0].fix == "crypto map VPNMAP 10 ipsec-isakmp\n set pfs group14"
    assert Code.TRANSFORM_SET_MISMATCH.value not in codes(found)


def test_invalid_local_address_on_the_second_uplink() -> None:
    from ipaddress import ip_interface

    from ipsec_doctor.model.state import Interface, InterfaceStatus

    view = phase2_down(healthy_view())
    second = ip_interface("10.1.3.1/24")
    cfg = replace(
        view.local.config,
        interface_addresses={**view.local.config.interface_addresses, "GigabitEthernet0/2": second},
    )
    iface = Interface("GigabitEthernet0/2", InterfaceStatus.UP, True, second)
    msg = log(
        Event.INVALID_LOCAL_ADDRESS,
        None,
        "IPSEC(validate_proposal): invalid local address 10.1.3.1",
        local="10.1.3.1",
    )
    view = local(
        view,
        config=cfg,
        logs=(msg,),
        interfaces={**view.local.interfaces, "GigabitEthernet0/2": iface},
    )
    found = diagnose(view)
    assert codes(found)[0] == Code.INVALID_LOCAL_ADDRESS.value
    # the map sits on the interface traffic to the peer uses: the peer must address 10.1.1.1
    assert found[0].fix_device == "R2"
    assert "set peer 10.1.1.1" in found[0].fix


def test_peer_not_found_on_the_responder() -> None:
    view = phase2_down(healthy_view())
    old = replace(view.remote.crypto_maps[0], peers=(ip_address("10.1.1.9"),))
    msg = log(
        Event.PEER_NOT_FOUND, R1_WAN, "IPSEC(validate_proposal): peer address 10.1.1.1 not found"
    )
    found = diagnose(remote(view, crypto_maps=(old,), logs=(msg,)))
    assert codes(found)[0] == Code.PEER_NOT_FOUND.value
    assert found[0].device == "R2" and found[0].fix_device == "R2"
    assert found[0].stage is Stage.IPSEC
    assert f"set peer {R1_WAN}" in found[0].fix
    assert codes(found).count(Code.PEER_NOT_FOUND.value) == 1


def test_lifetime_mismatch_is_info_and_healthy_still() -> None:
    view = healthy_view()
    entry = replace(view.remote.crypto_maps[0], lifetime_seconds=1800)
    found = diagnose(remote(view, crypto_maps=(entry,)))
    assert codes(found) == [Code.LIFETIME_MISMATCH.value, Code.TUNNEL_HEALTHY.value]
    assert found[0].severity is Severity.INFO
    assert found[0].fix_device == "R2"  # R2 deviates from the default 3600 s
    assert "lifetime seconds 3600" in found[0].fix


def test_crypto_acl_overlap() -> None:
    from ipsec_doctor.model.state import CryptoMapEntry

    view = healthy_view()
    branch = CryptoMapEntry(
        "VPNMAP",
        5,
        (ip_address("10.3.3.1"),),
        "BRANCH",
        (R1_LAN,),
        (ip_network("192.168.0.0/16"),),
        interfaces=("GigabitEthernet0/0",),
        source=ev("show crypto map", 'Crypto Map "VPNMAP" 5 ipsec-isakmp', 20),
    )
    view = local(view, crypto_maps=(branch, *view.local.crypto_maps))
    found = diagnose(view)
    assert codes(found)[0] == Code.CRYPTO_ACL_OVERLAP.value
    assert "ip access-list extended BRANCH" in found[0].fix
    assert " 1 deny ip 192.168.1.0 0.0.0.255 192.168.2.0 0.0.0.255" in found[0].fix


def flows(view, enc1, dec1, enc2, dec2, end="local"):  # type: ignore[no-untyped-def]
    me, peer, lan, rlan = (
        (R1_WAN, R2_WAN, R1_LAN, R2_LAN) if end == "local" else (R2_WAN, R1_WAN, R2_LAN, R1_LAN)
    )
    first = (ipsec_sa(peer, me, lan, rlan, enc1, dec1),)
    later = None if enc2 is None else (ipsec_sa(peer, me, lan, rlan, enc2, dec2, sample=2),)
    change = local if end == "local" else remote
    return change(view, ipsec_sas=first, ipsec_sas_later=later)


def test_one_way_traffic_esp_lost_in_the_path() -> None:
    view = flows(flows(healthy_view(), 100, 0, 150, 0), 0, 0, 0, 0, end="remote")
    found = diagnose(view)
    assert codes(found)[0] == Code.ONE_WAY_TRAFFIC.value
    assert "encrypts but decrypts nothing back" in found[0].summary
    assert "permit esp" in found[0].fix
    assert Code.NO_TRAFFIC_ENCRYPTED.value not in codes(found)


def test_one_way_traffic_remote_does_not_send_back() -> None:
    view = flows(flows(healthy_view(), 100, 0, 150, 0), 0, 100, 0, 150, end="remote")
    found = diagnose(view)
    assert codes(found)[0] == Code.ONE_WAY_TRAFFIC.value
    assert found[0].fix_device == "R2"
    assert "decrypts R1's packets but encrypts no reply" in found[0].detail["fix_reason"]


def test_one_way_single_sample() -> None:
    found = diagnose(flows(one_ended(), 100, 0, None, None))
    assert codes(found)[0] == Code.ONE_WAY_TRAFFIC.value
    assert found[0].fix_device == str(R2_WAN)


def test_missing_return_route_comes_before_the_one_way_symptom() -> None:
    view = flows(flows(healthy_view(), 100, 0, 150, 0), 0, 100, 0, 150, end="remote")
    gone = RouteLookup(
        query="192.168.1.0",
        found=False,
        source=ev("show ip route 192.168.1.0", "% Network not in table", 1),
    )
    view = remote(view, routes={**view.remote.routes, "route_remote_lan": gone})
    found = diagnose(view)
    assert codes(found)[:2] == [Code.NO_ROUTE_TO_REMOTE_LAN.value, Code.ONE_WAY_TRAFFIC.value]
    assert found[0].device == "R2" and found[0].fix_device == "R2"
    assert found[0].fix == "ip route 192.168.1.0 255.255.255.0 GigabitEthernet0/0 <next-hop>"
    assert found[1].detail["explained_by"] == [Code.NO_ROUTE_TO_REMOTE_LAN.value]


def test_no_traffic_encrypted() -> None:
    view = flows(flows(healthy_view(), 0, 0, 0, 0), 0, 0, 0, 0, end="remote")
    found = diagnose(view)
    assert codes(found) == [Code.NO_TRAFFIC_ENCRYPTED.value]
    assert found[0].severity is Severity.WARNING


def test_counters_not_moving_between_samples() -> None:
    found = diagnose(flows(one_ended(), 500, 400, 500, 400))
    assert codes(found) == [Code.NO_TRAFFIC_ENCRYPTED.value]
    assert "not moving" in found[0].summary


def test_spi_out_of_sync_explains_one_way() -> None:
    view = flows(healthy_view(), 100, 0, 150, 0)
    view = remote(
        view,
        ipsec_sas=(),
        ipsec_sas_later=(),
        logs=(
            log(
                Event.INVALID_SPI,
                R1_WAN,
                "%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet "
                "has invalid spi for destaddr=10.2.2.1",
                3,
            ),
        ),
    )
    found = diagnose(view)
    assert codes(found)[:2] == [Code.SPI_OUT_OF_SYNC.value, Code.ONE_WAY_TRAFFIC.value]
    assert found[0].device == "R2" and found[0].fix_device == "R1"
    assert "clear crypto sa peer 10.2.2.1" in found[0].fix


def test_packet_not_ipsec() -> None:
    msg = log(
        Event.PACKET_NOT_IPSEC,
        None,
        "%CRYPTO-4-RECVD_PKT_NOT_IPSEC: Rec'd packet not an "
        "IPSEC packet. (ip) vrf/dest_addr= /192.168.1.5, src_addr= 192.168.2.50, prot= 1",
    )
    found = diagnose(local(healthy_view(), logs=(msg,)))
    assert codes(found) == [Code.PACKET_NOT_IPSEC.value]
    assert found[0].fix_device == "R2"


def test_send_errors_rising_and_single_sample() -> None:
    view = healthy_view()
    first = (ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 100, 98, send_errors=5),)
    later = (ipsec_sa(R2_WAN, R1_WAN, R1_LAN, R2_LAN, 120, 117, sample=2, send_errors=9),)
    found = diagnose(local(view, ipsec_sas=first, ipsec_sas_later=later))
    assert codes(found) == [Code.SEND_ERRORS.value]
    assert found[0].severity is Severity.WARNING
    found = diagnose(local(view, ipsec_sas=first, ipsec_sas_later=None))
    assert found[0].code is Code.SEND_ERRORS and found[0].severity is Severity.INFO


def test_hw_crypto_engine_fault_from_extras_and_log() -> None:
    view = healthy_view()
    engine = {
        "type": "hardware",
        "name": "Onboard VPN",
        "slot": 0,
        "failures": 12,
        "failures_later": 20,
        "evidence": [Evidence("show crypto engine configuration", "crypto engine type: hardware")],
    }
    found = diagnose(local(view, extras={"crypto_engine": engine}))
    assert codes(found) == [Code.HW_CRYPTO_ENGINE_FAULT.value]
    assert "no crypto engine accelerator 0" in found[0].fix
    assert found[0].evidence[0].device == "R1"
    software = {**engine, "type": "software"}
    assert codes(diagnose(local(view, extras={"crypto_engine": software}))) == [
        Code.TUNNEL_HEALTHY.value
    ]
    msg = log(Event.HW_ENGINE_ERROR, None, "%VPN_HW-1-PACKET_ERROR: slot: 0 Packet error")
    view = flows(local(view, logs=(msg,)), 100, 0, 150, 0)
    found = diagnose(view)
    assert codes(found)[:2] == [Code.HW_CRYPTO_ENGINE_FAULT.value, Code.ONE_WAY_TRAFFIC.value]


def test_vrf_route_missing() -> None:
    msg = log(
        Event.ROUTE_LIMIT_EXCEEDED,
        None,
        "%IPRT-3-ROUTELIMITEXCEEDED: IP routing table limit exceeded - CUST-A, 192.168.2.0/24",
        vrf="CUST-A",
    )
    found = diagnose(local(healthy_view(), logs=(msg,)))
    assert codes(found)[0] == Code.VRF_ROUTE_MISSING.value
    assert "ip vrf CUST-A" in found[0].fix


def test_weak_crypto_on_a_working_tunnel() -> None:
    view = healthy_view()
    weak = IkePolicy(
        10,
        "3des",
        "md5",
        "pre-share",
        2,
        86400,
        source=ev("show crypto isakmp policy", "Protection suite of priority 10", 2),
    )
    view = remote(local(view, ike_policies=(weak,)), ike_policies=(weak,))
    found = diagnose(view)
    assert codes(found) == [
        Code.TUNNEL_HEALTHY.value,
        Code.WEAK_CRYPTO.value,
        Code.WEAK_CRYPTO.value,
    ]
    assert "encryption 3des" in found[1].summary and "hash md5" in found[1].summary


def test_insufficient_data_for_a_refused_command() -> None:
    view = local(
        healthy_view(),
        ike_sas=None,
        ike_sas_later=None,
        problems=(problem("show crypto isakmp sa", "isakmp_sa"),),
    )
    found = diagnose(view)
    assert codes(found) == [Code.INSUFFICIENT_DATA.value]
    assert found[0].severity is Severity.INFO
    assert found[0].stage is Stage.IKE
    assert found[0].detail["raw"].startswith("% Invalid input")
    assert "% Invalid input" in found[0].summary
    assert found[0].evidence == ()  # a live refusal and a missing file read the same


def test_unreachable_remote_is_a_warning_and_blocks_healthy() -> None:
    view = remote(healthy_view(), unreachable="TCP connection to 10.2.2.1:22 timed out")
    found = diagnose(view)
    assert codes(found) == [Code.INSUFFICIENT_DATA.value]
    assert found[0].severity is Severity.WARNING and found[0].device == "R2"


def test_unreachable_local_judges_nothing() -> None:
    view = local(healthy_view(), unreachable="authentication failed")
    assert codes(diagnose(view)) == [Code.INSUFFICIENT_DATA.value]


def test_healthy_single_sample() -> None:
    view = local(one_ended(), ipsec_sas_later=None, ike_sas_later=None, crypto_acl_later=None)
    found = diagnose(view)
    assert codes(found) == [Code.TUNNEL_HEALTHY.value]
    assert found[0].detail["sampled_twice"] is False
    assert found[0].severity is Severity.OK


def test_commands_skipped_for_an_underivable_variable_are_one_finding_per_device() -> None:
    """Five commands skipped because no crypto map entry names the peer are one gap, not
    five; a refused command beside them keeps its own finding."""
    why = "no crypto map entry names the peer 10.2.2.1"
    skipped = tuple(
        CommandProblem(
            command=command,
            outcome="missing",
            raw="",
            reason=f"{variable}: {why}" if variable != "crypto_acl" else why,
            section=section,
            variables=(variable,),
        )
        for command, section, variable in (
            ("show access-lists {crypto_acl}", "crypto_acl", "crypto_acl"),
            ("show ip route {remote_lan}", "route_remote_lan", "remote_lan"),
            ("show interfaces {crypto_interface}", "crypto_interface", "crypto_interface"),
        )
    )
    refused = problem("show crypto engine connections active", "engine_connections")
    view = local(healthy_view(), engine=None, engine_later=None, problems=(*skipped, refused))
    found = [f for f in diagnose(view) if f.code is Code.INSUFFICIENT_DATA]
    assert len(found) == 2
    grouped = next(f for f in found if f.detail.get("outcome") == "skipped")
    single = next(f for f in found if f is not grouped)
    assert grouped.stage is Stage.TRAFFIC  # the earliest stage it leaves unjudged
    assert grouped.detail["unjudged_stages"] == ["traffic", "routing"]
    assert [c["command"] for c in grouped.detail["commands"]] == [p.command for p in skipped]
    assert why in grouped.summary and "3 plan commands skipped" in grouped.summary
    assert grouped.severity is Severity.INFO and grouped.reference == "traffic.acl"
    assert single.detail["command"] == refused.command and single.stage is Stage.DATA
