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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ipsec_doctor.collect.file_collector import collect_folder, folder_peer, list_devices
from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.errors import UsageError
from ipsec_doctor.model.capture import CaptureSet, DeviceCapture
from ipsec_doctor.model.findings import Finding
from ipsec_doctor.model.report import CommandRecord, DeviceRecord, Report
from ipsec_doctor.model.state import DeviceState, IPAddress, TunnelView
from ipsec_doctor.parse import parse_device
from ipsec_doctor.workflow.roles import endpoint_towards, is_local_for, owns, parse_peer


@dataclass(frozen=True)
class Role:
    """Why a device takes part in a run, and which address it is checked against."""

    role: str  # local / remote
    peer: str
    reason: str = ""


@dataclass
class Plan:
    """The devices of one run: device name → role (insertion order = report order)."""

    peer: str
    roles: dict[str, Role] = field(default_factory=dict)

    @property
    def local_names(self) -> list[str]:
        return [name for name, role in self.roles.items() if role.role == "local"]

    @property
    def remote_name(self) -> str | None:
        return next((n for n, r in self.roles.items() if r.role == "remote"), None)

    def peer_for_host(self) -> dict[str, str]:
        return {name: role.peer for name, role in self.roles.items()}


def device_record(capture: DeviceCapture, role: Role | None) -> DeviceRecord:
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


def parse_states(capture_set: CaptureSet, plan: Plan) -> dict[str, DeviceState]:
    states: dict[str, DeviceState] = {}
    for name, capture in capture_set.devices.items():
        role = plan.roles.get(name)
        states[name] = parse_device(capture, role.peer if role else plan.peer)
    return states


def tunnel_views(states: Mapping[str, DeviceState], plan: Plan) -> list[TunnelView]:
    peer = parse_peer(plan.peer)
    remote_name = plan.remote_name
    remote = states.get(remote_name) if remote_name else None
    views: list[TunnelView] = []
    for name in plan.local_names:
        if name not in states:
            continue
        remote_peer: IPAddress | None = None
        if remote_name and plan.roles[remote_name].peer:
            remote_peer = parse_peer(plan.roles[remote_name].peer)
        views.append(
            TunnelView(local=states[name], peer=peer, remote=remote, remote_peer=remote_peer)
        )
    return views


def diagnose_captures(
    capture_set: CaptureSet,
    plan: Plan,
    *,
    mode: str = "check",
    notes: Sequence[str] = (),
) -> Report:
    """Parse, diagnose and wrap one run's captures into a Report."""
    states = parse_states(capture_set, plan)
    findings: list[Finding] = []
    for view in tunnel_views(states, plan):
        findings.extend(diagnose(view))
    started = capture_set.started_at or datetime.now(UTC)
    devices = tuple(
        device_record(capture, plan.roles.get(name))
        for name, capture in capture_set.devices.items()
    )
    return Report(
        peer=plan.peer,
        started_at=started.isoformat(timespec="seconds"),
        mode=mode,
        devices=devices,
        findings=tuple(findings),
        notes=tuple(notes),
    )


def plan_from_states(
    states: Mapping[str, DeviceState], peer_text: str, local: str | None = None
) -> tuple[Plan, list[str]]:
    """Roles from parsed outputs: who names the peer (local) and who owns it (remote)."""
    peer = parse_peer(peer_text)
    plan = Plan(peer=str(peer))
    notes: list[str] = []
    if local is not None:
        if local not in states:
            raise UsageError(f"no device {local!r} (known: {', '.join(sorted(states))})")
        plan.roles[local] = Role("local", str(peer), "named with --device")
    else:
        for name, state in states.items():
            if is_local_for(state, peer):
                plan.roles[name] = Role("local", str(peer), f"its crypto map or SAs name {peer}")
    if not plan.local_names:
        raise UsageError(
            f"no device has {peer} as a crypto peer (read: {', '.join(sorted(states))}); "
            "name the local router with --device"
        )
    for name, state in states.items():
        if name in plan.roles or not owns(state, peer):
            continue
        endpoint = endpoint_towards(states[plan.local_names[0]], peer)
        if endpoint is None:
            notes.append(f"{name} owns {peer} but the local crypto endpoint is unknown")
            continue
        plan.roles[name] = Role("remote", str(endpoint), f"it owns {peer}; checked for {endpoint}")
        break
    return plan, notes


def analyze_folder(folder: Path, peer_text: str | None = None, device: str | None = None) -> Report:
    """`analyze DIR`: diagnose a capture folder without SSH."""
    peer_text = peer_text or folder_peer(folder)
    if not peer_text:
        raise UsageError(f"{folder}: no peer given; use --peer (no scenario.yaml names one)")
    try:
        peer = parse_peer(peer_text)
    except ValueError as error:
        raise UsageError(str(error)) from error
    names = [d.name for d in list_devices(folder)]
    first_pass = collect_folder(folder, {name: str(peer) for name in names}, peer=str(peer))
    first_states = {name: parse_device(c, str(peer)) for name, c in first_pass.devices.items()}
    plan, notes = plan_from_states(first_states, str(peer), device)
    final = collect_folder(folder, plan.peer_for_host(), peer=str(peer))
    return diagnose_captures(final, plan, mode="analyze", notes=notes)
