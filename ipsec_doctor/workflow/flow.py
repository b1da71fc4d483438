"""One pipeline for every mode: captures → typed state → tunnel views → findings → Report.

Contract:
- :func:`diagnose_captures` is the single place where a :class:`CaptureSet` becomes a
  :class:`Report`: each device is parsed for the peer it was checked against, every local end
  gets a :class:`TunnelView` (with the remote end when it was read), and the diagnosis runs on
  each view. `check`, `analyze`, `audit` and `runbook` all end here, so no rule is written twice.
- :func:`analyze_folder` is `analyze DIR`: the same plan runner over files. Roles are found from
  the outputs themselves (the local end names the peer in a crypto map or SA; the remote end
  owns the peer address), so a folder a user filled by hand with pasted outputs works too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

from ipsec_doctor.collect.discovery import Chosen, Discovery, discover_in_folder
from ipsec_doctor.collect.file_collector import collect_folder, folder_peer
from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.errors import UsageError
from ipsec_doctor.model.capture import CaptureSet, DeviceCapture
from ipsec_doctor.model.findings import Finding
from ipsec_doctor.model.report import CommandRecord, DeviceRecord, Report
from ipsec_doctor.model.state import DeviceState, IPAddress, TunnelView
from ipsec_doctor.parse import parse_device


def parse_peer(text: str) -> IPAddress:
    """``text`` as an address, or a UsageError a person can act on."""
    try:
        return ip_address(text.strip())
    except ValueError as error:
        raise UsageError(f"{text!r} is not an IPv4 or IPv6 address") from error


def device_record(capture: DeviceCapture, role: Chosen | None) -> DeviceRecord:
    return DeviceRecord(
        name=capture.name,
        platform=capture.platform,
        hostname=capture.hostname,
        role=role.role if role else "",
        peer=role.peer if role else "",
        reason=role.reason if role else "",
        error=capture.error,
        commands=tuple(
            CommandRecord(c.command, c.sample, c.outcome.value, c.error, c.elapsed)
            for c in capture.captures
        ),
    )


def _roles(plan: Discovery) -> dict[str, Chosen]:
    return {chosen.device: chosen for chosen in plan.chosen}


def parse_states(capture_set: CaptureSet, plan: Discovery) -> dict[str, DeviceState]:
    roles = _roles(plan)
    states: dict[str, DeviceState] = {}
    for name, capture in capture_set.devices.items():
        role = roles.get(name)
        states[name] = parse_device(capture, role.peer if role else plan.peer)
    return states


def tunnel_views(states: Mapping[str, DeviceState], plan: Discovery) -> list[TunnelView]:
    """One view per local end, each with the remote end when it was read."""
    peer = parse_peer(plan.peer)
    remote = next((c for c in plan.remote if c.device in states), None)
    remote_state = states[remote.device] if remote else None
    remote_peer = parse_peer(remote.peer) if remote and remote.peer else None
    return [
        TunnelView(local=states[c.device], peer=peer, remote=remote_state, remote_peer=remote_peer)
        for c in plan.local
        if c.device in states
    ]


def diagnose_captures(
    capture_set: CaptureSet,
    plan: Discovery,
    *,
    mode: str = "check",
    notes: Sequence[str] = (),
) -> Report:
    """Parse, diagnose and wrap one run's captures into a Report."""
    return diagnose_states(
        capture_set, plan, parse_states(capture_set, plan), mode=mode, notes=notes
    )


def diagnose_states(
    capture_set: CaptureSet,
    plan: Discovery,
    states: Mapping[str, DeviceState],
    *,
    mode: str = "check",
    notes: Sequence[str] = (),
) -> Report:
    """Diagnose already parsed states (``parse_states``, possibly with more log events joined,
    as ``analyze --log`` does) and wrap them into a Report."""
    findings: list[Finding] = []
    for view in tunnel_views(states, plan):
        findings.extend(diagnose(view))
    started = capture_set.started_at or datetime.now(UTC)
    roles = _roles(plan)
    devices = tuple(
        device_record(capture, roles.get(name)) for name, capture in capture_set.devices.items()
    )
    return Report(
        peer=plan.peer,
        started_at=started.isoformat(timespec="seconds"),
        mode=mode,
        devices=devices,
        findings=tuple(findings),
        notes=tuple(notes),
    )


def analyze_folder(folder: Path, peer_text: str | None = None, device: str | None = None) -> Report:
    """`analyze DIR`: diagnose a capture folder without SSH."""
    _, plan, captures = read_folder(folder, peer_text, device)
    return diagnose_captures(captures, plan, mode="analyze", notes=plan.notes)


def read_folder(
    folder: Path, peer_text: str | None = None, device: str | None = None
) -> tuple[IPAddress, Discovery, CaptureSet]:
    """The peer (``peer_text``, else the folder's ``scenario.yaml``), the devices chosen for it
    and their captures, read from a capture folder by the plan runner."""
    peer_text = peer_text or folder_peer(folder)
    if not peer_text:
        raise UsageError(f"{folder}: no peer given; use --peer (no scenario.yaml names one)")
    peer = parse_peer(peer_text)
    plan = discover_in_folder(folder, str(peer), device=device)
    captures = collect_folder(folder, plan.peer_for_host, peer=str(peer))
    return peer, plan, captures
