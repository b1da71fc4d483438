"""Which devices to check for ``check --peer X [--device NAME]``, and why.

Contract:
- The *local* devices are those that have X as a crypto peer; the *remote* end is the device
  that owns address X. The remote end is checked for the address the local device uses to
  reach it (its crypto endpoint). Every choice carries a reason the CLI can print
  ("R1 chosen: its crypto map VPNMAP 10 names 10.2.2.1").
- Facts come from: the inventory (``data.peers``: remote ends a host has tunnels to;
  ``data.tunnel_endpoints``: the host's own crypto endpoint addresses; groups and defaults
  count); facts the caller already has (e.g. the last audit's history, :class:`HostFacts`);
  and, when those leave the local end, the remote end or its peer unknown and the inventory
  has at most ``ask_limit`` (50) hosts, from asking every device: crypto peers, dynamic maps
  and their interfaces from ``show crypto map``, IKE SAs from ``show crypto isakmp sa``, own
  addresses from ``show running-config`` (``swanctl --list-conns`` / ``--list-sas`` /
  ``ip -br addr`` on strongSwan; a plan may list its own ``discovery`` commands), all read
  by the parse layer.
- Local ends, by the first rule that finds any (:func:`choose`): ``--device``; crypto config
  or ``data.peers`` naming X; an IKE SA with X; the device whose address X's owner names as
  its crypto peer (our crypto map has a typo); devices with a dynamic crypto map.
- Offline, :func:`discover_in_folder` asks the device folders the same way (a
  ``device.yaml``'s ``addresses`` mean the same as ``data.tunnel_endpoints``); as a last
  resort a scenario's first device (``scenario.yaml`` ``devices``) is the local end.
- No local device for X: :class:`~ipsec_doctor.errors.UsageError` (exit 2) whose message says
  which peers the devices do have. A device that could not be asked is a note, not an error.
- Pure decision logic lives in :func:`choose`; only :func:`discover` touches Nornir.
"""

from __future__ import annotations

import importlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from nornir.core import Nornir
from nornir.core.task import Result, Task

from ipsec_doctor.collect.base import NoWaitClock, ProgressCallback
from ipsec_doctor.collect.file_collector import SCENARIO_FILE, FileCommandRunner, list_devices
from ipsec_doctor.collect.nornir_collector import (
    CollectOptions,
    NetmikoCommandRunner,
    _serialised,
    as_nornir,
    close_sessions,
    host_settings,
    run_on_hosts,
)
from ipsec_doctor.collect.plan_runner import (
    PlanStep,
    plan_info,
    run_plan,
)
from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.errors import IpsecDoctorError, UsageError
from ipsec_doctor.model.capture import DeviceCapture

ASK_LIMIT = 50

# What to ask a device to learn its crypto peers and own addresses, per platform.
DISCOVERY_COMMANDS: dict[str, tuple[str, ...]] = {
    "cisco_ios": ("show crypto map", "show running-config"),
    "strongswan": ("swanctl --list-conns", "ip -br addr"),
}
# Asked only when the first commands found no local end (IKE SAs name peers that no crypto map
# names: dynamic maps, tunnel protection). Sampled commands are left out of the first round so
# that an emulator counting answers per device serves the collection its first sample.
DISCOVERY_SA_COMMANDS: dict[str, tuple[str, ...]] = {
    "cisco_ios": ("show crypto isakmp sa",),
    "strongswan": ("swanctl --list-sas",),
}


@dataclass
class HostFacts:
    """What is known of one host: its crypto peers and its own addresses, each with a reason."""

    name: str
    crypto_peers: dict[str, str] = field(default_factory=dict)  # peer -> reason
    own_addresses: dict[str, str] = field(default_factory=dict)  # address -> reason
    endpoint_for: dict[str, str] = field(default_factory=dict)  # peer -> our address to it
    sa_peers: dict[str, str] = field(default_factory=dict)  # peer -> reason (an IKE SA)
    accepts_any: str = ""  # reason, when a dynamic crypto map accepts peers it does not name
    error: str = ""

    def merge(self, other: HostFacts) -> None:
        for mine, theirs in (
            (self.crypto_peers, other.crypto_peers),
            (self.own_addresses, other.own_addresses),
            (self.endpoint_for, other.endpoint_for),
            (self.sa_peers, other.sa_peers),
        ):
            for key, value in theirs.items():
                mine.setdefault(key, value)
        if other.error and not self.error:
            self.error = other.error
        self.accepts_any = self.accepts_any or other.accepts_any

    @property
    def complete(self) -> bool:
        """Both kinds of facts are known (nothing to gain by asking the device)."""
        return bool(self.crypto_peers) and bool(self.own_addresses)


@dataclass(frozen=True)
class Chosen:
    """One device to check, the peer it is checked for, and why it was chosen."""

    device: str
    role: str  # "local" or "remote"
    peer: str
    reason: str


@dataclass
class Discovery:
    """The devices chosen for one peer."""

    peer: str
    chosen: list[Chosen] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    @property
    def local(self) -> list[Chosen]:
        return [c for c in self.chosen if c.role == "local"]

    @property
    def remote(self) -> list[Chosen]:
        return [c for c in self.chosen if c.role == "remote"]

    @property
    def peer_for_host(self) -> dict[str, str]:
        return {c.device: c.peer for c in self.chosen}

    @property
    def hosts(self) -> list[str]:
        return [c.device for c in self.chosen]

    def explain(self) -> list[str]:
        """One line per choice and note, for the CLI."""
        return [c.reason for c in self.chosen] + self.notes


def _address(value: object) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None


def _addresses(value: object) -> list[str]:
    items: Iterable[object]
    if isinstance(value, str | bytes):
        items = [value]
    elif isinstance(value, Iterable):
        items = value
    else:
        items = [value]
    return [a for a in (_address(v) for v in items) if a]


def facts_from_data(name: str, data: Mapping[str, Any], source: str = "inventory") -> HostFacts:
    """Facts from inventory ``data`` (``peers``, ``tunnel_endpoints``) or a device.yaml."""
    facts = HostFacts(name)
    for peer in _addresses(data.get("peers") or ()):
        facts.crypto_peers[peer] = f"its {source} data.peers lists {peer}"
    own_key = "tunnel_endpoints" if "tunnel_endpoints" in data else "addresses"
    endpoints = _addresses(data.get(own_key) or ())
    for address in endpoints:
        label = "data.tunnel_endpoints" if own_key == "tunnel_endpoints" else "addresses"
        facts.own_addresses[address] = f"its {source} {label} lists {address}"
    if len(endpoints) == 1:
        for peer in facts.crypto_peers:
            facts.endpoint_for[peer] = endpoints[0]
    return facts


def facts_from_capture(capture: DeviceCapture, peer: str) -> HostFacts:
    """Facts read by the parse layer from a device's discovery outputs."""
    facts = HostFacts(capture.name)
    if capture.error:
        facts.error = capture.error
        return facts
    try:
        parse = importlib.import_module("ipsec_doctor.parse")
        state = parse.parse_device(capture, peer)
    except Exception as exc:  # the parse layer missing or failing is a note, not a crash
        facts.error = redact(f"{capture.name}: could not read its crypto config: {exc}")
        return facts
    cisco = capture.platform.startswith("cisco")
    addresses_by_interface: dict[str, str] = {}
    config = getattr(state, "config", None)
    if config is not None:
        for interface, address in config.interface_addresses.items():
            addresses_by_interface[interface] = str(address.ip)
    for interface in getattr(state, "interfaces", {}).values():
        if interface.address is not None:
            addresses_by_interface.setdefault(interface.name, str(interface.address.ip))
    for interface, address in addresses_by_interface.items():
        facts.own_addresses.setdefault(address, f"its interface {interface} has {address}")
    for address in state.own_addresses():
        facts.own_addresses.setdefault(str(address), f"it has address {address}")
    for entry in state.crypto_maps or ():
        what = f"crypto map {entry.name} {entry.sequence}" if cisco else f"connection {entry.name}"
        interfaces = list(entry.interfaces)
        if config is not None:
            interfaces += list(config.crypto_map_interfaces.get(entry.name, ()))
        if not entry.peers and not facts.accepts_any:
            facts.accepts_any = (
                f"its {what} is dynamic: it accepts peers it does not name"
                if cisco
                else f"its {what} accepts any peer"
            )
        for entry_peer in entry.peers:
            text = str(entry_peer)
            facts.crypto_peers.setdefault(text, f"its {what} names {text}")
            for interface in interfaces:
                tunnel = config.tunnel(interface) if config is not None else None
                if tunnel is not None:  # route-based: the tunnel source is the endpoint
                    source = tunnel.source
                    endpoint = source if _address(source) else addresses_by_interface.get(source)
                    if endpoint:
                        facts.endpoint_for.setdefault(text, endpoint)
                        break
                if interface in addresses_by_interface:
                    facts.endpoint_for.setdefault(text, addresses_by_interface[interface])
                    break
    for sa in state.ike_sas or ():
        text = str(sa.peer)
        facts.sa_peers.setdefault(text, f"it has an IKE SA with {text} ({sa.state})")
        if sa.local is not None:
            facts.endpoint_for.setdefault(text, str(sa.local))
    return facts


def discovery_steps(platform: str, stage: int = 1) -> list[PlanStep]:
    """The commands that tell a device's crypto peers and own addresses (stage 1) or its
    IKE SAs (stage 2)."""
    if stage == 1:
        commands = plan_info(platform).discovery or DISCOVERY_COMMANDS.get(platform, ())
    else:
        commands = DISCOVERY_SA_COMMANDS.get(platform, ())
    return [PlanStep(id=f"discovery{stage}.{i}", command=c) for i, c in enumerate(commands)]


def _local_candidates(
    wanted: str,
    facts: Mapping[str, HostFacts],
    device: str | None,
    fallback: tuple[str, str] | None,
) -> list[tuple[str, str]]:
    """``[(device, reason)]`` of the local ends, by the first rule that finds any."""
    if device is not None:
        known = facts.get(device)
        why = known.crypto_peers.get(wanted) or known.sa_peers.get(wanted) if known else None
        return [(device, "named with --device" + (f" ({why})" if why else ""))]
    ordered = sorted(facts.items())
    found = [(n, h.crypto_peers[wanted]) for n, h in ordered if wanted in h.crypto_peers]
    if found:
        return found
    found = [(n, h.sa_peers[wanted]) for n, h in ordered if wanted in h.sa_peers]
    if found:
        return found
    owners = [h for _, h in ordered if wanted in h.own_addresses]
    for owner in owners:  # the owner of the peer address names one of our addresses
        for name, host in ordered:
            if name == owner.name:
                continue
            shared = [p for p in owner.crypto_peers if p in host.own_addresses]
            if shared:
                names = ", ".join(sorted(host.crypto_peers)) or "no peer"
                return [
                    (
                        name,
                        f"{owner.name} owns {wanted} and names {name}'s address {shared[0]} as "
                        f"its crypto peer; {name}'s crypto config does not name {wanted} "
                        f"(it names {names})",
                    )
                ]
    found = [(n, h.accepts_any) for n, h in ordered if h.accepts_any]
    if found:
        return found
    if fallback is not None and fallback[0] in facts:
        return [fallback]
    return []


def choose(
    peer: str,
    facts: Mapping[str, HostFacts],
    *,
    device: str | None = None,
    fallback: tuple[str, str] | None = None,
) -> Discovery:
    """Pick the local and remote devices for ``peer`` from ``facts`` (no I/O).

    Local ends, by the first rule that finds any: ``device``; devices whose crypto config
    (or inventory ``data.peers``) names the peer; devices with an IKE SA to it; the device
    whose address the peer's owner names as its crypto peer (a typo in our crypto map);
    devices with a dynamic crypto map (they accept peers they do not name); ``fallback``.
    """
    wanted = _address(peer)
    if wanted is None:
        raise UsageError(f"--peer {peer!r} is not an IP address")
    result = Discovery(peer=wanted)
    for name, why in _local_candidates(wanted, facts, device, fallback):
        result.chosen.append(Chosen(name, "local", wanted, f"{name} chosen: {why}"))
    locals_ = [facts.get(c.device) or HostFacts(c.device) for c in result.local]
    local_names = {c.device for c in result.local}
    owners = [
        name
        for name, host in sorted(facts.items())
        if wanted in host.own_addresses and name not in local_names
    ]
    if owners:
        owner = owners[0]
        remote_peer, how = _remote_peer(wanted, locals_, facts[owner])
        if remote_peer:
            reason = (
                f"{owner} is the remote end: {facts[owner].own_addresses[wanted]}; "
                f"checked for {remote_peer} ({how})"
            )
            result.chosen.append(Chosen(owner, "remote", remote_peer, reason))
        else:
            result.notes.append(
                f"{owner} owns {wanted} but the address the local end uses towards it is "
                "unknown; the remote end is not checked"
            )
        for other in owners[1:]:
            result.notes.append(f"{other} also has address {wanted}; not checked")
    else:
        result.notes.append(
            f"no device in the inventory owns {wanted}: only the local end is checked"
        )
    for _name, host in sorted(facts.items()):
        if host.error:
            result.notes.append(host.error)
    if not result.local:
        peers = sorted({p for h in facts.values() for p in h.crypto_peers})
        have = f"; the devices have these crypto peers: {', '.join(peers)}" if peers else ""
        detail = "".join(f"\n  {note}" for note in result.notes if "owns" not in note)
        raise UsageError(f"no device has {wanted} as a crypto peer{have}{detail}")
    return result


def _remote_peer(peer: str, locals_: Sequence[HostFacts], remote: HostFacts) -> tuple[str, str]:
    for local in locals_:
        endpoint = local.endpoint_for.get(peer)
        if endpoint:
            return endpoint, f"{local.name}'s crypto endpoint towards {peer}"
    for local in locals_:
        shared = [p for p in remote.crypto_peers if p in local.own_addresses]
        if shared:
            return shared[0], f"{remote.name}'s crypto peer that {local.name} owns"
    for local in locals_:
        if len(local.own_addresses) == 1:
            only = next(iter(local.own_addresses))
            return only, f"{local.name}'s only known address"
    return "", ""


def _needs_asking(peer: str, facts: Mapping[str, HostFacts], device: str | None) -> bool:
    """True when asking the devices could find the local end, the remote end or its peer."""
    try:
        found = choose(peer, facts, device=device)
    except UsageError:
        return True
    if found.remote:
        return False
    return any(not f.own_addresses for n, f in facts.items() if n not in found.hosts)


def _ask_in_stages(
    peer: str,
    facts: dict[str, HostFacts],
    device: str | None,
    ask: Callable[[int], Mapping[str, Any]],
) -> None:
    """Merge what the devices say: stage 1 always, stage 2 (IKE SAs) only if no local end."""
    wanted = _address(peer) or peer
    for stage in (1, 2):
        if stage == 2:
            try:
                choose(peer, facts, device=device)
                return
            except UsageError:
                pass
        for name, result in ask(stage).items():
            if isinstance(result, DeviceCapture):
                if result.captures or result.error:
                    facts[name].merge(facts_from_capture(result, wanted))
            elif result is not None:
                facts[name].error = f"{name}: could not be asked: {result}"


# -- live -----------------------------------------------------------------------------------------


def probe_host(
    task: Task,
    peer: str,
    options: CollectOptions,
    stage: int = 1,
    progress: ProgressCallback | None = None,
) -> Result:
    """Nornir task: run the discovery commands on one host; the result is its DeviceCapture."""
    host = task.host
    capture = DeviceCapture(name=host.name, platform=host.platform or "", host=str(host.hostname))
    runner: NetmikoCommandRunner | None = None
    keep = False
    try:
        settings = host_settings(host, options)
        steps = discovery_steps(settings.platform, stage)
        if not steps:
            if stage == 1:
                capture.error = f"{host.name}: no discovery commands for {settings.platform}"
            return Result(host=host, result=capture)
        runner = NetmikoCommandRunner(host, task.nornir.config, settings, options)
        runner.open()
        run_plan(
            runner,
            steps,
            device=capture,
            peer=peer,
            interval=None,
            clock=NoWaitClock(),
            read_timeout=options.read_timeout or plan_info(settings.platform).read_timeout,
            known_secrets=settings.known,
            progress=progress,
        )
        keep = True
    except IpsecDoctorError as exc:
        capture.error = str(exc)
    except Exception as exc:  # a probe must never abort discovery
        capture.error = f"{host.name}: could not be asked: {type(exc).__name__}: {exc}"
    finally:
        if runner is not None:
            if keep:  # collection reuses the session and these outputs
                runner.detach(capture.captures)
            else:
                runner.close()
    return Result(host=host, result=capture)


def discover(
    nornir_or_inventory: Nornir | Path | str,
    peer: str,
    *,
    device: str | None = None,
    known: Mapping[str, HostFacts] | None = None,
    ask_limit: int = ASK_LIMIT,
    options: CollectOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Discovery:
    """Choose the devices to check for ``peer`` from an inventory (see module contract)."""
    nr = as_nornir(nornir_or_inventory)
    hosts = nr.inventory.hosts
    if device is not None and device not in hosts:
        raise UsageError(f"--device {device}: not in the inventory")
    facts: dict[str, HostFacts] = {}
    for name, host in hosts.items():  # host.get() resolves groups and defaults too
        data = {key: host.get(key) for key in ("peers", "tunnel_endpoints") if host.get(key)}
        facts[name] = facts_from_data(name, data)
    for name, extra in (known or {}).items():
        if name in facts:
            facts[name].merge(extra)
    asked: list[str] = []
    notes: list[str] = []
    wanted = _address(peer) or peer
    if _needs_asking(peer, facts, device):
        if len(hosts) <= ask_limit:
            asked = sorted(hosts)
            serial = _serialised(progress)

            def ask(stage: int) -> dict[str, Any]:
                return run_on_hosts(
                    nr,
                    asked,
                    probe_host,
                    peer=wanted,
                    options=options or CollectOptions(),
                    stage=stage,
                    progress=serial,
                )

            _ask_in_stages(peer, facts, device, ask)
        else:
            notes.append(
                f"the inventory has {len(hosts)} hosts, more than {ask_limit} to ask each one; "
                "use --device or list data.peers / data.tunnel_endpoints in the inventory"
            )
    try:
        found = choose(peer, facts, device=device)
    except UsageError as exc:
        close_sessions(nr, asked)
        if notes:
            raise UsageError(f"{exc}\n  " + "\n  ".join(notes)) from None
        raise
    close_sessions(nr, [name for name in asked if name not in found.hosts])
    found.asked = asked
    found.notes.extend(notes)
    return found


# -- offline --------------------------------------------------------------------------------------


def discover_in_folder(
    folder: Path,
    peer: str,
    *,
    device: str | None = None,
    default_platform: str | None = None,
) -> Discovery:
    """Choose the devices of a capture folder to check for ``peer``."""
    devices = {d.name: d for d in list_devices(folder, default_platform)}
    if device is not None and device not in devices:
        raise UsageError(f"--device {device}: no such device in {folder}")
    wanted = _address(peer) or peer
    facts: dict[str, HostFacts] = {}
    for name, folder_device in devices.items():
        facts[name] = facts_from_data(name, folder_device.data, source="device.yaml")

    def ask(stage: int) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, folder_device in devices.items():
            if facts[name].complete:
                continue
            steps = discovery_steps(folder_device.platform, stage)
            if not steps:
                continue
            info = plan_info(folder_device.platform)
            capture = DeviceCapture(name=name, platform=folder_device.platform)
            runner = FileCommandRunner(
                folder_device.directory, device=name, wider_patterns=info.wider_patterns
            )
            run_plan(
                runner,
                steps,
                device=capture,
                peer=wanted,
                interval=None,
                clock=NoWaitClock(),
                known_secrets=folder_device.secrets,
            )
            if any(c.ok for c in capture.captures):
                found[name] = capture
        return found

    _ask_in_stages(peer, facts, device, ask)
    found = choose(peer, facts, device=device, fallback=_scenario_first_device(folder))
    found.asked = sorted(devices)
    return found


def _scenario_first_device(folder: Path) -> tuple[str, str] | None:
    """A scenario names the device its peer is checked from first (``devices: [R1, R2]``)."""
    path = folder / SCENARIO_FILE
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    devices = raw.get("devices") if isinstance(raw, dict) else None
    if isinstance(devices, list) and devices:
        return str(devices[0]), f"the first device of {SCENARIO_FILE}"
    return None
