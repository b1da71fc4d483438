"""``audit --prometheus FILE``: node_exporter textfile-collector metrics of the run.

Contract: :func:`render_audit_prometheus` returns the Prometheus text exposition format
(``# HELP`` / ``# TYPE`` gauges, label values escaped): per run
``ipsec_doctor_audit_last_run_timestamp_seconds``, ``_duration_seconds``,
``ipsec_doctor_audit_devices{state}``, ``ipsec_doctor_audit_tunnels{status}``,
``ipsec_doctor_audit_findings{code,severity}`` (active findings), and
``ipsec_doctor_audit_silenced_findings``; per tunnel (labels ``device``, ``peer``,
``remote``) ``ipsec_doctor_tunnel_up`` (1 healthy or degraded, 0 otherwise),
``ipsec_doctor_tunnel_severity`` (0 ok .. 3 critical), and per tunnel and code
``ipsec_doctor_tunnel_problem{code,severity}`` 1 and ``ipsec_doctor_tunnel_problem_seconds``
(how long it has lasted). :func:`write_textfile` writes atomically (a temporary file in the
same directory, then rename), as the textfile collector requires.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ipsec_doctor.audit.model import AuditReport, TunnelStatus


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def render_audit_prometheus(report: AuditReport) -> str:
    """The metrics text (see the module contract)."""
    out: list[str] = []

    def gauge(name: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")

    finished = report.run.finished_at or report.now
    gauge("ipsec_doctor_audit_last_run_timestamp_seconds", "When the last audit run finished.")
    out.append(f"ipsec_doctor_audit_last_run_timestamp_seconds {finished.timestamp():.3f}")
    gauge("ipsec_doctor_audit_duration_seconds", "How long the last audit run took.")
    out.append(f"ipsec_doctor_audit_duration_seconds {report.run.duration or 0:.3f}")
    gauge("ipsec_doctor_audit_run_id", "The history id of the last audit run.")
    out.append(f"ipsec_doctor_audit_run_id {report.run.id}")
    gauge("ipsec_doctor_audit_devices", "Devices of the last run by state.")
    reached = report.reachable_devices
    out.append(f"ipsec_doctor_audit_devices{_labels(state='reachable')} {reached}")
    unreachable = len(report.devices) - reached
    out.append(f"ipsec_doctor_audit_devices{_labels(state='unreachable')} {unreachable}")
    gauge("ipsec_doctor_audit_tunnels", "Tunnels of the last run by status.")
    for status, n in report.counts_by_status().items():
        out.append(f"ipsec_doctor_audit_tunnels{_labels(status=status)} {n}")
    gauge("ipsec_doctor_audit_findings", "Active findings of the last run by code and severity.")
    findings = Counter((f.code.value, f.severity.value) for t in report.tunnels for f in t.problems)
    for (code, severity), n in sorted(findings.items()):
        out.append(f"ipsec_doctor_audit_findings{_labels(code=code, severity=severity)} {n}")
    gauge("ipsec_doctor_audit_silenced_findings", "Findings hidden by an active silence.")
    out.append(f"ipsec_doctor_audit_silenced_findings {report.silenced_count}")
    tunnels = [t for t in report.worst_first() if t.peer]
    gauge("ipsec_doctor_tunnel_up", "1 when the tunnel carries traffic (healthy or degraded).")
    for t in tunnels:
        up = 1 if t.status in (TunnelStatus.HEALTHY, TunnelStatus.DEGRADED) else 0
        labels = _labels(device=t.device, peer=t.peer, remote=t.remote)
        out.append(f"ipsec_doctor_tunnel_up{labels} {up}")
    gauge("ipsec_doctor_tunnel_severity", "Worst active severity: 0 ok .. 3 critical.")
    for t in tunnels:
        labels = _labels(device=t.device, peer=t.peer, remote=t.remote)
        out.append(f"ipsec_doctor_tunnel_severity{labels} {t.worst.rank}")
    gauge("ipsec_doctor_tunnel_problem", "1 for each active finding code on a tunnel.")
    seconds: list[str] = []
    for t in tunnels:
        for code in t.codes:
            worst = max(
                (f.severity for f in t.problems if f.code.value == code), key=lambda s: s.rank
            )
            labels = _labels(device=t.device, peer=t.peer, code=code, severity=worst.value)
            out.append(f"ipsec_doctor_tunnel_problem{labels} 1")
            age = report.age(t, code)
            if age is not None:
                tag = _labels(device=t.device, peer=t.peer, code=code)
                value = age.seconds(report.now)
                seconds.append(f"ipsec_doctor_tunnel_problem_seconds{tag} {value:.0f}")
    gauge("ipsec_doctor_tunnel_problem_seconds", "How long each active problem has lasted.")
    out.extend(seconds)
    return "\n".join(out) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename in the same folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
