"""Stage ``routing``: decrypted traffic and return traffic have a route.

A route to the remote LAN that points away from the crypto-map interface is a ``traffic``
failure (CRYPTO_MAP_WRONG_INTERFACE); a route that is missing altogether is
NO_ROUTE_TO_REMOTE_LAN, and in a VRF (or with VRF route trouble logged) VRF_ROUTE_MISSING.
"""

from __future__ import annotations

from ipsec_doctor.diagnose.compare import cidr
from ipsec_doctor.diagnose.context import Tunnel, first
from ipsec_doctor.diagnose.fixes import render
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Finding


def no_route_to_remote_lan(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        route = end.route("route_remote_lan")
        if route is None or route.found or route.vrf:
            continue
        if end.has_default_route(route):
            continue  # `show ip route X` ignores the default route that covers X
        entry = end.entries[0] if end.entries else None
        lan = entry.remote_selectors[0] if entry and entry.remote_selectors else None
        interface = first(end.peer_map_interfaces())
        sas = (
            "while its SAs are up"
            if end.has_ipsec
            else "so its traffic is dropped before the tunnel"
        )
        out.append(
            t.finding(
                Code.NO_ROUTE_TO_REMOTE_LAN,
                end,
                f"{end.name}: no route to the remote LAN {route.query or cidr(lan)} behind "
                f"{end.peer_label} {sas}",
                evidence=[end.ev(route.source)],
                fix=render(
                    "NO_ROUTE_TO_REMOTE_LAN",
                    end.platform,
                    network=str(lan.network_address) if lan else None,
                    mask=str(lan.netmask) if lan else None,
                    prefix=cidr(lan) if lan else None,
                    interface=interface,
                ),
                fix_device=end.name,
                detail={"query": route.query, "sas_up": end.has_ipsec},
            )
        )
    return out


def vrf_route_missing(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        events = end.events(Event.ROUTE_LIMIT_EXCEEDED, Event.ROUTE_TARGET_DENIED)
        missing = [
            (key, r)
            for key, r in end.state.routes.items()
            if r.vrf
            and not r.found
            and key in ("route_peer", "route_remote_lan")
            and not end.has_default_route(r)  # `show ip route vrf V X` ignores V's default
        ]
        if not events and not missing:
            continue
        kinds = sorted({e.event for e in events})
        vrf = next((r.vrf for _, r in missing), "") or next(
            (e.detail.get("vrf", "") for e in events if e.detail.get("vrf")), ""
        )
        what = []
        if missing:
            what.append("no route for " + ", ".join(r.query for _, r in missing) + f" in VRF {vrf}")
        if Event.ROUTE_LIMIT_EXCEEDED in kinds:
            what.append("the VRF route limit was hit")
        if Event.ROUTE_TARGET_DENIED in kinds:
            what.append("BGP routes were denied (route-target / extended community)")
        out.append(
            t.finding(
                Code.VRF_ROUTE_MISSING,
                end,
                f"{end.name}: VRF routes for the tunnel with {end.peer_label} are missing: "
                + "; ".join(what),
                evidence=[
                    *end.evs(e.source for e in events),
                    *end.evs(r.source for _, r in missing),
                ],
                fix=render(
                    "VRF_ROUTE_MISSING/limit"
                    if Event.ROUTE_LIMIT_EXCEEDED in kinds
                    else "VRF_ROUTE_MISSING",
                    end.platform,
                    vrf=vrf or None,
                ),
                fix_device=end.name,
                detail={"events": kinds, "vrf": vrf, "lookups": [r.query for _, r in missing]},
            )
        )
    return out


RULES = [no_route_to_remote_lan, vrf_route_missing]
