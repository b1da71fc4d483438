"""Routes in the right table: a default route covers only lookups of its own VRF and family.

The engineer's reading: the peer is unreachable when the table IKE uses (the front-door VRF,
or the IPv6 table for an IPv6 peer) has neither a route to it nor a default route; a default
route of the global IPv4 table says nothing about that table. The fix adds the route where it
is missing.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code
from ipsec_doctor.model.state import IkeStatus, RouteLookup, TunnelView

from .builders import (
    R2_WAN,
    WAN_IF,
    codes,
    ev,
    healthy_view,
    ike_sa,
    local,
    log,
    one_ended,
    phase1_down,
)

RETRANSMIT = log(Event.PHASE1_RETRANSMIT, line="retransmitting phase 1 MM_NO_STATE...")


def _default(vrf: str = "", family: int = 4) -> RouteLookup:
    prefix = ip_network("0.0.0.0/0" if family == 4 else "::/0")
    command = "show ip route" if family == 4 else "show ipv6 route"
    where = f" vrf {vrf}" if vrf else ""
    query = "0.0.0.0" if family == 4 else "::"
    return RouteLookup(
        query=query,
        found=True,
        prefix=prefix,
        interfaces=(WAN_IF,),
        is_default=True,
        vrf=vrf,
        source=ev(f"{command}{where} {query}", "Routing entry for 0.0.0.0 0.0.0.0, supernet"),
    )


def _no_route_in_inet() -> RouteLookup:
    return RouteLookup(
        query=str(R2_WAN),
        found=False,
        vrf="INET",
        source=ev(f"show ip route vrf INET {R2_WAN}", "% Subnet not in table", 3),
    )


def test_a_front_door_vrf_without_the_route_is_no_route_to_peer() -> None:
    view = phase1_down(healthy_view())
    # the global table's default route is no way to the peer: IKE uses VRF INET
    routes = {**view.local.routes, "route_peer": _no_route_in_inet(), "route_default": _default()}
    found = diagnose(local(view, routes=routes, logs=(RETRANSMIT,)))
    assert codes(found)[0] == Code.NO_ROUTE_TO_PEER.value
    assert Code.PHASE1_NO_RESPONSE.value not in codes(found)
    first = found[0]
    assert "front-door VRF INET has no route to the peer 10.2.2.1" in first.summary
    assert [e.line for e in first.evidence] == ["% Subnet not in table"]
    assert first.evidence[0].command == "show ip route vrf INET 10.2.2.1"
    assert "ip route vrf INET 10.2.2.1 255.255.255.255 <next-hop>" in first.fix
    assert first.detail["vrf"] == "INET"


def test_a_default_route_in_the_front_door_vrf_covers_the_peer() -> None:
    view = phase1_down(healthy_view())
    routes = {
        **view.local.routes,
        "route_peer": _no_route_in_inet(),
        "route_default": _default("INET"),
    }
    found = diagnose(local(view, routes=routes, logs=(RETRANSMIT,)))
    assert Code.NO_ROUTE_TO_PEER.value not in codes(found)
    assert codes(found)[0] == Code.PHASE1_NO_RESPONSE.value


def test_a_healthy_tunnel_reached_by_the_front_door_default_route_is_healthy() -> None:
    # the usual front-door VRF: INET has only a default route to the ISP, so
    # `show ip route vrf INET PEER` says "% Subnet not in table" while IKE and ESP flow
    view = healthy_view()
    routes = {
        **view.local.routes,
        "route_peer": _no_route_in_inet(),
        "route_default": _default("INET"),
    }
    found = diagnose(local(view, routes=routes))
    assert codes(found) == [Code.TUNNEL_HEALTHY.value]


def test_a_missing_remote_lan_route_is_not_hidden_by_another_vrfs_default() -> None:
    view = healthy_view()
    gone = RouteLookup(
        query="192.168.2.0",
        found=False,
        source=ev("show ip route 192.168.2.0", "% Network not in table"),
    )
    inet_only = {**view.local.routes, "route_remote_lan": gone, "route_default": _default("INET")}
    assert Code.NO_ROUTE_TO_REMOTE_LAN.value in codes(diagnose(local(view, routes=inet_only)))
    global_default = {**inet_only, "route_default": _default()}
    assert Code.NO_ROUTE_TO_REMOTE_LAN.value not in codes(
        diagnose(local(view, routes=global_default))
    )


PEER6 = ip_address("2001:db8:30::1")
WAN6 = ip_address("2001:db8:10::1")


def _ipv6_view_phase1_down() -> TunnelView:
    """R1's crypto map entry names the IPv6 peer; phase 1 is stuck in MM_NO_STATE."""
    view = one_ended()
    (entry,) = view.local.crypto_maps or ()
    assert view.local.config is not None
    sa = ike_sa(PEER6, WAN6, state="MM_NO_STATE", status=IkeStatus.NO_STATE, conn_id=0)
    sa2 = ike_sa(PEER6, WAN6, "MM_NO_STATE", IkeStatus.NO_STATE, conn_id=0, sample=2)
    r1 = replace(
        view.local,
        crypto_maps=(replace(entry, peers=(PEER6,)),),
        config=replace(view.local.config, psk_peers=(PEER6,)),
        ike_sas=(sa,),
        ike_sas_later=(sa2,),
        ipsec_sas=(),
        ipsec_sas_later=(),
    )
    return TunnelView(local=r1, peer=PEER6)


def test_an_ipv6_peer_without_a_route_is_no_route_to_peer_despite_an_ipv4_default() -> None:
    view = _ipv6_view_phase1_down()
    not_found = RouteLookup(
        query="2001:DB8:30::1",
        found=False,
        source=ev("show ipv6 route 2001:DB8:30::1", "% Route not found"),
    )
    routes = {**view.local.routes, "route_peer": not_found, "route_default": _default()}
    found = diagnose(local(view, routes=routes, logs=(RETRANSMIT,)))
    assert codes(found)[0] == Code.NO_ROUTE_TO_PEER.value
    assert found[0].evidence[0].line == "% Route not found"
    assert found[0].fix.strip() == "ipv6 route 2001:db8:30::1/128 <next-hop>"


def test_an_ipv6_default_route_covers_an_ipv6_peer() -> None:
    view = _ipv6_view_phase1_down()
    not_found = RouteLookup(
        query="2001:DB8:30::1",
        found=False,
        source=ev("show ipv6 route 2001:DB8:30::1", "% Route not found"),
    )
    routes = {**view.local.routes, "route_peer": not_found, "route_default": _default(family=6)}
    found = diagnose(local(view, routes=routes, logs=(RETRANSMIT,)))
    assert Code.NO_ROUTE_TO_PEER.value not in codes(found)
