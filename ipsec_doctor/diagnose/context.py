"""What every rule sees: the two ends of one tunnel, the check window, and a finding factory.

Contract:
- :class:`End` is one read device seen from the tunnel: its state, the address it uses for
  the other end (``peer``), its log events inside the check window, and evidence helpers that
  stamp the device name on every line they quote.
- :class:`Tunnel` holds the local end, the remote end when it was read, the settings, and the
  phase-1 verdict the engine masks with. Rules never see device wording; they read the typed
  state and the normalised event names of :mod:`ipsec_doctor.model.events`.
- :meth:`Tunnel.fix_names` says which configured objects (strongSwan connections and
  children) a fix names: the fix end's entries for its peer, narrowed to those its quoted log
  lines name; none when that end was not read.
- ``None`` sections are unknown: helpers return ``None`` (or ``()`` where "nothing known" and
  "nothing there" lead to the same silence) and rules stay silent on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from ipaddress import ip_address
from typing import Any, TypeVar

from ipsec_doctor.diagnose.compare import iface_key
from ipsec_doctor.diagnose.fixes import entry_names
from ipsec_doctor.diagnose.references import CODE_REFERENCE
from ipsec_doctor.model.findings import Code, Finding, Severity, Stage, make_finding
from ipsec_doctor.model.state import (
    CryptoMapEntry,
    DeviceState,
    Evidence,
    IkeSa,
    IkeStatus,
    Interface,
    IPAddress,
    IpsecSa,
    LogEvent,
    RouteLookup,
    TunnelView,
)

T = TypeVar("T")


def first(items: Iterable[T]) -> T | None:
    """The first item, or None."""
    for item in items:
        return item
    return None


#: Platforms whose policies are not bound to an interface (so "map not applied" is meaningless)
#: unless the converter says otherwise with ``extras["crypto_map_binding"]``.
UNBOUND_PLATFORMS = frozenset({"strongswan"})


@dataclass(frozen=True)
class Settings:
    """Knobs of the diagnosis. The defaults suit a check run a few minutes after a failure."""

    #: Log messages older than this (device clock minus message time) are context, not evidence.
    log_window: timedelta = timedelta(hours=1)
    #: An SA replaced after this fraction of its lifetime is a normal rekey, not a flap.
    rekey_fraction: float = 0.85
    #: An IPsec SA whose remaining lifetime at the first sample was at most this is rekeying.
    rekey_margin_seconds: int = 120
    #: DPD / keepalive intervals at or below this are aggressive.
    dpd_aggressive_seconds: int = 10
    #: This many DPD teardowns inside the window are "repeating".
    dpd_repeat: int = 2
    #: This many SA replacements inside the window are a flap even without samples.
    flap_events: int = 3
    #: Log lines this close to an ambiguous message are its neighbours.
    neighbour_lines: int = 15
    #: Lifetimes assumed when a device prints none and its platform's own defaults are not
    #: known (IOS defaults; ``compare.PLATFORM_LIFETIMES`` holds each platform's).
    default_ike_lifetime: int = 86400
    default_ipsec_lifetime: int = 3600


class Phase1(StrEnum):
    """Phase 1 as the engine masks with it."""

    UP = "up"  # an ISAKMP/IKE SA with the peer is established
    DOWN = "down"  # the SA table was read and holds no established SA with the peer
    UNKNOWN = "unknown"  # the SA table could not be read


def is_recent(event: LogEvent, clock: datetime | None, window: timedelta) -> bool:
    """Inside the check window. Undated messages, or a device without clock, always count."""
    if event.timestamp is None or clock is None:
        return True
    stamp, now = event.timestamp, clock
    if (stamp.tzinfo is None) != (now.tzinfo is None):
        stamp, now = stamp.replace(tzinfo=None), now.replace(tzinfo=None)
    return now - stamp <= window


def stamp(evidence: Evidence | None, device: str) -> Evidence | None:
    """The evidence with ``device`` set (kept when the parser already set it)."""
    if evidence is None:
        return None
    return evidence if evidence.device else replace(evidence, device=device)


def dedupe(items: Iterable[Evidence | None]) -> tuple[Evidence, ...]:
    seen: dict[tuple[str, str, int, int, str], Evidence] = {}
    for item in items:
        if item is None:
            continue
        key = (item.device, item.command, item.sample, item.line_no, item.line)
        seen.setdefault(key, item)
    return tuple(seen.values())


class End:
    """One read device of the tunnel."""

    def __init__(self, role: str, state: DeviceState, peer: IPAddress | None, settings: Settings):
        self.role = role  # "local" | "remote"
        self.state = state
        self.peer = peer
        self.settings = settings

    # ------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self.state.name

    @property
    def platform(self) -> str:
        return self.state.platform

    @property
    def peer_label(self) -> str:
        return "" if self.peer is None else str(self.peer)

    @property
    def reachable(self) -> bool:
        return not self.state.unreachable

    # ------------------------------------------------------------ evidence
    def ev(self, source: Evidence | None) -> Evidence | None:
        return stamp(source, self.name)

    def evs(self, sources: Iterable[Evidence | None]) -> list[Evidence]:
        return [e for e in (self.ev(s) for s in sources) if e is not None]

    def config_evidence(self, *keywords: str) -> list[Evidence]:
        """Configuration lines (``ConfigFacts.sources``) that mention any of ``keywords``."""
        if self.state.config is None:
            return []
        words = [k.lower() for k in keywords]
        return self.evs(
            s for s in self.state.config.sources if any(w in s.line.lower() for w in words)
        )

    # ------------------------------------------------------------ logs
    @property
    def logs_known(self) -> bool:
        return self.state.logs is not None

    def _for_peer(self, event: LogEvent) -> bool:
        return event.peer is None or self.peer is None or event.peer == self.peer

    @cached_property
    def recent(self) -> tuple[LogEvent, ...]:
        """Events of the check window that concern this peer (or name no peer)."""
        return tuple(
            e
            for e in self.state.logs or ()
            if self._for_peer(e) and is_recent(e, self.state.clock, self.settings.log_window)
        )

    @cached_property
    def recent_all(self) -> tuple[LogEvent, ...]:
        """Every event of the check window, whatever peer it names."""
        return tuple(
            e
            for e in self.state.logs or ()
            if is_recent(e, self.state.clock, self.settings.log_window)
        )

    @cached_property
    def older(self) -> tuple[LogEvent, ...]:
        """Events of this peer older than the window: context only."""
        recent = set(map(id, self.recent))
        return tuple(e for e in self.state.logs or () if self._for_peer(e) and id(e) not in recent)

    def events(self, *names: str) -> list[LogEvent]:
        wanted = set(names)
        return [e for e in self.recent if e.event in wanted]

    def event_evidence(self, *names: str) -> list[Evidence]:
        return self.evs(e.source for e in self.events(*names))

    def neighbours(self, event: LogEvent, *names: str) -> list[LogEvent]:
        """Events named ``names`` within a few log lines of ``event`` (same command)."""
        if event.source is None:
            return []
        span = self.settings.neighbour_lines
        found: list[LogEvent] = []
        for other in self.events(*names):
            src = other.source
            if (
                other is not event
                and src is not None
                and src.command == event.source.command
                and abs(src.line_no - event.source.line_no) <= span
            ):
                found.append(other)
        return found

    # ------------------------------------------------------------ SAs
    def ike_sas(self, later: bool = False) -> tuple[IkeSa, ...] | None:
        if self.peer is None:
            return None
        return self.state.ike_sas_for(self.peer, later=later)

    @property
    def ike_known(self) -> bool:
        return self.ike_sas() is not None or self.ike_sas(later=True) is not None

    def ike_all(self) -> list[IkeSa]:
        return [*(self.ike_sas() or ()), *(self.ike_sas(later=True) or ())]

    @property
    def ike_established(self) -> bool:
        return any(sa.status is IkeStatus.ESTABLISHED for sa in self.ike_all())

    def ipsec_sas(self, later: bool = False) -> tuple[IpsecSa, ...] | None:
        if self.peer is None:
            return None
        return self.state.ipsec_sas_for(self.peer, later=later)

    @property
    def has_ipsec(self) -> bool:
        return any(sa.has_sas for sa in (self.ipsec_sas() or ()))

    # ------------------------------------------------------------ crypto maps
    @property
    def entries(self) -> tuple[CryptoMapEntry, ...]:
        return () if self.peer is None else self.state.map_entries_for(self.peer)

    @property
    def binds_interfaces(self) -> bool:
        """Whether this platform's policies are bound to interfaces (IOS crypto maps)."""
        flag = self.state.extras.get("crypto_map_binding")
        if isinstance(flag, bool):
            return flag
        return self.platform not in UNBOUND_PLATFORMS

    def entry_label(self, entry: CryptoMapEntry) -> str:
        """How a person names the policy entry: ``crypto map VPNMAP 10`` / ``connection X`` /
        ``IPsec profile VTI-PROFILE on Tunnel0`` (a route-based entry: no ACL, a tunnel)."""
        if self.is_route_based(entry):
            return f"IPsec profile {entry.name} on {', '.join(entry.interfaces)}"
        if self.binds_interfaces:
            return f"crypto map {entry.name} {entry.sequence}"
        return f"connection {entry.name}"

    @property
    def ikev2(self) -> bool:
        """The converter says the entries for this peer negotiate with IKEv2."""
        return self.state.extras.get("ike_version") == 2

    def tunnel_mode(self, entry: CryptoMapEntry) -> str:
        """The tunnel mode of a route-based entry's tunnel interface ("" when not one)."""
        config = self.state.config
        for name in entry.interfaces if config is not None else ():
            tunnel = config.tunnel(name) if config is not None else None
            if tunnel is not None:
                return tunnel.mode
        return ""

    def is_route_based(self, entry: CryptoMapEntry) -> bool:
        """The entry stands for a protected tunnel interface of the configuration (VTI)."""
        config = self.state.config
        return (
            config is not None
            and not entry.acl
            and any(config.tunnel(name) is not None for name in entry.interfaces)
        )

    def map_interfaces(self, entry: CryptoMapEntry) -> list[str]:
        names = list(entry.interfaces)
        if self.state.config is not None:
            names += list(self.state.config.crypto_map_interfaces.get(entry.name, ()))
        return list(dict.fromkeys(names))

    def peer_map_interfaces(self) -> list[str]:
        found: list[str] = []
        for entry in self.entries:
            found += self.map_interfaces(entry)
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------ routes and interfaces
    def route(self, key: str) -> RouteLookup | None:
        return self.state.routes.get(key)

    def has_default_route(self, lookup: RouteLookup | None = None) -> bool:
        """A default route is known in the table ``lookup`` was made in (its VRF and address
        family; without ``lookup``: any table): ``routes["route_default"]`` found there, or
        another lookup there was answered by the default route. IOS `show ip route X` says
        "not in table" for an address only the default route covers, so a missing specific
        route is not proof; a default route of another VRF or family covers nothing here."""

        def same_table(route: RouteLookup) -> bool:
            if lookup is None:
                return True
            family = route_family(lookup)
            return route.vrf == lookup.vrf and route_family(route) in (family, None)

        default = self.state.routes.get("route_default")
        if default is not None and default.found and same_table(default):
            return True
        return any(
            r.found
            and same_table(r)
            and (r.is_default or (r.prefix is not None and r.prefix.prefixlen == 0))
            for r in self.state.routes.values()
        )

    def interface(self, name: str) -> Interface | None:
        wanted = iface_key(name)
        for iface_name, iface in self.state.interfaces.items():
            if iface_key(iface_name) == wanted or iface_key(iface.name) == wanted:
                return iface
        return None

    def address_of(self, interface: str) -> IPAddress | None:
        iface = self.interface(interface)
        if iface is not None and iface.address is not None:
            return iface.address.ip
        if self.state.config is not None:
            for name, addr in self.state.config.interface_addresses.items():
                if iface_key(name) == iface_key(interface):
                    return addr.ip
        return None


def _derive_remote_peer(view: TunnelView) -> IPAddress | None:
    """The address the remote end uses for us.

    The given ``remote_peer`` when the remote's crypto map names it (or the map is unknown) or
    the remote has an IKE SA with it; else the one of our addresses its map names (a second
    uplink); else the peer of its entry that mirrors ours (our address as translated by a NAT
    on the way); else the given one.
    """
    remote = view.remote
    if remote is None:
        return view.remote_peer
    maps = remote.crypto_maps
    named = {p for e in maps or () for p in e.peers}
    if maps is None or (view.remote_peer is not None and view.remote_peer in named):
        return view.remote_peer
    talking = {sa.peer for sa in (*(remote.ike_sas or ()), *(remote.ike_sas_later or ()))}
    if view.remote_peer is not None and view.remote_peer in talking:
        return view.remote_peer  # it does talk IKE with the given address (a stale map entry)
    own = view.local.own_addresses()
    for address in own:
        if address in named:
            return address
    ours = view.local.map_entries_for(view.peer)
    for entry in maps:
        for mine in ours:
            if (
                entry.peers
                and entry.local_selectors
                and set(entry.local_selectors) == set(mine.remote_selectors)
                and set(entry.remote_selectors) == set(mine.local_selectors)
            ):
                return entry.peers[0]
    return view.remote_peer


class Tunnel:
    """One tunnel under diagnosis."""

    def __init__(self, view: TunnelView, settings: Settings | None = None):
        self.view = view
        self.settings = settings or Settings()
        self.local = End("local", view.local, view.peer, self.settings)
        self.remote: End | None = None
        if view.remote is not None:
            self.remote = End("remote", view.remote, _derive_remote_peer(view), self.settings)

    @property
    def ends(self) -> list[End]:
        """The ends that were read (the remote only when it answered at all)."""
        ends = [self.local]
        if self.remote is not None and self.remote.reachable:
            ends.append(self.remote)
        return ends

    @property
    def both(self) -> tuple[End, End] | None:
        """(local, remote) when both ends were read."""
        if self.remote is None or not self.remote.reachable or not self.local.reachable:
            return None
        return self.local, self.remote

    def other(self, end: End) -> End | None:
        if end is self.local:
            return self.remote if self.remote is not None and self.remote.reachable else None
        return self.local

    def fix_target(self, end: End | None) -> str:
        """The ``fix_device`` name for an end; the peer's address when the remote was not read."""
        if end is not None:
            return end.name
        return self.remote.name if self.remote is not None else str(self.view.peer)

    def other_name(self, end: End) -> str:
        other = self.other(end)
        if other is not None:
            return other.name
        if end is self.local:
            return self.remote.name if self.remote is not None else str(self.view.peer)
        return self.local.name

    def fix_platform(self, end: End | None) -> str:
        """The platform a fix is written for: the fix device's, else (peer unread) ours."""
        return end.platform if end is not None else self.local.platform

    # ------------------------------------------------------------ phase 1
    @cached_property
    def phase1(self) -> Phase1:
        """UP if an established SA with the peer is seen; DOWN if the table was read without one.

        The local end decides when its table was read; otherwise the remote's.
        """
        for end in self.ends:
            if not end.ike_known:
                continue
            return Phase1.UP if end.ike_established else Phase1.DOWN
        return Phase1.UNKNOWN

    # ------------------------------------------------------------ findings
    @cached_property
    def _connection_of_line(self) -> dict[tuple[str, str, int, int], str]:
        """Log lines whose event names the platform's connection (``LogEvent.detail
        ["connection"]``, e.g. a strongSwan connection): a finding quoting them lists those
        names in ``detail["connections"]`` (both an IKEv1 and an IKEv2 tunnel to one peer)."""
        found: dict[tuple[str, str, int, int], str] = {}
        for end in self.ends:
            for event in end.state.logs or ():
                name = event.detail.get("connection")
                source = event.source
                if name and source is not None:
                    found[
                        (source.device or end.name, source.command, source.sample, source.line_no)
                    ] = name
        return found

    def quoted_connections(self, evidence: Iterable[Evidence | None]) -> list[str]:
        """The connections that the log lines among ``evidence`` name (sorted)."""
        named = self._connection_of_line
        return sorted(
            {
                name
                for e in evidence
                if e is not None and (name := named.get((e.device, e.command, e.sample, e.line_no)))
            }
        )

    def fix_names(
        self,
        end: End | None,
        evidence: Iterable[Evidence | None] = (),
        entries: Iterable[CryptoMapEntry] | None = None,
    ) -> tuple[dict[str, str], ...]:
        """The configured objects a fix on ``end`` names (``fixes.render(names=...)``):
        ``entries`` (default: the end's entries for its peer), narrowed to the connections the
        log lines among ``evidence`` name when some of them do. Nothing when the end was not
        read (the fix then shows the generic wording)."""
        if end is None:
            return ()
        chosen = list(end.entries if entries is None else entries)
        quoted = set(self.quoted_connections(evidence))
        narrowed = [e for e in chosen if e.name in quoted]
        return entry_names(narrowed or chosen)

    def finding(
        self,
        code: Code,
        end: End,
        summary: str,
        *,
        evidence: Iterable[Evidence | None] = (),
        fix: str = "",
        fix_device: str = "",
        detail: dict[str, Any] | None = None,
        reference: str | None = None,
        severity: Severity | None = None,
        stage: Stage | None = None,
    ) -> Finding:
        quoted = dedupe(evidence)
        names = self.quoted_connections(quoted)
        if names and "connections" not in (detail or {}):
            detail = {**(detail or {}), "connections": names}
        return make_finding(
            code,
            device=end.name,
            peer=end.peer_label,
            summary=summary,
            evidence=quoted,
            fix=fix.rstrip("\n"),
            fix_device=fix_device,
            detail=detail,
            reference=reference or CODE_REFERENCE[code],
            severity=severity,
            stage=stage,
        )


def route_family(route: RouteLookup) -> int | None:
    """4 or 6: the address family a lookup was made in (None when it cannot be told)."""
    if route.prefix is not None:
        return route.prefix.version
    query = route.query.split("/")[0]
    address = parse_address(query)
    if address is not None:
        return address.version
    return 6 if ":" in query else None


def parse_address(text: str | None) -> IPAddress | None:
    """An address from an event's ``detail`` value (None when absent or not an address)."""
    if not text:
        return None
    try:
        return ip_address(text.strip())
    except ValueError:
        return None
