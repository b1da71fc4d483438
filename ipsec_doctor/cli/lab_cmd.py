"""`ipsec-doctor lab`: the bundled emulated routers (asyncssh), serving scenario folders.

Contract: ``lab list`` prints the bundled scenarios; ``lab start`` serves one scenario's
routers on 127.0.0.1, writes a Nornir inventory for them and says where, then runs until
Ctrl-C. :func:`running_lab` is what ``check --lab`` uses: the same lab, started in the
background for the duration of one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ipsec_doctor.errors import UsageError
from ipsec_doctor.resources import data_dir

if TYPE_CHECKING:  # asyncssh is imported only when a lab really starts (it is slow to import)
    from ipsec_doctor.lab.emulator import EmulatorLab

DEFAULT_SCENARIO = "healthy"
# Debug messages the lab's routers print per answered command (``check --lab X --debug``): a
# router prints a whole negotiation, a hundred-odd messages, well within the two seconds
# between two reads of its logging buffer. (The emulator's default, 5, paces the tests.)
LAB_DEBUG_BURST = 60


def scenarios_root() -> Path:
    return data_dir("scenarios")


def bundled_scenarios() -> dict[str, str]:
    """Scenario name → description."""
    found: dict[str, str] = {}
    root = scenarios_root()
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        meta = child / "scenario.yaml"
        if meta.is_file():
            raw = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
            lines = str(raw.get("description") or "").strip().splitlines()
            found[child.name] = lines[0] if lines else ""
    return found


def scenario_dir(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_dir():
        return path
    candidate = scenarios_root() / name_or_path
    if candidate.is_dir():
        return candidate
    known = ", ".join(bundled_scenarios()) or "none"
    raise UsageError(f"unknown lab scenario {name_or_path!r} (bundled: {known})")


@contextmanager
def running_lab(
    scenario: str, inventory_dir: Path | None = None
) -> Iterator[tuple[EmulatorLab, Path]]:
    """Start ``scenario``'s routers and write their inventory; yield (lab, config.yaml)."""
    from ipsec_doctor.lab.emulator import DeviceBehaviour, run_lab
    from ipsec_doctor.lab.inventory_writer import write_inventory

    folder = scenario_dir(scenario)
    with run_lab([folder], behaviour=DeviceBehaviour(debug_burst=LAB_DEBUG_BURST)) as lab:
        if inventory_dir is None:
            with tempfile.TemporaryDirectory(prefix="ipsec-doctor-lab-") as tmp:
                yield lab, write_inventory(lab, tmp)
        else:
            inventory_dir.mkdir(parents=True, exist_ok=True)
            yield lab, write_inventory(lab, inventory_dir)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="run the bundled emulated routers",
        description="Emulated IOS routers over real SSH on 127.0.0.1, serving a scenario.",
    )
    actions = parser.add_subparsers(dest="lab_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="list the bundled scenarios")
    listing.set_defaults(func=run_list)
    start = actions.add_parser("start", help="serve a scenario until Ctrl-C")
    start.add_argument("--scenario", default=DEFAULT_SCENARIO, help="a bundled name or a folder")
    start.add_argument(
        "--inventory-dir",
        type=Path,
        default=Path("lab-inventory"),
        help="where to write the Nornir inventory (default: ./lab-inventory)",
    )
    start.set_defaults(func=run_start)


def run_list(args: argparse.Namespace) -> int:
    for name, description in bundled_scenarios().items():
        print(f"{name:32} {description}")
    return 0


def run_start(args: argparse.Namespace) -> int:
    with running_lab(args.scenario, args.inventory_dir) as (lab, config):
        for name, port in lab.ports.items():
            print(f"{name}: ssh -p {port} {lab.host}")
        print(f"Inventory written to {config.parent} (Nornir config: {config})")
        print(f"Try: ipsec-doctor check --nornir-config {config} --peer <address>")
        print("Press Ctrl-C to stop.")
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nlab stopped")
    return 0
