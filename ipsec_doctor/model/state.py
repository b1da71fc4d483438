"""Typed, platform-neutral state of one device, as the diagnosis sees it.

Contract:
- Pure data: frozen dataclasses, StrEnum vocabularies, ``ipaddress`` types, int counters.
  No I/O and no vendor wording beyond the raw text kept in :class:`Evidence`.
- Every fact keeps where it came from (:class:`Evidence`: command, sample, line number,
  line) so that findings can quote the exact device line.
- "Unknown" is not "empty": a section is ``None`` when its command failed, was refused or
  could not be parsed (see :attr:`DeviceState.problems`), and an empty tuple when the device
  answered that there is nothing (for example no SAs).
- Sampled sections (counters that must move) have a first and a ``*_later`` reading; the
  later one is ``None`` when only one sample was taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
IPInterface = IPv4Interface | IPv6Interface


@dataclass(frozen=True)
class Evidence:
    """One device line that proves something, and where it was printed."""

    command: str
    line: str
    line_no: int = 0
    sample: int = 1
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "command": self.command,
            "sample": self.sample,
            "line_no": self.line_no,
            "line": self.line,
        }


class IkeStatus(StrEnum):
    """Where phase 1 stands, whatever the platform calls it."""

    ESTABLISHED = "established"  # QM_IDLE, READY, ESTABLISHED
    NEGOTIATING = "negotiating"  # MM_SA_SETUP, MM_KEY_EXCH, CONNECTING ...
    NO_STATE = "no_state"  # MM_NO_STATE: our offer got no (acceptable) answer
    WAITING_RESPONSE = "waiting_response"  # MM_WAIT_MSG2 / retransmitting
    DELETED = "deleted"  # DELETED, MM_NO_STATE after delete, DELETING
    UNKNOWN = "unknown"


class InterfaceStatus(StrEnum):
    UP = "up"
    DOWN = "down"
    ADMIN_DOWN = "administratively down"
    UNKNOWN = "unknown"


class RuleAction(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


@dataclass(frozen=True)
class IkeSa:
    """One phase-1 (ISAKMP / IKE) SA."""

    peer: IPAddress
    local: IPAddress | None
    state: str  # as printed: QM_IDLE, MM_NO_STATE, ESTABLISHED ...
    status: IkeStatus
    ike_version: int = 1
    conn_id: int | None = None
    active: bool | None = None  # the IOS 15 "status" column: ACTIVE / (deleted)
    established_seconds: int | None = None  # how long it has been up, where printed
    spis: tuple[str, ...] = ()  # IKE SPIs / cookies where printed
    source: Evidence | None = None


@dataclass(frozen=True)
class IpsecSa:
    """The phase-2 SA pair for one selector pair (a flow) with one peer."""

    peer: IPAddress
    local: IPAddress | None
    interface: str
    crypto_map: str
    local_selector: IPNetwork | None
    remote_selector: IPNetwork | None
    encaps: int
    decaps: int
    send_errors: int = 0
    recv_errors: int = 0
    inbound_spis: tuple[str, ...] = ()
    outbound_spis: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()  # esp-aes 256, esp-sha256-hmac
    pfs_group: str = ""
    remaining_seconds: int | None = None
    source: Evidence | None = None
    encaps_source: Evidence | None = None
    decaps_source: Evidence | None = None
    errors_source: Evidence | None = None

    @property
    def has_sas(self) -> bool:
        """Both directions have at least one SA installed."""
        return bool(self.inbound_spis) and bool(self.outbound_spis)


@dataclass(frozen=True)
class EngineConnection:
    """A row of the crypto engine's active connections (one SA direction or an IKE SA)."""

    conn_id: int
    interface: str
    address: IPAddress | None
    algorithm: str
    encrypted: int
    decrypted: int
    kind: str = ""  # IPsec / IKE where printed
    source: Evidence | None = None


@dataclass(frozen=True)
class AclEntry:
    """One line of an access list with its hit counter (None when the line shows none)."""

    acl: str
    sequence: int | None
    action: RuleAction
    protocol: str
    source_net: IPNetwork | None  # None = any
    destination_net: IPNetwork | None
    matches: int | None
    source: Evidence | None = None


@dataclass(frozen=True)
class Interface:
    name: str
    status: InterfaceStatus
    protocol_up: bool | None
    address: IPInterface | None = None  # address with prefix, e.g. 10.1.1.1/30
    source: Evidence | None = None

    @property
    def is_up(self) -> bool:
        return self.status is InterfaceStatus.UP and self.protocol_up is not False


@dataclass(frozen=True)
class RouteLookup:
    """The answer to `show ip route X` (or `ip route get X`)."""

    query: str
    found: bool
    prefix: IPNetwork | None = None
    interfaces: tuple[str, ...] = ()
    next_hops: tuple[IPAddress, ...] = ()
    connected: bool = False
    is_default: bool = False
    vrf: str = ""
    source: Evidence | None = None


@dataclass(frozen=True)
class CryptoMapEntry:
    """One crypto map sequence (or a strongSwan child / a tunnel-protection profile)."""

    name: str
    sequence: int
    peers: tuple[IPAddress, ...]
    acl: str
    local_selectors: tuple[IPNetwork, ...] = ()
    remote_selectors: tuple[IPNetwork, ...] = ()
    transform_sets: tuple[str, ...] = ()
    pfs_group: str = ""  # "" = no PFS
    lifetime_seconds: int | None = None
    lifetime_kilobytes: int | None = None
    interfaces: tuple[str, ...] = ()
    source: Evidence | None = None
    #: the line that prints or sets ``lifetime_seconds`` (None: not printed; where the value is
    #: None too, the platform's default lifetime applies)
    lifetime_source: Evidence | None = None


@dataclass(frozen=True)
class IkePolicy:
    """One ISAKMP policy / IKE proposal."""

    priority: int
    encryption: str  # normalised: aes-256, aes-128, 3des, des
    hash: str  # sha256, sha, md5, sha384, sha512
    authentication: str  # pre-share, rsa-sig
    dh_group: int
    lifetime_seconds: int | None
    is_default: bool = False
    source: Evidence | None = None
    #: the line that prints or sets ``lifetime_seconds`` (None: not printed)
    lifetime_source: Evidence | None = None
    #: the peer configuration the proposal belongs to, where the platform ties proposals to
    #: one: a strongSwan connection (the ``name`` of its :class:`CryptoMapEntry` children);
    #: "" for IOS's global ISAKMP policies and IKEv2 proposals
    connection: str = ""


@dataclass(frozen=True)
class TransformSet:
    name: str
    transforms: tuple[str, ...]  # normalised: esp-aes-256, esp-sha256-hmac
    mode: str = "tunnel"
    source: Evidence | None = None


@dataclass(frozen=True)
class TunnelConfig:
    """A tunnel interface protected by an IPsec profile (route-based VPN: VTI, GRE over IPsec).

    ``mode`` is the tunnel mode as configured (``ipsec ipv4``, ``gre ip`` ...; IOS's default,
    which the configuration does not print, is ``gre ip``). ``routed`` are the networks whose
    static routes point into the tunnel (what it carries).
    """

    name: str
    ipsec_profile: str
    destination: IPAddress | None = None
    source: str = ""  # tunnel source as configured: an interface name or an address
    mode: str = "gre ip"
    vrf: str = ""  # vrf forwarding of the tunnel interface (inside VRF)
    tunnel_vrf: str = ""  # tunnel vrf (front-door VRF of the outer packets)
    shutdown: bool = False
    routed: tuple[IPNetwork, ...] = ()
    evidence: Evidence | None = None  # the "tunnel protection ipsec profile" line


@dataclass(frozen=True)
class ConfigFacts:
    """What the running configuration says that no show command does (secrets redacted).

    ``crypto_map_configured`` / ``ikev1_configured`` / ``ikev2_configured`` say whether crypto
    map entries, IKEv1 (ISAKMP) and IKEv2 configuration exist (None when a converter does not
    tell); ``tunnels`` lists the tunnel interfaces protected by an IPsec profile;
    ``interface_vrfs`` and ``front_door_vrfs`` tell which routing table carries a tunnel's
    outer packets (:func:`ipsec_doctor.parse.derive.front_door_vrf`).
    """

    isakmp_enabled: bool | None = None
    ike_daemon_running: bool | None = None
    psk_peers: tuple[IPAddress, ...] = ()  # addresses with a pre-shared key (never the key)
    psk_wildcard: bool = False  # a key for 0.0.0.0 0.0.0.0
    nat_keepalive_seconds: int | None = None
    nat_traversal_enabled: bool | None = None
    dpd_seconds: int | None = None
    dpd_retry_seconds: int | None = None
    crypto_map_interfaces: dict[str, tuple[str, ...]] = field(default_factory=dict)
    interface_addresses: dict[str, IPInterface] = field(default_factory=dict)
    sources: tuple[Evidence, ...] = ()
    crypto_map_configured: bool | None = None
    ikev1_configured: bool | None = None
    ikev2_configured: bool | None = None
    tunnels: tuple[TunnelConfig, ...] = ()
    #: interfaces forwarding in a VRF (IOS ``ip vrf forwarding X`` / ``vrf forwarding X``):
    #: name -> VRF; an interface of the global table is absent
    interface_vrfs: dict[str, str] = field(default_factory=dict)
    #: peer address ranges the IKE configuration ties to a front-door VRF (IOS: a key of
    #: ``crypto keyring K vrf X``, an ISAKMP profile's ``match identity address A M X``)
    front_door_vrfs: tuple[tuple[IPNetwork, str], ...] = ()

    def tunnel(self, name: str) -> TunnelConfig | None:
        """The protected tunnel interface called ``name`` (exact name), or None."""
        return next((t for t in self.tunnels if t.name == name), None)


@dataclass(frozen=True)
class LogEvent:
    """A syslog or debug message mapped to a normalised event (signature table)."""

    event: str  # e.g. phase1_proposal_rejected, psk_missing, isakmp_off
    peer: IPAddress | None
    timestamp: datetime | None
    message: str
    source: Evidence | None = None
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandProblem:
    """A command whose answer is unknown: refused, timed out, failed or not understood."""

    command: str
    outcome: str
    raw: str
    reason: str = ""
    section: str = ""  # the state section left unknown (isakmp_sa, ipsec_sa, ...)
    #: plan variables the command needed and that could not be derived: the command was
    #: skipped (never run), not failed; empty for a real failure or an output not collected
    variables: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceState:
    """All that is known about one device for one check."""

    name: str
    platform: str
    hostname: str = ""
    clock: datetime | None = None
    ike_sas: tuple[IkeSa, ...] | None = None
    ike_sas_later: tuple[IkeSa, ...] | None = None
    ipsec_sas: tuple[IpsecSa, ...] | None = None
    ipsec_sas_later: tuple[IpsecSa, ...] | None = None
    engine: tuple[EngineConnection, ...] | None = None
    engine_later: tuple[EngineConnection, ...] | None = None
    crypto_acl: tuple[AclEntry, ...] | None = None
    crypto_acl_later: tuple[AclEntry, ...] | None = None
    crypto_maps: tuple[CryptoMapEntry, ...] | None = None
    ike_policies: tuple[IkePolicy, ...] | None = None
    transform_sets: tuple[TransformSet, ...] | None = None
    config: ConfigFacts | None = None
    routes: dict[str, RouteLookup] = field(default_factory=dict)  # keyed by the variable
    interfaces: dict[str, Interface] = field(default_factory=dict)  # keyed by name
    logs: tuple[LogEvent, ...] | None = None
    unclassified_log_lines: tuple[Evidence, ...] = ()
    problems: tuple[CommandProblem, ...] = ()
    unreachable: str = ""  # set when the device could not be collected at all
    extras: dict[str, Any] = field(default_factory=dict)  # platform facts for later rules

    def map_entries_for(self, peer: IPAddress) -> tuple[CryptoMapEntry, ...]:
        """The crypto map entries that name ``peer``."""
        return tuple(e for e in self.crypto_maps or () if peer in e.peers)

    def ike_sas_for(self, peer: IPAddress, later: bool = False) -> tuple[IkeSa, ...] | None:
        sas = self.ike_sas_later if later else self.ike_sas
        return None if sas is None else tuple(s for s in sas if s.peer == peer)

    def ipsec_sas_for(self, peer: IPAddress, later: bool = False) -> tuple[IpsecSa, ...] | None:
        sas = self.ipsec_sas_later if later else self.ipsec_sas
        return None if sas is None else tuple(s for s in sas if s.peer == peer)

    def own_addresses(self) -> tuple[IPAddress, ...]:
        """Addresses configured on the device's interfaces (from config or show interfaces)."""
        found: list[IPAddress] = []
        if self.config is not None:
            found.extend(i.ip for i in self.config.interface_addresses.values())
        found.extend(i.address.ip for i in self.interfaces.values() if i.address is not None)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class TunnelView:
    """One tunnel as the diagnosis sees it: our end, the peer address, and the far end if read."""

    local: DeviceState
    peer: IPAddress
    remote: DeviceState | None = None
    remote_peer: IPAddress | None = None  # the address the remote end uses for us
