"""SA_FLAPPING across audit runs, and the per-tunnel facts each run keeps for the next one.

Contract:
- :func:`sa_facts` extracts from a tunnel's parsed state what identifies its SAs now: the
  established IKE SAs' conn-ids and SPIs, the IPsec SPIs (inbound and outbound), the
  lifetimes in force (IKE: the lowest lifetime of the ISAKMP policies; IPsec: the crypto map
  entry's, else the defaults of :class:`~ipsec_doctor.diagnose.Settings`) and the observation
  time. Facts are plain JSON values (stored with the tunnel's row).
- :func:`cross_run_flap` compares them with the previous run's facts and the tunnel's recent
  status history. A flap is (a) an SA replaced well before its lifetime: none of the previous
  run's established IKE SAs (conn-id or SPIs) or none of its IPsec SPIs is still there, and
  less than ``rekey_fraction`` x lifetime has passed since then -- an SA that lived out its
  lifetime and was rekeyed is normal and never a flap; or (b) repeatedly: the tunnel went
  between up (healthy, degraded) and down at least ``transitions`` times over the last
  ``window`` observed runs. Unobserved runs (device unreachable) and ``unknown`` runs do not
  count either way.
- The result is one SA_FLAPPING finding (warning, stage ike, ``detail.across_runs`` true)
  with the evidence lines of the SAs that replaced the old ones, or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from typing import Any

from ipsec_doctor.audit.model import TunnelStatus
from ipsec_doctor.diagnose import Settings
from ipsec_doctor.diagnose.fixes import render
from ipsec_doctor.model.findings import Code, Finding, make_finding
from ipsec_doctor.model.state import DeviceState, Evidence, IkeStatus

#: One letter per observed run, oldest first, in ``facts["history"]``.
STATUS_LETTER: dict[TunnelStatus, str] = {
    TunnelStatus.HEALTHY: "H",
    TunnelStatus.DEGRADED: "G",
    TunnelStatus.DOWN: "D",
    TunnelStatus.UNKNOWN: "U",
}
_UP, _DOWN = frozenset("HG"), frozenset("D")


@dataclass(frozen=True)
class FlapSettings:
    rekey_fraction: float = Settings.rekey_fraction
    window: int = 10
    transitions: int = 3
    default_ike_lifetime: int = Settings.default_ike_lifetime
    default_ipsec_lifetime: int = Settings.default_ipsec_lifetime
    history_length: int = 20


def sa_facts(
    state: DeviceState, peer: str, observed_at: datetime, settings: FlapSettings | None = None
) -> dict[str, Any]:
    """The SA identity facts of ``state``'s tunnel with ``peer`` (see the module contract)."""
    settings = settings or FlapSettings()
    facts: dict[str, Any] = {"observed_at": observed_at.isoformat()}
    try:
        address = ip_address(peer)
    except ValueError:
        return facts
    ike = state.ike_sas_for(address, later=True)
    if ike is None:
        ike = state.ike_sas_for(address)
    if ike is not None:
        up = [sa for sa in ike if sa.status is IkeStatus.ESTABLISHED]
        facts["ike"] = sorted(
            {f"conn:{sa.conn_id}" for sa in up if sa.conn_id is not None}
            | {f"spi:{s}" for sa in up for s in sa.spis}
        )
    ipsec = state.ipsec_sas_for(address, later=True)
    if ipsec is None:
        ipsec = state.ipsec_sas_for(address)
    if ipsec is not None:
        facts["ipsec"] = sorted({s for sa in ipsec for s in (*sa.inbound_spis, *sa.outbound_spis)})
    lifetimes = [p.lifetime_seconds for p in state.ike_policies or () if p.lifetime_seconds]
    facts["ike_lifetime"] = min(lifetimes) if lifetimes else settings.default_ike_lifetime
    entries = state.map_entries_for(address)
    ipsec_lifetimes = [e.lifetime_seconds for e in entries if e.lifetime_seconds]
    facts["ipsec_lifetime"] = (
        min(ipsec_lifetimes) if ipsec_lifetimes else settings.default_ipsec_lifetime
    )
    return facts


def extend_history(previous: str, status: TunnelStatus, length: int = 20) -> str:
    """``previous`` plus this run's letter (unobserved runs add nothing), last ``length``."""
    letter = STATUS_LETTER.get(status, "")
    return (previous + letter)[-length:]


def transitions(history: str) -> int:
    """Changes between up (H/G) and down (D) in ``history``, ignoring U."""
    count = 0
    last = ""
    for letter in history:
        side = "up" if letter in _UP else "down" if letter in _DOWN else ""
        if not side:
            continue
        if last and side != last:
            count += 1
        last = side
    return count


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _replaced(previous: Sequence[str], now: Sequence[str]) -> bool:
    return bool(previous) and bool(now) and not set(previous) & set(now)


def cross_run_flap(
    *,
    device: str,
    peer: str,
    platform: str,
    previous: Mapping[str, Any] | None,
    now: Mapping[str, Any],
    history: str,
    state: DeviceState | None = None,
    settings: FlapSettings | None = None,
) -> Finding | None:
    """SA_FLAPPING when the tunnel flapped across runs (see the module contract)."""
    settings = settings or FlapSettings()
    reasons: list[str] = []
    detail: dict[str, Any] = {"across_runs": True}
    if previous is not None and previous.get("observed_at") and now.get("observed_at"):
        then = datetime.fromisoformat(str(previous["observed_at"]))
        moment = datetime.fromisoformat(str(now["observed_at"]))
        elapsed = (moment - then).total_seconds()
        detail["elapsed_seconds"] = round(elapsed)
        for kind, label, lifetime_key in (
            ("ike", "IKE SA", "ike_lifetime"),
            ("ipsec", "IPsec SA", "ipsec_lifetime"),
        ):
            lifetime = int(now.get(lifetime_key) or 0)
            if (
                lifetime
                and 0 <= elapsed < settings.rekey_fraction * lifetime
                and _replaced(previous.get(kind) or (), now.get(kind) or ())
            ):
                reasons.append(
                    f"the {label}s of the previous run ({', '.join(previous.get(kind) or ())}) "
                    f"were replaced within {_hours(elapsed)}, well before their lifetime of "
                    f"{_hours(lifetime)}"
                )
                detail[f"{kind}_replaced"] = {
                    "before": list(previous.get(kind) or ()),
                    "now": list(now.get(kind) or ()),
                    "lifetime_seconds": lifetime,
                }
    recent = history[-settings.window :]
    flips = transitions(recent)
    if flips >= settings.transitions:
        reasons.append(
            f"it went up and down {flips} times over the last {len(recent)} observed runs "
            f"({recent})"
        )
        detail["transitions"] = flips
        detail["history"] = recent
    if not reasons:
        return None
    evidence: list[Evidence] = []
    if state is not None:
        try:
            address = ip_address(peer)
        except ValueError:
            address = None
        if address is not None:
            for sa in state.ike_sas_for(address) or ():
                if sa.source is not None:
                    evidence.append(sa.source)
            for ipsec in state.ipsec_sas_for(address) or ():
                if ipsec.source is not None:
                    evidence.append(ipsec.source)
    evidence = [
        e if e.device else Evidence(e.command, e.line, e.line_no, e.sample, device)
        for e in evidence
    ]
    detail["reasons"] = reasons
    return make_finding(
        Code.SA_FLAPPING,
        device=device,
        peer=peer,
        summary=f"{device}: the tunnel with {peer} flaps across audit runs: " + "; ".join(reasons),
        evidence=evidence,
        fix=render("SA_FLAPPING", platform, peer=peer) if platform else "",
        fix_device=device,
        detail=detail,
        reference="ike.stability",
    )
