"""`ipsec-doctor analyze DIR`: the same diagnosis over saved or pasted captures, no SSH."""

from __future__ import annotations

import argparse
from pathlib import Path

from ipsec_doctor.cli.output import add_output_options, emit_report
from ipsec_doctor.workflow.flow import analyze_folder


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="diagnose a capture folder (saved with --save-captures, or pasted by hand)",
        description=(
            "Diagnose a capture folder: one directory per device with device.yaml "
            "(platform) and one <command>.txt per command. No SSH."
        ),
    )
    parser.add_argument("folder", type=Path, help="the capture folder")
    parser.add_argument("--peer", help="the peer address to check (default: from the folder)")
    parser.add_argument("--device", help="the local device (default: the one naming the peer)")
    add_output_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = analyze_folder(args.folder, args.peer, args.device)
    return emit_report(report, args)
