"""Stage ``ike``: does phase 1 come up, and does it stay up?

Guide, "Does the router successfully negotiate an IKE tunnel with its peer?": the peer is
routable, the ISAKMP SA reaches QM_IDLE, the policies match, the keys exist and agree, and the
ISAKMP packets are not blocked.

Reasoning about phase 1 failures (FINDINGS.md): a single state or message rarely decides.
``MM_NO_STATE`` follows a rejected proposal as well as silence; ``IKMP_MODE_FAILURE`` follows
proposal and authentication failures. :func:`phase1` weighs the messages near an ambiguous
one, the other end's SAs and logs, and the two configurations; when two causes stay
indistinguishable it reports both codes, the likelier first, and says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ipsec_doctor.diagnose.compare import (
    PolicyComparison,
    compare_policies,
    effective_policies,
    policy_differences,
    policy_values,
    stronger_policy,
)
from ipsec_doctor.diagnose.context import End, Phase1, Tunnel, parse_address
from ipsec_doctor.diagnose.fixes import entry_names, render, term
from ipsec_doctor.diagnose.rules.prereq import policy_fix
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Finding
from ipsec_doctor.model.state import (
    CryptoMapEntry,
    Evidence,
    IkePolicy,
    IkeSa,
    IkeStatus,
    IPAddress,
    LogEvent,
)

#: Phase-1 states (as printed) reached only after the proposal was accepted, while the peers
#: authenticate: stuck here means the keys disagree (IKEv1 main / aggressive mode).
AUTH_STAGE_STATES = frozenset(
    {"MM_KEY_EXCH", "MM_WAIT_MSG5", "MM_WAIT_MSG6", "MM_KEY_AUTH", "AG_INIT_EXCH", "AG_AUTH"}
)

#: ``LogEvent.detail["mode"]`` values of a phase-1 mode failure ("" when not named).
PHASE1_MODES = frozenset({"", "main", "aggressive"})

PHASE1_EVENTS = (
    Event.PHASE1_RETRANSMIT,
    Event.PHASE1_NO_RESPONSE,
    Event.PHASE1_PROPOSAL_REJECTED,
    Event.PHASE1_MODE_FAILURE,
    Event.PSK_MISSING,
    Event.AUTH_FAILED,
    Event.PEER_ADDRESS_MISMATCH,
)


def no_route_to_peer(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        route = end.route("route_peer")
        if route is None or route.found or end.peer is None:
            continue
        if parse_address(route.query) not in (None, end.peer):
            continue  # the lookup was for another address than the one this end uses
        if end.ike_established or end.has_ipsec or end.has_default_route(route):
            continue  # IKE reaches the peer, or the default route (of that table) covers it
        where = f"front-door VRF {route.vrf}" if route.vrf else "the routing table"
        # fix variants: NO_ROUTE_TO_PEER/vrf, /ipv6, /ipv6_vrf
        family = "ipv6" if end.peer.version == 6 else ""
        variant = "_".join(part for part in (family, "vrf" if route.vrf else "") if part)
        out.append(
            t.finding(
                Code.NO_ROUTE_TO_PEER,
                end,
                f"{end.name}: {where} has no route to the peer {end.peer_label}, so IKE packets "
                "cannot be sent",
                evidence=[end.ev(route.source)],
                fix=render(
                    f"NO_ROUTE_TO_PEER/{variant}" if variant else "NO_ROUTE_TO_PEER",
                    end.platform,
                    peer=end.peer_label,
                    vrf=route.vrf or None,
                ),
                fix_device=end.name,
                detail={"query": route.query, "vrf": route.vrf},
            )
        )
    return out


# ------------------------------------------------------------------ phase 1 weighing


@dataclass
class _Seen:
    """Everything phase 1 related, gathered from both ends."""

    rejected: list[tuple[End, LogEvent]] = field(default_factory=list)
    auth: list[tuple[End, LogEvent]] = field(default_factory=list)
    psk_missing: list[tuple[End, LogEvent]] = field(default_factory=list)
    peer_mismatch: list[tuple[End, LogEvent]] = field(default_factory=list)
    mode_failure: list[tuple[End, LogEvent]] = field(default_factory=list)
    retransmit: list[tuple[End, LogEvent]] = field(default_factory=list)
    no_state: list[tuple[End, IkeSa]] = field(default_factory=list)  # MM_NO_STATE / WAIT_MSG2
    auth_state: list[tuple[End, IkeSa]] = field(default_factory=list)  # MM_KEY_EXCH ...
    other_state: list[tuple[End, IkeSa]] = field(default_factory=list)  # other negotiating
    comparison: PolicyComparison | None = None

    def evidence(self, *groups: Sequence[tuple[End, LogEvent]]) -> list[Evidence | None]:
        return [end.ev(event.source) for group in groups for end, event in group]

    @staticmethod
    def sa_evidence(*groups: Sequence[tuple[End, IkeSa]]) -> list[Evidence | None]:
        return [end.ev(sa.source) for group in groups for end, sa in group]


def _gather(t: Tunnel) -> _Seen:
    seen = _Seen()
    for end in t.ends:
        for event in end.recent:
            pair = (end, event)
            match event.event:
                case Event.PHASE1_PROPOSAL_REJECTED:
                    seen.rejected.append(pair)
                case Event.AUTH_FAILED:
                    seen.auth.append(pair)
                case Event.PSK_MISSING:
                    seen.psk_missing.append(pair)
                case Event.PEER_ADDRESS_MISMATCH:
                    seen.peer_mismatch.append(pair)
                case Event.PHASE1_MODE_FAILURE:
                    # Main / Aggressive mode only: Transaction mode is XAUTH / mode config,
                    # Quick mode is phase 2
                    if event.detail.get("mode", "").lower() in PHASE1_MODES:
                        seen.mode_failure.append(pair)
                case Event.PHASE1_RETRANSMIT | Event.PHASE1_NO_RESPONSE:
                    seen.retransmit.append(pair)
        for sa in end.ike_all():
            if sa.status in (IkeStatus.NO_STATE, IkeStatus.WAITING_RESPONSE):
                seen.no_state.append((end, sa))
            elif sa.state.upper() in AUTH_STAGE_STATES:
                seen.auth_state.append((end, sa))
            elif sa.status is IkeStatus.NEGOTIATING:
                seen.other_state.append((end, sa))
    both = t.both
    if both is not None:
        a, b = both[0].state.ike_policies, both[1].state.ike_policies
        if a and b:
            seen.comparison = compare_policies(a, b)
    return seen


def _classify_mode_failures(seen: _Seen) -> tuple[list[LogEvent], list[LogEvent], list[LogEvent]]:
    """Split IKMP_MODE_FAILURE messages into (proposal, auth, undecided) by what surrounds them."""
    proposal: list[LogEvent] = []
    auth: list[LogEvent] = []
    undecided: list[LogEvent] = []
    for end, event in seen.mode_failure:
        if end.neighbours(event, Event.PHASE1_PROPOSAL_REJECTED):
            proposal.append(event)
        elif end.neighbours(event, Event.AUTH_FAILED, Event.PSK_MISSING):
            auth.append(event)
        elif end.neighbours(event, Event.PHASE1_NO_RESPONSE):
            continue  # the exchange gave up unanswered (IKEv2): silence, not a refusal
        elif seen.comparison is not None:
            (auth if seen.comparison.matches else proposal).append(event)
        elif seen.auth_state:
            auth.append(event)
        elif seen.no_state:
            proposal.append(event)
        else:
            undecided.append(event)
    return proposal, auth, undecided


def _ends_of(pairs: Sequence[tuple[End, object]]) -> list[End]:
    found: list[End] = []
    for end, _ in pairs:
        if end not in found:
            found.append(end)
    return found


def _attributes_from_events(pairs: Sequence[tuple[End, LogEvent]]) -> list[str]:
    attrs: list[str] = []
    for _, event in pairs:
        attr = event.detail.get("attribute", "")
        for item in attr.replace(",", " ").split():
            if item and item not in attrs:
                attrs.append(item)
    return attrs


def _proposal_finding(
    t: Tunnel, seen: _Seen, events: list[tuple[End, LogEvent]], ambiguous: str = ""
) -> Finding:
    comparison = seen.comparison
    detail: dict[str, object] = {}
    fix = ""
    fix_end: End | None = None
    reason = ""
    differing: list[str] = []
    if comparison is not None and comparison.closest is not None and not comparison.matches:
        both = t.both
        assert both is not None
        local_p, remote_p = comparison.closest
        differing = list(comparison.differing)
        detail.update(
            {
                "local": policy_values(local_p),
                "remote": policy_values(remote_p),
                "local_device": both[0].name,
                "remote_device": both[1].name,
            }
        )
        vote = stronger_policy(local_p, remote_p)
        if vote > 0:
            fix_end, model, own = both[1], local_p, remote_p
            reason = f"{both[1].name} offers the weaker policy; it adopts {both[0].name}'s"
        elif vote < 0:
            fix_end, model, own = both[0], remote_p, local_p
            reason = f"{both[0].name} offers the weaker policy; it adopts {both[1].name}'s"
        else:
            fix_end, model, own = both[1], local_p, remote_p
            reason = (
                "neither side is clearly stronger; by convention the remote end adopts the "
                "local policy"
            )
        values = policy_fix(fix_end.platform, model, priority=own.priority)
        if both[0].platform != both[1].platform:
            # lifetimes are each platform's own (defaults differ; strongSwan's IKEv1 offers
            # add over_time): the fix end keeps its own, see LIFETIME_MISMATCH
            values["lifetime"] = policy_fix(fix_end.platform, own)["lifetime"]
        fix = render(
            "PHASE1_PROPOSAL_MISMATCH/ikev2" if fix_end.ikev2 else "PHASE1_PROPOSAL_MISMATCH",
            fix_end.platform,
            names=t.fix_names(fix_end, seen.evidence(events), _offering(fix_end, own)),
            **values,
            peer=fix_end.peer_label,
            proposal=_proposal_name(own.source),
            ikev2_encryption=term(fix_end.platform, "ikev2_encryption", model.encryption),
            ikev2_integrity=term(fix_end.platform, "ikev2_integrity", model.hash),
        )
    elif t.both is not None and comparison is not None and comparison.matches:
        detail["config_comparison"] = (
            "a common policy exists; the rejection may be older or "
            "about another attribute (check lifetimes / keys)"
        )
    for attr in _attributes_from_events(events):
        if attr not in differing:
            differing.append(attr)
    detail["differing"] = differing
    if not fix:
        fix_end = t.remote if t.remote is not None and t.remote.reachable else None
        reason = reason or (
            "only one end was read: compare `show crypto isakmp policy` on both; by convention "
            "the remote end is changed"
        )
        fix = render(
            "PHASE1_PROPOSAL_MISMATCH/compare", t.fix_platform(fix_end), peer=t.local.peer_label
        )
    detail["fix_reason"] = reason
    if ambiguous:
        detail["ambiguous"] = ambiguous
    names = ", ".join(differing) if differing else "unknown attributes"
    what = "IKEv2 proposal" if t.local.ikev2 else "ISAKMP policy"
    summary = (
        f"{t.local.name}: no {what} matches between {t.local.name} and "
        f"{t.other_name(t.local)} ({t.local.peer_label}); differing: {names}"
    )
    if ambiguous:
        summary += f" — {ambiguous}"
    evidence = seen.evidence(events) + seen.sa_evidence(seen.no_state)
    if comparison is not None and comparison.closest is not None and t.both is not None:
        evidence += [
            t.both[0].ev(comparison.closest[0].source),
            t.both[1].ev(comparison.closest[1].source),
        ]
    return t.finding(
        Code.PHASE1_PROPOSAL_MISMATCH,
        t.local,
        summary,
        evidence=evidence,
        fix=fix,
        fix_device=t.fix_target(fix_end),
        detail=detail,
    )


def _offering(end: End, policy: IkePolicy) -> list[CryptoMapEntry]:
    """The entries of ``end`` whose connection offers ``policy``'s algorithms (strongSwan ties
    proposals to a connection); all its entries where its policies name no connection."""
    offering = {
        p.connection
        for p in end.state.ike_policies or ()
        if p.connection and not set(policy_differences(p, policy)) - {"lifetime"}
    }
    return [e for e in end.entries if e.name in offering] or list(end.entries)


# Sample evidence line: " IKEv2 proposal: IKEV2-PROP "
_PROPOSAL_LINE = re.compile(r"IKEv2\s+proposal\s*:\s*(?P<name>\S+)")


def _proposal_name(source: Evidence | None) -> str | None:
    """The IKEv2 proposal an IKE policy came from (its evidence line), else None."""
    match = _PROPOSAL_LINE.search(source.line) if source is not None else None
    return match["name"] if match else None


def _psk_mismatch_finding(
    t: Tunnel, seen: _Seen, events: list[tuple[End, LogEvent]], ambiguous: str = ""
) -> Finding:
    fix_end = t.remote if t.remote is not None and t.remote.reachable else None
    states = sorted({sa.state for _, sa in seen.auth_state})
    summary = (
        f"{t.local.name}: the pre-shared keys of {t.local.name} and {t.other_name(t.local)} "
        f"({t.local.peer_label}) differ"
        + (f" (phase 1 stuck in {', '.join(states)})" if states else "")
        + "; which side holds the wrong key cannot be told (keys are never collected)"
    )
    if ambiguous:
        summary += f" — {ambiguous}"
    detail: dict[str, object] = {
        "auth_failures": len(seen.auth),
        "stuck_states": states,
        "fix_reason": "undecidable (secrets are not read); by convention the remote end is "
        "changed: re-enter the same key on both ends",
    }
    if ambiguous:
        detail["ambiguous"] = ambiguous
    fix_target_end = fix_end
    ikev2 = (fix_target_end or t.local).ikev2
    keyring = (fix_target_end or t.local).state.extras.get("ikev2_keyring")
    return t.finding(
        Code.PSK_MISMATCH,
        t.local,
        summary,
        evidence=seen.evidence(events) + seen.sa_evidence(seen.auth_state),
        fix=render(
            "PSK_MISMATCH/ikev2" if ikev2 else "PSK_MISMATCH",
            t.fix_platform(fix_target_end),
            keyring=keyring if isinstance(keyring, str) and keyring else None,
            peer=(fix_target_end.peer_label if fix_target_end else _our_address(t) or None),
            local_peer=t.local.peer_label,
            local_device=t.local.name,
            remote_device=t.other_name(t.local),
        ),
        fix_device=t.fix_target(fix_end),
        detail=detail,
    )


def _our_address(t: Tunnel) -> str:
    """Our address towards the peer: from our IKE SAs, else the one the remote end uses."""
    for sa in t.local.ike_all():
        if sa.local is not None:
            return str(sa.local)
    if t.remote is not None and t.remote.peer is not None:
        return str(t.remote.peer)
    return ""


def _uses_preshare(end: End) -> bool:
    policies = end.state.ike_policies
    if not policies:
        return True
    return any(p.authentication.lower().startswith("pre") for p in effective_policies(policies))


def _psk_missing_config(t: Tunnel) -> list[End]:
    """Ends whose configuration holds no key covering their peer (pre-shared auth in use)."""
    missing: list[End] = []
    for end in t.ends:
        cfg = end.state.config
        if cfg is None or end.peer is None or cfg.psk_wildcard or not _uses_preshare(end):
            continue
        if end.peer in cfg.psk_peers:
            continue
        if not end.entries:
            continue  # not configured for this peer at all: other findings say so
        missing.append(end)
    return missing


def _psk_missing_findings(t: Tunnel, seen: _Seen) -> list[Finding]:
    out: list[Finding] = []
    by_end: dict[int, tuple[End, list[Evidence | None], str]] = {}
    for end, event in seen.psk_missing:
        # the message names the address it has no key for; the end that logs it lacks it
        item = by_end.setdefault(id(end), (end, [], "log"))
        item[1].append(end.ev(event.source))
    for end in _psk_missing_config(t):
        item = by_end.setdefault(id(end), (end, [], "configuration"))
        item[1].extend(end.config_evidence("isakmp key", "pre-shared", "keyring", "secret"))
        item[1].extend(end.ev(e.source) for e in end.entries)
    for end, evidence, how in by_end.values():
        cfg = end.state.config
        out.append(
            t.finding(
                Code.PSK_MISSING,
                end,
                f"{end.name}: no pre-shared key is configured for the peer {end.peer_label} "
                f"(seen in the {how})",
                evidence=evidence,
                fix=render("PSK_MISSING", end.platform, peer=end.peer_label),
                fix_device=end.name,
                detail={
                    "found_in": how,
                    "keys_for": [str(a) for a in cfg.psk_peers] if cfg else [],
                },
            )
        )
    return out


def _nat_suspected(t: Tunnel) -> bool:
    for end in t.ends:
        if end.state.extras.get("nat_in_path") is True:
            return True
        for sa in end.ike_all():
            if (
                sa.local is not None
                and sa.local not in end.state.own_addresses()
                and end.state.own_addresses()
            ):
                return True
    return False


def _reaches(end: End, addresses: Sequence[IPAddress]) -> bool:
    """``end`` shows an IKE SA or a phase-1 message from one of ``addresses``."""
    wanted = set(addresses)
    sas = end.state.ike_sas or ()
    # an SA of our own still waiting for its first answer proves nothing was heard
    if any(sa.peer in wanted and sa.status is not IkeStatus.WAITING_RESPONSE for sa in sas):
        return True
    return any(e.peer in wanted for e in end.state.logs or () if e.event in PHASE1_EVENTS)


def _mirrors(a: CryptoMapEntry, b: CryptoMapEntry) -> bool:
    return (
        bool(a.local_selectors and a.remote_selectors)
        and set(a.local_selectors) == set(b.remote_selectors)
        and set(a.remote_selectors) == set(b.local_selectors)
    )


def misaddressed_entry(t: Tunnel) -> tuple[CryptoMapEntry, list[LogEvent]] | None:
    """The local crypto map entry meant for the peer but naming another address.

    Recognised by the local log complaining about that address (no keys for it), by the entry
    being the mirror of the remote end's entry for us, or (a single static peer, named by one
    or several entries) by a key that exists for the checked peer but not for the address the
    entries name.
    """
    local = t.local
    maps = local.state.crypto_maps
    if local.entries or not maps or local.peer is None:
        return None
    static = [e for e in maps if e.peers]
    events = [e for e in local.recent_all if e.event == Event.PEER_ADDRESS_MISMATCH]
    remote = t.remote if t.remote is not None and t.remote.reachable else None
    cfg = local.state.config
    for entry in static:
        named = [e for e in events if e.peer in entry.peers]
        mirror = remote is not None and any(_mirrors(entry, r) for r in remote.entries)
        keyed = (
            cfg is not None
            and len({e.peers for e in static}) == 1  # one static peer (entries may be many)
            and local.peer in cfg.psk_peers
            and not any(p in cfg.psk_peers for p in entry.peers)
        )
        if named or mirror or keyed:
            return entry, named
    return None


def _misaddressed_finding(t: Tunnel) -> list[Finding]:
    found = misaddressed_entry(t)
    if found is None:
        return []
    entry, events = found
    local = t.local
    wrong = ", ".join(str(p) for p in entry.peers)
    return [
        t.finding(
            Code.PEER_ADDRESS_MISMATCH,
            local,
            f"{local.name}: {local.entry_label(entry)} names the peer {wrong}, "
            f"not {local.peer_label}" + (f"; IKE finds no key for {wrong}" if events else ""),
            evidence=[
                local.ev(entry.source),
                # every entry naming the same wrong peer (strongSwan: one per child/connection)
                *local.evs(
                    e.source for e in local.state.crypto_maps or () if e.peers == entry.peers
                ),
                *local.evs(e.source for e in events),
                *local.config_evidence(local.peer_label),
            ],
            fix=render(
                "PEER_ADDRESS_MISMATCH",
                local.platform,
                # every entry naming the same wrong peer (strongSwan: each connection)
                names=entry_names(
                    e for e in local.state.crypto_maps or () if e.peers == entry.peers
                ),
                map_name=entry.name,
                seq=entry.sequence,
                wrong=str(entry.peers[0]),
                right=local.peer_label,
            ),
            fix_device=local.name,
            detail={
                "configured": wrong,
                "expected": local.peer_label,
                "found_in": "log" if events else "configuration",
            },
        )
    ]


def _peer_address_findings(t: Tunnel, seen: _Seen) -> list[Finding]:
    out: list[Finding] = _misaddressed_finding(t)
    if out:
        return out
    for end, event in seen.peer_mismatch:
        named = event.detail.get("address") or (str(event.peer) if event.peer else "")
        out.append(
            t.finding(
                Code.PEER_ADDRESS_MISMATCH,
                end,
                f"{end.name}: has no key or certificate for the address {named or '?'} that IKE "
                f"talks to; the configured peer address is wrong or has changed",
                evidence=[end.ev(event.source), *end.evs(e.source for e in end.entries)],
                fix=render(
                    "PEER_ADDRESS_MISMATCH/log",
                    end.platform,
                    peer=end.peer_label,
                    address=named or None,
                ),
                fix_device=end.name,
                detail={"address": named, "found_in": "log"},
            )
        )
    if out or t.both is None or _nat_suspected(t):
        return out
    local, remote = t.both
    for end, other in ((local, remote), (remote, local)):
        own = other.state.own_addresses()
        if end.peer is None or not own or end.peer in own or not end.entries:
            continue
        if _reaches(other, end.state.own_addresses()):
            continue  # our packets do arrive (address translated on the way)
        entry = end.entries[0]
        right = _right_address(end, other)
        out.append(
            t.finding(
                Code.PEER_ADDRESS_MISMATCH,
                end,
                f"{end.name}: {end.entry_label(entry)} names the peer "
                f"{end.peer_label}, which is not an address of {other.name} "
                f"({', '.join(map(str, own))}); {other.name} never hears from {end.name}",
                evidence=[end.ev(entry.source)],
                fix=render(
                    "PEER_ADDRESS_MISMATCH",
                    end.platform,
                    map_name=entry.name,
                    seq=entry.sequence,
                    wrong=end.peer_label,
                    right=right,
                ),
                fix_device=end.name,
                detail={
                    "configured": end.peer_label,
                    "other_addresses": [str(a) for a in own],
                    "suggested": right or "",
                    "found_in": "configuration",
                },
            )
        )
    return out


def _right_address(end: End, other: End) -> str | None:
    """The other end's address its own crypto map sits on (the address IKE should use)."""
    for entry in other.state.crypto_maps or ():
        for name in other.map_interfaces(entry):
            address = other.address_of(name)
            if address is not None:
                return str(address)
    return None


def _silent_port(seen: _Seen) -> tuple[str, list[str]] | None:
    """(port, answered ports) when every unanswered IKE request went to one UDP port while the
    peer did answer the same negotiation on another (IKE_SA_INIT on 500 answered, IKE_AUTH on
    4500 not): that port does not get through. Read from ``LogEvent.detail["port"]`` and
    ``detail["answered_ports"]`` (comma separated), which converters set where the log tells."""
    ports = {event.detail.get("port", "") for _, event in seen.retransmit}
    answered = {
        p
        for _, event in seen.retransmit
        for p in event.detail.get("answered_ports", "").split(",")
        if p
    }
    if len(ports) != 1 or "" in ports or not answered:
        return None
    port = ports.pop()
    return None if port in answered else (port, sorted(answered, key=int))


def _blocked_ports(end: End) -> dict[int, tuple[Evidence, ...]]:
    """UDP 500/4500 rules of the device's own packet filter that drop inbound IKE
    (``extras["ike_blocked_ports"]``: port -> the rule lines; set by converters that read it)."""
    value = end.state.extras.get("ike_blocked_ports")
    if not isinstance(value, dict):
        return {}
    return {int(k): tuple(v) for k, v in value.items() if v}


def _no_response_finding(t: Tunnel, seen: _Seen, ambiguous: str = "") -> Finding:
    local = t.local
    remote = t.remote if t.remote is not None and t.remote.reachable else None
    states = sorted({sa.state for _, sa in seen.no_state})
    silent = _silent_port(seen)
    filters = [(end, _blocked_ports(end)) for end in t.ends]
    filters = [(end, ports) for end, ports in filters if ports]
    remote_trace = False
    remote_note = "the remote end was not read"
    fix_end: End | None = remote
    fix_key = "PHASE1_NO_RESPONSE"
    if remote is not None:
        remote_trace = _reaches(
            remote, local.state.own_addresses() or ([remote.peer] if remote.peer else [])
        )
        if not remote.entries and remote.state.crypto_maps is not None:
            remote_note = f"{remote.name} has no crypto map entry for {local.name}"
            fix_key = "PHASE1_NO_RESPONSE/not_configured"
        elif remote_trace and silent is not None:
            remote_note = (
                f"{remote.name} sees the negotiation start on UDP {', '.join(silent[1])} and "
                f"nothing from {local.name} on UDP {silent[0]}"
            )
        elif remote_trace:
            remote_note = (
                f"{remote.name} does see IKE from {local.name}: its answers do not come back "
                "(return path, or UDP 500/4500 filtered towards us)"
            )
        else:
            remote_note = f"{remote.name} shows no SA and no message from {local.name}"
    port_note = ""
    if silent is not None:
        port, answered = silent
        port_note = (
            f" on UDP {port}: the peer answers on UDP {', '.join(answered)} but not on UDP "
            f"{port}" + (" (IKE_SA_INIT answered, IKE_AUTH / NAT-T not)" if port == "4500" else "")
        )
    filter_evidence: list[Evidence | None] = []
    for end, ports in filters:
        remote_note += (
            f"; {end.name}'s own packet filter drops inbound UDP "
            f"{', '.join(str(p) for p in sorted(ports))}"
        )
        filter_evidence += [end.ev(e) for lines in ports.values() for e in lines]
        if end is not local:
            fix_end = end
    summary = (
        f"{local.name}: phase 1 with {local.peer_label} gets no answer{port_note}"
        + (f" ({', '.join(states)})" if states else "")
        + f"; {remote_note}"
    )
    if ambiguous:
        summary += f" — {ambiguous}"
    detail: dict[str, object] = {
        "states": states,
        "retransmissions": len(seen.retransmit),
        "remote_sees_us": remote_trace,
        "fix_reason": "the peer must answer: check it is up, configured for us, and that "
        "UDP 500/4500 pass; by convention the fix is for the remote end",
    }
    if silent is not None:
        detail["silent_port"] = int(silent[0])
        detail["answered_ports"] = [int(p) for p in silent[1]]
    if filters:
        detail["blocked_ports"] = {end.name: sorted(ports) for end, ports in filters}
    if ambiguous:
        detail["ambiguous"] = ambiguous
    return t.finding(
        Code.PHASE1_NO_RESPONSE,
        local,
        summary,
        evidence=seen.sa_evidence(seen.no_state) + seen.evidence(seen.retransmit) + filter_evidence,
        fix=render(
            fix_key,
            t.fix_platform(fix_end),
            peer=local.peer_label,
            local_address=_our_address(t) or None,
        ),
        fix_device=t.fix_target(fix_end),
        detail=detail,
    )


def phase1(t: Tunnel) -> list[Finding]:
    """Why phase 1 is not up (silent when it is)."""
    if t.phase1 is Phase1.UP:
        return []
    seen = _gather(t)
    if not seen.no_state and any(end.events(Event.DPD_TEARDOWN) for end in t.ends):
        # retransmissions of DPD requests on an SA that DPD then tore down: no phase-1
        # negotiation is going unanswered
        seen.retransmit = []
    if _remote_access_events(t):
        # XAUTH / group / pool failures end phase 1 with a mode failure and an SA stuck in
        # aggressive mode: they are the cause, not keys or proposals
        seen.mode_failure, seen.auth_state, seen.no_state = [], [], []
    out: list[Finding] = []
    out += _peer_address_findings(t, seen)
    out += _psk_missing_findings(t, seen)

    mode_proposal, mode_auth, undecided = _classify_mode_failures(seen)
    mode_pairs = {id(e): (end, e) for end, e in seen.mode_failure}
    proposal_events = seen.rejected + [mode_pairs[id(e)] for e in mode_proposal]
    auth_events = seen.auth + [mode_pairs[id(e)] for e in mode_auth]
    config_mismatch = seen.comparison is not None and not seen.comparison.matches
    if seen.psk_missing and not config_mismatch:
        # "Preshared authentication offered but does not match policy" is followed by
        # "atts are not acceptable" and a mode failure: consequences of the missing key.
        proposal_events, undecided = [], []
        auth_events = list(seen.auth)
    proposal = bool(proposal_events) or config_mismatch
    auth = bool(auth_events) or (bool(seen.auth_state) and not seen.psk_missing)
    if proposal:
        out.append(_proposal_finding(t, seen, proposal_events))
    if auth and not (proposal and not auth_events):
        out.append(_psk_mismatch_finding(t, seen, auth_events))
    if not proposal and not auth and undecided:
        # IKMP_MODE_FAILURE and nothing around it: proposal and keys fail alike.
        pairs = [mode_pairs[id(e)] for e in undecided]
        note = (
            "cannot tell apart from the data collected: the same message follows a "
            "proposal and a key mismatch (PHASE1_PROPOSAL_MISMATCH likelier, then "
            "PSK_MISMATCH)"
        )
        out.append(_proposal_finding(t, seen, pairs, ambiguous=note))
        out.append(_psk_mismatch_finding(t, seen, pairs, ambiguous=note))
    explained = bool(out)
    route = t.local.route("route_peer")
    # NO_ROUTE_TO_PEER's case (a default route of the same table would reach the peer)
    no_route = route is not None and not route.found and not t.local.has_default_route(route)
    if not explained and not no_route and (seen.no_state or seen.retransmit):
        remote_read = t.both is not None
        silent_logs = not seen.retransmit
        if (
            not remote_read
            and silent_logs
            and any(sa.status is IkeStatus.NO_STATE for _, sa in seen.no_state)
        ):
            note = (
                "cannot tell apart with one end read: MM_NO_STATE follows a rejected "
                "proposal as well as silence (PHASE1_NO_RESPONSE likelier, then "
                "PHASE1_PROPOSAL_MISMATCH)"
            )
            out.append(_no_response_finding(t, seen, ambiguous=note))
            out.append(_proposal_finding(t, seen, [], ambiguous=note))
        else:
            out.append(_no_response_finding(t, seen))
    return out


# ------------------------------------------------------------------ NAT-T


def nat_t_not_enabled(t: Tunnel) -> list[Finding]:
    nat = _nat_suspected(t)
    reasons: list[str] = []
    if not nat and t.both is not None:
        local, remote = t.both
        for end, other in ((local, remote), (remote, local)):
            own = other.state.own_addresses()
            if (
                end.peer is not None
                and own
                and end.peer not in own
                and _reaches(other, end.state.own_addresses())
            ):
                nat = True
                reasons.append(
                    f"{end.peer_label} is not an address of {other.name} but "
                    f"{other.name} hears {end.name}: an address translator sits "
                    "between them"
                )
    if not nat:
        return []
    off = [e for e in t.ends if e.state.config and e.state.config.nat_traversal_enabled is False]
    not_detected = [(e, ev) for e in t.ends for ev in e.events(Event.NAT_T_NOT_DETECTED)]
    if not off and not not_detected:
        return []
    fix_end = off[0] if off else (t.remote if t.remote and t.remote.reachable else None)
    evidence: list[Evidence | None] = [e.ev(ev.source) for e, ev in not_detected]
    for end in off:
        evidence += end.config_evidence("nat")
    target = fix_end or t.local
    return [
        t.finding(
            Code.NAT_T_NOT_ENABLED,
            target if fix_end is not None else t.local,
            f"{target.name}: a NAT device sits between {t.local.name} and "
            f"{t.other_name(t.local)} but NAT traversal is "
            + (f"disabled on {', '.join(e.name for e in off)}" if off else "not detected"),
            evidence=evidence,
            fix=render(
                "NAT_T_NOT_ENABLED",
                t.fix_platform(fix_end),
                names=t.fix_names(fix_end, evidence),
            ),
            fix_device=t.fix_target(fix_end),
            detail={
                "nat_reasons": reasons or ["converter reported nat_in_path"],
                "disabled_on": [e.name for e in off],
            },
        )
    ]


# ------------------------------------------------------------------ DPD and flapping


def _ike_lifetime(end: End) -> int:
    lifetimes = [p.lifetime_seconds for p in end.state.ike_policies or () if p.lifetime_seconds]
    return max(lifetimes) if lifetimes else end.settings.default_ike_lifetime


def _ipsec_lifetime(end: End) -> int:
    lifetimes = [e.lifetime_seconds for e in end.entries if e.lifetime_seconds]
    return max(lifetimes) if lifetimes else end.settings.default_ipsec_lifetime


@dataclass
class _Flap:
    changes: list[str] = field(default_factory=list)
    evidence: list[Evidence | None] = field(default_factory=list)


def _ike_replaced(end: End) -> _Flap:
    flap = _Flap()
    first, later = end.ike_sas(), end.ike_sas(later=True)
    if first is None or later is None:
        return flap
    est1 = [sa for sa in first if sa.status is IkeStatus.ESTABLISHED]
    est2 = [sa for sa in later if sa.status is IkeStatus.ESTABLISHED]
    if est1 and not est2:
        flap.changes.append("the ISAKMP SA went down between the two samples")
        flap.evidence += [end.ev(sa.source) for sa in [*est1, *later]]
        return flap
    if not est1 or not est2:
        return flap
    replaced = ""
    ids1 = {sa.conn_id for sa in est1 if sa.conn_id is not None}
    ids2 = {sa.conn_id for sa in est2 if sa.conn_id is not None}
    spis1 = {s for sa in est1 for s in sa.spis}
    spis2 = {s for sa in est2 for s in sa.spis}
    ages1 = [sa.established_seconds for sa in est1 if sa.established_seconds is not None]
    ages2 = [sa.established_seconds for sa in est2 if sa.established_seconds is not None]
    if ids1 and ids2 and not ids1 & ids2:
        replaced = f"ISAKMP conn-id changed ({sorted(ids1)} -> {sorted(ids2)})"
    elif spis1 and spis2 and not spis1 & spis2:
        replaced = "ISAKMP SPIs changed"
    elif ages1 and ages2 and max(ages2) < max(ages1):
        replaced = f"ISAKMP SA age reset ({max(ages1)}s -> {max(ages2)}s)"
    if not replaced:
        return flap
    lifetime = _ike_lifetime(end)
    if ages1 and max(ages1) >= end.settings.rekey_fraction * lifetime:
        return flap  # replaced near the end of its lifetime: a normal rekey
    flap.changes.append(replaced)
    flap.evidence += [end.ev(sa.source) for sa in [*est1, *est2]]
    return flap


def _ipsec_replaced(end: End) -> _Flap:
    flap = _Flap()
    first, later = end.ipsec_sas(), end.ipsec_sas(later=True)
    if not first or not later:
        return flap
    lifetime = _ipsec_lifetime(end)
    margin = max(
        end.settings.rekey_margin_seconds, int((1 - end.settings.rekey_fraction) * lifetime)
    )
    by_flow = {(sa.local_selector, sa.remote_selector): sa for sa in later}
    for sa in first:
        again = by_flow.get((sa.local_selector, sa.remote_selector))
        if again is None or not sa.inbound_spis or not again.inbound_spis:
            continue
        if set(sa.inbound_spis) & set(again.inbound_spis):
            continue
        if sa.remaining_seconds is not None and sa.remaining_seconds <= margin:
            continue  # rekeyed at the end of its lifetime
        flap.changes.append(
            f"IPsec SPIs changed for {sa.local_selector} <-> {sa.remote_selector} "
            + (
                f"with {sa.remaining_seconds}s of {lifetime}s left"
                if sa.remaining_seconds is not None
                else "well before expiry"
            )
        )
        flap.evidence += [end.ev(sa.source), end.ev(again.source)]
    return flap


def sa_flapping(t: Tunnel) -> list[Finding]:
    """One finding for the tunnel: the first end that flaps, the other end's view in detail."""
    seen: list[tuple[End, list[str], list[Evidence | None]]] = []
    for end in t.ends:
        ike, ipsec = _ike_replaced(end), _ipsec_replaced(end)
        changes = ike.changes + ipsec.changes
        evidence = ike.evidence + ipsec.evidence
        replaced_events = end.events(Event.SA_REPLACED)
        if len(replaced_events) >= end.settings.flap_events:
            changes.append(f"{len(replaced_events)} SA replacements logged in the check window")
            evidence += [end.ev(e.source) for e in replaced_events]
        if changes:
            seen.append((end, changes, evidence))
    if not seen:
        return []
    end, changes, evidence = seen[0]
    also = [other for other, _, _ in seen[1:]]
    return [
        t.finding(
            Code.SA_FLAPPING,
            end,
            f"{end.name}: the SAs with {end.peer_label} keep being rebuilt: "
            + "; ".join(changes)
            + (f" ({', '.join(o.name for o in also)} sees the same)" if also else ""),
            evidence=[*evidence, *(e for _, _, ev in seen[1:] for e in ev)],
            fix=render("SA_FLAPPING", end.platform, peer=end.peer_label),
            fix_device=end.name,
            detail={
                "changes": {e.name: c for e, c, _ in seen},
                "ike_lifetime": _ike_lifetime(end),
                "ipsec_lifetime": _ipsec_lifetime(end),
            },
        )
    ]


def dpd_too_aggressive(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        teardowns = end.events(Event.DPD_TEARDOWN)
        cfg = end.state.config
        interval = cfg.dpd_seconds if cfg else None
        aggressive = interval is not None and interval <= end.settings.dpd_aggressive_seconds
        flapping = bool(_ike_replaced(end).changes)
        repeated = len(teardowns) >= end.settings.dpd_repeat
        if not (repeated or (aggressive and (teardowns or flapping))):
            continue
        retry = cfg.dpd_retry_seconds if cfg else None
        timers = (
            f"DPD every {interval}s" + (f", retry {retry}s" if retry else "") if interval else ""
        )
        out.append(
            t.finding(
                Code.DPD_TOO_AGGRESSIVE,
                end,
                f"{end.name}: DPD tears the SA with {end.peer_label} down"
                + (f" {len(teardowns)} times in the check window" if teardowns else "")
                + (f" ({timers})" if timers else ""),
                evidence=[
                    *end.evs(e.source for e in teardowns),
                    *end.config_evidence("keepalive", "dpd"),
                ],
                fix=render(
                    "DPD_TOO_AGGRESSIVE",
                    end.platform,
                    names=t.fix_names(end, end.evs(e.source for e in teardowns)),
                    peer=end.peer_label,
                ),
                fix_device=end.name,
                detail={
                    "teardowns": len(teardowns),
                    "dpd_seconds": interval,
                    "dpd_retry_seconds": retry,
                    "flapping": flapping,
                },
            )
        )
    return out


# ------------------------------------------------------------------ remote access

_REMOTE_ACCESS = (
    (Event.XAUTH_FAILED, Code.XAUTH_FAILED, "remote-access user authentication (XAUTH) failed"),
    (Event.VPN_GROUP_NOT_FOUND, Code.VPN_GROUP_NOT_FOUND, "the client's VPN group is not defined"),
    (
        Event.ADDRESS_POOL_FAILURE,
        Code.ADDRESS_POOL_FAILURE,
        "the client could not be given an address from the pool",
    ),
)


def _remote_access_events(t: Tunnel) -> list[tuple[End, Code, list[LogEvent]]]:
    found: list[tuple[End, Code, list[LogEvent]]] = []
    for end in t.ends:
        # unnamed messages (AAA lines carry no address) count while phase 1 with this
        # peer is not up, or where no static crypto map entry names it (a dynamic,
        # remote-access peer)
        unnamed_ok = t.phase1 is not Phase1.UP or not end.entries
        for event_name, code, _ in _REMOTE_ACCESS:
            events = [
                e
                for e in end.events(event_name)
                if e.peer == end.peer or (e.peer is None and unnamed_ok)
            ]
            if events:
                found.append((end, code, events))
    return found


def remote_access(t: Tunnel) -> list[Finding]:
    """XAUTH / group / pool failures for this peer (unnamed ones only while phase 1 is down)."""
    out: list[Finding] = []
    what_of = {code: what for _, code, what in _REMOTE_ACCESS}
    for end, code, events in _remote_access_events(t):
        detail = dict(events[-1].detail)
        out.append(
            t.finding(
                code,
                end,
                f"{end.name}: {what_of[code]} for {end.peer_label or 'a client'}"
                + (f" ({', '.join(f'{k} {v}' for k, v in detail.items())})" if detail else ""),
                evidence=end.evs(e.source for e in events),
                fix=render(
                    code.value,
                    end.platform,
                    peer=end.peer_label,
                    user=detail.get("user"),
                    group=detail.get("group"),
                    pool=detail.get("pool"),
                ),
                fix_device=end.name,
                detail={"messages": len(events), **detail},
            )
        )
    return out


RULES = [
    no_route_to_peer,
    phase1,
    nat_t_not_enabled,
    remote_access,
    dpd_too_aggressive,
    sa_flapping,
]
