"""The audit's data: one record per tunnel, device outcomes, changes and the AuditReport.

Contract:
- Pure data (no I/O): renderers in :mod:`ipsec_doctor.report` read an :class:`AuditReport`,
  the history store reads and writes :class:`TunnelRecord` / :class:`DeviceOutcome`.
- A :class:`TunnelRecord` is one tunnel: the ``device`` it was diagnosed from and its
  ``peer`` address, the far end (``remote`` device and the ``remote_peer`` address that end
  uses for us) when both ends are in the inventory, its active ``findings`` in report order
  and the ``silenced`` ones (with the silence that hid them). ``observed`` is False when the
  device could not be collected (the findings then say why).
- :attr:`TunnelRecord.status` is computed from the active findings, in this order:
  ``unreachable`` (not observed), ``down`` (a critical finding), ``healthy``
  (TUNNEL_HEALTHY), ``degraded`` (a warning other than INSUFFICIENT_DATA), ``unknown``.
- "Problems" are active findings other than TUNNEL_HEALTHY; changes and durations key on
  ``(tunnel key, code)``. Silenced findings never count for severity, status or exit code.
- :meth:`TunnelRecord.to_dict` is one line of ``audit --format json``: the fields of
  :class:`~ipsec_doctor.model.report.TunnelResult` plus ``status``, ``paired``, ``observed``,
  ``silenced``, ``sources`` and ``local_address``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ipsec_doctor.model.findings import Code, Finding, Severity
from ipsec_doctor.model.report import finding_from_dict, worst_severity


class TunnelStatus(StrEnum):
    HEALTHY = "healthy"
    DOWN = "down"
    DEGRADED = "degraded"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"

    @property
    def rank(self) -> int:
        """Higher is worse: down 4, unreachable 3, degraded 2, unknown 1, healthy 0."""
        return {"down": 4, "unreachable": 3, "degraded": 2, "unknown": 1, "healthy": 0}[self.value]


def is_problem(finding: Finding) -> bool:
    """An active finding that says something is wrong or unknown (not TUNNEL_HEALTHY / ok)."""
    return finding.code is not Code.TUNNEL_HEALTHY and finding.severity is not Severity.OK


def status_of(findings: Iterable[Finding], observed: bool = True) -> TunnelStatus:
    """The status of a tunnel from its active findings (see the module contract)."""
    if not observed:
        return TunnelStatus.UNREACHABLE
    items = list(findings)
    if any(f.severity is Severity.CRITICAL and is_problem(f) for f in items):
        return TunnelStatus.DOWN
    if any(f.code is Code.TUNNEL_HEALTHY for f in items):
        return TunnelStatus.HEALTHY
    if any(f.severity is Severity.WARNING and f.code is not Code.INSUFFICIENT_DATA for f in items):
        return TunnelStatus.DEGRADED
    return TunnelStatus.UNKNOWN


@dataclass(frozen=True)
class Silence:
    """A known issue: findings of ``code`` on tunnels with ``peer`` are hidden until ``until``.

    ``code`` may be ``*`` (every code); ``device`` narrows it to one device ("" = any).
    """

    id: int
    peer: str
    code: str
    until: datetime
    reason: str
    device: str = ""
    created_at: datetime | None = None
    created_by: str = ""

    def active(self, now: datetime) -> bool:
        return now < self.until

    def matches(self, record_keys: Iterable[tuple[str, str]], finding: Finding) -> bool:
        """True when this silence covers ``finding`` on a tunnel with those (device, peer) ends."""
        if self.code not in ("*", finding.code.value):
            return False
        for device, peer in record_keys:
            if peer == self.peer and (not self.device or self.device == device):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer": self.peer,
            "device": self.device,
            "code": self.code,
            "until": self.until.isoformat(),
            "reason": self.reason,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class SilencedFinding:
    finding: Finding
    silence_id: int
    reason: str
    until: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.finding.to_dict(),
            "silence": {
                "id": self.silence_id,
                "reason": self.reason,
                "until": self.until.isoformat(),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SilencedFinding:
        silence = data.get("silence") or {}
        return cls(
            finding=finding_from_dict(data),
            silence_id=int(silence.get("id", 0)),
            reason=str(silence.get("reason", "")),
            until=datetime.fromisoformat(str(silence.get("until"))),
        )


@dataclass(frozen=True)
class TunnelRecord:
    """One tunnel of one audit run (see the module contract)."""

    device: str
    peer: str
    remote: str = ""
    remote_peer: str = ""
    findings: tuple[Finding, ...] = ()
    silenced: tuple[SilencedFinding, ...] = ()
    observed: bool = True
    paired: bool = False
    local_address: str = ""
    sources: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.device, self.peer

    @property
    def ends(self) -> tuple[tuple[str, str], ...]:
        """Every (device, peer address) this tunnel is known by: ours, and the far end's."""
        if self.remote and self.remote_peer:
            return (self.key, (self.remote, self.remote_peer))
        return (self.key,)

    @property
    def label(self) -> str:
        far = f" <-> {self.remote}" if self.remote else ""
        return f"{self.device} -> {self.peer or '(no tunnel known)'}{far}"

    @property
    def status(self) -> TunnelStatus:
        return status_of(self.findings, self.observed)

    @property
    def worst(self) -> Severity:
        return worst_severity(self.findings)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if is_problem(f))

    @property
    def codes(self) -> list[str]:
        """Active problem codes, report order, each once."""
        return list(dict.fromkeys(f.code.value for f in self.problems))

    def sort_key(self) -> tuple[int, int, int, str, str]:
        """Worst first: severity, status, number of problems, then by name."""
        return (
            -self.worst.rank,
            -self.status.rank,
            -len(self.problems),
            self.device,
            self.peer,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "peer": self.peer,
            "remote": self.remote,
            "remote_peer": self.remote_peer,
            "paired": self.paired,
            "observed": self.observed,
            "status": self.status.value,
            "worst_severity": self.worst.value,
            "local_address": self.local_address,
            "sources": list(self.sources),
            "findings": [f.to_dict() for f in self.findings],
            "silenced": [s.to_dict() for s in self.silenced],
        }


@dataclass(frozen=True)
class DeviceOutcome:
    """What happened with one device of the run."""

    name: str
    platform: str = ""
    host: str = ""
    hostname: str = ""
    reachable: bool = True
    error: str = ""
    commands_ok: int = 0
    commands_failed: int = 0
    elapsed: float = 0.0
    addresses: tuple[str, ...] = ()
    tunnels: int = 0
    note: str = ""  # e.g. why its tunnels could not be enumerated

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "platform": self.platform,
            "host": self.host,
            "hostname": self.hostname,
            "reachable": self.reachable,
            "error": self.error,
            "commands_ok": self.commands_ok,
            "commands_failed": self.commands_failed,
            "elapsed": round(self.elapsed, 3),
            "addresses": list(self.addresses),
            "tunnels": self.tunnels,
            "note": self.note,
        }


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"  # killed or stopped before the end: only finished devices


@dataclass(frozen=True)
class RunInfo:
    """One audit run as the history keeps it."""

    id: int
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = RunStatus.RUNNING
    source: str = ""
    filters: tuple[str, ...] = ()
    tool_version: str = ""
    devices_total: int = 0

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status.value,
            "source": self.source,
            "filters": list(self.filters),
            "tool_version": self.tool_version,
            "devices_total": self.devices_total,
        }


@dataclass(frozen=True)
class TrendPoint:
    """Tunnel counts by status in one run (the HTML chart, history)."""

    run_id: int
    started_at: datetime
    counts: Mapping[str, int]

    def count(self, status: TunnelStatus) -> int:
        return int(self.counts.get(status.value, 0))

    @property
    def broken(self) -> int:
        """Tunnels that do not work: down or on an unreachable device."""
        return self.count(TunnelStatus.DOWN) + self.count(TunnelStatus.UNREACHABLE)


@dataclass(frozen=True)
class ProblemChange:
    """A finding code that appeared on, or left, a tunnel since the previous run."""

    device: str
    peer: str
    code: str
    severity: str
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "peer": self.peer,
            "code": self.code,
            "severity": self.severity,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class TunnelChange:
    """A tunnel that appeared or vanished since the previous run."""

    device: str
    peer: str
    remote: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "peer": self.peer,
            "remote": self.remote,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ProblemAge:
    """How long a problem has lasted: first run of its current streak, and the streak length."""

    first_seen: datetime
    runs: int

    def seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.first_seen).total_seconds())


@dataclass(frozen=True)
class Changes:
    """What changed since the previous run (per device: its latest earlier record)."""

    previous_run: int | None = None
    new: tuple[ProblemChange, ...] = ()
    resolved: tuple[ProblemChange, ...] = ()
    appeared: tuple[TunnelChange, ...] = ()
    vanished: tuple[TunnelChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.new or self.resolved or self.appeared or self.vanished)

    def to_dict(self) -> dict[str, Any]:
        return {
            "previous_run": self.previous_run,
            "new_findings": [c.to_dict() for c in self.new],
            "resolved_findings": [c.to_dict() for c in self.resolved],
            "appeared_tunnels": [c.to_dict() for c in self.appeared],
            "vanished_tunnels": [c.to_dict() for c in self.vanished],
        }


ProblemKey = tuple[str, str, str]  # (device, peer, code)


@dataclass(frozen=True)
class AuditReport:
    """Everything a renderer needs about one run."""

    run: RunInfo
    tunnels: tuple[TunnelRecord, ...]
    devices: tuple[DeviceOutcome, ...]
    changes: Changes | None = None  # None: the first run, nothing to compare with
    ages: Mapping[ProblemKey, ProblemAge] = field(default_factory=dict)
    trend: tuple[TrendPoint, ...] = ()
    notes: tuple[str, ...] = ()
    generated_at: datetime | None = None

    @property
    def now(self) -> datetime:
        return self.generated_at or self.run.finished_at or self.run.started_at

    def worst_first(self) -> list[TunnelRecord]:
        return sorted(self.tunnels, key=TunnelRecord.sort_key)

    def counts_by_status(self) -> dict[str, int]:
        counts = Counter(t.status.value for t in self.tunnels)
        return {s.value: counts.get(s.value, 0) for s in TunnelStatus}

    def counts_by_severity(self) -> dict[str, int]:
        """Active problem findings per severity (TUNNEL_HEALTHY not counted)."""
        counts = Counter(f.severity.value for t in self.tunnels for f in t.problems)
        return {s.value: counts.get(s.value, 0) for s in Severity if s is not Severity.OK}

    def counts_by_code(self) -> dict[str, tuple[str, int]]:
        """code -> (its worst severity, number of tunnels with it), most tunnels first."""
        tunnels: Counter[str] = Counter()
        worst: dict[str, Severity] = {}
        for t in self.tunnels:
            for f in t.problems:
                if f.severity.rank > worst.get(f.code.value, Severity.OK).rank:
                    worst[f.code.value] = f.severity
            tunnels.update(t.codes)
        ordered = sorted(tunnels.items(), key=lambda kv: (-worst[kv[0]].rank, -kv[1], kv[0]))
        return {code: (worst[code].value, n) for code, n in ordered}

    @property
    def silenced_count(self) -> int:
        return sum(len(t.silenced) for t in self.tunnels)

    def at_or_above(self, threshold: Severity) -> list[tuple[TunnelRecord, Finding]]:
        """Active findings at or above ``threshold`` (the exit code's question)."""
        return [
            (t, f) for t in self.tunnels for f in t.problems if f.severity.rank >= threshold.rank
        ]

    @property
    def reachable_devices(self) -> int:
        return sum(1 for d in self.devices if d.reachable)

    def age(self, record: TunnelRecord, code: str) -> ProblemAge | None:
        return self.ages.get((record.device, record.peer, code))
