"""Findings and reports: what the diagnosis says, in the vocabulary of FINDINGS.md.

Contract:
- :class:`Code` lists every finding code of the contract (docs/findings.md). Codes are an
  interface: never rename or reuse one.
- A :class:`Finding` carries the JSON fields FINDINGS.md requires; :meth:`Finding.to_dict`
  is the JSON shape.
- :data:`STAGE_ORDER` is the order in which a tunnel comes up; reports list the earliest
  failing stage first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ipsec_doctor.model.state import Evidence


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    OK = "ok"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 3, warning 2, info 1, ok 0."""
        return {"critical": 3, "warning": 2, "info": 1, "ok": 0}[self.value]


class Stage(StrEnum):
    PREREQ = "prereq"
    TRAFFIC = "traffic"
    IKE = "ike"
    IPSEC = "ipsec"
    DATA = "data"
    ROUTING = "routing"
    AUDIT = "audit"
    META = "meta"


#: The order in which an IPsec tunnel comes up (audit posture stands outside, after it).
STAGE_ORDER: tuple[Stage, ...] = (
    Stage.PREREQ,
    Stage.TRAFFIC,
    Stage.IKE,
    Stage.IPSEC,
    Stage.DATA,
    Stage.ROUTING,
    Stage.AUDIT,
)


class Code(StrEnum):
    """Finding codes (the contract of FINDINGS.md)."""

    ISAKMP_DISABLED = "ISAKMP_DISABLED"
    NO_ISAKMP_POLICY = "NO_ISAKMP_POLICY"
    CRYPTO_MAP_NOT_APPLIED = "CRYPTO_MAP_NOT_APPLIED"
    CRYPTO_MAP_WRONG_INTERFACE = "CRYPTO_MAP_WRONG_INTERFACE"
    NO_INTERESTING_TRAFFIC = "NO_INTERESTING_TRAFFIC"
    SOURCE_INTERFACE_DOWN = "SOURCE_INTERFACE_DOWN"
    NO_ROUTE_TO_PEER = "NO_ROUTE_TO_PEER"
    PHASE1_NO_RESPONSE = "PHASE1_NO_RESPONSE"
    PHASE1_PROPOSAL_MISMATCH = "PHASE1_PROPOSAL_MISMATCH"
    PSK_MISSING = "PSK_MISSING"
    PSK_MISMATCH = "PSK_MISMATCH"
    PEER_ADDRESS_MISMATCH = "PEER_ADDRESS_MISMATCH"
    NAT_T_NOT_ENABLED = "NAT_T_NOT_ENABLED"
    DPD_TOO_AGGRESSIVE = "DPD_TOO_AGGRESSIVE"
    SA_FLAPPING = "SA_FLAPPING"
    TRANSFORM_SET_MISMATCH = "TRANSFORM_SET_MISMATCH"
    PROXY_ID_MISMATCH = "PROXY_ID_MISMATCH"
    INVALID_LOCAL_ADDRESS = "INVALID_LOCAL_ADDRESS"
    PEER_NOT_FOUND = "PEER_NOT_FOUND"
    PFS_MISMATCH = "PFS_MISMATCH"
    LIFETIME_MISMATCH = "LIFETIME_MISMATCH"
    CRYPTO_ACL_OVERLAP = "CRYPTO_ACL_OVERLAP"
    ONE_WAY_TRAFFIC = "ONE_WAY_TRAFFIC"
    NO_TRAFFIC_ENCRYPTED = "NO_TRAFFIC_ENCRYPTED"
    SPI_OUT_OF_SYNC = "SPI_OUT_OF_SYNC"
    PACKET_NOT_IPSEC = "PACKET_NOT_IPSEC"
    SEND_ERRORS = "SEND_ERRORS"
    HW_CRYPTO_ENGINE_FAULT = "HW_CRYPTO_ENGINE_FAULT"
    NO_ROUTE_TO_REMOTE_LAN = "NO_ROUTE_TO_REMOTE_LAN"
    VRF_ROUTE_MISSING = "VRF_ROUTE_MISSING"
    XAUTH_FAILED = "XAUTH_FAILED"
    VPN_GROUP_NOT_FOUND = "VPN_GROUP_NOT_FOUND"
    ADDRESS_POOL_FAILURE = "ADDRESS_POOL_FAILURE"
    WEAK_CRYPTO = "WEAK_CRYPTO"
    TUNNEL_HEALTHY = "TUNNEL_HEALTHY"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


#: Stage and default severity of every code, as FINDINGS.md tabulates them.
CODE_STAGE: dict[Code, tuple[Stage, Severity]] = {
    Code.ISAKMP_DISABLED: (Stage.PREREQ, Severity.CRITICAL),
    Code.NO_ISAKMP_POLICY: (Stage.PREREQ, Severity.CRITICAL),
    Code.CRYPTO_MAP_NOT_APPLIED: (Stage.TRAFFIC, Severity.CRITICAL),
    Code.CRYPTO_MAP_WRONG_INTERFACE: (Stage.TRAFFIC, Severity.CRITICAL),
    Code.NO_INTERESTING_TRAFFIC: (Stage.TRAFFIC, Severity.WARNING),
    Code.SOURCE_INTERFACE_DOWN: (Stage.TRAFFIC, Severity.CRITICAL),
    Code.NO_ROUTE_TO_PEER: (Stage.IKE, Severity.CRITICAL),
    Code.PHASE1_NO_RESPONSE: (Stage.IKE, Severity.CRITICAL),
    Code.PHASE1_PROPOSAL_MISMATCH: (Stage.IKE, Severity.CRITICAL),
    Code.PSK_MISSING: (Stage.IKE, Severity.CRITICAL),
    Code.PSK_MISMATCH: (Stage.IKE, Severity.CRITICAL),
    Code.PEER_ADDRESS_MISMATCH: (Stage.IKE, Severity.CRITICAL),
    Code.NAT_T_NOT_ENABLED: (Stage.IKE, Severity.CRITICAL),
    Code.DPD_TOO_AGGRESSIVE: (Stage.IKE, Severity.WARNING),
    Code.SA_FLAPPING: (Stage.IKE, Severity.WARNING),
    Code.TRANSFORM_SET_MISMATCH: (Stage.IPSEC, Severity.CRITICAL),
    Code.PROXY_ID_MISMATCH: (Stage.IPSEC, Severity.CRITICAL),
    Code.INVALID_LOCAL_ADDRESS: (Stage.IPSEC, Severity.CRITICAL),
    Code.PEER_NOT_FOUND: (Stage.IPSEC, Severity.CRITICAL),
    Code.PFS_MISMATCH: (Stage.IPSEC, Severity.CRITICAL),
    Code.LIFETIME_MISMATCH: (Stage.IPSEC, Severity.INFO),
    Code.CRYPTO_ACL_OVERLAP: (Stage.IPSEC, Severity.WARNING),
    Code.ONE_WAY_TRAFFIC: (Stage.DATA, Severity.CRITICAL),
    Code.NO_TRAFFIC_ENCRYPTED: (Stage.DATA, Severity.WARNING),
    Code.SPI_OUT_OF_SYNC: (Stage.DATA, Severity.WARNING),
    Code.PACKET_NOT_IPSEC: (Stage.DATA, Severity.WARNING),
    Code.SEND_ERRORS: (Stage.DATA, Severity.WARNING),
    Code.HW_CRYPTO_ENGINE_FAULT: (Stage.DATA, Severity.WARNING),
    Code.NO_ROUTE_TO_REMOTE_LAN: (Stage.ROUTING, Severity.CRITICAL),
    Code.VRF_ROUTE_MISSING: (Stage.ROUTING, Severity.CRITICAL),
    Code.XAUTH_FAILED: (Stage.IKE, Severity.CRITICAL),
    Code.VPN_GROUP_NOT_FOUND: (Stage.IKE, Severity.CRITICAL),
    Code.ADDRESS_POOL_FAILURE: (Stage.IKE, Severity.CRITICAL),
    Code.WEAK_CRYPTO: (Stage.AUDIT, Severity.WARNING),
    Code.TUNNEL_HEALTHY: (Stage.DATA, Severity.OK),
    Code.INSUFFICIENT_DATA: (Stage.META, Severity.INFO),
}


@dataclass(frozen=True)
class Finding:
    """One diagnosis: a code, the proof and the fix."""

    code: Code
    severity: Severity
    stage: Stage
    device: str
    peer: str
    summary: str
    evidence: tuple[Evidence, ...] = ()
    fix: str = ""
    fix_device: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "stage": self.stage.value,
            "device": self.device,
            "peer": self.peer,
            "summary": self.summary,
            "evidence": [e.to_dict() for e in self.evidence],
            "fix": self.fix,
            "fix_device": self.fix_device,
            "detail": self.detail,
            "reference": self.reference,
        }


def make_finding(
    code: Code,
    *,
    device: str,
    peer: str,
    summary: str,
    evidence: tuple[Evidence, ...] | list[Evidence] = (),
    fix: str = "",
    fix_device: str = "",
    detail: dict[str, Any] | None = None,
    reference: str = "",
    severity: Severity | None = None,
    stage: Stage | None = None,
) -> Finding:
    """A finding with the stage and severity FINDINGS.md gives ``code`` unless overridden."""
    default_stage, default_severity = CODE_STAGE[code]
    return Finding(
        code=code,
        severity=severity or default_severity,
        stage=stage or default_stage,
        device=device,
        peer=peer,
        summary=summary,
        evidence=tuple(evidence),
        fix=fix,
        fix_device=fix_device,
        detail=dict(detail or {}),
        reference=reference,
    )
