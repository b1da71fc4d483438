"""Posture (stage ``audit``): weak algorithms in use. Stands outside the chain, after it."""

from __future__ import annotations

from ipsec_doctor.diagnose.compare import (
    WEAK_GROUPS,
    compare_policies,
    effective_policies,
    normalize_group,
    weak_policy_attributes,
    weak_transforms,
)
from ipsec_doctor.diagnose.context import End, Tunnel
from ipsec_doctor.diagnose.fixes import render
from ipsec_doctor.model.findings import Code, Finding
from ipsec_doctor.model.state import CryptoMapEntry, Evidence, IkePolicy


def _policies_in_use(t: Tunnel, end: End) -> list[IkePolicy]:
    policies = end.state.ike_policies
    if not policies:
        return []
    both = t.both
    if both is not None and both[0].state.ike_policies and both[1].state.ike_policies:
        comparison = compare_policies(both[0].state.ike_policies, both[1].state.ike_policies)
        if comparison.matches:
            index = 0 if end is both[0] else 1
            return [comparison.common[0][index]]
    return effective_policies(policies)


def weak_crypto(t: Tunnel) -> list[Finding]:
    out: list[Finding] = []
    for end in t.ends:
        weak: list[str] = []
        evidence: list[Evidence | None] = []
        weak_connections: set[str] = set()  # where the platform ties policies to connections
        for policy in _policies_in_use(t, end):
            attrs = weak_policy_attributes(policy)
            if attrs:
                weak.append(f"ISAKMP policy {policy.priority}: {', '.join(attrs)}")
                evidence.append(end.ev(policy.source))
                weak_connections.add(policy.connection)
        by_name = {ts.name: ts for ts in end.state.transform_sets or ()}
        weak_entries: list[CryptoMapEntry] = []
        for entry in end.entries:
            for name in entry.transform_sets:
                ts = by_name.get(name)
                if ts is None:
                    continue
                bad = weak_transforms(ts.transforms)
                if bad:
                    weak.append(f"transform set {ts.name}: {', '.join(bad)}")
                    evidence.append(end.ev(ts.source))
                    weak_entries.append(entry)
            group = normalize_group(entry.pfs_group) if entry.pfs_group else None
            if group in WEAK_GROUPS:
                weak.append(f"{end.entry_label(entry)}: PFS group {group}")
                evidence.append(end.ev(entry.source))
                weak_entries.append(entry)
        for sa in end.ipsec_sas() or ():
            bad = weak_transforms(sa.transforms)
            if bad:
                weak.append(f"SA in use: {', '.join(bad)}")
                evidence.append(end.ev(sa.source))
        if not weak:
            continue
        weak = list(dict.fromkeys(weak))
        map_entry = end.entries[0] if end.entries else None
        in_use = next(iter(_policies_in_use(t, end)), None)
        out.append(
            t.finding(
                Code.WEAK_CRYPTO,
                end,
                f"{end.name}: weak cryptography in use with {end.peer_label}: " + "; ".join(weak),
                evidence=evidence,
                fix=render(
                    "WEAK_CRYPTO",
                    end.platform,
                    names=t.fix_names(
                        end,
                        evidence,
                        [e for e in end.entries if e.name in weak_connections or e in weak_entries]
                        or None,
                    ),
                    priority=in_use.priority if in_use else 10,
                    map_name=map_entry.name if map_entry else None,
                    seq=map_entry.sequence if map_entry else None,
                ),
                fix_device=end.name,
                detail={"weak": weak},
            )
        )
    return out


RULES = [weak_crypto]
