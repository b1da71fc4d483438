"""The report of one run: what was collected from which device, and the findings.

Contract (the JSON document of ``check`` / ``analyze``, DESIGN.md "JSON output"):
- :class:`Report` carries ``schema_version``, ``tool_version``, ``started_at`` (ISO 8601 or
  null), ``peer``, ``devices`` (each: ``name``, ``platform``, ``hostname``, ``host``,
  ``error`` and ``commands`` -- every command with its ``sample``, ``outcome``, ``error`` and
  ``elapsed`` seconds, never the raw text) and ``findings`` in report order
  (:meth:`ipsec_doctor.model.findings.Finding.to_dict`). :meth:`Report.to_dict` is that shape,
  :meth:`Report.from_dict` reads it back (history, golden files).
- :class:`TunnelResult` is one tunnel of an audit: one JSON line each.
- Bump :data:`SCHEMA_VERSION` on any incompatible change of these shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ipsec_doctor.model.capture import CaptureSet, CommandCapture, DeviceCapture
from ipsec_doctor.model.findings import Code, Finding, Severity, Stage
from ipsec_doctor.model.state import Evidence

SCHEMA_VERSION = "1.0"


def _tool_version() -> str:
    from ipsec_doctor import __version__

    return __version__


def worst_severity(findings: Iterable[Finding]) -> Severity:
    """The highest severity among ``findings`` (``ok`` when there are none)."""
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.OK)


@dataclass(frozen=True)
class CommandRecord:
    """One command as collected (outcome only; the raw text stays in the capture folder)."""

    command: str
    sample: int = 1
    outcome: str = "ok"
    error: str = ""
    elapsed: float = 0.0

    @classmethod
    def from_capture(cls, capture: CommandCapture) -> CommandRecord:
        return cls(
            command=capture.command,
            sample=capture.sample,
            outcome=capture.outcome.value,
            error=capture.error,
            elapsed=round(capture.elapsed, 3),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "sample": self.sample,
            "outcome": self.outcome,
            "error": self.error,
            "elapsed": self.elapsed,
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
    """One device of the run."""

    name: str
    platform: str
    hostname: str = ""
    host: str = ""
    commands: tuple[CommandRecord, ...] = ()
    error: str = ""

    @classmethod
    def from_capture(cls, capture: DeviceCapture) -> DeviceRecord:
        return cls(
            name=capture.name,
            platform=capture.platform,
            hostname=capture.hostname,
            host=capture.host,
            commands=tuple(CommandRecord.from_capture(c) for c in capture.captures),
            error=capture.error,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "platform": self.platform,
            "hostname": self.hostname,
            "host": self.host,
            "error": self.error,
            "commands": [c.to_dict() for c in self.commands],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceRecord:
        return cls(
            name=str(data["name"]),
            platform=str(data.get("platform", "")),
            hostname=str(data.get("hostname", "")),
            host=str(data.get("host", "")),
            commands=tuple(CommandRecord.from_dict(c) for c in data.get("commands", ())),
            error=str(data.get("error", "")),
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


@dataclass(frozen=True)
class Report:
    """One run of ``check`` / ``analyze``."""

    peer: str
    devices: tuple[DeviceRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    started_at: datetime | None = None
    tool_version: str = ""
    schema_version: str = SCHEMA_VERSION

    @classmethod
    def build(
        cls,
        captures: CaptureSet,
        findings: Iterable[Finding],
        *,
        peer: str | None = None,
        tool_version: str | None = None,
    ) -> Report:
        """A report from what was collected and what the diagnosis found."""
        return cls(
            peer=peer if peer is not None else captures.peer,
            devices=tuple(DeviceRecord.from_capture(d) for d in captures.devices.values()),
            findings=tuple(findings),
            started_at=captures.started_at,
            tool_version=tool_version or _tool_version(),
        )

    @property
    def worst(self) -> Severity:
        return worst_severity(self.findings)

    @property
    def codes(self) -> list[str]:
        return [f.code.value for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool_version": self.tool_version or _tool_version(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "peer": self.peer,
            "devices": [d.to_dict() for d in self.devices],
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        started = data.get("started_at")
        return cls(
            schema_version=str(data.get("schema_version", SCHEMA_VERSION)),
            tool_version=str(data.get("tool_version", "")),
            started_at=datetime.fromisoformat(started) if started else None,
            peer=str(data.get("peer", "")),
            devices=tuple(DeviceRecord.from_dict(d) for d in data.get("devices", ())),
            findings=tuple(finding_from_dict(f) for f in data.get("findings", ())),
        )
