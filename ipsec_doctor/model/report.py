"""The result of one `check` or `analyze` run: devices read and findings in report order.

Contract: pure data. :meth:`Report.to_dict` is the JSON document of DESIGN.md "JSON output"
(``schema_version``, ``tool_version``, ``started_at``, ``peer``, ``devices`` with what was
collected and any collection error, ``findings`` in report order), validated by
``ipsec_doctor/report/report.schema.json``; :meth:`Report.from_dict` reads it back (history,
golden files). Bump :data:`SCHEMA_VERSION` on any incompatible change.

:class:`TunnelResult` is one tunnel of an audit (one JSON line each, with its own findings);
``diagnose.diagnose_tunnels`` returns them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ipsec_doctor import __version__
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture
from ipsec_doctor.model.findings import Code, Finding, Severity, Stage
from ipsec_doctor.model.state import Evidence

SCHEMA_VERSION = "1.0"


def worst_severity(findings: Iterable[Finding]) -> Severity:
    """The highest severity among ``findings`` (``ok`` when there are none)."""
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.OK)


@dataclass(frozen=True)
class CommandRecord:
    """One command as collected: what was sent, how it ended, and why when it failed."""

    command: str
    sample: int
    outcome: str
    error: str = ""
    elapsed: float = 0.0

    @classmethod
    def from_capture(cls, capture: CommandCapture) -> CommandRecord:
        return cls(capture.command, capture.sample, capture.outcome.value, capture.error,
                   capture.elapsed)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "sample": self.sample,
            "outcome": self.outcome,
            "error": self.error,
            "elapsed": round(self.elapsed, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandRecord:
        return cls(
            command=str(data["command"]),
            sample=int(data.get("sample", 1)),
            outcome=str(data.get("outcome", "ok")),
            error=str(data.get("error", "")),
            elapsed=float(data.get("elapsed", 0.0)),
        )


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

    @classmethod
    def from_capture(
        cls, capture: DeviceCapture, *, role: str = "", peer: str = "", reason: str = ""
    ) -> DeviceRecord:
        return cls(
            name=capture.name,
            platform=capture.platform,
            hostname=capture.hostname,
            role=role,
            peer=peer,
            reason=reason,
            error=capture.error,
            commands=tuple(CommandRecord.from_capture(c) for c in capture.captures),
        )

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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceRecord:
        return cls(
            name=str(data["name"]),
            platform=str(data.get("platform", "")),
            hostname=str(data.get("hostname", "")),
            role=str(data.get("role", "")),
            peer=str(data.get("peer", "")),
            reason=str(data.get("reason", "")),
            error=str(data.get("error", "")),
            commands=tuple(CommandRecord.from_dict(c) for c in data.get("commands", ())),
        )


def evidence_from_dict(data: Mapping[str, Any]) -> Evidence:
    return Evidence(
        command=str(data.get("command", "")),
        line=str(data.get("line", "")),
        line_no=int(data.get("line_no", 0)),
        sample=int(data.get("sample", 1)),
        device=str(data.get("device", "")),
    )


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    """The inverse of :meth:`Finding.to_dict`."""
    return Finding(
        code=Code(data["code"]),
        severity=Severity(data["severity"]),
        stage=Stage(data["stage"]),
        device=str(data.get("device", "")),
        peer=str(data.get("peer", "")),
        summary=str(data.get("summary", "")),
        evidence=tuple(evidence_from_dict(e) for e in data.get("evidence", ())),
        fix=str(data.get("fix", "")),
        fix_device=str(data.get("fix_device", "")),
        detail=dict(data.get("detail", {})),
        reference=str(data.get("reference", "")),
    )


@dataclass(frozen=True)
class Report:
    """Findings for one peer, in report order (earliest failing stage first)."""

    peer: str
    started_at: str  # ISO 8601
    mode: str = "check"
    devices: tuple[DeviceRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default=())
    tool_version: str = __version__
    schema_version: str = SCHEMA_VERSION

    @property
    def worst(self) -> Severity:
        return worst_severity(self.findings)

    @property
    def codes(self) -> list[str]:
        return [f.code.value for f in self.findings]

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= threshold.rank]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool_version": self.tool_version,
            "mode": self.mode,
            "started_at": self.started_at,
            "peer": self.peer,
            "devices": [d.to_dict() for d in self.devices],
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        return cls(
            peer=str(data.get("peer", "")),
            started_at=str(data.get("started_at", "")),
            mode=str(data.get("mode", "check")),
            devices=tuple(DeviceRecord.from_dict(d) for d in data.get("devices", ())),
            findings=tuple(finding_from_dict(f) for f in data.get("findings", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
            tool_version=str(data.get("tool_version", __version__)),
            schema_version=str(data.get("schema_version", SCHEMA_VERSION)),
        )


@dataclass(frozen=True)
class TunnelResult:
    """The diagnosis of one tunnel (one line of the audit's JSON lines)."""

    device: str
    peer: str
    remote: str = ""
    remote_peer: str = ""
    findings: tuple[Finding, ...] = ()

    @property
    def worst(self) -> Severity:
        return worst_severity(self.findings)

    @property
    def codes(self) -> list[str]:
        return [f.code.value for f in self.findings]

    @property
    def healthy(self) -> bool:
        return any(f.code is Code.TUNNEL_HEALTHY for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "peer": self.peer,
            "remote": self.remote,
            "remote_peer": self.remote_peer,
            "worst_severity": self.worst.value,
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TunnelResult:
        return cls(
            device=str(data["device"]),
            peer=str(data["peer"]),
            remote=str(data.get("remote", "")),
            remote_peer=str(data.get("remote_peer", "")),
            findings=tuple(finding_from_dict(f) for f in data.get("findings", ())),
        )
