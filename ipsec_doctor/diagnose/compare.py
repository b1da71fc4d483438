"""Platform-neutral vocabulary and the two-ended comparisons (policies, transforms, selectors,
lifetimes).

Contract (pure): the converters normalise algorithm names (``aes-256``, ``sha256``,
``esp-aes-256``, ``esp-sha256-hmac``; see model/state.py); this module ranks them, says which
are weak, and compares the two ends' settings. Nothing here reads device wording. Lifetimes
are each platform's own: :data:`PLATFORM_LIFETIMES` holds the defaults that apply where a
device shows no lifetime, and :func:`effective_lifetime` says which value is in effect and
which line proves it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from ipsec_doctor.model.state import Evidence, IkePolicy, IPNetwork, TransformSet

# ---------------------------------------------------------------- interface names

_IFACE = re.compile(r"^\s*([A-Za-z-]*)\s*([0-9].*)?$")


def iface_key(name: str) -> str:
    """A comparable key for an interface name: ``Gi0/0`` and ``GigabitEthernet0/0`` agree."""
    match = _IFACE.match(name.strip())
    if match is None:
        return name.strip().lower()
    prefix, rest = match.group(1).lower(), (match.group(2) or "").strip().lower()
    return f"{prefix[:2]}{rest}" if rest else prefix


def same_interface(a: str, b: str) -> bool:
    return iface_key(a) == iface_key(b)


# ---------------------------------------------------------------- algorithm strength

#: Higher is stronger. Unknown names rank 0 (neither weak nor comparable).
ENCRYPTION_RANK: dict[str, int] = {
    "null": 1,
    "des": 2,
    "3des": 3,
    "aes": 4,
    "aes-128": 4,
    "aes-192": 5,
    "aes-256": 6,
    "aes-gcm-128": 7,
    "aes-gcm-192": 7,
    "aes-gcm-256": 8,
}
HASH_RANK: dict[str, int] = {
    "md5": 1,
    "sha": 2,
    "sha1": 2,
    "sha256": 3,
    "sha384": 4,
    "sha512": 5,
}
GROUP_RANK: dict[int, int] = {
    1: 1, 2: 2, 5: 3, 14: 4, 24: 4, 15: 5, 19: 5, 16: 6, 20: 6, 21: 7,
}  # fmt: skip
WEAK_ENCRYPTION = frozenset({"des", "3des", "null"})
WEAK_HASH = frozenset({"md5"})
WEAK_GROUPS = frozenset({1, 2, 5})

#: strongSwan / RFC names of DH groups.
_GROUP_NAMES: dict[str, int] = {
    "modp768": 1,
    "modp1024": 2,
    "modp1536": 5,
    "modp2048": 14,
    "modp3072": 15,
    "modp4096": 16,
    "ecp256": 19,
    "ecp384": 20,
    "ecp521": 21,
    "modp2048s256": 24,
}


def normalize_group(value: str | int | None) -> int | None:
    """``group14`` / ``14`` / ``modp2048`` -> 14; ``""``, ``none``, ``no`` -> None."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    if text in _GROUP_NAMES:
        return _GROUP_NAMES[text]
    digits = re.sub(r"^(group|dh|pfs)\s*", "", text)
    return int(digits) if digits.isdigit() else None


def normalize_transform(name: str) -> str:
    """``esp-aes 256`` -> ``esp-aes-256``; lowercase, spaces folded."""
    return "-".join(name.lower().split())


def _transform_rank(transform: str) -> tuple[int, int]:
    """(encryption rank, integrity rank) of one transform name; 0 where not that kind."""
    t = normalize_transform(transform)
    body = t.removeprefix("esp-").removeprefix("ah-")
    if body.endswith("-hmac"):
        return 0, HASH_RANK.get(body.removesuffix("-hmac"), 0)
    if body.startswith("gcm"):
        body = "aes-" + body
    if body in ENCRYPTION_RANK:
        return ENCRYPTION_RANK[body], 0
    return 0, 0


def weak_transforms(transforms: Iterable[str]) -> list[str]:
    """The DES / 3DES / MD5 / null members of a transform set."""
    weak: list[str] = []
    for transform in transforms:
        t = normalize_transform(transform)
        body = t.removeprefix("esp-").removeprefix("ah-")
        if body.removesuffix("-hmac") in WEAK_HASH or body in WEAK_ENCRYPTION or body == "null":
            weak.append(transform)
    return weak


def weak_policy_attributes(policy: IkePolicy) -> list[str]:
    """``["encryption 3des", "hash md5", "group 2"]`` for the weak parts of an IKE policy."""
    weak: list[str] = []
    if policy.encryption.lower() in WEAK_ENCRYPTION:
        weak.append(f"encryption {policy.encryption}")
    if policy.hash.lower() in WEAK_HASH:
        weak.append(f"hash {policy.hash}")
    if policy.dh_group in WEAK_GROUPS:
        weak.append(f"group {policy.dh_group}")
    return weak


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def stronger_policy(a: IkePolicy, b: IkePolicy) -> int:
    """+1 when ``a`` is stronger in every attribute that differs, -1 for ``b``, 0 undecidable."""
    votes = {
        _sign(ENCRYPTION_RANK.get(a.encryption, 0) - ENCRYPTION_RANK.get(b.encryption, 0)),
        _sign(HASH_RANK.get(a.hash, 0) - HASH_RANK.get(b.hash, 0)),
        _sign(GROUP_RANK.get(a.dh_group, 0) - GROUP_RANK.get(b.dh_group, 0)),
    } - {0}
    if len(votes) == 1:
        return votes.pop()
    return 0


def stronger_transforms(a: Sequence[str], b: Sequence[str]) -> int:
    """+1 when transform list ``a`` is stronger than ``b`` (all differences one way), else 0/-1."""
    ra = [_transform_rank(t) for t in a]
    rb = [_transform_rank(t) for t in b]
    enc = _sign(max((r[0] for r in ra), default=0) - max((r[0] for r in rb), default=0))
    integ = _sign(max((r[1] for r in ra), default=0) - max((r[1] for r in rb), default=0))
    votes = {enc, integ} - {0}
    return votes.pop() if len(votes) == 1 else 0


# ---------------------------------------------------------------- IKE policies

POLICY_ATTRIBUTES = ("encryption", "hash", "authentication", "group", "lifetime")


def policy_values(policy: IkePolicy) -> dict[str, str | int | None]:
    return {
        "priority": policy.priority,
        "encryption": policy.encryption,
        "hash": policy.hash,
        "authentication": policy.authentication,
        "group": policy.dh_group,
        "lifetime": policy.lifetime_seconds,
    }


def policy_differences(a: IkePolicy, b: IkePolicy) -> list[str]:
    """The attributes (of :data:`POLICY_ATTRIBUTES`) in which two policies differ."""
    diff: list[str] = []
    if a.encryption.lower() != b.encryption.lower():
        diff.append("encryption")
    if a.hash.lower() != b.hash.lower():
        diff.append("hash")
    if a.authentication.lower() != b.authentication.lower():
        diff.append("authentication")
    if a.dh_group != b.dh_group:
        diff.append("group")
    if (
        a.lifetime_seconds is not None
        and b.lifetime_seconds is not None
        and a.lifetime_seconds != b.lifetime_seconds
    ):
        diff.append("lifetime")
    return diff


def effective_policies(policies: Sequence[IkePolicy]) -> list[IkePolicy]:
    """The policies a device offers: its own, or the defaults when it has none of its own."""
    own = [p for p in policies if not p.is_default]
    return sorted(own or list(policies), key=lambda p: p.priority)


@dataclass(frozen=True)
class PolicyComparison:
    """How two ends' IKE policies meet."""

    common: tuple[tuple[IkePolicy, IkePolicy], ...]  # same encryption, hash, auth and group
    closest: tuple[IkePolicy, IkePolicy] | None  # the nearest pair when nothing is common
    differing: tuple[str, ...]  # attributes of ``closest`` that differ

    @property
    def matches(self) -> bool:
        return bool(self.common)


def compare_policies(a: Sequence[IkePolicy], b: Sequence[IkePolicy]) -> PolicyComparison:
    """Common policies of two ends (lifetime aside: a lifetime difference alone negotiates)."""
    pa, pb = effective_policies(a), effective_policies(b)
    common = tuple(
        (x, y) for x in pa for y in pb if not set(policy_differences(x, y)) - {"lifetime"}
    )
    if common or not pa or not pb:
        first = common[0] if common else None
        differing = tuple(policy_differences(*first)) if first else ()
        return PolicyComparison(common=common, closest=first, differing=differing)
    scored = sorted(
        ((len(policy_differences(x, y)), x.priority, y.priority, x, y) for x in pa for y in pb),
        key=lambda item: item[:3],
    )
    _, _, _, x, y = scored[0]
    return PolicyComparison(common=(), closest=(x, y), differing=tuple(policy_differences(x, y)))


# ---------------------------------------------------------------- transform sets


def transform_key(ts: TransformSet) -> frozenset[str]:
    return frozenset(normalize_transform(t) for t in ts.transforms)


@dataclass(frozen=True)
class TransformComparison:
    common: tuple[tuple[TransformSet, TransformSet], ...]
    closest: tuple[TransformSet, TransformSet] | None

    @property
    def matches(self) -> bool:
        return bool(self.common)


def compare_transform_sets(
    a: Sequence[TransformSet], b: Sequence[TransformSet]
) -> TransformComparison:
    common = tuple((x, y) for x in a for y in b if transform_key(x) == transform_key(y))
    if common or not a or not b:
        return TransformComparison(common=common, closest=common[0] if common else None)
    scored = sorted(
        ((len(transform_key(x) ^ transform_key(y)), i, j) for i, x in enumerate(a)
         for j, y in enumerate(b)),
    )  # fmt: skip
    _, i, j = scored[0]
    return TransformComparison(common=(), closest=(a[i], b[j]))


# ---------------------------------------------------------------- selectors


def networks_overlap(a: IPNetwork | None, b: IPNetwork | None) -> bool:
    """``None`` stands for ``any``."""
    if a is None or b is None:
        return True
    if a.version != b.version:
        return False
    return a.overlaps(b)


def network_covers(outer: IPNetwork | None, inner: IPNetwork) -> bool:
    if outer is None:
        return True
    if outer.version != inner.version:
        return False
    return inner.subnet_of(outer)  # type: ignore[arg-type]


def ios_wildcard(net: IPNetwork | None) -> str:
    """``10.1.1.0/24`` -> ``10.1.1.0 0.0.0.255``; a /32 -> ``host X``; None or /0 -> ``any``."""
    if net is None or net.prefixlen == 0:
        return "any"
    if net.prefixlen == net.max_prefixlen:
        return f"host {net.network_address}"
    if isinstance(net, IPv4Network):
        return f"{net.network_address} {net.hostmask}"
    assert isinstance(net, IPv6Network)
    return str(net)


def cidr(net: IPNetwork | None) -> str:
    return "0.0.0.0/0" if net is None else str(net)


# ---------------------------------------------------------------- lifetimes


@dataclass(frozen=True)
class PlatformLifetimes:
    """A platform's own SA lifetimes where nothing sets one, and how it meets IKEv1 offers."""

    ike: int  # IKE SA (ISAKMP policy lifetime / connection rekey time), seconds
    ipsec: int  # IPsec / CHILD SA, seconds
    #: as IKEv1 responder it refuses a phase-1 offer whose lifetime exceeds its own (IOS: an
    #: ISAKMP policy matches only offers up to its lifetime); strongSwan accepts any lifetime
    #: and re-authenticates on its own timer
    refuses_longer_ikev1_offers: bool
    #: what its IKEv1 phase-1 offers add to its lifetime, in percent (strongSwan offers its
    #: rekey / reauthentication time plus ``over_time``, by default 10 % of it)
    ikev1_offer_margin_percent: int = 0

    def ikev1_offer(self, seconds: int) -> int:
        """The lifetime its IKEv1 phase-1 offers carry when its own is ``seconds``."""
        return seconds + seconds * self.ikev1_offer_margin_percent // 100


#: Each platform's defaults: IOS ISAKMP policy 86400 s, IPsec SA 3600 s (and 4608000 kB);
#: strongSwan (charon) IKE_SA rekey 4 h, CHILD_SA rekey 1 h.
PLATFORM_LIFETIMES: dict[str, PlatformLifetimes] = {
    "cisco_ios": PlatformLifetimes(ike=86400, ipsec=3600, refuses_longer_ikev1_offers=True),
    "strongswan": PlatformLifetimes(
        ike=14400, ipsec=3600, refuses_longer_ikev1_offers=False, ikev1_offer_margin_percent=10
    ),
}


@dataclass(frozen=True)
class Lifetime:
    """One end's effective lifetime of one kind of SA."""

    seconds: int
    default: int  # its platform's default for this kind of SA
    assumed: bool  # nothing printed or set a value: the platform's default applies
    source: Evidence | None  # the line printing or setting it; else the policy entry's own line

    @property
    def deviates(self) -> bool:
        """Set to something else than its platform's default."""
        return self.seconds != self.default


def effective_lifetime(
    seconds: int | None,
    source: Evidence | None,
    owner: Evidence | None,
    default: int,
) -> Lifetime:
    """The lifetime in effect: ``seconds`` as printed or set (with its ``source`` line), else
    ``default`` (quoting ``owner``, the line of the policy or entry it applies to)."""
    if seconds:
        return Lifetime(seconds=seconds, default=default, assumed=False, source=source or owner)
    return Lifetime(seconds=default, default=default, assumed=True, source=owner)
