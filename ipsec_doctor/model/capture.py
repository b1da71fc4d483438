"""Raw command captures: what a device printed, and how it is named on disk.

Contract:
- A :class:`CommandCapture` keeps one command's raw text exactly as collected (secrets already
  redacted) with its :class:`Outcome`; nothing here parses.
- A capture folder holds one file per command and sample: the command with each space as
  ``_``, ``/`` as ``%2F`` and ``|`` as ``%7C`` (``show_crypto_isakmp_sa.txt``), and
  ``<name>.2.txt`` for the second sample. :func:`command_filename` is the only encoder; the
  tool never decodes names.
- :func:`strip_echo` drops a leading ``R1#show ...`` line that a pasted terminal output carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """How a command ended."""

    OK = "ok"
    REJECTED = "rejected"  # the device refused it (% Invalid input detected ...)
    TIMEOUT = "timeout"
    ERROR = "error"  # connection dropped, authentication failed, ...
    MISSING = "missing"  # offline: no file for this command in the capture folder
    UNPARSED = "unparsed"  # collected, but no template could make sense of it


_ENCODING = (("%", "%25"), ("/", "%2F"), ("|", "%7C"), (" ", "_"))


def command_filename(command: str, sample: int = 1) -> str:
    """File name of one output: ``show ip route 10.2.2.1`` -> ``show_ip_route_10.2.2.1.txt``."""
    name = " ".join(command.split())
    for char, code in _ENCODING:
        name = name.replace(char, code)
    return f"{name}.txt" if sample <= 1 else f"{name}.{sample}.txt"


# Sample device line: "R1#show crypto isakmp sa" or "R1>show clock" or "gw1$ swanctl --list-sas"
_ECHO_LINE = re.compile(r"^\S{1,64}[#>$]\s?\S.*$")


def strip_echo(text: str, command: str) -> str:
    """Drop a first line that is the prompt plus the command itself, as a terminal shows it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first_command = " ".join(command.split()[:2])
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if _ECHO_LINE.match(line.strip()) and first_command and first_command in line:
            return "\n".join(lines[index + 1 :])
        break
    return text


@dataclass(frozen=True)
class CommandCapture:
    """One command as sent to one device, and what came back."""

    command: str
    sample: int
    outcome: Outcome
    raw: str
    error: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass
class DeviceCapture:
    """Everything collected from one device; ``error`` is set when the device failed as a whole."""

    name: str
    platform: str
    hostname: str = ""
    host: str = ""
    captures: list[CommandCapture] = field(default_factory=list)
    error: str = ""
    started_at: datetime | None = None

    def get(self, command: str, sample: int = 1) -> CommandCapture | None:
        """The capture of ``command`` (exact text, whitespace-normalised) for ``sample``."""
        wanted = " ".join(command.split())
        for capture in self.captures:
            if capture.sample == sample and " ".join(capture.command.split()) == wanted:
                return capture
        return None

    def samples(self, command: str) -> list[CommandCapture]:
        wanted = " ".join(command.split())
        found = [c for c in self.captures if " ".join(c.command.split()) == wanted]
        return sorted(found, key=lambda c: c.sample)


@dataclass
class CaptureSet:
    """The devices collected for one run."""

    devices: dict[str, DeviceCapture] = field(default_factory=dict)
    peer: str = ""
    started_at: datetime | None = None
