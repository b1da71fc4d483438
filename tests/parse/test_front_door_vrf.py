"""Front-door VRF and IPv6 peers: which table the route to the peer is looked up in.

What an engineer checks by hand: the WAN interface (or `tunnel vrf`) puts the tunnel's outer
packets in a VRF, so `show ip route vrf X PEER` is the lookup that counts; an ISAKMP profile's
own `vrf` line is the *inside* VRF and must not send the peer lookup there; an IPv6 peer is
looked up with `show ipv6 route`.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.state import DeviceState
from ipsec_doctor.parse.cisco_ios import parse_device
from ipsec_doctor.parse.cisco_ios_config import config_facts, parse_running_config
from ipsec_doctor.parse.derive import derive_variables, front_door_vrf
from ipsec_doctor.platforms.loader import load_platform
from ipsec_doctor.resources import data_dir
from tests.parse.scenario_support import load_device

SCENARIOS = Path(data_dir("scenarios"))
PEER = "10.2.2.1"


def _state(name: str, peer: str = PEER) -> DeviceState:
    return parse_device(load_device(SCENARIOS / name / "R1", peer), peer)


def _config_state(text: str) -> DeviceState:
    """The state of a device of which only the running configuration was read."""
    config = CommandCapture("show running-config", 1, Outcome.OK, text)
    return parse_device(DeviceCapture(name="R1", platform="cisco_ios", captures=[config]), PEER)


# ------------------------------------------------------------------ the configuration says


FVRF_CONFIG = """\
crypto keyring KR-INET vrf INET
  pre-shared-key address 10.2.2.1 key <redacted>
crypto keyring KR-ANY vrf BACKUP
  pre-shared-key address 0.0.0.0 0.0.0.0 key <redacted>
crypto isakmp profile ISAKMP-INET
   vrf CUST-A
   keyring KR-INET
   match identity address 10.3.3.0 255.255.255.0 TRANSIT
!
interface GigabitEthernet0/0
 ip vrf forwarding INET
 ip address 10.1.1.1 255.255.255.252
!
interface GigabitEthernet0/1
 vrf forwarding CUST-A
 ip address 192.168.1.1 255.255.255.0
!
interface GigabitEthernet0/2
 ip address 10.1.3.1 255.255.255.0
!
"""


def test_the_configuration_names_interface_vrfs_and_keyring_vrfs() -> None:
    facts = config_facts(parse_running_config(FVRF_CONFIG))
    assert facts.interface_vrfs == {
        "GigabitEthernet0/0": "INET",
        "GigabitEthernet0/1": "CUST-A",
    }
    assert facts.front_door_vrfs == (
        (ip_network("10.2.2.1/32"), "INET"),
        (ip_network("0.0.0.0/0"), "BACKUP"),
        (ip_network("10.3.3.0/24"), "TRANSIT"),
    )
    # a keyring key is still a key for the peer (no PSK_MISSING for a VRF keyring)
    assert ip_address(PEER) in facts.psk_peers


def test_keyring_and_profile_rows_keep_their_vrfs() -> None:
    rows = parse_running_config(FVRF_CONFIG)
    keys = [r for r in rows if r["kind"] == "psk"]
    assert [(k["keyring"], k["vrf"]) for k in keys] == [("KR-INET", "INET"), ("KR-ANY", "BACKUP")]
    (profile,) = (r for r in rows if r["kind"] == "isakmp_profile")
    assert profile["vrf"] == "CUST-A"  # its inside VRF
    assert profile["keyring"] == "KR-INET"
    assert [(i["address"], i["mask"], i["vrf"]) for i in profile["identities"]] == [
        ("10.3.3.0", "255.255.255.0", "TRANSIT")
    ]


# ------------------------------------------------------------------ which table: derivation


def test_the_crypto_map_interface_vrf_is_the_front_door_vrf() -> None:
    state = _state("front-door-vrf")
    assert front_door_vrf(state, PEER) == "INET"
    values = derive_variables(state, PEER)
    assert values["fvrf"] == "INET"
    assert "ipv6_peer" not in values and "ipv6_default" not in values


def test_an_isakmp_profile_vrf_is_the_inside_vrf_not_the_front_door() -> None:
    # vrf-aware-crypto-map: LAN and ISAKMP profile in CUST-A, WAN (and the peer) global
    state = _state("vrf-aware-crypto-map")
    assert front_door_vrf(state, PEER) == ""
    assert "fvrf" not in derive_variables(state, PEER)


MAP = "crypto map VPNMAP 10 ipsec-isakmp\n set peer 10.2.2.1\n match address VPN\n!\n"


def test_the_crypto_map_interface_decides_from_the_configuration_alone() -> None:
    applied = FVRF_CONFIG.replace(
        " ip address 10.1.1.1 255.255.255.252\n",
        " ip address 10.1.1.1 255.255.255.252\n crypto map VPNMAP\n",
    )
    assert front_door_vrf(_config_state(MAP + applied), PEER) == "INET"
    # IKE leaves through the interface's table, whatever the keyring says
    global_wan = applied.replace(" ip vrf forwarding INET\n", "")
    assert front_door_vrf(_config_state(MAP + global_wan), PEER) == ""


def test_without_an_interface_the_keyring_vrf_of_the_peer_counts() -> None:
    state = _config_state(MAP + FVRF_CONFIG)  # the map is applied nowhere
    assert front_door_vrf(state, PEER) == "INET"  # the /32 key beats the 0.0.0.0/0 one
    assert front_door_vrf(state, "10.3.3.7") == "TRANSIT"  # match identity address ... TRANSIT
    assert front_door_vrf(state, "10.9.9.9") == "BACKUP"  # only the wildcard key covers it


def test_a_tunnel_vrf_is_the_front_door_vrf_of_a_vti() -> None:
    state = _state("ikev2-healthy")
    assert state.config is not None
    tunnel = state.config.tunnels[0]
    assert front_door_vrf(state, PEER) == ""  # no `tunnel vrf`: global
    in_vrf = replace(tunnel, tunnel_vrf="INET", vrf="CORP")
    moved = replace(state, config=replace(state.config, tunnels=(in_vrf,)))
    assert front_door_vrf(moved, PEER) == "INET"  # `tunnel vrf`, not `vrf forwarding`


def test_an_ipv6_peer_gets_the_ipv6_variables() -> None:
    values = derive_variables(DeviceState(name="R1", platform="cisco_ios"), "2001:DB8:30::1")
    assert values["ipv6_peer"] == "2001:DB8:30::1"
    assert values["ipv6_default"] == "::/0"


# ------------------------------------------------------------------ the plan's forms


@pytest.mark.parametrize(
    ("values", "route_peer", "route_default"),
    [
        ({"peer": PEER}, "show ip route 10.2.2.1", "show ip route 0.0.0.0"),
        (
            {"peer": PEER, "fvrf": "INET"},
            "show ip route vrf INET 10.2.2.1",
            "show ip route vrf INET 0.0.0.0",
        ),
        (
            {"peer": "2001:DB8:30::1", "ipv6_peer": "2001:DB8:30::1", "ipv6_default": "::/0"},
            "show ipv6 route 2001:DB8:30::1",
            "show ipv6 route ::/0",
        ),
        (
            {
                "peer": "2001:DB8:30::1",
                "ipv6_peer": "2001:DB8:30::1",
                "ipv6_default": "::/0",
                "fvrf": "INET",
            },
            "show ipv6 route vrf INET 2001:DB8:30::1",
            "show ipv6 route vrf INET ::/0",
        ),
    ],
)
def test_the_plan_runs_the_lookup_in_the_right_table(
    values: dict[str, str], route_peer: str, route_default: str
) -> None:
    plan = load_platform("cisco_ios")
    assert plan.command("route_peer").render(values) == route_peer
    assert plan.command("route_default").render(values) == route_default
    # the variants are the same plan entry: a pasted output of either form is found again
    assert plan.command("route_peer").matches(route_peer) is not None


# ------------------------------------------------------------------ what the state says


def test_front_door_vrf_lookups_are_read_from_the_vrf() -> None:
    state = _state("front-door-vrf")
    peer, default = state.routes["route_peer"], state.routes["route_default"]
    assert peer.found and peer.vrf == "INET" and peer.interfaces == ("GigabitEthernet0/0",)
    assert peer.source is not None and peer.source.command == "show ip route vrf INET 10.2.2.1"
    assert default.found and default.vrf == "INET" and default.is_default
    assert not state.problems
    # the global table has no route to the peer at all (the capture folder has that lookup
    # too, from an engineer's point of view): it is not the one the state reports
    capture = load_device(SCENARIOS / "front-door-vrf" / "R1", PEER)
    global_lookup = capture.get("show ip route 10.2.2.1")
    assert global_lookup is not None and "% Network not in table" in global_lookup.raw


def test_a_missing_vrf_route_is_known_missing_in_that_vrf() -> None:
    state = _state("front-door-vrf-no-route")
    peer, default = state.routes["route_peer"], state.routes["route_default"]
    assert not peer.found and peer.vrf == "INET"
    assert peer.source is not None and peer.source.line == "% Subnet not in table"
    assert peer.source.line_no == 3  # after the blank line and "Routing Table: INET"
    assert not default.found and default.vrf == "INET"


def _ipv6_device(route: str, default: str) -> DeviceCapture:
    def ok(command: str, raw: str) -> CommandCapture:
        return CommandCapture(command=command, sample=1, outcome=Outcome.OK, raw=raw)

    return DeviceCapture(
        name="R1",
        platform="cisco_ios",
        captures=[
            ok("show ipv6 route 2001:DB8:30::1", route),
            ok("show ipv6 route ::/0", default),
        ],
    )


def test_ipv6_lookups_fill_the_same_routes() -> None:
    found = (
        "Routing entry for 2001:DB8:30::/64\n"
        '  Known via "static", distance 1, metric 0\n'
        "  Route count is 1/1, share count 0\n"
        "  Routing paths:\n"
        "    2001:DB8:10::2, GigabitEthernet0/0\n"
        "      Last updated 00:41:07 ago\n"
    )
    state = parse_device(_ipv6_device(found, "% Route not found\n"), "2001:DB8:30::1")
    peer, default = state.routes["route_peer"], state.routes["route_default"]
    assert peer.found and peer.prefix == ip_network("2001:db8:30::/64")
    assert peer.next_hops == (ip_address("2001:db8:10::2"),)
    assert peer.interfaces == ("GigabitEthernet0/0",)
    assert not default.found
    assert default.source is not None and default.source.line == "% Route not found"


def test_an_ipv6_lookup_answered_by_the_default_route_says_so() -> None:
    via_default = (
        "Routing entry for ::/0\n"
        '  Known via "static", distance 1, metric 0\n'
        "  Route count is 1/1, share count 0\n"
        "  Routing paths:\n"
        "    2001:DB8:10::2, GigabitEthernet0/0\n"
        "      Last updated 00:41:07 ago\n"
    )
    state = parse_device(_ipv6_device(via_default, via_default), "2001:DB8:30::1")
    assert state.routes["route_peer"].found and state.routes["route_peer"].is_default
