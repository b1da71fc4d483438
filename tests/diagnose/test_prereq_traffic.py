"""Rules of the prereq and traffic stages on hand-built state."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Severity, Stage
from ipsec_doctor.model.state import IkePolicy, InterfaceStatus, RouteLookup

from .builders import (
    LAN_IF,
    R1_LAN,
    R2_LAN,
    R2_WAN,
    WAN_IF,
    acl,
    codes,
    ev,
    healthy_view,
    local,
    log,
    one_ended,
    phase1_down,
    remote,
)


def no_sas(view):  # type: ignore[no-untyped-def]
    view = local(view, ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())
    if view.remote is not None:
        view = remote(view, ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())
    return view


def test_isakmp_disabled_from_config() -> None:
    view = healthy_view()
    cfg = replace(
        view.local.config,
        isakmp_enabled=False,
        sources=(ev("show running-config", "no crypto isakmp enable", 12),),
    )
    findings = diagnose(no_sas(local(view, config=cfg)))
    first = findings[0]
    assert first.code is Code.ISAKMP_DISABLED
    assert first.device == "R1" and first.fix_device == "R1"
    assert "crypto isakmp enable" in first.fix
    assert first.evidence[0].line == "no crypto isakmp enable"
    assert first.evidence[0].device == "R1"
    assert first.reference == "prereq.isakmp"


def test_isakmp_off_log_alone_and_its_later_on() -> None:
    view = no_sas(one_ended())
    cfg = replace(view.local.config, isakmp_enabled=None)
    off = log(Event.ISAKMP_OFF, line="%CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF", line_no=3)
    assert diagnose(local(view, config=cfg, logs=(off,)))[0].code is Code.ISAKMP_DISABLED
    on = log(Event.ISAKMP_ON, line="%CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is ON", line_no=4)
    assert Code.ISAKMP_DISABLED.value not in codes(
        diagnose(local(view, config=cfg, logs=(off, on)))
    )


def test_isakmp_off_logged_because_no_map_is_applied_is_not_disabled() -> None:
    view = no_sas(healthy_view())
    entry = replace(view.local.crypto_maps[0], interfaces=())
    cfg = replace(view.local.config, isakmp_enabled=None, crypto_map_interfaces={})
    off = log(Event.ISAKMP_OFF, line="%CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF")
    found = diagnose(local(view, crypto_maps=(entry,), config=cfg, logs=(off,)))
    assert found[0].code is Code.CRYPTO_MAP_NOT_APPLIED
    assert Code.ISAKMP_DISABLED.value not in codes(found)


def test_old_isakmp_off_is_context_only() -> None:
    from datetime import timedelta

    view = no_sas(one_ended())
    cfg = replace(view.local.config, isakmp_enabled=None)
    old = log(Event.ISAKMP_OFF, age=timedelta(days=2))
    assert Code.ISAKMP_DISABLED.value not in codes(diagnose(local(view, config=cfg, logs=(old,))))


def test_established_sa_overrides_isakmp_off() -> None:
    view = healthy_view()
    cfg = replace(view.local.config, isakmp_enabled=False)
    assert codes(diagnose(local(view, config=cfg)))[0] != Code.ISAKMP_DISABLED.value


def test_no_isakmp_policy_copies_the_peers_policy() -> None:
    view = phase1_down(healthy_view())
    default = IkePolicy(
        65507,
        "3des",
        "sha",
        "pre-share",
        2,
        86400,
        is_default=True,
        source=ev("show crypto isakmp policy", "Default protection suite", 1),
    )
    found = diagnose(local(view, ike_policies=(default,)))
    assert found[0].code is Code.NO_ISAKMP_POLICY
    assert found[0].stage is Stage.PREREQ
    assert "encryption aes 256" in found[0].fix and "group 14" in found[0].fix
    # the proposal mismatch it causes is kept, after it, naming the attributes
    proposal = next(f for f in found if f.code is Code.PHASE1_PROPOSAL_MISMATCH)
    assert set(proposal.detail["differing"]) >= {"encryption", "hash", "group"}
    assert proposal.fix_device == "R1"  # R2's policy is the stronger one


def test_crypto_map_not_applied() -> None:
    view = no_sas(healthy_view())
    entry = replace(view.local.crypto_maps[0], interfaces=())
    cfg = replace(view.local.config, crypto_map_interfaces={})
    found = diagnose(local(view, crypto_maps=(entry,), config=cfg))
    first = found[0]
    assert first.code is Code.CRYPTO_MAP_NOT_APPLIED
    assert first.fix == f"interface {WAN_IF}\n crypto map VPNMAP"
    assert Code.PHASE1_NO_RESPONSE.value not in codes(found)


def test_strongswan_has_no_interface_binding() -> None:
    view = one_ended()
    entry = replace(view.local.crypto_maps[0], interfaces=())
    cfg = replace(view.local.config, crypto_map_interfaces={})
    state = replace(view.local, platform="strongswan", crypto_maps=(entry,), config=cfg)
    assert codes(diagnose(replace(view, local=state)))[0] == Code.TUNNEL_HEALTHY.value


def test_crypto_map_wrong_interface_for_peer_route() -> None:
    view = no_sas(healthy_view())
    route = replace(view.local.routes["route_peer"], interfaces=("GigabitEthernet0/2",))
    found = diagnose(local(view, routes={**view.local.routes, "route_peer": route}))
    assert found[0].code is Code.CRYPTO_MAP_WRONG_INTERFACE
    assert "interface GigabitEthernet0/2\n crypto map VPNMAP" in found[0].fix
    assert found[0].detail["wrong_routes"][0]["lookup"] == "route_peer"


def test_crypto_map_wrong_interface_names_interfaces_loosely() -> None:
    view = healthy_view()
    route = replace(view.local.routes["route_peer"], interfaces=("Gi0/0",))
    assert codes(diagnose(local(view, routes={**view.local.routes, "route_peer": route})))[0] == (
        Code.TUNNEL_HEALTHY.value
    )


def test_remote_lan_routed_away_is_a_traffic_failure() -> None:
    view = no_sas(healthy_view())
    route = replace(view.local.routes["route_remote_lan"], interfaces=("GigabitEthernet0/2",))
    found = diagnose(local(view, routes={**view.local.routes, "route_remote_lan": route}))
    assert found[0].code is Code.CRYPTO_MAP_WRONG_INTERFACE
    assert found[0].stage is Stage.TRAFFIC
    assert Code.NO_ROUTE_TO_REMOTE_LAN.value not in codes(found)


def test_no_interesting_traffic_no_matches() -> None:
    view = no_sas(healthy_view())
    view = local(
        view,
        crypto_acl=(acl(R1_LAN, R2_LAN, None),),
        crypto_acl_later=(acl(R1_LAN, R2_LAN, None, sample=2),),
    )
    view = remote(
        view,
        crypto_acl=(acl(R2_LAN, R1_LAN, None),),
        crypto_acl_later=(acl(R2_LAN, R1_LAN, None, sample=2),),
    )
    found = diagnose(view)
    assert found[0].code is Code.NO_INTERESTING_TRAFFIC
    assert found[0].severity is Severity.WARNING
    assert "ping 192.168.2.1 source GigabitEthernet0/1" in found[0].fix
    assert Code.TUNNEL_HEALTHY.value not in codes(found)


def test_no_interesting_traffic_counters_not_increasing() -> None:
    view = no_sas(one_ended())
    view = local(
        view,
        crypto_acl=(acl(R1_LAN, R2_LAN, 12),),
        crypto_acl_later=(acl(R1_LAN, R2_LAN, 12, sample=2),),
    )
    found = diagnose(view)
    assert found[0].code is Code.NO_INTERESTING_TRAFFIC
    assert found[0].detail["matches_first"] == 12 and found[0].detail["matches_later"] == 12


def test_rising_acl_hits_are_interesting_traffic() -> None:
    view = no_sas(one_ended())
    assert Code.NO_INTERESTING_TRAFFIC.value not in codes(diagnose(view))


def test_sa_in_any_state_means_traffic_was_seen() -> None:
    view = phase1_down(healthy_view())
    view = local(view, crypto_acl=(acl(R1_LAN, R2_LAN, None),), crypto_acl_later=None)
    assert Code.NO_INTERESTING_TRAFFIC.value not in codes(diagnose(view))


def test_source_interface_down_admin() -> None:
    view = no_sas(healthy_view())
    iface = replace(
        view.local.interfaces[LAN_IF], status=InterfaceStatus.ADMIN_DOWN, protocol_up=False
    )
    found = diagnose(local(view, interfaces={**view.local.interfaces, LAN_IF: iface}))
    assert found[0].code is Code.SOURCE_INTERFACE_DOWN
    assert found[0].fix == f"interface {LAN_IF}\n no shutdown"


def test_source_interface_down_when_its_connected_route_is_gone() -> None:
    view = no_sas(healthy_view())
    iface = replace(
        view.local.interfaces[LAN_IF], status=InterfaceStatus.ADMIN_DOWN, protocol_up=False
    )
    gone = RouteLookup(
        query="192.168.1.0",
        found=False,
        source=ev("show ip route 192.168.1.0", "% Network not in table", 1),
    )
    view = local(
        view,
        interfaces={**view.local.interfaces, LAN_IF: iface},
        routes={**view.local.routes, "route_local_lan": gone},
    )
    found = diagnose(view)
    assert found[0].code is Code.SOURCE_INTERFACE_DOWN
    assert found[0].detail["interface"] == LAN_IF


def test_local_without_entry_for_the_peer() -> None:
    view = one_ended()
    other = replace(view.local.crypto_maps[0], peers=(ip_address("10.9.9.9"),))
    cfg = replace(view.local.config, psk_peers=(ip_address("10.9.9.9"),))
    found = diagnose(
        local(
            view,
            crypto_maps=(other,),
            config=cfg,
            ike_sas=(),
            ike_sas_later=(),
            ipsec_sas=(),
            ipsec_sas_later=(),
        )
    )
    assert found[0].code is Code.PEER_NOT_FOUND
    assert found[0].stage is Stage.TRAFFIC
    assert f"set peer {R2_WAN}" in found[0].fix


def test_idle_tunnel_isakmp_sa_left_ipsec_expired() -> None:
    from .builders import phase2_down

    view = phase2_down(one_ended())
    view = local(
        view,
        crypto_acl=(acl(R1_LAN, R2_LAN, 7),),
        crypto_acl_later=(acl(R1_LAN, R2_LAN, 7, sample=2),),
    )
    assert codes(diagnose(view)) == [Code.NO_INTERESTING_TRAFFIC.value]


def test_negotiation_messages_mean_traffic_was_seen() -> None:
    from .builders import phase2_down

    view = phase2_down(one_ended())
    view = local(
        view,
        crypto_acl=(acl(R1_LAN, R2_LAN, 7),),
        crypto_acl_later=(acl(R1_LAN, R2_LAN, 7, sample=2),),
        logs=(
            log(
                Event.INVALID_LOCAL_ADDRESS,
                None,
                "invalid local address 10.1.3.1",
                local="10.1.3.1",
            ),
        ),
    )
    assert Code.NO_INTERESTING_TRAFFIC.value not in codes(diagnose(view))


def test_phase2_down_without_explanation_is_a_warning_blind_spot() -> None:
    from .builders import phase2_down

    found = diagnose(phase2_down(one_ended()))
    assert codes(found) == [Code.INSUFFICIENT_DATA.value]
    assert found[0].severity is Severity.WARNING and found[0].stage is Stage.IPSEC
