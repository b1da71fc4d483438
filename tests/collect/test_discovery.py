"""Choosing the local and remote devices for a peer, with reasons."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.discovery import (
    HostFacts,
    choose,
    discover,
    discover_in_folder,
    facts_from_data,
)
from ipsec_doctor.errors import UsageError


def facts(**hosts: HostFacts) -> dict[str, HostFacts]:
    return dict(hosts)


R1 = HostFacts(
    "R1",
    crypto_peers={"10.2.2.1": "its crypto map VPNMAP 10 names 10.2.2.1"},
    own_addresses={"10.1.1.1": "its interface GigabitEthernet0/0 has 10.1.1.1"},
    endpoint_for={"10.2.2.1": "10.1.1.1"},
)
R2 = HostFacts(
    "R2",
    crypto_peers={"10.1.1.1": "its crypto map VPNMAP 10 names 10.1.1.1"},
    own_addresses={"10.2.2.1": "its interface GigabitEthernet0/0 has 10.2.2.1"},
)


def test_local_and_remote_with_reasons() -> None:
    found = choose("10.2.2.1", {"R1": R1, "R2": R2})
    assert found.peer_for_host == {"R1": "10.2.2.1", "R2": "10.1.1.1"}
    assert found.local[0].reason == "R1 chosen: its crypto map VPNMAP 10 names 10.2.2.1"
    assert found.remote[0].reason.startswith(
        "R2 is the remote end: its interface GigabitEthernet0/0 has 10.2.2.1; checked for 10.1.1.1"
    )


def test_remote_peer_from_the_remote_crypto_peers_when_endpoint_unknown() -> None:
    r1 = HostFacts("R1", crypto_peers=dict(R1.crypto_peers), own_addresses=dict(R1.own_addresses))
    found = choose("10.2.2.1", {"R1": r1, "R2": R2})
    assert found.peer_for_host["R2"] == "10.1.1.1"
    assert "R2's crypto peer that R1 owns" in found.remote[0].reason


def test_device_named_on_the_command_line() -> None:
    found = choose("10.2.2.1", {"R1": R1, "R2": R2}, device="R1")
    assert found.local[0].reason == (
        "R1 chosen: named with --device (its crypto map VPNMAP 10 names 10.2.2.1)"
    )


def test_unknown_peer_is_a_usage_error_listing_known_peers() -> None:
    with pytest.raises(
        UsageError, match=r"no device has 10\.9\.9\.9 as a crypto peer.*10\.1\.1\.1"
    ):
        choose("10.9.9.9", {"R1": R1, "R2": R2})
    with pytest.raises(UsageError, match="not an IP address"):
        choose("R2", {"R1": R1})


def test_remote_not_in_inventory_is_a_note() -> None:
    found = choose("10.2.2.1", {"R1": R1})
    assert found.hosts == ["R1"]
    assert found.notes == [
        "no device in the inventory owns 10.2.2.1: only the local end is checked"
    ]


def test_inventory_data() -> None:
    r1 = facts_from_data("R1", {"peers": ["10.2.2.1"], "tunnel_endpoints": ["10.1.1.1"]})
    r2 = facts_from_data("R2", {"tunnel_endpoints": "10.2.2.1"})
    found = choose("10.2.2.1", {"R1": r1, "R2": r2})
    assert found.local[0].reason == "R1 chosen: its inventory data.peers lists 10.2.2.1"
    assert found.peer_for_host == {"R1": "10.2.2.1", "R2": "10.1.1.1"}
    assert "its inventory data.tunnel_endpoints lists 10.2.2.1" in found.remote[0].reason


def test_discover_from_inventory_data_asks_no_device(tmp_path: Path) -> None:
    hosts = {
        "R1": {
            "hostname": "127.0.0.1",
            "port": 1,  # nothing listens: asking would fail
            "platform": "cisco_ios",
            "data": {"peers": ["10.2.2.1"], "tunnel_endpoints": ["10.1.1.1"]},
        },
        "R2": {
            "hostname": "127.0.0.1",
            "port": 1,
            "platform": "cisco_ios",
            "data": {"peers": ["10.1.1.1"], "tunnel_endpoints": ["10.2.2.1"]},
        },
    }
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    found = discover(tmp_path, "10.2.2.1")
    assert found.asked == []
    assert found.peer_for_host == {"R1": "10.2.2.1", "R2": "10.1.1.1"}


def test_discover_too_many_hosts_to_ask(tmp_path: Path) -> None:
    hosts = {
        f"R{i}": {"hostname": "127.0.0.1", "port": 1, "platform": "cisco_ios"} for i in range(3)
    }
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    with pytest.raises(UsageError, match="more than 2 to ask"):
        discover(tmp_path, "10.2.2.1", ask_limit=2)


def parse_layer_ready() -> bool:
    if importlib.util.find_spec("ipsec_doctor.parse.derive") is None:
        return False
    return hasattr(importlib.import_module("ipsec_doctor.parse"), "parse_device")


@pytest.mark.skipif(not parse_layer_ready(), reason="the parse layer is not there yet")
def test_discover_in_a_bundled_scenario() -> None:
    healthy = Path(__file__).parents[2] / "ipsec_doctor" / "lab" / "scenarios" / "healthy"
    found = discover_in_folder(healthy, "10.2.2.1")
    assert [c.device for c in found.local] == ["R1"]
    assert found.peer_for_host == {"R1": "10.2.2.1", "R2": "10.1.1.1"}


def test_ike_sa_then_dynamic_map_find_a_remote_access_server() -> None:
    server = HostFacts("HUB", accepts_any="its crypto map VPNMAP 65535 is dynamic")
    found = choose("10.2.2.1", {"HUB": server})
    assert found.local[0].reason == "HUB chosen: its crypto map VPNMAP 65535 is dynamic"
    server.sa_peers["10.2.2.1"] = "it has an IKE SA with 10.2.2.1 (CONF_XAUTH)"
    found = choose("10.2.2.1", {"HUB": server})
    assert found.local[0].reason == "HUB chosen: it has an IKE SA with 10.2.2.1 (CONF_XAUTH)"


def test_typo_in_our_crypto_map_found_through_the_remote_end() -> None:
    r1 = HostFacts(
        "R1",
        crypto_peers={"10.2.2.9": "its crypto map VPNMAP 10 names 10.2.2.9"},
        own_addresses={"10.1.1.1": "its interface GigabitEthernet0/0 has 10.1.1.1"},
    )
    found = choose("10.2.2.1", {"R1": r1, "R2": R2})
    assert found.peer_for_host == {"R1": "10.2.2.1", "R2": "10.1.1.1"}
    assert "R1's crypto config does not name 10.2.2.1 (it names 10.2.2.9)" in found.local[0].reason


def test_fallback_is_the_last_rule() -> None:
    found = choose("10.2.2.1", {"R1": HostFacts("R1")}, fallback=("R1", "first of scenario.yaml"))
    assert found.local[0].reason == "R1 chosen: first of scenario.yaml"


@pytest.mark.skipif(not parse_layer_ready(), reason="the parse layer is not there yet")
@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("peer-address-mismatch", "R2 owns 10.2.2.1 and names R1's address 10.1.1.1"),
        ("xauth-failed", "its crypto map VPNMAP 65535 is dynamic"),
    ],
)
def test_discover_in_harder_bundled_scenarios(scenario: str, reason: str) -> None:
    folder = Path(__file__).parents[2] / "ipsec_doctor" / "lab" / "scenarios" / scenario
    found = discover_in_folder(folder, "10.2.2.1")
    assert found.local[0].device == "R1" and reason in found.local[0].reason
