"""A 200-router emulated fleet audited end to end through the real CLI, twice.

The fleet: 100 pairs from the bundled scenarios (60 % healthy, every faulty scenario at least
once), plus one router that refuses the login, one that hangs on a command, one that drops the
connection and one that answers a command with ``% Invalid input``. The emulator runs in its
own process; ``ipsec-doctor audit`` runs as a subprocess (collector processes, SQLite history,
every report format) and then once more, so the second run reports changes, durations and
SA_FLAPPING across runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.audit.model import AuditReport, TunnelRecord, TunnelStatus
from ipsec_doctor.audit.runner import report_for_run
from ipsec_doctor.audit.store import HistoryStore
from tests.audit.fleet import (
    SCENARIOS_ROOT,
    Fleet,
    audit_command,
    build_fleet,
    mixed_scenarios,
    serving,
)

pytestmark = pytest.mark.ssh

ROOT = Path(__file__).resolve().parents[2]
PAIRS = 100
FAULTS = [
    (1, "R1", "refuse_login"),
    (2, "R2", "hang_on"),
    (3, "R1", "drop_on"),
    (4, "R2", "invalid"),
]
#: Faults that a single sample of the counters cannot show (the audit's default).
NEEDS_TWO_SAMPLES = {"no-interesting-traffic"}


@dataclass
class FleetRun:
    fleet: Fleet
    db: Path
    outputs: list[subprocess.CompletedProcess[str]]
    seconds: list[float]
    files: Path
    first: AuditReport
    second: AuditReport


def audit(config: Path, db: Path, files: Path, run: int) -> subprocess.CompletedProcess[str]:
    command = audit_command(
        config,
        db,
        100,
        "--timeout",
        "3",
        "--connect-timeout",
        "5",
        "--format",
        "json",
        "--html",
        str(files / f"run{run}.html"),
        "--markdown",
        str(files / f"run{run}.md"),
        "--prometheus",
        str(files / f"run{run}.prom"),
    )
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetRun]:
    work = tmp_path_factory.mktemp("fleet")
    fleet = build_fleet(work / "fleet", mixed_scenarios(PAIRS), faults=FAULTS)
    db = work / "history.sqlite"
    files = work / "reports"
    files.mkdir()
    outputs, seconds = [], []
    with serving(fleet, work / "inventory") as config:
        for run in (1, 2):
            started = time.monotonic()
            outputs.append(audit(config, db, files, run))
            seconds.append(time.monotonic() - started)
    with HistoryStore(db) as store:
        first, second = report_for_run(store, 1), report_for_run(store, 2)
    yield FleetRun(fleet, db, outputs, seconds, files, first, second)


def tunnels_of(report: AuditReport, device: str) -> list[TunnelRecord]:
    return [t for t in report.tunnels if device in (t.device, t.remote)]


def test_every_device_is_reported_and_the_audit_finishes(fleet_run: FleetRun) -> None:
    for result in fleet_run.outputs:
        assert result.returncode == 1, result.stderr[-2000:]  # critical findings exist
    report = fleet_run.second
    assert {d.name for d in report.devices} == set(fleet_run.fleet.devices)
    assert report.run.status.value == "complete"
    lines = [json.loads(line) for line in fleet_run.outputs[1].stdout.splitlines()]
    assert len(lines) == len(report.tunnels) >= PAIRS
    assert {line["run_id"] for line in lines} == {2}


def test_the_200_router_fleet_is_fast_enough(fleet_run: FleetRun) -> None:
    assert max(fleet_run.seconds) < 60, fleet_run.seconds


def test_healthy_pairs_are_paired_and_healthy(fleet_run: FleetRun) -> None:
    for device in fleet_run.fleet.by_scenario("healthy"):
        if device.role != "R1" or device.pair in {index for index, _, _ in FAULTS}:
            continue
        (tunnel,) = tunnels_of(fleet_run.first, device.name)
        assert tunnel.paired and tunnel.remote
        assert tunnel.status is TunnelStatus.HEALTHY, tunnel.codes
        assert tunnel.peer == device.peer


def test_each_faulty_scenario_is_named(fleet_run: FleetRun) -> None:
    seen = set()
    for device in fleet_run.fleet.devices.values():
        if device.role != "R1" or device.scenario.startswith("healthy") or device.fault:
            continue
        meta = yaml.safe_load((SCENARIOS_ROOT / device.scenario / "scenario.yaml").read_text())
        codes = {c for t in tunnels_of(fleet_run.first, device.name) for c in t.codes}
        expected = meta["expected_first"]
        seen.add(device.scenario)
        if device.scenario in NEEDS_TWO_SAMPLES:
            assert "INSUFFICIENT_DATA" in codes, (device.scenario, codes)
        elif expected == "TUNNEL_HEALTHY":
            # the scenario's tunnel; other peers of the device (multi-peer-crypto-map's idle
            # branch entry) are judged on their own
            checked = {
                t.status
                for t in tunnels_of(fleet_run.first, device.name)
                if (t.device, t.peer) == (device.name, device.peer)
                or (t.remote, t.remote_peer) == (device.name, device.peer)
            }
            assert checked == {TunnelStatus.HEALTHY}, (device.scenario, codes)
        else:
            assert expected in codes, (device.scenario, device.name, codes)
    assert len(seen) >= 30


def test_refused_login_is_unreachable_with_the_reason(fleet_run: FleetRun) -> None:
    (name,) = fleet_run.fleet.faulty("refuse_login")
    (device,) = [d for d in fleet_run.first.devices if d.name == name]
    assert not device.reachable and "authentication failed" in device.error
    (tunnel,) = tunnels_of(fleet_run.first, name)
    blind = [f for f in tunnel.findings if f.code.value == "INSUFFICIENT_DATA" and f.device == name]
    assert blind and blind[0].severity.value == "warning"
    assert "could not be collected" in blind[0].summary


@pytest.mark.parametrize(
    ("fault", "command", "outcome"),
    [
        ("hang_on", "show crypto ipsec sa", "timeout"),
        ("drop_on", "show crypto isakmp policy", "error"),
        ("invalid", "show crypto isakmp sa", "rejected"),
    ],
)
def test_faulty_sessions_are_reported_per_command(
    fleet_run: FleetRun, fault: str, command: str, outcome: str
) -> None:
    (name,) = fleet_run.fleet.faulty(fault)
    (device,) = [d for d in fleet_run.first.devices if d.name == name]
    assert device.reachable and device.commands_failed >= 1
    findings = [f for t in tunnels_of(fleet_run.first, name) for f in t.findings]
    assert any(
        f.code.value == "INSUFFICIENT_DATA"
        and f.device == name
        and f.detail.get("command") == command
        and f.detail.get("outcome") == outcome
        for f in findings
    ), [(f.code.value, f.detail.get("command"), f.detail.get("outcome")) for f in findings]


def test_second_run_reports_changes_durations_and_flaps(fleet_run: FleetRun) -> None:
    changes = fleet_run.second.changes
    assert changes is not None and changes.previous_run == 1
    assert not changes.appeared and not changes.vanished
    assert fleet_run.first.changes is None
    # the sa-flapping pairs: conn-id and SPIs change between runs minutes apart
    flapping = [d for d in fleet_run.fleet.by_scenario("sa-flapping") if d.role == "R1"]
    assert flapping
    for device in flapping:
        (tunnel,) = tunnels_of(fleet_run.second, device.name)
        flap = [f for f in tunnel.findings if f.code.value == "SA_FLAPPING"]
        assert flap
    across = [
        f
        for t in fleet_run.second.tunnels
        for f in t.findings
        if f.code.value == "SA_FLAPPING" and f.detail.get("across_runs")
    ]
    assert across and "well before their lifetime" in across[0].summary
    # a problem seen in both runs has lasted two runs
    down = next(t for t in fleet_run.second.tunnels if t.status is TunnelStatus.DOWN)
    age = fleet_run.second.age(down, down.codes[0])
    assert age is not None and age.runs == 2
    assert age.first_seen == fleet_run.first.run.started_at


def test_report_files_are_written(fleet_run: FleetRun) -> None:
    html = (fleet_run.files / "run2.html").read_text()
    ET.fromstring(html.split("\n", 1)[1])  # well-formed
    assert "<svg" in html and 'class="sortable"' in html
    markdown = (fleet_run.files / "run2.md").read_text()
    assert markdown.startswith("# ipsec-doctor audit run 2")
    prom = (fleet_run.files / "run2.prom").read_text()
    assert 'ipsec_doctor_audit_devices{state="unreachable"} 1' in prom
    assert "ipsec_doctor_tunnel_up{" in prom
