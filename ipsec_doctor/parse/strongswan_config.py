"""strongSwan configuration text -> plain data: ``swanctl.conf`` sections and proposal keywords.

Contract (pure, no I/O; used by :mod:`ipsec_doctor.parse.strongswan`):
- :func:`parse_swanctl_conf` reads the ``swanctl.conf`` syntax (nested ``name { ... }``
  sections, ``key = value`` settings, ``#`` comments, quoted values) into a :class:`Section`
  tree. Every setting keeps its 1-based line number so evidence can quote it. ``include``
  lines are kept in :attr:`Section.includes` (the included files are not read). Secrets were
  redacted by the collector before the text got here; this module never needs them.
  Unbalanced braces or a line that is neither a setting nor a section is a ``ParseError``.
- :func:`ike_policies` turns one connection's ``proposals`` value (``aes256-sha256-modp2048,
  aes128-sha1-modp1024``) into :class:`IkeAlgorithms` (one per combination of encryption,
  integrity and DH group, in the order strongSwan prefers them) in the neutral vocabulary of
  :mod:`ipsec_doctor.model.state`: encryption ``aes-256``/``aes-128``/``3des``/
  ``aes-gcm-256``..., hash ``sha``/``sha256``/``sha384``/``sha512``/``md5``, DH group numbers.
- :func:`esp_transforms` turns one child's ``esp_proposals`` value into transform lists
  (``("esp-aes-256", "esp-sha256-hmac")``) plus the PFS group (``group14``, ``""`` without a
  DH group), one per combination.
- ``default`` (strongSwan's built-in proposal list) and keywords this module does not know
  make the value undecidable: the functions return ``None`` so the caller leaves the policies
  unknown instead of inventing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import product

from ipsec_doctor.errors import ParseError

# ---------------------------------------------------------------------------------------------
# swanctl.conf


@dataclass
class Setting:
    """``key = value`` and where it stands."""

    key: str
    value: str
    line_no: int
    line: str


@dataclass
class Section:
    """One ``name { ... }`` block: its settings and subsections, in file order."""

    name: str
    line_no: int = 0
    line: str = ""
    settings: dict[str, Setting] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        found = self.settings.get(key)
        return None if found is None else found.value

    def section(self, *path: str) -> Section | None:
        here: Section | None = self
        for name in path:
            if here is None:
                return None
            here = here.sections.get(name)
        return here

    def all_settings(self) -> list[Setting]:
        """Every setting of this section and its subsections, in line order."""
        found = list(self.settings.values())
        for child in self.sections.values():
            found += child.all_settings()
        return sorted(found, key=lambda s: s.line_no)


# Sample device lines: "connections {", "    s2s-ikev2 {", "local {"
_OPEN = re.compile(r"^(?P<name>[^\s{}=#]+)\s*\{\s*$")
# Sample device lines: "proposals = aes256-sha256-modp2048", "secret = \"abc\"", "id ="
_SETTING = re.compile(r"^(?P<key>[^\s{}=#]+)\s*=\s*(?P<value>.*?)\s*$")
# Sample device line: "include conf.d/*.conf"
_INCLUDE = re.compile(r"^include\s+(?P<path>\S+)\s*$")


def _strip_comment(line: str) -> str:
    """The line without a ``#`` comment (a ``#`` inside double quotes is kept)."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:index]
    return line


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_swanctl_conf(text: str, line_offset: int = 0) -> Section:
    """The section tree of a ``swanctl.conf`` text (see the module contract)."""
    root = Section(name="")
    stack = [root]
    for index, raw in enumerate(text.split("\n")):
        line_no = index + 1 + line_offset
        body = _strip_comment(raw).strip()
        if not body:
            continue
        if body == "}":
            if len(stack) == 1:
                raise ParseError(f"swanctl.conf line {line_no}: '}}' without an open section")
            stack.pop()
            continue
        if match := _OPEN.match(body):
            section = Section(name=match["name"], line_no=line_no, line=raw.rstrip())
            stack[-1].sections[section.name] = section
            stack.append(section)
            continue
        if match := _INCLUDE.match(body):
            stack[-1].includes.append(match["path"])
            continue
        if match := _SETTING.match(body):
            key = match["key"]
            stack[-1].settings[key] = Setting(
                key=key, value=_unquote(match["value"]), line_no=line_no, line=raw.rstrip()
            )
            continue
        raise ParseError(f"swanctl.conf line {line_no}: not a setting or section: {raw.strip()!r}")
    if len(stack) != 1:
        raise ParseError(f"swanctl.conf: section {stack[-1].name!r} is never closed")
    return root


def split_list(value: str | None) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (swanctl lists are comma or space separated)."""
    if not value:
        return []
    return [item for item in re.split(r"[,\s]+", value.strip()) if item]


def seconds(value: str | None) -> int | None:
    """``"5s"``/``"5"`` -> 5, ``"1h"`` -> 3600, ``"2m"`` -> 120, ``"1d"`` -> 86400."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value)
    if match is None:
        return None
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * factor


# ---------------------------------------------------------------------------------------------
# proposals

#: strongSwan encryption keywords -> neutral IKE encryption names (model/state.py).
_ENCRYPTION: dict[str, str] = {
    "aes": "aes-128",
    "aes128": "aes-128",
    "aes192": "aes-192",
    "aes256": "aes-256",
    "aes128ctr": "aes-ctr-128",
    "aes192ctr": "aes-ctr-192",
    "aes256ctr": "aes-ctr-256",
    "3des": "3des",
    "des": "des",
    "null": "null",
    "blowfish": "blowfish",
    "cast128": "cast-128",
    "camellia": "camellia-128",
    "camellia128": "camellia-128",
    "camellia192": "camellia-192",
    "camellia256": "camellia-256",
    "chacha20poly1305": "chacha20-poly1305",
}

# Sample keyword: "aes256gcm16" (AES-GCM, 256-bit key, 16-byte ICV), "aes128ccm12"
_AEAD = re.compile(
    r"^(?P<alg>aes|camellia)(?P<bits>128|192|256)?(?P<mode>gcm|ccm|gmac)(?:8|12|16|64|96|128)?$"
)

#: strongSwan integrity / PRF keywords -> neutral hash names (``sha`` is SHA-1, as on IOS).
_HASH: dict[str, str] = {
    "md5": "md5",
    "md5_128": "md5",
    "sha": "sha",
    "sha1": "sha",
    "sha1_160": "sha",
    "sha256": "sha256",
    "sha2_256": "sha256",
    "sha256_96": "sha256",
    "sha384": "sha384",
    "sha2_384": "sha384",
    "sha512": "sha512",
    "sha2_512": "sha512",
    "aesxcbc": "aes-xcbc",
    "aescmac": "aes-cmac",
}

#: strongSwan DH group keywords -> IANA group numbers.
DH_GROUPS: dict[str, int] = {
    "modp768": 1,
    "modp1024": 2,
    "modp1536": 5,
    "modp2048": 14,
    "modp3072": 15,
    "modp4096": 16,
    "modp6144": 17,
    "modp8192": 18,
    "ecp256": 19,
    "ecp384": 20,
    "ecp521": 21,
    "modp1024s160": 22,
    "modp2048s224": 23,
    "modp2048s256": 24,
    "ecp192": 25,
    "ecp224": 26,
    "ecp224bp": 27,
    "ecp256bp": 28,
    "ecp384bp": 29,
    "ecp512bp": 30,
    "curve25519": 31,
    "x25519": 31,
    "curve448": 32,
    "x448": 32,
}

_ESN = frozenset({"esn", "noesn"})


@dataclass(frozen=True)
class IkeAlgorithms:
    """One combination of an IKE proposal."""

    encryption: str
    hash: str
    dh_group: int
    proposal: str  # the proposal as configured (one comma-separated item)


@dataclass(frozen=True)
class EspAlgorithms:
    """One combination of an ESP proposal."""

    transforms: tuple[str, ...]  # esp-aes-256, esp-sha256-hmac
    pfs_group: str  # group14, "" = no DH group (no PFS)
    proposal: str


@dataclass
class _Split:
    encryption: list[str] = field(default_factory=list)
    aead: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    prf: list[str] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _aead(keyword: str) -> str | None:
    """``aes256gcm16`` -> ``aes-gcm-256``; None when not an AEAD keyword."""
    match = _AEAD.match(keyword)
    if match is None:
        return None
    return f"{match['alg']}-{match['mode']}-{match['bits'] or '128'}"


def _split(proposal: str, *, ike: bool) -> _Split:
    parts = _Split()
    for keyword in proposal.lower().split("-"):
        if not keyword:
            continue
        if keyword in _ENCRYPTION:
            parts.encryption.append(_ENCRYPTION[keyword])
        elif (aead := _aead(keyword)) is not None:
            parts.aead.append(aead)
        elif keyword.startswith("prf") and keyword[3:] in _HASH:
            parts.prf.append(_HASH[keyword[3:]])
        elif keyword in _HASH:
            parts.integrity.append(_HASH[keyword])
        elif keyword in DH_GROUPS:
            parts.groups.append(DH_GROUPS[keyword])
        elif keyword in _ESN or (not ike and keyword == "none"):
            continue
        else:
            parts.unknown.append(keyword)
    return parts


#: more combinations than this in one value are not expanded (the policies stay unknown)
MAX_COMBINATIONS = 64


def ike_policies(value: str | None) -> list[IkeAlgorithms] | None:
    """The IKE algorithm combinations of a ``proposals`` value (see the module contract)."""
    items = split_list((value or "").replace(" ", ","))
    if not items or any(item.lower() == "default" for item in items):
        return None
    result: list[IkeAlgorithms] = []
    for item in items:
        parts = _split(item, ike=True)
        if parts.unknown or not (parts.encryption or parts.aead) or not parts.groups:
            return None
        ciphers = [(e, h) for e in parts.encryption for h in (parts.integrity or parts.prf)]
        ciphers += [(a, h) for a in parts.aead for h in (parts.prf or [""])]
        if not ciphers:
            return None
        for (encryption, hash_), group in product(ciphers, parts.groups):
            result.append(IkeAlgorithms(encryption, hash_, group, item))
            if len(result) > MAX_COMBINATIONS:
                return None
    return result


def esp_transforms(value: str | None) -> list[EspAlgorithms] | None:
    """The ESP transform combinations of an ``esp_proposals`` value (see the module contract)."""
    items = split_list((value or "").replace(" ", ","))
    if not items or any(item.lower() == "default" for item in items):
        return None
    result: list[EspAlgorithms] = []
    for item in items:
        parts = _split(item, ike=False)
        if parts.unknown or parts.prf:
            return None
        ciphers: list[tuple[str, ...]] = [
            (f"esp-{e}", f"esp-{h}-hmac") for e in parts.encryption for h in parts.integrity
        ]
        ciphers += [(f"esp-{e}",) for e in parts.encryption if not parts.integrity]
        ciphers += [(f"esp-{a.replace('aes-', '')}",) for a in parts.aead]
        if not ciphers:
            return None
        groups = [f"group{g}" for g in parts.groups] or [""]
        for transforms, group in product(ciphers, groups):
            result.append(EspAlgorithms(transforms, group, item))
            if len(result) > MAX_COMBINATIONS:
                return None
    return result


# Sample log/list-sas values: "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
#   "ESP:AES_CBC-256/HMAC_SHA2_256_128", "AES_GCM_16-256/PRF_HMAC_SHA2_256/ECP_256"
_NEGOTIATED_ENC = re.compile(
    r"^(?P<alg>AES_CBC|AES_CTR|AES_GCM_\d+|AES_CCM_\d+|3DES_CBC|DES_CBC|CHACHA20_POLY1305|NULL)(?:[-_](?P<bits>\d+))?$"
)
_NEGOTIATED_HASH = re.compile(
    r"^(?:PRF_)?HMAC_(?P<alg>SHA2_(?P<bits>256|384|512)|SHA1|MD5)(?:_\d+)?$"
)


def negotiated_transforms(text: str) -> tuple[tuple[str, ...], str]:
    """(transforms, PFS group) of a negotiated ESP algorithm string as ``swanctl --list-sas``
    prints it: ``AES_CBC-256/HMAC_SHA2_256_128/MODP_2048`` -> ``(("esp-aes-256",
    "esp-sha256-hmac"), "group14")``. Unknown parts are kept in lower case."""
    transforms: list[str] = []
    group = ""
    for part in text.split(":")[-1].split("/"):
        part = part.strip()
        if not part or part in ("NO_EXT_SEQ", "EXT_SEQ"):
            continue
        if enc := _NEGOTIATED_ENC.match(part):
            alg, bits = enc["alg"], enc["bits"] or "128"
            if alg == "AES_CBC":
                transforms.append(f"esp-aes-{bits}")
            elif alg.startswith("AES_GCM"):
                transforms.append(f"esp-gcm-{bits}")
            elif alg == "3DES_CBC":
                transforms.append("esp-3des")
            elif alg == "DES_CBC":
                transforms.append("esp-des")
            else:
                transforms.append(f"esp-{alg.lower().replace('_', '-')}")
            continue
        if hmac := _NEGOTIATED_HASH.match(part):
            name = {"SHA1": "sha", "MD5": "md5"}.get(hmac["alg"], f"sha{hmac['bits']}")
            transforms.append(f"esp-{name}-hmac")
            continue
        keyword = part.lower().replace("_", "")
        if keyword in DH_GROUPS:
            group = f"group{DH_GROUPS[keyword]}"
            continue
        transforms.append(part.lower())
    return tuple(transforms), group
