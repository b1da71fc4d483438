"""Plan variables from a partially parsed device state (the collector asks between commands).

Contract:
- :func:`derive_variables` returns the plan variables it can compute for ``peer`` from what is
  already known, as strings ready to be put into a command; a variable it cannot derive is
  absent (the collector records that command as missing, with the reason).

  ============== ==========================================================================
  peer           the peer itself (always present)
  crypto_acl     the match-address ACL of the lowest-sequence crypto map entry naming the peer
  crypto_interface  the first interface that carries that crypto map (show crypto map, else
                 the running configuration); with no entry for the peer, the interface of a
                 dynamic entry (one naming no peer), through which any peer may connect
  local_lan      network address of the crypto ACL's first permit source (else the map's
                 selectors, else the IPsec SA's local ident)
  remote_lan     the same for the destination / remote ident
  source_interface  the interface ``routes["route_local_lan"]`` leaves through (the
                 connected interface of our protected LAN); when that route was read but
                 names no interface (a down LAN interface loses its connected route; a LAN
                 in a VRF is not in the global table), the interface whose configured
                 address lies in the local LAN
  fvrf           the front-door VRF: the routing table the tunnel's outer (IKE, ESP) packets
                 use, when it is not the global table (see :func:`front_door_vrf`); absent
                 for the global table and while unknown
  ipv6_peer      the peer, when it is an IPv6 address (the plan then uses ``show ipv6 ...``)
  ipv6_default   ``::/0``, when the peer is an IPv6 address (its default route)
  ============== ==========================================================================

  A route-based entry (a tunnel interface of ``state.config.tunnels`` whose destination is
  the peer, see :class:`~ipsec_doctor.model.state.TunnelConfig`) has no crypto ACL and any/any
  selectors: ``crypto_interface`` is the tunnel interface, ``remote_lan`` the first network
  its static routes send into the tunnel, and ``local_lan`` the network of the first
  addressed interface that is neither a tunnel, a loopback, the tunnel source nor the
  interface the peer is reached through (a heuristic: the configuration does not say which
  LAN the tunnel serves).
- :func:`front_door_vrf` names the VRF the tunnel to the peer is carried in: a route-based
  tunnel's ``tunnel vrf``; else the VRF (``ip vrf forwarding`` / ``vrf forwarding``) of the
  interface carrying the crypto map entry that names the peer (with none, a dynamic entry's);
  only when no such interface is known, the front-door VRF the IKE configuration ties the
  peer to (a ``crypto keyring ... vrf X`` key or an ISAKMP profile's ``match identity address
  A M X``, the narrowest range that holds the peer). "" is the global table (or unknown). An
  ISAKMP profile's ``vrf`` line is the *inside* VRF and never counts.
- :func:`device_features` tells which :class:`~ipsec_doctor.model.features.Feature` words the
  device has, from the running configuration (else, for ``crypto_map`` only, from ``show crypto
  map``); a word it cannot decide is absent from the result (unknown, so the plan runs the
  commands meant for it).
- It is pure: it reads the state and never raises on missing or odd data.
- Crypto map entries come from ``state.crypto_maps``, or, when that section is unknown, from
  ``state.extras["config_crypto_maps"]`` (the running configuration's crypto map entries, as
  :class:`~ipsec_doctor.model.state.CryptoMapEntry`), which the converters fill.
"""

from __future__ import annotations

import re
from ipaddress import ip_address

from ipsec_doctor.model.features import Feature
from ipsec_doctor.model.state import (
    CryptoMapEntry,
    DeviceState,
    IPAddress,
    IPInterface,
    IPNetwork,
    TunnelConfig,
)

# Sample interface names: "Tunnel0", "Virtual-Template1", "Virtual-Access3", "Loopback0"
_NOT_A_LAN = ("tunnel", "virtual-", "loopback", "null", "nve")


def _peer_address(peer: str) -> IPAddress | None:
    try:
        return ip_address(peer)
    except ValueError:
        return None


def _all_entries(state: DeviceState) -> list[CryptoMapEntry]:
    if state.crypto_maps is not None:
        return list(state.crypto_maps)
    config_maps = state.extras.get("config_crypto_maps", ())
    return [e for e in config_maps if isinstance(e, CryptoMapEntry)]


def _entries_for(state: DeviceState, peer: IPAddress) -> list[CryptoMapEntry]:
    entries = [e for e in _all_entries(state) if peer in e.peers]
    return sorted(entries, key=lambda e: (e.name, e.sequence))


def _dynamic_entries(state: DeviceState) -> list[CryptoMapEntry]:
    """Entries that name no peer (a dynamic map template): any peer may come in through them."""
    entries = [e for e in _all_entries(state) if not e.peers]
    return sorted(entries, key=lambda e: (e.name, e.sequence))


def _lans_from_acl(state: DeviceState, acl: str) -> tuple[IPNetwork | None, IPNetwork | None]:
    for entry in state.crypto_acl or ():
        if entry.acl == acl and entry.action.value == "permit":
            return entry.source_net, entry.destination_net
    return None, None


def derive_variables(state: DeviceState, peer: str) -> dict[str, str]:
    """The plan variables derivable for ``peer`` (see the module docstring)."""
    values: dict[str, str] = {"peer": peer}
    address = _peer_address(peer)
    if address is None:
        return values
    if address.version == 6:
        values["ipv6_peer"] = peer
        values["ipv6_default"] = "::/0"
    fvrf = front_door_vrf(state, peer)
    if fvrf:
        values["fvrf"] = fvrf
    entries = _entries_for(state, address)
    local: IPNetwork | None = None
    remote: IPNetwork | None = None
    tunnel = _tunnel_of(state, entries[0]) if entries else None
    if tunnel is not None:
        values["crypto_interface"] = tunnel.name
        if tunnel.routed:
            remote = tunnel.routed[0]
        local = _local_lan_guess(state, tunnel)
    elif entries:
        entry = entries[0]
        if entry.acl:
            values["crypto_acl"] = entry.acl
        interfaces = entry.interfaces
        if not interfaces and state.config is not None:
            interfaces = state.config.crypto_map_interfaces.get(entry.name, ())
        if interfaces:
            values["crypto_interface"] = interfaces[0]
        if entry.acl:
            local, remote = _lans_from_acl(state, entry.acl)
        if local is None and entry.local_selectors:
            local = entry.local_selectors[0]
        if remote is None and entry.remote_selectors:
            remote = entry.remote_selectors[0]
    else:
        for entry in _dynamic_entries(state):
            interfaces = entry.interfaces
            if not interfaces and state.config is not None:
                interfaces = state.config.crypto_map_interfaces.get(entry.name, ())
            if interfaces:
                values["crypto_interface"] = interfaces[0]
                break
    if tunnel is None and (local is None or remote is None):
        for sa in state.ipsec_sas_for(address) or ():
            if local is None:
                local = sa.local_selector
            if remote is None:
                remote = sa.remote_selector
            if local is not None and remote is not None:
                break
    if local is not None:
        values["local_lan"] = str(local.network_address)
    if remote is not None:
        values["remote_lan"] = str(remote.network_address)
    route = state.routes.get("route_local_lan")
    if route is not None and route.found and route.interfaces:
        values["source_interface"] = route.interfaces[0]
    elif local is not None and route is not None:
        # no usable route (a LAN interface that is down loses its connected route, a LAN in
        # a VRF is not in the global table): the interface whose address is in the LAN
        owner = _interface_in(state, local)
        if owner:
            values["source_interface"] = owner
    return values


def front_door_vrf(state: DeviceState, peer: str) -> str:
    """The VRF the tunnel to ``peer`` is carried in; "" for the global table or unknown (see
    the module docstring)."""
    address = _peer_address(peer)
    config = state.config
    if address is None or config is None:
        return ""
    entries = _entries_for(state, address)
    tunnel = _tunnel_of(state, entries[0]) if entries else None
    if tunnel is not None:
        return tunnel.tunnel_vrf
    # the entries naming the peer; with none, the dynamic entries any peer comes in through
    for entry in entries or _dynamic_entries(state):
        interfaces = entry.interfaces or config.crypto_map_interfaces.get(entry.name, ())
        for name in interfaces:
            return _vrf_of(config.interface_vrfs, name)
    covering = [(net, vrf) for net, vrf in config.front_door_vrfs if address in net]
    if not covering:
        return ""
    return max(covering, key=lambda item: item[0].prefixlen)[1]


def _vrf_of(vrfs: dict[str, str], interface: str) -> str:
    """The VRF of ``interface`` ("" for the global table), names compared the way IOS
    abbreviates them (``Gi0/0`` is ``GigabitEthernet0/0``)."""
    if interface in vrfs:
        return vrfs[interface]
    wanted = _short_name(interface)
    return next((vrf for name, vrf in vrfs.items() if _short_name(name) == wanted), "")


# Sample interface names: "GigabitEthernet0/0", "Gi0/0", "Port-channel1.100"
_NAME = re.compile(r"^([A-Za-z-]*)\s*(\d.*)?$")


def _short_name(name: str) -> str:
    """``GigabitEthernet0/0`` and ``Gi0/0`` -> ``gi0/0``."""
    match = _NAME.match(name.strip())
    if match is None or not match.group(2):
        return name.strip().lower()
    return match.group(1)[:2].lower() + match.group(2).lower()


def tunnel_of(state: DeviceState, entry: CryptoMapEntry) -> TunnelConfig | None:
    """The protected tunnel interface ``entry`` stands for (route-based), or None."""
    return _tunnel_of(state, entry)


def _tunnel_of(state: DeviceState, entry: CryptoMapEntry) -> TunnelConfig | None:
    if state.config is None or entry.acl:
        return None
    for name in entry.interfaces:
        tunnel = state.config.tunnel(name)
        if tunnel is not None and (tunnel.destination is None or tunnel.destination in entry.peers):
            return tunnel
    return None


def _local_lan_guess(state: DeviceState, tunnel: TunnelConfig) -> IPNetwork | None:
    """The network of the first addressed interface that could be the LAN behind ``tunnel``."""
    if state.config is None:
        return None
    source = tunnel.source.lower()
    route = state.routes.get("route_peer")
    hops = route.next_hops if route is not None else ()
    for name, address in state.config.interface_addresses.items():
        if name.lower().startswith(_NOT_A_LAN) or name.lower() == source:
            continue
        if str(address.ip) == tunnel.source or any(h in address.network for h in hops):
            continue
        if route is not None and any(i.lower() == name.lower() for i in route.interfaces):
            continue
        return address.network
    return None


def device_features(state: DeviceState) -> dict[str, bool]:
    """Feature word -> whether the device has it (see the module docstring); unknown: absent."""
    found: dict[str, bool] = {}
    cfg = state.config
    if cfg is not None and cfg.crypto_map_configured is not None:
        found[Feature.CRYPTO_MAP.value] = cfg.crypto_map_configured
        found[Feature.TUNNEL_PROTECTION.value] = bool(cfg.tunnels)
    elif state.crypto_maps is not None:
        # "Tunnel0-head-0" entries are the ones IOS makes for tunnel protection
        found[Feature.CRYPTO_MAP.value] = any("-head-" not in e.name for e in state.crypto_maps)
    if cfg is not None and cfg.ikev1_configured is not None:
        found[Feature.IKEV1.value] = cfg.ikev1_configured
    if cfg is not None and cfg.ikev2_configured is not None:
        found[Feature.IKEV2.value] = cfg.ikev2_configured
    return found


def _interface_in(state: DeviceState, network: IPNetwork) -> str:
    """The interface whose configured or shown address lies in ``network`` ("" if none)."""
    candidates: list[tuple[str, IPInterface]] = []
    if state.config is not None:
        candidates.extend(state.config.interface_addresses.items())
    candidates.extend(
        (name, iface.address) for name, iface in state.interfaces.items() if iface.address
    )
    for name, address in candidates:
        if address.version == network.version and address.ip in network:
            return name
    return ""


def missing_reasons(state: DeviceState, peer: str) -> dict[str, str]:
    """Why each plan variable :func:`derive_variables` could not give is unknown."""
    values = derive_variables(state, peer)
    reasons: dict[str, str] = {}
    address = _peer_address(peer)
    entries = _entries_for(state, address) if address is not None else []
    if address is None:
        reason = f"{peer!r} is not an IP address"
    elif state.crypto_maps is None and not state.extras.get("config_crypto_maps"):
        reason = "the crypto map is unknown (show crypto map and the configuration unread)"
    elif not entries:
        reason = f"no crypto map entry names the peer {peer}"
    else:
        reason = ""
    tunnel = _tunnel_of(state, entries[0]) if entries else None
    if tunnel is not None:
        reasons["crypto_acl"] = (
            f"the entry for {peer} is the route-based tunnel {tunnel.name}: no crypto ACL"
        )
        reason = reason or (
            f"{tunnel.name} is route-based: its selectors are any/any and no route into it "
            "or no LAN interface names the LANs"
        )
    for name in ("crypto_acl", "crypto_interface", "local_lan", "remote_lan"):
        if name in reasons:
            continue
        if name not in values:
            reasons[name] = (
                reason
                or {
                    "crypto_acl": f"the crypto map entry for {peer} has no match address",
                    "crypto_interface": "the crypto map is applied to no interface",
                    "local_lan": "the crypto ACL has no permit line with a source network",
                    "remote_lan": "the crypto ACL has no permit line with a destination network",
                }[name]
            )
    if "source_interface" not in values:
        route = state.routes.get("route_local_lan")
        if "local_lan" not in values:
            reasons["source_interface"] = "the local LAN is unknown"
        elif route is None:
            reasons["source_interface"] = "the route to the local LAN was not read"
        elif not route.found:
            reasons["source_interface"] = "the local LAN is not in the routing table"
        else:
            reasons["source_interface"] = "the route to the local LAN names no interface"
    return reasons
