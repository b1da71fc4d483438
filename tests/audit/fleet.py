"""Build emulated fleets from the bundled scenarios: N routers with distinct names and addresses.

Contract:
- :func:`build_fleet` copies the device folders of bundled scenarios (``<scenario>/R1`` and
  ``R2``) into ``target/<name>/`` once per pair, renaming each device and rewriting its WAN
  addresses so every pair is distinct: ``10.1.1.x`` (R1's side) and ``10.2.2.x`` (R2's side)
  become two /24s of ``10.64.0.0/10`` unique to the pair, in file contents and file names
  (``show_ip_route_10.2.2.1.txt``). LAN addresses stay shared; they never identify a device.
- :class:`Fleet` says which device came from which scenario and role, the pair's addresses,
  and which devices carry an injected fault (``refuse_login``, ``hang_on``, ``drop_on``,
  ``invalid``: a command answered with ``% Invalid input``). :meth:`Fleet.behaviours` gives the
  :class:`~ipsec_doctor.lab.emulator.DeviceBehaviour` for the emulator.
- :func:`serving` runs a fleet's emulator in a separate process (``python -m
  tests.audit.fleet FLEET INVENTORY LATENCY``, faults read from a JSON file beside the fleet)
  and yields the Nornir config of its inventory, so the audit under test does not share a GIL
  with the emulated routers.
- Used by the audit tests and by ``benchmarks/audit_bench.py``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ipsec_doctor.lab.emulator import DeviceBehaviour
from ipsec_doctor.resources import data_dir

SCENARIOS_ROOT = data_dir("scenarios")

#: Scenarios whose two routers make a tunnel pair (the one-device remote-access ones do not).
PAIR_SCENARIOS: tuple[str, ...] = tuple(
    sorted(
        p.name
        for p in SCENARIOS_ROOT.iterdir()
        if (p / "R1" / "device.yaml").is_file() and (p / "R2" / "device.yaml").is_file()
    )
)

# Sample text: "set peer 10.2.2.1", "10.1.1.1        QM_IDLE", "show_ip_route_10.2.2.1.txt"
_SIDE_A = re.compile(r"(?<![\d.])10\.1\.1\.(\d{1,3})(?![\d])")
_SIDE_B = re.compile(r"(?<![\d.])10\.2\.2\.(\d{1,3})(?![\d])")
# Other WAN addresses some scenarios use (R1's second interface, a third peer)
# Sample text: "ip address 10.1.3.1 255.255.255.0", "set peer 10.3.3.1"
_OTHER = re.compile(r"(?<![\d.])10\.(1\.3|2\.3|3\.3)\.(\d{1,3})(?![\d])")

#: The command a device with the ``invalid`` fault refuses (its file is removed).
INVALID_COMMAND_FILE = "show_crypto_isakmp_sa"


def audit_command(config: Path | str, db: Path, workers: int, *options: str) -> list[str]:
    """The real audit command line (``python -m ipsec_doctor.cli.main audit``) over a fleet's
    Nornir config and a history database, with ``workers`` sessions and any further options."""
    return [
        sys.executable,
        "-m",
        "ipsec_doctor.cli.main",
        "audit",
        "--nornir-config",
        str(config),
        "--db",
        str(db),
        "--workers",
        str(workers),
        *options,
    ]


def pair_prefixes(index: int) -> tuple[str, str]:
    """The two /24 prefixes (without the last octet) of pair ``index``: R1 side, R2 side."""
    a, b = 2 * index, 2 * index + 1
    return f"10.{64 + a // 256}.{a % 256}", f"10.{64 + b // 256}.{b % 256}"


@dataclass(frozen=True)
class FleetDevice:
    name: str
    scenario: str
    role: str  # R1 | R2
    pair: int
    address: str  # the WAN (crypto endpoint) address
    peer: str  # the address of the other end
    fault: str = ""  # "", refuse_login, hang_on, drop_on, invalid


@dataclass
class Fleet:
    root: Path
    devices: dict[str, FleetDevice] = field(default_factory=dict)
    hang_command: str = "show crypto ipsec sa"
    drop_command: str = "show crypto isakmp policy"

    def behaviours(self, latency: float = 0.0) -> dict[str, DeviceBehaviour]:
        out: dict[str, DeviceBehaviour] = {}
        for name, device in self.devices.items():
            behaviour = DeviceBehaviour(latency=latency)
            if device.fault == "refuse_login":
                behaviour.refuse_login = True
            elif device.fault == "hang_on":
                behaviour.hang_on = self.hang_command
            elif device.fault == "drop_on":
                behaviour.drop_on = self.drop_command
            out[name] = behaviour
        return out

    def faulty(self, fault: str) -> list[str]:
        return sorted(n for n, d in self.devices.items() if d.fault == fault)

    def by_scenario(self, scenario: str) -> list[FleetDevice]:
        return [d for d in self.devices.values() if d.scenario == scenario]


def _other_prefix(side_a: str, which: str) -> str:
    """A /24 unique to the pair for ``10.1.3``, ``10.2.3`` or ``10.3.3`` (in 10.128.0.0/9)."""
    _ten, second, third = side_a.split(".")
    index = (int(second) - 64) * 256 + int(third)  # 2 x the pair's index
    slot = 3 * (index // 2) + ("1.3", "2.3", "3.3").index(which)
    return f"10.{128 + slot // 256}.{slot % 256}"


def _rewrite(text: str, side_a: str, side_b: str) -> str:
    text = _SIDE_A.sub(lambda m: f"{side_a}.{m.group(1)}", text)
    text = _SIDE_B.sub(lambda m: f"{side_b}.{m.group(1)}", text)
    return _OTHER.sub(lambda m: f"{_other_prefix(side_a, m.group(1))}.{m.group(2)}", text)


def _copy_device(source: Path, target: Path, name: str, side_a: str, side_b: str) -> None:
    target.mkdir(parents=True)
    old_hostname = ""
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if path.name == "device.yaml":
            data = yaml.safe_load(text) or {}
            old_hostname = str(data.get("hostname") or source.name)
            data["hostname"] = name
            data["addresses"] = [
                _rewrite(str(a), side_a, side_b) for a in data.get("addresses") or ()
            ]
            (target / "device.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
            continue
        text = _rewrite(text, side_a, side_b)
        (target / _rewrite(path.name, side_a, side_b)).write_text(text, encoding="utf-8")
    if old_hostname:  # "hostname R1" in the config, "R1#show ..." echo lines
        for path in target.glob("*.txt"):
            text = path.read_text(encoding="utf-8")
            new = re.sub(rf"(?m)^hostname {re.escape(old_hostname)}$", f"hostname {name}", text)
            new = re.sub(rf"(?m)^{re.escape(old_hostname)}([#>])", rf"{name}\1", new)
            if new != text:
                path.write_text(new, encoding="utf-8")


def build_fleet(
    target: Path,
    scenarios: Sequence[str],
    *,
    faults: Iterable[tuple[int, str, str]] = (),
    prefix: str = "rtr",
) -> Fleet:
    """Copy one pair of routers per entry of ``scenarios`` into ``target`` (see module contract).

    ``faults`` lists ``(pair index, role, fault)``; the device keeps its scenario's outputs
    and gets the fault on top. Device names are ``<prefix><pair:04d>a`` (R1) and ``...b`` (R2).
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    fault_of = {(index, role): fault for index, role, fault in faults}
    fleet = Fleet(root=target)
    for index, scenario in enumerate(scenarios):
        side_a, side_b = pair_prefixes(index)
        for role, suffix in (("R1", "a"), ("R2", "b")):
            name = f"{prefix}{index:04d}{suffix}"
            source = SCENARIOS_ROOT / scenario / role
            _copy_device(source, target / name, name, side_a, side_b)
            fault = fault_of.get((index, role), "")
            if fault == "invalid":
                for path in (target / name).glob(f"{INVALID_COMMAND_FILE}*.txt"):
                    path.unlink()
            own, other = (side_a, side_b) if role == "R1" else (side_b, side_a)
            fleet.devices[name] = FleetDevice(
                name=name,
                scenario=scenario,
                role=role,
                pair=index,
                address=f"{own}.1",
                peer=f"{other}.1",
                fault=fault,
            )
    return fleet


def mixed_scenarios(pairs: int, healthy_share: float = 0.6) -> list[str]:
    """``pairs`` scenario names: about ``healthy_share`` healthy, the rest cycling the faults."""
    faulty = [s for s in PAIR_SCENARIOS if not s.startswith("healthy")]
    out: list[str] = []
    f = 0
    for index in range(pairs):
        if faulty and (index % 10) >= round(healthy_share * 10):
            out.append(faulty[f % len(faulty)])
            f += 1
        else:
            out.append("healthy")
    return out


# -- serving a fleet from another process ---------------------------------------------------------

FAULTS_FILE = "faults.json"


def save_faults(fleet: Fleet) -> Path:
    """Write ``{device: fault}`` beside the fleet (the serving process reads it)."""
    path = fleet.root.parent / f"{fleet.root.name}.{FAULTS_FILE}"
    data = {
        "hang_command": fleet.hang_command,
        "drop_command": fleet.drop_command,
        "faults": {n: d.fault for n, d in fleet.devices.items() if d.fault},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _behaviours(root: Path, latency: float) -> dict[str, DeviceBehaviour]:
    path = root.parent / f"{root.name}.{FAULTS_FILE}"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    fleet = Fleet(root=root)
    fleet.hang_command = data.get("hang_command", fleet.hang_command)
    fleet.drop_command = data.get("drop_command", fleet.drop_command)
    faults = data.get("faults", {})
    for child in sorted(p for p in root.iterdir() if (p / "device.yaml").is_file()):
        fleet.devices[child.name] = FleetDevice(
            child.name, "", "", 0, "", "", fault=faults.get(child.name, "")
        )
    return fleet.behaviours(latency)


def serve(root: Path, inventory: Path, latency: float) -> None:
    """Serve ``root``'s routers until stdin closes; prints ``READY <nornir config>``."""
    from ipsec_doctor.lab.emulator import EmulatorLab
    from ipsec_doctor.lab.inventory_writer import write_inventory

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    lab = EmulatorLab([root], behaviours=_behaviours(root, latency))
    lab.start()
    try:
        config = write_inventory(lab, inventory, num_workers=100)
        print(f"READY {config}", flush=True)
        sys.stdin.read()
    finally:
        lab.stop()


@contextmanager
def serving(
    fleet: Fleet, inventory: Path, latency: float = 0.0, timeout: float = 120.0
) -> Iterator[Path]:
    """Run the fleet's emulator in a separate process; yield its Nornir config file."""
    save_faults(fleet)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.audit.fleet", str(fleet.root), str(inventory), str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(root),
    )
    try:
        deadline = time.monotonic() + timeout
        line = ""
        assert process.stdout is not None
        while not line.startswith("READY"):
            line = process.stdout.readline()
            if (not line and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"the fleet emulator did not start (exit {process.poll()})")
        yield Path(line.split(maxsplit=1)[1].strip())
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
