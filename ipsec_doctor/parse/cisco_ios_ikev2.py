"""IOS / IOS-XE IKEv2 and tunnel protection (VTI): vocabulary and the neutral state they make.

Contract (used by :mod:`ipsec_doctor.parse.cisco_ios`; pure functions, no I/O):
- :func:`ikev2_status` maps the ``show crypto ikev2 sa`` status to
  :class:`~ipsec_doctor.model.state.IkeStatus`: ``READY`` -> established; ``IN-NEG`` -> waiting
  for a response when the SA is the initiator's and its status description says it waits for
  the INIT response, else negotiating; ``DELETE`` -> deleted; anything else unknown.
- :func:`ikev2_encryption`, :func:`ikev2_integrity` and :func:`ikev2_groups` turn the words of
  ``show crypto ikev2 proposal`` into the neutral vocabulary of IKE policies (``aes-256``,
  ``aes-gcm-256``, ``3des``; ``sha256``, ``sha`` for SHA1/SHA96, ``md5``; DH group numbers).
- :func:`ike_policies` expands the proposals an IKEv2 device offers into one
  :class:`~ipsec_doctor.model.state.IkePolicy` per combination of encryption, integrity (the
  PRF for AEAD proposals) and DH group, numbered in proposal order. The proposals offered are
  those of the configured IKEv2 policies (all of them), or of the ``default`` policy when none
  is configured; without ``show crypto ikev2 policy`` every configured proposal, else
  ``default``. The smart-default proposal is not flagged ``is_default``: unlike IKEv1's
  default protection suites it is a complete, working proposal. Authentication and lifetime
  come from the IKEv2 profile that serves the peer.
- :func:`route_based_entries` makes one :class:`~ipsec_doctor.model.state.CryptoMapEntry` per
  tunnel interface with ``tunnel protection ipsec profile``: ``name`` the IPsec profile,
  ``sequence`` the tunnel number, ``peers`` the tunnel destination, no ACL, ``interfaces`` the
  tunnel interface, transform sets / PFS / lifetime from the IPsec profile. Selectors: any/any
  for ``tunnel mode ipsec ipv4|ipv6``; the tunnel's source and destination hosts for GRE
  (IOS's default mode), as IOS proposes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from ipsec_doctor.model.state import (
    ConfigFacts,
    CryptoMapEntry,
    Evidence,
    IkePolicy,
    IkeStatus,
    IPAddress,
    IPNetwork,
    TunnelConfig,
)

DEFAULT_IKEV2_LIFETIME = 86400


def ikev2_status(status: str, description: str = "") -> IkeStatus:
    """The neutral phase-1 status of an IKEv2 SA status (``READY``, ``IN-NEG`` ...)."""
    name = status.strip().upper()
    if name == "READY":
        return IkeStatus.ESTABLISHED
    if name == "IN-NEG":
        if "waiting for init response" in description.lower():
            return IkeStatus.WAITING_RESPONSE
        return IkeStatus.NEGOTIATING
    if name.startswith("DELETE"):
        return IkeStatus.DELETED
    return IkeStatus.UNKNOWN


# Sample device values: "AES-CBC-256", "AES-GCM-128", "3DES", "DES"
_ENCRYPTION = re.compile(r"^AES-(?P<mode>CBC|GCM)-(?P<bits>\d+)$", re.IGNORECASE)


def ikev2_encryption(word: str) -> str:
    """``AES-CBC-256`` -> ``aes-256``; ``AES-GCM-128`` -> ``aes-gcm-128``; ``3DES`` -> ``3des``."""
    if match := _ENCRYPTION.match(word.strip()):
        bits = match["bits"]
        return f"aes-gcm-{bits}" if match["mode"].upper() == "GCM" else f"aes-{bits}"
    return word.strip().lower()


_INTEGRITY = {
    "sha1": "sha",
    "sha96": "sha",
    "sha": "sha",
    "md5": "md5",
    "md596": "md5",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
}


def ikev2_integrity(word: str) -> str:
    """``SHA256`` -> ``sha256``; ``SHA96``/``SHA1`` -> ``sha``; ``MD596`` -> ``md5``."""
    key = word.strip().lower()
    return _INTEGRITY.get(key, key)


# Sample device value: "DH_GROUP_256_ECP/Group 19 DH_GROUP_2048_MODP/Group 14"
_GROUP = re.compile(r"Group\s+(\d+)", re.IGNORECASE)


def ikev2_groups(text: str) -> list[int]:
    """The DH group numbers of a proposal's ``DH Group`` line, in order."""
    return [int(n) for n in _GROUP.findall(text)]


def ikev2_authentication(text: str) -> str:
    """The first method of an IKEv2 profile's ``Local authentication method`` (``pre-share``)."""
    words = text.split()
    if not words or words[0].lower() == "none":
        return "pre-share"
    first = words[0].lower()
    return "pre-share" if first.startswith("pre-share") else first


@dataclass(frozen=True)
class Proposal:
    """One ``show crypto ikev2 proposal`` entry, parsed, with the line that names it."""

    name: str
    encryption: tuple[str, ...]
    integrity: tuple[str, ...]
    prf: tuple[str, ...]
    groups: tuple[int, ...]
    source: Evidence | None = None


def proposal_from_row(row: Mapping[str, Any], source: Evidence | None) -> Proposal:
    """A :class:`Proposal` from a template row of ``show crypto ikev2 proposal``."""
    return Proposal(
        name=str(row["name"]),
        encryption=tuple(str(row.get("encryption", "")).split()),
        integrity=tuple(str(row.get("integrity", "")).split()),
        prf=tuple(str(row.get("prf", "")).split()),
        groups=tuple(ikev2_groups(str(row.get("dh_group", "")))),
        source=source,
    )


def offered_proposals(
    proposals: Sequence[Proposal], policies: Sequence[Mapping[str, Any]] | None
) -> list[Proposal]:
    """The proposals the device offers (see the module contract), in order."""
    by_name = {p.name: p for p in proposals}
    if policies is not None:
        configured = [p for p in policies if p.get("name") != "default"]
        chosen = configured or [p for p in policies if p.get("name") == "default"]
        names = [str(n) for policy in chosen for n in policy.get("proposals") or []]
    else:
        names = [p.name for p in proposals if p.name != "default"] or ["default"]
    return [by_name[n] for n in dict.fromkeys(names) if n in by_name]


def ike_policies(
    proposals: Sequence[Proposal], authentication: str = "pre-share", lifetime: int | None = None
) -> tuple[IkePolicy, ...]:
    """One IKE policy per combination the proposals offer (see the module contract)."""
    out: list[IkePolicy] = []
    for proposal in proposals:
        hashes = proposal.integrity or proposal.prf
        for encryption in proposal.encryption:
            for integrity in hashes or ("",):
                for group in proposal.groups or (0,):
                    out.append(
                        IkePolicy(
                            priority=len(out) + 1,
                            encryption=ikev2_encryption(encryption),
                            hash=ikev2_integrity(integrity),
                            authentication=authentication,
                            dh_group=group,
                            lifetime_seconds=lifetime or DEFAULT_IKEV2_LIFETIME,
                            is_default=False,
                            source=proposal.source,
                        )
                    )
    return tuple(out)


# Sample identity values: "address 10.2.2.1 255.255.255.255", "address 2001:DB8::/32", "any"
_IDENTITY_ADDRESS = re.compile(
    r"^address\s+(?P<address>[0-9A-Fa-f.:]+)(?:/(?P<prefix>\d+))?(?:\s+(?P<mask>\d+\.\d+\.\d+\.\d+))?"
)


def profile_matches(row: Mapping[str, Any], peer: IPAddress) -> bool:
    """Whether an IKEv2 profile row's ``match identity remote address`` covers ``peer``."""
    for identity in row.get("remote_identities") or []:
        text = str(identity).strip()
        if text.lower() == "any":
            return True
        match = _IDENTITY_ADDRESS.match(text)
        if match is None:
            continue
        if match["prefix"]:
            spec = f"{match['address']}/{match['prefix']}"
        elif match["mask"]:
            spec = f"{match['address']}/{match['mask']}"
        else:
            spec = match["address"]
        try:
            if peer in ip_network(spec, strict=False):
                return True
        except (ValueError, TypeError):
            continue
    return False


def _tunnel_number(name: str) -> int:
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else 0


def _source_address(tunnel: TunnelConfig, config: ConfigFacts) -> IPAddress | None:
    try:
        return ip_address(tunnel.source)
    except ValueError:
        pass
    for name, address in config.interface_addresses.items():
        if name.lower() == tunnel.source.lower():
            return address.ip
    return None


def _any(version: int) -> IPNetwork:
    return IPv6Network("::/0") if version == 6 else IPv4Network("0.0.0.0/0")


def tunnel_selectors(
    tunnel: TunnelConfig, config: ConfigFacts
) -> tuple[tuple[IPNetwork, ...], tuple[IPNetwork, ...]]:
    """(local, remote) selectors IOS proposes for a protected tunnel (module contract)."""
    mode = tunnel.mode.lower()
    if mode.startswith("ipsec"):
        version = 6 if "ipv6" in mode else 4
        return (_any(version),), (_any(version),)
    local = _source_address(tunnel, config)
    remote = tunnel.destination
    if local is None or remote is None:
        return (), ()
    return (ip_network(local),), (ip_network(remote),)


def route_based_entries(
    config: ConfigFacts, profiles: Mapping[str, Mapping[str, Any]]
) -> tuple[CryptoMapEntry, ...]:
    """One entry per protected tunnel interface (see the module contract).

    ``profiles`` maps IPsec profile names to ``transform_sets`` (list), ``pfs_group``,
    ``lifetime_seconds`` and ``lifetime_kilobytes`` (int or None).
    """
    out: list[CryptoMapEntry] = []
    for tunnel in config.tunnels:
        profile = profiles.get(tunnel.ipsec_profile, {})
        local, remote = tunnel_selectors(tunnel, config)
        out.append(
            CryptoMapEntry(
                name=tunnel.ipsec_profile,
                sequence=_tunnel_number(tunnel.name),
                peers=(tunnel.destination,) if tunnel.destination is not None else (),
                acl="",
                local_selectors=local,
                remote_selectors=remote,
                transform_sets=tuple(profile.get("transform_sets") or ()),
                pfs_group=str(profile.get("pfs_group") or ""),
                lifetime_seconds=profile.get("lifetime_seconds"),
                lifetime_kilobytes=profile.get("lifetime_kilobytes"),
                interfaces=(tunnel.name,),
                source=tunnel.evidence,
            )
        )
    return tuple(out)
