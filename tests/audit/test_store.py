"""The history store: schema and migrations, WAL, the lock, per-device transactions, retention."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ipsec_doctor.audit.model import DeviceOutcome, RunStatus, TunnelRecord
from ipsec_doctor.audit.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AuditLockedError,
    HistoryStore,
    default_db_path,
    migrate,
    schema_version,
)
from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.findings import Code, make_finding

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def record(
    device: str = "R1", peer: str = "10.2.2.1", code: Code = Code.PSK_MISMATCH
) -> TunnelRecord:
    finding = make_finding(code, device=device, peer=peer, summary=f"{device}: {code.value}")
    return TunnelRecord(device=device, peer=peer, findings=(finding,), facts={"history": "D"})


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "h.sqlite")


def test_new_database_is_wal_and_current(store: HistoryStore) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema_version(store.conn) == SCHEMA_VERSION
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "devices", "tunnels", "silences"} <= tables


def test_default_path_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IPSEC_DOCTOR_AUDIT_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("IPSEC_DOCTOR_AUDIT_DB")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "ipsec-doctor" / "audit.sqlite"


def test_migration_steps_run_in_order_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        run = store.begin_run(started_at=T0)
        store.store_device(run.id, DeviceOutcome("R1"), [record()])

    def v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN operator TEXT NOT NULL DEFAULT ''")

    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, (*MIGRATIONS, (2, v2))) == 2
    assert schema_version(conn) == 2
    assert conn.execute("SELECT operator, started_at FROM runs").fetchone()[0] == ""
    assert conn.execute("SELECT COUNT(*) FROM tunnels").fetchone()[0] == 1
    conn.close()
    with pytest.raises(ConfigError, match="newer than this ipsec-doctor knows"):
        HistoryStore(path)  # version 2 is unknown to this code: refused, not touched


def test_a_failing_migration_step_leaves_the_old_version(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    HistoryStore(path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step failed")

    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(RuntimeError):
        migrate(conn, (*MIGRATIONS, (2, broken)))
    assert schema_version(conn) == 1
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name='half_done'").fetchall()


def test_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable history database"):
        HistoryStore(path)


def test_the_lock_refuses_a_second_audit(store: HistoryStore) -> None:
    with store.lock():
        with pytest.raises(AuditLockedError, match="another audit is running") as info:
            store.lock().acquire()
        assert "pid" in str(info.value)
    with store.lock():  # released: a new run may start
        pass


def test_the_lock_dies_with_its_process(store: HistoryStore) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from ipsec_doctor.audit.store import AuditLock; from pathlib "
            "import Path; AuditLock(Path(sys.argv[1])).acquire(); print('held', flush=True); "
            "time.sleep(60)",
            str(store.lock().path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(AuditLockedError):
        store.lock().acquire()
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 5
    while True:
        try:
            store.lock().acquire().release()
            break
        except AuditLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_forked_collector_does_not_keep_the_lock(store: HistoryStore) -> None:
    """A collector forked by the audit keeps running a moment after its audit was killed:
    the next audit must not find the history locked by it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time; from ipsec_doctor.audit.store import AuditLock; from pathlib "
            "import Path; AuditLock(Path(sys.argv[1])).acquire()\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    time.sleep(60); os._exit(0)\n"
            "print(child, flush=True); time.sleep(60)",
            str(store.lock().path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(AuditLockedError):
            store.lock().acquire()
        holder.kill()  # the audit dies; its forked collector lives on
        holder.wait()
        os.kill(child, 0)  # still there
        deadline = time.monotonic() + 5
        while True:
            try:
                store.lock().acquire().release()
                break
            except AuditLockedError:
                assert time.monotonic() < deadline, "the forked child still holds the lock"
                time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_store_device_writes_a_device_and_its_tunnels(store: HistoryStore) -> None:
    run = store.begin_run(started_at=T0, source="inventory x", filters=["site=ams"])
    store.store_device(run.id, DeviceOutcome("R1", tunnels=2), [record(), record(peer="10.3.3.1")])
    store.store_device(run.id, DeviceOutcome("R1", tunnels=1), [record()])  # replaced
    tunnels = store.tunnels(run.id)
    assert [(t.device, t.peer, t.codes) for t in tunnels] == [("R1", "10.2.2.1", ["PSK_MISMATCH"])]
    assert tunnels[0].findings[0].summary == "R1: PSK_MISMATCH"
    assert tunnels[0].facts == {"history": "D"}
    assert [d.tunnels for d in store.devices(run.id)] == [1]
    assert store.run(run.id) is not None and store.run(run.id).filters == ("site=ams",)  # type: ignore[union-attr]


def test_replace_tunnels_is_atomic(store: HistoryStore) -> None:
    run = store.begin_run(started_at=T0)
    store.store_device(run.id, DeviceOutcome("R1"), [record()])
    store.store_device(run.id, DeviceOutcome("R2"), [record("R2", "10.1.1.1")])
    paired = TunnelRecord("R1", "10.2.2.1", remote="R2", remote_peer="10.1.1.1", paired=True)
    store.replace_tunnels(run.id, [("R1", "10.2.2.1"), ("R2", "10.1.1.1")], [paired])
    assert [(t.device, t.remote, t.paired) for t in store.tunnels(run.id)] == [("R1", "R2", True)]
    with pytest.raises(RuntimeError):  # a write that fails half way changes nothing
        store.replace_tunnels(run.id, [("R1", "10.2.2.1")], [paired, Unwritable("R1", "10.9.9.9")])
    assert len(store.tunnels(run.id)) == 1


class Unwritable(TunnelRecord):
    """A record whose row cannot be built (the failure comes after the DELETE ran)."""

    @property
    def codes(self) -> list[str]:
        raise RuntimeError("cannot serialise")


def test_stale_runs_are_marked_interrupted(store: HistoryStore) -> None:
    first = store.begin_run(started_at=T0)
    assert store.close_stale_runs() == [first.id]
    assert store.run(first.id).status is RunStatus.INTERRUPTED  # type: ignore[union-attr]
    second = store.begin_run(started_at=T0 + timedelta(days=1))
    store.finish_run(second.id)
    assert store.previous_run(second.id + 1) == store.run(second.id)
    assert store.previous_run(second.id).id == first.id  # type: ignore[union-attr]


def test_baselines_are_each_devices_latest_earlier_run(store: HistoryStore) -> None:
    one = store.begin_run(started_at=T0)
    store.store_device(one.id, DeviceOutcome("R1"), [record()])
    store.store_device(one.id, DeviceOutcome("R2"), [record("R2", "10.1.1.1")])
    store.finish_run(one.id)
    two = store.begin_run(started_at=T0 + timedelta(days=1))  # filtered: R1 only
    store.store_device(two.id, DeviceOutcome("R1"), [record(code=Code.TUNNEL_HEALTHY)])
    store.finish_run(two.id)
    three = store.begin_run(started_at=T0 + timedelta(days=2))
    assert store.baseline_runs(three.id) == {"R1": two.id, "R2": one.id}
    found = {(run_id, t.device) for run_id, t in store.baseline_tunnels(three.id)}
    assert found == {(two.id, "R1"), (one.id, "R2")}


def test_prune_deletes_old_runs_with_their_rows(store: HistoryStore) -> None:
    old = store.begin_run(started_at=T0 - timedelta(days=100))
    store.store_device(old.id, DeviceOutcome("R1"), [record()])
    store.finish_run(old.id)
    new = store.begin_run(started_at=T0)
    store.add_silence(peer="10.2.2.1", code="*", until=T0 - timedelta(days=95), reason="old")
    store.add_silence(peer="10.2.2.1", code="*", until=T0 + timedelta(days=5), reason="new")
    assert store.prune(T0 - timedelta(days=90), keep=[new.id]) == 1
    assert store.run(old.id) is None
    assert store.conn.execute("SELECT COUNT(*) FROM tunnels").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0
    assert [s.reason for s in store.silences(include_expired=True)] == ["new"]
    assert store.prune(T0 + timedelta(days=1), keep=[new.id]) == 0  # the current run stays


def test_silences_add_list_remove(store: HistoryStore) -> None:
    silence = store.add_silence(
        peer="10.2.2.1",
        code="PSK_MISMATCH",
        until=T0 + timedelta(days=3),
        reason="RMA",
        device="R1",
        created_by="ops",
    )
    assert silence.id == 1 and silence.until == T0 + timedelta(days=3)
    assert store.silences(now=T0) == [silence]
    assert store.silences(now=T0 + timedelta(days=4)) == []
    assert store.silences(now=T0 + timedelta(days=4), include_expired=True) == [silence]
    assert store.remove_silence(silence.id)
    assert not store.remove_silence(silence.id)


def test_trend_counts_tunnels_by_status(store: HistoryStore) -> None:
    for day, codes in enumerate([(Code.PSK_MISMATCH,), (Code.TUNNEL_HEALTHY,)]):
        run = store.begin_run(started_at=T0 + timedelta(days=day))
        store.store_device(run.id, DeviceOutcome("R1"), [record(code=codes[0])])
        store.finish_run(run.id)
    points = store.trend(10)
    assert [p.run_id for p in points] == [1, 2]
    assert [dict(p.counts) for p in points] == [{"down": 1}, {"healthy": 1}]
    assert points[0].broken == 1


def test_tunnel_history_finds_either_end(store: HistoryStore) -> None:
    run = store.begin_run(started_at=T0)
    paired = TunnelRecord("R1", "10.2.2.1", remote="R2", remote_peer="10.1.1.1", paired=True)
    store.store_device(run.id, DeviceOutcome("R1"), [paired])
    assert [t.device for _, t in store.tunnel_history("10.1.1.1")] == ["R1"]
    assert [t.device for _, t in store.tunnel_history("10.2.2.1", device="R2")] == ["R1"]
    assert store.tunnel_history("10.9.9.9") == []
