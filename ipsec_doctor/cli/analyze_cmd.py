"""`ipsec-doctor analyze [DIR] [--log FILE]`: the same diagnosis over saved or pasted captures,
no SSH, and the router's own messages read the way an expert reads them.

Contract:
- ``analyze DIR`` diagnoses a capture folder (:func:`ipsec_doctor.workflow.flow.analyze_folder`).
- ``analyze --log FILE`` (``-`` for standard input) interprets a pasted debug or syslog dump on
  its own: each classified line as event -> the finding code(s) it points to, the lines it
  could not classify, then the diagnosis the log alone supports
  (:func:`ipsec_doctor.workflow.log_analysis.analyze_log`); ``--platform`` picks the signature
  table (default cisco_ios).
- ``analyze DIR --log FILE`` joins the log's events to the logs of ``--log-device`` (default
  ``--device``, else the local end chosen for the peer) before the normal diagnosis.
- ``--format json`` prints the report document, with a ``log`` object when ``--log`` was given.
  Exit codes are those of every report (:func:`ipsec_doctor.cli.output.exit_code_for`): 0, 1
  at or above ``--fail-on``, 2 usage (no folder and no log, unreadable log, unknown platform or
  device), 4 nothing read (an empty log).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ipsec_doctor.cli.output import add_output_options, emit_report
from ipsec_doctor.errors import UsageError
from ipsec_doctor.report.log_text import render_log_analysis
from ipsec_doctor.workflow.flow import analyze_folder
from ipsec_doctor.workflow.log_analysis import analyze_folder_with_log, analyze_log, read_log


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="diagnose a capture folder, or interpret a pasted debug / syslog dump (--log)",
        description=(
            "Diagnose a capture folder: one directory per device with device.yaml "
            "(platform) and one <command>.txt per command. No SSH. With --log FILE, read a "
            "pasted debug or syslog dump: on its own, or joined to a device of the folder."
        ),
    )
    parser.add_argument(
        "folder", type=Path, nargs="?", help="the capture folder (optional with --log)"
    )
    parser.add_argument("--peer", help="the peer address to check (default: from the folder)")
    parser.add_argument("--device", help="the local device (default: the one naming the peer)")
    parser.add_argument(
        "--log",
        metavar="FILE",
        help="a debug or syslog dump to interpret ('-' reads standard input)",
    )
    parser.add_argument(
        "--platform",
        help="the platform whose wording the log uses (default: cisco_ios, or the device's)",
    )
    parser.add_argument(
        "--log-device",
        metavar="NAME",
        help="with a folder: the device the log comes from (default: --device or the local end)",
    )
    add_output_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.log is None:
        if args.folder is None:
            raise UsageError("analyze needs a capture folder, or --log FILE ('-' for stdin)")
        for option in ("platform", "log_device"):
            if getattr(args, option):
                raise UsageError(f"--{option.replace('_', '-')} only applies with --log")
        report = analyze_folder(args.folder, args.peer, args.device)
        return emit_report(report, args)
    text, source = read_log(args.log)
    if args.folder is None:
        if args.log_device:
            raise UsageError("--log-device names a device of a capture folder; give the folder")
        analysis, report = analyze_log(
            text, source=source, platform=args.platform, peer=args.peer, device=args.device
        )
    else:
        analysis, report = analyze_folder_with_log(
            args.folder,
            text,
            source=source,
            peer_text=args.peer,
            device=args.device,
            log_device=args.log_device,
            platform=args.platform,
        )
    return emit_report(
        report,
        args,
        json_extra={"log": analysis.to_dict()},
        text_before=render_log_analysis(analysis),
    )
