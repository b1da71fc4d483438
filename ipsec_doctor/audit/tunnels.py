"""Which tunnels a device has, and which two ends belong together.

Contract:
- :func:`enumerate_tunnels` lists every tunnel of one parsed device (a
  :class:`~ipsec_doctor.model.state.DeviceState`, parsed without a peer): the peers of its
  crypto map entries (or of the running configuration's entries when ``show crypto map`` is
  unknown), the peers a converter lists in ``extras["tunnel_peers"]`` (a mapping peer ->
  source, e.g. tunnel-protection or IKEv2 profiles, where a platform provides them), the peers
  of its IKE SAs (v1 and v2) and of its IPsec SAs, plus the peers the inventory declares for
  it. Each :class:`TunnelRef` says where it was seen and the device's own address towards the
  peer when known (crypto-map interface, else the SAs' local address). A device's own
  addresses are never its peers.
- :func:`pair_ends` decides, for a whole fleet, which tunnel ends face each other: the far
  end of ``(A, P)`` is the only other device that owns address ``P``; it is checked for the
  address A uses towards it (A's local address for P, else the one of B's peers that A owns,
  else A's only address). The local end of a pair is the one that listed the tunnel and was
  reached, then the first by name, so a pair's key is stable from run to run. Nothing here
  does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address

from ipsec_doctor.model.state import DeviceState, IPAddress


@dataclass(frozen=True)
class TunnelRef:
    """One tunnel of one device: the peer address, where it was seen, our address to it."""

    peer: str
    sources: tuple[str, ...] = ()
    local_address: str = ""


def _text(address: object) -> str:
    try:
        return str(ip_address(str(address)))
    except ValueError:
        return ""


def _interface_address(state: DeviceState, interface: str) -> str:
    """The address of ``interface``; for a protected tunnel interface (route-based), the
    address of its tunnel source, which is the crypto endpoint."""
    tunnel = state.config.tunnel(interface) if state.config is not None else None
    if tunnel is not None:
        if tunnel.source == interface:
            return ""
        return _text(tunnel.source) or _interface_address(state, tunnel.source)
    if state.config is not None:
        configured = state.config.interface_addresses.get(interface)
        if configured is not None:
            return str(configured.ip)
    shown = state.interfaces.get(interface)
    if shown is not None and shown.address is not None:
        return str(shown.address.ip)
    return ""


def enumerate_tunnels(state: DeviceState, declared: Iterable[str] = ()) -> list[TunnelRef]:
    """Every tunnel of ``state`` (see the module contract), sorted by peer address."""
    own = {str(a) for a in state.own_addresses()}
    sources: dict[str, list[str]] = {}
    local: dict[str, str] = {}

    def add(peer: object, source: str, local_address: object = None) -> None:
        text = _text(peer)
        if not text or text in own or text in ("0.0.0.0", "::"):
            return
        found = sources.setdefault(text, [])
        if source not in found:
            found.append(source)
        if local_address is not None and text not in local:
            address = _text(local_address)
            if address:
                local[text] = address

    cisco = state.platform.startswith("cisco")
    entries = state.crypto_maps
    if entries is None:
        config_maps = state.extras.get("config_crypto_maps") or ()
        entries = tuple(config_maps)
    for entry in entries:
        what = f"crypto map {entry.name} {entry.sequence}" if cisco else f"connection {entry.name}"
        interfaces = list(entry.interfaces)
        if not interfaces and state.config is not None:
            interfaces = list(state.config.crypto_map_interfaces.get(entry.name, ()))
        address = next((a for a in (_interface_address(state, i) for i in interfaces) if a), None)
        for peer in entry.peers:
            add(peer, what, address)
    hooked = state.extras.get("tunnel_peers")
    if isinstance(hooked, Mapping):
        for peer, source in hooked.items():
            add(peer, str(source))
    for sas in (state.ike_sas, state.ike_sas_later):
        for ike in sas or ():
            add(ike.peer, f"IKEv{ike.ike_version} SA ({ike.state})", ike.local)
    for ipsec_sas in (state.ipsec_sas, state.ipsec_sas_later):
        for sa in ipsec_sas or ():
            add(sa.peer, "IPsec SA", sa.local)
    for declared_peer in declared:
        add(declared_peer, "inventory data.peers")
    return [
        TunnelRef(peer=peer, sources=tuple(found), local_address=local.get(peer, ""))
        for peer, found in sorted(sources.items(), key=lambda kv: _sort_key(kv[0]))
    ]


def _sort_key(address: str) -> tuple[int, int]:
    parsed: IPAddress = ip_address(address)
    return parsed.version, int(parsed)


@dataclass(frozen=True)
class Pairing:
    """One tunnel as it will be diagnosed: the local end, and the far end when known."""

    local: tuple[str, str]  # (device, peer)
    remote: tuple[str, str] | None = None  # (device, the address it uses for the local end)
    remote_listed: bool = False  # the far end listed this tunnel itself
    note: str = ""


@dataclass
class FleetEnds:
    """What :func:`pair_ends` needs to know about the fleet."""

    tunnels: dict[str, list[TunnelRef]] = field(default_factory=dict)  # device -> tunnels
    addresses: dict[str, set[str]] = field(default_factory=dict)  # device -> own addresses
    reached: set[str] = field(default_factory=set)  # devices that were collected

    def owners(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for device, addresses in sorted(self.addresses.items()):
            for address in addresses:
                found.setdefault(address, []).append(device)
        return found


def _toward(ends: FleetEnds, device: str, ref: TunnelRef, far: str) -> str:
    """The address ``device`` uses towards ``far`` for tunnel ``ref`` ("" when unknown)."""
    if ref.local_address:
        return ref.local_address
    mine = ends.addresses.get(device, set())
    listed = [t.peer for t in ends.tunnels.get(far, ()) if t.peer in mine]
    if len(listed) == 1:
        return listed[0]
    if len(mine) == 1:
        return next(iter(mine))
    return ""


def pair_ends(ends: FleetEnds) -> list[Pairing]:
    """Every tunnel of the fleet once, with its far end when both are in the fleet."""
    owners = ends.owners()
    consumed: set[tuple[str, str]] = set()
    out: list[Pairing] = []
    order = sorted(ends.tunnels, key=lambda d: (d not in ends.reached, d))
    for device in order:
        for ref in ends.tunnels[device]:
            key = (device, ref.peer)
            if key in consumed:
                continue
            consumed.add(key)
            candidates = [d for d in owners.get(ref.peer, ()) if d != device]
            if len(candidates) != 1:
                note = (
                    f"{ref.peer} is owned by {', '.join(candidates)}: far end ambiguous"
                    if candidates
                    else ""
                )
                out.append(Pairing(local=key, note=note))
                continue
            far = candidates[0]
            toward = _toward(ends, device, ref, far)
            if not toward:
                out.append(
                    Pairing(
                        local=key,
                        note=f"{far} owns {ref.peer}, but the address {device} uses towards "
                        "it is unknown",
                    )
                )
                continue
            far_key = (far, toward)
            listed = any(t.peer == toward for t in ends.tunnels.get(far, ()))
            if listed and far_key in consumed:
                listed = False  # already paired with another end: diagnose from here only
            if listed:
                consumed.add(far_key)
            local, remote = key, far_key
            if listed:  # both ends list it: reached first, then by name
                local, remote = sorted(
                    (key, far_key), key=lambda k: (k[0] not in ends.reached, k[0])
                )
            out.append(Pairing(local=local, remote=remote, remote_listed=listed))
    return out


def addresses_of(states: Sequence[DeviceState]) -> set[str]:
    """Own addresses seen in any of ``states`` (config, interfaces, SA local addresses)."""
    found: set[str] = set()
    for state in states:
        found.update(str(a) for a in state.own_addresses())
    return found
