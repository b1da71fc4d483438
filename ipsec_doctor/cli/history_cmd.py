"""`ipsec-doctor history`: one tunnel over time, or the last audit runs.

Contract: ``history --peer X [--device D]`` prints every stored record of the tunnel(s) with
peer X at either end, newest run first: run, time, status, worst severity, codes and how
long the first problem had lasted; ``--format json`` prints one JSON line per record (the
run plus :meth:`~ipsec_doctor.audit.model.TunnelRecord.to_dict`). Without ``--peer`` it lists
the last runs with their tunnel counts. Exit 0, or 2 when nothing is stored for the peer.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from ipsec_doctor.audit.model import TunnelStatus
from ipsec_doctor.audit.store import HistoryStore, default_db_path
from ipsec_doctor.errors import UsageError
from ipsec_doctor.report.audit_common import duration


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "history",
        help="one tunnel over the audit runs (or the last runs)",
        description="Show how a tunnel (by peer address) did in every stored audit run.",
    )
    parser.add_argument("--peer", help="the peer address (either end of the tunnel)")
    parser.add_argument("--device", help="only tunnels of this device")
    parser.add_argument("--limit", type=int, default=50, help="rows to show (50)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="the history database (default: $IPSEC_DOCTOR_AUDIT_DB or "
        "~/.local/state/ipsec-doctor/audit.sqlite)",
    )
    parser.set_defaults(func=run)


def _age(since: str | None, started: datetime) -> str:
    if not since:
        return ""
    return duration((started - datetime.fromisoformat(since)).total_seconds())


def run(args: argparse.Namespace) -> int:
    path = Path(args.db) if args.db else default_db_path()
    if not path.exists():
        raise UsageError(f"{path}: no audit history yet (run `ipsec-doctor audit` first)")
    with HistoryStore(path) as store:
        if not args.peer:
            return _runs(store, args)
        rows = store.tunnel_history(args.peer.strip(), args.device, limit=args.limit)
    if not rows:
        raise UsageError(f"no audit record of a tunnel with peer {args.peer}")
    if args.format == "json":
        for run_info, record in rows:
            print(json.dumps({"run": run_info.to_dict(), **record.to_dict()}, default=str))
        return 0
    print(f"Tunnel history for peer {args.peer} ({len(rows)} records, newest first):")
    print(f"{'run':>5}  {'started (UTC)':16}  {'status':11} {'worst':8} tunnel / codes")
    for run_info, record in rows:
        since = record.facts.get("since") or {}
        first = record.codes[0] if record.codes else ""
        age = _age(since.get(first), run_info.started_at) if first else ""
        codes = ", ".join(record.codes) or "-"
        print(
            f"{run_info.id:>5}  {run_info.started_at:%Y-%m-%d %H:%M}  {record.status.value:11} "
            f"{record.worst.value:8} {record.label}: {codes}"
            + (f" (for {age})" if age and record.status is not TunnelStatus.HEALTHY else "")
        )
        for silenced in record.silenced:
            print(f"{'':36}silenced {silenced.finding.code.value}: {silenced.reason}")
    return 0


def _runs(store: HistoryStore, args: argparse.Namespace) -> int:
    runs = store.runs(args.limit)
    if not runs:
        print("no audit runs stored")
        return 0
    points = {p.run_id: p for p in store.trend(len(runs))}
    if args.format == "json":
        for r in runs:
            counts = dict(points[r.id].counts) if r.id in points else {}
            print(json.dumps({**r.to_dict(), "tunnels": counts}))
        return 0
    print(f"{'run':>5}  {'started (UTC)':16}  {'status':11} {'took':>8}  tunnels")
    for r in runs:
        point = points.get(r.id)
        text = ", ".join(f"{n} {s}" for s, n in sorted(point.counts.items())) if point else ""
        took = duration(r.duration) if r.duration is not None else "-"
        print(f"{r.id:>5}  {r.started_at:%Y-%m-%d %H:%M}  {r.status.value:11} {took:>8}  {text}")
    return 0
