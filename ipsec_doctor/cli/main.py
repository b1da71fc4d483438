"""The `ipsec-doctor` command line: parse arguments, dispatch, map errors to exit codes.

Contract: every sub-command module exposes ``add_parser(subparsers)`` which registers its
arguments and sets ``func`` to a callable taking the parsed namespace and returning an
:class:`ExitCode`. This module is the one place where exceptions become exit codes and
messages (pre-commit style): usage and configuration errors exit 2 with one line, Ctrl-C
exits 130, anything unexpected exits 3 and leaves the traceback in a log file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from ipsec_doctor import __version__
from ipsec_doctor.cli import (
    analyze_cmd,
    audit_cmd,
    check_cmd,
    clear_cmd,
    history_cmd,
    lab_cmd,
    parse_cmd,
    runbook_cmd,
)
from ipsec_doctor.cli.exit_codes import ExitCode
from ipsec_doctor.errors import ConfigError, IpsecDoctorError, UsageError

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    check_cmd.add_parser,
    clear_cmd.add_parser,
    analyze_cmd.add_parser,
    parse_cmd.add_parser,
    lab_cmd.add_parser,
    runbook_cmd.add_parser,
    audit_cmd.add_parser,
    history_cmd.add_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipsec-doctor",
        description="Find out why an IPsec site-to-site VPN is down, with evidence and a fix.",
    )
    parser.add_argument("--version", action="version", version=f"ipsec-doctor {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _crash_log_dir() -> Path:
    configured = os.environ.get("IPSEC_DOCTOR_LOG_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "ipsec-doctor"


def _write_crash_log(error: BaseException) -> Path:
    directory = _crash_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"crash-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(f"ipsec-doctor {__version__}\nargs: {sys.argv[1:]}\n\n")
        traceback.print_exception(error, file=handle)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if exit_.code in (0, None) else int(ExitCode.USAGE)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("\nipsec-doctor: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except (UsageError, ConfigError) as error:
        print(f"ipsec-doctor: error: {error}", file=sys.stderr)
        return int(ExitCode.USAGE)
    except IpsecDoctorError as error:
        print(f"ipsec-doctor: error: {error}", file=sys.stderr)
        return int(ExitCode.INTERNAL)
    except Exception as error:
        log = _write_crash_log(error)
        print(
            f"ipsec-doctor: internal error: {type(error).__name__}: {error}\n"
            f"The traceback is in {log}; please attach it to a bug report.",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
