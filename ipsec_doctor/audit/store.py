"""The audit history: one SQLite file (WAL), versioned schema, a lock, retention and silences.

Contract:
- :class:`HistoryStore` opens (creating) the database, switches it to WAL with
  ``synchronous=NORMAL`` (a committed transaction survives the process being killed) and
  brings the schema to :data:`SCHEMA_VERSION` with :func:`migrate`: ``PRAGMA user_version``
  holds the version, each migration step runs in its own transaction, and a database newer
  than this code is refused (:class:`~ipsec_doctor.errors.ConfigError`, never touched).
- Every write is one transaction: :meth:`HistoryStore.store_device` writes a device and all
  its tunnels at once as the device's result arrives, so a killed audit keeps every device it
  had finished; :meth:`HistoryStore.replace_tunnels` swaps rows when both ends are paired.
- :meth:`HistoryStore.lock` is an exclusive ``fcntl.flock`` on ``<db>.lock`` (holding the
  owner's pid and start time); a second audit on the same database gets
  :class:`AuditLockedError` at once. The kernel drops the lock when its process dies, so a
  SIGKILLed audit never blocks the next one; the next run marks the killed run
  ``interrupted`` (:meth:`HistoryStore.close_stale_runs`).
- :meth:`HistoryStore.prune` deletes runs (with their devices and tunnels) that started before
  a cut-off, and silences that expired before it.
- Times are stored as ISO 8601 UTC text. Findings are stored as their JSON dicts
  (:meth:`~ipsec_doctor.model.findings.Finding.to_dict`), read back with
  :func:`~ipsec_doctor.model.report.finding_from_dict`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ipsec_doctor.audit.model import (
    DeviceOutcome,
    RunInfo,
    RunStatus,
    Silence,
    SilencedFinding,
    TrendPoint,
    TunnelRecord,
)
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.report import finding_from_dict

ENV_DB = "IPSEC_DOCTOR_AUDIT_DB"


def default_db_path() -> Path:
    """``$IPSEC_DOCTOR_AUDIT_DB``, else ``$XDG_STATE_HOME/ipsec-doctor/audit.sqlite``
    (``~/.local/state/ipsec-doctor/audit.sqlite``)."""
    configured = os.environ.get(ENV_DB)
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ipsec-doctor" / "audit.sqlite"


class AuditLockedError(UsageError):
    """Another audit holds the lock of this history database."""


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- schema -------------------------------------------------------------------------------------


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``script`` statement by statement (``executescript`` would commit the migration's
    transaction half way)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            filters TEXT NOT NULL DEFAULT '[]',
            tool_version TEXT NOT NULL DEFAULT '',
            pid INTEGER,
            host TEXT NOT NULL DEFAULT '',
            devices_total INTEGER NOT NULL DEFAULT 0,
            options TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX runs_started ON runs (started_at);
        CREATE TABLE devices (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            device TEXT NOT NULL,
            platform TEXT NOT NULL DEFAULT '',
            host TEXT NOT NULL DEFAULT '',
            hostname TEXT NOT NULL DEFAULT '',
            reachable INTEGER NOT NULL,
            error TEXT NOT NULL DEFAULT '',
            commands_ok INTEGER NOT NULL DEFAULT 0,
            commands_failed INTEGER NOT NULL DEFAULT 0,
            elapsed REAL NOT NULL DEFAULT 0,
            addresses TEXT NOT NULL DEFAULT '[]',
            tunnels INTEGER NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT '',
            stored_at TEXT NOT NULL,
            PRIMARY KEY (run_id, device)
        );
        CREATE INDEX devices_by_name ON devices (device, run_id);
        CREATE TABLE tunnels (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            device TEXT NOT NULL,
            peer TEXT NOT NULL,
            remote TEXT NOT NULL DEFAULT '',
            remote_peer TEXT NOT NULL DEFAULT '',
            paired INTEGER NOT NULL DEFAULT 0,
            observed INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL,
            worst TEXT NOT NULL,
            codes TEXT NOT NULL DEFAULT '[]',
            findings TEXT NOT NULL DEFAULT '[]',
            silenced TEXT NOT NULL DEFAULT '[]',
            local_address TEXT NOT NULL DEFAULT '',
            sources TEXT NOT NULL DEFAULT '[]',
            facts TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (run_id, device, peer)
        );
        CREATE INDEX tunnels_by_end ON tunnels (device, peer, run_id);
        CREATE INDEX tunnels_by_far_end ON tunnels (remote, remote_peer, run_id);
        CREATE INDEX tunnels_by_peer ON tunnels (peer, run_id);
        CREATE TABLE silences (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            peer TEXT NOT NULL,
            device TEXT NOT NULL DEFAULT '',
            code TEXT NOT NULL,
            until TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL DEFAULT ''
        );
        """,
    )


Migration = tuple[int, Callable[[sqlite3.Connection], None]]

#: (version, step) in ascending order; a step brings the schema from version-1 to version.
MIGRATIONS: tuple[Migration, ...] = ((1, _v1),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    where: str = "history database",
) -> int:
    """Apply the steps newer than the database's version, each in its own transaction.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Returns the new version.
    A database whose version is higher than the last step is refused with ConfigError.
    """
    current = schema_version(conn)
    latest = migrations[-1][0] if migrations else 0
    if current > latest:
        raise ConfigError(
            f"{where}: schema version {current} is newer than this ipsec-doctor knows "
            f"({latest}); upgrade ipsec-doctor or use another --db"
        )
    for version, step in migrations:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = version
    return current


# -- the lock -----------------------------------------------------------------------------------

#: Descriptors of the locks this process holds: a forked collector closes its copies, so the
#: lock is released when the audit that took it ends, even while a collector lingers.
_HELD_LOCKS: set[int] = set()


def _forget_locks_in_child() -> None:
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_child)


@dataclass
class AuditLock:
    """An exclusive flock on ``<db>.lock``; released on exit or when the process dies."""

    path: Path
    _fd: int = -1

    def acquire(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise AuditLockedError(
                f"another audit is running on this history ({self.path}"
                + (f": {holder}" if holder else "")
                + "); overlapping runs are refused"
            ) from None
        os.ftruncate(fd, 0)
        stamp = f"pid {os.getpid()} on {socket.gethostname()} since {_now():%Y-%m-%d %H:%M:%S} UTC"
        os.pwrite(fd, stamp.encode(), 0)
        self._fd = fd
        _HELD_LOCKS.add(fd)
        return self

    def release(self) -> None:
        if self._fd >= 0:
            _HELD_LOCKS.discard(self._fd)
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


# -- the store ----------------------------------------------------------------------------------


_TUNNEL_COLUMNS = (
    "run_id, device, peer, remote, remote_peer, paired, observed, status, worst, codes, "
    "findings, silenced, local_address, sources, facts"
)


def _tunnel_row(run_id: int, t: TunnelRecord) -> tuple[Any, ...]:
    return (
        run_id,
        t.device,
        t.peer,
        t.remote,
        t.remote_peer,
        int(t.paired),
        int(t.observed),
        t.status.value,
        t.worst.value,
        json.dumps(t.codes),
        json.dumps([f.to_dict() for f in t.findings], separators=(",", ":")),
        json.dumps([s.to_dict() for s in t.silenced], separators=(",", ":")),
        t.local_address,
        json.dumps(list(t.sources)),
        json.dumps(dict(t.facts), separators=(",", ":"), default=str),
    )


def _tunnel_from_row(row: sqlite3.Row) -> TunnelRecord:
    return TunnelRecord(
        device=row["device"],
        peer=row["peer"],
        remote=row["remote"],
        remote_peer=row["remote_peer"],
        paired=bool(row["paired"]),
        observed=bool(row["observed"]),
        findings=tuple(finding_from_dict(f) for f in json.loads(row["findings"])),
        silenced=tuple(SilencedFinding.from_dict(s) for s in json.loads(row["silenced"])),
        local_address=row["local_address"],
        sources=tuple(json.loads(row["sources"])),
        facts=json.loads(row["facts"]),
    )


def _run_from_row(row: sqlite3.Row) -> RunInfo:
    started = _dt(row["started_at"])
    assert started is not None
    return RunInfo(
        id=int(row["id"]),
        started_at=started,
        finished_at=_dt(row["finished_at"]),
        status=RunStatus(row["status"]),
        source=row["source"],
        filters=tuple(json.loads(row["filters"])),
        tool_version=row["tool_version"],
        devices_total=int(row["devices_total"]),
    )


def _silence_from_row(row: sqlite3.Row) -> Silence:
    until = _dt(row["until"])
    assert until is not None
    return Silence(
        id=int(row["id"]),
        peer=row["peer"],
        device=row["device"],
        code=row["code"],
        until=until,
        reason=row["reason"],
        created_at=_dt(row["created_at"]),
        created_by=row["created_by"],
    )


class HistoryStore:
    """The audit history database (see the module contract)."""

    def __init__(self, path: Path | str, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            migrate(self.conn, where=str(self.path))
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not a usable history database: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def lock(self) -> AuditLock:
        """The lock against overlapping runs (use as a context manager)."""
        return AuditLock(self.path.with_name(self.path.name + ".lock"))

    # -- runs ----------------------------------------------------------------------------------
    def begin_run(
        self,
        *,
        started_at: datetime | None = None,
        source: str = "",
        filters: Sequence[str] = (),
        tool_version: str = "",
        devices_total: int = 0,
        options: dict[str, Any] | None = None,
    ) -> RunInfo:
        started = started_at or _now()
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (started_at, status, source, filters, tool_version, pid, host,"
                " devices_total, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _ts(started),
                    RunStatus.RUNNING.value,
                    source,
                    json.dumps(list(filters)),
                    tool_version,
                    os.getpid(),
                    socket.gethostname(),
                    devices_total,
                    json.dumps(options or {}, default=str),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
        found = self.run(run_id)
        assert found is not None
        return found

    def finish_run(
        self,
        run_id: int,
        status: RunStatus = RunStatus.COMPLETE,
        finished_at: datetime | None = None,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status.value, _ts(finished_at or _now()), run_id),
            )

    def close_stale_runs(self) -> list[int]:
        """Mark runs still ``running`` as ``interrupted`` (call while holding the lock)."""
        with self.transaction() as conn:
            ids = [
                int(r["id"])
                for r in conn.execute("SELECT id FROM runs WHERE status = ?", ("running",))
            ]
            conn.execute(
                "UPDATE runs SET status = ? WHERE status = ?",
                (RunStatus.INTERRUPTED.value, RunStatus.RUNNING.value),
            )
        return ids

    def run(self, run_id: int) -> RunInfo | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_from_row(row) if row else None

    def runs(self, limit: int = 50) -> list[RunInfo]:
        """The latest runs, newest first."""
        rows = self.conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [_run_from_row(r) for r in rows]

    def previous_run(self, run_id: int) -> RunInfo | None:
        """The latest finished (complete or interrupted) run before ``run_id``."""
        row = self.conn.execute(
            "SELECT * FROM runs WHERE id < ? AND status != ? ORDER BY id DESC LIMIT 1",
            (run_id, RunStatus.RUNNING.value),
        ).fetchone()
        return _run_from_row(row) if row else None

    # -- results -------------------------------------------------------------------------------
    def store_device(
        self, run_id: int, outcome: DeviceOutcome, tunnels: Sequence[TunnelRecord]
    ) -> None:
        """Write one device and its tunnels in one transaction (replacing earlier rows)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO devices (run_id, device, platform, host, hostname, "
                "reachable, error, commands_ok, commands_failed, elapsed, addresses, tunnels, "
                "note, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    outcome.name,
                    outcome.platform,
                    outcome.host,
                    outcome.hostname,
                    int(outcome.reachable),
                    outcome.error,
                    outcome.commands_ok,
                    outcome.commands_failed,
                    outcome.elapsed,
                    json.dumps(list(outcome.addresses)),
                    outcome.tunnels,
                    outcome.note,
                    _ts(_now()),
                ),
            )
            conn.execute(
                "DELETE FROM tunnels WHERE run_id = ? AND device = ?", (run_id, outcome.name)
            )
            conn.executemany(
                f"INSERT OR REPLACE INTO tunnels ({_TUNNEL_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_tunnel_row(run_id, t) for t in tunnels],
            )

    def replace_tunnels(
        self,
        run_id: int,
        remove: Iterable[tuple[str, str]],
        add: Sequence[TunnelRecord],
    ) -> None:
        """Delete the ``(device, peer)`` rows of ``remove`` and write ``add``, atomically."""
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM tunnels WHERE run_id = ? AND device = ? AND peer = ?",
                [(run_id, device, peer) for device, peer in remove],
            )
            conn.executemany(
                f"INSERT OR REPLACE INTO tunnels ({_TUNNEL_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_tunnel_row(run_id, t) for t in add],
            )

    def tunnels(self, run_id: int) -> list[TunnelRecord]:
        rows = self.conn.execute(
            "SELECT * FROM tunnels WHERE run_id = ? ORDER BY device, peer", (run_id,)
        )
        return [_tunnel_from_row(r) for r in rows]

    def devices(self, run_id: int) -> list[DeviceOutcome]:
        rows = self.conn.execute(
            "SELECT * FROM devices WHERE run_id = ? ORDER BY device", (run_id,)
        )
        return [
            DeviceOutcome(
                name=r["device"],
                platform=r["platform"],
                host=r["host"],
                hostname=r["hostname"],
                reachable=bool(r["reachable"]),
                error=r["error"],
                commands_ok=int(r["commands_ok"]),
                commands_failed=int(r["commands_failed"]),
                elapsed=float(r["elapsed"]),
                addresses=tuple(json.loads(r["addresses"])),
                tunnels=int(r["tunnels"]),
                note=r["note"],
            )
            for r in rows
        ]

    def device_names(self, run_id: int) -> set[str]:
        rows = self.conn.execute("SELECT device FROM devices WHERE run_id = ?", (run_id,))
        return {str(r["device"]) for r in rows}

    def baseline_runs(self, before: int) -> dict[str, int]:
        """device -> the latest finished run before ``before`` that stored it."""
        rows = self.conn.execute(
            "SELECT d.device AS device, MAX(d.run_id) AS run_id FROM devices d "
            "JOIN runs r ON r.id = d.run_id WHERE d.run_id < ? AND r.status != ? "
            "GROUP BY d.device",
            (before, RunStatus.RUNNING.value),
        )
        return {str(r["device"]): int(r["run_id"]) for r in rows}

    def baseline_tunnels(self, before: int) -> list[tuple[int, TunnelRecord]]:
        """The tunnels of every device's baseline run (see :meth:`baseline_runs`).

        A tunnel row of a pair is stored under one end; it belongs to the baseline of the
        device it is stored under. Returns ``(run_id, record)`` pairs.
        """
        baselines = self.baseline_runs(before)
        by_run: dict[int, set[str]] = {}
        for device, run_id in baselines.items():
            by_run.setdefault(run_id, set()).add(device)
        found: list[tuple[int, TunnelRecord]] = []
        for run_id, devices in sorted(by_run.items()):
            for row in self.conn.execute("SELECT * FROM tunnels WHERE run_id = ?", (run_id,)):
                if row["device"] in devices:
                    found.append((run_id, _tunnel_from_row(row)))
        return found

    def tunnel_history(
        self, peer: str, device: str | None = None, limit: int = 100
    ) -> list[tuple[RunInfo, TunnelRecord]]:
        """Rows of tunnels with ``peer`` at either end, newest run first."""
        query = (
            "SELECT t.*, r.id AS id, r.started_at AS started_at, r.finished_at AS finished_at,"
            " r.status AS run_status, r.source AS source, r.filters AS filters,"
            " r.tool_version AS tool_version, r.devices_total AS devices_total"
            " FROM tunnels t JOIN runs r ON r.id = t.run_id"
            " WHERE (t.peer = ? OR t.remote_peer = ?)"
        )
        params: list[Any] = [peer, peer]
        if device:
            query += " AND (t.device = ? OR t.remote = ?)"
            params += [device, device]
        query += " ORDER BY t.run_id DESC, t.device LIMIT ?"
        params.append(limit)
        out: list[tuple[RunInfo, TunnelRecord]] = []
        for row in self.conn.execute(query, params):
            started = _dt(row["started_at"])
            assert started is not None
            run = RunInfo(
                id=int(row["id"]),
                started_at=started,
                finished_at=_dt(row["finished_at"]),
                status=RunStatus(row["run_status"]),
                source=row["source"],
                filters=tuple(json.loads(row["filters"])),
                tool_version=row["tool_version"],
                devices_total=int(row["devices_total"]),
            )
            out.append((run, _tunnel_from_row(row)))
        return out

    def trend(self, limit: int = 30, up_to: int | None = None) -> list[TrendPoint]:
        """Tunnel counts by status for the last ``limit`` runs (oldest first)."""
        bound = up_to if up_to is not None else 2**62
        runs = self.conn.execute(
            "SELECT id, started_at FROM runs WHERE id <= ? ORDER BY id DESC LIMIT ?",
            (bound, limit),
        ).fetchall()
        points: list[TrendPoint] = []
        for run in reversed(runs):
            counts = {
                str(r["status"]): int(r["n"])
                for r in self.conn.execute(
                    "SELECT status, COUNT(*) AS n FROM tunnels WHERE run_id = ? GROUP BY status",
                    (run["id"],),
                )
            }
            started = _dt(run["started_at"])
            assert started is not None
            points.append(TrendPoint(run_id=int(run["id"]), started_at=started, counts=counts))
        return points

    # -- retention -----------------------------------------------------------------------------
    def prune(self, before: datetime, keep: Iterable[int] = ()) -> int:
        """Delete runs started before ``before`` (not ``keep``, never a running one) and
        silences that expired before it. Returns the number of runs deleted."""
        kept = sorted(set(keep))
        marks = ",".join("?" for _ in kept) or "NULL"
        with self.transaction() as conn:
            cursor = conn.execute(
                f"DELETE FROM runs WHERE started_at < ? AND status != ? AND id NOT IN ({marks})",
                (_ts(before), RunStatus.RUNNING.value, *kept),
            )
            conn.execute("DELETE FROM silences WHERE until < ?", (_ts(before),))
        return int(cursor.rowcount)

    # -- silences ------------------------------------------------------------------------------
    def add_silence(
        self,
        *,
        peer: str,
        code: str,
        until: datetime,
        reason: str,
        device: str = "",
        created_by: str = "",
    ) -> Silence:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO silences (peer, device, code, until, reason, created_at, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (peer, device, code, _ts(until), reason, _ts(_now()), created_by),
            )
            silence_id = int(cursor.lastrowid or 0)
        row = self.conn.execute("SELECT * FROM silences WHERE id = ?", (silence_id,)).fetchone()
        return _silence_from_row(row)

    def silences(
        self, *, now: datetime | None = None, include_expired: bool = False
    ) -> list[Silence]:
        rows = self.conn.execute("SELECT * FROM silences ORDER BY id")
        found = [_silence_from_row(r) for r in rows]
        if include_expired:
            return found
        moment = now or _now()
        return [s for s in found if s.active(moment)]

    def remove_silence(self, silence_id: int) -> bool:
        with self.transaction() as conn:
            cursor = conn.execute("DELETE FROM silences WHERE id = ?", (silence_id,))
        return cursor.rowcount > 0
