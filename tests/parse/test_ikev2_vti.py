"""IKEv2 and tunnel protection on IOS-XE: configuration facts, features, plan variables and the
neutral state the converter makes of the lab's IKEv2 scenarios (read through the real plan)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from ipsec_doctor.collect.discovery import discover_in_folder
from ipsec_doctor.collect.file_collector import collect_folder
from ipsec_doctor.model.state import DeviceState, IkeStatus, InterfaceStatus
from ipsec_doctor.parse.cisco_ios_config import config_facts, mask_key, parse_running_config
from ipsec_doctor.parse.cisco_ios_ikev2 import (
    Proposal,
    ike_policies,
    ikev2_encryption,
    ikev2_groups,
    ikev2_integrity,
    ikev2_status,
    offered_proposals,
    route_based_entries,
)
from ipsec_doctor.parse.derive import derive_variables, device_features
from ipsec_doctor.resources import data_dir
from ipsec_doctor.workflow.flow import parse_states

CONFIG = """hostname R1
crypto ikev2 proposal IKEV2-PROP
 encryption aes-cbc-256
 integrity sha256
 group 14
crypto ikev2 keyring IKEV2-KEYRING
 peer R2
  address 10.2.2.1
  pre-shared-key Sup3rS3cret!
 !
 peer NOKEY
  address 10.9.9.9
 !
crypto ipsec profile VTI-PROFILE
 set transform-set TS-AES256
 set pfs group14
 set ikev2-profile IKEV2-PROFILE
interface GigabitEthernet0/0/0
 ip address 10.1.1.1 255.255.255.252
interface GigabitEthernet0/0/1
 ip address 192.168.1.1 255.255.255.0
interface Tunnel0
 ip address 172.16.0.1 255.255.255.252
 tunnel source GigabitEthernet0/0/0
 tunnel mode ipsec ipv4
 tunnel destination 10.2.2.1
 tunnel protection ipsec profile VTI-PROFILE
interface Tunnel1
 vrf forwarding CORP
 ip address 172.16.1.1 255.255.255.252
 shutdown
 tunnel source 10.1.1.1
 tunnel destination 10.3.3.1
 tunnel vrf INET
 tunnel protection ipsec profile VTI-PROFILE
ip route 0.0.0.0 0.0.0.0 GigabitEthernet0/0/0 10.1.1.2
ip route 192.168.2.0 255.255.255.0 Tunnel0
ip route 192.168.20.0 255.255.255.0 172.16.0.2
ip route vrf CORP 192.168.3.0 255.255.255.0 Tunnel1
"""


def test_config_facts_of_an_ikev2_vti_router() -> None:
    rows = parse_running_config(CONFIG)
    facts = config_facts(rows)
    assert facts.psk_peers == (ip_address("10.2.2.1"),)  # the keyless peer block has no key
    assert (facts.ikev2_configured, facts.ikev1_configured, facts.crypto_map_configured) == (
        True,
        False,
        False,
    )
    t0, t1 = facts.tunnels
    assert (t0.name, t0.ipsec_profile, t0.destination, t0.mode) == (
        "Tunnel0",
        "VTI-PROFILE",
        ip_address("10.2.2.1"),
        "ipsec ipv4",
    )
    assert t0.routed == (ip_network("192.168.2.0/24"), ip_network("192.168.20.0/24"))
    assert t0.evidence is not None and t0.evidence.line.strip().startswith("tunnel protection")
    assert (t1.mode, t1.vrf, t1.tunnel_vrf, t1.shutdown) == ("gre ip", "CORP", "INET", True)
    assert t1.routed == (ip_network("192.168.3.0/24"),)  # only the routes of its own VRF
    psk = next(r for r in rows if r["kind"] == "psk")
    assert psk["ikev2"] and "Sup3rS3cret!" not in psk["line"]
    assert mask_key("  pre-shared-key local 6 ABC") == "  pre-shared-key local 6 <redacted>"


def test_features_and_vti_variables() -> None:
    facts = config_facts(parse_running_config(CONFIG))
    state = DeviceState(name="R1", platform="cisco_ios", config=facts)
    assert device_features(state) == {
        "crypto_map": False,
        "tunnel_protection": True,
        "ikev1": False,
        "ikev2": True,
    }
    assert device_features(DeviceState(name="R1", platform="cisco_ios")) == {}


def test_ikev2_vocabulary() -> None:
    assert ikev2_status("READY") is IkeStatus.ESTABLISHED
    assert ikev2_status("IN-NEG", "Initiator waiting for INIT response") is (
        IkeStatus.WAITING_RESPONSE
    )
    assert ikev2_status("IN-NEG") is IkeStatus.NEGOTIATING
    assert ikev2_status("DELETE") is IkeStatus.DELETED
    assert [ikev2_encryption(w) for w in ("AES-CBC-256", "AES-GCM-128", "3DES")] == [
        "aes-256",
        "aes-gcm-128",
        "3des",
    ]
    assert [ikev2_integrity(w) for w in ("SHA96", "SHA1", "MD596", "SHA384")] == [
        "sha",
        "sha",
        "md5",
        "sha384",
    ]
    assert ikev2_groups("DH_GROUP_256_ECP/Group 19 DH_GROUP_2048_MODP/Group 14") == [19, 14]


def test_offered_proposals_and_policies() -> None:
    default = Proposal("default", ("AES-CBC-256",), ("SHA512",), ("SHA512",), (19,))
    mine = Proposal("P", ("AES-CBC-256", "AES-CBC-128"), ("SHA256",), ("SHA256",), (14, 19))
    policies = [
        {"name": "default", "proposals": ["default"]},
        {"name": "POL", "proposals": ["P"]},
    ]
    assert offered_proposals([default, mine], policies) == [mine]
    assert offered_proposals([default, mine], policies[:1]) == [default]
    assert offered_proposals([default, mine], None) == [mine]
    found = ike_policies([mine], "pre-share", 28800)
    assert [(p.encryption, p.hash, p.dh_group) for p in found] == [
        ("aes-256", "sha256", 14),
        ("aes-256", "sha256", 19),
        ("aes-128", "sha256", 14),
        ("aes-128", "sha256", 19),
    ]
    assert all(not p.is_default and p.lifetime_seconds == 28800 for p in found)


def _states(name: str) -> dict[str, DeviceState]:
    folder = data_dir("scenarios") / name
    plan = discover_in_folder(folder, "10.2.2.1")
    captures = collect_folder(folder, plan.peer_for_host, peer="10.2.2.1")
    return parse_states(captures, plan)


def test_healthy_ikev2_vti_state() -> None:
    states = _states("ikev2-healthy")
    r1 = states["R1"]
    assert r1.problems == ()
    (sa,) = r1.ike_sas or ()
    assert (sa.peer, sa.local, sa.state, sa.status, sa.ike_version) == (
        ip_address("10.2.2.1"),
        ip_address("10.1.1.1"),
        "READY",
        IkeStatus.ESTABLISHED,
        2,
    )
    assert sa.spis == ("6B1D1E5A09C4F2A7", "D02C8E41A3B95F16") and sa.conn_id == 1
    assert sa.source is not None and sa.source.line.startswith("1 ")
    (policy,) = r1.ike_policies or ()
    assert (policy.encryption, policy.hash, policy.dh_group, policy.authentication) == (
        "aes-256",
        "sha256",
        14,
        "pre-share",
    )
    (entry,) = r1.crypto_maps or ()
    assert (entry.name, entry.peers, entry.interfaces, entry.acl) == (
        "VTI-PROFILE",
        (ip_address("10.2.2.1"),),
        ("Tunnel0",),
        "",
    )
    assert entry.local_selectors == entry.remote_selectors == (ip_network("0.0.0.0/0"),)
    assert entry.transform_sets == ("TS-AES256",)
    extras = r1.extras
    assert extras["route_based"] is True and extras["ike_version"] == 2
    assert extras["tunnel_interface"] == "Tunnel0"
    assert extras["ikev2_keyring"] == "IKEV2-KEYRING"
    assert extras["variables"]["crypto_interface"] == "Tunnel0"
    assert extras["variables"]["remote_lan"] == "192.168.2.0"
    assert extras["variables"]["local_lan"] == "192.168.1.0"
    assert [s["status"] for s in extras["crypto_sessions"]] == ["UP-ACTIVE"]
    tunnel = r1.interfaces["Tunnel0"]
    assert tunnel.status is InterfaceStatus.UP and tunnel.protocol_up is True


@pytest.mark.parametrize(
    ("name", "device", "status", "remote_selector"),
    [
        ("ikev2-ts-unacceptable", "R1", "UP-IDLE", "0.0.0.0/0"),
        ("ikev2-ts-unacceptable", "R2", "UP-IDLE", "10.1.1.1/32"),  # GRE mode: host selectors
        ("ikev2-no-response", "R1", "DOWN-NEGOTIATING", "0.0.0.0/0"),
        ("vti-tunnel-down", "R1", "DOWN", "0.0.0.0/0"),
    ],
)
def test_failing_ikev2_vti_states(
    name: str, device: str, status: str, remote_selector: str
) -> None:
    state = _states(name)[device]
    assert state.problems == ()  # commands for IKEv1 / crypto maps were left out, not missing
    assert [s["status"] for s in state.extras["crypto_sessions"]] == [status]
    (entry,) = state.crypto_maps or ()
    assert entry.remote_selectors == (ip_network(remote_selector),)


def test_no_response_sa_waits_for_the_init_response() -> None:
    r1 = _states("ikev2-no-response")["R1"]
    (sa,) = r1.ike_sas or ()
    assert sa.status is IkeStatus.WAITING_RESPONSE and sa.established_seconds is None


def test_crypto_map_scenarios_still_read_the_ikev1_commands() -> None:
    r1 = _states("multi-peer-crypto-map")["R1"]
    assert r1.problems == () and r1.extras["route_based"] is False
    assert r1.extras["ike_version"] == 1
    assert {str(p) for e in r1.crypto_maps or () for p in e.peers} == {
        "10.2.2.1",
        "10.3.3.1",
        "10.4.4.1",
        "10.4.4.2",
    }
    assert r1.extras["features"] == {
        "crypto_map": True,
        "tunnel_protection": False,
        "ikev1": True,
        "ikev2": False,
    }


def test_vrf_aware_crypto_map_reads_the_default_route() -> None:
    r1 = _states("vrf-aware-crypto-map")["R1"]
    assert r1.routes["route_default"].found and r1.routes["route_default"].is_default
    assert r1.routes["route_remote_lan"].found is False  # only in VRF CUST-A
    assert ip_address("10.2.2.1") in (r1.config.psk_peers if r1.config else ())


def test_derive_variables_for_a_vti_without_routes() -> None:
    facts = config_facts(parse_running_config(CONFIG.replace("ip route 192.168.2.0", "! ")))
    entries = route_based_entries(facts, {"VTI-PROFILE": {"transform_sets": ["TS"]}})
    state = DeviceState(name="R1", platform="cisco_ios", config=facts, crypto_maps=entries)
    values = derive_variables(state, "10.2.2.1")
    assert values["crypto_interface"] == "Tunnel0"
    assert values["remote_lan"] == "192.168.20.0"  # the next hop inside Tunnel0's subnet
    assert values["local_lan"] == "192.168.1.0"
    assert "crypto_acl" not in values
