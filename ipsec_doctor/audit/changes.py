"""What changed since the previous run, how long problems have lasted, and silences applied.

Contract:
- A tunnel is matched to its previous record by any of its ends (``(device, peer)`` or the
  far end's ``(remote, remote_peer)``), so a pair keeps its history whichever end it is
  stored under. :class:`PreviousIndex` holds the previous records (each device's baseline:
  its latest earlier run, see :meth:`~ipsec_doctor.audit.store.HistoryStore.baseline_tunnels`).
- :func:`carry_over` computes, for one new record, the facts kept from run to run:
  ``since`` (code -> ISO time of the first run of the problem's current streak), ``streak``
  (code -> consecutive observed runs), ``history`` (status letters). A problem that was seen
  in the previous record keeps its ``since``; a record whose device was unreachable keeps the
  previous problems dormant instead of ending them (nothing was observed).
- :func:`compute_changes`: *new* and *resolved* findings by code per tunnel (resolved only
  when the tunnel was observed now), tunnels that *appeared* (observed now, unknown before)
  and *vanished* (known before, not seen now although the device that would list it was
  reached).
- :func:`apply_silences` moves the findings an active silence covers to ``silenced``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ipsec_doctor.audit.flapping import extend_history
from ipsec_doctor.audit.model import (
    Changes,
    ProblemAge,
    ProblemChange,
    ProblemKey,
    Silence,
    SilencedFinding,
    TunnelChange,
    TunnelRecord,
    TunnelStatus,
)
from ipsec_doctor.model.findings import Severity


class PreviousIndex:
    """Previous tunnel records, found by any of their ends."""

    def __init__(self, records: Iterable[TunnelRecord]) -> None:
        self.records = list(records)
        self._by_end: dict[tuple[str, str], TunnelRecord] = {}
        for record in self.records:
            for end in record.ends:
                self._by_end.setdefault(end, record)

    def match(self, record: TunnelRecord) -> TunnelRecord | None:
        for end in record.ends:
            found = self._by_end.get(end)
            if found is not None:
                return found
        return None

    def peers_of(self, device: str) -> list[str]:
        """Peer addresses ``device`` had tunnels with (either end of a stored pair)."""
        found: list[str] = []
        for record in self.records:
            if record.device == device and record.peer:
                found.append(record.peer)
            elif record.remote == device and record.remote_peer:
                found.append(record.remote_peer)
        return list(dict.fromkeys(found))

    def __len__(self) -> int:
        return len(self.records)


def carry_over(
    record: TunnelRecord,
    previous: TunnelRecord | None,
    now: datetime,
    status: TunnelStatus | None = None,
    history_length: int = 20,
) -> dict[str, Any]:
    """``since``, ``streak`` and ``history`` for ``record`` (see the module contract)."""
    prev_facts: Mapping[str, Any] = previous.facts if previous is not None else {}
    prev_since: Mapping[str, str] = prev_facts.get("since") or {}
    prev_streak: Mapping[str, int] = prev_facts.get("streak") or {}
    stamp = now.isoformat()
    since = {code: str(prev_since.get(code, stamp)) for code in record.codes}
    streak = {code: int(prev_streak.get(code, 0)) + 1 for code in record.codes}
    if not record.observed:
        for code, first in prev_since.items():
            since.setdefault(code, str(first))
            streak.setdefault(code, int(prev_streak.get(code, 1)))
    history = extend_history(
        str(prev_facts.get("history") or ""), status or record.status, history_length
    )
    return {"since": since, "streak": streak, "history": history}


def ages(records: Iterable[TunnelRecord]) -> dict[ProblemKey, ProblemAge]:
    """(device, peer, code) -> how long the problem has lasted, from each record's facts."""
    out: dict[ProblemKey, ProblemAge] = {}
    for record in records:
        since: Mapping[str, str] = record.facts.get("since") or {}
        streak: Mapping[str, int] = record.facts.get("streak") or {}
        for code in record.codes:
            first = since.get(code)
            if first:
                out[(record.device, record.peer, code)] = ProblemAge(
                    first_seen=datetime.fromisoformat(first), runs=int(streak.get(code, 1))
                )
    return out


def apply_silences(
    record: TunnelRecord, silences: Sequence[Silence], now: datetime
) -> TunnelRecord:
    """``record`` with the findings an active silence covers moved to ``silenced``."""
    active = [s for s in silences if s.active(now)]
    if not active:
        return record
    kept = []
    hidden = list(record.silenced)
    for finding in record.findings:
        silence = next((s for s in active if s.matches(record.ends, finding)), None)
        if silence is None or finding.severity is Severity.OK:
            kept.append(finding)
        else:
            hidden.append(SilencedFinding(finding, silence.id, silence.reason, silence.until))
    return replace(record, findings=tuple(kept), silenced=tuple(hidden))


def _problem(record: TunnelRecord, code: str) -> ProblemChange:
    finding = next(f for f in record.problems if f.code.value == code)
    return ProblemChange(
        device=record.device,
        peer=record.peer,
        code=code,
        severity=finding.severity.value,
        summary=finding.summary,
    )


def compute_changes(
    current: Sequence[TunnelRecord],
    previous: PreviousIndex,
    *,
    reached: set[str],
    previous_run: int | None,
) -> Changes:
    """New/resolved findings and appeared/vanished tunnels (see the module contract)."""
    new: list[ProblemChange] = []
    resolved: list[ProblemChange] = []
    appeared: list[TunnelChange] = []
    matched: set[int] = set()
    for record in current:
        before = previous.match(record)
        if before is None:
            if record.observed and record.peer:
                known = any(record.device in (p.device, p.remote) for p in previous.records)
                appeared.append(
                    TunnelChange(
                        record.device,
                        record.peer,
                        record.remote,
                        "new tunnel" if known else "device new to the audit",
                    )
                )
            new.extend(_problem(record, code) for code in record.codes)
            continue
        matched.add(id(before))
        old = set(before.codes)
        now = set(record.codes)
        new.extend(_problem(record, code) for code in record.codes if code not in old)
        if record.observed:
            resolved.extend(
                ProblemChange(
                    device=record.device,
                    peer=record.peer,
                    code=code,
                    severity=f.severity.value,
                    summary=f.summary,
                )
                for code in before.codes
                if code not in now
                for f in [next(x for x in before.problems if x.code.value == code)]
            )
    vanished = [
        TunnelChange(p.device, p.peer, p.remote, "not found on the device any more")
        for p in previous.records
        if id(p) not in matched
        and p.peer
        and (p.device in reached or (p.remote and p.remote in reached))
    ]
    return Changes(
        previous_run=previous_run,
        new=tuple(new),
        resolved=tuple(resolved),
        appeared=tuple(appeared),
        vanished=tuple(vanished),
    )
