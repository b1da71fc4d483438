"""The audit log of intrusive steps: every debug, clear and ping sent to a device, and its undo.

Contract:
- One JSON object per line (JSON lines), appended, UTF-8, one line per command *after* it ran
  (or failed): ``time`` (UTC, ISO 8601 with milliseconds), ``user``
  (:func:`getpass.getuser`), ``host`` (this machine), ``pid``, ``device``, ``peer``,
  ``action`` (``do``: the intrusive command itself, ``undo``: the command that reverts it,
  ``check``: a read that verifies an undo), ``command`` (the exact text typed) and ``result``
  (``ok``, ``rejected: <device line>``, ``error: <reason>``, ``interrupted``), plus
  ``session`` (one id per debug / clear / ping run, to group a step with its undo).
- Path: the ``path`` given, else ``$IPSEC_DOCTOR_STATE_DIR/intrusive.log``, else
  ``$XDG_STATE_HOME/ipsec-doctor/intrusive.log``, else
  ``~/.local/state/ipsec-doctor/intrusive.log``. The folder is created (mode 0700) and the
  file is created with mode 0600.
- :meth:`AuditLog.check_writable` is called before any intrusive command is sent: a log that
  cannot be written is a :class:`~ipsec_doctor.errors.ConfigError` and nothing runs. A write
  that fails later (disk full while undoing) never stops an undo: it raises
  :class:`AuditWriteError` only from :meth:`AuditLog.record` calls made with
  ``strict=True``; otherwise it is remembered in :attr:`AuditLog.failures`.
- Each line is written with one ``write`` on a file opened in append mode and flushed and
  fsync'ed, so concurrent ipsec-doctor processes never interleave partial lines. A lock
  serialises writers of one process. Results are redacted and cut to 500 characters.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.errors import ConfigError

ENV_STATE_DIR = "IPSEC_DOCTOR_STATE_DIR"
LOG_NAME = "intrusive.log"
MAX_RESULT = 500


class AuditWriteError(ConfigError):
    """The audit log could not be written."""


def default_audit_path() -> Path:
    """Where the audit log goes when no path is given (see the module contract)."""
    state_dir = os.environ.get(ENV_STATE_DIR)
    if state_dir:
        return Path(state_dir).expanduser() / LOG_NAME
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "ipsec-doctor" / LOG_NAME
    return Path.home() / ".local" / "state" / "ipsec-doctor" / LOG_NAME


def current_user() -> str:
    """The login name for the audit log ("unknown" when the system cannot say)."""
    try:
        return getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (a bare container)
        return "unknown"


def new_session_id() -> str:
    """A short id grouping the commands of one intrusive run."""
    return uuid.uuid4().hex[:12]


@dataclass
class AuditLog:
    """Appends JSON lines to the audit log file (see the module contract)."""

    path: Path = field(default_factory=default_audit_path)
    known_secrets: tuple[str, ...] = ()
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path).expanduser()
        self._lock = threading.Lock()
        self._user = current_user()
        self._host = socket.gethostname()

    def check_writable(self) -> None:
        """Create the folder and file if needed; raise ConfigError if they cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(descriptor)
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot write the audit log of intrusive steps "
                f"({exc.strerror or exc}); set {ENV_STATE_DIR} or --audit-log to a writable place"
            ) from exc

    def record(
        self,
        *,
        device: str,
        command: str,
        result: str,
        action: str = "do",
        peer: str = "",
        session: str = "",
        strict: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        """Append one line; returns the record written (see the module contract)."""
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "user": self._user,
            "host": self._host,
            "pid": os.getpid(),
            "device": device,
            "peer": peer,
            "action": action,
            "command": command,
            "result": redact(" ".join(str(result).split()), self.known_secrets)[:MAX_RESULT],
            "session": session,
        }
        entry.update(extra)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(descriptor, line.encode("utf-8"))
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        except OSError as exc:
            message = f"{self.path}: audit log write failed: {exc.strerror or exc}"
            self.failures.append(message)
            if strict:
                raise AuditWriteError(message) from exc
        return entry


def read_audit_log(path: Path) -> list[dict[str, Any]]:
    """The records of an audit log file (for tests and ``history``); [] if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.strip():
            loaded = json.loads(line)
            if isinstance(loaded, dict):
                records.append(loaded)
    return records


def commands_of(records: Iterable[dict[str, Any]], action: str | None = None) -> list[str]:
    """The ``command`` of each record (of one ``action`` when given), in order."""
    return [str(r.get("command")) for r in records if action is None or r.get("action") == action]
