"""Saving and loading capture folders: what ``--save DIR`` writes and ``analyze DIR`` reads.

Contract:
- :func:`save_captures` writes the capture-folder format of DESIGN.md: per device
  ``<dir>/<device>/device.yaml`` (``platform``, ``hostname``, ``host``; never a username,
  password or secret) and one file per command and sample named by
  :func:`~ipsec_doctor.model.capture.command_filename`, holding the raw text (OK and REJECTED
  outputs; a refusal is saved as the device printed it, so loading gives REJECTED again).
  Commands that timed out or failed, and a device-level error, are listed under
  ``collection`` in ``device.yaml`` (``peer``, ``started_at``, ``error``, ``problems``) so a
  load gives them back with their outcome. A top-level ``capture.yaml`` records the run's
  ``peer`` and ``started_at``. Every text is redacted once more on the way out.
- :func:`load_captures` is the file collector
  (:func:`~ipsec_doctor.collect.file_collector.collect_folder`): the same plan runner over
  the files. Which device is checked for which peer comes from ``peer_for_host``, else from
  each ``device.yaml``'s ``collection.peer`` (saved folders), else from offline discovery of
  ``peer`` (or the folder's ``capture.yaml`` / ``scenario.yaml`` peer).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ipsec_doctor.collect.base import ProgressCallback
from ipsec_doctor.collect.file_collector import (
    CAPTURE_FILE,
    DEVICE_FILE,
    collect_folder,
    folder_peer,
    list_devices,
)
from ipsec_doctor.collect.plan_runner import Deriver
from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.capture import CaptureSet, Outcome, command_filename

_SAVED_OUTCOMES = (Outcome.OK, Outcome.REJECTED, Outcome.UNPARSED)


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "device"


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def save_captures(
    capture_set: CaptureSet,
    directory: Path,
    *,
    peer_for_host: Mapping[str, str] | None = None,
) -> Path:
    """Write ``capture_set`` as a capture folder under ``directory`` (created); return it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create: {exc.strerror or exc}") from exc
    top: dict[str, Any] = {"peer": capture_set.peer}
    if capture_set.started_at is not None:
        top["started_at"] = capture_set.started_at.isoformat()
    _write_text(directory / CAPTURE_FILE, yaml.safe_dump(top, sort_keys=False))
    for name, device in capture_set.devices.items():
        folder = directory / _safe_name(name)
        folder.mkdir(exist_ok=True)
        problems: list[dict[str, Any]] = []
        for capture in device.captures:
            if capture.outcome in _SAVED_OUTCOMES and "{" not in capture.command:
                filename = command_filename(capture.command, capture.sample)
                _write_text(folder / filename, redact(capture.raw))
            else:
                problems.append(
                    {
                        "command": capture.command,
                        "sample": capture.sample,
                        "outcome": str(capture.outcome),
                        "error": redact(capture.error),
                    }
                )
        collection: dict[str, Any] = {}
        peer = (peer_for_host or {}).get(name)
        if peer:
            collection["peer"] = peer
        if device.started_at is not None:
            collection["started_at"] = device.started_at.isoformat()
        if device.error:
            collection["error"] = redact(device.error)
        if problems:
            collection["problems"] = problems
        meta: dict[str, Any] = {"platform": device.platform, "hostname": device.hostname or name}
        if device.host:
            meta["host"] = device.host
        if collection:
            meta["collection"] = collection
        _write_text(folder / DEVICE_FILE, yaml.safe_dump(meta, sort_keys=False))
    return directory


def load_captures(
    directory: Path,
    peer_for_host: Mapping[str, str] | None = None,
    *,
    peer: str = "",
    device: str | None = None,
    default_platform: str | None = None,
    deriver: Deriver | None = None,
    progress: ProgressCallback | None = None,
) -> CaptureSet:
    """Read a capture folder through the plan runner (see module contract)."""
    if peer_for_host is None:
        peer_for_host = _peers_from_folder(directory, peer, device, default_platform)
    return collect_folder(
        directory,
        peer_for_host,
        peer=peer or folder_peer(directory) or next(iter(peer_for_host.values()), ""),
        default_platform=default_platform,
        deriver=deriver,
        progress=progress,
    )


def _peers_from_folder(
    directory: Path, peer: str, device: str | None, default_platform: str | None
) -> dict[str, str]:
    """Saved folders know each device's peer; otherwise discover them for ``peer``."""
    saved = {d.name: d.peer for d in list_devices(directory, default_platform) if d.peer}
    recorded_peer = folder_peer(directory)
    if saved and (not peer or peer == recorded_peer):
        if device is None:
            return saved
        if device in saved:
            return {device: saved[device]}
    wanted = peer or recorded_peer
    if not wanted:
        raise UsageError(
            f"{directory}: which peer? give --peer (the folder has no capture.yaml or "
            "scenario.yaml naming one)"
        )
    from ipsec_doctor.collect.discovery import discover_in_folder

    found = discover_in_folder(directory, wanted, device=device, default_platform=default_platform)
    return found.peer_for_host
