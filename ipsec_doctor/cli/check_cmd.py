"""`ipsec-doctor check --peer X`: log into the router(s) for one tunnel and name the root cause.

Contract: chooses the devices (``--device``, inventory data, or by asking; it says which and
why on stderr), collects both ends in parallel over SSH (Nornir + netmiko), optionally saves
the captures, diagnoses, prints the report and returns the exit code of DESIGN.md. With
``--lab [SCENARIO]`` the bundled emulated routers are started first and their inventory is
used; ``--dry-run`` lists the commands per device and runs none.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nornir.core import Nornir

from ipsec_doctor.cli.lab_cmd import DEFAULT_SCENARIO, running_lab
from ipsec_doctor.cli.output import add_output_options, emit_report
from ipsec_doctor.collect.base import ProgressCallback, ProgressEvent
from ipsec_doctor.collect.capture_store import save_captures
from ipsec_doctor.collect.discovery import Discovery, discover
from ipsec_doctor.collect.intrusive_check import (
    add_debug_captures,
    add_intrusive_options,
    options_from_args,
    run_intrusive,
)
from ipsec_doctor.collect.nornir_collector import (
    CollectOptions,
    build_nornir,
    close_sessions,
    collect_devices,
)
from ipsec_doctor.collect.plan_runner import plan_info
from ipsec_doctor.errors import UsageError
from ipsec_doctor.workflow.flow import diagnose_captures, parse_peer

DEFAULT_INVENTORY = Path("inventory")


def add_inventory_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--inventory",
        type=Path,
        help="Nornir SimpleInventory folder (hosts.yaml, groups.yaml, defaults.yaml); "
        "default ./inventory",
    )
    source.add_argument(
        "--nornir-config", type=Path, help="a Nornir config file (any inventory plugin)"
    )
    source.add_argument(
        "--lab",
        nargs="?",
        const=DEFAULT_SCENARIO,
        metavar="SCENARIO",
        help=f"start the bundled emulated routers first (default scenario: {DEFAULT_SCENARIO})",
    )
    parser.add_argument("--workers", type=int, default=20, help="parallel SSH sessions (20)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="per-command read timeout in seconds"
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="diagnose one tunnel live over SSH",
        description="Log into the router(s) for one IPsec peer, walk the troubleshooting "
        "strategy and name the root cause with evidence and a fix.",
    )
    parser.add_argument("--peer", required=True, help="the remote crypto peer address")
    parser.add_argument("--device", help="the local router (default: found from the inventory)")
    add_inventory_options(parser)
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="seconds between the two samples of moving counters (default 5; 0: back to back)",
    )
    parser.add_argument("--save-captures", type=Path, metavar="DIR", help="save raw outputs")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the commands per device, run none"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_intrusive_options(parser)
    add_output_options(parser)
    parser.set_defaults(func=run)


@contextmanager
def open_inventory(args: argparse.Namespace) -> Iterator[Nornir]:
    """The Nornir object for the run (starting the bundled lab for ``--lab``)."""
    workers = max(1, int(args.workers))
    if args.lab:
        with running_lab(args.lab) as (_lab, config):
            yield build_nornir(None, config, workers)
        return
    if args.nornir_config:
        yield build_nornir(None, args.nornir_config, workers)
        return
    inventory = args.inventory or DEFAULT_INVENTORY
    if not inventory.is_dir():
        raise UsageError(
            f"{inventory}: no inventory folder; give --inventory DIR, --nornir-config FILE or --lab"
        )
    yield build_nornir(inventory, None, workers)


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _progress(args: argparse.Namespace) -> ProgressCallback:
    def report(event: ProgressEvent) -> None:
        if args.quiet or not sys.stderr.isatty():
            return
        print(f"  {event.device}: {event.command or event.message}", file=sys.stderr, flush=True)

    return report


def print_dry_run(nr: Nornir, discovery: Discovery) -> None:
    for chosen in discovery.chosen:
        host = nr.inventory.hosts[chosen.device]
        info = plan_info(host.platform or "cisco_ios")
        print(f"{chosen.device} ({host.platform}, {chosen.role}, checked for {chosen.peer}):")
        for step in info.steps:
            command = step.command.replace("{peer}", chosen.peer)
            times = f"  x{step.samples}" if step.samples > 1 else ""
            when = f"  (only with {' or '.join(step.when)})" if step.when else ""
            print(f"  {command}{times}{when}")


def run(args: argparse.Namespace) -> int:
    peer = str(parse_peer(args.peer))
    with open_inventory(args) as nr:
        options = CollectOptions(read_timeout=args.timeout) if args.timeout else CollectOptions()
        discovery = discover(nr, peer, device=args.device, options=options)
        for line in discovery.explain():
            _say(args, line)
        if args.dry_run:
            close_sessions(nr)
            print_dry_run(nr, discovery)
            return 0
        _say(args, f"Collecting from {', '.join(discovery.hosts)} ...")
        captures = collect_devices(
            nr,
            discovery.hosts,
            discovery.peer_for_host,
            args.interval,
            progress=_progress(args),
            options=options,
            peer=peer,
        )
        intrusive = options_from_args(args)
        if intrusive.requested:
            results = run_intrusive(
                nr,
                discovery.peer_for_host,
                intrusive,
                hosts=discovery.hosts,
                collect_options=options,
                progress=lambda message: _say(args, message),
                captures=captures,
            )
            add_debug_captures(results, captures)
            for result in results.values():
                for line in result.summary():
                    _say(args, line)
        if args.save_captures:
            save_captures(captures, args.save_captures, peer_for_host=discovery.peer_for_host)
            _say(args, f"Captures saved to {args.save_captures}")
        report = diagnose_captures(captures, discovery, mode="check", notes=discovery.notes)
    return emit_report(report, args)
