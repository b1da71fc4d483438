"""The crypto-relevant lines of a Cisco IOS running configuration, as rows and as ConfigFacts.

Contract:
- :func:`parse_running_config` returns one row (a dict with ``kind``, the values, ``line`` and
  ``line_no``) per recognised line; unrecognised lines are ignored (a configuration is not a
  table, so a Python line parser is used instead of TextFSM). Kinds:
  ``hostname``, ``isakmp_disabled``, ``psk`` (address, mask, keyring; never the key),
  ``psk_hostname``, ``nat_keepalive``, ``nat_traversal``, ``nat_t_disabled``, ``dpd``
  (seconds, retry, mode), ``interface`` (name, shutdown, addresses, crypto_map, vrf),
  ``crypto_map_entry`` (name, sequence, peers, acl, transform_sets, pfs_group, lifetime,
  ikev2_profile), ``crypto_map_local_address``, ``isakmp_policy`` (priority), ``isakmp_profile``
  (name, vrf: its inside VRF, keyring, identities: the ``match identity address`` lines as
  address, mask, prefix and front-door vrf), ``ikev2_block`` (block:
  proposal/policy/keyring/profile, name), ``ipsec_profile`` (name, transform_sets,
  ikev2_profile, isakmp_profile, pfs_group, lifetime_seconds),
  ``static_route`` (vrf, network, mask, interface, next_hop). IKEv2 keyring peers with a key
  are ``psk`` rows too (``ikev2`` True; the line quoted is the ``pre-shared-key`` line); a key
  of ``crypto keyring K vrf X`` carries ``vrf`` X (its front-door VRF, "" for the global table).
  ``interface`` rows also carry the tunnel settings (tunnel_source, tunnel_destination,
  tunnel_mode, tunnel_protection, tunnel_vrf, vrf).
- :func:`config_facts` turns the rows into :class:`~ipsec_doctor.model.state.ConfigFacts` with
  evidence for every line used. ISAKMP counts as enabled unless ``no crypto isakmp enable`` is
  configured (the IOS default); NAT-T likewise unless ``no crypto ipsec nat-transparency
  udp-encapsulation``. IKEv1 counts as configured when ISAKMP policies, keys or profiles exist
  or a crypto map entry / protected tunnel's IPsec profile names no IKEv2 profile; IKEv2 when a
  ``crypto ikev2`` block exists or an entry / profile names an IKEv2 profile. A tunnel
  interface with ``tunnel protection ipsec profile`` becomes a
  :class:`~ipsec_doctor.model.state.TunnelConfig` with the networks routed into it (static
  routes naming the interface, or a next hop inside its subnet, in the same VRF).
  ``interface_vrfs`` lists the interfaces in a VRF; ``front_door_vrfs`` the peer ranges of keys
  in a ``crypto keyring ... vrf X`` and of ISAKMP profile ``match identity address A M X``
  lines, with that front-door VRF. An ISAKMP profile's own ``vrf X`` line is its *inside* VRF
  (where decrypted traffic goes), not the table the peer is reached through, and is not one.
- Pre-shared keys never leave this module: rows and facts carry addresses only, and the
  quoted lines have the key replaced by ``<redacted>``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

from ipsec_doctor.model.state import (
    ConfigFacts,
    Evidence,
    IPAddress,
    IPInterface,
    IPNetwork,
    TunnelConfig,
)

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
# Sample device lines: "crypto keyring KR-BRANCH", "crypto keyring KR-INET vrf INET  "
_KEYRING = re.compile(r"^crypto\s+keyring\s+(?P<name>\S+)(?:\s+vrf\s+(?P<vrf>\S+))?")
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
# Sample device line: " set ikev2-profile IKEV2-PROFILE"
_SET_IKEV2_PROFILE = re.compile(r"^\s+set\s+ikev2-profile\s+(?P<name>\S+)")
# Sample device line: " set isakmp-profile EZVPN"
_SET_ISAKMP_PROFILE = re.compile(r"^\s+set\s+isakmp-profile\s+(?P<name>\S+)")
# Sample device line: "crypto isakmp policy 10"
_ISAKMP_POLICY = re.compile(r"^crypto\s+isakmp\s+policy\s+(?P<priority>\d+)")
# Sample device line: "crypto isakmp profile EZVPN"
_ISAKMP_PROFILE = re.compile(r"^crypto\s+isakmp\s+profile\s+(?P<name>\S+)")
# Sample device line: "   vrf CUST-A"  (inside an ISAKMP profile: its inside VRF)
_PROFILE_VRF = re.compile(r"^\s+vrf\s+(?P<vrf>\S+)\s*$")
# Sample device line: "   keyring KR-INET"  (inside an ISAKMP profile)
_PROFILE_KEYRING = re.compile(r"^\s+keyring\s+(?P<name>\S+)")
# Sample device lines: "   match identity address 10.2.2.1 255.255.255.255 INET",
#   "   match identity address 10.2.2.1 255.255.255.255 ",
#   "   match identity address ipv6 2001:DB8:30::1/128"
_MATCH_IDENTITY = re.compile(
    r"^\s+match\s+identity\s+address\s+(?:ipv6\s+)?(?P<address>[0-9A-Fa-f.:]+)"
    r"(?:/(?P<prefix>\d+))?(?:\s+(?P<mask>\d+\.\d+\.\d+\.\d+))?(?:\s+(?P<vrf>\S+))?\s*$"
)
# Sample device lines: "crypto ikev2 proposal IKEV2-PROP", "crypto ikev2 keyring IKEV2-KEYRING"
_IKEV2_BLOCK = re.compile(
    r"^crypto\s+ikev2\s+(?P<block>proposal|policy|keyring|profile)\s+(?P<name>\S+)"
)
# Sample device line: " peer R2"  (inside crypto ikev2 keyring)
_KEYRING_PEER = re.compile(r"^\s+peer\s+(?P<name>\S+)")
# Sample device lines: "  address 10.2.2.1", "  address 0.0.0.0 0.0.0.0", "  address 2001:DB8::/32"
_KEYRING_ADDRESS = re.compile(
    r"^\s+address\s+(?P<address>[0-9A-Fa-f.:]+)(?:/(?P<prefix>\d+))?"
    r"(?:\s+(?P<mask>\d+\.\d+\.\d+\.\d+))?\s*$"
)
# Sample device lines: "  pre-shared-key Sup3rS3cretPSK!", "  pre-shared-key local 6 KEY"
_KEYRING_V2_PSK = re.compile(r"^\s+pre-shared-key\s+\S")
# Sample device line: "crypto ipsec profile VTI-PROFILE"
_IPSEC_PROFILE = re.compile(r"^crypto\s+ipsec\s+profile\s+(?P<name>\S+)")
# Sample device lines: " tunnel source GigabitEthernet0/0", " tunnel source 10.1.1.1"
_TUNNEL_SOURCE = re.compile(r"^\s+tunnel\s+source\s+(?P<source>\S+)")
# Sample device line: " tunnel destination 10.2.2.1"
_TUNNEL_DESTINATION = re.compile(r"^\s+tunnel\s+destination\s+(?P<destination>[0-9A-Fa-f.:]+)")
# Sample device line: " tunnel mode ipsec ipv4"  (absent: the default GRE mode)
_TUNNEL_MODE = re.compile(r"^\s+tunnel\s+mode\s+(?P<mode>.+?)\s*$")
# Sample device lines: " tunnel protection ipsec profile VTI-PROFILE",
#   " tunnel protection ipsec profile DMVPN shared"
_TUNNEL_PROTECTION = re.compile(r"^\s+tunnel\s+protection\s+ipsec\s+profile\s+(?P<profile>\S+)")
# Sample device line: " tunnel vrf INET"
_TUNNEL_VRF = re.compile(r"^\s+tunnel\s+vrf\s+(?P<vrf>\S+)")
# Sample device lines: " vrf forwarding CORP", " ip vrf forwarding CUST-A"
_VRF_FORWARDING = re.compile(r"^\s+(?:ip\s+)?vrf\s+forwarding\s+(?P<vrf>\S+)")
# Sample device lines: "ip route 192.168.2.0 255.255.255.0 Tunnel0",
#   "ip route vrf CORP 192.168.2.0 255.255.255.0 172.16.0.2",
#   "ip route 0.0.0.0 0.0.0.0 GigabitEthernet0/0 10.1.1.2"
_STATIC_ROUTE = re.compile(
    r"^ip\s+route\s+(?:vrf\s+(?P<vrf>\S+)\s+)?(?P<network>\d+\.\d+\.\d+\.\d+)\s+"
    r"(?P<mask>\d+\.\d+\.\d+\.\d+)\s+(?P<first>\S+)(?:\s+(?P<second>\d+\.\d+\.\d+\.\d+))?"
)


@dataclass
class _Block:
    kind: str
    row: dict[str, Any]


REDACTED = "<redacted>"

# Sample device lines: "crypto isakmp key 6 FLgBaJHX address 10.2.2.1",
#   "  pre-shared-key address 10.2.2.1 key cisco123" -> the key word is group "key"
#   "  pre-shared-key local 6 KEY" (IKEv2 keyring) -> group "key3"
_KEY_VALUE = re.compile(
    r"^(?P<head>crypto\s+isakmp\s+key\s+(?:[067]\s+)?)(?P<key>\S+)"
    r"|^(?P<head2>\s+pre-shared-key\s+.*?\skey\s+(?:[067]\s+)?)(?P<key2>\S+)"
    r"|^(?P<head3>\s+pre-shared-key\s+(?:(?:local|remote)\s+)?(?:[067]\s+)?)(?P<key3>\S+)\s*$"
)


def mask_key(line: str) -> str:
    """The line with a pre-shared key replaced by ``<redacted>`` (defence in depth: captures
    arrive redacted by the collect layer, but a pasted configuration may not be)."""
    match = _KEY_VALUE.match(line)
    if match is None:
        return line
    for group in ("key", "key2", "key3"):
        if match[group] is not None:
            return line[: match.start(group)] + REDACTED + line[match.end(group) :]
    return line


def _row(kind: str, line_no: int, line: str, **values: Any) -> dict[str, Any]:
    return {"kind": kind, **values, "line": mask_key(line.rstrip()), "line_no": line_no}


def _open_block(
    rows: list[dict[str, Any]], kind: str, line_no: int, line: str, **values: Any
) -> _Block:
    """The row of a block's first line, appended to ``rows``; its sub-commands fill it in."""
    row = _row(kind, line_no, line, **values)
    rows.append(row)
    return _Block(kind, row)


def _psk_row(
    line_no: int,
    line: str,
    peer: re.Match[str] | dict[str, Any],
    *,
    keyring: str,
    ikev2: bool = False,
    vrf: str = "",
) -> dict[str, Any]:
    """A ``psk`` row: the peer ``address`` (``mask`` or ``prefix``) a key is configured for,
    and the front-door ``vrf`` of its keyring ("" = the global table)."""
    return _row(
        "psk",
        line_no,
        line,
        address=peer["address"],
        mask=peer["mask"] or "",
        prefix=peer["prefix"] or "",
        keyring=keyring,
        ikev2=ikev2,
        vrf=vrf,
    )


def parse_running_config(text: str) -> list[dict[str, Any]]:
    """The crypto-relevant rows of a running configuration (see the module docstring).

    Fresh rows on every call; the parse itself is cached by text (a device's configuration
    is read once per plan derivation and once per tunnel)."""
    return [
        {key: list(value) if isinstance(value, list) else value for key, value in row.items()}
        for row in _parse_cached(text)
    ]


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    block: _Block | None = None
    keyring = keyring_vrf = ""
    for index, raw_line in enumerate(text.replace("\r\n", "\n").split("\n")):
        line_no = index + 1
        line = raw_line.rstrip()
        if not line.strip() or line.strip() == "!":
            continue
        if not line[:1].isspace():
            _flush_keyring_peer(block, rows)
            block = None
            keyring = keyring_vrf = ""
        if match := _HOSTNAME.match(line):
            rows.append(_row("hostname", line_no, line, name=match["name"]))
        elif _ISAKMP_DISABLED.match(line):
            rows.append(_row("isakmp_disabled", line_no, line))
        elif match := _PSK.match(line):
            rows.append(_psk_row(line_no, line, match, keyring=""))
        elif match := _PSK_HOSTNAME.match(line):
            rows.append(_row("psk_hostname", line_no, line, hostname=match["host"]))
        elif match := _KEYRING.match(line):
            keyring, keyring_vrf = match["name"], match["vrf"] or ""
        elif match := _ISAKMP_POLICY.match(line):
            rows.append(_row("isakmp_policy", line_no, line, priority=int(match["priority"])))
        elif match := _ISAKMP_PROFILE.match(line):
            block = _open_block(
                rows, "isakmp_profile", line_no, line, name=match["name"], vrf="", keyring=""
            )
            block.row["identities"] = []
        elif match := _IKEV2_BLOCK.match(line):
            row = _row("ikev2_block", line_no, line, block=match["block"], name=match["name"])
            rows.append(row)
            if match["block"] == "keyring":
                block = _Block("ikev2_keyring", {"keyring": match["name"], "peer": None})
        elif match := _IPSEC_PROFILE.match(line):
            block = _open_block(
                rows,
                "ipsec_profile",
                line_no,
                line,
                name=match["name"],
                transform_sets=[],
                ikev2_profile="",
                isakmp_profile="",
                pfs_group="",
                lifetime_seconds=None,
            )
        elif match := _STATIC_ROUTE.match(line):
            first, second = match["first"], match["second"]
            is_address = re.fullmatch(r"\d+\.\d+\.\d+\.\d+", first) is not None
            rows.append(
                _row(
                    "static_route",
                    line_no,
                    line,
                    vrf=match["vrf"] or "",
                    network=match["network"],
                    mask=match["mask"],
                    interface="" if is_address else first,
                    next_hop=first if is_address else (second or ""),
                )
            )
        elif keyring and (match := _KEYRING_PSK.match(line)):
            rows.append(_psk_row(line_no, line, match, keyring=keyring, vrf=keyring_vrf))
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
            block = _open_block(
                rows,
                "interface",
                line_no,
                line,
                name=match["name"],
                shutdown=False,
                addresses=[],
                crypto_map="",
                crypto_map_line_no=0,
                crypto_map_line="",
                vrf="",
                tunnel_source="",
                tunnel_destination="",
                tunnel_mode="",
                tunnel_mode_line_no=0,
                tunnel_mode_line="",
                tunnel_protection="",
                tunnel_protection_line_no=0,
                tunnel_protection_line="",
                tunnel_vrf="",
            )
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
            block = _open_block(
                rows,
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
                ikev2_profile="",
            )
        elif block is not None and block.kind == "interface":
            _block_line(block.row, line, line_no, _INTERFACE_LINES)
        elif block is not None and block.kind in ("crypto_map_entry", "ipsec_profile"):
            _block_line(block.row, line, line_no, _MAP_LINES)
        elif block is not None and block.kind == "ikev2_keyring":
            _keyring_v2_line(block, line, line_no, rows)
        elif block is not None and block.kind == "isakmp_profile":
            _block_line(block.row, line, line_no, _PROFILE_LINES)
    _flush_keyring_peer(block, rows)
    return rows


def _keyring_v2_line(block: _Block, line: str, line_no: int, rows: list[dict[str, Any]]) -> None:
    """One line of a ``crypto ikev2 keyring``: peers, their addresses and whether a key is set."""
    if match := _KEYRING_PEER.match(line):
        _flush_keyring_peer(block, rows)
        block.row["peer"] = {"name": match["name"], "address": "", "mask": "", "prefix": ""}
        return
    peer = block.row.get("peer")
    if peer is None:
        return
    if match := _KEYRING_ADDRESS.match(line):
        peer.update(
            address=match["address"], mask=match["mask"] or "", prefix=match["prefix"] or ""
        )
    elif _KEYRING_V2_PSK.match(line):
        peer["psk_line"] = line
        peer["psk_line_no"] = line_no


def _flush_keyring_peer(block: _Block | None, rows: list[dict[str, Any]]) -> None:
    """Emit the pending IKEv2 keyring peer as a ``psk`` row when it has an address and a key."""
    if block is None or block.kind != "ikev2_keyring":
        return
    peer = block.row.get("peer")
    block.row["peer"] = None
    if not peer or not peer.get("address") or not peer.get("psk_line"):
        return
    rows.append(
        _psk_row(
            peer["psk_line_no"], peer["psk_line"], peer, keyring=block.row["keyring"], ikev2=True
        )
    )


#: What one sub-command line does to its block's row: ``(row, match, line, line_no)``.
_Apply = Callable[[dict[str, Any], re.Match[str], str, int], None]


def _set(field: str, group: str, *, quote: bool = False, if_field: bool = False) -> _Apply:
    """Set ``row[field]`` to the match group; ``quote``: also keep the line as evidence
    (``<field>_line``, ``<field>_line_no``); ``if_field``: only in rows that have the field."""

    def apply(row: dict[str, Any], match: re.Match[str], line: str, line_no: int) -> None:
        if if_field and field not in row:
            return
        row[field] = match[group]
        if quote:
            row[f"{field}_line_no"] = line_no
            row[f"{field}_line"] = line

    return apply


def _ip_address(row: dict[str, Any], match: re.Match[str], _line: str, _line_no: int) -> None:
    """The primary address first, secondaries after it."""
    address = f"{match['address']}/{match['mask']}"
    if match["secondary"]:
        row["addresses"].append(address)
    else:
        row["addresses"].insert(0, address)


#: Sub-commands of an ``interface`` block, first match wins.
_INTERFACE_LINES: tuple[tuple[re.Pattern[str], _Apply], ...] = (
    (_IP_ADDRESS, _ip_address),
    (_IPV6_ADDRESS, lambda row, match, *_: row["addresses"].append(match["address"])),
    (_IF_CRYPTO_MAP, _set("crypto_map", "name", quote=True)),
    (_SHUTDOWN, lambda row, *_: row.update(shutdown=True)),
    (_TUNNEL_SOURCE, _set("tunnel_source", "source")),
    (_TUNNEL_DESTINATION, _set("tunnel_destination", "destination")),
    (_TUNNEL_MODE, _set("tunnel_mode", "mode", quote=True)),
    (_TUNNEL_PROTECTION, _set("tunnel_protection", "profile", quote=True)),
    (_TUNNEL_VRF, _set("tunnel_vrf", "vrf")),
    (_VRF_FORWARDING, _set("vrf", "vrf")),
)

#: Sub-commands of a ``crypto map`` entry or a ``crypto ipsec profile`` (only profiles have an
#: ``isakmp_profile`` field), first match wins.
_MAP_LINES: tuple[tuple[re.Pattern[str], _Apply], ...] = (
    (_SET_PEER, lambda row, match, *_: row["peers"].append(match["peer"])),
    (_MATCH_ADDRESS, _set("acl", "acl")),
    (_SET_TRANSFORM, lambda row, match, *_: row["transform_sets"].extend(match["sets"].split())),
    (_SET_PFS, lambda row, match, *_: row.update(pfs_group=match["group"] or "group1")),
    (_SET_LIFETIME, lambda row, match, *_: row.update(lifetime_seconds=int(match["seconds"]))),
    (_SET_IKEV2_PROFILE, _set("ikev2_profile", "name")),
    (_SET_ISAKMP_PROFILE, _set("isakmp_profile", "name", if_field=True)),
)


def _identity(row: dict[str, Any], match: re.Match[str], line: str, line_no: int) -> None:
    """A ``match identity address A [M] [FVRF]`` line of an ISAKMP profile."""
    row["identities"].append(
        {
            "address": match["address"],
            "mask": match["mask"] or "",
            "prefix": match["prefix"] or "",
            "vrf": match["vrf"] or "",
            "line": line,
            "line_no": line_no,
        }
    )


#: Sub-commands of a ``crypto isakmp profile``, first match wins. Its ``vrf`` is the inside
#: VRF; a ``match identity address`` line may end in the front-door VRF the peer is in.
_PROFILE_LINES: tuple[tuple[re.Pattern[str], _Apply], ...] = (
    (_PROFILE_VRF, _set("vrf", "vrf")),
    (_PROFILE_KEYRING, _set("keyring", "name")),
    (_MATCH_IDENTITY, _identity),
)


def _block_line(
    row: dict[str, Any],
    line: str,
    line_no: int,
    sub_commands: tuple[tuple[re.Pattern[str], _Apply], ...],
) -> None:
    """One line inside a block: the first sub-command it matches updates the block's row (a
    sub-command this kind of block has no field for, e.g. ``set peer`` in an IPsec profile, is
    passed over)."""
    for pattern, apply in sub_commands:
        if match := pattern.match(line):
            with contextlib.suppress(KeyError):
                apply(row, match, line, line_no)
            return


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
            if row["tunnel_protection"]:
                sources.append(
                    evidence(row["tunnel_protection_line_no"], row["tunnel_protection_line"])
                )
                if row["tunnel_mode_line"]:
                    sources.append(evidence(row["tunnel_mode_line_no"], row["tunnel_mode_line"]))
    tunnels = _tunnels(rows, addresses, evidence)
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
        crypto_map_configured=any(
            r["kind"] == "crypto_map_entry" or (r["kind"] == "interface" and r["crypto_map"])
            for r in rows
        ),
        ikev1_configured=_ikev1_configured(rows, tunnels),
        ikev2_configured=_ikev2_configured(rows),
        tunnels=tunnels,
        interface_vrfs={r["name"]: r["vrf"] for r in rows if r["kind"] == "interface" and r["vrf"]},
        front_door_vrfs=_front_door_vrfs(rows),
    )


def _peer_range(address: str, mask: str, prefix: str) -> IPNetwork | None:
    """The peer addresses ``address`` with ``mask`` or ``/prefix`` covers (a host without)."""
    length = prefix or mask or ("32" if "." in address else "128")
    try:
        return ip_network(f"{address}/{length}", strict=False)
    except ValueError:
        return None


def _front_door_vrfs(rows: list[dict[str, Any]]) -> tuple[tuple[IPNetwork, str], ...]:
    """(peer range, front-door VRF) of the keys of ``crypto keyring K vrf X`` and of the
    ``match identity address A M X`` lines of ISAKMP profiles."""
    found: list[tuple[IPNetwork, str]] = []
    scopes = [r for r in rows if r["kind"] == "psk"]
    scopes += [i for r in rows if r["kind"] == "isakmp_profile" for i in r["identities"]]
    for scope in scopes:
        if not scope.get("vrf"):
            continue
        network = _peer_range(scope["address"], scope["mask"], scope["prefix"])
        if network is not None and (network, scope["vrf"]) not in found:
            found.append((network, scope["vrf"]))
    return tuple(found)


def _ikev2_configured(rows: list[dict[str, Any]]) -> bool:
    return any(
        r["kind"] == "ikev2_block"
        or (r["kind"] in ("crypto_map_entry", "ipsec_profile") and r["ikev2_profile"])
        for r in rows
    )


def _ikev1_configured(rows: list[dict[str, Any]], tunnels: tuple[TunnelConfig, ...]) -> bool:
    """ISAKMP policies, profiles or IKEv1 keys, or a map entry / protected tunnel whose IPsec
    profile names no IKEv2 profile (IOS then negotiates with IKEv1)."""
    profiles = {r["name"]: r for r in rows if r["kind"] == "ipsec_profile"}
    for row in rows:
        kind = row["kind"]
        if kind in ("isakmp_policy", "isakmp_profile"):
            return True
        if kind == "psk" and not row.get("ikev2"):
            return True
        if kind == "crypto_map_entry" and not row["ikev2_profile"]:
            return True
    for tunnel in tunnels:
        profile = profiles.get(tunnel.ipsec_profile)
        if profile is None or not profile["ikev2_profile"]:
            return True
    return False


def _tunnels(
    rows: list[dict[str, Any]],
    addresses: dict[str, IPInterface],
    evidence: Callable[[int, str], Evidence],
) -> tuple[TunnelConfig, ...]:
    """The protected tunnel interfaces, with the networks their static routes send into them."""
    routes = [r for r in rows if r["kind"] == "static_route"]
    found: list[TunnelConfig] = []
    for row in rows:
        if row["kind"] != "interface" or not row["tunnel_protection"]:
            continue
        name = row["name"]
        own = addresses.get(name)
        routed: list[IPNetwork] = []
        for route in routes:
            if route["vrf"] != row["vrf"]:
                continue
            hop = _address(route["next_hop"]) if route["next_hop"] else None
            into = route["interface"] == name or (
                not route["interface"]
                and hop is not None
                and own is not None
                and hop.version == own.version
                and hop in own.network
            )
            if not into:
                continue
            try:
                network = ip_network(f"{route['network']}/{route['mask']}", strict=False)
            except ValueError:
                continue
            if network.prefixlen and network not in routed:
                routed.append(network)
        found.append(
            TunnelConfig(
                name=name,
                ipsec_profile=row["tunnel_protection"],
                destination=_address(row["tunnel_destination"]),
                source=row["tunnel_source"],
                mode=" ".join(row["tunnel_mode"].split()) or "gre ip",
                vrf=row["vrf"],
                tunnel_vrf=row["tunnel_vrf"],
                shutdown=row["shutdown"],
                routed=tuple(routed),
                evidence=evidence(row["tunnel_protection_line_no"], row["tunnel_protection_line"]),
            )
        )
    return tuple(found)
