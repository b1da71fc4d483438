"""`ipsec-doctor clear --peer X`: clear one peer's SAs (never more), confirmed; time the recovery.

Contract: finds the local router(s) of the peer (``--device``, the inventory, or by asking, as
``check`` does), reads the peer's ISAKMP and IPsec SAs, shows exactly what will be typed
(``clear crypto sa peer X`` and ``clear crypto isakmp <conn-id>`` for that peer's conn-ids
only) and asks; ``--yes`` confirms for scripts, and without a terminal to ask on and without
``--yes`` it refuses before logging in anywhere. After the clear it polls (bounded by
``--wait``) until the tunnel is back, optionally generating traffic (``--ping``), and says
how long it took. Hosts marked ``production: true`` need ``--allow-intrusive``. Every clear is
in the audit log. Exit codes: 0 cleared and back (or nothing confirmed), 1 the tunnel did not
come back within the wait, 2 usage/refused, 4 no device could be reached, 130 interrupted.
``--dry-run`` prints the commands per device and runs none.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ipsec_doctor.cli.check_cmd import add_inventory_options, open_inventory
from ipsec_doctor.cli.exit_codes import ExitCode
from ipsec_doctor.collect.discovery import discover
from ipsec_doctor.collect.intrusive import IntrusiveRefusedError, terminal_confirm
from ipsec_doctor.collect.intrusive_check import DeviceIntrusive, IntrusiveOptions, run_intrusive
from ipsec_doctor.collect.intrusive_data import fill, load_intrusive
from ipsec_doctor.collect.nornir_collector import CollectOptions
from ipsec_doctor.workflow.flow import parse_peer


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "clear",
        help="clear one peer's IPsec/ISAKMP SAs (asks first) and time the recovery",
        description="Clear the SAs of one IPsec peer only (clear crypto sa peer X, clear crypto "
        "isakmp <its conn-ids>), after showing what will be cleared and asking; then wait for "
        "the tunnel to come back and say how long it took.",
    )
    parser.add_argument("--peer", required=True, help="the remote crypto peer address")
    parser.add_argument("--device", help="the local router (default: found from the inventory)")
    add_inventory_options(parser)
    parser.add_argument("--yes", action="store_true", help="confirm without asking (scripts)")
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="N",
        help="seconds to wait for the tunnel to come back (default 60)",
    )
    parser.add_argument(
        "--ping",
        action="store_true",
        help="after the clear, ping from the protected LAN to bring the tunnel up",
    )
    parser.add_argument("--ping-destination", metavar="ADDRESS", help="host to ping")
    parser.add_argument("--ping-source", metavar="INTERFACE", help="interface (or address)")
    parser.add_argument(
        "--allow-intrusive",
        action="store_true",
        help="allow clearing on hosts marked production: true in the inventory",
    )
    parser.add_argument("--audit-log", type=Path, metavar="FILE", help="audit log file")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the commands per device, run none"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    peer = str(parse_peer(args.peer))
    if not args.yes and not args.dry_run and not sys.stdin.isatty():
        raise IntrusiveRefusedError(
            "refusing to clear without a confirmation: there is no terminal to ask on; "
            "pass --yes to confirm in a script"
        )
    options = IntrusiveOptions(
        clear=True,
        clear_wait=args.wait,
        ping=args.ping,
        ping_destination=args.ping_destination,
        ping_source=args.ping_source,
        yes=args.yes,
        allow_intrusive=args.allow_intrusive,
        audit_log=args.audit_log,
        read_timeout=args.timeout or 30.0,
    )
    collect = CollectOptions(read_timeout=args.timeout) if args.timeout else CollectOptions()
    with open_inventory(args) as nr:
        discovery = discover(nr, peer, device=args.device, options=collect)
        for line in discovery.explain():
            _say(args, line)
        local = {c.device: c.peer for c in discovery.local}
        if not local:
            raise IntrusiveRefusedError(f"no local router found for peer {peer}; give --device")
        if args.dry_run:
            print_dry_run(local, {h: nr.inventory.hosts[h].platform or "cisco_ios" for h in local})
            return int(ExitCode.OK)
        results = run_intrusive(
            nr,
            local,
            options,
            confirm=terminal_confirm(args.yes),
            collect_options=collect,
            progress=lambda message: _say(args, message),
        )
    if args.format == "json":
        print(json.dumps(clear_document(peer, results), indent=2))
    else:
        for outcome in results.values():
            for line in outcome.summary():
                print(line)
    return int(exit_code(results))


def print_dry_run(local: Mapping[str, str], platforms: Mapping[str, str]) -> None:
    for device, peer in local.items():
        data = load_intrusive(platforms[device])
        print(f"{device} (clears only what belongs to {peer}):")
        print(f"  {fill(data.snapshot_isakmp, peer=peer)}")
        print(f"  {fill(data.snapshot_ipsec, peer=peer)}")
        print(f"  {fill(data.clear_sa_peer, peer=peer)}")
        print(f"  {data.clear_isakmp_conn.replace('{conn_id}', '<each conn-id of ' + peer + '>')}")


def exit_code(results: Mapping[str, DeviceIntrusive]) -> ExitCode:
    if results and all(r.error and r.clear is None for r in results.values()):
        return ExitCode.NOTHING_COLLECTED
    if any(r.clear is not None and r.clear.came_back is False for r in results.values()):
        return ExitCode.FINDINGS
    if any(r.error for r in results.values()):
        return ExitCode.FINDINGS
    return ExitCode.OK


def clear_document(peer: str, results: Mapping[str, DeviceIntrusive]) -> dict[str, Any]:
    """The JSON document of one `clear` run."""
    devices = []
    for outcome in results.values():
        clear = outcome.clear
        plan = outcome.clear_plan
        devices.append(
            {
                "device": outcome.device,
                "peer": outcome.peer,
                "planned": list(plan.commands) if plan else [],
                "before": plan.before.describe() if plan else None,
                "confirmed": clear.confirmed if clear else False,
                "ran": [{"command": c, "result": r} for c, r in clear.ran] if clear else [],
                "came_back": clear.came_back if clear else None,
                "seconds": clear.seconds if clear else None,
                "after": clear.after.describe() if clear and clear.after else None,
                "error": outcome.error,
            }
        )
    return {"peer": peer, "devices": devices}
