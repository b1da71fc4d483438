"""Exit codes of every ipsec-doctor command (README "Exit codes"); cron and CI key on them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    USAGE = 2  # bad arguments, bad inventory or configuration
    INTERNAL = 3  # a bug: the traceback went to a log file
    NOTHING_COLLECTED = 4  # no device could be read at all
    INTERRUPTED = 130  # Ctrl-C
