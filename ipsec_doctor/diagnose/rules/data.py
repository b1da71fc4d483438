"""Stage ``data``: are packets encrypted and decrypted?

Guide: "The numbers in the 'encrypted' and 'decrypted' columns must increment continuously".
Counters are sampled twice; with one sample, "moving" means "above zero". Phase-2 SAs are
one-way each: encaps count outbound, decaps inbound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipsec_doctor.diagnose.compare import ios_wildcard
from ipsec_doctor.diagnose.context import End, Tunnel, first
from ipsec_doctor.diagnose.fixes import render
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code, Finding, Severity
from ipsec_doctor.model.state import Evidence, IpsecSa


@dataclass(frozen=True)
class Flow:
    """One selector pair's SA pair, as first and (maybe) later sampled."""

    first: IpsecSa
    later: IpsecSa | None

    @staticmethod
    def _delta(before: int, after: int) -> int:
        return after - before if after >= before else after  # counters reset with a new SA

    @property
    def sampled_twice(self) -> bool:
        return self.later is not None

    @property
    def encaps_moving(self) -> bool:
        if self.later is None:
            return self.first.encaps > 0
        return self._delta(self.first.encaps, self.later.encaps) > 0

    @property
    def decaps_moving(self) -> bool:
        if self.later is None:
            return self.first.decaps > 0
        return self._delta(self.first.decaps, self.later.decaps) > 0

    def counters(self) -> dict[str, Any]:
        return {
            "flow": f"{self.first.local_selector} <-> {self.first.remote_selector}",
            "encaps": [self.first.encaps] + ([self.later.encaps] if self.later else []),
            "decaps": [self.first.decaps] + ([self.later.decaps] if self.later else []),
        }

    def evidence(self, end: End) -> list[Evidence | None]:
        out = [end.ev(self.first.encaps_source), end.ev(self.first.decaps_source)]
        if self.later is not None:
            out += [end.ev(self.later.encaps_source), end.ev(self.later.decaps_source)]
        if not any(out):
            out.append(end.ev(self.first.source))
        return out


def flows(end: End) -> list[Flow] | None:
    """The flows with SAs in both directions (None when ``show crypto ipsec sa`` is unknown)."""
    first = end.ipsec_sas()
    if first is None:
        return None
    later = end.ipsec_sas(later=True)
    by_key = {(sa.local_selector, sa.remote_selector): sa for sa in later or ()}
    return [
        Flow(sa, by_key.get((sa.local_selector, sa.remote_selector)) if later is not None else None)
        for sa in first
        if sa.has_sas
    ]


def _judged(t: Tunnel) -> tuple[End, list[Flow]] | None:
    """The end whose counters judge the tunnel: ours, else the remote's."""
    for end in t.ends:
        found = flows(end)
        if found:
            return end, found
    return None


def one_way_traffic(t: Tunnel) -> list[Finding]:
    judged = _judged(t)
    if judged is None:
        return []
    end, fl = judged
    out_only = [f for f in fl if f.encaps_moving and not f.decaps_moving]
    in_only = [f for f in fl if f.decaps_moving and not f.encaps_moving]
    if not out_only and not in_only:
        return []
    other = t.other(end)
    other_flows = flows(other) if other is not None else None
    evidence: list[Evidence | None] = []
    for f in out_only + in_only:
        evidence += f.evidence(end)
    detail: dict[str, Any] = {"flows": [f.counters() for f in out_only + in_only]}
    lan = out_only[0].first if out_only else in_only[0].first
    if out_only:
        direction = "encrypts but decrypts nothing back"
        if other is not None and other_flows:
            detail["other_flows"] = [f.counters() for f in other_flows]
            for f in other_flows:
                evidence += f.evidence(other)
            if any(f.decaps_moving for f in other_flows) and not any(
                f.encaps_moving for f in other_flows
            ):
                fix_end: End | None = other
                reason = (
                    f"{other.name} decrypts {end.name}'s packets but encrypts no reply: "
                    "its return traffic does not reach its crypto map (route, NAT)"
                )
                key = "ONE_WAY_TRAFFIC/return"
            else:
                fix_end = other
                reason = (
                    f"{other.name} receives nothing decrypted either: ESP (IP 50) or "
                    "UDP 4500 is dropped between the peers, or NAT without NAT-T; "
                    "by convention the remote end is named"
                )
                key = "ONE_WAY_TRAFFIC/path"
        else:
            fix_end = other
            reason = (
                "the peer sends nothing back (its return route or NAT exemption, or ESP "
                "filtered on the way); by convention the remote end is named"
            )
            key = "ONE_WAY_TRAFFIC/return"
    else:
        direction = "decrypts but encrypts nothing back"
        fix_end = end
        reason = (
            f"{end.name} receives and decrypts, but its own traffic for the remote LAN "
            "never reaches the crypto map (route, NAT)"
        )
        key = "ONE_WAY_TRAFFIC/return"
    detail["fix_reason"] = reason
    target = fix_end
    target_lan = None
    if target is not None and target.entries and target.entries[0].remote_selectors:
        target_lan = target.entries[0].remote_selectors[0]
    elif lan.local_selector is not None and target is not end:
        target_lan = lan.local_selector
    return [
        t.finding(
            Code.ONE_WAY_TRAFFIC,
            end,
            f"{end.name}: the tunnel with {end.peer_label} {direction} "
            f"({'; '.join(_fmt(f) for f in (out_only + in_only)[:3])})",
            evidence=evidence,
            fix=render(
                key,
                t.fix_platform(fix_end),
                remote_lan=ios_wildcard(target_lan) if target_lan is not None else None,
                route_lan=_route_words(target_lan),
                interface=first(target.peer_map_interfaces()) if target else None,
                peer=end.peer_label,
                local_address=None,
            ),
            fix_device=t.fix_target(fix_end),
            detail=detail,
        )
    ]


def _route_words(net: object) -> str | None:
    network = getattr(net, "network_address", None)
    mask = getattr(net, "netmask", None)
    return None if network is None else f"{network} {mask}"


def _fmt(f: Flow) -> str:
    c = f.counters()
    enc = " -> ".join(map(str, c["encaps"]))
    dec = " -> ".join(map(str, c["decaps"]))
    return f"encaps {enc}, decaps {dec}"


def no_traffic_encrypted(t: Tunnel) -> list[Finding]:
    judged = _judged(t)
    if judged is None:
        return []
    end, fl = judged
    if any(f.encaps_moving or f.decaps_moving for f in fl):
        return []
    evidence: list[Evidence | None] = []
    for f in fl:
        evidence += f.evidence(end)
    twice = all(f.sampled_twice for f in fl)
    entry = end.entries[0] if end.entries else None
    return [
        t.finding(
            Code.NO_TRAFFIC_ENCRYPTED,
            end,
            f"{end.name}: SAs with {end.peer_label} are up but no packet uses them "
            f"({'; '.join(_fmt(f) for f in fl[:3])}"
            + (", not moving between samples)" if twice else ")"),
            evidence=evidence,
            fix=render(
                "NO_TRAFFIC_ENCRYPTED",
                end.platform,
                acl=entry.acl if entry else None,
                remote_lan=ios_wildcard(entry.remote_selectors[0])
                if entry and entry.remote_selectors
                else None,
            ),
            fix_device=end.name,
            detail={"flows": [f.counters() for f in fl], "sampled_twice": twice},
        )
    ]


def spi_out_of_sync(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        events = end.events(Event.INVALID_SPI)
        if not events:
            continue
        other = t.other(end)
        out.append(
            t.finding(
                Code.SPI_OUT_OF_SYNC,
                end,
                f"{end.name}: receives packets from {end.peer_label} for SAs it no longer has "
                f"({len(events)} invalid-SPI messages); {t.other_name(end)} still uses old SAs",
                evidence=end.evs(e.source for e in events),
                fix=render(
                    "SPI_OUT_OF_SYNC",
                    t.fix_platform(other),
                    names=t.fix_names(other),
                    peer=other.peer_label if other else None,
                    device=end.name,
                    this_peer=end.peer_label,
                ),
                fix_device=t.fix_target(other) if other else t.other_name(end),
                detail={"messages": len(events), **events[-1].detail},
            )
        )
    return out


def packet_not_ipsec(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        events = end.events(Event.PACKET_NOT_IPSEC)
        if not events:
            continue
        other = t.other(end)
        entry = end.entries[0] if end.entries else None
        out.append(
            t.finding(
                Code.PACKET_NOT_IPSEC,
                end,
                f"{end.name}: clear-text packets arrive that its crypto ACL says must come "
                f"encrypted from {end.peer_label} ({len(events)} messages); NAT on tunnel "
                "traffic, asymmetric routing or an `any any` crypto ACL",
                evidence=end.evs(e.source for e in events),
                fix=render(
                    "PACKET_NOT_IPSEC",
                    t.fix_platform(other),
                    local_lan=ios_wildcard(entry.remote_selectors[0])
                    if entry and entry.remote_selectors
                    else None,
                    remote_lan=ios_wildcard(entry.local_selectors[0])
                    if entry and entry.local_selectors
                    else None,
                ),
                fix_device=t.fix_target(other) if other else t.other_name(end),
                detail={"messages": len(events), **events[-1].detail},
            )
        )
    return out


def send_errors(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        fl = flows(end) or []
        rising = [
            f for f in fl if f.later is not None and f.later.send_errors > f.first.send_errors
        ]
        single = [f for f in fl if f.later is None and f.first.send_errors > 0]
        if not rising and not single:
            continue
        chosen = rising or single
        evidence: list[Evidence | None] = []
        for f in chosen:
            evidence += [
                end.ev(f.first.errors_source),
                end.ev(f.later.errors_source if f.later else None),
            ]
        counts = [
            [f.first.send_errors] + ([f.later.send_errors] if f.later else []) for f in chosen
        ]
        out.append(
            t.finding(
                Code.SEND_ERRORS,
                end,
                f"{end.name}: the SAs with {end.peer_label} report send errors "
                + ", ".join(" -> ".join(map(str, c)) for c in counts)
                + ("" if rising else " (one sample: cannot tell if they still rise)"),
                evidence=evidence,
                fix=render("SEND_ERRORS", end.platform, interface=first(end.peer_map_interfaces())),
                fix_device=end.name,
                detail={"send_errors": counts, "rising": bool(rising)},
                severity=None if rising else Severity.INFO,
            )
        )
    return out


def hw_crypto_engine_fault(t: Tunnel) -> list[Finding]:
    """Hardware accelerator trouble.

    Reads ``DeviceState.extras["crypto_engine"]`` when a converter provides it::

        {"type": "hardware" | "software", "name": str, "slot": str | int (optional),
         "failures": int, "failures_later": int | None, "evidence": [Evidence, ...]}

    and ``hw_engine_error`` log events. Fires for a hardware engine whose failure counter is
    above zero (and still rising when sampled twice), or on engine error messages.
    """
    out: list[Finding] = []
    for end in t.ends:
        engine = end.state.extras.get("crypto_engine")
        events = end.events(Event.HW_ENGINE_ERROR)
        info: dict[str, Any] = engine if isinstance(engine, dict) else {}
        hardware = str(info.get("type", "")).lower() == "hardware"
        failures = info.get("failures")
        later = info.get("failures_later")
        counting = (
            hardware
            and isinstance(failures, int)
            and failures > 0
            and (not isinstance(later, int) or later > failures)
        )
        if not counting and not events:
            continue
        if info and not hardware and not events:
            continue
        raw_evidence = info.get("evidence") or []
        evidence: list[Evidence | None] = [
            end.ev(e) for e in raw_evidence if isinstance(e, Evidence)
        ]
        evidence += end.evs(e.source for e in events)
        name = str(info.get("name") or "the hardware crypto engine")
        out.append(
            t.finding(
                Code.HW_CRYPTO_ENGINE_FAULT,
                end,
                f"{end.name}: {name} is in use and failing"
                + (
                    f" ({failures}"
                    + (f" -> {later}" if isinstance(later, int) else "")
                    + " failures)"
                    if isinstance(failures, int)
                    else ""
                )
                + (f"; {len(events)} engine error messages" if events else ""),
                evidence=evidence,
                fix=render(
                    "HW_CRYPTO_ENGINE_FAULT", end.platform, slot=info.get("slot"), name=name
                ),
                fix_device=end.name,
                detail={
                    "engine": {k: v for k, v in info.items() if k != "evidence"},
                    "messages": len(events),
                },
            )
        )
    return out


RULES = [
    one_way_traffic,
    no_traffic_encrypted,
    spi_out_of_sync,
    packet_not_ipsec,
    send_errors,
    hw_crypto_engine_fault,
]
