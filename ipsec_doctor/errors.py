"""The one exception hierarchy of ipsec-doctor.

Contract:
- Every error the tool raises on purpose derives from :class:`IpsecDoctorError`; the CLI maps
  the subclasses to exit codes in one place (usage/config errors: 2, nothing collected: 4).
- :class:`ConfigError`: a bad inventory, platform YAML, runbook or option value; the message
  names the file (and key) at fault.
- :class:`CollectionError`: a device or command could not be read (SSH, timeout, refused).
- :class:`ParseError`: no template knows a command, or a template rejected its output. It keeps
  the platform, command and raw text so callers can report INSUFFICIENT_DATA with the text.
- :class:`UsageError`: the user asked for something impossible (unknown platform, bad
  arguments).
"""

from __future__ import annotations


class IpsecDoctorError(Exception):
    """Base class of every error ipsec-doctor raises on purpose."""


class ConfigError(IpsecDoctorError):
    """Invalid configuration data: inventory, platform YAML, runbooks, options."""


class CollectionError(IpsecDoctorError):
    """A device or a command could not be collected."""


class ParseError(IpsecDoctorError):
    """A command's output could not be parsed (no template, or the template failed)."""

    def __init__(
        self, message: str, *, platform: str = "", command: str = "", raw: str = ""
    ) -> None:
        super().__init__(message)
        self.platform = platform
        self.command = command
        self.raw = raw


class UsageError(IpsecDoctorError):
    """The user asked for something that cannot be done as asked."""
