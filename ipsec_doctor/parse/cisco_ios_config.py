"""The crypto-relevant lines of a Cisco IOS running configuration, as rows and as ConfigFacts.

Contract:
- :func:`parse_running_config` returns one row (a dict with ``kind``, the values, ``line`` and
  ``line_no``) per recognised line; unrecognised lines are ignored (a configuration is not a
  table, so a Python line parser is used instead of TextFSM). Kinds:
  ``hostname``, ``isakmp_disabled``, ``psk`` (address, mask, keyring; never the key),
  ``psk_hostname``, ``nat_keepalive``, ``nat_traversal``, ``nat_t_disabled``, ``dpd``
  (seconds, retry, mode), ``interface`` (name, shutdown, addresses, crypto_map),
  ``crypto_map_entry`` (name, sequence, peers, acl, transform_sets, pfs_group, lifetime),
  ``crypto_map_local_address``.
- :func:`config_facts` turns the rows into :class:`~ipsec_doctor.model.state.ConfigFacts` with
  evidence for every line used. ISAKMP counts as enabled unless ``no crypto isakmp enable`` is
  configured (the IOS default); NAT-T likewise unless ``no crypto ipsec nat-transparency
  udp-encapsulation``.
- Pre-shared keys never leave this module: rows and facts carry addresses only, and the
  quoted lines have the key replaced by ``<redacted>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address, ip_interface
from typing import Any

from ipsec_doctor.model.state import ConfigFacts, Evidence, IPAddress, IPInterface

# Sample device line: "hostname R1"
_HOSTNAME = re.compile(r"^hostname\s+(?P<name>\S+)\s*$")
# Sample device line: "no crypto isakmp enable"
_ISAKMP_DISABLED = re.compile(r"^no\s+crypto\s+isakmp\s+enable\b")
# Sample device lines: "crypto isakmp key 6 <removed> address 10.2.2.1",
#   "crypto isakmp key cisco123 address 0.0.0.0 0.0.0.0", "crypto isakmp key k address ipv6 ::/0"
_PSK = re.compile(
    r"^crypto\s+isakmp\s+key\s+(?:[067]\s+)?\S+\s+address\s+(?:ipv6\s+)?(?P<address>[0-9A-Fa-f.:]+)"
    r"(?:/(?P<prefix>\d+))?(?:\s+(?P<mask>\d+\.\d+\.\d+\.\d+))?"
)
# Sample device line: "crypto isakmp key cisco123 hostname vpn.example.com"
_PSK_HOSTNAME = re.compile(r"^crypto\s+isakmp\s+key\s+(?:[067]\s+)?\S+\s+hostname\s+(?P<host>\S+)")
# Sample device line: "crypto keyring KR-BRANCH"
_KEYRING = re.compile(r"^crypto\s+keyring\s+(?P<name>\S+)")
# Sample device line: "  pre-shared-key address 10.2.2.1 key <removed>"
_KEYRING_PSK = re.compile(
    r"^\s+pre-shared-key\s+address\s+(?:ipv6\s+)?(?P<address>[0-9A-Fa-f.:]+)(?:/(?P<prefix>\d+))?"
    r"(?:\s+(?P<mask>\d+\.\d+\.\d+\.\d+))?\s+key\b"
)
# Sample device line: "crypto isakmp nat keepalive 20"
_NAT_KEEPALIVE = re.compile(r"^crypto\s+isakmp\s+nat\s+keepalive\s+(?P<seconds>\d+)")
# Sample device line: "crypto isakmp nat-traversal 20"  (ASA wording some IOS configs mimic)
_NAT_TRAVERSAL = re.compile(r"^crypto\s+isakmp\s+nat[- ]traversal(?:\s+(?P<seconds>\d+))?")
# Sample device line: "no crypto ipsec nat-transparency udp-encapsulation"
_NAT_T_DISABLED = re.compile(r"^no\s+crypto\s+ipsec\s+nat-transparency\s+udp-encaps")
# Sample device line: "crypto isakmp keepalive 10 3 periodic"
_DPD = re.compile(
    r"^crypto\s+isakmp\s+keepalive\s+(?P<seconds>\d+)(?:\s+(?P<retry>\d+))?"
    r"(?:\s+(?P<mode>periodic|on-demand))?"
)
# Sample device line: "interface GigabitEthernet0/1"
_INTERFACE = re.compile(r"^interface\s+(?P<name>\S+)")
# Sample device line: " ip address 10.1.1.1 255.255.255.252"  (or "... secondary")
_IP_ADDRESS = re.compile(
    r"^\s+ip\s+address\s+(?P<address>\d+\.\d+\.\d+\.\d+)\s+(?P<mask>\d+\.\d+\.\d+\.\d+)"
    r"(?P<secondary>\s+secondary)?"
)
# Sample device line: " ipv6 address 2001:DB8:10::1/64"
_IPV6_ADDRESS = re.compile(r"^\s+ipv6\s+address\s+(?P<address>[0-9A-Fa-f:]+/\d+)")
# Sample device line: " crypto map VPN-MAP"
_IF_CRYPTO_MAP = re.compile(r"^\s+crypto\s+map\s+(?P<name>\S+)\s*$")
# Sample device line: " shutdown"
_SHUTDOWN = re.compile(r"^\s+shutdown\s*$")
# Sample device line: "crypto map VPN-MAP 10 ipsec-isakmp"  (also "... ipsec-isakmp dynamic DYN")
_MAP_ENTRY = re.compile(r"^crypto\s+map\s+(?P<name>\S+)\s+(?P<sequence>\d+)(?:\s+(?P<type>\S+))?")
# Sample device line: "crypto map VPN-MAP local-address Loopback0"
_MAP_LOCAL = re.compile(r"^crypto\s+map\s+(?P<name>\S+)\s+local-address\s+(?P<interface>\S+)")
# Sample device line: " set peer 10.2.2.1"  (also " set peer 10.2.2.1 default")
_SET_PEER = re.compile(r"^\s+set\s+peer\s+(?P<peer>[0-9A-Fa-f.:]+)")
# Sample device line: " match address VPN-ACL"
_MATCH_ADDRESS = re.compile(r"^\s+match\s+address\s+(?P<acl>\S+)")
# Sample device line: " set transform-set TS-AES256 TS-AES128"
_SET_TRANSFORM = re.compile(r"^\s+set\s+transform-set\s+(?P<sets>.+?)\s*$")
# Sample device line: " set pfs group14"  (" set pfs" alone means group1)
_SET_PFS = re.compile(r"^\s+set\s+pfs(?:\s+(?P<group>\S+))?\s*$")
# Sample device line: " set security-association lifetime seconds 28800"
_SET_LIFETIME = re.compile(
    r"^\s+set\s+security-association\s+lifetime\s+seconds\s+(?P<seconds>\d+)"
)


@dataclass
class _Block:
    kind: str
    row: dict[str, Any]


REDACTED = "<redacted>"

# Sample device lines: "crypto isakmp key 6 FLgBaJHX address 10.2.2.1",
#   "  pre-shared-key address 10.2.2.1 key cisco123" -> the key word is group "key"
_KEY_VALUE = re.compile(
    r"^(?P<head>crypto\s+isakmp\s+key\s+(?:[067]\s+)?)(?P<key>\S+)"
    r"|^(?P<head2>\s+pre-shared-key\s+.*?\skey\s+(?:[067]\s+)?)(?P<key2>\S+)"
)


def mask_key(line: str) -> str:
    """The line with a pre-shared key replaced by ``<redacted>`` (defence in depth: captures
    arrive redacted by the collect layer, but a pasted configuration may not be)."""
    match = _KEY_VALUE.match(line)
    if match is None:
        return line
    if match["key"] is not None:
        return line[: match.start("key")] + REDACTED + line[match.end("key") :]
    return line[: match.start("key2")] + REDACTED + line[match.end("key2") :]


def _row(kind: str, line_no: int, line: str, **values: Any) -> dict[str, Any]:
    return {"kind": kind, **values, "line": mask_key(line.rstrip()), "line_no": line_no}


def parse_running_config(text: str) -> list[dict[str, Any]]:
    """The crypto-relevant rows of a running configuration (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    block: _Block | None = None
    keyring = ""
    for index, raw_line in enumerate(text.replace("\r\n", "\n").split("\n")):
        line_no = index + 1
        line = raw_line.rstrip()
        if not line.strip() or line.strip() == "!":
            continue
        if not line[:1].isspace():
            block = None
            keyring = ""
        if match := _HOSTNAME.match(line):
            rows.append(_row("hostname", line_no, line, name=match["name"]))
        elif _ISAKMP_DISABLED.match(line):
            rows.append(_row("isakmp_disabled", line_no, line))
        elif match := _PSK.match(line):
            rows.append(
                _row(
                    "psk",
                    line_no,
                    line,
                    address=match["address"],
                    mask=match["mask"] or "",
                    prefix=match["prefix"] or "",
                    keyring="",
                )
            )
        elif match := _PSK_HOSTNAME.match(line):
            rows.append(_row("psk_hostname", line_no, line, hostname=match["host"]))
        elif match := _KEYRING.match(line):
            keyring = match["name"]
        elif keyring and (match := _KEYRING_PSK.match(line)):
            rows.append(
                _row(
                    "psk",
                    line_no,
                    line,
                    address=match["address"],
                    mask=match["mask"] or "",
                    prefix=match["prefix"] or "",
                    keyring=keyring,
                )
            )
        elif match := _NAT_KEEPALIVE.match(line):
            rows.append(_row("nat_keepalive", line_no, line, seconds=int(match["seconds"])))
        elif match := _NAT_TRAVERSAL.match(line):
            seconds = int(match["seconds"]) if match["seconds"] else None
            rows.append(_row("nat_traversal", line_no, line, seconds=seconds))
        elif _NAT_T_DISABLED.match(line):
            rows.append(_row("nat_t_disabled", line_no, line))
        elif match := _DPD.match(line):
            retry = int(match["retry"]) if match["retry"] else None
            rows.append(
                _row(
                    "dpd",
                    line_no,
                    line,
                    seconds=int(match["seconds"]),
                    retry=retry,
                    mode=match["mode"] or "",
                )
            )
        elif match := _INTERFACE.match(line):
            row = _row(
                "interface",
                line_no,
                line,
                name=match["name"],
                shutdown=False,
                addresses=[],
                crypto_map="",
                crypto_map_line_no=0,
                crypto_map_line="",
            )
            rows.append(row)
            block = _Block("interface", row)
        elif match := _MAP_LOCAL.match(line):
            rows.append(
                _row(
                    "crypto_map_local_address",
                    line_no,
                    line,
                    name=match["name"],
                    interface=match["interface"],
                )
            )
        elif match := _MAP_ENTRY.match(line):
            row = _row(
                "crypto_map_entry",
                line_no,
                line,
                name=match["name"],
                sequence=int(match["sequence"]),
                type=match["type"] or "",
                peers=[],
                acl="",
                transform_sets=[],
                pfs_group="",
                lifetime_seconds=None,
            )
            rows.append(row)
            block = _Block("crypto_map_entry", row)
        elif block is not None and block.kind == "interface":
            _interface_line(block.row, line, line_no)
        elif block is not None and block.kind == "crypto_map_entry":
            _map_line(block.row, line)
    return rows


def _interface_line(row: dict[str, Any], line: str, line_no: int) -> None:
    if match := _IP_ADDRESS.match(line):
        address = f"{match['address']}/{match['mask']}"
        if match["secondary"]:
            row["addresses"].append(address)
        else:
            row["addresses"].insert(0, address)
    elif match := _IPV6_ADDRESS.match(line):
        row["addresses"].append(match["address"])
    elif match := _IF_CRYPTO_MAP.match(line):
        row["crypto_map"] = match["name"]
        row["crypto_map_line_no"] = line_no
        row["crypto_map_line"] = line
    elif _SHUTDOWN.match(line):
        row["shutdown"] = True


def _map_line(row: dict[str, Any], line: str) -> None:
    if match := _SET_PEER.match(line):
        row["peers"].append(match["peer"])
    elif match := _MATCH_ADDRESS.match(line):
        row["acl"] = match["acl"]
    elif match := _SET_TRANSFORM.match(line):
        row["transform_sets"].extend(match["sets"].split())
    elif match := _SET_PFS.match(line):
        row["pfs_group"] = match["group"] or "group1"
    elif match := _SET_LIFETIME.match(line):
        row["lifetime_seconds"] = int(match["seconds"])


def _address(value: str) -> IPAddress | None:
    try:
        return ip_address(value)
    except ValueError:
        return None


def _interface_address(value: str) -> IPInterface | None:
    try:
        return ip_interface(value)
    except ValueError:
        return None


def config_facts(
    rows: list[dict[str, Any]],
    *,
    command: str = "show running-config",
    device: str = "",
    sample: int = 1,
    line_offset: int = 0,
) -> ConfigFacts:
    """:class:`ConfigFacts` of the rows of :func:`parse_running_config`."""

    def evidence(line_no: int, line: str) -> Evidence:
        return Evidence(
            command=command, line=line, line_no=line_no + line_offset, sample=sample, device=device
        )

    sources: list[Evidence] = []
    isakmp_enabled = True
    nat_traversal: bool | None = True
    nat_keepalive: int | None = None
    dpd_seconds: int | None = None
    dpd_retry: int | None = None
    psk_peers: list[IPAddress] = []
    wildcard = False
    map_interfaces: dict[str, list[str]] = {}
    addresses: dict[str, IPInterface] = {}
    for row in rows:
        kind = row["kind"]
        if kind == "isakmp_disabled":
            isakmp_enabled = False
            sources.append(evidence(row["line_no"], row["line"]))
        elif kind == "psk":
            peer = _address(row["address"])
            if peer is None:
                continue
            if peer.is_unspecified:
                wildcard = True
            else:
                psk_peers.append(peer)
            sources.append(evidence(row["line_no"], row["line"]))
        elif kind == "nat_keepalive":
            nat_keepalive = int(row["seconds"])
            sources.append(evidence(row["line_no"], row["line"]))
        elif kind == "nat_traversal":
            nat_traversal = True
            if row["seconds"] is not None:
                nat_keepalive = int(row["seconds"])
            sources.append(evidence(row["line_no"], row["line"]))
        elif kind == "nat_t_disabled":
            nat_traversal = False
            sources.append(evidence(row["line_no"], row["line"]))
        elif kind == "dpd":
            dpd_seconds = int(row["seconds"])
            dpd_retry = row["retry"] if row["retry"] is not None else 2
            sources.append(evidence(row["line_no"], row["line"]))
        elif kind == "interface":
            if row["addresses"]:
                primary = _interface_address(row["addresses"][0])
                if primary is not None:
                    addresses[row["name"]] = primary
            if row["crypto_map"]:
                map_interfaces.setdefault(row["crypto_map"], []).append(row["name"])
                sources.append(evidence(row["crypto_map_line_no"], row["crypto_map_line"]))
    return ConfigFacts(
        isakmp_enabled=isakmp_enabled,
        psk_peers=tuple(dict.fromkeys(psk_peers)),
        psk_wildcard=wildcard,
        nat_keepalive_seconds=nat_keepalive,
        nat_traversal_enabled=nat_traversal,
        dpd_seconds=dpd_seconds,
        dpd_retry_seconds=dpd_retry,
        crypto_map_interfaces={name: tuple(ifaces) for name, ifaces in map_interfaces.items()},
        interface_addresses=addresses,
        sources=tuple(sources),
    )
