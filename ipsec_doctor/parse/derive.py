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
  ============== ==========================================================================
- It is pure: it reads the state and never raises on missing or odd data.
- Crypto map entries come from ``state.crypto_maps``, or, when that section is unknown, from
  ``state.extras["config_crypto_maps"]`` (the running configuration's crypto map entries, as
  :class:`~ipsec_doctor.model.state.CryptoMapEntry`), which the converters fill.
"""

from __future__ import annotations

from ipaddress import ip_address

from ipsec_doctor.model.state import (
    CryptoMapEntry,
    DeviceState,
    IPAddress,
    IPInterface,
    IPNetwork,
)


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
    entries = _entries_for(state, address)
    local: IPNetwork | None = None
    remote: IPNetwork | None = None
    if entries:
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
    if local is None or remote is None:
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
    for name in ("crypto_acl", "crypto_interface", "local_lan", "remote_lan"):
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
