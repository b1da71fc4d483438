#!/usr/bin/env python3
"""Benchmark `ipsec-doctor audit` against N emulated routers, beside a plain netmiko script.

    python benchmarks/audit_bench.py                       # 200 routers, 50 ms per command
    python benchmarks/audit_bench.py --routers 1000 --latency 0.05 --workers 100

What it does (bounded in time: every phase has --timeout seconds, then it is killed):
1. builds a fleet of N routers from the bundled ``healthy`` scenario (N/2 pairs with distinct
   names and addresses, tests/audit/fleet.py; ``--mix`` mixes in the faulty scenarios);
2. starts the emulator (ipsec_doctor.lab) in a separate process -- so it does not share a GIL
   with the audit -- with ``--latency`` seconds added to every command, and writes its
   Nornir inventory;
3. runs the real audit (``python -m ipsec_doctor.cli.main audit --nornir-config ...``) as a
   subprocess, sampling the RSS of its whole process tree (collector processes included);
4. runs a plain netmiko script on the same routers: 100 threads, ``ConnectHandler`` with
   default settings, ``enable()``, ``send_command`` for each of the same commands the audit
   ran on a router (taken from an offline audit of one fleet device);
5. prints routers per second, peak RSS of each process tree, CPU seconds, the audit's time
   against the floor (N x per-router command time / workers, per-router command time =
   commands x latency) and against the plain script.

``--repeat N`` runs the audit and the plain script in turn N times on the same fleet and prints
the medians: each ratio compares an audit with the plain run right after it, so a machine whose
speed drifts (a shared VM can drift by 20 to 40 % within an hour) touches both sides alike.

The audit's time is its run as the history records it (start to finish of the run, which
includes starting collector processes, pairing and pruning); the plain script's is its
thread pool. End-to-end wall times (interpreter start-up included) are printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- /proc sampling of a process tree -------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def _tree(pid: int) -> list[int]:
    children = _children()
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, ()))
    return found


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class TreeMonitor:
    """Peak RSS (sum over the tree) and CPU seconds (max seen per pid) of a process tree."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid = pid
        self.every = every
        self.peak_kib = 0
        self.cpu: dict[int, float] = {}
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            self.processes = max(self.processes, len(pids))
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in pids))
            for p in pids:
                self.cpu[p] = max(self.cpu.get(p, 0.0), _cpu_seconds(p))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def run_monitored(
    command: list[str], timeout: float, **kwargs: Any
) -> tuple[int, float, TreeMonitor, str]:
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    monitor = TreeMonitor(process.pid)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in reversed(_tree(process.pid)):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        out, err = process.communicate()
        err += f"\n(killed after {timeout:.0f} s)"
    wall = time.monotonic() - started
    monitor.stop()
    return process.returncode, wall, monitor, (out or "") + (err or "")


# -- the emulator process ---------------------------------------------------------------------


def serve(fleet_dir: str, inventory_dir: str, latency: float) -> None:
    """``--serve``: run the fleet's emulator until stdin closes."""
    raise_open_files()
    from ipsec_doctor.lab.emulator import DeviceBehaviour, EmulatorLab
    from ipsec_doctor.lab.inventory_writer import write_inventory

    lab = EmulatorLab([fleet_dir], behaviour=DeviceBehaviour(latency=latency))
    lab.start()
    config = write_inventory(lab, inventory_dir, num_workers=100)
    print(f"READY {config}", flush=True)
    sys.stdin.read()
    lab.stop()


# -- the plain netmiko script -----------------------------------------------------------------


def plain(inventory_dir: str, workers: int, commands_file: str) -> None:
    """``--plain``: 100 threads, netmiko defaults, the same commands; prints JSON."""
    raise_open_files()
    from concurrent.futures import ThreadPoolExecutor

    import yaml
    from netmiko import ConnectHandler

    hosts = yaml.safe_load(Path(inventory_dir, "hosts.yaml").read_text())
    commands = json.loads(Path(commands_file).read_text())

    def one(item: tuple[str, dict[str, Any]]) -> str:
        _name, host = item
        try:
            conn = ConnectHandler(
                device_type="cisco_ios",
                host=host["hostname"],
                port=host["port"],
                username=host["username"],
                password=host["password"],
                secret=host["connection_options"]["netmiko"]["extras"]["secret"],
            )
            conn.enable()
            for command in commands:
                conn.send_command(command)
            conn.disconnect()
            return ""
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        errors = [e for e in pool.map(one, hosts.items()) if e]
    seconds = time.monotonic() - started
    print(json.dumps({"seconds": seconds, "errors": len(errors), "first_error": errors[:1]}))


# -- the benchmark ------------------------------------------------------------------------------


def audit_commands(fleet_dir: Path) -> list[str]:
    """The commands the audit runs on one fleet router (offline audit of the first one)."""
    from ipsec_doctor.audit.collector import audit_device
    from ipsec_doctor.collect.base import NoWaitClock
    from ipsec_doctor.collect.file_collector import FileCommandRunner
    from ipsec_doctor.collect.plan_runner import plan_info

    first = sorted(p for p in fleet_dir.iterdir() if p.is_dir())[0]
    info = plan_info("cisco_ios")
    runner = FileCommandRunner(first, device=first.name, wider_patterns=info.wider_patterns)
    audit = audit_device(runner, name=first.name, platform="cisco_ios", clock=NoWaitClock())
    return [c.command for c in audit.commands if c.sample == 1]


def run_seconds(db: Path) -> tuple[float, str]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT started_at, finished_at, status FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    started, finished = datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1])
    return (finished - started).total_seconds(), str(row[2])


def audit_round(
    args: argparse.Namespace,
    config: str,
    env: dict[str, str],
    work: Path,
    command_count: int,
    emulator_pid: int,
) -> float | None:
    """One audit of the fleet with a fresh history; prints its lines, returns routers/s."""
    from tests.audit.fleet import audit_command

    emulator_cpu_start = _cpu_seconds(emulator_pid)
    db = work / "history.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    command = audit_command(
        config, db, args.workers, "--quiet", "--format", "json", "--retention-days", "0"
    )
    if args.processes:
        command += ["--processes", str(args.processes)]
    code, wall, monitor, output = run_monitored(command, args.timeout, env=env)
    emulator_cpu_audit = _cpu_seconds(emulator_pid) - emulator_cpu_start
    if code not in (0, 1):
        print(f"audit failed (exit {code}):\n{output[-3000:]}", file=sys.stderr)
        return None
    seconds, status = run_seconds(db)
    lines = [json.loads(x) for x in output.splitlines() if x.startswith("{")]
    healthy = sum(1 for x in lines if x.get("status") == "healthy")
    per_router = command_count * args.latency
    floor = args.routers * per_router / args.workers
    rate = float(args.routers / seconds)
    print()
    print(
        f"audit:  {args.routers} routers in {seconds:.2f} s = {rate:.1f} routers/s "
        f"(run {status}; {wall:.2f} s end to end); {len(lines)} tunnels, {healthy} healthy"
    )
    print(
        f"        peak RSS of the process tree {monitor.peak_kib / 1024:.0f} MiB "
        f"({monitor.processes} processes); CPU {monitor.cpu_seconds:.1f} s; emulator CPU "
        f"{emulator_cpu_audit:.1f} s"
    )
    print(
        f"        floor {floor:.2f} s (N x {command_count} x {args.latency * 1000:.0f} ms / "
        f"{args.workers}); measured / floor = {seconds / floor:.2f}"
    )
    return rate


def plain_round(
    args: argparse.Namespace, env: dict[str, str], work: Path, emulator_pid: int
) -> float | None:
    """One run of the plain netmiko script; prints its line, returns routers/s."""
    start_cpu = _cpu_seconds(emulator_pid)
    _code, plain_wall, plain_monitor, output = run_monitored(
        [
            sys.executable,
            __file__,
            "--plain",
            str(work / "inventory"),
            "100",
            str(work / "commands.json"),
        ],
        args.timeout,
        env=env,
    )
    plain_emulator = _cpu_seconds(emulator_pid) - start_cpu
    result = json.loads(output.splitlines()[0]) if output.startswith("{") else {}
    if not result:
        print(f"plain script failed:\n{output[-2000:]}", file=sys.stderr)
        return None
    plain_rate = float(args.routers / result["seconds"])
    print(
        f"plain:  {args.routers} routers in {result['seconds']:.2f} s = "
        f"{plain_rate:.1f} routers/s ({plain_wall:.2f} s end to end; "
        f"{result['errors']} errors {result['first_error']}); peak RSS "
        f"{plain_monitor.peak_kib / 1024:.0f} MiB; CPU {plain_monitor.cpu_seconds:.1f} s;"
        f" emulator CPU {plain_emulator:.1f} s"
    )
    return plain_rate


def print_medians(rounds: list[tuple[float, float | None]]) -> None:
    """Medians over the rounds: each ratio is of an audit and the plain run right after it, so
    the machine's drift in speed (large on shared VMs) touches both sides of a ratio alike."""
    audit_rates = [rate for rate, _ in rounds]
    print()
    print(f"median: audit {statistics.median(audit_rates):.1f} routers/s over {len(rounds)} rounds")
    ratios = [rate / plain for rate, plain in rounds if plain]
    if ratios:
        plain_rates = [plain for _, plain in rounds if plain]
        listed = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"        plain {statistics.median(plain_rates):.1f} routers/s; audit / plain "
            f"{statistics.median(ratios):.2f}x (rounds: {listed}; target >= 1.5x)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--routers", type=int, default=200, help="emulated routers (200)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per command (0.05)")
    parser.add_argument("--workers", type=int, default=100, help="concurrent logins (100)")
    parser.add_argument("--processes", type=int, default=None, help="audit collector processes")
    parser.add_argument("--mix", action="store_true", help="mix in faulty scenarios")
    parser.add_argument("--skip-plain", action="store_true", help="do not run the plain script")
    parser.add_argument(
        "--repeat", type=int, default=1, help="audit and plain script in turn, N times (1)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per phase (600)")
    parser.add_argument("--keep", type=Path, help="build the fleet and history here, keep them")
    parser.add_argument(
        "--serve", nargs=3, metavar=("FLEET", "INVENTORY", "LATENCY"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--plain", nargs=3, metavar=("INVENTORY", "WORKERS", "COMMANDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], float(args.serve[2]))
        return 0
    if args.plain:
        plain(args.plain[0], int(args.plain[1]), args.plain[2])
        return 0
    if args.routers < 2 or args.routers > 5000:
        parser.error("--routers must be between 2 and 5000")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    files = raise_open_files()
    from tests.audit.fleet import build_fleet, mixed_scenarios

    work = args.keep or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pairs = args.routers // 2
    scenarios = mixed_scenarios(pairs) if args.mix else ["healthy"] * pairs
    fleet = build_fleet(work / "fleet", scenarios)
    commands = audit_commands(fleet.root)
    (work / "commands.json").write_text(json.dumps(commands))
    print(
        f"fleet: {len(fleet.devices)} routers in {fleet.root}; {len(commands)} commands each; "
        f"latency {args.latency * 1000:.0f} ms; workers {args.workers}; open files {files}; "
        f"cores {os.cpu_count()}"
    )

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    emulator = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(fleet.root),
            str(work / "inventory"),
            str(args.latency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + args.timeout
        line = ""
        while time.monotonic() < deadline and not line.startswith("READY"):
            line = emulator.stdout.readline() if emulator.stdout else ""
            if not line and emulator.poll() is not None:
                print("the emulator did not start", file=sys.stderr)
                return 1
        config = line.split(maxsplit=1)[1].strip()
        rounds: list[tuple[float, float | None]] = []
        for index in range(args.repeat):
            if args.repeat > 1:
                print(f"\nround {index + 1} of {args.repeat}")
            rate = audit_round(args, config, env, work, len(commands), emulator.pid)
            if rate is None:
                return 1
            plain_rate = None
            if not args.skip_plain:
                plain_rate = plain_round(args, env, work, emulator.pid)
                if plain_rate is None:
                    return 1
                ratio = rate / plain_rate
                print(f"ratio:  audit / plain = {ratio:.2f}x routers/s (target >= 1.5x)")
            rounds.append((rate, plain_rate))
        if args.repeat > 1:
            print_medians(rounds)
    finally:
        if emulator.stdin:
            emulator.stdin.close()
        try:
            emulator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            emulator.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
