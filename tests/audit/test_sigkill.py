"""SIGKILL the real `ipsec-doctor audit` mid-run: finished devices stay stored, the next run works.

The emulated routers answer slowly (latency per command) so the audit is still collecting
when it is killed; the test waits until some devices are in the history, kills the audit's
main process with SIGKILL (no handler runs), and checks the database: intact, every stored
device complete with its tunnels (each device is one transaction), the collector processes
gone (they watch their parent), the lock free. A second audit then runs to the end and marks
the killed run ``interrupted``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from ipsec_doctor.audit.store import HistoryStore
from tests.audit.fleet import audit_command, build_fleet, serving

pytestmark = pytest.mark.ssh

ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), ()):
            found.add(child)
            pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0])
    except sqlite3.Error:
        return 0


def _audit(config: Path, db: Path) -> list[str]:
    return audit_command(config, db, 6, "--processes", "2", "--quiet")


def test_sigkill_keeps_finished_devices_and_the_next_run_works(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path / "fleet", ["healthy"] * 10)
    db = tmp_path / "history.sqlite"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with serving(fleet, tmp_path / "inventory", latency=0.12) as config:
        process = subprocess.Popen(
            _audit(config, db),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        collectors: set[int] = set()
        while _stored(db) < 5:
            assert process.poll() is None, "the audit ended before it could be killed"
            assert time.monotonic() < deadline, "no device was stored in time"
            collectors |= _descendants(process.pid)
            time.sleep(0.1)
        collectors |= _descendants(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        stored_at_kill = _stored(db)
        assert stored_at_kill < len(fleet.devices), "the audit finished before the kill"

        # the collector processes notice their parent is gone and stop
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in collectors) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in collectors if _alive(pid)]

        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            runs = conn.execute("SELECT id, status FROM runs").fetchall()
            assert runs == [(1, "running")]
            devices = conn.execute("SELECT device, tunnels FROM devices WHERE run_id = 1")
            rows = {name: count for name, count in devices}
            assert len(rows) >= 5
            for name, count in rows.items():
                stored = conn.execute(
                    "SELECT COUNT(*) FROM tunnels WHERE run_id = 1 AND device = ?", (name,)
                ).fetchone()[0]
                assert count == stored == 1, name  # a device and its tunnels, all or nothing

        again = subprocess.run(
            _audit(config, db), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "interrupted" in again.stdout  # the note about run 1
    with HistoryStore(db) as store:
        runs = {r.id: r.status.value for r in store.runs()}
        assert runs == {1: "interrupted", 2: "complete"}
        assert len(store.devices(2)) == len(fleet.devices)
        assert len(store.devices(1)) == len(rows)
