"""Stage ``traffic``: is interesting traffic seen and sent to the crypto map?

Guide, "Is the router receiving and recognizing interesting traffic?": the crypto ACL counts
hits, the source interface is up, the traffic is routed to the interface that carries the
crypto map, and the map is applied there.
"""

from __future__ import annotations

from typing import Any

from ipsec_doctor.diagnose.compare import cidr, iface_key, ios_wildcard, same_interface
from ipsec_doctor.diagnose.context import End, Tunnel
from ipsec_doctor.diagnose.fixes import entry_names, render
from ipsec_doctor.diagnose.rules.ike import misaddressed_entry
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Finding, Stage
from ipsec_doctor.model.state import (
    AclEntry,
    CryptoMapEntry,
    Evidence,
    IkeStatus,
    Interface,
    InterfaceStatus,
    RuleAction,
)

#: Messages that prove IKE or IPsec negotiation was attempted (so traffic was seen somewhere).
NEGOTIATION_EVENTS = frozenset(
    {
        Event.PHASE1_RETRANSMIT,
        Event.PHASE1_NO_RESPONSE,
        Event.PHASE1_PROPOSAL_REJECTED,
        Event.PHASE1_MODE_FAILURE,
        Event.PSK_MISSING,
        Event.AUTH_FAILED,
        Event.PEER_ADDRESS_MISMATCH,
        Event.PHASE2_TRANSFORM_REJECTED,
        Event.PHASE2_PROXY_REJECTED,
        Event.PHASE2_POLICY_INVALIDATED,
        Event.PHASE2_PROPOSAL_REJECTED,
        Event.PFS_MISMATCH,
        Event.INVALID_LOCAL_ADDRESS,
        Event.PEER_NOT_FOUND,
        Event.IDENTITY_MISMATCH,
    }
)


def is_route_based(end: End, interfaces: list[str]) -> bool:
    """Tunnel protection on a tunnel interface (VTI) rather than a crypto map on the WAN."""
    flag = end.state.extras.get("route_based")
    if isinstance(flag, bool):
        return flag
    return bool(interfaces) and all(iface_key(i).startswith(("tu", "vt")) for i in interfaces)


def _suggested_interface(end: End) -> str | None:
    route = end.route("route_peer")
    if route is not None and route.found and route.interfaces:
        return route.interfaces[0]
    return None


def crypto_map_not_applied(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        if not end.binds_interfaces or end.state.crypto_maps is None or end.has_ipsec:
            continue
        entries = end.entries
        if not entries or any(end.map_interfaces(e) for e in entries):
            continue
        entry = entries[0]
        interface = _suggested_interface(end)
        out.append(
            t.finding(
                Code.CRYPTO_MAP_NOT_APPLIED,
                end,
                f"{end.name}: crypto map {entry.name} (entry {entry.sequence} for "
                f"{end.peer_label}) is applied to no interface, so nothing is encrypted "
                "and no IKE is started or answered for it",
                evidence=end.evs([e.source for e in entries]),
                fix=render(
                    "CRYPTO_MAP_NOT_APPLIED",
                    end.platform,
                    interface=interface,
                    map_name=entry.name,
                    seq=entry.sequence,
                    peer=end.peer_label,
                ),
                fix_device=end.name,
                detail={
                    "crypto_map": entry.name,
                    "sequence": entry.sequence,
                    "suggested_interface": interface or "",
                },
            )
        )
    return out


def _traffic_reaches_map(end: End) -> bool:
    """Outbound packets are being encrypted (encaps moving), so the route does lead to the map."""
    first, later = end.ipsec_sas(), end.ipsec_sas(later=True)
    if not first:
        return False
    total = sum(sa.encaps for sa in first)
    if later:
        return sum(sa.encaps for sa in later) > total
    return total > 0


def crypto_map_wrong_interface(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        if not end.binds_interfaces or not end.entries:
            continue
        map_ifaces = end.peer_map_interfaces()
        if not map_ifaces:
            continue  # CRYPTO_MAP_NOT_APPLIED's case
        entry = end.entries[0]
        checks = [("route_remote_lan", "the remote LAN")]
        if not is_route_based(end, map_ifaces):
            checks.insert(0, ("route_peer", "the peer"))
        wrong: list[tuple[str, str, list[str]]] = []
        evidence: list[Evidence | None] = []
        for key, what in checks:
            route = end.route(key)
            if route is None or not route.found or not route.interfaces:
                continue
            if any(same_interface(i, m) for i in route.interfaces for m in map_ifaces):
                continue
            if key == "route_remote_lan" and _traffic_reaches_map(end):
                continue
            wrong.append((key, what, list(route.interfaces)))
            evidence.append(end.ev(route.source))
        if not wrong:
            continue
        evidence.append(end.ev(entry.source))
        for name in map_ifaces:
            iface = end.interface(name)
            evidence.append(end.ev(iface.source if iface else None))
        key, what, egress = wrong[0]
        remote_lan = entry.remote_selectors[0] if entry.remote_selectors else None
        target = end.peer_label if key == "route_peer" else cidr(remote_lan)
        out.append(
            t.finding(
                Code.CRYPTO_MAP_WRONG_INTERFACE,
                end,
                f"{end.name}: traffic to {what} ({target}) leaves via {', '.join(egress)}, "
                f"but crypto map {entry.name} is on {', '.join(map_ifaces)}, so it is never "
                "encrypted",
                evidence=evidence,
                fix=render(
                    "CRYPTO_MAP_WRONG_INTERFACE",
                    end.platform,
                    egress=egress[0],
                    map_name=entry.name,
                    map_interface=map_ifaces[0],
                    target=target,
                    target_ios=ios_wildcard(remote_lan)
                    if key != "route_peer"
                    else f"host {end.peer_label}",
                    target_route=_route_target(end, key, remote_lan),
                ),
                fix_device=end.name,
                detail={
                    "wrong_routes": [{"lookup": k, "towards": w, "egress": e} for k, w, e in wrong],
                    "crypto_map_interfaces": map_ifaces,
                },
            )
        )
    return out


def _route_target(end: End, key: str, remote_lan: object) -> str:
    if key == "route_peer" and end.peer is not None:
        return f"{end.peer} 255.255.255.255"
    net = remote_lan
    if net is None:
        return "<remote-lan> <mask>"
    text = ios_wildcard(net)  # type: ignore[arg-type]
    if text.startswith("host "):
        return f"{text[5:]} 255.255.255.255"
    network = getattr(net, "network_address", None)
    mask = getattr(net, "netmask", None)
    return f"{network} {mask}"


def crypto_acl_lines(end: End, entry: CryptoMapEntry, later: bool = False) -> list[AclEntry] | None:
    """The permit lines of ``entry``'s match ACL (None when the ACL output is unknown)."""
    acl = end.state.crypto_acl_later if later else end.state.crypto_acl
    if acl is None:
        return None
    return [a for a in acl if a.acl == entry.acl and a.action is RuleAction.PERMIT]


def _hits(lines: list[AclEntry]) -> int:
    return sum(a.matches or 0 for a in lines)


def no_interesting_traffic(t: Tunnel) -> list[Finding]:
    ends = t.ends
    negotiating = any(
        sa.status is not IkeStatus.ESTABLISHED for end in ends for sa in end.ike_all()
    )
    attempts = any(e.event in NEGOTIATION_EVENTS for end in ends for e in end.recent)
    if negotiating or attempts or any(end.has_ipsec for end in ends):
        # IPsec SAs, or phase 1 being negotiated, mean traffic triggered IKE (or the peer did);
        # an established ISAKMP SA alone is an idle tunnel whose IPsec SAs have expired
        return []
    judged: list[tuple[End, CryptoMapEntry, int, int | None, list[AclEntry]]] = []
    for end in ends:
        if not end.entries:
            continue
        entry = end.entries[0]
        first = crypto_acl_lines(end, entry)
        if not first:
            continue
        later = crypto_acl_lines(end, entry, later=True)
        before, after = _hits(first), (None if not later else _hits(later))
        if (after is not None and after > before) or (after is None and before > 0):
            return []  # this end sees interesting traffic: something else is wrong
        judged.append((end, entry, before, after, first + (later or [])))
    if not judged or judged[0][0] is not t.local:
        return []  # our end's crypto ACL decides; the remote's alone says nothing
    end, entry, before, after, _ = judged[0]
    counted = f"{before} -> {after}" if after is not None else f"{before}"
    why = "no new matches between the two samples" if after is not None and before else "no matches"
    local_lan = entry.local_selectors[0] if entry.local_selectors else None
    remote_lan = entry.remote_selectors[0] if entry.remote_selectors else None
    evidence: list[Evidence | None] = []
    for e, _, _, _, ls in judged:
        evidence += [e.ev(a.source) for a in ls]
    return [
        t.finding(
            Code.NO_INTERESTING_TRAFFIC,
            end,
            f"{end.name}: crypto ACL {entry.acl} ({end.entry_label(entry)}, "
            f"peer {end.peer_label}) counts {why} ({counted}) and no SA exists, so no tunnel "
            "is ever requested",
            evidence=evidence,
            fix=render(
                "NO_INTERESTING_TRAFFIC",
                end.platform,
                names=entry_names([entry]),
                acl=entry.acl,
                local_lan=ios_wildcard(local_lan),
                remote_lan=ios_wildcard(remote_lan),
                remote_host=_first_host(remote_lan),
                source_interface=_source_interfaces(end)[0] if _source_interfaces(end) else None,
            ),
            fix_device=end.name,
            detail={
                "acl": entry.acl,
                "matches_first": before,
                "matches_later": after,
                "ends": [e.name for e, *_ in judged],
            },
        )
    ]


def _first_host(net: object) -> str | None:
    hosts = getattr(net, "hosts", None)
    if hosts is None:
        return None
    for host in hosts():
        return str(host)
    return str(getattr(net, "network_address", "")) or None


def _source_interfaces(end: End) -> list[str]:
    named = end.state.extras.get("source_interface")
    if isinstance(named, str) and named:
        return [named]
    route = end.route("route_local_lan")
    if route is not None and route.found:
        return list(route.interfaces)
    return []


def _tunnel_shut(t: Tunnel, end: End) -> list[Finding]:
    """The protected tunnel interface of a route-based tunnel is administratively down: nothing
    is routed into it and IOS negotiates nothing for it. (A VTI's line protocol alone being down
    follows from missing IPsec SAs, so only a shutdown is a cause.)"""
    name = end.state.extras.get("tunnel_interface")
    if end.state.extras.get("route_based") is not True or not isinstance(name, str):
        return []
    iface = end.interface(name)
    if iface is None or iface.status is not InterfaceStatus.ADMIN_DOWN:
        return []
    config = end.state.config
    tunnel = config.tunnel(name) if config is not None else None
    return [
        _interface_down(
            t,
            end,
            iface,
            f"{end.name}: {iface.name}, the protected tunnel interface towards {end.peer_label}, "
            "is administratively down: nothing is routed into it and no IKE is negotiated for it",
            evidence=[end.ev(iface.source), end.ev(tunnel.evidence if tunnel else None)],
            tunnel_interface=True,
        )
    ]


def _interface_down(
    t: Tunnel,
    end: End,
    iface: Interface,
    summary: str,
    *,
    evidence: list[Evidence | None],
    **detail: Any,
) -> Finding:
    """SOURCE_INTERFACE_DOWN for ``iface`` of ``end``: the fix brings it up (``no shutdown``
    when it is administratively down); ``detail`` adds to its interface, status and protocol."""
    admin = iface.status is InterfaceStatus.ADMIN_DOWN
    return t.finding(
        Code.SOURCE_INTERFACE_DOWN,
        end,
        summary,
        evidence=evidence,
        fix=render(
            "SOURCE_INTERFACE_DOWN/admin" if admin else "SOURCE_INTERFACE_DOWN",
            end.platform,
            interface=iface.name,
        ),
        fix_device=end.name,
        detail={
            "interface": iface.name,
            "status": iface.status.value,
            "protocol_up": iface.protocol_up,
            **detail,
        },
    )


def source_interface_down(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        out += _tunnel_shut(t, end)
        route = end.route("route_local_lan")
        for name in _source_interfaces(end):
            iface = end.interface(name)
            if iface is None or iface.is_up:
                continue
            out.append(
                _interface_down(
                    t,
                    end,
                    iface,
                    f"{end.name}: {iface.name}, which sources the traffic protected for "
                    f"{end.peer_label}, is {iface.status.value}"
                    + ("" if iface.protocol_up is not False else " (line protocol down)"),
                    evidence=[end.ev(iface.source), end.ev(route.source if route else None)],
                )
            )
        if route is not None and not route.found and end.entries and end.state.config:
            named = {f.detail.get("interface") for f in out if f.device == end.name}
            out += [f for f in _lan_route_missing(t, end) if f.detail["interface"] not in named]
    return out


def _lan_route_missing(t: Tunnel, end: End) -> list[Finding]:
    """No route to our own LAN while an interface is configured in it: that interface is down."""
    entry = end.entries[0]
    if not entry.local_selectors or end.state.config is None:
        return []
    lan = entry.local_selectors[0]
    for name, addr in end.state.config.interface_addresses.items():
        if addr.network.version == lan.version and addr.network.overlaps(lan):
            route = end.route("route_local_lan")
            iface = end.interface(name)
            if iface is not None and iface.is_up:
                return []  # up, yet no route: not an interface problem
            if iface is not None:
                return [
                    _interface_down(
                        t,
                        end,
                        iface,
                        f"{end.name}: {iface.name}, in the protected LAN {lan} for "
                        f"{end.peer_label}, is {iface.status.value} (its connected route is "
                        "gone too)",
                        evidence=[end.ev(iface.source), end.ev(route.source if route else None)],
                        local_lan=str(lan),
                    )
                ]
            return [
                t.finding(
                    Code.SOURCE_INTERFACE_DOWN,
                    end,
                    f"{end.name}: no route to its own LAN {lan} although {name} is configured "
                    f"in it ({addr}); {name} is down, so traffic for {end.peer_label} has no "
                    "source",
                    evidence=[
                        end.ev(route.source if route else None),
                        *end.config_evidence(str(addr.ip)),
                    ],
                    fix=render("SOURCE_INTERFACE_DOWN", end.platform, interface=name),
                    fix_device=end.name,
                    detail={
                        "interface": name,
                        "status": "down (connected route missing)",
                        "local_lan": str(lan),
                    },
                )
            ]
    return []


def local_peer_not_configured(t: Tunnel) -> list[Finding]:
    """The local device has crypto maps but none names the peer: nothing will ever be protected.

    Reported as PEER_NOT_FOUND at the ``traffic`` stage (the stage it breaks): without an entry
    no traffic is interesting and no IKE starts, so it must not hide behind phase-1 masking.
    """
    end = t.local
    maps = end.state.crypto_maps
    if maps is None or not maps or end.peer is None or end.entries:
        return []
    if any(not e.peers for e in maps):
        return []  # a dynamic map entry may accept the peer
    if misaddressed_entry(t) is not None:
        return []  # the entry exists but names a wrong address: PEER_ADDRESS_MISMATCH
    return [
        t.finding(
            Code.PEER_NOT_FOUND,
            end,
            f"{end.name}: no crypto map entry names the peer {end.peer_label} "
            f"(entries name {', '.join(sorted({str(p) for e in maps for p in e.peers}))})",
            evidence=end.evs(e.source for e in maps),
            fix=render(
                "PEER_NOT_FOUND",
                end.platform,
                map_name=maps[0].name,
                seq=max(e.sequence for e in maps) + 10,
                peer=end.peer_label,
            ),
            fix_device=end.name,
            detail={"configured_peers": sorted({str(p) for e in maps for p in e.peers})},
            stage=Stage.TRAFFIC,
        )
    ]


RULES = [
    local_peer_not_configured,
    crypto_map_not_applied,
    source_interface_down,
    crypto_map_wrong_interface,
    no_interesting_traffic,
]
