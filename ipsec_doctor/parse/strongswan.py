"""strongSwan (charon + swanctl on Linux) converter: raw captures -> typed, neutral DeviceState.

Contract:
- :func:`parse_device` never raises for a command problem. For every plan command of
  ``platforms/strongswan.yaml`` it finds the capture (the command with ``{peer}`` filled in,
  or a wider output the plan lists), parses it (TextFSM templates ``linux_*.textfsm`` where
  the index has one, small parsers here for ``date -R``, ``pgrep``, ``ip -br addr``,
  ``ip route show table 220``, ``nft list ruleset`` and ``swanctl.conf``) and fills:

  ============== ===================================================================
  clock          ``clock`` (``date -R``, the device's wall-clock time, naive)
  daemon         ``config.ike_daemon_running`` (``pgrep -a charon``: a line = running,
                 nothing = not running); ``config.isakmp_enabled`` True while it runs
  sas            ``ike_sas`` / ``ike_sas_later`` (one per IKE_SA: state, version, SPIs,
                 ``established Ns ago``, ``#id`` as conn_id) and ``ipsec_sas`` /
                 ``ipsec_sas_later`` (one per CHILD_SA: first local/remote selector,
                 packets out/in as encaps/decaps, SPIs in/out, negotiated proposal)
  conns + config ``crypto_maps`` (one :class:`CryptoMapEntry` per child of a connection:
                 ``name`` = connection, ``sequence`` = child's position, ``acl`` = child
                 name, peers = the IP addresses of ``remote_addrs``, local/remote traffic
                 selectors, transform sets and PFS from the child's ``esp_proposals``,
                 ``interfaces`` = the interface holding ``local_addrs``, source = the
                 connection's ``remote:`` line, ``lifetime_seconds`` = the child's rekey
                 time or its shorter ``life_time`` (None: charon's default 1 h) with
                 ``lifetime_source`` the line printing or setting it); ``transform_sets``
                 (one per ESP proposal combination, named ``conn/child`` or
                 ``conn/child#N``); ``ike_policies`` (one per IKE proposal combination of
                 the connections naming the peer, all connections when none does;
                 ``connection`` = its connection, ``lifetime_seconds`` = the connection's
                 rekey/reauth time, else charon's default 4 h, ``lifetime_source`` the line
                 printing or setting it); ``config`` (ConfigFacts: keys for addresses,
                 DPD delay, interface addresses, daemon state). ``swanctl --list-conns``
                 decides which connections are loaded; ``swanctl.conf`` adds the proposals
                 (5.9 does not print them) and stands in for ``--list-conns`` when charon
                 is down.
  route_peer     ``routes["route_peer"]`` (``ip route get``: "Network is unreachable",
                 ``unreachable``/``blackhole``/``prohibit`` routes are found=False)
  addresses      ``interfaces`` (first address of each) and every address in
                 ``config.interface_addresses`` (``lan0``, ``lan0:1`` ...)
  firewall       ``extras["ike_blocked_ports"]``: ``{500: (Evidence, ...), 4500: ...}`` for
                 nftables rules that drop or reject UDP 500/4500 (neutral hook read by the
                 ``ike`` rules); ``extras["firewall_drops"]`` every such rule
  logging        ``logs`` / ``unclassified_log_lines`` via the signature table
                 ``platforms/strongswan_signatures.yaml`` and the IKE_SA context of
                 :mod:`ipsec_doctor.parse.strongswan_logs`
  stats, pols,   ``extras``: ``ipsec_backend`` (``kernel-libipsec`` = userspace ESP: then
  xfrm_*,        ``ip xfrm`` is empty by design), ``ike_sas_half_open``, ``trap_policies``,
  tunnel_routes, ``xfrm_states``, ``xfrm_policies``, ``tunnel_routes``, ``version``,
  version,       ``service``; ``connections`` (name, version, addresses, children) and
  service        ``crypto_map_binding`` False (policies are not bound to interfaces)
  ============== ===================================================================

- Unknown is not empty: a capture that is not OK, an output no parser accepts and a command
  not collected leave the section ``None`` and add a :class:`CommandProblem`. One exception
  with proof: when charon is not running (``pgrep`` prints nothing, or is unknown, and the
  swanctl commands say ``connecting to 'unix:///var/run/charon.vici' failed: Connection
  refused`` / ``No such file or directory``) there are no SAs: ``ike_sas``/``ipsec_sas`` are
  empty, the refusal line is kept in ``config.sources`` as evidence, and no problem is added.
  A refusal for another reason (``Permission denied``) is a problem.
- Every object carries an :class:`Evidence` (command as run, sample, device, exact line with
  its 1-based line number in the raw capture).
- Normalised vocabulary as in :mod:`ipsec_doctor.parse.cisco_ios`: IKE encryption
  ``aes-256``, hash ``sha`` (SHA-1)/``sha256``..., authentication ``pre-share``/``rsa-sig``,
  DH group numbers; transforms ``esp-aes-256``/``esp-sha256-hmac``/``esp-sha-hmac``/
  ``esp-gcm-256``; PFS ``group14``. IKE_SA states: ESTABLISHED/REKEYING/REKEYED ->
  established, CREATED/CONNECTING -> negotiating, DELETING/DESTROYING -> deleted.
- :func:`convert_command` parses one output for one plan id (``ipsec-doctor parse``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from ipaddress import IPv4Address, ip_address, ip_interface, ip_network
from typing import Any

from ipsec_doctor.errors import ParseError
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.lookup import candidate_commands
from ipsec_doctor.model.state import (
    CommandProblem,
    ConfigFacts,
    CryptoMapEntry,
    DeviceState,
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
    TransformSet,
)
from ipsec_doctor.parse.strongswan_config import (
    Section,
    esp_transforms,
    ike_policies,
    negotiated_transforms,
    parse_swanctl_conf,
    seconds,
    split_list,
)
from ipsec_doctor.parse.strongswan_logs import charon_events
from ipsec_doctor.parse.textfsm_parser import clean_output, parse_output
from ipsec_doctor.platforms.loader import PlanCommand, Platform, load_platform

PLATFORM = "strongswan"

#: every plan id this converter understands
SECTIONS = frozenset(
    {
        "clock",
        "daemon",
        "service",
        "version",
        "sas",
        "xfrm_state",
        "stats",
        "conns",
        "pols",
        "xfrm_policy",
        "route_peer",
        "tunnel_routes",
        "addresses",
        "firewall",
        "config",
        "logging",
    }
)

#: the plan ids that talk to charon over VICI (refused alike when it is down)
VICI_SECTIONS = frozenset({"sas", "stats", "conns", "pols"})

#: UDP ports of IKE (500) and IKE in UDP / NAT-T (4500)
IKE_PORTS = (500, 4500)

# ---------------------------------------------------------------------------------------------
# vocabulary

_IKE_STATES: dict[str, IkeStatus] = {
    "ESTABLISHED": IkeStatus.ESTABLISHED,
    "REKEYING": IkeStatus.ESTABLISHED,
    "REKEYED": IkeStatus.ESTABLISHED,
    "CREATED": IkeStatus.NEGOTIATING,
    "CONNECTING": IkeStatus.NEGOTIATING,
    "DELETING": IkeStatus.DELETED,
    "DESTROYING": IkeStatus.DELETED,
}


def ike_status(state: str) -> IkeStatus:
    """The neutral phase-1 status of a charon IKE_SA state name."""
    return _IKE_STATES.get(state.strip().upper(), IkeStatus.UNKNOWN)


def authentication(text: str) -> str:
    """``pre-shared key``/``psk`` -> ``pre-share``; ``public key``/``pubkey`` -> ``rsa-sig``."""
    lowered = text.strip().lower()
    if lowered in ("psk", "pre-shared key", "secret"):
        return "pre-share"
    if lowered in ("pubkey", "public key", "rsa", "ecdsa") or lowered.startswith("pubkey"):
        return "rsa-sig"
    if lowered.startswith("eap") or lowered.startswith("xauth"):
        return lowered
    return lowered or "pre-share"


# Sample device value (list-conns): "rekeying every 14400s", "reauthentication every 14400s"
_EVERY = re.compile(r"every (?P<seconds>\d+)s")


def _every(text: str) -> int | None:
    match = _EVERY.search(text or "")
    return int(match["seconds"]) if match else None


#: charon's defaults where a connection sets no ``rekey_time``: IKE_SA 4 h, CHILD_SA 1 h
IKE_REKEY_DEFAULT = 14400
CHILD_REKEY_DEFAULT = 3600


def _replaced_after(
    rekey: int | None,
    rekey_source: Evidence | None,
    life: int | None,
    life_source: Evidence | None,
    default: int,
) -> tuple[int | None, Evidence | None]:
    """(seconds, line) after which charon replaces an SA: ``rekey_time`` (its default where
    unset), or ``life_time`` when that ends the SA first; (None, None) when neither is set."""
    if life is None or life >= (rekey or default):
        return rekey, rekey_source
    return life, life_source


def _address(value: Any) -> IPAddress | None:
    try:
        return ip_address(str(value).strip())
    except ValueError:
        return None


def _addresses(values: Iterable[str]) -> tuple[IPAddress, ...]:
    found: list[IPAddress] = []
    for value in values:
        for item in split_list(value):
            address = _address(item)
            if address is not None and address not in found:
                found.append(address)
    return tuple(found)


# Sample device values: "192.0.2.0/26", "192.0.2.0/26[tcp/http]", "10.1.0.0/16 10.2.0.0/16",
#   "dynamic", "192.0.2.10-192.0.2.20"
_TS = re.compile(r"^(?P<net>[0-9A-Fa-f:.]+(?:/\d+)?)(?:\[[^\]]*\])?$")


def selectors(text: str) -> tuple[IPNetwork, ...]:
    """The networks of a traffic selector list (``dynamic`` and ranges are left out)."""
    found: list[IPNetwork] = []
    for item in split_list(text):
        match = _TS.match(item)
        if match is None:
            continue
        try:
            network = ip_network(match["net"], strict=False)
        except ValueError:
            continue
        if network not in found:
            found.append(network)
    return tuple(found)


def _int(value: Any, default: int = 0) -> int:
    text = str(value).strip()
    return int(text) if text.isdigit() else default


def _opt_int(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


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

    def find(self, pattern: str, *, start: int | None = None, stop: int | None = None) -> int:
        """Index of the first line from ``start`` (default: the cursor) matching ``pattern``
        before ``stop``; -1 if none."""
        regex = re.compile(pattern)
        begin = self.cursor if start is None else start
        end = len(self.lines) if stop is None else min(stop, len(self.lines))
        for index in range(begin, end):
            if regex.search(self.lines[index]):
                return index
        return -1

    def evidence(self, pattern: str, *, advance: bool = True, stop: int | None = None) -> Evidence:
        """Evidence of the next line matching ``pattern`` (from the cursor, then from the top);
        an evidence with an empty line when there is none."""
        index = self.find(pattern, stop=stop)
        if index < 0:
            index = self.find(pattern, start=0, stop=stop)
        if index < 0:
            return self.empty()
        if advance:
            self.cursor = index + 1
        return self.at(index)

    def at(self, index: int) -> Evidence:
        return Evidence(
            command=self.capture.command,
            line=self.lines[index].rstrip(),
            line_no=index + 1 + self.offset,
            sample=self.capture.sample,
            device=self.device,
        )

    def empty(self) -> Evidence:
        return Evidence(
            command=self.capture.command,
            line="",
            line_no=0,
            sample=self.capture.sample,
            device=self.device,
        )

    def all(self) -> list[Evidence]:
        return [self.at(i) for i, line in enumerate(self.lines) if line.strip()]


def _ok(evidence: Evidence) -> Evidence | None:
    return evidence if evidence.line else None


# ---------------------------------------------------------------------------------------------
# charon not reachable over VICI

# Sample device line: "connecting to 'unix:///var/run/charon.vici' failed: Connection refused"
_VICI_FAILED = re.compile(r"^connecting to '(?P<uri>[^']*)' failed: (?P<why>.+?)\s*$", re.M)
_DAEMON_DOWN_REASONS = ("connection refused", "no such file or directory")


class ViciRefusedError(ParseError):
    """swanctl could not reach charon; ``daemon_down`` when the socket is not served at all."""

    def __init__(self, message: str, evidence: Evidence, daemon_down: bool) -> None:
        super().__init__(message)
        self.evidence = evidence
        self.daemon_down = daemon_down


def _check_vici(lines: _Lines) -> None:
    for index, line in enumerate(lines.lines):
        match = _VICI_FAILED.match(line.strip())
        if match is None:
            continue
        why = match["why"]
        down = any(reason in why.lower() for reason in _DAEMON_DOWN_REASONS)
        raise ViciRefusedError(f"charon is not reachable over VICI: {why}", lines.at(index), down)


# ---------------------------------------------------------------------------------------------
# section builders: one output -> (rows, typed value); raise ParseError


@dataclass
class _Context:
    """What a builder may know besides its own output."""

    peer: IPAddress | None = None
    reference_time: datetime | None = None
    platform: Platform | None = None
    query: str = ""


Builder = Callable[[str, _Lines, _Context], tuple[list[dict[str, Any]], Any]]


def _template_rows(command: str, text: str) -> list[dict[str, Any]]:
    return parse_output(PLATFORM, command, text)


_DATE_LAYOUTS = ("%a %b %d %H:%M:%S %Z %Y", "%a %d %b %Y %H:%M:%S %Z", "%Y-%m-%dT%H:%M:%S%z")


def _build_clock(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    # Sample device line: "Mon, 23 Nov 2026 07:13:47 +0000" (date -R)
    stripped = text.strip()
    if not stripped:
        raise ParseError("date printed nothing")
    first_line = stripped.splitlines()[0].strip()
    try:
        stamp = parsedate_to_datetime(first_line)
    except (TypeError, ValueError, OverflowError):  # a garbled day or year: try the layouts
        stamp = None
    if stamp is None:
        for layout in _DATE_LAYOUTS:
            try:
                stamp = datetime.strptime(first_line, layout)
                break
            except ValueError:
                continue
    if stamp is None:
        raise ParseError(f"date: cannot read the time {first_line!r}")
    naive = stamp.replace(tzinfo=None)  # the wall clock the log stamps use
    return [{"time": naive.isoformat()}], naive


def _build_daemon(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    # Sample device line: "50 /usr/sbin/charon-systemd"
    rows: list[dict[str, Any]] = []
    evidence: list[Evidence] = []
    for index, line in enumerate(lines.lines):
        match = re.match(r"^\s*(?P<pid>\d+)\s+(?P<cmd>\S.*?)\s*$", line)
        if match is None:
            if line.strip():
                raise ParseError(f"pgrep: unexpected line {line.strip()!r}")
            continue
        if "charon" not in match["cmd"]:
            continue
        rows.append({"pid": match["pid"], "command": match["cmd"]})
        evidence.append(lines.at(index))
    return rows, (bool(rows), tuple(evidence))


def _build_first_line(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    for index, line in enumerate(lines.lines):
        if line.strip():
            return [{"line": line.strip()}], (line.strip(), lines.at(index))
    raise ParseError("empty output")


def _ike_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per IKE_SA (the template fills its values down into every CHILD_SA row)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault((row["ike_name"], row["ike_id"]), row)
    return list(seen.values())


def _ike_header(name: str, ike_id: str) -> str:
    return rf"^{re.escape(name)}:\s+#{re.escape(ike_id)},"


def _build_sas(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    _check_vici(lines)
    rows = _template_rows(lines.capture.command, text)
    ike: list[IkeSa] = []
    for row in _ike_rows(rows):
        peer = _address(row["remote_host"])
        if peer is None:
            raise ParseError(f"swanctl --list-sas: bad remote address {row['remote_host']!r}")
        ike.append(
            IkeSa(
                peer=peer,
                local=_address(row["local_host"]),
                state=row["ike_state"],
                status=ike_status(row["ike_state"]),
                ike_version=_int(row["ike_version"], 2),
                conn_id=_opt_int(row["ike_id"]),
                established_seconds=_opt_int(row["ike_established_ago"]),
                spis=tuple(s for s in (row["initiator_spi"], row["responder_spi"]) if s),
                source=_ok(lines.evidence(_ike_header(row["ike_name"], row["ike_id"]))),
            )
        )
    lines.cursor = 0
    children: list[IpsecSa] = []
    for row in rows:
        if not row["child_name"]:
            continue
        header = lines.find(_ike_header(row["ike_name"], row["ike_id"]), start=0)
        child_at = lines.find(
            rf"^\s+{re.escape(row['child_name'])}:\s+#{re.escape(row['child_id'])},",
            start=max(header, 0),
        )
        if child_at < 0:
            raise ParseError(f"swanctl --list-sas: CHILD_SA {row['child_name']!r} not found")
        stop = lines.find(r"^\s{0,2}\S+:\s+#\d+,", start=child_at + 1)
        stop = len(lines.lines) if stop < 0 else stop
        lines.cursor = child_at + 1
        spi_in, spi_out = row["spi_in"], row["spi_out"]
        encaps_at = lines.find(rf"^\s+out\s+{re.escape(spi_out)}\b", stop=stop) if spi_out else -1
        decaps_at = lines.find(rf"^\s+in\s+{re.escape(spi_in)}\b", stop=stop) if spi_in else -1
        transforms, pfs = negotiated_transforms(row["child_proposal"])
        peer = _address(row["remote_host"])
        if peer is None:
            continue
        local_ts, remote_ts = selectors(row["local_ts"]), selectors(row["remote_ts"])
        children.append(
            IpsecSa(
                peer=peer,
                local=_address(row["local_host"]),
                interface="",
                crypto_map=row["ike_name"],
                local_selector=local_ts[0] if local_ts else None,
                remote_selector=remote_ts[0] if remote_ts else None,
                encaps=_int(row["packets_out"]),
                decaps=_int(row["packets_in"]),
                inbound_spis=(f"0x{spi_in.upper()}",) if spi_in else (),
                outbound_spis=(f"0x{spi_out.upper()}",) if spi_out else (),
                transforms=transforms,
                pfs_group=pfs,
                remaining_seconds=_opt_int(row["child_rekey_in"])
                if row["child_rekey_in"]
                else _opt_int(row["child_expires_in"]),
                source=lines.at(child_at),
                encaps_source=lines.at(encaps_at) if encaps_at >= 0 else None,
                decaps_source=lines.at(decaps_at) if decaps_at >= 0 else None,
            )
        )
    return rows, (tuple(ike), tuple(children))


def _build_conns(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    _check_vici(lines)
    rows = _template_rows(lines.capture.command, text)
    return rows, rows


def _build_stats(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    _check_vici(lines)
    rows = _template_rows(lines.capture.command, text)
    facts: dict[str, Any] = {}
    if rows:
        plugins = str(rows[0].get("plugins", "")).split()
        if "kernel-libipsec" in plugins:
            facts["ipsec_backend"] = "kernel-libipsec"
        elif "kernel-netlink" in plugins:
            facts["ipsec_backend"] = "kernel-netlink"
        half_open = _opt_int(rows[0].get("ike_sas_half_open", ""))
        if half_open is not None:
            facts["ike_sas_half_open"] = half_open
    return rows, facts


def _build_pols(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    _check_vici(lines)
    rows = _template_rows(lines.capture.command, text)
    names = [
        f"{r['conn_name']}/{r['child_name']}" if r["conn_name"] else r["child_name"] for r in rows
    ]
    return rows, tuple(names)


def _build_template_count(
    text: str, lines: _Lines, ctx: _Context
) -> tuple[list[dict[str, Any]], Any]:
    rows = _template_rows(lines.capture.command, text)
    return rows, rows


def _build_route(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    rows = _template_rows(lines.capture.command, text)
    if not rows:
        raise ParseError("ip route get printed neither a route nor an error")
    row = rows[0]
    if row.get("error"):
        return rows, RouteLookup(
            query=ctx.query,
            found=False,
            source=_ok(lines.evidence(re.escape(row["error"]))),
        )
    kind = row.get("type", "")
    source = _ok(lines.evidence(rf"(?<!\S){re.escape(row['destination'])}(?!\S)"))
    if kind in ("unreachable", "blackhole", "prohibit", "throw"):
        return rows, RouteLookup(query=ctx.query, found=False, source=source)
    gateway = _address(row.get("gateway", ""))
    interface = row.get("interface", "")
    return rows, RouteLookup(
        query=ctx.query,
        found=True,
        prefix=None,  # `ip route get` names the destination, not the matching prefix
        interfaces=(interface,) if interface else (),
        next_hops=(gateway,) if gateway is not None else (),
        connected=gateway is None and kind in ("", "unicast"),
        is_default=False,
        source=source,
    )


# Sample device lines:
#   "wan0@if2         UP             198.51.100.1/25 fe80::7c29:2fff:fe0f:bec0/64"
#   "lo               UNKNOWN        127.0.0.1/8 ::1/128"
#   "ipsec0           UNKNOWN        fe80::88f5:248a:d948:a37e/64"
_BRIEF = re.compile(r"^(?P<name>[^\s@]+)(?:@\S+)?\s+(?P<state>[A-Z]+)(?:\s+(?P<addrs>.*?))?\s*$")
_LINK_STATES = {
    "UP": InterfaceStatus.UP,
    "DOWN": InterfaceStatus.DOWN,
    "LOWERLAYERDOWN": InterfaceStatus.DOWN,
    "NOTPRESENT": InterfaceStatus.DOWN,
}


def _build_addresses(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    rows: list[dict[str, Any]] = []
    interfaces: dict[str, Interface] = {}
    addresses: dict[str, IPInterface] = {}
    for index, line in enumerate(lines.lines):
        if not line.strip():
            continue
        match = _BRIEF.match(line.strip())
        if match is None:
            raise ParseError(f"ip -br addr: unexpected line {line.strip()!r}")
        name, state = match["name"], match["state"]
        parsed: list[IPInterface] = []
        for item in (match["addrs"] or "").split():
            try:
                parsed.append(ip_interface(item))
            except ValueError as error:
                raise ParseError(f"ip -br addr: bad address {item!r}") from error
        rows.append({"name": name, "state": state, "addresses": [str(a) for a in parsed]})
        usable = [a for a in parsed if not a.ip.is_link_local]
        usable.sort(key=lambda a: 0 if isinstance(a.ip, IPv4Address) else 1)
        status = _LINK_STATES.get(state, InterfaceStatus.UNKNOWN)
        interfaces[name] = Interface(
            name=name,
            status=status,
            protocol_up=None if status is InterfaceStatus.UNKNOWN else status is InterfaceStatus.UP,
            address=usable[0] if usable else None,
            source=lines.at(index),
        )
        for position, address in enumerate(usable):
            if address.ip.is_loopback:
                continue
            addresses[name if position == 0 else f"{name}:{position}"] = address
    return rows, (interfaces, addresses)


# Sample device line: "192.0.2.128/26 dev ipsec0 proto static src 192.0.2.1"
_TABLE_ROUTE = re.compile(r"^(?:(?P<type>unreachable|blackhole|prohibit|throw)\s+)?(?P<dest>\S+)")


def _build_tunnel_routes(
    text: str, lines: _Lines, ctx: _Context
) -> tuple[list[dict[str, Any]], Any]:
    rows: list[dict[str, Any]] = []
    for line in lines.lines:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(("Error:", "RTNETLINK")):
            raise ParseError(f"ip route show table 220: {stripped}")
        match = _TABLE_ROUTE.match(stripped)
        if match is None:
            continue
        destination = match["dest"]
        device = re.search(r"\bdev\s+(\S+)", stripped)
        rows.append(
            {
                "destination": "0.0.0.0/0" if destination == "default" else destination,
                "interface": device.group(1) if device else "",
                "type": match["type"] or "",
            }
        )
    return rows, tuple(rows)


# Sample device lines:
#   "table inet lab_fault {"   "	chain input {"
#   "		type filter hook input priority filter; policy accept;"
#   "		udp dport { 500, 4500 } counter packets 12 bytes 1456 drop"
_NFT_TABLE = re.compile(r"^table\s+(?P<family>\S+)\s+(?P<name>\S+)\s*\{")
_NFT_CHAIN = re.compile(r"^chain\s+(?P<name>\S+)\s*\{")
_NFT_HOOK = re.compile(r"\bhook\s+(?P<hook>\w+)")
_NFT_DPORT = re.compile(r"\budp\s+dport\s+(?P<ports>\{[^}]*\}|\S+)")
_NFT_VERDICT = re.compile(r"\b(?P<verdict>drop|reject)\b")
_NFT_ERROR = re.compile(r"(?:Operation not permitted|Permission denied|command not found)", re.I)
_PORT_NAMES = {"isakmp": 500, "ipsec-nat-t": 4500}


def _ports(spec: str) -> list[int]:
    found: list[int] = []
    for item in re.split(r"[\s,{}]+", spec):
        if not item:
            continue
        if item.isdigit():
            found.append(int(item))
        elif "-" in item and all(p.isdigit() for p in item.split("-", 1)):
            low, high = (int(p) for p in item.split("-", 1))
            found += [p for p in IKE_PORTS if low <= p <= high]
        elif item in _PORT_NAMES:
            found.append(_PORT_NAMES[item])
    return found


def _build_firewall(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    if _NFT_ERROR.search(text):
        raise ParseError(f"nft: {text.strip().splitlines()[0]}")
    rows: list[dict[str, Any]] = []
    table = chain = hook = ""
    for index, line in enumerate(lines.lines):
        stripped = line.strip()
        if match := _NFT_TABLE.match(stripped):
            table, chain, hook = f"{match['family']} {match['name']}", "", ""
            continue
        if match := _NFT_CHAIN.match(stripped):
            chain, hook = match["name"], ""
            continue
        if (match := _NFT_HOOK.search(stripped)) and stripped.startswith("type "):
            hook = match["hook"]
            continue
        dport = _NFT_DPORT.search(stripped)
        verdict = _NFT_VERDICT.search(stripped)
        if dport is None or verdict is None:
            continue
        ports = [p for p in _ports(dport["ports"]) if p in IKE_PORTS]
        if not ports:
            continue
        rows.append(
            {
                "table": table,
                "chain": chain,
                "hook": hook,
                "ports": ports,
                "verdict": verdict["verdict"],
                "source": lines.at(index),
            }
        )
    return rows, tuple(rows)


def _build_config(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    stripped = text.strip()
    if stripped.startswith(("cat:", "sudo:")) or "Permission denied" in stripped.split("\n")[0]:
        raise ParseError(stripped.split("\n")[0])
    tree = parse_swanctl_conf(text, line_offset=lines.offset)
    return [], tree


def _build_logging(text: str, lines: _Lines, ctx: _Context) -> tuple[list[dict[str, Any]], Any]:
    platform = ctx.platform or load_platform(PLATFORM)
    events, unclassified = charon_events(
        platform,
        text,
        reference=ctx.reference_time,
        command=lines.capture.command,
        device=lines.device,
        sample=lines.capture.sample,
        line_offset=lines.offset,
    )
    return [], (events, unclassified)


BUILDERS: dict[str, Builder] = {
    "clock": _build_clock,
    "daemon": _build_daemon,
    "service": _build_first_line,
    "version": _build_first_line,
    "sas": _build_sas,
    "xfrm_state": _build_template_count,
    "stats": _build_stats,
    "conns": _build_conns,
    "pols": _build_pols,
    "xfrm_policy": _build_template_count,
    "route_peer": _build_route,
    "tunnel_routes": _build_tunnel_routes,
    "addresses": _build_addresses,
    "firewall": _build_firewall,
    "config": _build_config,
    "logging": _build_logging,
}


def _query(command: str) -> str:
    # Sample command: "ip route get 198.51.100.129" -> "198.51.100.129"
    found = re.findall(r"[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]+", command)
    return found[-1] if found else ""


def _convert(
    plan_id: str, capture: CommandCapture, device: str, ctx: _Context
) -> tuple[list[dict[str, Any]], Any]:
    builder = BUILDERS.get(plan_id)
    if builder is None:
        raise ParseError(f"no converter for plan id {plan_id!r}")
    text, offset = clean_output(capture.command, capture.raw)
    lines = _Lines(text, capture, device, offset)
    return builder(text, lines, replace(ctx, query=_query(capture.command)))


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
    loaded = platform or load_platform(PLATFORM)
    capture = CommandCapture(command=command, sample=sample, outcome=Outcome.OK, raw=text)
    ctx = _Context(peer=_address(peer) if peer else None, platform=loaded)
    rows, value = _convert(plan_id, capture, device, ctx)
    if plan_id == "conns":
        value = _entries_from_rows(value, None, {}, _Lines(text, capture, device, 0))
    return rows, value


# ---------------------------------------------------------------------------------------------
# connections: list-conns rows + swanctl.conf -> crypto map entries, transform sets, policies


@dataclass
class _Connection:
    """One connection as the converter needs it."""

    name: str
    version: str = ""
    local_addrs: tuple[str, ...] = ()
    remote_addrs: tuple[str, ...] = ()
    auth: str = ""
    rekey_seconds: int | None = None
    rekey_source: Evidence | None = None  # the line that prints or sets ``rekey_seconds``
    dpd_seconds: int | None = None
    children: list[dict[str, Any]] = field(default_factory=list)
    source: Evidence | None = None  # the line naming the remote addresses
    config: Section | None = None  # its swanctl.conf section, when read


def _conf_connections(tree: Section | None) -> dict[str, Section]:
    if tree is None:
        return {}
    connections = tree.section("connections")
    return dict(connections.sections) if connections is not None else {}


def _connections_from_rows(rows: list[dict[str, Any]], lines: _Lines) -> list[_Connection]:
    found: dict[str, _Connection] = {}
    for row in rows:
        name = row["conn_name"]
        conn = found.get(name)
        if conn is None:
            header = lines.find(rf"^{re.escape(name)}:\s+IKEv", start=0)
            remote_at = lines.find(r"^\s{2}remote:\s", start=header + 1) if header >= 0 else -1
            next_conn = lines.find(r"^\S+:\s+IKEv", start=header + 1) if header >= 0 else -1
            if remote_at >= 0 and 0 <= next_conn < remote_at:
                remote_at = -1
            rekey = _every(row["rekey"]) or _every(row["reauth"])
            conn = _Connection(
                name=name,
                version=row["version"],
                local_addrs=tuple(row["local_addrs"]),
                remote_addrs=tuple(row["remote_addrs"]),
                auth=(row["local_auth"] or [""])[0],
                rekey_seconds=rekey,
                # Sample device line: "s2s: IKEv2, no reauthentication, rekeying every 14400s"
                rekey_source=lines.at(header) if rekey and header >= 0 else None,
                dpd_seconds=_opt_int(row["dpd_delay"]),
                source=lines.at(remote_at)
                if remote_at >= 0
                else (lines.at(header) if header >= 0 else None),
            )
            found[name] = conn
        if row["child_name"]:
            child_rekey = _every(row["child_rekey"])
            conn.children.append(
                {
                    "name": row["child_name"],
                    "local_ts": row["local_ts"],
                    "remote_ts": row["remote_ts"],
                    "rekey_seconds": child_rekey,
                    "rekey_source": _child_line(lines, name, row["child_name"])
                    if child_rekey
                    else None,
                }
            )
    return list(found.values())


def _child_line(lines: _Lines, conn: str, child: str) -> Evidence | None:
    """The list-conns line of ``child`` within the block of connection ``conn``."""
    header = lines.find(rf"^{re.escape(conn)}:\s+IKEv", start=0)
    if header < 0:
        return None
    next_conn = lines.find(r"^\S+:\s+IKEv", start=header + 1)
    # Sample device line: "  lan: TUNNEL, rekeying every 3600s, dpd action is none"
    at = lines.find(
        rf"^\s+{re.escape(child)}:\s", start=header + 1, stop=next_conn if next_conn >= 0 else None
    )
    return lines.at(at) if at >= 0 else None


def _lifetimes_from_conf(conn: _Connection, lines: _Lines | None) -> None:
    """Let a child's ``life_time`` (swanctl.conf; list-conns of 5.9 does not print it) stand
    for its lifetime where it ends the CHILD_SAs before they are rekeyed."""
    children = conn.config.section("children") if conn.config is not None else None
    if children is None:
        return
    for child in conn.children:
        child_conf = children.sections.get(child["name"])
        life = child_conf.settings.get("life_time") if child_conf else None
        if life is None:
            continue
        child["rekey_seconds"], child["rekey_source"] = _replaced_after(
            child["rekey_seconds"],
            child["rekey_source"],
            seconds(life.value),
            _conf_evidence(lines, life.line_no) if lines else None,
            CHILD_REKEY_DEFAULT,
        )


def _connections_from_conf(tree: Section, lines: _Lines | None) -> list[_Connection]:
    found: list[_Connection] = []
    for name, section in _conf_connections(tree).items():
        remote = section.settings.get("remote_addrs")
        local_auth = section.section("local")
        rekey = section.settings.get("rekey_time") or section.settings.get("reauth_time")
        conn = _Connection(
            name=name,
            version=f"IKEv{section.get('version') or '2'}"
            if section.get("version") in ("1", "2")
            else "IKEv1/2",
            local_addrs=tuple(split_list(section.get("local_addrs")) or ["%any"]),
            remote_addrs=tuple(split_list(section.get("remote_addrs")) or ["%any"]),
            auth=(local_auth.get("auth") or "") if local_auth else "",
            rekey_seconds=seconds(section.get("rekey_time")) or seconds(section.get("reauth_time")),
            rekey_source=_conf_evidence(lines, rekey.line_no) if rekey and lines else None,
            dpd_seconds=seconds(section.get("dpd_delay")),
            source=_conf_evidence(lines, remote.line_no) if remote and lines else None,
            config=section,
        )
        children = section.section("children")
        for child_name, child in (children.sections if children else {}).items():
            child_rekey = child.settings.get("rekey_time")
            conn.children.append(
                {
                    "name": child_name,
                    "local_ts": child.get("local_ts") or "dynamic",
                    "remote_ts": child.get("remote_ts") or "dynamic",
                    "rekey_seconds": seconds(child.get("rekey_time")),
                    "rekey_source": _conf_evidence(lines, child_rekey.line_no)
                    if child_rekey and lines
                    else None,
                }
            )
        _lifetimes_from_conf(conn, lines)
        found.append(conn)
    return found


def _conf_evidence(lines: _Lines, line_no: int) -> Evidence | None:
    index = line_no - 1 - lines.offset
    if 0 <= index < len(lines.lines):
        return lines.at(index)
    return None


def _entries_from_rows(
    rows: list[dict[str, Any]],
    tree: Section | None,
    interface_of: dict[IPAddress, str],
    lines: _Lines,
) -> tuple[CryptoMapEntry, ...]:
    """Crypto map entries of list-conns rows alone (for ``ipsec-doctor parse``)."""
    entries, _sets = _entries(_connections_from_rows(rows, lines), interface_of)
    return entries


def _set_names(conn: str, child: str, count: int) -> list[str]:
    if count == 1:
        return [f"{conn}/{child}"]
    return [f"{conn}/{child}#{i}" for i in range(1, count + 1)]


SourceOf = Callable[[_Connection, str, str], Evidence | None]


def _no_source(conn: _Connection, key: str, child: str) -> Evidence | None:
    return None


def _entries(
    connections: Sequence[_Connection],
    interface_of: dict[IPAddress, str],
    source_of: SourceOf = _no_source,
) -> tuple[tuple[CryptoMapEntry, ...], tuple[TransformSet, ...] | None]:
    """(entries, transform sets; None when the ESP proposals are not known). ``source_of``
    gives the evidence of a configuration setting (connection, key, child name)."""
    entries: list[CryptoMapEntry] = []
    sets: list[TransformSet] = []
    proposals_known = True
    for conn in connections:
        peers = _addresses(conn.remote_addrs)
        locals_ = _addresses(conn.local_addrs)
        interfaces = tuple(dict.fromkeys(interface_of[a] for a in locals_ if a in interface_of))
        conf_children = conn.config.section("children") if conn.config else None
        for position, child in enumerate(conn.children, start=1):
            child_conf = conf_children.sections.get(child["name"]) if conf_children else None
            combos = None
            proposal_source: Evidence | None = None
            if child_conf is not None:
                setting = child_conf.settings.get("esp_proposals")
                combos = esp_transforms(setting.value if setting else None)
                proposal_source = source_of(conn, "esp_proposals", child["name"])
            names: list[str] = []
            pfs = ""
            if combos is None:
                proposals_known = False
            else:
                names = _set_names(conn.name, child["name"], len(combos))
                pfs = combos[0].pfs_group
                for set_name, combo in zip(names, combos, strict=True):
                    sets.append(
                        TransformSet(
                            name=set_name,
                            transforms=combo.transforms,
                            mode="tunnel",
                            source=proposal_source,
                        )
                    )
            entries.append(
                CryptoMapEntry(
                    name=conn.name,
                    sequence=position,
                    peers=peers,
                    acl=child["name"],
                    local_selectors=selectors(child["local_ts"]),
                    remote_selectors=selectors(child["remote_ts"]),
                    transform_sets=tuple(names),
                    pfs_group=pfs,
                    lifetime_seconds=child["rekey_seconds"],
                    interfaces=interfaces,
                    source=conn.source,
                    lifetime_source=child.get("rekey_source"),
                )
            )
    return tuple(entries), (tuple(sets) if proposals_known else None)


def _policies(
    connections: Sequence[_Connection],
    peer: IPAddress | None,
    source_of: SourceOf = _no_source,
) -> tuple[IkePolicy, ...] | None:
    """IKE policies of the connections naming ``peer`` (all when none does); None if unknown."""
    chosen = [c for c in connections if peer is not None and peer in _addresses(c.remote_addrs)]
    chosen = chosen or list(connections)
    policies: list[IkePolicy] = []
    for conn in chosen:
        if conn.config is None:
            return None
        setting = conn.config.settings.get("proposals")
        combos = ike_policies(setting.value if setting else None)
        if combos is None:
            return None
        source = source_of(conn, "proposals", "")
        for combo in combos:
            policies.append(
                IkePolicy(
                    priority=len(policies) + 1,
                    encryption=combo.encryption,
                    hash=combo.hash,
                    authentication=authentication(conn.auth),
                    dh_group=combo.dh_group,
                    lifetime_seconds=conn.rekey_seconds or IKE_REKEY_DEFAULT,
                    source=source,
                    lifetime_source=conn.rekey_source,
                    connection=conn.name,
                )
            )
    return tuple(policies)


# ---------------------------------------------------------------------------------------------
# the whole device


@dataclass
class _Found:
    """One section's outcome."""

    value: Any = None
    ok: bool = False
    refused: ViciRefusedError | None = None


class _DeviceParser:
    def __init__(self, capture: DeviceCapture, peer: str | None, platform: Platform) -> None:
        self.capture = capture
        self.platform = platform
        self.peer = peer
        self.device = capture.name
        self.problems: list[CommandProblem] = []
        self.variables: dict[str, str] = {"peer": peer} if peer else {}
        self.ctx = _Context(peer=_address(peer) if peer else None, platform=platform)
        self.wider = platform.wider_patterns()
        self.refusals: list[tuple[str, ViciRefusedError, CommandCapture]] = []

    def _in_plan(self, plan_id: str) -> bool:
        return any(entry.id == plan_id for entry in self.platform.commands)

    def find(self, entry: PlanCommand, sample: int) -> tuple[CommandCapture | None, str, str]:
        rendered = entry.render(self.variables)
        if rendered is None:
            missing = ", ".join(v for v in entry.variables if not self.variables.get(v))
            fallbacks = [w for w in entry.wider if "{" not in w]
            for command in fallbacks:
                found = self.capture.get(command, sample)
                if found is not None:
                    return found, command, ""
            return None, entry.command, f"variable {missing} is not known"
        commands = candidate_commands(rendered, self.wider)
        for command in commands:
            found = self.capture.get(command, sample)
            if found is not None:
                return found, command, ""
        return None, commands[0], "not collected"

    def _problem(
        self,
        command: str,
        outcome: str,
        raw: str,
        reason: str,
        section: str,
        variables: tuple[str, ...] = (),
    ) -> None:
        self.problems.append(
            CommandProblem(
                command=command,
                outcome=outcome,
                raw=raw,
                reason=reason,
                section=section,
                variables=variables,
            )
        )

    def section(self, plan_id: str, sample: int = 1) -> _Found:
        """The typed value of ``plan_id`` for ``sample`` (a problem is recorded when unknown;
        VICI refusals are kept aside until the daemon's state is known)."""
        if not self._in_plan(plan_id):
            return _Found()
        entry = self.platform.command(plan_id)
        capture, looked, reason = self.find(entry, sample)
        if capture is None:
            if sample == 1:
                underivable: tuple[str, ...] = ()
                if reason != "not collected":
                    underivable = tuple(v for v in entry.variables if not self.variables.get(v))
                self._problem(looked, Outcome.MISSING.value, "", reason, plan_id, underivable)
            return _Found()
        if capture.outcome is not Outcome.OK:
            self._problem(
                capture.command,
                capture.outcome.value,
                capture.raw,
                capture.error or f"the command ended {capture.outcome.value}",
                plan_id,
            )
            return _Found()
        try:
            _rows, value = _convert(plan_id, capture, self.device, self.ctx)
        except ViciRefusedError as refused:
            self.refusals.append((plan_id, refused, capture))
            return _Found(refused=refused)
        except Exception as error:  # an output no one foresaw: unknown, with its text
            reason = str(error)
            if not isinstance(error, ParseError):
                reason = f"the output could not be read ({type(error).__name__}: {error})"
            self._problem(capture.command, Outcome.UNPARSED.value, capture.raw, reason, plan_id)
            return _Found()
        return _Found(value=value, ok=True)

    def run(self) -> DeviceState:
        capture = self.capture
        clock_found = self.section("clock")
        clock: datetime | None = clock_found.value
        self.ctx = replace(self.ctx, reference_time=clock)
        daemon = self.section("daemon")
        running: bool | None = daemon.value[0] if daemon.ok else None
        daemon_sources: tuple[Evidence, ...] = daemon.value[1] if daemon.ok else ()

        addresses = self.section("addresses")
        interfaces: dict[str, Interface] = {}
        interface_addresses: dict[str, IPInterface] = {}
        if addresses.ok:
            interfaces, interface_addresses = addresses.value
        interface_of = {a.ip: name.split(":")[0] for name, a in interface_addresses.items()}
        own = set(interface_of)

        sas = self.section("sas")
        sas_later = self.section("sas", 2)
        stats = self.section("stats")
        self.section("stats", 2)
        conns = self.section("conns")
        pols = self.section("pols")
        config = self.section("config")
        tree: Section | None = config.value if config.ok else None

        # charon down: every VICI command refused because nothing serves the socket
        down_refusals = [r for r in self.refusals if r[1].daemon_down]
        daemon_down = bool(down_refusals) and running is not True
        refusal_evidence: tuple[Evidence, ...] = ()
        if daemon_down:
            running = False
            refusal_evidence = (down_refusals[0][1].evidence,)
        for plan_id, refused, refused_capture in self.refusals:
            if daemon_down and refused.daemon_down:
                continue
            self._problem(
                refused_capture.command,
                Outcome.UNPARSED.value,
                refused_capture.raw,
                str(refused),
                plan_id,
            )

        ike_sas: tuple[IkeSa, ...] | None = None
        ipsec_sas: tuple[IpsecSa, ...] | None = None
        ike_later: tuple[IkeSa, ...] | None = None
        ipsec_later: tuple[IpsecSa, ...] | None = None
        if sas.ok:
            ike_sas, ipsec_sas = sas.value
        elif daemon_down and sas.refused is not None:
            ike_sas, ipsec_sas = (), ()
        if sas_later.ok:
            ike_later, ipsec_later = sas_later.value
        elif daemon_down and sas_later.refused is not None:
            ike_later, ipsec_later = (), ()

        # connections: what charon has loaded, else (charon down) what the file says
        connections: list[_Connection] | None = None
        conns_capture, _looked, _reason = self.find(self.platform.command("conns"), 1)
        if conns.ok and conns_capture is not None:
            text, offset = clean_output(conns_capture.command, conns_capture.raw)
            conn_lines = _Lines(text, conns_capture, self.device, offset)
            connections = _connections_from_rows(conns.value, conn_lines)
            by_name = _conf_connections(tree)
            config_lines = self._config_lines() if by_name else None
            for conn in connections:
                conn.config = by_name.get(conn.name)
                _lifetimes_from_conf(conn, config_lines)
        elif tree is not None and (daemon_down or not conns.ok):
            connections = _connections_from_conf(tree, self._config_lines())
        crypto_maps: tuple[CryptoMapEntry, ...] | None = None
        transform_sets: tuple[TransformSet, ...] | None = None
        policies: tuple[IkePolicy, ...] | None = None
        if connections is not None:
            crypto_maps, transform_sets = _entries(
                connections, interface_of, self._setting_evidence
            )
            if tree is not None:
                policies = _policies(connections, self.ctx.peer, self._setting_evidence)

        facts = self._config_facts(
            tree=tree,
            connections=connections,
            running=running,
            sources=(*daemon_sources, *refusal_evidence),
            interface_addresses=interface_addresses,
            own=own,
        )

        routes: dict[str, RouteLookup] = {}
        route = self.section("route_peer")
        if route.ok:
            routes["route_peer"] = route.value

        extras: dict[str, Any] = {"crypto_map_binding": False, "variables": dict(self.variables)}
        if stats.ok:
            extras.update(stats.value)
        if pols.ok:
            extras["trap_policies"] = list(pols.value)
        for plan_id, key in (("xfrm_state", "xfrm_states"), ("xfrm_policy", "xfrm_policies")):
            found = self.section(plan_id)
            if found.ok:
                extras[key] = len(found.value)
                if plan_id == "xfrm_state":
                    ipsec_sas = _with_xfrm_errors(ipsec_sas, found.value)
        self.section("xfrm_state", 2)
        tunnel_routes = self.section("tunnel_routes")
        if tunnel_routes.ok:
            extras["tunnel_routes"] = [r["destination"] for r in tunnel_routes.value]
        for plan_id in ("version", "service"):
            found = self.section(plan_id)
            if found.ok:
                extras[plan_id] = found.value[0]
        firewall = self.section("firewall")
        if firewall.ok:
            blocked: dict[int, tuple[Evidence, ...]] = {}
            for rule in firewall.value:
                if rule["hook"] not in ("input", "prerouting", "forward", ""):
                    continue
                for port in rule["ports"]:
                    blocked[port] = (*blocked.get(port, ()), rule["source"])
            extras["ike_blocked_ports"] = blocked
            extras["firewall_drops"] = [
                {k: v for k, v in rule.items() if k != "source"} for rule in firewall.value
            ]
        if connections is not None:
            extras["connections"] = [
                {
                    "name": c.name,
                    "version": c.version,
                    "local_addrs": list(c.local_addrs),
                    "remote_addrs": list(c.remote_addrs),
                    "children": [child["name"] for child in c.children],
                }
                for c in connections
            ]

        logs: tuple[LogEvent, ...] | None = None
        unclassified: tuple[Evidence, ...] = ()
        log_found = self.section("logging")
        if log_found.ok:
            logs, unclassified = log_found.value

        return DeviceState(
            name=capture.name,
            platform=capture.platform or PLATFORM,
            hostname=capture.hostname,
            clock=clock,
            ike_sas=ike_sas,
            ike_sas_later=ike_later,
            ipsec_sas=ipsec_sas,
            ipsec_sas_later=ipsec_later,
            crypto_maps=crypto_maps,
            ike_policies=policies,
            transform_sets=transform_sets,
            config=facts,
            routes=routes,
            interfaces=interfaces,
            logs=logs,
            unclassified_log_lines=unclassified,
            problems=tuple(self.problems),
            extras=extras,
        )

    # -- helpers -----------------------------------------------------------------------------
    def _config_lines(self) -> _Lines | None:
        if not self._in_plan("config"):
            return None
        found, _looked, _reason = self.find(self.platform.command("config"), 1)
        if found is None:
            return None
        text, offset = clean_output(found.command, found.raw)
        return _Lines(text, found, self.device, offset)

    def _setting_evidence(self, conn: _Connection, key: str, child: str) -> Evidence | None:
        lines = self._config_lines()
        if lines is None or conn.config is None:
            return None
        section = conn.config
        if child:
            children = section.section("children")
            found = children.sections.get(child) if children else None
            if found is None:
                return None
            section = found
        setting = section.settings.get(key)
        return _conf_evidence(lines, setting.line_no) if setting else None

    def _config_facts(
        self,
        *,
        tree: Section | None,
        connections: Sequence[_Connection] | None,
        running: bool | None,
        sources: Sequence[Evidence],
        interface_addresses: dict[str, IPInterface],
        own: set[IPAddress],
    ) -> ConfigFacts:
        psk_peers: list[IPAddress] = []
        wildcard = False
        evidence: list[Evidence] = list(sources)
        lines = self._config_lines() if tree is not None else None
        if tree is not None:
            secrets = tree.section("secrets")
            for name, secret in (secrets.sections if secrets else {}).items():
                if not name.startswith("ike"):
                    continue
                ids = [
                    s for s in secret.settings.values() if s.key == "id" or s.key.startswith("id")
                ]
                addresses = [a for a in (_address(s.value) for s in ids) if a is not None]
                if not ids or len(addresses) < len(ids):
                    wildcard = True  # a key found by identity (FQDN ...) or for anyone
                for address in addresses:
                    if address not in own and address not in psk_peers:
                        psk_peers.append(address)
                if lines is not None:
                    evidence += [e for s in ids if (e := _conf_evidence(lines, s.line_no))]
            for section in _conf_connections(tree).values():
                for setting in section.all_settings():
                    if setting.key in ("remote_addrs", "dpd_delay", "dpd_timeout") and lines:
                        found = _conf_evidence(lines, setting.line_no)
                        if found is not None:
                            evidence.append(found)
        dpd: int | None = None
        if connections:
            peer = self.ctx.peer
            chosen = [
                c for c in connections if peer is not None and peer in _addresses(c.remote_addrs)
            ] or list(connections)
            delays = [c.dpd_seconds for c in chosen if c.dpd_seconds]
            dpd = min(delays) if delays else None
        return ConfigFacts(
            isakmp_enabled=True if running else None,
            ike_daemon_running=running,
            psk_peers=tuple(psk_peers),
            psk_wildcard=wildcard,
            nat_traversal_enabled=True,  # charon always does NAT traversal (RFC 3947 / 7296)
            dpd_seconds=dpd,
            crypto_map_interfaces={},
            interface_addresses=interface_addresses,
            sources=tuple(dict.fromkeys(evidence)),
        )


def _with_xfrm_errors(
    sas: tuple[IpsecSa, ...] | None, rows: list[dict[str, Any]]
) -> tuple[IpsecSa, ...] | None:
    """Integrity / replay failures of the kernel SAs (``ip -s xfrm state``) as recv_errors."""
    if not sas or not rows:
        return sas
    failures: dict[str, int] = {}
    for row in rows:
        spi = str(row.get("spi", "")).lower()
        count = _int(row.get("stats_failed", 0)) + _int(row.get("stats_replay", 0))
        if spi and count:
            failures[f"0x{spi.removeprefix('0x').upper()}"] = count
    if not failures:
        return sas
    return tuple(
        replace(sa, recv_errors=sum(failures.get(s, 0) for s in sa.inbound_spis)) for sa in sas
    )


def parse_device(capture: DeviceCapture, peer: str | None = None) -> DeviceState:
    """The typed state of one strongSwan gateway (see the module docstring)."""
    platform = load_platform(capture.platform if capture.platform else PLATFORM)
    return _DeviceParser(capture, peer, platform).run()
