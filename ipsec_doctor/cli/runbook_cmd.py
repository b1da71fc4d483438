"""`ipsec-doctor runbook --peer X`: the troubleshooting strategy as an interactive terminal runbook.

Contract:
- Chooses the devices like ``check`` (``--device``, inventory data, or by asking; said on
  stderr), opens one SSH session per device (``--inventory`` / ``--nornir-config`` /
  ``--lab [SCENARIO]``) or reads a capture folder offline (``--captures DIR``), and walks the
  runbook (``--runbook NAME|FILE|auto``) step by step with
  :class:`~ipsec_doctor.runbook.engine.RunbookEngine` at the terminal. ``--runbook auto``
  (the default) picks the packaged runbook for the tunnel's design
  (:func:`~ipsec_doctor.runbook.choose.choose_runbook`) and says why. ``--dry-run`` prints
  every step and what it would run on which device, and runs nothing (device discovery may
  read ``show crypto map`` / the configuration, as ``check --dry-run`` does, and ``auto``
  reads the local configuration).
- ``--list`` prints the packaged runbooks (and ``--runbook FILE`` if given), validating each;
  an invalid one is reported with file and line and the exit code is 2.
- The Markdown transcript is written at the end, on quit and on Ctrl-C, to ``--transcript
  FILE`` (default ``./ipsec-doctor-runbook-<peer>-<time>.md``); its path is printed. Ctrl-C
  before the first step (connecting, choosing devices) still writes one saying so.
- Exit code: 130 when interrupted with Ctrl-C; otherwise that of ``check`` for the final
  diagnosis (``--fail-on``): 1 with a finding at or above it, 4 when nothing was read, else 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ipsec_doctor.cli.check_cmd import add_inventory_options, open_inventory
from ipsec_doctor.cli.exit_codes import ExitCode
from ipsec_doctor.cli.output import FAIL_ON_CHOICES, exit_code_for
from ipsec_doctor.collect.audit_log import AuditLog
from ipsec_doctor.collect.file_collector import folder_peer
from ipsec_doctor.collect.nornir_collector import CollectOptions
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.runbook.choose import choose_runbook
from ipsec_doctor.runbook.engine import RunbookEngine, current_user
from ipsec_doctor.runbook.intrusive import IntrusiveSteps
from ipsec_doctor.runbook.io import Conclusion
from ipsec_doctor.runbook.live import nornir_session
from ipsec_doctor.runbook.schema import Runbook, find_runbook, load_runbook_file, runbook_paths
from ipsec_doctor.runbook.session import End, PipelineSession, folder_session
from ipsec_doctor.runbook.terminal import TerminalIO
from ipsec_doctor.runbook.transcript import TranscriptMeta, render_transcript
from ipsec_doctor.workflow.flow import parse_peer

AUTO = "auto"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "runbook",
        help="walk the troubleshooting strategy step by step during an outage",
        description="Walk a runbook step by step: each step shows what it runs, runs it over "
        "SSH through the same diagnosis as `check`, shows the evidence and the verdict and "
        "asks before anything intrusive. Writes a Markdown transcript for the incident ticket.",
    )
    parser.add_argument("--peer", help="the remote crypto peer address")
    parser.add_argument("--device", help="the local router (default: found from the inventory)")
    add_inventory_options(parser)
    parser.add_argument(
        "--captures",
        type=Path,
        metavar="DIR",
        help="run offline over a capture folder (training, post-mortems); no SSH",
    )
    parser.add_argument(
        "--runbook",
        default=AUTO,
        metavar="NAME|FILE",
        help="a packaged runbook, a runbook file, or auto (default): the packaged one for the "
        "tunnel's design (crypto map or tunnel protection), read from the local router",
    )
    parser.add_argument("--list", action="store_true", help="list the runbooks and exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="choose the devices, then print every step with what it would run; run none",
    )
    parser.add_argument(
        "--transcript",
        type=Path,
        metavar="FILE",
        help="where to write the Markdown transcript (default: ./ipsec-doctor-runbook-*.md)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="seconds between the two samples of moving counters (default 5; 0: back to back)",
    )
    parser.add_argument(
        "--allow-intrusive",
        action="store_true",
        help="allow intrusive steps on devices marked production: true in the inventory",
    )
    parser.add_argument(
        "--debug-seconds",
        type=float,
        metavar="N",
        help="cap the time of every debug step at N seconds (default: the runbook's)",
    )
    parser.add_argument(
        "--audit-log",
        type=Path,
        metavar="FILE",
        help="the audit log of intrusive commands (default: ~/.local/state/ipsec-doctor/)",
    )
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="critical",
        help="exit 1 when a finding has this severity or worse (default: critical)",
    )
    parser.set_defaults(func=run)


def run_list(args: argparse.Namespace) -> int:
    """Print every packaged runbook (and ``--runbook FILE``); 2 when one is invalid."""
    paths = runbook_paths()
    extra = Path(args.runbook).expanduser()
    if args.runbook != AUTO and extra.is_file() and extra not in paths:
        paths.append(extra)
    status = 0
    for path in paths:
        try:
            runbook = load_runbook_file(path)
        except ConfigError as error:
            print(f"{path.stem:16} INVALID\n  " + str(error).replace("\n", "\n  "))
            status = int(ExitCode.USAGE)
            continue
        designs = ", ".join(f.value for f in runbook.when) or "any"
        print(
            f"{runbook.name:16} {runbook.platform:10} {len(runbook.steps):2} steps  "
            f"{runbook.title}\n{'':16} {runbook.summary}\n{'':16} for: {designs}; {path}"
        )
    return status


def _default_transcript(peer: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(f"ipsec-doctor-runbook-{peer.replace(':', '_')}-{stamp}.md")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_platform(runbook: Runbook, ends: list[End]) -> None:
    local = [e for e in ends if e.info.role == "local"]
    if local and all(e.info.platform != runbook.platform for e in local):
        raise UsageError(
            f"runbook {runbook.name} is for {runbook.platform}, but "
            f"{local[0].name} is {local[0].info.platform}; choose one with --runbook "
            "(ipsec-doctor runbook --list)"
        )


@contextmanager
def live_session(args: argparse.Namespace, peer: str) -> Iterator[PipelineSession]:
    """SSH sessions to the chosen devices (inventory, Nornir config or the bundled lab)."""
    with open_inventory(args) as nr:
        options = CollectOptions(read_timeout=args.timeout) if args.timeout else CollectOptions()
        session = nornir_session(
            nr,
            peer,
            device=args.device,
            options=options,
            interval=args.interval,
            mode=f"lab scenario {args.lab}" if args.lab else "live over SSH",
            allow_intrusive=args.allow_intrusive,
            audit=AuditLog(args.audit_log) if args.audit_log else None,
            max_debug_seconds=args.debug_seconds,
        )
        with _announced(session):
            yield session


@contextmanager
def offline_session(args: argparse.Namespace, peer: str) -> Iterator[PipelineSession]:
    """The chosen devices of a capture folder, read through the same plan runner."""
    session = folder_session(args.captures, peer, device=args.device, interval=args.interval)
    with _announced(session):
        yield session


@contextmanager
def _announced(session: PipelineSession) -> Iterator[PipelineSession]:
    """Say which devices the session chose and why; close the session at the end."""
    for line in session.discovery.explain():
        _say(line)
    try:
        yield session
    finally:
        session.close()


def print_dry_run(runbook: Runbook, session: PipelineSession) -> None:
    """Every step of ``runbook`` and what it would run on which device (nothing runs)."""
    print(f"runbook {runbook.name} ({runbook.source or 'packaged'}), peer {session.peer}")
    for end in session.ends:
        print(
            f"  {end.name}: {end.info.role} end ({end.info.platform}), checked for {end.info.peer}"
        )
    for step in runbook.steps:
        mark = f"  [intrusive: {step.action}]" if step.intrusive else ""
        print(f"{step.id}: {step.title}{mark}")
        for planned in session.plan(step):
            times = f"  x{planned.samples}" if planned.samples > 1 else ""
            left = f"  (left out: {planned.left_out})" if planned.left_out else ""
            print(f"    {planned.device}: {planned.command}{times}{left}")
        targets = ", ".join(f"{key} -> {target}" for key, target in step.next.items())
        print(f"    next: {targets}")


def _write_unstarted(
    runbook: Runbook | None, peer: str, started: datetime, path: Path, mode: str
) -> None:
    meta = TranscriptMeta(
        runbook=runbook,
        peer=peer,
        mode=mode or "live over SSH",
        user=current_user(),
        started_at=started,
        finished_at=datetime.now(UTC),
        devices=(),
    )
    conclusion = Conclusion(
        ended="interrupted",
        root_cause=None,
        findings=(),
        message="interrupted with Ctrl-C before the first step, while connecting to and "
        "choosing the devices: nothing was run on them",
    )
    path.write_text(render_transcript(meta, [], [], conclusion), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    if args.list:
        return run_list(args)
    runbook = None if args.runbook == AUTO else load_runbook_file(find_runbook(args.runbook))
    if args.captures is not None:
        if args.lab or args.inventory or args.nornir_config:
            raise UsageError("--captures reads a folder offline: drop --inventory/--lab")
        peer_text = args.peer or folder_peer(args.captures)
        if not peer_text:
            raise UsageError(f"{args.captures}: no peer given; use --peer")
    elif not args.peer:
        raise UsageError("--peer is required (the remote crypto peer address)")
    else:
        peer_text = args.peer
    peer = str(parse_peer(peer_text))
    transcript = args.transcript or _default_transcript(peer)
    opened = offline_session(args, peer) if args.captures is not None else live_session(args, peer)
    started = datetime.now(UTC)
    walking = False
    try:
        with opened as session:
            if runbook is None:
                runbook, why = choose_runbook(session)
                _say(f"Runbook {runbook.name} chosen: {why} (--runbook NAME|FILE to choose)")
            _check_platform(runbook, session.ends)
            if args.dry_run:
                print_dry_run(runbook, session)
                return 0
            terminal = TerminalIO()
            if isinstance(session.intrusive, IntrusiveSteps):
                session.intrusive.notify = terminal.message
            engine = RunbookEngine(runbook, session, terminal, transcript_path=transcript)
            walking = True
            outcome = engine.run()
    except KeyboardInterrupt:
        if walking:
            raise
        # Ctrl-C while connecting or choosing the devices: nothing ran, but say so on record
        _write_unstarted(runbook, peer, started, transcript, "offline" if args.captures else "")
        print(f"\nInterrupted before the first step. Transcript written to {transcript}")
        return int(ExitCode.INTERRUPTED)
    if outcome.ended == "interrupted":
        return int(ExitCode.INTERRUPTED)
    if outcome.report is None:
        return int(ExitCode.INTERNAL)
    return int(exit_code_for(outcome.report, args.fail_on))
