"""`ipsec-doctor audit`: every device and tunnel of the inventory, history kept, cron exit codes.

Contract:
- ``audit [--inventory DIR | --nornir-config FILE | --lab [SCENARIO|FOLDER]] [--filter K=V]...``
  runs :func:`~ipsec_doctor.audit.runner.run_audit` with the options below, prints the summary
  (``--format text``) or JSON lines (``--format json``) on stdout, writes ``--markdown``,
  ``--html`` and ``--prometheus`` files, and returns: 4 when no device could be reached, 1
  when an active (not silenced) finding is at or above ``--fail-on`` (default critical; an
  unreachable device is a ``warning``), else 0. A broken inventory, an unknown filter or a
  second audit on the same history are errors (exit 2). A progress bar is drawn on stderr
  only when stderr is a terminal (and not ``--quiet``). SIGTERM stops the run like Ctrl-C:
  the run is marked interrupted and what was stored stays.
- ``audit silence --peer X --code C --until WHEN --reason TEXT [--device D]`` adds a silence;
  ``audit silences [--all]`` lists them; ``audit unsilence ID`` removes one;
  ``audit report [--run ID]`` renders a stored run again (same output options).
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from ipsec_doctor import __version__
from ipsec_doctor.audit.model import AuditReport, DeviceOutcome
from ipsec_doctor.audit.runner import (
    AuditOptions,
    InventorySource,
    parse_until,
    report_for_run,
    run_audit,
)
from ipsec_doctor.audit.store import HistoryStore, default_db_path
from ipsec_doctor.cli.check_cmd import DEFAULT_INVENTORY, add_inventory_options
from ipsec_doctor.cli.exit_codes import ExitCode
from ipsec_doctor.cli.lab_cmd import running_lab
from ipsec_doctor.errors import UsageError
from ipsec_doctor.model.findings import Code, Severity
from ipsec_doctor.report.audit_html import render_audit_html
from ipsec_doctor.report.audit_json import render_audit_json
from ipsec_doctor.report.audit_markdown import render_audit_markdown
from ipsec_doctor.report.audit_prometheus import render_audit_prometheus, write_textfile
from ipsec_doctor.report.audit_text import render_audit_text

FAIL_ON_CHOICES = ("critical", "warning", "info")


def _add_db(parser: argparse.ArgumentParser, dest: str = "db") -> None:
    parser.add_argument(
        "--db",
        dest=dest,
        type=Path,
        default=None,
        help="the history database (default: $IPSEC_DOCTOR_AUDIT_DB or "
        "~/.local/state/ipsec-doctor/audit.sqlite)",
    )


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="stdout: text summary (default) or JSON lines, one tunnel per line",
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write Markdown")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML page")
    parser.add_argument(
        "--prometheus", type=Path, metavar="FILE", help="also write node_exporter textfile metrics"
    )
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="critical",
        help="exit 1 when an active finding has this severity or worse (default: critical)",
    )
    parser.add_argument(
        "--limit", type=int, default=20, help="worst tunnels listed in the text summary (20)"
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="audit every tunnel of the inventory (nightly, with history)",
        description="Collect every device of the inventory, diagnose every tunnel, keep the "
        "history in SQLite and report what changed since the last run. See docs/audit.md.",
    )
    add_inventory_options(parser)
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only hosts matching: name=R1*, group=hub, platform=cisco_ios, or any data key "
        "(site=ams); repeat to combine",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="collector processes (default: two per core, at most hosts/25)",
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=10.0, help="per-device connect timeout (10 s)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="take a second sample of moving counters after this many seconds "
        "(default: one sample, counters judged on one reading)",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=90.0,
        help="delete runs older than this many days (90; 0 keeps only this run)",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        metavar="S",
        help="wait a random 0..S seconds before starting (spread cron fleets)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no notes")
    _add_db(parser)
    _add_outputs(parser)
    parser.set_defaults(func=run)

    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION")
    actions.required = False
    silence = actions.add_parser("silence", help="silence a known issue until a date")
    silence.add_argument("--peer", required=True, help="the tunnel's peer address")
    silence.add_argument(
        "--code", required=True, help="the finding code to silence (or * for every code)"
    )
    silence.add_argument(
        "--until", required=True, help="expiry: 2026-12-31, 2026-12-31T08:00 or 7d / 12h"
    )
    silence.add_argument("--reason", required=True, help="why (shown in every report)")
    silence.add_argument("--device", default="", help="only on this device")
    _add_db(silence, "action_db")
    silence.set_defaults(func=run_silence)
    listing = actions.add_parser("silences", help="list the silences")
    listing.add_argument("--all", action="store_true", help="include expired ones")
    _add_db(listing, "action_db")
    listing.set_defaults(func=run_silences)
    remove = actions.add_parser("unsilence", help="remove a silence")
    remove.add_argument("id", type=int, help="the silence's id (see `audit silences`)")
    _add_db(remove, "action_db")
    remove.set_defaults(func=run_unsilence)
    again = actions.add_parser("report", help="render a stored run again")
    again.add_argument("--run", type=int, default=None, help="the run id (default: the latest)")
    _add_db(again, "action_db")
    _add_outputs(again)
    again.set_defaults(func=run_report)


def db_path(args: argparse.Namespace) -> Path:
    chosen = getattr(args, "action_db", None) or getattr(args, "db", None)
    return Path(chosen) if chosen else default_db_path()


# -- progress ------------------------------------------------------------------------------------


class RichProgress:
    """A progress bar of devices on stderr (only used when stderr is a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("auditing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: Any = None
        self.failed = 0

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("audit", total=total, last="")

    def advance(self, outcome: DeviceOutcome) -> None:
        if not outcome.reachable:
            self.failed += 1
        last = f"{outcome.name}" + (f" ({self.failed} unreachable)" if self.failed else "")
        self.progress.update(self.task, advance=1, last=last)

    def stop(self) -> None:
        self.progress.stop()


# -- running -------------------------------------------------------------------------------------


@contextmanager
def inventory_source(args: argparse.Namespace) -> Iterator[InventorySource]:
    """Where the inventory comes from (starting the bundled lab for ``--lab``)."""
    if args.lab:
        with running_lab(args.lab) as (_lab, config):
            yield InventorySource(config_file=config)
        return
    if args.nornir_config:
        yield InventorySource(config_file=Path(args.nornir_config))
        return
    inventory = Path(args.inventory or DEFAULT_INVENTORY)
    if not inventory.is_dir():
        raise UsageError(
            f"{inventory}: no inventory folder; give --inventory DIR, --nornir-config FILE or --lab"
        )
    yield InventorySource(inventory_dir=inventory)


def exit_code(report: AuditReport, fail_on: str) -> ExitCode:
    if report.devices and report.reachable_devices == 0:
        return ExitCode.NOTHING_COLLECTED
    if report.at_or_above(Severity(fail_on)):
        return ExitCode.FINDINGS
    return ExitCode.OK


def emit(report: AuditReport, args: argparse.Namespace) -> int:
    """Write stdout and the report files; return the exit code."""
    if args.format == "json":
        sys.stdout.write(render_audit_json(report))
    else:
        sys.stdout.write(render_audit_text(report, limit=args.limit))
    sys.stdout.flush()
    for path, render in (
        (args.markdown, render_audit_markdown),
        (args.html, render_audit_html),
    ):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(render(report), encoding="utf-8")
    if args.prometheus is not None:
        write_textfile(Path(args.prometheus), render_audit_prometheus(report))
    return int(exit_code(report, args.fail_on))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    options = AuditOptions(
        filters=tuple(args.filter),
        workers=args.workers,
        processes=args.processes,
        interval=args.interval,
        connect_timeout=args.connect_timeout,
        command_timeout=args.timeout,
        jitter=max(0.0, args.jitter),
        retention_days=args.retention_days,
    )
    progress = RichProgress() if sys.stderr.isatty() and not args.quiet else None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with inventory_source(args) as source, HistoryStore(db_path(args)) as store:
            report = run_audit(source, store, options, progress=progress, tool_version=__version__)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return emit(report, args)


def run_report(args: argparse.Namespace) -> int:
    with HistoryStore(db_path(args)) as store:
        report = report_for_run(store, args.run)
    return emit(report, args)


def run_silence(args: argparse.Namespace) -> int:
    code = args.code.strip().upper() if args.code.strip() != "*" else "*"
    if code != "*" and code not in Code.__members__:
        raise UsageError(f"--code {args.code}: not a finding code (see docs/findings.md)")
    until = parse_until(args.until)
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container: not worth failing for
        user = ""
    with HistoryStore(db_path(args)) as store:
        silence = store.add_silence(
            peer=args.peer.strip(),
            code=code,
            until=until,
            reason=args.reason.strip(),
            device=args.device.strip(),
            created_by=user,
        )
    where = f" on {silence.device}" if silence.device else ""
    print(
        f"silence {silence.id}: {silence.code} for peer {silence.peer}{where} until "
        f"{silence.until:%Y-%m-%d %H:%M} UTC ({silence.reason})"
    )
    return 0


def run_silences(args: argparse.Namespace) -> int:
    with HistoryStore(db_path(args)) as store:
        silences = store.silences(include_expired=args.all)
    if not silences:
        print("no silences" if args.all else "no active silences")
        return 0
    for s in silences:
        where = f" on {s.device}" if s.device else ""
        print(
            f"{s.id:4}  {s.code:26} peer {s.peer}{where}  until {s.until:%Y-%m-%d %H:%M} UTC  "
            f"{s.reason}" + (f"  (by {s.created_by})" if s.created_by else "")
        )
    return 0


def run_unsilence(args: argparse.Namespace) -> int:
    with HistoryStore(db_path(args)) as store:
        removed = store.remove_silence(args.id)
    if not removed:
        raise UsageError(f"no silence {args.id}")
    print(f"silence {args.id} removed")
    return 0
