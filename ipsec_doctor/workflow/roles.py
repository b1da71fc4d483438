"""Which device is which end of a tunnel, from parsed state alone.

Contract: pure functions over :class:`DeviceState`. A device is a *local* end for peer X when
one of its crypto map entries (or its IKE SAs) names X; it is the *remote* end when X is one
of its own addresses. :func:`endpoint_towards` is the address a local end uses for X (the
address of the interface carrying the crypto map, else the local address of its SAs), which
is the peer the remote end is checked for.
"""

from __future__ import annotations

from ipaddress import ip_address

from ipsec_doctor.model.state import DeviceState, IPAddress


def parse_peer(text: str) -> IPAddress:
    """``text`` as an address; ValueError with a readable message otherwise."""
    try:
        return ip_address(text.strip())
    except ValueError as error:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from error


def is_local_for(state: DeviceState, peer: IPAddress) -> bool:
    if state.map_entries_for(peer):
        return True
    sas = state.ike_sas_for(peer) or ()
    ipsec = state.ipsec_sas_for(peer) or ()
    return bool(sas) or bool(ipsec)


def owns(state: DeviceState, address: IPAddress) -> bool:
    return address in state.own_addresses()


def _interface_address(state: DeviceState, name: str) -> IPAddress | None:
    if state.config is not None and name in state.config.interface_addresses:
        return state.config.interface_addresses[name].ip
    interface = state.interfaces.get(name)
    if interface is not None and interface.address is not None:
        return interface.address.ip
    return None


def endpoint_towards(state: DeviceState, peer: IPAddress) -> IPAddress | None:
    """The address ``state``'s device uses as its crypto endpoint towards ``peer``."""
    for entry in state.map_entries_for(peer):
        for name in entry.interfaces:
            address = _interface_address(state, name)
            if address is not None:
                return address
    for sa in (state.ike_sas_for(peer) or ()) + (state.ike_sas_for(peer, later=True) or ()):
        if sa.local is not None:
            return sa.local
    for ipsec in state.ipsec_sas_for(peer) or ():
        if ipsec.local is not None:
            return ipsec.local
    if state.config is not None:
        for names in state.config.crypto_map_interfaces.values():
            for name in names:
                address = _interface_address(state, name)
                if address is not None:
                    return address
    return None
