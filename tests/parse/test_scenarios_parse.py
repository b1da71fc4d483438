"""Every output of every lab scenario parses, and the typed state says what the scenario says.

Two levels:
- file level: each ``<command>.txt`` of each device parses with ``ipsec-doctor parse`` logic
  (TextFSM rows + typed section) without error;
- device level: the device folder read through the plan (``scenario_support.load_device``)
  gives a DeviceState without problems, except the problems a scenario intends (a refused
  command in ``insufficient-data``; variables that cannot be derived where no crypto map entry
  names the peer or the map is bound to no interface).
Spot checks pin typed values (peer, state, counters, SPIs, selectors, evidence lines).
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from ipsec_doctor.errors import ParseError
from ipsec_doctor.model.state import DeviceState, IkeStatus, InterfaceStatus
from ipsec_doctor.parse import parse_device
from ipsec_doctor.parse.logs import classify_log_text
from ipsec_doctor.parse.one_command import parse_one

from .scenario_support import (
    SCENARIOS,
    device_meta,
    load_device,
    peer_for,
    scenario,
    scenario_names,
)

NAMES = scenario_names()

pytestmark = pytest.mark.skipif(not NAMES, reason="no lab scenarios generated yet")


def _decode(filename: str, folder: Path | None = None) -> tuple[str, int]:
    """Test-only inverse of command_filename (the tool itself never decodes names). A name
    ending in ``.2`` is a second sample only beside its first (``show_ip_route_10.4.4.2.txt``
    is the route to 10.4.4.2)."""
    name = filename.removesuffix(".txt")
    sample = 1
    if name.endswith(".2") and (folder is None or (folder / f"{name[:-2]}.txt").is_file()):
        name, sample = name[:-2], 2
    for code, char in (("_", " "), ("%2F", "/"), ("%7C", "|"), ("%25", "%")):
        name = name.replace(code, char)
    return name, sample


def _files() -> list[tuple[str, str, Path]]:
    found: list[tuple[str, str, Path]] = []
    for name in NAMES:
        for device in sorted(p for p in (SCENARIOS / name).iterdir() if p.is_dir()):
            for path in sorted(device.glob("*.txt")):
                found.append((name, device.name, path))
    return found


FILES = _files()


@pytest.mark.parametrize(
    ("name", "device", "path"), FILES, ids=[f"{n}/{d}/{p.name}" for n, d, p in FILES]
)
def test_every_file_parses(name: str, device: str, path: Path) -> None:
    platform = str(device_meta(path.parent)["platform"])
    command, _sample = _decode(path.name, path.parent)
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("% Invalid input"):
        pytest.skip("a refusal, not an output")
    if command.startswith("debug "):
        # debug output reaches a terminal-monitor session as log lines: every line is read as
        # a stamped message (what `analyze --log` and `check --debug` do with it)
        events, rest = classify_log_text(platform, text, command=command)
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines and len(events) + len(rest) == len(lines)
        return
    try:
        result = parse_one(platform, command, text)
    except ParseError as error:  # pragma: no cover - the assertion message is the point
        pytest.fail(f"{name}/{device}/{path.name}: {error}")
    assert result["error"] == "", result["error"]
    if result["section"] is not None:
        assert result["state"] is not None


#: Problems a scenario intends: (scenario, device) -> sections allowed to be unknown.
EXPECTED_PROBLEMS: dict[tuple[str, str], set[str]] = {
    ("insufficient-data", "R1"): {"isakmp_sa"},
    ("crypto-map-not-applied", "R1"): {"crypto_interface"},
}
#: Devices on which no crypto map entry names the peer the harness checks them for (remote
#: access with a dynamic map, a wrong or NATed peer address): the crypto ACL and everything
#: derived from it cannot be read.
UNDERIVABLE = {"crypto_acl", "route_local_lan", "route_remote_lan", "source_interface"}


def _device_cases() -> list[tuple[str, str]]:
    cases: list[tuple[str, str]] = []
    for name in NAMES:
        for device in scenario(name).get("devices", []):  # type: ignore[attr-defined]
            cases.append((name, str(device)))
    return cases


DEVICES = _device_cases()
_STATES: dict[tuple[str, str], DeviceState] = {}


def state_of(name: str, device: str) -> DeviceState:
    key = (name, device)
    if key not in _STATES:
        peer = peer_for(name, device)
        _STATES[key] = parse_device(load_device(SCENARIOS / name / device, peer), peer)
    return _STATES[key]


@pytest.mark.parametrize(("name", "device"), DEVICES, ids=[f"{n}/{d}" for n, d in DEVICES])
def test_device_parses_without_unintended_problems(name: str, device: str) -> None:
    state = state_of(name, device)
    peer = ip_address(peer_for(name, device))
    allowed = set(EXPECTED_PROBLEMS.get((name, device), set()))
    if state.crypto_maps is not None and not state.map_entries_for(peer):
        allowed |= UNDERIVABLE | {"crypto_interface"}
    unexpected = [p for p in state.problems if p.section not in allowed]
    assert not unexpected, [(p.section, p.outcome, p.reason) for p in unexpected]
    for problem in state.problems:
        assert problem.outcome in {"missing", "rejected"}, problem


def _require(name: str) -> None:
    if name not in NAMES:
        pytest.skip(f"scenario {name} not generated")


def test_healthy_typed_values() -> None:
    _require("healthy")
    state = state_of("healthy", "R1")
    peer = ip_address(peer_for("healthy", "R1"))
    assert state.problems == ()
    assert state.clock is not None
    ike = state.ike_sas_for(peer)
    assert ike and ike[0].status is IkeStatus.ESTABLISHED and ike[0].state == "QM_IDLE"
    assert ike[0].active is True
    assert ike[0].source is not None and "QM_IDLE" in ike[0].source.line
    sas, later = state.ipsec_sas_for(peer), state.ipsec_sas_for(peer, later=True)
    assert sas and later
    assert sas[0].has_sas and all(s.startswith("0x") for s in sas[0].inbound_spis)
    assert later[0].encaps > sas[0].encaps and later[0].decaps > sas[0].decaps
    assert sas[0].encaps_source is not None and "#pkts encaps" in sas[0].encaps_source.line
    assert sas[0].local_selector is not None and sas[0].remote_selector is not None
    entry = state.map_entries_for(peer)[0]
    assert entry.acl and entry.interfaces and entry.transform_sets
    assert state.crypto_acl and all(a.acl == entry.acl for a in state.crypto_acl)
    assert state.crypto_acl[0].source_net == entry.local_selectors[0]
    assert state.config is not None and peer in state.config.psk_peers
    assert all("<redacted>" in e.line or "key" not in e.line for e in state.config.sources)
    assert state.routes["route_peer"].found
    assert state.routes["route_local_lan"].connected
    assert state.interfaces and all(i.is_up for i in state.interfaces.values())
    assert state.ike_policies and state.transform_sets and state.engine
    assert state.logs is not None


def test_healthy_both_ends_agree() -> None:
    _require("healthy")
    r1, r2 = state_of("healthy", "R1"), state_of("healthy", "R2")
    p1, p2 = ip_address(peer_for("healthy", "R1")), ip_address(peer_for("healthy", "R2"))
    sa1, sa2 = (r1.ipsec_sas_for(p1) or ())[0], (r2.ipsec_sas_for(p2) or ())[0]
    assert set(sa1.outbound_spis) == set(sa2.inbound_spis)
    assert set(sa1.inbound_spis) == set(sa2.outbound_spis)
    assert sa1.local_selector == sa2.remote_selector
    assert sa1.remote_selector == sa2.local_selector


def test_legacy_12x_layouts() -> None:
    _require("healthy-legacy-12x")
    state = state_of("healthy-legacy-12x", "R1")
    peer = ip_address(peer_for("healthy-legacy-12x", "R1"))
    assert state.problems == ()
    sas = state.ipsec_sas_for(peer)
    assert sas and sas[0].peer == peer and sas[0].has_sas
    ike = state.ike_sas_for(peer)
    assert ike and ike[0].status is IkeStatus.ESTABLISHED


def test_insufficient_data_is_unknown_not_empty() -> None:
    _require("insufficient-data")
    state = state_of("insufficient-data", "R1")
    assert state.ike_sas is None
    assert [p.section for p in state.problems] == ["isakmp_sa"]


def test_phase1_no_response_state() -> None:
    _require("phase1-no-response")
    state = state_of("phase1-no-response", "R1")
    peer = ip_address(peer_for("phase1-no-response", "R1"))
    ike = state.ike_sas_for(peer) or ()
    statuses = {s.status for s in ike}
    assert statuses & {IkeStatus.NO_STATE, IkeStatus.WAITING_RESPONSE}
    assert not any(s.status is IkeStatus.ESTABLISHED for s in ike)


def test_isakmp_disabled_in_config_and_log() -> None:
    _require("isakmp-disabled")
    state = state_of("isakmp-disabled", "R1")
    assert state.config is not None
    assert state.config.isakmp_enabled is False
    assert state.logs is not None
    assert any(e.event == "isakmp_off" for e in state.logs)


def test_source_interface_down_found_without_a_route() -> None:
    _require("source-interface-down")
    state = state_of("source-interface-down", "R1")
    assert state.extras.get("source_interface")
    iface = state.interfaces[str(state.extras["source_interface"])]
    assert iface.status in {InterfaceStatus.DOWN, InterfaceStatus.ADMIN_DOWN}


def test_crypto_map_not_applied_has_no_interfaces() -> None:
    _require("crypto-map-not-applied")
    state = state_of("crypto-map-not-applied", "R1")
    peer = ip_address(peer_for("crypto-map-not-applied", "R1"))
    entry = state.map_entries_for(peer)[0]
    assert entry.interfaces == ()
    assert state.config is not None
    assert entry.name not in state.config.crypto_map_interfaces


def test_no_route_to_peer() -> None:
    _require("no-route-to-peer")
    route = state_of("no-route-to-peer", "R1").routes["route_peer"]
    assert route.found is False and route.source is not None
    assert "not in table" in route.source.line


def test_proxy_id_mismatch_selectors_differ() -> None:
    _require("proxy-id-mismatch")
    r1, r2 = state_of("proxy-id-mismatch", "R1"), state_of("proxy-id-mismatch", "R2")
    e1 = r1.map_entries_for(ip_address(peer_for("proxy-id-mismatch", "R1")))[0]
    e2 = r2.map_entries_for(ip_address(peer_for("proxy-id-mismatch", "R2")))[0]
    assert set(e1.local_selectors) != set(e2.remote_selectors) or set(e1.remote_selectors) != set(
        e2.local_selectors
    )


def test_log_events_carry_evidence() -> None:
    for name, device in DEVICES:
        for event in state_of(name, device).logs or ():
            assert event.source is not None
            assert event.source.command == "show logging"
            assert event.source.line_no > 0 and event.source.line.strip() == event.message


def test_selectors_are_networks() -> None:
    state = state_of(*DEVICES[0])
    for sa in state.ipsec_sas or ():
        assert sa.local_selector is None or sa.local_selector == ip_network(sa.local_selector)
