"""Cisco IOS / IOS-XE converter: raw command captures -> typed, platform-neutral DeviceState.

Contract:
- :func:`parse_device` never raises for a command problem. For every plan command (see
  ``platforms/cisco_ios.yaml``) it finds the capture (the concrete command with the plan
  variables filled in, or a wider output the plan lists), parses it (TextFSM via
  :func:`~ipsec_doctor.parse.textfsm_parser.parse_output`; the running configuration with
  :mod:`~ipsec_doctor.parse.cisco_ios_config`) and fills its section:

  ==================== ==============================================================
  clock                ``clock`` (naive datetime in the device's zone)
  running_config       ``config`` (ConfigFacts); its crypto map entries also go to
                       ``extras["config_crypto_maps"]``
  crypto_map           ``crypto_maps`` (``lifetime_source``: the entry's ``Security
                       association lifetime`` line)
  isakmp_sa            ``ike_sas`` (sample 1), ``ike_sas_later`` (sample 2)
  ipsec_sa             ``ipsec_sas`` / ``ipsec_sas_later``
  engine_connections   ``engine`` / ``engine_later``
  crypto_acl           ``crypto_acl`` / ``crypto_acl_later``, only the ACL(s) the crypto map
                       entries for the peer name (all crypto ACLs when no peer is given)
  isakmp_policy        ``ike_policies`` (``lifetime_source``: the suite's ``lifetime:`` line)
  transform_sets       ``transform_sets``
  route_*              ``routes[plan id]`` (route_peer, route_default, route_local_lan,
                       route_remote_lan); ``show ip route [vrf V] A`` and ``show ipv6 route
                       [vrf V] A`` alike (the plan's variants), ``vrf`` from the output's
                       ``Routing Table: V`` line, else from the command
  source_interface,    ``interfaces[name]``
  crypto_interface
  logging              ``logs`` (LogEvent via the signature table) and
                       ``unclassified_log_lines``; a header without a ``Log Buffer`` (buffered
                       logging off) is a problem, not an empty log
  engine_configuration ``extras["crypto_engine"]`` when the plan has this id: ``{type, name,
                       slot, state, evidence: [Evidence], engines: [...]}`` (the hardware
                       engine if any); IOS prints no failure counter here
  ikev2_sa             added to ``ike_sas`` / ``ike_sas_later`` (``ike_version`` 2; READY ->
                       established, see :mod:`ipsec_doctor.parse.cisco_ios_ikev2`)
  ikev2_proposal,      added to ``ike_policies``: the proposals the IKEv2 policies offer, one
  ikev2_policy,        policy per algorithm combination, authentication and lifetime from the
  ikev2_profile        IKEv2 profile that serves the peer
  ipsec_profile,       with the configuration's protected tunnel interfaces: one
  running_config       route-based ``crypto_maps`` entry per tunnel (IPsec profile name,
                       tunnel number, destination as peer, any/any or GRE host selectors,
                       ``interfaces=(Tunnel0,)``); the configuration's ``crypto ipsec
                       profile`` blocks stand in when the show command was not read
  crypto_session       ``extras["crypto_sessions"]``: the ``show crypto session detail``
                       rows for the peer (``interface``, ``status``, ``evidence``)
  ==================== ==============================================================

  Sections of the IKEv1 and IKEv2 families combine: ``ike_sas`` is unknown only when every
  family the device has is unknown. A plan command whose ``when`` features the device lacks
  (:func:`~ipsec_doctor.parse.derive.device_features`) is not expected: its section stays
  ``None`` (or takes what the other family gives) and no problem is recorded.

  ``extras`` also holds ``variables`` (the plan variables derived for the peer),
  ``source_interface`` / ``crypto_interface`` (when derived), ``config_crypto_maps`` (the
  configuration's crypto map entries and the route-based entries), ``features`` (the
  device's feature words), and for the peer: ``route_based`` (True when the entries naming it
  are protected tunnel interfaces, False for crypto map entries), ``tunnel_interface`` (the
  tunnel's name), ``ike_version`` (2 when its crypto map entry or IPsec profile names an IKEv2
  profile, else 1), ``ikev2_profile`` / ``ikev2_keyring`` (the IKEv2 profile serving it and
  its keyring).

  A capture whose outcome is not OK, an output no template parses, a command whose variable
  cannot be derived and a command not collected at all leave the section ``None`` and add a
  :class:`~ipsec_doctor.model.state.CommandProblem` (outcome ``rejected``/``timeout``/
  ``error``/``unparsed``/``missing``) with the raw text; a command skipped because a variable
  could not be derived names those variables in ``CommandProblem.variables``. A sample 2 that
  was never taken is simply ``None`` (no problem). An output that parses to zero rows is an
  empty tuple.
- Every object carries an :class:`~ipsec_doctor.model.state.Evidence` naming the command as
  run, the sample, the device and the exact line (1-based line number in the raw capture).
- Normalised vocabulary: IKE encryption ``des``/``3des``/``aes-128``/``aes-192``/``aes-256``;
  hash ``md5``/``sha``/``sha256``/``sha384``/``sha512``; authentication ``pre-share``/
  ``rsa-sig``/``rsa-encr`` (``+xauth`` when printed "with XAUTH"); DH group as a number.
  IPsec transforms one token each: ``esp-aes 256`` and ``esp-256-aes`` -> ``esp-aes-256``,
  ``esp-aes`` -> ``esp-aes-128``, ``esp-gcm 256`` -> ``esp-gcm-256``; others as printed in
  lower case (``esp-sha256-hmac``, ``esp-3des``, ``ah-sha-hmac``). PFS group ``group14``, ""
  for no PFS (a bare ``PFS (Y/N): Y`` means IOS's default ``group1``). IKE states: QM_IDLE ->
  established; MM_NO_STATE/AG_NO_STATE -> no_state; MM_WAIT_MSG2 -> waiting_response; other
  MM_*/AG_*/QM_* -> negotiating; DELETED -> deleted; ``active`` is False for
  ``ACTIVE (deleted)``.
- ``show crypto isakmp sa`` prints dst/src from the initiator's view; the SA's peer is the
  end that is not ours (the ``peer`` argument, else the device's own addresses).
- :func:`convert_command` parses one output for one plan id, for ``ipsec-doctor parse``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from ipaddress import IPv4Network, ip_address, ip_interface, ip_network
from typing import Any

from ipsec_doctor.errors import ConfigError, ParseError
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.lookup import candidate_commands
from ipsec_doctor.model.state import (
    AclEntry,
    CommandProblem,
    ConfigFacts,
    CryptoMapEntry,
    DeviceState,
    EngineConnection,
    Evidence,
    IkePolicy,
    IkeSa,
    IkeStatus,
    Interface,
    InterfaceStatus,
    IPAddress,
    IPInterface,
    IPNetwork,
    IpsecSa,
    LogEvent,
    RouteLookup,
    RuleAction,
    TransformSet,
)
from ipsec_doctor.parse.cisco_ios_config import config_facts, parse_running_config
from ipsec_doctor.parse.cisco_ios_ikev2 import (
    Proposal,
    ike_policies,
    ikev2_authentication,
    ikev2_status,
    offered_proposals,
    profile_matches,
    proposal_from_row,
    route_based_entries,
)
from ipsec_doctor.parse.derive import (
    derive_variables,
    device_features,
    missing_reasons,
)
from ipsec_doctor.parse.logs import classify_lines, classify_log_text, split_log_lines
from ipsec_doctor.parse.memo import MISSING, BoundedMemo
from ipsec_doctor.parse.textfsm_parser import clean_output, parse_output
from ipsec_doctor.platforms.loader import PlanCommand, Platform, load_platform

PLATFORM = "cisco_ios"

# ---------------------------------------------------------------------------------------------
# vocabulary


_IKE_STATES: dict[str, IkeStatus] = {
    "QM_IDLE": IkeStatus.ESTABLISHED,
    "MM_ACTIVE": IkeStatus.ESTABLISHED,
    "AM_ACTIVE": IkeStatus.ESTABLISHED,
    "READY": IkeStatus.ESTABLISHED,
    "MM_NO_STATE": IkeStatus.NO_STATE,
    "AG_NO_STATE": IkeStatus.NO_STATE,
    "MM_WAIT_MSG2": IkeStatus.WAITING_RESPONSE,
    "DELETED": IkeStatus.DELETED,
    "MM_DELETE": IkeStatus.DELETED,
}


def ike_status(state: str) -> IkeStatus:
    """The platform-neutral phase-1 status of an IOS ISAKMP state name."""
    name = state.strip().upper()
    if name in _IKE_STATES:
        return _IKE_STATES[name]
    if name.startswith(("MM_", "AG_", "AM_", "QM_")):
        return IkeStatus.NEGOTIATING
    return IkeStatus.UNKNOWN


# Sample device value: "AES - Advanced Encryption Standard (256 bit keys)."
_AES_BITS = re.compile(r"\bAES\b.*?\((?P<bits>\d+)\s+bit", re.IGNORECASE)


def ike_encryption(text: str) -> str:
    """``AES - Advanced Encryption Standard (256 bit keys).`` -> ``aes-256``."""
    if match := _AES_BITS.search(text):
        return f"aes-{match['bits']}"
    lowered = text.lower()
    if lowered.startswith("aes"):
        return "aes-128"
    if "3des" in lowered or "triple des" in lowered:
        return "3des"
    if lowered.startswith("des") or "data encryption standard" in lowered:
        return "des"
    return lowered.split(" - ")[0].strip().rstrip(".")


# Sample device value: "Secure Hash Standard 2 (256 bit)"
_SHA2_BITS = re.compile(r"Secure Hash Standard 2\s*\((?P<bits>\d+)\s+bit", re.IGNORECASE)


def ike_hash(text: str) -> str:
    """``Secure Hash Standard`` -> ``sha``; ``Secure Hash Standard 2 (256 bit)`` -> ``sha256``."""
    if match := _SHA2_BITS.search(text):
        return f"sha{match['bits']}"
    lowered = text.lower()
    if "message digest 5" in lowered or lowered == "md5":
        return "md5"
    if lowered.startswith("secure hash standard") or lowered == "sha":
        return "sha"
    return lowered


def ike_authentication(text: str) -> str:
    """``Pre-Shared Key`` -> ``pre-share``; ``Rivest-Shamir-Adleman Signature`` -> ``rsa-sig``."""
    lowered = text.lower()
    xauth = "xauth" in lowered
    if "pre-shared" in lowered or "preshared" in lowered:
        base = "pre-share"
    elif "rivest-shamir-adleman signature" in lowered:
        base = "rsa-sig"
    elif "rivest-shamir-adleman encryption" in lowered:
        base = "rsa-encr"
    elif "ecdsa" in lowered:
        base = "ecdsa-sig"
    else:
        base = lowered.replace(" with xauth", "")
    return f"{base}+xauth" if xauth else base


_TRANSFORM_ALIASES = {
    "esp-aes": "esp-aes-128",
    "esp-128-aes": "esp-aes-128",
    "esp-192-aes": "esp-aes-192",
    "esp-256-aes": "esp-aes-256",
    "esp-gcm": "esp-gcm-128",
    "esp-gmac": "esp-gmac-128",
}


def ipsec_transforms(texts: Iterable[str]) -> tuple[str, ...]:
    """``["esp-aes 256 esp-sha256-hmac"]`` -> ``("esp-aes-256", "esp-sha256-hmac")``."""
    result: list[str] = []
    for text in texts:
        tokens = text.replace(",", " ").lower().split()
        for token in tokens:
            if token.isdigit() and result:
                result[-1] = f"{result[-1]}-{token}"
            else:
                result.append(token)
    return tuple(_TRANSFORM_ALIASES.get(token, token) for token in result)


def pfs_group(flag: str, group: str) -> str:
    """``("Y", "group14")`` -> ``group14``; no PFS -> ``""``; bare PFS -> ``group1``."""
    if flag.upper() != "Y":
        return ""
    group = group.strip().lower()
    if not group or group == "none":
        return "group1"
    return group if group.startswith("group") else f"group{group}"


# ---------------------------------------------------------------------------------------------
# small value helpers


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def _opt_int(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _address(value: Any) -> IPAddress | None:
    try:
        return ip_address(str(value).strip())
    except ValueError:
        return None


def _network(address: str, mask: str) -> IPNetwork | None:
    """``("192.168.10.0", "255.255.255.0" | "0.0.0.255" | "24")`` -> the network."""
    try:
        return ip_network(f"{address.strip()}/{mask.strip()}", strict=False)
    except ValueError:
        return None


def _spi(value: str) -> str:
    """``0x8A2B5C11(2318097425)`` -> ``0x8A2B5C11``."""
    head = value.split("(")[0].strip()
    if head.lower().startswith("0x"):
        return "0x" + head[2:].upper()
    return head


# Sample device values (an ACL line after "access-list NAME", or a show access-lists entry):
#   "permit ip 192.168.10.0 0.0.0.255 192.168.20.0 0.0.0.255"
#   "permit ip host 10.1.1.1 host 10.2.2.1"   "permit tcp any eq 22 192.168.20.0 0.0.0.255"
_ACL_LINE = re.compile(r"^(?P<action>permit|deny)\s+(?P<protocol>\S+)\s+(?P<rest>.*)$")
_ADDRESS_SPEC = re.compile(
    r"^(?:(?P<any>any)|host\s+(?P<host>\S+)|(?P<net>\d+\.\d+\.\d+\.\d+)(?:,\s+wildcard\s+bits)?"
    r"\s+(?P<wild>\d+\.\d+\.\d+\.\d+)|(?P<prefix>[0-9A-Fa-f:.]+/\d+))\s*"
)
# Sample ACL fragment after an address: "eq 22" or "range 500 501"
_PORT_SPEC = re.compile(r"^(?:(?:eq|neq|lt|gt)\s+\S+|range\s+\S+\s+\S+)\s*")


def _address_spec(text: str) -> tuple[IPNetwork | None, bool, str]:
    """(network or None for any, understood?, rest of the text)."""
    match = _ADDRESS_SPEC.match(text)
    if match is None:
        return None, False, text
    rest = text[match.end() :]
    port = _PORT_SPEC.match(rest)
    if port:
        rest = rest[port.end() :]
    if match["any"]:
        return None, True, rest
    if match["host"]:
        network = _network(match["host"], "32" if "." in match["host"] else "128")
    elif match["net"]:
        network = _network(match["net"], match["wild"])
    else:
        try:
            network = ip_network(match["prefix"], strict=False)
        except ValueError:
            network = None
    return network, network is not None, rest


def acl_selectors(text: str) -> tuple[str, IPNetwork | None, IPNetwork | None] | None:
    """``permit ip A W B W`` -> (action, source, destination); None when not understood."""
    match = _ACL_LINE.match(text.strip())
    if match is None:
        return None
    source, ok_source, rest = _address_spec(match["rest"])
    destination, ok_destination, _rest = _address_spec(rest)
    if not (ok_source and ok_destination):
        return None
    return match["action"], source, destination


# ---------------------------------------------------------------------------------------------
# evidence


class _Lines:
    """The lines of one raw output, searched forward so repeated lines map one to one."""

    def __init__(self, text: str, capture: CommandCapture, device: str, offset: int) -> None:
        self.lines = text.split("\n")
        self.cursor = 0
        self.capture = capture
        self.device = device
        self.offset = offset

    def next_index(self, pattern: str) -> int:
        """Index of the next line from the cursor matching ``pattern`` (len(lines) if none)."""
        regex = re.compile(pattern)
        for index in range(self.cursor, len(self.lines)):
            if regex.search(self.lines[index]):
                return index
        return len(self.lines)

    def evidence(
        self, pattern: str, *, advance: bool = True, wrap: bool = True, stop: int | None = None
    ) -> Evidence:
        """Evidence for the first line from the cursor (up to ``stop``) matching ``pattern`` (a
        regex); with ``wrap`` the lines before the cursor are searched last. No match: an
        evidence with an empty line."""
        regex = re.compile(pattern)
        end = len(self.lines) if stop is None else min(stop, len(self.lines))
        order = list(range(self.cursor, end))
        if wrap:
            order += list(range(self.cursor))
        for index in order:
            if regex.search(self.lines[index]):
                if advance:
                    self.cursor = index + 1
                return self._make(index)
        return Evidence(
            command=self.capture.command,
            line="",
            line_no=0,
            sample=self.capture.sample,
            device=self.device,
        )

    def line(self, index: int) -> Evidence:
        return self._make(index)

    def _make(self, index: int) -> Evidence:
        return Evidence(
            command=self.capture.command,
            line=self.lines[index].rstrip(),
            line_no=index + 1 + self.offset,
            sample=self.capture.sample,
            device=self.device,
        )


def _word(value: str) -> str:
    """A regex matching ``value`` as a whole whitespace-delimited word."""
    return rf"(?<!\S){re.escape(value)}(?!\S)"


# ---------------------------------------------------------------------------------------------
# section builders: rows (+ located lines) -> typed values


@dataclass
class _Context:
    """What a section builder may know besides its own rows."""

    peer: IPAddress | None = None
    own_addresses: frozenset[IPAddress] = frozenset()
    acl_names: frozenset[str] | None = None  # crypto ACLs to keep; None = keep all
    config_map_interfaces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reference_time: datetime | None = None
    platform: Platform | None = None
    query: str = ""
    query_vrf: str = ""  # the ``vrf V`` the command names


def _build_clock(rows: list[dict[str, Any]], lines: _Lines, ctx: _Context) -> datetime:
    if not rows:
        raise ParseError("show clock printed no time")
    row = rows[0]
    text = f"{row['year']} {row['month']} {row['day']} {row['time']}"
    for layout in ("%Y %b %d %H:%M:%S.%f", "%Y %b %d %H:%M:%S"):
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise ParseError(f"show clock: cannot read the time {text!r}")


def _ike_ends(
    dst: IPAddress, src: IPAddress | None, ctx: _Context
) -> tuple[IPAddress, IPAddress | None]:
    """(peer, local) of an ISAKMP SA row."""
    if src is None:
        return dst, None
    if ctx.peer is not None:
        if src == ctx.peer:
            return src, dst
        if dst == ctx.peer:
            return dst, src
    if dst in ctx.own_addresses and src not in ctx.own_addresses:
        return src, dst
    return dst, src


def _build_ike_sas(rows: list[dict[str, Any]], lines: _Lines, ctx: _Context) -> tuple[IkeSa, ...]:
    result: list[IkeSa] = []
    for row in rows:
        dst = _address(row["dst"])
        if dst is None:
            raise ParseError(f"show crypto isakmp sa: bad address {row['dst']!r}")
        src = _address(row["src"])
        peer, local = _ike_ends(dst, src, ctx)
        if row.get("ip_version") == "IPv6" or ":" in str(row["dst"]):
            # Sample device lines: " dst: 2001:DB8:20::1", then
            #   " state: QM_IDLE         conn-id:   1005 status: ACTIVE"
            lines.evidence(rf"dst:\s+{re.escape(row['dst'])}\s*$")
            source = lines.evidence(rf"state:\s+{re.escape(row['state'])}\b")
        else:
            # Sample device line: "10.2.2.1        10.1.1.1        QM_IDLE           1004 ACTIVE"
            source = lines.evidence(
                rf"{_word(row['dst'])}\s+{_word(row['src'])}\s+{_word(row['state'])}"
            )
        status_text = str(row.get("status", ""))
        active = None if not status_text else ("deleted" not in status_text.lower())
        result.append(
            IkeSa(
                peer=peer,
                local=local,
                state=row["state"],
                status=ike_status(row["state"]),
                ike_version=1,
                conn_id=_opt_int(row["conn_id"]),
                active=active,
                source=source,
            )
        )
    return tuple(result)


def _current_lifetime(row: dict[str, Any]) -> int | None:
    spis = [_spi(s) for s in row.get("outbound_esp_spi") or []]
    seconds = [_int(s) for s in row.get("outbound_esp_lifetime_sec") or []]
    if not seconds:
        seconds = [_int(s) for s in row.get("inbound_esp_lifetime_sec") or []]
    if not seconds:
        return None
    current = _spi(str(row.get("current_outbound_spi", "")))
    if not current.lower().startswith("0x"):
        current = "0x" + current.upper()
    if current in spis and spis.index(current) < len(seconds):
        return seconds[spis.index(current)]
    return max(seconds)


def _build_ipsec_sas(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[IpsecSa, ...]:
    result: list[IpsecSa] = []
    for row in rows:
        peer = _address(row["current_peer"])
        if peer is None:
            raise ParseError(f"show crypto ipsec sa: bad peer {row['current_peer']!r}")
        local = _address(row.get("local_crypto_endpt", "")) or _address(
            row.get("local_address", "")
        )
        # Sample device lines: "   current_peer 10.2.2.1 port 500", "   current_peer: 12.1.1.2:500"
        source = lines.evidence(rf"current_peer:?\s+{re.escape(row['current_peer'])}\b")
        # Sample device lines: "    #pkts encaps: 1543, ...", "    #pkts decaps: 1498, ...",
        #   "    #send errors 0, #recv errors 0"
        # the counters of this flow: after its current_peer line, before the next flow's
        stop = lines.next_index(r"current_peer")
        encaps_source = lines.evidence(r"#pkts encaps:", advance=False, wrap=False, stop=stop)
        decaps_source = lines.evidence(r"#pkts decaps:", advance=False, wrap=False, stop=stop)
        errors_source = lines.evidence(r"#send errors", advance=False, wrap=False, stop=stop)
        esp_transforms = (
            row.get("outbound_esp_transform") or row.get("inbound_esp_transform")
        ) or []
        ah_transforms = (row.get("outbound_ah_transform") or row.get("inbound_ah_transform")) or []
        transforms = ipsec_transforms(list(ah_transforms[:1]) + list(esp_transforms[:1]))
        result.append(
            IpsecSa(
                peer=peer,
                local=local,
                interface=row.get("interface", ""),
                crypto_map=row.get("crypto_map", ""),
                local_selector=_network(row["local_ident_addr"], row["local_ident_mask"])
                if row.get("local_ident_addr")
                else None,
                remote_selector=_network(row["remote_ident_addr"], row["remote_ident_mask"])
                if row.get("remote_ident_addr")
                else None,
                encaps=_int(row.get("pkts_encaps", 0)),
                decaps=_int(row.get("pkts_decaps", 0)),
                send_errors=_int(row.get("send_errors", 0)),
                recv_errors=_int(row.get("recv_errors", 0)),
                inbound_spis=tuple(
                    _spi(s) for s in [*row["inbound_esp_spi"], *row["inbound_ah_spi"]]
                ),
                outbound_spis=tuple(
                    _spi(s) for s in [*row["outbound_esp_spi"], *row["outbound_ah_spi"]]
                ),
                transforms=transforms,
                pfs_group=pfs_group(row.get("pfs", ""), row.get("dh_group", "")),
                remaining_seconds=_current_lifetime(row),
                source=source,
                encaps_source=encaps_source if encaps_source.line else None,
                decaps_source=decaps_source if decaps_source.line else None,
                errors_source=errors_source if errors_source.line else None,
            )
        )
    return tuple(result)


_NO_INTERFACE = {"", "<none>", "no idb"}


def _build_engine(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[EngineConnection, ...]:
    result: list[EngineConnection] = []
    for row in rows:
        interface = str(row.get("interface", ""))
        result.append(
            EngineConnection(
                conn_id=_int(row["conn_id"]),
                interface="" if interface in _NO_INTERFACE else interface,
                address=_address(row.get("ip_address", "")),
                algorithm=row.get("algorithm", ""),
                encrypted=_int(row.get("encrypt", 0)),
                decrypted=_int(row.get("decrypt", 0)),
                kind=row.get("type", ""),
                # Sample device line: " 2003  IPsec   AES256+SHA256   0   1498   1498 10.1.1.1"
                source=lines.evidence(rf"^\s*{re.escape(str(row['conn_id']))}\s"),
            )
        )
    return tuple(result)


def _acl_row_fields(row: dict[str, Any]) -> tuple[str, str, str, str, str, str] | None:
    """(acl, sequence, action, protocol, source spec, destination spec) of either ntc layout."""
    if "sn" in row:  # ntc cisco_ios_show_access-list
        destination = row.get("destination", "") or ""
        if not destination and row.get("type", "").lower() == "standard":
            destination = "any"
        return (
            row.get("name", ""),
            row.get("sn", ""),
            row.get("action", ""),
            row.get("protocol", "") or "ip",
            str(row.get("source", "")).replace(", wildcard bits", ""),
            destination,
        )
    if "line_num" in row:  # ntc cisco_ios_show_ip_access-lists

        def spec(prefix: str) -> str:
            if row.get(f"{prefix}_host"):
                return f"host {row[f'{prefix}_host']}"
            if row.get(f"{prefix}_any"):
                return "any"
            if row.get(f"{prefix}_network"):
                return f"{row[f'{prefix}_network']} {row.get(f'{prefix}_wildcard') or '0.0.0.0'}"
            return ""

        return (
            row.get("acl_name", ""),
            row.get("line_num", ""),
            row.get("action", ""),
            row.get("protocol", "") or "ip",
            spec("src"),
            spec("dst") or "any",
        )
    return None


def _build_acl(rows: list[dict[str, Any]], lines: _Lines, ctx: _Context) -> tuple[AclEntry, ...]:
    result: list[AclEntry] = []
    for row in rows:
        fields = _acl_row_fields(row)
        if fields is None:
            raise ParseError("access list rows of an unknown layout")
        acl, sequence, action, protocol, source_spec, destination_spec = fields
        if not acl or (ctx.acl_names is not None and acl not in ctx.acl_names):
            continue
        if action not in ("permit", "deny"):
            continue
        # Sample device lines: "Extended IP access list VPN-ACL", "    10 permit ip 192.168.10.0 .."
        lines.evidence(rf"access list\s+{re.escape(acl)}\s*$")
        source = lines.evidence(rf"^\s*{re.escape(sequence)}\s+{action}\b") if sequence else None
        selectors = acl_selectors(f"{action} {protocol} {source_spec} {destination_spec}")
        if selectors is None:
            continue  # an object-group or non-contiguous wildcard: not a selector we can use
        _action, source_net, destination_net = selectors
        result.append(
            AclEntry(
                acl=acl,
                sequence=_opt_int(sequence),
                action=RuleAction(action),
                protocol=protocol,
                source_net=source_net,
                destination_net=destination_net,
                matches=_opt_int(row.get("matches", "")),
                source=source,
            )
        )
    return tuple(result)


def _slash_network(text: str) -> IPNetwork | None:
    """``40.40.40.0/0.0.0.255`` (IOS 12.x crypto map ACL lines) -> the network."""
    address, _, mask = text.partition("/")
    return _network(address, mask)


def _map_selectors(row: dict[str, Any]) -> tuple[tuple[IPNetwork, ...], tuple[IPNetwork, ...]]:
    local: list[IPNetwork] = []
    remote: list[IPNetwork] = []
    # IOS 12.x: "access-list 144 permit ip" + "source: addr = A/W" + "dest: addr = B/W"
    pairs = iter(zip(row.get("acl_sources") or [], row.get("acl_destinations") or [], strict=False))
    for entry in row.get("acl_entries") or []:
        selectors = acl_selectors(entry)
        if selectors is None:
            if len(entry.split()) <= 2:  # the addresses follow on their own lines
                pair = next(pairs, None)
                if pair is not None and entry.startswith("permit"):
                    source_net, destination_net = _slash_network(pair[0]), _slash_network(pair[1])
                    if source_net is not None and destination_net is not None:
                        local.append(source_net)
                        remote.append(destination_net)
            continue
        action, source_net, destination_net = selectors
        if action == "permit":
            local.append(source_net or IPv4Network("0.0.0.0/0"))
            remote.append(destination_net or IPv4Network("0.0.0.0/0"))
    return tuple(local), tuple(remote)


def _map_header(name: str, sequence: str) -> str:
    """Regex of ``Crypto Map IPv4 "NAME" SEQ`` (``IPv4`` absent on old images)."""
    return rf'Crypto Map\s+(?:IPv[46]\s+)?"{re.escape(name)}"\s+{re.escape(sequence)}\b'


def _build_crypto_maps(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[CryptoMapEntry, ...]:
    interfaces: dict[str, list[str]] = {}
    listed: set[str] = set()
    for row in rows:
        if row.get("interfaces_map"):
            listed.add(row["interfaces_map"])
            names = interfaces.setdefault(row["interfaces_map"], [])
            names.extend(i for i in row.get("interfaces") or [] if i not in names)
    result: list[CryptoMapEntry] = []
    for row in rows:
        name = row["map_name"]
        local, remote = _map_selectors(row)
        sets: list[str] = []
        for item in row.get("transform_sets") or []:
            sets.extend(part.strip() for part in item.split(",") if part.strip())
        if name in listed:
            map_interfaces = tuple(interfaces.get(name, ()))
        else:  # old layouts print no "Interfaces using crypto map": trust the configuration
            map_interfaces = tuple(ctx.config_map_interfaces.get(name, ()))
        header = lines.evidence(_map_header(name, row["sequence"]))
        lifetime_source = None
        if header.line and row.get("lifetime_seconds"):
            # Sample device line: "Security association lifetime: 4608000 kilobytes/3600 seconds"
            found = lines.evidence(
                r"Security association lifetime:",
                advance=False,
                wrap=False,
                stop=lines.next_index(r"Crypto Map\b"),
            )
            lifetime_source = found if found.line else None
        result.append(
            CryptoMapEntry(
                name=name,
                sequence=_int(row["sequence"]),
                peers=tuple(p for p in (_address(x) for x in row.get("peers") or []) if p),
                acl=row.get("acl_name", ""),
                local_selectors=local,
                remote_selectors=remote,
                transform_sets=tuple(sets),
                pfs_group=pfs_group(row.get("pfs", ""), row.get("pfs_group", "")),
                lifetime_seconds=_opt_int(row.get("lifetime_seconds", "")),
                lifetime_kilobytes=_opt_int(row.get("lifetime_kb", "")),
                interfaces=map_interfaces,
                source=header,
                lifetime_source=lifetime_source,
            )
        )
    return tuple(result)


def _build_policies(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[IkePolicy, ...]:
    result: list[IkePolicy] = []
    for row in rows:
        is_default = bool(row.get("default"))
        priority = _opt_int(row.get("priority", ""))
        if priority is not None:
            # Sample device line: "Protection suite of priority 10" ("Default protection suite ...")
            source = lines.evidence(rf"[Pp]rotection suite of priority {priority}\b")
        else:
            source = lines.evidence(r"Default protection suite\s*$")
        lifetime_source = None
        if source.line and row.get("lifetime"):
            # Sample device line: "\tlifetime:\t\t86400 seconds, no volume limit"
            found = lines.evidence(
                r"^\s*lifetime:",
                advance=False,
                wrap=False,
                stop=lines.next_index(r"[Pp]rotection suite"),
            )
            lifetime_source = found if found.line else None
        result.append(
            IkePolicy(
                priority=priority if priority is not None else 65535,
                encryption=ike_encryption(row["encryption"]),
                hash=ike_hash(row.get("hash", "")),
                authentication=ike_authentication(row.get("authentication", "")),
                dh_group=_int(row.get("dh_group", 0)),
                lifetime_seconds=_opt_int(row.get("lifetime", "")),
                is_default=is_default,
                source=source,
                lifetime_source=lifetime_source,
            )
        )
    return tuple(result)


def _build_transform_sets(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[TransformSet, ...]:
    return tuple(
        TransformSet(
            name=row["name"],
            transforms=ipsec_transforms(row.get("transforms") or []),
            mode=(row.get("mode") or "tunnel").lower(),
            # Sample device line: "Transform set TS-AES256: { esp-aes 256 esp-sha256-hmac  }"
            source=lines.evidence(rf"Transform (?:set|proposal) {re.escape(row['name'])}:"),
        )
        for row in rows
    )


def _build_route(rows: list[dict[str, Any]], lines: _Lines, ctx: _Context) -> RouteLookup:
    if not rows:
        raise ParseError("show ip route printed neither a routing entry nor 'not in table'")
    row = rows[0]
    vrf = row.get("vrf") or ctx.query_vrf
    if row.get("not_found"):
        return RouteLookup(
            query=ctx.query,
            found=False,
            vrf=vrf,
            # Sample device lines: "% Network not in table", "% Route not found" (IPv6)
            source=lines.evidence(r"not in table|Route not found"),
        )
    mask = row.get("prefix_length") or row.get("netmask") or "32"
    prefix = _network(row["network"], mask)
    next_hops = tuple(a for a in (_address(x) for x in row.get("nexthop_ips") or []) if a)
    return RouteLookup(
        query=ctx.query,
        found=True,
        prefix=prefix,
        interfaces=tuple(dict.fromkeys(row.get("interfaces") or [])),
        next_hops=next_hops,
        connected=bool(row.get("connected")) or row.get("known_via") == "connected",
        is_default=bool(row.get("candidate_default"))
        or (prefix is not None and prefix.prefixlen == 0),
        vrf=vrf,
        # Sample device line: "Routing entry for 192.168.10.0/24"
        source=lines.evidence(r"^Routing entry for"),
    )


def _interface_status(link: str) -> InterfaceStatus:
    lowered = link.strip().lower()
    if lowered.startswith("administratively"):
        return InterfaceStatus.ADMIN_DOWN
    if lowered == "up":
        return InterfaceStatus.UP
    if lowered.startswith("down") or lowered == "deleted":
        return InterfaceStatus.DOWN
    return InterfaceStatus.UNKNOWN


def _build_interface(rows: list[dict[str, Any]], lines: _Lines, ctx: _Context) -> Interface:
    if not rows:
        raise ParseError("show interfaces printed no interface")
    row = rows[0]
    address = None
    if row.get("ip_address") and row.get("prefix_length"):
        address = _network_interface(row["ip_address"], row["prefix_length"])
    protocol = str(row.get("protocol_status", "")).strip().lower()
    return Interface(
        name=row["interface"],
        status=_interface_status(str(row.get("link_status", ""))),
        protocol_up=None if not protocol else protocol.startswith("up"),
        address=address,
        # Sample device line: "GigabitEthernet0/1 is up, line protocol is up"
        source=lines.evidence(rf"^{re.escape(row['interface'])}\s+is\s"),
    )


def _network_interface(address: str, prefix: str) -> IPInterface | None:
    try:
        return ip_interface(f"{address}/{prefix}")
    except ValueError:
        return None


def _build_engine_configuration(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> dict[str, Any]:
    """``extras["crypto_engine"]``: the hardware engine if there is one, else the first."""
    engines: list[dict[str, Any]] = []
    for row in rows:
        # Sample device lines: "crypto engine name:  Virtual Private Network (VPN) Module",
        #   "crypto engine type:  hardware", "State:  Enabled"
        evidence = [lines.evidence(rf"engine name:\s+{re.escape(row['name'])}\s*$")]
        if row.get("type"):
            evidence.append(lines.evidence(rf"engine type:\s+{re.escape(row['type'])}\s*$"))
        if row.get("state"):
            evidence.append(
                lines.evidence(rf"(?:State|engine state):\s+{re.escape(row['state'])}\s*$")
            )
        engines.append(
            {
                "type": str(row.get("type", "")).lower(),
                "name": row["name"],
                "slot": row.get("slot") or row.get("location", ""),
                "state": row.get("state", ""),
                "evidence": evidence,
            }
        )
    if not engines:
        raise ParseError("show crypto engine configuration listed no engine")
    chosen = next((e for e in engines if e["type"] == "hardware"), engines[0])
    return {**chosen, "engines": [{k: v for k, v in e.items() if k != "evidence"} for e in engines]}


def _build_ikev2_sas(rows: list[dict[str, Any]], lines: _Lines, ctx: _Context) -> tuple[IkeSa, ...]:
    result: list[IkeSa] = []
    for row in rows:
        remote = _address(row.get("remote", ""))
        if remote is None:
            raise ParseError(f"show crypto ikev2 sa: bad remote address {row.get('remote')!r}")
        tunnel_id, status = str(row["tunnel_id"]), str(row.get("status", ""))
        # Sample device line: "1     10.1.1.1/500     10.2.2.1/500     none/none     READY"
        wide = rf"^\s*{re.escape(tunnel_id)}\s+\S+/\d+\s+{re.escape(str(row['remote']))}/"
        # Sample device line: "3          none/none             READY"  (IPv6 layout)
        narrow = rf"^\s*{re.escape(tunnel_id)}\s+\S+/\S+\s+{re.escape(status)}\s*$"
        found = lines.evidence(wide, advance=False, wrap=False)
        source = lines.evidence(wide if found.line else narrow)
        spis = tuple(
            s.upper()
            for s in (str(row.get("local_spi", "")), str(row.get("remote_spi", "")))
            if s and set(s) != {"0"}
        )
        established = ikev2_status(status, str(row.get("status_description", "")))
        result.append(
            IkeSa(
                peer=remote,
                local=_address(row.get("local", "")),
                state=status,
                status=established,
                ike_version=2,
                conn_id=_opt_int(tunnel_id),
                active=None,
                established_seconds=_opt_int(row.get("active_time", ""))
                if established is IkeStatus.ESTABLISHED
                else None,
                spis=spis,
                source=source,
            )
        )
    return tuple(result)


def _build_ikev2_proposals(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[Proposal, ...]:
    # Sample device line: " IKEv2 proposal: IKEV2-PROP "
    return tuple(
        proposal_from_row(
            row, lines.evidence(rf"IKEv2\s+proposal\s*:\s*{re.escape(str(row['name']))}\s*$")
        )
        for row in rows
    )


def _build_named_rows(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[dict[str, Any], ...]:
    """The rows as they are, each with ``evidence``: the line naming it (IKEv2 policies and
    profiles). Sample device lines: " IKEv2 policy : IKEV2-POLICY", "IKEv2 profile: PROF"."""
    return tuple(
        {
            **row,
            "evidence": lines.evidence(
                rf"IKEv2\s+(?:policy|profile)\s*:\s*{re.escape(str(row['name']))}\s*$"
            ),
        }
        for row in rows
    )


def _build_ipsec_profiles(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> dict[str, dict[str, Any]]:
    """IPsec profile name -> ``transform_sets``, ``pfs_group``, ``lifetime_seconds``,
    ``lifetime_kilobytes``, ``ikev2_profile``, ``evidence`` (the "IPSEC profile NAME" line)."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = str(row["name"])
        found[name] = {
            "transform_sets": [str(s) for s in row.get("transform_sets") or []],
            "pfs_group": pfs_group(str(row.get("pfs", "")), str(row.get("pfs_group", ""))),
            "lifetime_seconds": _opt_int(row.get("lifetime_seconds", "")),
            "lifetime_kilobytes": _opt_int(row.get("lifetime_kb", "")),
            "ikev2_profile": str(row.get("ikev2_profile", "")),
            # Sample device line: "IPSEC profile VTI-PROFILE"
            "evidence": lines.evidence(rf"^\s*IPSEC\s+profile\s+{re.escape(name)}\s*$"),
        }
    return found


def _build_sessions(
    rows: list[dict[str, Any]], lines: _Lines, ctx: _Context
) -> tuple[dict[str, Any], ...]:
    """``show crypto session detail`` rows: interface, peer, status, active SAs, evidence."""
    result: list[dict[str, Any]] = []
    for row in rows:
        # Sample device lines: "Interface: Tunnel0", "Session status: UP-ACTIVE"
        lines.evidence(rf"^\s*Interface:\s+{re.escape(str(row['interface']))}\s*$")
        status = lines.evidence(rf"^\s*Session\s+status:\s+{re.escape(str(row['session_status']))}")
        result.append(
            {
                "interface": row["interface"],
                "peer": row.get("peer", ""),
                "status": row["session_status"],
                "active_sas": _opt_int(row.get("active_sa", "")),
                "evidence": status,
            }
        )
    return tuple(result)


Builder = Callable[[list[dict[str, Any]], _Lines, _Context], Any]

#: the route lookups, in plan order (``routes`` keys)
ROUTE_SECTIONS = ("route_peer", "route_default", "route_local_lan", "route_remote_lan")

#: plan id -> section builder (the running configuration and the log have their own path).
BUILDERS: dict[str, Builder] = {
    "clock": _build_clock,
    "crypto_map": _build_crypto_maps,
    "isakmp_sa": _build_ike_sas,
    "ipsec_sa": _build_ipsec_sas,
    "engine_connections": _build_engine,
    "engine_configuration": _build_engine_configuration,
    "crypto_acl": _build_acl,
    "isakmp_policy": _build_policies,
    "transform_sets": _build_transform_sets,
    "route_peer": _build_route,
    "route_default": _build_route,
    "route_local_lan": _build_route,
    "route_remote_lan": _build_route,
    "source_interface": _build_interface,
    "crypto_interface": _build_interface,
    "ikev2_sa": _build_ikev2_sas,
    "ikev2_proposal": _build_ikev2_proposals,
    "ikev2_policy": _build_named_rows,
    "ikev2_profile": _build_named_rows,
    "ipsec_profile": _build_ipsec_profiles,
    "crypto_session": _build_sessions,
}

#: every plan id this converter understands
SECTIONS = frozenset({*BUILDERS, "running_config", "logging"})

#: The fields of :class:`_Context` each section's conversion reads besides the capture itself
#: (``query`` and ``query_vrf`` come from the command, ``platform`` is part of the memo key):
#: the rest of the context cannot change the section. tests/parse/test_section_memo.py checks
#: this against the builders' code.
CONTEXT_USED: dict[str, tuple[str, ...]] = {
    "isakmp_sa": ("peer", "own_addresses"),
    "crypto_acl": ("acl_names",),
    "crypto_map": ("config_map_interfaces",),
    "logging": ("reference_time",),
}

#: Sections already converted: the same capture in the same context gives the same section
#: (an audit parses a device's outputs to enumerate its tunnels, then again for each tunnel).
SECTION_MEMO = BoundedMemo(8192)


def _memo_key(
    platform: Platform, plan_id: str, capture: CommandCapture, device: str, ctx: _Context
) -> tuple[Any, ...]:
    used: list[Any] = []
    for name in CONTEXT_USED.get(plan_id, ()):
        value = getattr(ctx, name)
        used.append(tuple(sorted(value.items())) if isinstance(value, Mapping) else value)
    return (
        id(platform),
        plan_id,
        capture.command,
        capture.sample,
        capture.raw,
        device,
        tuple(used),
    )


def _convert_memoized(
    platform: Platform, plan_id: str, capture: CommandCapture, device: str, ctx: _Context
) -> Any:
    """The section value of one capture (:func:`_convert`, once per key); raises ParseError."""
    key = _memo_key(platform, plan_id, capture, device, ctx)
    found = SECTION_MEMO.get(key)
    if found is MISSING:
        try:
            found = (platform, _convert(platform, plan_id, capture, device, ctx)[1])
        except ParseError as error:
            found = (platform, error)
        SECTION_MEMO.put(key, found)  # the platform is kept too: its id stays unique
    assert isinstance(found, tuple)
    value = found[1]
    if isinstance(value, ParseError):  # a fresh error each time (a shared one's traceback grows)
        raise ParseError(str(value), platform=value.platform, command=value.command, raw=value.raw)
    return value


# ---------------------------------------------------------------------------------------------
# one command


def _prepare(capture: CommandCapture) -> tuple[str, int]:
    """The output without an echoed command line or a trailing bare prompt, and how many lines
    were dropped before it (so evidence line numbers stay those of the raw capture)."""
    return clean_output(capture.command, capture.raw)


def _rows(platform: Platform, plan_id: str, command: str, text: str) -> list[dict[str, Any]]:
    if plan_id == "running_config":
        return parse_running_config(text)
    return parse_output(platform.textfsm_platform, command, text)


def _query(command: str) -> str:
    # Sample command: "show ip route vrf CUST-A 10.2.2.1" -> "10.2.2.1"
    found = re.findall(r"[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]+", command)
    return found[-1] if found else ""


# Sample commands: "show ip route vrf CUST-A 10.2.2.1", "show ipv6 route vrf INET ::/0"
_QUERY_VRF = re.compile(r"\svrf\s+(\S+)\s")


def _query_vrf(command: str) -> str:
    """The VRF a command names ("" when none)."""
    match = _QUERY_VRF.search(command)
    return match.group(1) if match else ""


def _convert(
    platform: Platform,
    plan_id: str,
    capture: CommandCapture,
    device: str,
    ctx: _Context,
) -> tuple[list[dict[str, Any]], Any]:
    """(rows, section value) of one capture; raises ParseError."""
    text, offset = _prepare(capture)
    rows = _rows(platform, plan_id, capture.command, text)
    lines = _Lines(text, capture, device, offset)
    if plan_id == "running_config":
        return rows, config_facts(
            rows, command=capture.command, device=device, sample=capture.sample, line_offset=offset
        )
    if plan_id == "logging":
        return rows, _logs(platform, text, capture, device, ctx, offset)
    builder = BUILDERS.get(plan_id)
    if builder is None:
        raise ParseError(f"no converter for plan id {plan_id!r}")
    query = replace(ctx, query=_query(capture.command), query_vrf=_query_vrf(capture.command))
    return rows, builder(rows, lines, query)


# Sample device lines: "Syslog logging: enabled (0 messages dropped, ...)",
#   "Log Buffer (8192 bytes):"
_LOG_HEADER = re.compile(r"^Syslog logging:", re.MULTILINE)
_LOG_BUFFER = re.compile(r"^Log Buffer \(\d+ bytes\):", re.MULTILINE)


def _logs(
    platform: Platform,
    text: str,
    capture: CommandCapture,
    device: str,
    ctx: _Context,
    offset: int,
) -> tuple[tuple[LogEvent, ...], tuple[Evidence, ...]]:
    if _LOG_HEADER.search(text) and not _LOG_BUFFER.search(text):
        raise ParseError("the device keeps no log buffer (logging buffered is off)")
    lines = split_log_lines(text, platform, ctx.reference_time)
    if offset:
        lines = [replace(line, line_no=line.line_no + offset) for line in lines]
    return classify_lines(
        lines, platform.signatures, command=capture.command, device=device, sample=capture.sample
    )


def convert_command(
    plan_id: str,
    command: str,
    text: str,
    *,
    device: str = "",
    sample: int = 1,
    peer: str | None = None,
    platform: Platform | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """(rows, typed section value) of one output for ``plan_id``; raises ParseError."""
    loaded, capture, ctx = _one_output(command, text, sample, peer, platform)
    return _convert(loaded, plan_id, capture, device, ctx)


def convert_value(
    plan_id: str,
    command: str,
    text: str,
    *,
    device: str = "",
    sample: int = 1,
    peer: str | None = None,
    platform: Platform | None = None,
) -> Any:
    """The typed section value of one output (:func:`convert_command` without the rows),
    shared with :func:`parse_device` through the section memo; raises ParseError."""
    loaded, capture, ctx = _one_output(command, text, sample, peer, platform)
    return _convert_memoized(loaded, plan_id, capture, device, ctx)


def _one_output(
    command: str, text: str, sample: int, peer: str | None, platform: Platform | None
) -> tuple[Platform, CommandCapture, _Context]:
    """What converting one output alone needs: the platform, the capture, the context."""
    loaded = platform or load_platform(PLATFORM)
    capture = CommandCapture(command=command, sample=sample, outcome=Outcome.OK, raw=text)
    return loaded, capture, _Context(peer=_address(peer) if peer else None, platform=loaded)


# ---------------------------------------------------------------------------------------------
# the whole device


class _DeviceParser:
    def __init__(self, capture: DeviceCapture, peer: str | None, platform: Platform) -> None:
        self.capture = capture
        self.platform = platform
        self.peer = peer
        self.device = capture.name
        self.problems: list[CommandProblem] = []
        self.sections: dict[str, Any] = {}
        self.variables: dict[str, str] = {"peer": peer} if peer else {}
        self.ctx = _Context(peer=_address(peer) if peer else None, platform=platform)
        self.wider = platform.wider_patterns()
        self._partial = DeviceState(name=capture.name, platform=capture.platform)
        self.features: dict[str, bool] = {}  # what the device has (plan `when` words)
        self.peer_ikev2: dict[str, str] = {}  # the IKEv2 profile and keyring serving the peer

    def left_out(self, entry: PlanCommand) -> bool:
        """The plan command is meant for features this device does not have (not expected)."""
        return bool(entry.when) and all(self.features.get(w) is False for w in entry.when)

    # -- finding captures ------------------------------------------------------------------
    def _candidates(self, entry: PlanCommand) -> tuple[list[str], str]:
        """(commands whose output may answer ``entry``, reason when there are none)."""
        rendered = entry.render(self.variables)
        if rendered is not None:
            return candidate_commands(rendered, self.wider), ""
        missing = [v for v in entry.variables if not self.variables.get(v)]
        fallbacks = [w for w in entry.wider if "{" not in w]
        reason = f"variable {', '.join(missing)} could not be derived"
        return fallbacks, reason

    def find(self, entry: PlanCommand, sample: int) -> tuple[CommandCapture | None, str, str]:
        """(capture, the command looked for, reason it is missing)."""
        commands, reason = self._candidates(entry)
        for command in commands:
            found = self.capture.get(command, sample)
            if found is not None:
                return found, command, ""
        looked = commands[0] if commands else entry.command
        return None, looked, reason or "not collected"

    # -- one section -----------------------------------------------------------------------
    def section(self, plan_id: str, sample: int = 1) -> Any:
        """The typed value of ``plan_id`` for ``sample`` (None + a problem when unknown)."""
        try:
            entry = self.platform.command(plan_id)
        except ConfigError:  # the plan has no such command: nothing to read, nothing to report
            return None
        if self.left_out(entry):
            return None  # not meant for this device: not run, nothing to report
        capture, looked, reason = self.find(entry, sample)
        if capture is None:
            if sample > 1:
                return None  # a second sample not taken (or sample 1 already reported)
            underivable: tuple[str, ...] = ()
            if reason != "not collected":
                underivable = tuple(v for v in entry.variables if not self.variables.get(v))
            if reason != "not collected" and self.peer:
                explained = missing_reasons(self._partial, self.peer)
                missing = [v for v in entry.variables if v in explained]
                if missing:
                    reason = "; ".join(f"{v}: {explained[v]}" for v in missing)
            self.problems.append(
                CommandProblem(
                    command=looked,
                    outcome=Outcome.MISSING.value,
                    raw="",
                    reason=reason,
                    section=plan_id,
                    variables=underivable,
                )
            )
            return None
        if capture.outcome is not Outcome.OK:
            self.problems.append(
                CommandProblem(
                    command=capture.command,
                    outcome=capture.outcome.value,
                    raw=capture.raw,
                    reason=capture.error or f"the command ended {capture.outcome.value}",
                    section=plan_id,
                )
            )
            return None
        try:
            value = _convert_memoized(self.platform, plan_id, capture, self.device, self.ctx)
        except Exception as error:  # an output no one foresaw: unknown, with its text
            reason = str(error)
            if not isinstance(error, ParseError):
                reason = f"the output could not be read ({type(error).__name__}: {error})"
            self.problems.append(
                CommandProblem(
                    command=capture.command,
                    outcome=Outcome.UNPARSED.value,
                    raw=capture.raw,
                    reason=reason,
                    section=plan_id,
                )
            )
            return None
        return value

    # -- the device ------------------------------------------------------------------------
    def own_addresses(self, config: ConfigFacts | None, sas: Sequence[IpsecSa] | None) -> None:
        found: set[IPAddress] = set()
        if config is not None:
            found.update(i.ip for i in config.interface_addresses.values())
        for sa in sas or ():
            if sa.local is not None:
                found.add(sa.local)
        self.ctx = replace(self.ctx, own_addresses=frozenset(found))

    def run(self) -> DeviceState:
        capture = self.capture
        if capture.error and not capture.captures:
            return DeviceState(
                name=capture.name,
                platform=capture.platform,
                hostname=capture.hostname,
                unreachable=capture.error,
            )
        clock = self.section("clock")
        self.ctx = replace(self.ctx, reference_time=clock)
        config = self.section("running_config")
        config_maps: tuple[CryptoMapEntry, ...] = ()
        config_rows: list[dict[str, Any]] = []
        hostname = capture.hostname
        if config is not None:
            config_rows = self._config_rows()
            config_maps = _config_map_entries(config_rows, config)
            hostname = hostname or next(
                (r["name"] for r in config_rows if r["kind"] == "hostname"), ""
            )
            self.ctx = replace(self.ctx, config_map_interfaces=config.crypto_map_interfaces)
        self.features = device_features(
            DeviceState(name=capture.name, platform=capture.platform, config=config)
        )
        shown_maps = self.section("crypto_map")
        if config is None and shown_maps is not None:
            self.features = device_features(
                DeviceState(name=capture.name, platform=capture.platform, crypto_maps=shown_maps)
            )
        ipsec_profiles = self.section("ipsec_profile")
        if ipsec_profiles is None and config is not None:
            ipsec_profiles = _config_ipsec_profiles(config_rows)
        route_entries = route_based_entries(config, ipsec_profiles or {}) if config else ()
        config_maps = (*config_maps, *route_entries)
        crypto_maps: tuple[CryptoMapEntry, ...] | None = None
        if shown_maps is not None:
            # IOS shows tunnel protection as "Tunnel0-head-0" maps: the route-based entries
            # made from the configuration say the same, with the IPsec profile's name
            crypto_maps = (
                *(e for e in shown_maps if not (route_entries and _TUNNEL_HEAD.match(e.name))),
                *route_entries,
            )
        elif route_entries or self.left_out(self.platform.command("crypto_map")):
            crypto_maps = route_entries
        ipsec_sas = self.section("ipsec_sa")
        ipsec_sas_later = self.section("ipsec_sa", 2)
        self.own_addresses(config, ipsec_sas)
        v1_sas, v1_later = self.section("isakmp_sa"), self.section("isakmp_sa", 2)
        v2_sas, v2_later = self.section("ikev2_sa"), self.section("ikev2_sa", 2)
        ike_sas = _combine(v1_sas, v2_sas)
        ike_sas_later = (
            None
            if (v1_sas is not None and v1_later is None)
            or (v2_sas is not None and v2_later is None)
            else _combine(v1_later, v2_later)
        )
        engine = self.section("engine_connections")
        engine_later = self.section("engine_connections", 2)
        peer_entries = [
            e
            for e in (crypto_maps if crypto_maps is not None else config_maps)
            if self.ctx.peer is not None and self.ctx.peer in e.peers
        ]
        policies = _combine(
            self.section("isakmp_policy"),
            self._ikev2_policies(peer_entries, ipsec_profiles or {}, config_rows),
        )
        transform_sets = self.section("transform_sets")

        state = DeviceState(
            name=capture.name,
            platform=capture.platform,
            hostname=hostname,
            clock=clock,
            ike_sas=ike_sas,
            ike_sas_later=ike_sas_later,
            ipsec_sas=ipsec_sas,
            ipsec_sas_later=ipsec_sas_later,
            engine=engine,
            engine_later=engine_later,
            crypto_maps=crypto_maps,
            ike_policies=policies,
            transform_sets=transform_sets,
            config=config,
            extras={"config_crypto_maps": config_maps} if config is not None else {},
        )
        peer_extras = _peer_extras(peer_entries, route_entries, ipsec_profiles or {}, config_rows)

        self._partial = state
        # crypto ACL: only the ACLs the relevant crypto map entries name
        maps_known = crypto_maps if crypto_maps is not None else (config_maps or None)
        if maps_known is not None:
            relevant = [e for e in maps_known if self.ctx.peer is None or self.ctx.peer in e.peers]
            self.ctx = replace(self.ctx, acl_names=frozenset(e.acl for e in relevant if e.acl))
        if self.peer:
            self.variables.update(derive_variables(state, self.peer))
        if "crypto_acl" in self.variables or self.ctx.acl_names:
            crypto_acl = self.section("crypto_acl")
            crypto_acl_later = self.section("crypto_acl", 2)
        else:
            crypto_acl = crypto_acl_later = None
            reason = "the crypto ACL name could not be derived"
            if self.peer:
                reason = missing_reasons(state, self.peer).get("crypto_acl", reason)
            self._missing("crypto_acl", reason, variables=("crypto_acl",))
        state = replace(state, crypto_acl=crypto_acl, crypto_acl_later=crypto_acl_later)
        self._partial = state
        if self.peer:
            self.variables.update(derive_variables(state, self.peer))

        routes: dict[str, RouteLookup] = {}
        for plan_id in ROUTE_SECTIONS:
            if self._in_plan(plan_id):
                route = self.section(plan_id)
                if route is not None:
                    routes[plan_id] = route
        state = replace(state, routes=routes)
        self._partial = state
        if self.peer:
            self.variables.update(derive_variables(state, self.peer))

        interfaces: dict[str, Interface] = {}
        for plan_id in ("source_interface", "crypto_interface"):
            if self._in_plan(plan_id):
                interface = self.section(plan_id)
                if interface is not None:
                    interfaces[interface.name] = interface

        extras = dict(state.extras)
        if self._in_plan("engine_configuration"):
            engine_config = self.section("engine_configuration")
            if engine_config is not None:
                extras["crypto_engine"] = engine_config
        extras["variables"] = dict(self.variables)
        for name in ("source_interface", "crypto_interface"):
            if self.variables.get(name):
                extras[name] = self.variables[name]
        extras["features"] = dict(self.features)
        extras.update(peer_extras)
        extras.update({k: v for k, v in self.peer_ikev2.items() if v and v != "none"})
        sessions = self.section("crypto_session")
        if sessions is not None:
            extras["crypto_sessions"] = [
                s for s in sessions if self.ctx.peer is None or _address(s["peer"]) == self.ctx.peer
            ]

        logs = None
        unclassified: tuple[Evidence, ...] = ()
        log_value = self.section("logging")
        if log_value is not None:
            logs, unclassified = log_value
        debug_events, debug_unclassified = self._debug_output(state.clock)
        if debug_events or debug_unclassified:
            logs = (*(logs or ()), *debug_events)
            unclassified = (*unclassified, *debug_unclassified)

        return replace(
            state,
            interfaces=interfaces,
            logs=logs,
            unclassified_log_lines=unclassified,
            problems=tuple(self.problems),
            extras=extras,
        )

    def _debug_output(
        self, clock: datetime | None
    ) -> tuple[tuple[LogEvent, ...], tuple[Evidence, ...]]:
        """Events of ``debug crypto ...`` captures (added by ``check --debug``): log text too."""
        events: list[LogEvent] = []
        unclassified: list[Evidence] = []
        for capture in self.capture.captures:
            if (
                not capture.command.startswith("debug ")
                or not capture.ok
                or not capture.raw.strip()
            ):
                continue
            found, rest = classify_log_text(
                self.platform.name,
                capture.raw,
                reference=clock,
                command=capture.command,
                device=self.capture.name,
                sample=capture.sample,
            )
            events.extend(found)
            unclassified.extend(rest)
        return tuple(events), tuple(unclassified)

    def _in_plan(self, plan_id: str) -> bool:
        return any(entry.id == plan_id for entry in self.platform.commands)

    def _ikev2_policies(
        self,
        peer_entries: Sequence[CryptoMapEntry],
        ipsec_profiles: Mapping[str, Mapping[str, Any]],
        config_rows: list[dict[str, Any]],
    ) -> tuple[IkePolicy, ...] | None:
        """The IKE policies IKEv2 offers (None when the proposals are unknown)."""
        proposals = self.section("ikev2_proposal")
        policies = self.section("ikev2_policy")
        profiles = self.section("ikev2_profile")
        if proposals is None:
            return None
        profile = _ikev2_profile_for(
            profiles or (),
            self.ctx.peer,
            _ikev2_profile_names(peer_entries, ipsec_profiles, config_rows),
        )
        if profile is not None:
            self.peer_ikev2 = {
                "ikev2_profile": str(profile.get("name", "")),
                "ikev2_keyring": str(profile.get("keyring", "")).removeprefix("local ").strip(),
            }
        authentication = (
            ikev2_authentication(str(profile.get("local_auth", ""))) if profile else "pre-share"
        )
        lifetime = _opt_int(profile.get("lifetime", "")) if profile else None
        return ike_policies(offered_proposals(proposals, policies), authentication, lifetime)

    def _missing(self, plan_id: str, reason: str, variables: tuple[str, ...] = ()) -> None:
        if not self._in_plan(plan_id) or self.left_out(self.platform.command(plan_id)):
            return
        self.problems.append(
            CommandProblem(
                command=self.platform.command(plan_id).command,
                outcome=Outcome.MISSING.value,
                raw="",
                reason=reason,
                section=plan_id,
                variables=variables,
            )
        )

    def _config_rows(self) -> list[dict[str, Any]]:
        entry = self.platform.command("running_config")
        capture, _looked, _reason = self.find(entry, 1)
        if capture is None:
            return []
        text, _offset = _prepare(capture)
        return parse_running_config(text)


# Sample crypto map names IOS makes for tunnel protection: "Tunnel0-head-0", "Tunnel10-head-1"
_TUNNEL_HEAD = re.compile(r"^\S+-head-\d+$")


def _combine(
    first: tuple[Any, ...] | None, second: tuple[Any, ...] | None
) -> tuple[Any, ...] | None:
    """Two families of one section (IKEv1 + IKEv2): unknown only when both are."""
    if first is None and second is None:
        return None
    return (*(first or ()), *(second or ()))


def _config_ipsec_profiles(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The configuration's ``crypto ipsec profile`` blocks, in the shape of
    ``_build_ipsec_profiles`` (IOS's default lifetime where none is set)."""
    return {
        str(row["name"]): {
            "transform_sets": list(row["transform_sets"]),
            "pfs_group": row["pfs_group"],
            "lifetime_seconds": row["lifetime_seconds"],
            "lifetime_kilobytes": None,
            "ikev2_profile": row["ikev2_profile"],
            "evidence": None,
        }
        for row in rows
        if row["kind"] == "ipsec_profile"
    }


def _ikev2_profile_names(
    entries: Sequence[CryptoMapEntry],
    ipsec_profiles: Mapping[str, Mapping[str, Any]],
    config_rows: list[dict[str, Any]],
) -> list[str]:
    """The IKEv2 profiles the peer's entries name (IPsec profile or crypto map entry)."""
    names: list[str] = []
    for entry in entries:
        profile = ipsec_profiles.get(entry.name)
        if profile is not None and entry.interfaces and not entry.acl:
            names.append(str(profile.get("ikev2_profile") or ""))
        for row in config_rows:
            if (
                row["kind"] == "crypto_map_entry"
                and row["name"] == entry.name
                and row["sequence"] == entry.sequence
            ):
                names.append(str(row["ikev2_profile"]))
    return [n for n in names if n]


def _ikev2_profile_for(
    profiles: Sequence[Mapping[str, Any]], peer: IPAddress | None, named: Sequence[str]
) -> Mapping[str, Any] | None:
    """The IKEv2 profile serving ``peer``: the one its entry names, else the one whose
    remote identity covers it, else the only one."""
    for name in named:
        for profile in profiles:
            if profile.get("name") == name:
                return profile
    if peer is not None:
        for profile in profiles:
            if profile_matches(profile, peer):
                return profile
    return profiles[0] if len(profiles) == 1 else None


def _peer_extras(
    entries: Sequence[CryptoMapEntry],
    route_entries: Sequence[CryptoMapEntry],
    ipsec_profiles: Mapping[str, Mapping[str, Any]],
    config_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """``route_based``, ``tunnel_interface`` and ``ike_version`` for the checked peer."""
    if not entries:
        return {}
    routed = [e for e in entries if e in route_entries]
    extras: dict[str, Any] = {"route_based": len(routed) == len(entries)}
    if routed:
        extras["tunnel_interface"] = routed[0].interfaces[0]
    versions = [2 if _ikev2_profile_names([e], ipsec_profiles, config_rows) else 1 for e in entries]
    extras["ike_version"] = versions[0]
    return extras


def _config_map_entries(
    rows: list[dict[str, Any]], config: ConfigFacts
) -> tuple[CryptoMapEntry, ...]:
    """The running configuration's crypto map entries (a fallback for variable derivation)."""
    entries: list[CryptoMapEntry] = []
    for row in rows:
        if row["kind"] != "crypto_map_entry":
            continue
        entries.append(
            CryptoMapEntry(
                name=row["name"],
                sequence=row["sequence"],
                peers=tuple(p for p in (_address(x) for x in row["peers"]) if p),
                acl=row["acl"],
                transform_sets=tuple(row["transform_sets"]),
                pfs_group=row["pfs_group"],
                lifetime_seconds=row["lifetime_seconds"],
                interfaces=config.crypto_map_interfaces.get(row["name"], ()),
            )
        )
    return tuple(entries)


def parse_device(capture: DeviceCapture, peer: str | None = None) -> DeviceState:
    """The typed state of one Cisco IOS device (see the module docstring)."""
    platform = load_platform(capture.platform if capture.platform else PLATFORM)
    return _DeviceParser(capture, peer, platform).run()
