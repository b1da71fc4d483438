"""The result of one `check` or `analyze` run: devices read and findings in report order.

Contract: pure data. :meth:`Report.to_dict` is the JSON document of DESIGN.md "JSON output"
(``schema_version``, ``tool_version``, ``started_at``, ``peer``, ``devices`` with what was
collected and any collection error, ``findings`` in report order), validated by
``ipsec_doctor/report/report.schema.json``. Bump :data:`SCHEMA_VERSION` on any
incompatible change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ipsec_doctor import __version__
from ipsec_doctor.model.findings import Finding, Severity

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class CommandRecord:
    """One command as collected: what was sent, how it ended, and why when it failed."""

    command: str
    sample: int
    outcome: str
    error: str = ""
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "sample": self.sample,
            "outcome": self.outcome,
            "error": self.error,
            "elapsed": round(self.elapsed, 3),
        }


@dataclass(frozen=True)
class DeviceRecord:
    """A device read for the run, its role for the tunnel and what came back."""

    name: str
    platform: str
    hostname: str = ""
    role: str = ""  # local / remote
    peer: str = ""  # the address this device was checked against
    reason: str = ""  # why this device was chosen
    error: str = ""  # set when the device could not be collected at all
    commands: tuple[CommandRecord, ...] = ()

    def summary_line(self) -> str:
        if self.error:
            return f"not collected: {self.error}"
        outcomes = Counter(c.outcome for c in self.commands)
        parts = [f"{count} {outcome}" for outcome, count in sorted(outcomes.items())]
        return ", ".join(parts) if parts else "no commands"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "platform": self.platform,
            "hostname": self.hostname,
            "role": self.role,
            "peer": self.peer,
            "reason": self.reason,
            "error": self.error,
            "commands": [c.to_dict() for c in self.commands],
        }


@dataclass(frozen=True)
class Report:
    """Findings for one peer, in report order (earliest failing stage first)."""

    peer: str
    started_at: str
    mode: str = "check"
    devices: tuple[DeviceRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def worst(self) -> Severity:
        if not self.findings:
            return Severity.OK
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= threshold.rank]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool_version": __version__,
            "mode": self.mode,
            "started_at": self.started_at,
            "peer": self.peer,
            "devices": [d.to_dict() for d in self.devices],
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }
