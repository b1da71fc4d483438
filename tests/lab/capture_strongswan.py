#!/usr/bin/env python3
"""Capture the strongSwan lab's scenarios as ipsec-doctor capture folders, over real SSH.

For each scenario of shared/lab/strongswan/lab.sh this script

1. runs ``lab.sh scenario NAME`` (reconfigures both gateways, initiates both tunnels from gw1
   and waits until the failure shows: about 13 s for "no answer" scenarios, 30 s for DPD),
2. sends a little traffic from the LAN host behind gw1 through both tunnels while it reads,
3. logs into gw1 and gw2 with netmiko (device type ``linux``, user netops), becomes root with
   ``enable()`` (``sudo -s``) when the plan has privileged commands, and runs the command plan
   of ``ipsec_doctor/platforms/strongswan.yaml``: the ``samples: 2`` commands first, then the
   others in plan order, then, ``--interval`` seconds after the first samples, the second
   samples (the same order as ipsec-doctor's plan runner),
4. writes ``<out>/<scenario>/scenario.yaml`` and ``<out>/<scenario>/<gw>/device.yaml`` plus one
   ``<command>.txt`` (``.2.txt`` for a second sample) per command, named by
   :func:`ipsec_doctor.model.capture.command_filename`, every text redacted by
   :func:`ipsec_doctor.collect.redaction.redact` (``secret = ...`` of swanctl.conf).

Needs root (lab.sh and ``ip netns exec``) and a lab that is up (``lab.sh up``).  Only the
lab's management addresses (203.0.113.0/24) are ever contacted.

Usage (from the repository root, in the venv):
    python tests/lab/capture_strongswan.py                 # all 11 scenarios
    python tests/lab/capture_strongswan.py healthy dpd-teardown --interval 5
    python tests/lab/capture_strongswan.py --no-run healthy   # capture the lab as it is now
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from netmiko import ConnectHandler

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ipsec_doctor.collect.redaction import redact  # noqa: E402
from ipsec_doctor.model.capture import command_filename  # noqa: E402

LAB_SH = Path(os.environ.get("IPSEC_LAB_SH", "/work/shared/lab/strongswan/lab.sh"))
PLAN = REPO / "ipsec_doctor" / "platforms" / "strongswan.yaml"
OUT = REPO / "tests" / "captures" / "strongswan"
LAB_MGMT = ipaddress.ip_network("203.0.113.0/24")

USERNAME = "netops"
PASSWORD = os.environ.get("IPSEC_LAB_PASSWORD", "netops-lab")  # the lab's documented password


@dataclass(frozen=True)
class Gateway:
    name: str
    mgmt: str  # SSH address (management)
    wan: str  # IKE address


GATEWAYS = (
    Gateway("gw1", "203.0.113.2", "198.51.100.1"),
    Gateway("gw2", "203.0.113.6", "198.51.100.129"),
)
PEER_OF = {"gw1": "gw2", "gw2": "gw1"}
CHECKED_PEER = "198.51.100.129"  # gw2's WAN address, checked from gw1

# Traffic from lan1 through the IKEv2 tunnel (lower /26s) and the IKEv1 tunnel (upper /26s)
TRAFFIC = (("192.0.2.10", "192.0.2.140"), ("192.0.2.70", "192.0.2.200"))


@dataclass(frozen=True)
class Expectation:
    first: str
    also: tuple[str, ...] = ()
    must_not: tuple[str, ...] = ()


_PHASE1 = ("PHASE1_PROPOSAL_MISMATCH", "PSK_MISMATCH", "PHASE1_NO_RESPONSE")
EXPECTED: dict[str, Expectation] = {
    "healthy": Expectation(
        "TUNNEL_HEALTHY",
        must_not=(
            *_PHASE1,
            "TRANSFORM_SET_MISMATCH",
            "PROXY_ID_MISMATCH",
            "ONE_WAY_TRAFFIC",
            "NO_TRAFFIC_ENCRYPTED",
            "ISAKMP_DISABLED",
            # every lab scenario has dpd_delay 5s; only a teardown (dpd-teardown) makes it a fault
            "DPD_TOO_AGGRESSIVE",
        ),
    ),
    "psk-mismatch": Expectation(
        "PSK_MISMATCH",
        must_not=(
            "PHASE1_PROPOSAL_MISMATCH",
            "TRANSFORM_SET_MISMATCH",
            "PROXY_ID_MISMATCH",
            "TUNNEL_HEALTHY",
        ),
    ),
    "ike-proposal-mismatch": Expectation(
        "PHASE1_PROPOSAL_MISMATCH",
        must_not=("PSK_MISMATCH", "TRANSFORM_SET_MISMATCH", "PROXY_ID_MISMATCH", "TUNNEL_HEALTHY"),
    ),
    "esp-proposal-mismatch": Expectation(
        "TRANSFORM_SET_MISMATCH",
        must_not=(*_PHASE1, "PROXY_ID_MISMATCH", "TUNNEL_HEALTHY"),
    ),
    "ts-mismatch": Expectation(
        "PROXY_ID_MISMATCH",
        must_not=(*_PHASE1, "TRANSFORM_SET_MISMATCH", "TUNNEL_HEALTHY"),
    ),
    "no-route-to-peer": Expectation(
        "NO_ROUTE_TO_PEER",
        must_not=("PSK_MISMATCH", "PHASE1_PROPOSAL_MISMATCH", "ISAKMP_DISABLED", "TUNNEL_HEALTHY"),
    ),
    "peer-down": Expectation(
        "ISAKMP_DISABLED",
        must_not=("PSK_MISMATCH", "PHASE1_PROPOSAL_MISMATCH", "NO_ROUTE_TO_PEER", "TUNNEL_HEALTHY"),
    ),
    "udp500-blocked": Expectation(
        "PHASE1_NO_RESPONSE",
        must_not=("NO_ROUTE_TO_PEER", "ISAKMP_DISABLED", "PSK_MISMATCH", "TUNNEL_HEALTHY"),
    ),
    "udp4500-blocked": Expectation(
        "PHASE1_NO_RESPONSE",
        must_not=("NO_ROUTE_TO_PEER", "ISAKMP_DISABLED", "PSK_MISMATCH", "TUNNEL_HEALTHY"),
    ),
    "wrong-peer-address": Expectation(
        # gw1's remote_addrs names 198.51.100.130; nothing answers there.  PHASE1_NO_RESPONSE
        # naming the wrong address is the acceptable second reading.
        "PEER_ADDRESS_MISMATCH",
        must_not=("NO_ROUTE_TO_PEER", "PSK_MISMATCH", "ISAKMP_DISABLED", "TUNNEL_HEALTHY"),
    ),
    "dpd-teardown": Expectation(
        "DPD_TOO_AGGRESSIVE",
        must_not=("PSK_MISMATCH", "PHASE1_PROPOSAL_MISMATCH", "TUNNEL_HEALTHY"),
    ),
}
SCENARIOS = tuple(EXPECTED)


# ---------------------------------------------------------------------------------------------
# plan


@dataclass(frozen=True)
class Step:
    id: str
    command: str
    samples: int
    privileged: bool
    read_timeout: float


def load_plan(path: Path) -> list[Step]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    default_timeout = float(data.get("read_timeout", 20))
    return [
        Step(
            id=str(entry["id"]),
            command=" ".join(str(entry["command"]).split()),
            samples=int(entry.get("samples", 1)),
            privileged=bool(entry.get("privileged", False)),
            read_timeout=float(entry.get("read_timeout", default_timeout)),
        )
        for entry in data["commands"]
    ]


# ---------------------------------------------------------------------------------------------
# capture of one gateway


@dataclass
class GatewayCapture:
    gateway: Gateway
    hostname: str = ""
    outputs: dict[tuple[str, int], str] = field(default_factory=dict)  # (command, sample) -> text
    errors: list[str] = field(default_factory=list)


def _lab_address(host: str) -> str:
    if ipaddress.ip_address(host) not in LAB_MGMT:
        raise SystemExit(f"refusing {host}: not a lab management address ({LAB_MGMT})")
    return host


# Sample terminal text: "\x1b[0;1;31mSystem has not been booted with systemd ..." (systemctl colour)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _clean(text: str) -> str:
    """What a terminal shows: no colour codes, no CRs, no blank line left by the echo."""
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).lstrip("\n")
    return text if not text or text.endswith("\n") else text + "\n"


def capture_gateway(gateway: Gateway, steps: Sequence[Step], interval: float) -> GatewayCapture:
    result = GatewayCapture(gateway)
    peer = PEER_OF[gateway.name]
    peer_wan = next(g.wan for g in GATEWAYS if g.name == peer)
    params: dict[str, Any] = {
        "device_type": "linux",
        "host": _lab_address(gateway.mgmt),
        "username": USERNAME,
        "password": PASSWORD,
        "secret": PASSWORD,
        "conn_timeout": 10,
    }
    with ConnectHandler(**params) as conn:
        result.hostname = conn.send_command("hostname").strip()
        if any(step.privileged for step in steps):
            try:
                conn.enable()
            except Exception as exc:  # recorded; privileged commands are still tried
                result.errors.append(f"enable (sudo -s) failed: {exc}")

        def run(step: Step, sample: int) -> None:
            command = step.command.replace("{peer}", peer_wan)
            try:
                raw = conn.send_command(command, read_timeout=step.read_timeout)
            except Exception as exc:
                result.errors.append(f"{command} (sample {sample}): {type(exc).__name__}: {exc}")
                return
            result.outputs[(command, sample)] = redact(_clean(raw), known=(PASSWORD,))

        sampled = [s for s in steps if s.samples > 1]
        for step in sampled:
            run(step, 1)
        first_done = time.monotonic()
        for step in steps:
            if step.samples <= 1:
                run(step, 1)
        wait = interval - (time.monotonic() - first_done)
        if wait > 0:
            time.sleep(wait)
        for step in sampled:
            command = step.command.replace("{peer}", peer_wan)
            if (command, 1) in result.outputs:
                run(step, 2)
    return result


# ---------------------------------------------------------------------------------------------
# lab


def lab(*args: str, log: Path | None = None) -> str:
    proc = subprocess.run(
        [str(LAB_SH), *args],
        check=False,
        capture_output=True,
        text=True,
    )
    if log is not None:
        log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"lab.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def describe(scenario: str) -> str:
    for line in lab("list").splitlines():
        name, _, text = line.partition(" ")
        if name == scenario:
            return text.strip()
    return scenario


def lab_facts() -> dict[str, str]:
    facts = {"backend": "unknown", "strongswan": "unknown", "kernel": os.uname().release}
    try:
        status = lab("status")
    except SystemExit:
        status = ""
    match = re.search(r"^backend:\s+(.*)$", status, re.MULTILINE)
    if match:
        facts["backend"] = match.group(1).strip()
    dpkg = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "strongswan-swanctl"],
        check=False,
        capture_output=True,
        text=True,
    )
    if dpkg.returncode == 0:
        facts["strongswan"] = dpkg.stdout.strip()
    return facts


def start_traffic() -> list[subprocess.Popen[bytes]]:
    """Pings from lan1 through both tunnels while the gateways are read (ended by PID)."""
    procs = []
    for source, target in TRAFFIC:
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    "lan1",
                    "ping",
                    "-q",
                    "-i",
                    "0.5",
                    "-W",
                    "1",
                    "-I",
                    source,
                    target,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


def stop_traffic(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------------------------------------
# writing


def write_scenario(
    out: Path,
    scenario: str,
    description: str,
    facts: dict[str, str],
    captures: Sequence[GatewayCapture],
) -> None:
    folder = out / scenario
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    expectation = EXPECTED[scenario]
    doc: dict[str, Any] = {
        "description": f"strongSwan lab, {scenario}: {description}",
        "peer": CHECKED_PEER,
        "devices": [c.gateway.name for c in captures],
        "expected_first": expectation.first,
    }
    if expectation.also:
        doc["expected_also"] = list(expectation.also)
    if expectation.must_not:
        doc["must_not"] = list(expectation.must_not)
    header = (
        "# Captured from the real strongSwan lab (shared/lab/strongswan, lab.sh scenario "
        f"{scenario})\n"
        f"# by tests/lab/capture_strongswan.py over SSH (netmiko linux, user {USERNAME}).\n"
        f"# IPsec backend: {facts['backend']}; strongSwan {facts['strongswan']} (Debian); "
        f"kernel {facts['kernel']}\n"
        f"# captured: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
    )
    (folder / "scenario.yaml").write_text(
        header + yaml.safe_dump(doc, sort_keys=False, width=100), encoding="utf-8"
    )
    for capture in captures:
        gw_dir = folder / capture.gateway.name
        gw_dir.mkdir()
        device = {
            "platform": "strongswan",
            "hostname": capture.hostname or capture.gateway.name,
            "host": capture.gateway.mgmt,
            "port": 22,
            # the lab's documented, lab-only credentials (shared/lab/strongswan/README.md)
            "username": USERNAME,
            "password": PASSWORD,
            "secret": PASSWORD,
        }
        (gw_dir / "device.yaml").write_text(
            yaml.safe_dump(device, sort_keys=False), encoding="utf-8"
        )
        for (command, sample), text in sorted(capture.outputs.items()):
            (gw_dir / command_filename(command, sample)).write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("scenarios", nargs="*", help=f"default: all ({', '.join(SCENARIOS)})")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--plan", type=Path, default=PLAN)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between two samples")
    ap.add_argument("--no-run", action="store_true", help="do not run lab.sh scenario first")
    ap.add_argument("--no-traffic", action="store_true", help="send no pings while reading")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("capture_strongswan: needs root (lab.sh, ip netns exec)", file=sys.stderr)
        return 2
    scenarios = args.scenarios or list(SCENARIOS)
    if args.scenarios == ["all"]:
        scenarios = list(SCENARIOS)
    unknown = [s for s in scenarios if s not in EXPECTED]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    steps = load_plan(args.plan)
    facts = lab_facts()
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / "capture_strongswan"
    logs.mkdir(parents=True, exist_ok=True)
    failures = 0
    for scenario in scenarios:
        t0 = time.monotonic()
        if not args.no_run:
            lab("scenario", scenario, log=logs / f"{scenario}.log")
        traffic = [] if args.no_traffic else start_traffic()
        try:
            with ThreadPoolExecutor(max_workers=len(GATEWAYS)) as pool:
                captures = list(
                    pool.map(lambda g: capture_gateway(g, steps, args.interval), GATEWAYS)
                )
        finally:
            stop_traffic(traffic)
        write_scenario(args.out, scenario, describe(scenario), facts, captures)
        for capture in captures:
            for error in capture.errors:
                failures += 1
                print(f"  {scenario}/{capture.gateway.name}: {error}", file=sys.stderr)
        print(f"captured {scenario} in {time.monotonic() - t0:.1f} s -> {args.out / scenario}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
