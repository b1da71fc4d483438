"""`--runbook auto`: the packaged runbook that fits the tunnel's design.

Contract:
- :func:`peer_design` reads the local device's typed state: a protected tunnel interface whose
  destination is the peer is ``tunnel_protection`` (route-based, VTI); a crypto map entry
  (shown, or in the running configuration) that names the peer is ``crypto_map``; else None.
  It reports the fact it used, for the person.
- :func:`choose_runbook` reads the running configuration of the local end(s) first (the first
  step of every packaged runbook reads it anyway, and reuses it), then picks, among the valid
  runbooks for the local platform, the first whose ``when`` names the peer's design; then
  one whose ``when`` names a feature the device has; then ``crypto-map``; then the first one
  for the platform. It says why. No runbook for the platform is a UsageError.
"""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.features import Feature
from ipsec_doctor.model.state import CryptoMapEntry, DeviceState
from ipsec_doctor.parse import parse_device
from ipsec_doctor.runbook.schema import Runbook, load_runbook_file, runbook_paths
from ipsec_doctor.runbook.session import PipelineSession

DEFAULT = "crypto-map"


def peer_design(state: DeviceState, peer: str) -> tuple[Feature | None, str]:
    """The design of the tunnel to ``peer`` on this device, and the fact that says so."""
    address = ip_address(peer)
    config = state.config
    for tunnel in config.tunnels if config is not None else ():
        if tunnel.destination == address:
            return (
                Feature.TUNNEL_PROTECTION,
                f"its {tunnel.name} has destination {peer} and tunnel protection ipsec "
                f"profile {tunnel.ipsec_profile}",
            )
    entries = list(state.map_entries_for(address))
    if not entries:
        entries = [
            e
            for e in state.extras.get("config_crypto_maps", ())
            if isinstance(e, CryptoMapEntry) and address in e.peers
        ]
    if entries:
        return (
            Feature.CRYPTO_MAP,
            f"its crypto map {entries[0].name} {entries[0].sequence} names {peer}",
        )
    return None, ""


def _candidates(platform: str, directory: Path | None) -> list[Runbook]:
    found: list[Runbook] = []
    for path in runbook_paths(directory):
        try:
            runbook = load_runbook_file(path)
        except ConfigError:
            continue  # --list reports it; auto never picks a broken runbook
        if runbook.platform == platform:
            found.append(runbook)
    return found


def choose_runbook(session: PipelineSession, directory: Path | None = None) -> tuple[Runbook, str]:
    """The runbook for this session's tunnel, and why (see the module contract)."""
    local = next((e for e in session.ends if e.info.role == "local"), None)
    if local is None:
        raise UsageError("no local device to choose a runbook for")
    candidates = _candidates(local.info.platform, directory)
    if not candidates:
        raise UsageError(
            f"no packaged runbook for platform {local.info.platform}; give one with --runbook FILE"
        )
    session.read_first(["running_config"])
    try:
        state = parse_device(local.capture, local.info.peer)
    except Exception:  # unreadable: fall back to the default below
        state = None
    if state is not None:
        design, fact = peer_design(state, local.info.peer)
        if design is not None:
            for runbook in candidates:
                if design in runbook.when:
                    return runbook, f"{local.name}: {fact} ({design.value})"
        features = local.features()
        for runbook in candidates:
            present = [f.value for f in runbook.when if features.get(f.value)]
            if present:
                return runbook, f"{local.name} has {', '.join(present)}"
    for runbook in candidates:
        if runbook.name == DEFAULT:
            return runbook, "the default (the tunnel's design could not be told)"
    return candidates[0], f"the first runbook for {local.info.platform}"
