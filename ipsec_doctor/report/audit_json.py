"""``audit --format json``: JSON lines, one tunnel per line, worst first.

Contract: each line is one JSON object: the tunnel
(:meth:`~ipsec_doctor.audit.model.TunnelRecord.to_dict`: ``device``, ``peer``, ``remote``,
``remote_peer``, ``paired``, ``observed``, ``status``, ``worst_severity``,
``local_address``, ``sources``, ``findings``, ``silenced``) plus ``run_id``,
``run_started_at``, ``since`` (code -> ISO time its current streak began), ``new_codes``
(codes new since the previous run; every code on the first run) and ``schema_version``.
Lines are self-contained so ``jq``/``grep`` work on any one of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ipsec_doctor.audit.model import AuditReport, TunnelRecord

SCHEMA_VERSION = "1.0"


def tunnel_line(report: AuditReport, record: TunnelRecord) -> dict[str, Any]:
    new_codes: list[str]
    if report.changes is None:
        new_codes = record.codes
    else:
        new_codes = [
            c.code for c in report.changes.new if (c.device, c.peer) == (record.device, record.peer)
        ]
    since = {
        code: age.first_seen.isoformat()
        for code in record.codes
        if (age := report.age(record, code)) is not None
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": report.run.id,
        "run_started_at": report.run.started_at.isoformat(),
        **record.to_dict(),
        "since": since,
        "new_codes": new_codes,
    }


def iter_audit_json(report: AuditReport) -> Iterator[str]:
    for record in report.worst_first():
        yield json.dumps(tunnel_line(report, record), separators=(",", ":"), default=str)


def render_audit_json(report: AuditReport) -> str:
    """All lines, each ending in a newline (empty when the run has no tunnel)."""
    return "".join(line + "\n" for line in iter_audit_json(report))
