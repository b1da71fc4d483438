"""The offline collector: capture folders read through the same plan runner as live devices.

Contract:
- A capture folder (DESIGN.md "Capture folders") holds one directory per device with
  ``device.yaml`` (``platform``, ``hostname``; optional ``host``/``port``; a lab's
  ``username``/``password``/``secret`` are used only to mask those values, never copied) and one
  ``<command>.txt`` per command (``<command>.2.txt`` for the second sample). A directory
  without ``device.yaml`` counts as a device when it holds ``*.txt`` files and a default
  platform is given.
- :class:`FileCommandRunner` answers a command from, in order: the exact file for the sample
  (``.2`` for sample 2), the wider outputs the plan names, and the unfiltered output narrowed by
  the command's ``| include``-style filter
  (:func:`~ipsec_doctor.model.lookup.candidate_commands`). Sample 2 is never answered by
  sample 1. A leading ``R1#show ...`` echo line (also abbreviated: ``R1#sh cry isa sa``) and
  a trailing lone prompt line are dropped.
  No file: :class:`~ipsec_doctor.collect.base.OutputMissingError` (``MISSING``); a file holding
  ``% Invalid input`` becomes ``REJECTED`` in the plan runner like a live refusal.
- Folders written by :func:`~ipsec_doctor.collect.capture_store.save_captures` also record the
  device-level error and the commands that timed out or failed (``collection`` in
  ``device.yaml``); those come back with their original outcome and message.
- :func:`collect_folder` runs every device's plan with a :class:`~ipsec_doctor.collect.base.
  NoWaitClock` (nothing waits offline) and returns a :class:`CaptureSet`, so ``analyze DIR``
  and a live ``check`` differ only in their command runner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ipsec_doctor.collect.base import (
    CommandCollectionError,
    CommandTimeoutError,
    NoWaitClock,
    OutputMissingError,
    ProgressCallback,
    ProgressEvent,
)
from ipsec_doctor.collect.plan_runner import Deriver, plan_info, run_plan
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.capture import (
    CaptureSet,
    DeviceCapture,
    Outcome,
    command_filename,
    strip_echo,
)
from ipsec_doctor.model.lookup import (
    apply_output_filter,
    candidate_commands,
    split_output_filter,
)

DEVICE_FILE = "device.yaml"
CAPTURE_FILE = "capture.yaml"
SCENARIO_FILE = "scenario.yaml"

# Sample device line: "R1#" or "R1>" or "R1(config)#" alone at the end of a pasted output
_TRAILING_PROMPT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}(?:\([\w\-]+\))?[#>]\s*$")


@dataclass
class FolderDevice:
    """One device directory of a capture folder."""

    name: str
    directory: Path
    platform: str
    hostname: str = ""
    host: str = ""
    port: int | None = None
    peer: str = ""  # the peer it was collected for (saved folders)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    error: str = ""
    started_at: datetime | None = None
    recorded: dict[tuple[str, int], tuple[Outcome, str]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # the rest of device.yaml


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_device(directory: Path, default_platform: str | None = None) -> FolderDevice:
    """The :class:`FolderDevice` of ``directory`` (its ``device.yaml``, if any)."""
    path = directory / DEVICE_FILE
    raw: Any = _load_yaml(path) if path.is_file() else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping, found {type(raw).__name__}")
    platform = raw.get("platform") or default_platform
    if not platform:
        raise ConfigError(f"{path}: no 'platform' (cisco_ios, cisco_asa, strongswan, f5_bigip)")
    collection = raw.get("collection") or {}
    recorded: dict[tuple[str, int], tuple[Outcome, str]] = {}
    started_at: datetime | None = None
    if isinstance(collection, dict):
        for item in collection.get("problems") or ():
            if not isinstance(item, dict) or "command" not in item:
                continue
            try:
                outcome = Outcome(str(item.get("outcome", "error")))
            except ValueError:
                outcome = Outcome.ERROR
            key = (" ".join(str(item["command"]).split()), int(item.get("sample", 1)))
            recorded[key] = (outcome, str(item.get("error", "")))
        stamp = collection.get("started_at")
        if isinstance(stamp, datetime):
            started_at = stamp
        elif isinstance(stamp, str):
            try:
                started_at = datetime.fromisoformat(stamp)
            except ValueError:
                started_at = None
    port = raw.get("port")
    known = {"platform", "hostname", "host", "port", "username", "password", "secret"}
    return FolderDevice(
        name=directory.name,
        directory=directory,
        platform=str(platform),
        hostname=str(raw.get("hostname") or ""),
        host=str(raw.get("host") or ""),
        port=int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
        peer=str(collection.get("peer") or "") if isinstance(collection, dict) else "",
        secrets=tuple(str(raw[k]) for k in ("password", "secret") if raw.get(k)),
        error=str(collection.get("error") or "") if isinstance(collection, dict) else "",
        started_at=started_at,
        recorded=recorded,
        data={k: v for k, v in raw.items() if k not in known and k != "collection"},
    )


def list_devices(folder: Path, default_platform: str | None = None) -> list[FolderDevice]:
    """The devices of a capture folder, by name."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    devices: list[FolderDevice] = []
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        has_yaml = (child / DEVICE_FILE).is_file()
        if has_yaml or (default_platform and any(child.glob("*.txt"))):
            devices.append(read_device(child, default_platform))
    if not devices:
        raise UsageError(
            f"{folder}: no device directories (each needs a {DEVICE_FILE} with its platform)"
        )
    return devices


def folder_peer(folder: Path) -> str:
    """The peer a folder was captured for: ``capture.yaml`` or a scenario's ``scenario.yaml``."""
    for name in (CAPTURE_FILE, SCENARIO_FILE):
        path = folder / name
        if path.is_file():
            raw = _load_yaml(path)
            if isinstance(raw, dict) and raw.get("peer"):
                return str(raw["peer"])
    return ""


# Sample device line: "R1#sh cry isa sa" (a pasted echo of an abbreviated show command)
_ABBREVIATED_ECHO = re.compile(r"^\s*[A-Za-z0-9_.\-]{1,64}(?:\([\w\-]+\))?[#>]\s*sh(?:o|ow)?\s+\S")


def _clean(text: str, command: str) -> str:
    text = strip_echo(text, command)
    first = next((line for line in text.split("\n") if line.strip()), "")
    if _ABBREVIATED_ECHO.match(first):
        text = text.split(first + "\n", 1)[-1] if first + "\n" in text else ""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and _TRAILING_PROMPT.match(lines[-1].strip()):
        lines.pop()
        return "\n".join(lines) + "\n"
    return text


class FileCommandRunner:
    """A :class:`~ipsec_doctor.collect.base.CommandRunner` over one device directory."""

    def __init__(
        self,
        directory: Path,
        *,
        device: str,
        wider_patterns: Sequence[tuple[str, Sequence[str]]] = (),
        recorded: Mapping[tuple[str, int], tuple[Outcome, str]] | None = None,
    ) -> None:
        self.directory = directory
        self._device = device
        self.wider_patterns = wider_patterns
        self.recorded = dict(recorded or {})
        self.files_used: dict[tuple[str, int], str] = {}

    @property
    def device(self) -> str:
        return self._device

    def find(self, command: str, sample: int) -> tuple[Path, str] | None:
        """The file answering ``command`` for ``sample`` and the command that file holds."""
        for candidate in candidate_commands(command, self.wider_patterns):
            path = self.directory / command_filename(candidate, sample)
            if path.is_file():
                return path, candidate
        return None

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        found = self.find(command, sample)
        if found is None:
            recorded = self.recorded.get((" ".join(command.split()), sample))
            if recorded is not None and recorded[0] is not Outcome.MISSING:
                outcome, message = recorded
                error = CommandTimeoutError if outcome is Outcome.TIMEOUT else None
                if error is not None:
                    raise error(message, device=self.device, command=command)
                raise CommandCollectionError(message, device=self.device, command=command)
            where = "sample 2 " if sample > 1 else ""
            raise OutputMissingError(
                f"{self.device}: no {where}output of {command!r} in {self.directory}",
                device=self.device,
                command=command,
            )
        path, answered_by = found
        self.files_used[(command, sample)] = path.name
        text = path.read_text(encoding="utf-8", errors="replace")
        text = _clean(text.replace("\r\n", "\n").replace("\r", "\n"), answered_by)
        with_filter = candidate_commands(command, self.wider_patterns, strip_filter=False)
        if answered_by not in with_filter:  # an unfiltered output: narrow it as the device would
            text = apply_output_filter(text, split_output_filter(command)[1])
        return text

    def reconnect(self) -> bool:
        return False


def collect_device(
    device: FolderDevice,
    peer: str,
    *,
    interval: float | None = 0.0,
    deriver: Deriver | None = None,
    progress: ProgressCallback | None = None,
) -> DeviceCapture:
    """Run ``device``'s platform plan over its directory for ``peer``."""
    capture = DeviceCapture(
        name=device.name,
        platform=device.platform,
        hostname=device.hostname,
        host=device.host,
        started_at=device.started_at,
    )
    files = list(device.directory.glob("*.txt"))
    if device.error and not files:
        capture.error = device.error
        if progress is not None:
            progress(ProgressEvent(device.name, "", 1, None, message=device.error))
        return capture
    info = plan_info(device.platform)
    runner = FileCommandRunner(
        device.directory,
        device=device.name,
        wider_patterns=info.wider_patterns,
        recorded=device.recorded,
    )
    run_plan(
        runner,
        info.steps,
        device=capture,
        peer=peer,
        interval=interval,
        clock=NoWaitClock(),
        read_timeout=info.read_timeout,
        deriver=deriver,
        known_secrets=device.secrets,
        progress=progress,
    )
    capture.error = device.error  # a device that failed midway keeps its partial captures
    return capture


def collect_folder(
    folder: Path,
    peer_for_host: Mapping[str, str],
    *,
    peer: str = "",
    default_platform: str | None = None,
    deriver: Deriver | None = None,
    progress: ProgressCallback | None = None,
) -> CaptureSet:
    """Collect the devices named in ``peer_for_host`` (device -> peer it is checked for)."""
    devices = {d.name: d for d in list_devices(folder, default_platform)}
    unknown = sorted(set(peer_for_host) - set(devices))
    if unknown:
        raise UsageError(
            f"{folder}: no device {', '.join(unknown)} (has: {', '.join(sorted(devices))})"
        )
    result = CaptureSet(peer=peer)
    for name, device_peer in peer_for_host.items():
        result.devices[name] = collect_device(
            devices[name], device_peer, deriver=deriver, progress=progress
        )
    stamps = [d.started_at for d in result.devices.values() if d.started_at is not None]
    result.started_at = min(stamps) if stamps else None
    return result
