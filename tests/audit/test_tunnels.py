"""Tunnel enumeration per device and pairing of both ends across the fleet."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from ipsec_doctor.audit.collector import audit_device
from ipsec_doctor.audit.tunnels import FleetEnds, TunnelRef, enumerate_tunnels, pair_ends
from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.collect.file_collector import FileCommandRunner
from ipsec_doctor.collect.plan_runner import plan_info
from ipsec_doctor.model.state import ConfigFacts, CryptoMapEntry, DeviceState, IkeSa, IkeStatus
from tests.audit.fleet import SCENARIOS_ROOT


def offline(scenario: str, device: str) -> DeviceState:
    info = plan_info("cisco_ios")
    folder = SCENARIOS_ROOT / scenario / device
    runner = FileCommandRunner(folder, device=device, wider_patterns=info.wider_patterns)
    audit = audit_device(runner, name=device, platform="cisco_ios", clock=NoWaitClock())
    assert audit.base is not None
    from ipsec_doctor.parse import parse_device

    return parse_device(audit.base, None)


def test_crypto_map_and_sas_are_enumerated_with_their_sources() -> None:
    refs = enumerate_tunnels(offline("healthy", "R1"))
    assert refs == [
        TunnelRef(
            peer="10.2.2.1",
            sources=("crypto map VPNMAP 10", "IKEv1 SA (QM_IDLE)", "IPsec SA"),
            local_address="10.1.1.1",
        )
    ]


def test_two_crypto_map_peers_are_two_tunnels() -> None:
    peers = [r.peer for r in enumerate_tunnels(offline("crypto-acl-overlap", "R1"))]
    assert peers == ["10.2.2.1", "10.3.3.1"]


def test_declared_peers_and_config_maps_count_and_own_addresses_do_not() -> None:
    config = ConfigFacts(interface_addresses={"Gi0/0": ip_interface("10.1.1.1/30")})
    entry = CryptoMapEntry("CM", 10, (ip_address("10.2.2.1"),), "ACL", interfaces=("Gi0/0",))
    state = DeviceState(
        name="R1",
        platform="cisco_ios",
        config=config,
        crypto_maps=None,  # show crypto map unknown: the configuration's entries stand in
        ike_sas=(IkeSa(ip_address("10.1.1.1"), None, "MM_NO_STATE", IkeStatus.NO_STATE),),
        extras={"config_crypto_maps": (entry,), "tunnel_peers": {"10.7.7.7": "tunnel protection"}},
    )
    refs = {r.peer: r for r in enumerate_tunnels(state, declared=["10.9.9.9", "10.2.2.1"])}
    assert set(refs) == {"10.2.2.1", "10.7.7.7", "10.9.9.9"}  # never our own 10.1.1.1
    assert refs["10.2.2.1"].sources == ("crypto map CM 10", "inventory data.peers")
    assert refs["10.2.2.1"].local_address == "10.1.1.1"
    assert refs["10.7.7.7"].sources == ("tunnel protection",)


def fleet(**tunnels: list[TunnelRef]) -> FleetEnds:
    ends = FleetEnds()
    addresses = {"R1": {"10.1.1.1"}, "R2": {"10.2.2.1"}, "R3": {"10.3.3.1"}}
    for device, refs in tunnels.items():
        ends.tunnels[device] = refs
        ends.addresses[device] = addresses.get(device, set())
        ends.reached.add(device)
    return ends


def test_both_ends_listed_pair_once_first_name_local() -> None:
    ends = fleet(
        R2=[TunnelRef("10.1.1.1", local_address="10.2.2.1")],
        R1=[TunnelRef("10.2.2.1", local_address="10.1.1.1")],
    )
    (pairing,) = pair_ends(ends)
    assert pairing.local == ("R1", "10.2.2.1")
    assert pairing.remote == ("R2", "10.1.1.1") and pairing.remote_listed


def test_a_reached_end_is_local_when_the_other_is_not() -> None:
    ends = fleet(
        R1=[TunnelRef("10.2.2.1", local_address="10.1.1.1")],
        R2=[TunnelRef("10.1.1.1")],
    )
    ends.reached.discard("R1")
    (pairing,) = pair_ends(ends)
    assert pairing.local == ("R2", "10.1.1.1") and pairing.remote == ("R1", "10.2.2.1")


def test_a_far_end_that_does_not_list_us_keeps_its_own_tunnel() -> None:
    # R1 names R2 (10.2.2.1); R2's crypto map names a typo (10.1.1.9)
    ends = fleet(
        R1=[TunnelRef("10.2.2.1", local_address="10.1.1.1")],
        R2=[TunnelRef("10.1.1.9", local_address="10.2.2.1")],
    )
    pairings = pair_ends(ends)
    assert [(p.local, p.remote, p.remote_listed) for p in pairings] == [
        (("R1", "10.2.2.1"), ("R2", "10.1.1.1"), False),
        (("R2", "10.1.1.9"), None, False),
    ]


def test_an_address_owned_twice_is_ambiguous() -> None:
    ends = fleet(R1=[TunnelRef("10.2.2.1")], R2=[], R3=[])
    ends.addresses["R3"] = {"10.2.2.1"}
    (pairing,) = pair_ends(ends)
    assert pairing.remote is None and "R2, R3" in pairing.note


@pytest.mark.parametrize("scenario", ["healthy", "psk-mismatch"])
def test_scenario_ends_pair(scenario: str, tmp_path: Path) -> None:
    states = {d: offline(scenario, d) for d in ("R1", "R2")}
    ends = FleetEnds(
        tunnels={d: enumerate_tunnels(s) for d, s in states.items()},
        addresses={d: {str(a) for a in s.own_addresses()} for d, s in states.items()},
        reached={"R1", "R2"},
    )
    (pairing,) = pair_ends(ends)
    assert pairing.local == ("R1", "10.2.2.1") and pairing.remote == ("R2", "10.1.1.1")
