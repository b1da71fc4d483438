"""Benchmark: `ipsec-doctor check` against a plain sequential netmiko script.

Starts the bundled lab's two routers (scenario `healthy` by default) in a separate process with
an injected per-command latency (default 50 ms), then times:

1. `ipsec-doctor check --peer 10.2.2.1 --interval 0` through the real Nornir + netmiko path
   (both ends in parallel, one round trip per command), and
2. a plain script that logs into both routers one after the other with netmiko's defaults and
   runs the same commands with `send_command` (default settings: prompt search per command).

Prints both times and the ratio check/plain (target: <= 0.35). Bounded: a few runs each.

Usage: python benchmarks/check_bench.py [--latency 0.05] [--runs 3] [--scenario healthy]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml
from netmiko import ConnectHandler

from ipsec_doctor.cli.main import main as cli_main
from ipsec_doctor.lab.emulator import DeviceBehaviour, run_lab
from ipsec_doctor.lab.inventory_writer import write_inventory
from ipsec_doctor.resources import data_dir


def serve(scenario: Path, latency: float, inventory: Path, pipe: Connection) -> None:
    """Child process: serve the scenario until the parent closes the pipe."""
    with run_lab([scenario], behaviour=DeviceBehaviour(latency=latency)) as lab:
        config = write_inventory(lab, inventory)
        pipe.send(str(config))
        with contextlib.suppress(EOFError):
            pipe.recv()


def time_check(config: str, peer: str) -> tuple[float, dict[str, list[str]]]:
    out = Path(tempfile.mkdtemp()) / "report.json"
    argv = ["check", "--nornir-config", config, "--peer", peer, "--interval", "0", "--quiet",
            "--format", "json"]  # fmt: skip
    stdout = sys.stdout
    started = time.perf_counter()
    with out.open("w") as handle:
        sys.stdout = handle
        try:
            cli_main(argv)
        finally:
            sys.stdout = stdout
    elapsed = time.perf_counter() - started
    document = json.loads(out.read_text())
    commands = {
        d["name"]: [c["command"] for c in d["commands"] if c["outcome"] == "ok"]
        for d in document["devices"]
    }
    return elapsed, commands


def time_plain(config: str, commands: dict[str, list[str]]) -> float:
    hosts: dict[str, Any] = yaml.safe_load((Path(config).parent / "hosts.yaml").read_text())
    started = time.perf_counter()
    for name, host in hosts.items():
        conn = ConnectHandler(
            device_type="cisco_ios",
            host=host["hostname"],
            port=host["port"],
            username=host["username"],
            password=host["password"],
            secret=host["connection_options"]["netmiko"]["extras"]["secret"],
        )
        conn.enable()
        for command in commands.get(name, []):
            conn.send_command(command)
        conn.disconnect()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="healthy")
    parser.add_argument("--peer", default="10.2.2.1")
    args = parser.parse_args()
    scenario = data_dir("scenarios") / args.scenario
    parent, child = multiprocessing.Pipe()
    with tempfile.TemporaryDirectory() as inventory:
        server = multiprocessing.Process(
            target=serve, args=(scenario, args.latency, Path(inventory), child), daemon=True
        )
        server.start()
        config = parent.recv()
        try:
            check_times: list[float] = []
            plain_times: list[float] = []
            commands: dict[str, list[str]] = {}
            for _ in range(args.runs):
                elapsed, commands = time_check(config, args.peer)
                check_times.append(elapsed)
                plain_times.append(time_plain(config, commands))
        finally:
            parent.send("stop")
            server.join(timeout=10)
    check = statistics.median(check_times)
    plain = statistics.median(plain_times)
    count = sum(len(v) for v in commands.values())
    print(f"scenario {args.scenario}, latency {args.latency * 1000:.0f} ms/command, "
          f"{count} commands on {len(commands)} routers, median of {args.runs} runs")  # fmt: skip
    print(f"ipsec-doctor check (parallel, one round trip/command): {check:.2f} s")
    print(f"plain sequential netmiko script (defaults):             {plain:.2f} s")
    print(f"ratio check/plain: {check / plain:.2f}x (target <= 0.35x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
