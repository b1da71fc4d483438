"""Stage ``ipsec``: does phase 2 come up with the peer?

Guide, "Does the router successfully negotiate IPSec tunnels with its peer?" and "Compare
configuration on both sides for symmetry": at least one common transform set, mirror-image
crypto ACLs, the same PFS demand and compatible lifetimes. The engine never lets these codes
out while phase 1 is down.

On IOS ``IPSec policy invalidated proposal with error N`` tells the two failures apart: 32 is
the selectors (PROXY_ID_MISMATCH), 256 the transforms (TRANSFORM_SET_MISMATCH). Parsers put
the number in ``LogEvent.detail["error"]``.

LIFETIME_MISMATCH compares each end's own effective lifetimes (what it shows or sets, else its
platform's default: IOS 86400 s / 3600 s, strongSwan 4 h / 1 h; ``compare.PLATFORM_LIFETIMES``),
never one platform's defaults against another's values. IPsec (CHILD) SA lifetimes count
whenever they differ. IKE SA lifetimes count only where IKEv1 negotiates them and the end with
the shorter one refuses the other's longer offers (IOS); IKEv2 does not negotiate lifetimes
(each end rekeys on its own timer). The evidence quotes the line of each value (the policy or
entry line where a default applies), the fix sets one end's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipsec_doctor.diagnose.compare import (
    GROUP_RANK,
    PLATFORM_LIFETIMES,
    Lifetime,
    PlatformLifetimes,
    cidr,
    compare_policies,
    compare_transform_sets,
    effective_lifetime,
    ios_wildcard,
    networks_overlap,
    normalize_group,
    same_interface,
    stronger_transforms,
    transform_key,
)
from ipsec_doctor.diagnose.context import End, Tunnel, first, parse_address
from ipsec_doctor.diagnose.fixes import entry_names, render, term
from ipsec_doctor.diagnose.rules.traffic import crypto_acl_lines
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Finding, Severity
from ipsec_doctor.model.state import (
    CryptoMapEntry,
    Evidence,
    IkePolicy,
    IkeStatus,
    IPNetwork,
    LogEvent,
    TransformSet,
)

UNDECIDABLE = (
    "neither side can be shown to be the deviating one; by convention the remote end is changed"
)


def _pair(t: Tunnel) -> tuple[End, CryptoMapEntry, End, CryptoMapEntry] | None:
    """The two crypto map entries that name each other (both ends read)."""
    both = t.both
    if both is None:
        return None
    local, remote = both
    if not local.entries or not remote.entries:
        return None
    return local, local.entries[0], remote, remote.entries[0]


def _invalidated(t: Tunnel, error: str) -> list[tuple[End, LogEvent]]:
    found: list[tuple[End, LogEvent]] = []
    for end in t.ends:
        for event in end.events(Event.PHASE2_POLICY_INVALIDATED):
            code = event.detail.get("error", "").strip()
            if code == error:
                found.append((end, event))
            elif not code:
                # no number: the message beside it decides
                near_t = end.neighbours(event, Event.PHASE2_TRANSFORM_REJECTED)
                near_p = end.neighbours(event, Event.PHASE2_PROXY_REJECTED)
                if (error == "256" and near_t and not near_p) or (
                    error == "32" and near_p and not near_t
                ):
                    found.append((end, event))
    return found


def _events(t: Tunnel, *names: str) -> list[tuple[End, LogEvent]]:
    return [(end, event) for end in t.ends for event in end.events(*names)]


def _ev(pairs: Sequence[tuple[End, LogEvent]]) -> list[Evidence | None]:
    return [end.ev(event.source) for end, event in pairs]


def _phase2_up(t: Tunnel) -> bool:
    return t.local.has_ipsec


# ------------------------------------------------------------------ transform sets


def _sets_of(end: End, entry: CryptoMapEntry) -> list[TransformSet] | None:
    known = end.state.transform_sets
    if known is None or not entry.transform_sets:
        return None
    by_name = {ts.name: ts for ts in known}
    found = [by_name[n] for n in entry.transform_sets if n in by_name]
    return found if len(found) == len(entry.transform_sets) else None


def _transform_words(platform: str, ts: TransformSet) -> str:
    return " ".join(term(platform, "transform", t) for t in ts.transforms)


def transform_set_mismatch(t: Tunnel) -> list[Finding]:
    if _phase2_up(t):
        return []
    events = _events(t, Event.PHASE2_TRANSFORM_REJECTED) + _invalidated(t, "256")
    generic = _events(t, Event.PHASE2_PROPOSAL_REJECTED)
    pair = _pair(t)
    comparison = None
    if pair is not None:
        local, le, remote, re_ = pair
        ls, rs = _sets_of(local, le), _sets_of(remote, re_)
        if ls and rs:
            comparison = compare_transform_sets(ls, rs)
    mismatch = comparison is not None and not comparison.matches
    specific = _events(
        t,
        Event.PHASE2_PROXY_REJECTED,
        Event.INVALID_LOCAL_ADDRESS,
        Event.PEER_NOT_FOUND,
        Event.PFS_MISMATCH,
        Event.IDENTITY_MISMATCH,
    ) + _invalidated(t, "32")
    if (
        generic
        and not events
        and not specific
        and (mismatch or comparison is None)
        and not _pfs_differs(t)
    ):
        events = generic  # phase-2 "atts not acceptable" with nothing better to explain it
    if not events and not mismatch:
        return []
    detail: dict[str, object] = {}
    evidence: list[Evidence | None] = _ev(events)
    fix_end: End | None = t.remote if t.remote is not None and t.remote.reachable else None
    reason = UNDECIDABLE
    fix = ""
    if comparison is not None and comparison.closest is not None and pair is not None:
        local, le, remote, re_ = pair
        lts, rts = comparison.closest
        detail.update(
            {
                "local": {"name": lts.name, "transforms": list(lts.transforms)},
                "remote": {"name": rts.name, "transforms": list(rts.transforms)},
                "differing": sorted(transform_key(lts) ^ transform_key(rts)),
            }
        )
        evidence += [
            local.ev(lts.source),
            remote.ev(rts.source),
            local.ev(le.source),
            remote.ev(re_.source),
        ]
        vote = stronger_transforms(lts.transforms, rts.transforms)
        if vote < 0:
            fix_end, model, entry = local, rts, le
            reason = f"{local.name}'s transform set is the weaker; it adopts {remote.name}'s"
        else:
            fix_end, model, entry = remote, lts, re_
            if vote > 0:
                reason = f"{remote.name}'s transform set is the weaker; it adopts {local.name}'s"
        model_entry = le if entry is re_ else re_
        fix = render(
            "TRANSFORM_SET_MISMATCH/route_based"
            if fix_end.is_route_based(entry)
            else "TRANSFORM_SET_MISMATCH",
            fix_end.platform,
            name=model.name,
            transforms=_transform_words(fix_end.platform, model),
            transforms_dash="-".join(
                [term(fix_end.platform, "transform", t) for t in model.transforms]
                + (
                    [term(fix_end.platform, "pfs", _pfs(model_entry))]
                    if model_entry.pfs_group
                    else []
                )
            ),
            mode=model.mode,
            names=entry_names([entry]),
            map_name=entry.name,
            seq=entry.sequence,
        )
    if not fix:
        fix = render("TRANSFORM_SET_MISMATCH/compare", t.fix_platform(fix_end))
    detail["fix_reason"] = reason
    summary = (
        f"{t.local.name}: no transform set is common to {t.local.name} and "
        f"{t.other_name(t.local)} ({t.local.peer_label}), so phase 2 fails"
    )
    if "differing" in detail:
        summary += f" (differing: {', '.join(detail['differing'])})"  # type: ignore[arg-type]
    return [
        t.finding(
            Code.TRANSFORM_SET_MISMATCH,
            t.local,
            summary,
            evidence=evidence,
            fix=fix,
            fix_device=t.fix_target(fix_end),
            detail=detail,
        )
    ]


# ------------------------------------------------------------------ selectors


def _selector_pairs(
    end: End, entry: CryptoMapEntry
) -> list[tuple[IPNetwork | None, IPNetwork | None]]:
    lines = crypto_acl_lines(end, entry)
    if lines:
        return [(a.source_net, a.destination_net) for a in lines]
    return [(s, d) for s in entry.local_selectors for d in entry.remote_selectors]


def _lans(end: End) -> list[IPNetwork]:
    """Networks that certainly belong to ``end``'s own side (connected interfaces)."""
    nets: list[IPNetwork] = []
    if end.state.config is not None:
        nets += [a.network for a in end.state.config.interface_addresses.values()]
    nets += [i.address.network for i in end.state.interfaces.values() if i.address is not None]
    route = end.route("route_local_lan")
    if route is not None and route.found and route.connected and route.prefix is not None:
        nets.append(route.prefix)
    return nets


def _inside(nets: Sequence[IPNetwork], candidates: Sequence[IPNetwork]) -> bool:
    return bool(nets) and all(
        any(n.version == c.version and n.subnet_of(c) for c in candidates)  # type: ignore[arg-type]
        for n in nets
    )


def _mirror_fix_side(
    local: End, le: CryptoMapEntry, remote: End, re_: CryptoMapEntry
) -> tuple[End, str]:
    """Which side's ACL to change so the two become mirrors, and why."""
    votes: list[tuple[End, str]] = []
    local_lans, remote_lans = _lans(local), _lans(remote)
    if set(le.local_selectors) != set(re_.remote_selectors):
        if _inside(le.local_selectors, local_lans) and not _inside(
            re_.remote_selectors, local_lans
        ):
            votes.append(
                (
                    remote,
                    f"{remote.name}'s destination does not name "
                    f"{local.name}'s LAN {', '.join(map(str, le.local_selectors))}",
                )
            )
        elif _inside(re_.remote_selectors, local_lans) and not _inside(
            le.local_selectors, local_lans
        ):
            votes.append((local, f"{local.name}'s source is not its own LAN"))
    if set(le.remote_selectors) != set(re_.local_selectors):
        if _inside(re_.local_selectors, remote_lans) and not _inside(
            le.remote_selectors, remote_lans
        ):
            votes.append(
                (
                    local,
                    f"{local.name}'s destination does not name {remote.name}'s "
                    f"LAN {', '.join(map(str, re_.local_selectors))}",
                )
            )
        elif _inside(le.remote_selectors, remote_lans) and not _inside(
            re_.local_selectors, remote_lans
        ):
            votes.append((remote, f"{remote.name}'s source is not its own LAN"))
    sides = {id(end) for end, _ in votes}
    if len(sides) == 1:
        return votes[0][0], "; ".join(why for _, why in votes)
    return remote, UNDECIDABLE + " (both ACLs name networks the other does not)"


def _mode_fix(
    local: End, le: CryptoMapEntry, remote: End, re_: CryptoMapEntry
) -> tuple[End, End, str, str] | None:
    """(end to change, the other end, the mode to use, why) when two route-based tunnels'
    selectors differ because their tunnel modes do; the GRE side (IOS's default, often left by
    a forgotten ``tunnel mode ipsec ipv4``) adopts the other's, else by convention the remote."""
    lm, rm = local.tunnel_mode(le), remote.tunnel_mode(re_)
    if not (local.is_route_based(le) and remote.is_route_based(re_)) or not lm or lm == rm:
        return None
    if lm.startswith("gre") and not rm.startswith("gre"):
        return local, remote, rm, f"{local.name} runs GRE mode while {remote.name} runs {rm}"
    if rm.startswith("gre") and not lm.startswith("gre"):
        return remote, local, lm, f"{remote.name} runs GRE mode while {local.name} runs {lm}"
    return remote, local, lm, UNDECIDABLE


def _acl_lines(platform: str, pairs: Sequence[tuple[IPNetwork | None, IPNetwork | None]]) -> str:
    if platform == "strongswan":
        return "\n".join(f"  local_ts = {cidr(d)}\n  remote_ts = {cidr(s)}" for s, d in pairs)
    return "\n".join(f" permit ip {ios_wildcard(d)} {ios_wildcard(s)}" for s, d in pairs)


def proxy_id_mismatch(t: Tunnel) -> list[Finding]:
    events = _events(t, Event.PHASE2_PROXY_REJECTED) + _invalidated(t, "32")
    if _phase2_up(t):
        events = []  # old rejections; SAs are up now
    pair = _pair(t)
    mirror_broken = False
    detail: dict[str, object] = {}
    evidence: list[Evidence | None] = _ev(events)
    fix_end: End | None = t.remote if t.remote is not None and t.remote.reachable else None
    reason = UNDECIDABLE
    fix = ""
    if pair is not None:
        local, le, remote, re_ = pair
        if (
            le.local_selectors
            and le.remote_selectors
            and re_.local_selectors
            and re_.remote_selectors
        ):
            mirror_broken = set(le.local_selectors) != set(re_.remote_selectors) or set(
                le.remote_selectors
            ) != set(re_.local_selectors)
        if mirror_broken or events:
            detail.update(
                {
                    "local": {
                        "acl": le.acl,
                        "local": [str(n) for n in le.local_selectors],
                        "remote": [str(n) for n in le.remote_selectors],
                    },
                    "remote": {
                        "acl": re_.acl,
                        "local": [str(n) for n in re_.local_selectors],
                        "remote": [str(n) for n in re_.remote_selectors],
                    },
                }
            )
            evidence += [local.ev(le.source), remote.ev(re_.source)]
            for end, entry in ((local, le), (remote, re_)):
                evidence += [end.ev(a.source) for a in crypto_acl_lines(end, entry) or []]
        routed = _mode_fix(local, le, remote, re_) if mirror_broken else None
        if routed is not None:
            fix_end, other, mode, reason = routed
            modes = f"{local.name} {local.tunnel_mode(le)}, {remote.name} {remote.tunnel_mode(re_)}"
            detail["tunnel_modes"] = {
                local.name: local.tunnel_mode(le),
                remote.name: remote.tunnel_mode(re_),
            }
            fix = render(
                "PROXY_ID_MISMATCH/route_based",
                fix_end.platform,
                interface=first((le if fix_end is local else re_).interfaces),
                mode=mode,
                modes=modes,
                other=other.name,
            )
        elif mirror_broken:
            fix_end, reason = _mirror_fix_side(local, le, remote, re_)
            other, other_entry = (remote, re_) if fix_end is local else (local, le)
            own_entry = le if fix_end is local else re_
            fix = render(
                "PROXY_ID_MISMATCH",
                fix_end.platform,
                names=entry_names([own_entry]),
                map_name=own_entry.name,
                acl=own_entry.acl,
                acl_lines=_acl_lines(fix_end.platform, _selector_pairs(other, other_entry)),
                other=other.name,
            )
    if not mirror_broken and not events:
        return []
    if not fix:
        fix = render("PROXY_ID_MISMATCH/compare", t.fix_platform(fix_end))
    detail["fix_reason"] = reason
    severity = None
    if _phase2_up(t):
        severity = Severity.WARNING
        detail["note"] = "SAs are up (negotiated from one side); the other side's initiation fails"
    found_modes = detail.get("tunnel_modes")
    modes_of = found_modes if isinstance(found_modes, dict) else {}
    what = (
        f"the traffic selectors of {t.local.name} and {t.other_name(t.local)} "
        f"({t.local.peer_label}) differ (tunnel mode "
        + ", ".join(f"{mode} on {name}" for name, mode in modes_of.items())
        + ")"
        if "tunnel_modes" in detail
        else f"the crypto ACLs of {t.local.name} and {t.other_name(t.local)} "
        f"({t.local.peer_label}) are not mirror images"
    )
    return [
        t.finding(
            Code.PROXY_ID_MISMATCH,
            t.local,
            f"{t.local.name}: {what}, so the proxy identities are refused"
            + ("" if fix_end is None else f"; change {fix_end.name}"),
            evidence=evidence,
            fix=fix,
            fix_device=t.fix_target(fix_end),
            detail=detail,
            severity=severity,
        )
    ]


# ------------------------------------------------------------------ addresses and peers


def invalid_local_address(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        events = end.events(Event.INVALID_LOCAL_ADDRESS)
        if not events:
            continue
        address = parse_address(events[-1].detail.get("local") or events[-1].detail.get("address"))
        map_ifaces = end.peer_map_interfaces() or [
            i for e in end.state.crypto_maps or () for i in end.map_interfaces(e)
        ]
        owner = None
        if address is not None:
            for name in end.state.interfaces:
                if end.address_of(name) == address:
                    owner = name
            if owner is None and end.state.config is not None:
                for name, addr in end.state.config.interface_addresses.items():
                    if addr.ip == address:
                        owner = name
        route = end.route("route_peer")
        egress = list(route.interfaces) if route is not None and route.found else []
        other = t.other(end)
        if (
            owner
            and egress
            and any(same_interface(owner, e) for e in egress)
            and not any(same_interface(owner, m) for m in map_ifaces)
        ):
            fix_end: End | None = end
            key = "INVALID_LOCAL_ADDRESS"
            reason = (
                f"{owner} ({address}) is where the peer's packets arrive and where "
                f"traffic to the peer leaves, but the crypto map is on "
                f"{', '.join(map_ifaces) or 'no interface'}"
            )
        elif owner and map_ifaces and not any(same_interface(owner, m) for m in map_ifaces):
            fix_end = other
            key = "INVALID_LOCAL_ADDRESS/peer"
            reason = (
                f"the peer addresses {address} ({owner}) but the crypto map sits on "
                f"{', '.join(map_ifaces)}: the peer's `set peer` should name that address"
            )
        else:
            fix_end = end
            key = "INVALID_LOCAL_ADDRESS"
            reason = "the crypto map is on the wrong interface or a local-address is forced"
        map_address = next((str(a) for a in (end.address_of(m) for m in map_ifaces) if a), None)
        out.append(
            t.finding(
                Code.INVALID_LOCAL_ADDRESS,
                end,
                f"{end.name}: {end.peer_label or 'the peer'} proposes to {address or '?'}, "
                f"which is not {end.name}'s crypto endpoint",
                evidence=end.evs(e.source for e in events),
                fix=render(
                    key,
                    t.fix_platform(fix_end),
                    interface=owner,
                    map_name=(end.entries[0].name if end.entries else None),
                    map_address=map_address,
                    map_interface=first(map_ifaces),
                    seq=(other.entries[0].sequence if other and other.entries else None),
                ),
                fix_device=t.fix_target(fix_end) if fix_end is not None else t.fix_target(None),
                detail={
                    "address": str(address or ""),
                    "interface": owner or "",
                    "crypto_map_interfaces": map_ifaces,
                    "fix_reason": reason,
                },
            )
        )
    return out


def _meant_for(t: Tunnel, end: End) -> list[CryptoMapEntry]:
    """The entries of ``end`` (which name no entry for the proposing peer) meant for it: the
    only connection there is, else those mirroring the other end's selectors; none when
    neither tells (the fix then keeps the generic wording)."""
    entries = list(end.state.crypto_maps or ())
    if len({e.name for e in entries}) == 1:
        return entries
    other = t.other(end)
    return [
        e
        for e in entries
        for o in (other.entries if other is not None else ())
        if e.local_selectors
        and set(e.local_selectors) == set(o.remote_selectors)
        and set(e.remote_selectors) == set(o.local_selectors)
    ]


def peer_not_found(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        events = end.events(Event.PEER_NOT_FOUND)
        config_based = (
            end is not t.local
            and end.peer is not None
            and t.view.remote_peer is not None
            and bool(end.state.crypto_maps)
            and not end.entries
            and all(e.peers for e in end.state.crypto_maps or ())
        )
        if not events and not config_based:
            continue
        address = (parse_address(events[-1].detail.get("address")) if events else None) or end.peer
        maps = end.state.crypto_maps or ()
        out.append(
            t.finding(
                Code.PEER_NOT_FOUND,
                end,
                f"{end.name}: no crypto map entry names the proposing peer {address}",
                evidence=[*end.evs(e.source for e in events), *end.evs(e.source for e in maps)],
                fix=render(
                    "PEER_NOT_FOUND",
                    end.platform,
                    names=entry_names(_meant_for(t, end)),
                    peer=str(address) if address else None,
                    map_name=maps[0].name if maps else None,
                    seq=(max(e.sequence for e in maps) + 10) if maps else None,
                ),
                fix_device=end.name,
                detail={
                    "address": str(address or ""),
                    "configured_peers": sorted({str(p) for e in maps for p in e.peers}),
                },
            )
        )
    return out


# ------------------------------------------------------------------ PFS


def _pfs(entry: CryptoMapEntry) -> int | None:
    return normalize_group(entry.pfs_group) if entry.pfs_group else None


def _pfs_differs(t: Tunnel) -> bool:
    pair = _pair(t)
    return pair is not None and _pfs(pair[1]) != _pfs(pair[3])


def pfs_mismatch(t: Tunnel) -> list[Finding]:
    events = _events(t, Event.PFS_MISMATCH)
    pair = _pair(t)
    if not events and not _pfs_differs(t):
        return []
    detail: dict[str, object] = {}
    fix_end: End | None = t.remote if t.remote is not None and t.remote.reachable else None
    reason = UNDECIDABLE
    fix = ""
    evidence: list[Evidence | None] = _ev(events)
    if pair is not None and _pfs_differs(t):
        local, le, remote, re_ = pair
        lp, rp = _pfs(le), _pfs(re_)
        detail.update({"local": lp, "remote": rp})
        evidence += [local.ev(le.source), remote.ev(re_.source)]
        if lp is None or (rp is not None and GROUP_RANK.get(lp, 0) < GROUP_RANK.get(rp, 0)):
            fix_end, model, entry = local, rp, le
            reason = f"{local.name} asks for less (PFS {lp or 'off'}); it adopts {remote.name}'s"
        elif rp is None or GROUP_RANK.get(rp, 0) < GROUP_RANK.get(lp, 0):
            fix_end, model, entry = remote, lp, re_
            reason = f"{remote.name} asks for less (PFS {rp or 'off'}); it adopts {local.name}'s"
        else:
            fix_end, model, entry = remote, lp, re_
        fix = render(
            "PFS_MISMATCH",
            fix_end.platform,
            names=entry_names([entry]),
            map_name=entry.name,
            seq=entry.sequence,
            group=term(fix_end.platform, "pfs", model),
        )
    if not fix:
        fix = render("PFS_MISMATCH/compare", t.fix_platform(fix_end))
    detail["fix_reason"] = reason
    severity = None
    if _phase2_up(t):
        severity = Severity.WARNING
        detail["note"] = (
            "SAs are up (negotiated from the side that offers PFS); rekeys or "
            "initiation from the other side fail"
        )
    return [
        t.finding(
            Code.PFS_MISMATCH,
            t.local,
            f"{t.local.name}: PFS differs between {t.local.name} "
            f"({_fmt_pfs(detail.get('local'))}) and {t.other_name(t.local)} "
            f"({_fmt_pfs(detail.get('remote'))})",
            evidence=evidence,
            fix=fix,
            fix_device=t.fix_target(fix_end),
            detail=detail,
            severity=severity,
        )
    ]


def _fmt_pfs(value: object) -> str:
    if value is None:
        return "no PFS"
    return f"group {value}"


# ------------------------------------------------------------------ lifetimes


def _lifetime_defaults(t: Tunnel, end: End) -> PlatformLifetimes:
    """The end's platform's own lifetimes (the settings' for a platform not in the table)."""
    return PLATFORM_LIFETIMES.get(end.platform) or PlatformLifetimes(
        ike=t.settings.default_ike_lifetime,
        ipsec=t.settings.default_ipsec_lifetime,
        refuses_longer_ikev1_offers=False,
    )


def _ike_version(end: End, entry: CryptoMapEntry) -> int | None:
    """The IKE version ``entry`` negotiates: its strongSwan connection's, else the converter's
    word for the peer, else that of the established IKE SAs with the peer; None if not told."""
    for conn in end.state.extras.get("connections") or ():
        if isinstance(conn, dict) and conn.get("name") == entry.name:
            return {"IKEv1": 1, "IKEv2": 2}.get(str(conn.get("version", "")))
    version = end.state.extras.get("ike_version")
    if isinstance(version, int):
        return version
    seen = {sa.ike_version for sa in end.ike_all() if sa.status is IkeStatus.ESTABLISHED}
    return seen.pop() if len(seen) == 1 else None


def _ike_policies_for(end: End, entry: CryptoMapEntry) -> list[IkePolicy]:
    """The IKE policies ``entry`` offers: its connection's where policies belong to one."""
    policies = list(end.state.ike_policies or ())
    if any(p.connection for p in policies):
        return [p for p in policies if p.connection == entry.name]
    return policies


@dataclass(frozen=True)
class _LifetimeDifference:
    what: str  # "ipsec" | "ike"
    local: Lifetime
    remote: Lifetime
    fix_end: End
    seconds: int  # the lifetime the fix sets on fix_end
    entry: CryptoMapEntry  # fix_end's entry
    reason: str
    detail: dict[str, object]


def _ipsec_lifetime_difference(
    t: Tunnel, local: End, le: CryptoMapEntry, remote: End, re_: CryptoMapEntry
) -> _LifetimeDifference | None:
    """The IPsec (CHILD) SA lifetimes of the two entries, each in effect on its own platform,
    when they differ. Each end rekeys its SAs on its own timer (IKEv2) or the SA's lifetime
    depends on the initiator (IKEv1): the two ends rekey at different times."""
    la = effective_lifetime(
        le.lifetime_seconds, le.lifetime_source, le.source, _lifetime_defaults(t, local).ipsec
    )
    ra = effective_lifetime(
        re_.lifetime_seconds, re_.lifetime_source, re_.source, _lifetime_defaults(t, remote).ipsec
    )
    if la.seconds == ra.seconds:
        return None
    if la.deviates and not ra.deviates:
        fix_end, seconds, entry = local, ra.seconds, le
        reason = f"{local.name} deviates from its platform's default {la.default}s"
    elif ra.deviates and not la.deviates:
        fix_end, seconds, entry = remote, la.seconds, re_
        reason = f"{remote.name} deviates from its platform's default {ra.default}s"
    else:
        fix_end, seconds, entry = remote, la.seconds, re_
        reason = UNDECIDABLE
    return _LifetimeDifference("ipsec", la, ra, fix_end, seconds, entry, reason, {})


def _ike_lifetime_difference(
    t: Tunnel, local: End, le: CryptoMapEntry, remote: End, re_: CryptoMapEntry
) -> _LifetimeDifference | None:
    """The IKE SA lifetimes of the two ends when the difference matters: only IKEv1 negotiates
    them (a responder accepts an offer up to its own lifetime; IKEv2 does not negotiate them,
    each end rekeys on its own timer), and only an end that refuses longer offers (IOS) makes
    a difference felt: the other end's offers fail, so only one side brings the tunnel up and
    rekeys it. An IOS end with the longer lifetime (IOS 86400 s, strongSwan 4 h) is fine."""
    lv, rv = _ike_version(local, le), _ike_version(remote, re_)
    known = {v for v in (lv, rv) if v is not None}
    if known != {1}:
        return None
    lp, rp = _ike_policies_for(local, le), _ike_policies_for(remote, re_)
    if not lp or not rp:
        return None
    comparison = compare_policies(lp, rp)
    if not comparison.matches:
        return None  # phase 1 cannot agree at all: PHASE1_PROPOSAL_MISMATCH
    a, b = comparison.common[0]
    ld, rd = _lifetime_defaults(t, local), _lifetime_defaults(t, remote)
    la = effective_lifetime(a.lifetime_seconds, a.lifetime_source, a.source, ld.ike)
    ra = effective_lifetime(b.lifetime_seconds, b.lifetime_source, b.source, rd.ike)
    if la.seconds == ra.seconds:
        return None
    ends = ((local, la, ld, le, a, remote, ra, rd), (remote, ra, rd, re_, b, local, la, ld))
    for end, own, defaults, entry, policy, other, theirs, other_defaults in ends:
        offer = other_defaults.ikev1_offer(theirs.seconds)
        if not defaults.refuses_longer_ikev1_offers or offer <= own.seconds:
            continue
        seconds = own.default if own.deviates and own.default >= offer else offer
        margin = f" (its lifetime plus over_time: {offer}s)" if offer != theirs.seconds else ""
        reason = (
            f"{end.name} ({own.seconds}s) refuses {other.name}'s longer IKEv1 offers{margin}, "
            f"so only {end.name} can bring the IKE SA up and rekey it; with {seconds}s it "
            f"accepts them"
        )
        detail: dict[str, object] = {
            "ike_version": 1,
            "refused_by": end.name,
            "priority_local": a.priority,
            "priority_remote": b.priority,
            "priority": policy.priority,
        }
        return _LifetimeDifference("ike", la, ra, end, seconds, entry, reason, detail)
    return None  # the shorter end accepts the longer offers: each side rekeys in time


def _fmt_lifetime(end: End, value: Lifetime) -> str:
    return f"{value.seconds}s" + (f" ({end.platform} default)" if value.assumed else "")


def lifetime_mismatch(t: Tunnel) -> list[Finding]:
    pair = _pair(t)
    if pair is None:
        return []
    local, le, remote, re_ = pair
    diffs = [
        d
        for d in (
            _ipsec_lifetime_difference(t, local, le, remote, re_),
            _ike_lifetime_difference(t, local, le, remote, re_),
        )
        if d is not None
    ]
    if not diffs:
        return []
    evidence: list[Evidence | None] = []
    for d in diffs:
        evidence += [local.ev(d.local.source), remote.ev(d.remote.source)]
    primary = diffs[0]
    fix_end = primary.fix_end
    fixes = [
        render(
            "LIFETIME_MISMATCH" if d.what == "ipsec" else "LIFETIME_MISMATCH/ike",
            fix_end.platform,
            names=entry_names([d.entry]),
            map_name=d.entry.name,
            seq=d.entry.sequence,
            seconds=d.seconds,
            priority=d.detail.get("priority"),
        )
        for d in diffs
        if d.fix_end is fix_end
    ]
    what = {"ipsec": "IPsec SA", "ike": "IKE SA"}
    return [
        t.finding(
            Code.LIFETIME_MISMATCH,
            local,
            f"{local.name}: SA lifetimes differ from {remote.name}'s ("
            + "; ".join(
                f"{what[d.what]} {_fmt_lifetime(local, d.local)} vs "
                f"{_fmt_lifetime(remote, d.remote)}"
                for d in diffs
            )
            + "); it negotiates but rekeys unevenly",
            evidence=evidence,
            fix="\n".join(fixes),
            fix_device=fix_end.name,
            detail={
                "differences": [
                    {
                        "what": d.what,
                        "local": d.local.seconds,
                        "remote": d.remote.seconds,
                        "local_assumed_default": d.local.assumed,
                        "remote_assumed_default": d.remote.assumed,
                        **{k: v for k, v in d.detail.items() if k != "priority"},
                    }
                    for d in diffs
                ],
                "fix_reason": "; ".join(f"{what[d.what]}: {d.reason}" for d in diffs),
            },
        )
    ]


# ------------------------------------------------------------------ ACL overlap


def crypto_acl_overlap(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        identity = end.events(Event.IDENTITY_MISMATCH)
        overlaps: list[tuple[CryptoMapEntry, CryptoMapEntry, str]] = []
        for mine in end.entries:
            my_pairs = _selector_pairs(end, mine)
            for other in end.state.crypto_maps or ():
                if other.name != mine.name or other.sequence == mine.sequence:
                    continue
                if set(other.peers) & set(mine.peers):
                    continue
                for s1, d1 in my_pairs:
                    hit = next(
                        (
                            (s2, d2)
                            for s2, d2 in _selector_pairs(end, other)
                            if networks_overlap(s1, s2) and networks_overlap(d1, d2)
                        ),
                        None,
                    )
                    if hit is not None:
                        overlaps.append(
                            (
                                mine,
                                other,
                                f"{cidr(s1)} -> {cidr(d1)} overlaps "
                                f"{cidr(hit[0])} -> {cidr(hit[1])}",
                            )
                        )
                        break
        if not overlaps and not identity:
            continue
        evidence: list[Evidence | None] = [*end.evs(e.source for e in identity)]
        detail: dict[str, object] = {"identity_mismatch_messages": len(identity)}
        fix = render("CRYPTO_ACL_OVERLAP/compare", end.platform)
        summary = (
            f"{end.name}: traffic for {end.peer_label} may be matched by another crypto "
            "map entry (Identity doesn't match negotiated identity)"
        )
        if overlaps:
            mine, other, what = overlaps[0]
            earlier = other if other.sequence < mine.sequence else mine
            later = mine if earlier is other else other
            evidence += [end.ev(mine.source), end.ev(other.source)]
            for entry in (mine, other):
                evidence += [end.ev(a.source) for a in crypto_acl_lines(end, entry) or []]
            detail.update(
                {
                    "entries": [
                        f"{mine.name} {mine.sequence} ({mine.acl})",
                        f"{other.name} {other.sequence} ({other.acl})",
                    ],
                    "overlap": what,
                }
            )
            pairs = _selector_pairs(end, later)
            summary = (
                f"{end.name}: crypto map {mine.name} entries {mine.sequence} "
                f"({mine.acl}, peer {end.peer_label}) and {other.sequence} ({other.acl}) "
                f"match overlapping traffic ({what}), so the wrong SA may be chosen"
            )
            fix = render(
                "CRYPTO_ACL_OVERLAP",
                end.platform,
                acl=earlier.acl,
                seq=earlier.sequence,
                other_seq=later.sequence,
                deny_lines="\n".join(
                    f" 1 deny ip {ios_wildcard(s)} {ios_wildcard(d)}" for s, d in pairs
                ),
            )
        out.append(
            t.finding(
                Code.CRYPTO_ACL_OVERLAP,
                end,
                summary,
                evidence=evidence,
                fix=fix,
                fix_device=end.name,
                detail=detail,
            )
        )
    return out


RULES = [
    transform_set_mismatch,
    proxy_id_mismatch,
    pfs_mismatch,
    invalid_local_address,
    peer_not_found,
    crypto_acl_overlap,
    lifetime_mismatch,
]
