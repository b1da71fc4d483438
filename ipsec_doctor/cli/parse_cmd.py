"""`ipsec-doctor parse`: one command output parsed and printed as JSON (like `genie parse`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ipsec_doctor.errors import UsageError
from ipsec_doctor.parse.one_command import parse_one


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "parse",
        help="parse one saved output and print it as JSON",
        description="Parse one command output with ipsec-doctor's templates; print JSON.",
    )
    parser.add_argument("--platform", default="cisco_ios", help="cisco_ios (default), strongswan")
    parser.add_argument(
        "--command", required=True, help='the command, e.g. "show crypto isakmp sa"'
    )
    parser.add_argument("file", help="the output file, or - for standard input")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.file == "-":
        text = sys.stdin.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        text = path.read_text(encoding="utf-8", errors="replace")
    result = parse_one(args.platform, args.command, text)
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0
