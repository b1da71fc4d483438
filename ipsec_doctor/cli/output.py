"""Shared options and output of the commands that print a Report (check, analyze).

Contract: :func:`add_output_options` registers ``--format`` and ``--fail-on`` the same way on
every such command; :func:`emit_report` prints the report in the chosen format (colour only on
a terminal) and returns the exit code that DESIGN.md "Exit codes" gives: 4 when no device
could be read at all, 1 when a finding is at or above ``--fail-on``, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ipsec_doctor.cli.exit_codes import ExitCode
from ipsec_doctor.model.findings import Severity
from ipsec_doctor.model.report import Report
from ipsec_doctor.report.json_report import render_json
from ipsec_doctor.report.text import render_text

FAIL_ON_CHOICES = ("critical", "warning", "info")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for scripts (one document, see docs/json.md)",
    )
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="critical",
        help="exit 1 when a finding has this severity or worse (default: critical)",
    )


def nothing_collected(report: Report) -> bool:
    """True when not one command of any device came back."""
    if not report.devices:
        return True
    return all(
        device.error or not any(c.outcome == "ok" for c in device.commands)
        for device in report.devices
    )


def exit_code_for(report: Report, fail_on: str) -> ExitCode:
    if nothing_collected(report):
        return ExitCode.NOTHING_COLLECTED
    if report.at_or_above(Severity(fail_on)):
        return ExitCode.FINDINGS
    return ExitCode.OK


def _colourise(text: str) -> str:
    marks = {
        "[FAIL]": "\033[1;31m[FAIL]\033[0m",
        "[WARN]": "\033[33m[WARN]\033[0m",
        "[ OK ]": "\033[32m[ OK ]\033[0m",
        "Root cause:": "\033[1mRoot cause:\033[0m",
    }
    for plain, coloured in marks.items():
        text = text.replace(plain, coloured)
    return text


def emit_report(
    report: Report,
    args: argparse.Namespace,
    stream: TextIO | None = None,
    *,
    json_extra: Mapping[str, Any] | None = None,
    text_before: str = "",
) -> int:
    """Print ``report`` and return its exit code. ``json_extra`` adds top-level keys to the JSON
    document (``analyze --log`` adds ``log``); ``text_before`` is printed before the text
    report."""
    out = stream or sys.stdout
    if args.format == "json":
        if json_extra:
            document = {**report.to_dict(), **json_extra}
            out.write(json.dumps(document, indent=2) + "\n")
        else:
            out.write(render_json(report))
    else:
        text = text_before + render_text(report)
        out.write(_colourise(text) if out.isatty() else text)
    out.flush()
    return int(exit_code_for(report, args.fail_on))
