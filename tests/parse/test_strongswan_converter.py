"""The strongSwan converter on the real lab captures: typed state, evidence, unknown vs empty."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path

import pytest

from ipsec_doctor.collect.file_collector import collect_folder
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.state import DeviceState, IkeStatus, InterfaceStatus
from ipsec_doctor.parse import parse_device
from ipsec_doctor.parse.one_command import parse_one, state_to_json
from ipsec_doctor.parse.strongswan import convert_command, ike_status, selectors

CAPTURES = Path(__file__).resolve().parents[1] / "captures" / "strongswan"
GW1, GW2 = "198.51.100.1", "198.51.100.129"
PEER_OF = {"gw1": GW2, "gw2": GW1}


def capture(scenario: str, gateway: str) -> DeviceCapture:
    captures = collect_folder(CAPTURES / scenario, {gateway: PEER_OF[gateway]}, peer=GW2)
    return captures.devices[gateway]


def state(scenario: str, gateway: str = "gw1") -> DeviceState:
    return parse_device(capture(scenario, gateway), PEER_OF[gateway])


@pytest.mark.parametrize("scenario", sorted(p.name for p in CAPTURES.iterdir() if p.is_dir()))
@pytest.mark.parametrize("gateway", ["gw1", "gw2"])
def test_every_capture_parses_without_problems(scenario: str, gateway: str) -> None:
    parsed = state(scenario, gateway)
    assert parsed.problems == ()
    assert parsed.platform == "strongswan"
    assert parsed.clock is not None and parsed.clock.year == 2026
    assert parsed.logs is not None and parsed.crypto_maps is not None
    assert parsed.config is not None


def test_healthy_ike_sas() -> None:
    parsed = state("healthy")
    assert parsed.ike_sas is not None
    by_version = {sa.ike_version: sa for sa in parsed.ike_sas}
    v2, v1 = by_version[2], by_version[1]
    assert v2.peer == ip_address(GW2) and v2.local == ip_address(GW1)
    assert v2.state == "ESTABLISHED" and v2.status is IkeStatus.ESTABLISHED
    assert v2.conn_id == 2 and v2.established_seconds == 3
    assert v2.spis == ("b7ab99f72778af10", "a199e434fffe92ce")
    assert v2.source is not None and v2.source.line.startswith("s2s-ikev2: #2, ESTABLISHED")
    assert v2.source.line_no == 1 and v2.source.device == "gw1"
    assert v1.source is not None and v1.source.line.startswith("s2s-ikev1: #1,")
    later = {sa.ike_version: sa for sa in parsed.ike_sas_later or ()}
    assert later[2].established_seconds == 8 and later[2].source is not None
    assert later[2].source.sample == 2


def test_healthy_child_sas_count_packets() -> None:
    parsed = state("healthy")
    first = {str(sa.local_selector): sa for sa in parsed.ipsec_sas or ()}
    later = {str(sa.local_selector): sa for sa in parsed.ipsec_sas_later or ()}
    v2 = first["192.0.2.0/26"]
    assert v2.remote_selector == ip_network("192.0.2.128/26")
    assert (v2.encaps, v2.decaps) == (5, 5)
    assert (later["192.0.2.0/26"].encaps, later["192.0.2.0/26"].decaps) == (15, 15)
    assert v2.inbound_spis == ("0x2E527E3F",) and v2.outbound_spis == ("0x40F8D253",)
    assert v2.has_sas
    assert v2.transforms == ("esp-aes-256", "esp-sha256-hmac") and v2.pfs_group == ""
    assert v2.crypto_map == "s2s-ikev2" and v2.remaining_seconds == 3391
    assert v2.encaps_source is not None and v2.encaps_source.line.strip().startswith("out 40f8d253")
    assert v2.decaps_source is not None and v2.decaps_source.line.strip().startswith("in  2e527e3f")
    v1 = first["192.0.2.64/26"]
    assert v1.pfs_group == "group14"  # IKEv1 quick mode with PFS: MODP_2048 is printed


def test_connections_become_crypto_map_entries() -> None:
    parsed = state("healthy")
    entries = {e.name: e for e in parsed.crypto_maps or ()}
    v2 = entries["s2s-ikev2"]
    assert v2.peers == (ip_address(GW2),)
    assert v2.acl == "lan-ikev2" and v2.sequence == 1
    assert v2.local_selectors == (ip_network("192.0.2.0/26"),)
    assert v2.remote_selectors == (ip_network("192.0.2.128/26"),)
    assert v2.transform_sets == ("s2s-ikev2/lan-ikev2",)
    assert v2.pfs_group == "group14"  # esp_proposals = aes256-sha256-modp2048
    assert v2.lifetime_seconds == 3600
    assert v2.interfaces == ("wan0",)  # the interface holding local_addrs
    assert v2.source is not None and v2.source.line.strip() == f"remote: {GW2}"
    assert v2.source.command == "swanctl --list-conns"
    assert parsed.map_entries_for(ip_address(GW2)) == tuple(entries.values())
    sets = {ts.name: ts for ts in parsed.transform_sets or ()}
    assert sets["s2s-ikev2/lan-ikev2"].transforms == ("esp-aes-256", "esp-sha256-hmac")
    source = sets["s2s-ikev2/lan-ikev2"].source
    assert source is not None and source.line.strip() == "esp_proposals = aes256-sha256-modp2048"


def test_ike_proposals_become_policies() -> None:
    policies = state("ike-proposal-mismatch", "gw2").ike_policies
    assert policies is not None and len(policies) == 2  # one per connection naming the peer
    policy = policies[0]
    assert (policy.encryption, policy.hash, policy.dh_group) == ("aes-128", "sha", 2)
    assert policy.authentication == "pre-share" and policy.lifetime_seconds == 14400
    assert policy.source is not None
    assert policy.source.line.strip() == "proposals = aes128-sha1-modp1024"


def test_config_facts() -> None:
    facts = state("healthy").config
    assert facts is not None
    assert facts.ike_daemon_running is True and facts.isakmp_enabled is True
    assert facts.psk_peers == (ip_address(GW2),)  # the IKEv1 key is bound to the address
    assert facts.psk_wildcard is True  # the IKEv2 key is found by FQDN identity
    assert facts.dpd_seconds == 5
    assert facts.interface_addresses["wan0"] == ip_interface(f"{GW1}/25")
    assert facts.interface_addresses["lan0:1"] == ip_interface("192.0.2.65/25")
    assert "lo" not in facts.interface_addresses
    lines = [s.line.strip() for s in facts.sources]
    assert "50 /usr/sbin/charon-systemd" in lines
    assert "dpd_delay = 5s" in lines
    assert not any("secret" in line and "redacted" not in line for line in lines)


def test_interfaces_and_route_to_the_peer() -> None:
    parsed = state("healthy")
    wan = parsed.interfaces["wan0"]
    assert wan.status is InterfaceStatus.UP and wan.is_up
    assert wan.address == ip_interface(f"{GW1}/25")
    assert parsed.interfaces["lo"].status is InterfaceStatus.UNKNOWN
    route = parsed.routes["route_peer"]
    assert route.found and route.interfaces == ("wan0",)
    assert route.next_hops == (ip_address("198.51.100.126"),) and not route.connected
    assert route.query == GW2


def test_no_route_is_an_answer_not_a_problem() -> None:
    parsed = state("no-route-to-peer")
    route = parsed.routes["route_peer"]
    assert not route.found
    assert route.source is not None
    assert route.source.line == "RTNETLINK answers: Network is unreachable"


def test_charon_down_means_no_sas_not_unknown() -> None:
    parsed = state("peer-down", "gw2")
    assert parsed.ike_sas == () and parsed.ipsec_sas == ()
    assert parsed.ike_sas_later == ()
    assert parsed.problems == ()
    facts = parsed.config
    assert facts is not None and facts.ike_daemon_running is False
    assert facts.isakmp_enabled is None  # strongSwan has no "IKE off" switch to read
    refused = [s for s in facts.sources if "charon.vici' failed: Connection refused" in s.line]
    assert refused and refused[0].command == "swanctl --list-sas"
    # swanctl --list-conns was refused too: the connections come from swanctl.conf
    entries = parsed.crypto_maps or ()
    assert {e.name for e in entries} == {"s2s-ikev2", "s2s-ikev1"}
    assert entries[0].source is not None
    assert entries[0].source.command == "cat /etc/swanctl/swanctl.conf"


def _with(device: DeviceCapture, command: str, raw: str, outcome: Outcome = Outcome.OK) -> None:
    device.captures = [
        c if c.command != command else replace(c, raw=raw, outcome=outcome) for c in device.captures
    ]


def test_refused_for_another_reason_is_a_problem() -> None:
    device = capture("healthy", "gw1")
    denied = "connecting to 'unix:///var/run/charon.vici' failed: Permission denied\n"
    _with(device, "swanctl --list-sas", denied)
    parsed = parse_device(device, GW2)
    assert parsed.ike_sas is None and parsed.ipsec_sas is None  # unknown, not empty
    problem = next(p for p in parsed.problems if p.section == "sas")
    assert "Permission denied" in problem.reason and problem.outcome == "unparsed"
    assert parsed.config is not None and parsed.config.ike_daemon_running is True


def test_failed_and_missing_commands_leave_sections_unknown() -> None:
    device = capture("healthy", "gw1")
    _with(device, "tail -n 1000 /var/log/charon.log", "", Outcome.TIMEOUT)
    device.captures = [c for c in device.captures if c.command != "ip route get 198.51.100.129"]
    parsed = parse_device(device, GW2)
    assert parsed.logs is None and "route_peer" not in parsed.routes
    outcomes = {p.section: p.outcome for p in parsed.problems}
    assert outcomes == {"logging": "timeout", "route_peer": "missing"}


def test_unreadable_config_is_a_problem_and_leaves_proposals_unknown() -> None:
    device = capture("healthy", "gw1")
    _with(
        device, "cat /etc/swanctl/swanctl.conf", "cat: /etc/swanctl/swanctl.conf: Permission denied"
    )
    parsed = parse_device(device, GW2)
    assert parsed.ike_policies is None and parsed.transform_sets is None
    assert parsed.crypto_maps is not None  # still known from swanctl --list-conns
    assert [p.section for p in parsed.problems] == ["config"]


def test_firewall_drops_of_ike_ports() -> None:
    parsed = state("udp4500-blocked", "gw2")
    blocked = parsed.extras["ike_blocked_ports"]
    assert list(blocked) == [4500]
    assert blocked[4500][0].line.strip().startswith("udp dport 4500 counter")
    assert state("healthy", "gw2").extras["ike_blocked_ports"] == {}
    both = state("dpd-teardown", "gw2").extras["ike_blocked_ports"]
    assert sorted(both) == [500, 4500]


def test_extras() -> None:
    extras = state("healthy").extras
    assert extras["ipsec_backend"] == "kernel-libipsec"
    assert extras["crypto_map_binding"] is False
    assert extras["tunnel_routes"] == ["192.0.2.128/26", "192.0.2.192/26"]
    assert extras["xfrm_states"] == 0 and extras["version"] == "strongSwan swanctl 5.9.8"
    assert [c["name"] for c in extras["connections"]] == ["s2s-ikev2", "s2s-ikev1"]
    assert state_to_json(extras)  # JSON-ready (parse --format json, reports)


def test_half_open_responder_sa() -> None:
    sas = state("psk-mismatch", "gw2").ike_sas or ()
    (sa,) = sas
    assert sa.state == "CONNECTING" and sa.status is IkeStatus.NEGOTIATING
    assert sa.peer == ip_address(GW1) and sa.ike_version == 1


@pytest.mark.parametrize(
    ("state_name", "status"),
    [
        ("ESTABLISHED", IkeStatus.ESTABLISHED),
        ("REKEYING", IkeStatus.ESTABLISHED),
        ("CONNECTING", IkeStatus.NEGOTIATING),
        ("DELETING", IkeStatus.DELETED),
        ("PASSIVE", IkeStatus.UNKNOWN),
    ],
)
def test_ike_states(state_name: str, status: IkeStatus) -> None:
    assert ike_status(state_name) is status


def test_selectors() -> None:
    assert selectors("192.0.2.0/26 10.0.0.0/8[tcp/http] dynamic") == (
        ip_network("192.0.2.0/26"),
        ip_network("10.0.0.0/8"),
    )


def test_convert_command_and_parse_one() -> None:
    raw = (CAPTURES / "healthy" / "gw1" / "swanctl_--list-sas.txt").read_text(encoding="utf-8")
    rows, (ike, child) = convert_command("sas", "swanctl --list-sas", raw)
    assert len(rows) == 2 and len(ike) == 2 and len(child) == 2
    result = parse_one("strongswan", "swanctl --list-sas", raw)
    assert result["section"] == "sas" and result["error"] == ""
    assert result["template"]["file"] == "linux_swanctl_list_sas.textfsm"
    conns = (CAPTURES / "healthy" / "gw1" / "swanctl_--list-conns.txt").read_text(encoding="utf-8")
    one = parse_one("strongswan", "swanctl --list-conns", conns)
    assert [e["name"] for e in one["state"]] == ["s2s-ikev2", "s2s-ikev1"]
    clock = parse_one("strongswan", "date -R", "Mon, 23 Nov 2026 07:13:47 +0000\n")
    assert clock["state"] == datetime(2026, 11, 23, 7, 13, 47).isoformat()


def test_pasted_output_with_prompt_and_echo() -> None:
    device = capture("healthy", "gw1")
    original = next(c for c in device.captures if c.command == "swanctl --list-sas")
    pasted = "netops@gw1:~$ swanctl --list-sas\n" + original.raw + "netops@gw1:~$ "
    device.captures = [
        CommandCapture(c.command, c.sample, c.outcome, pasted) if c is original else c
        for c in device.captures
    ]
    parsed = parse_device(device, GW2)
    assert parsed.problems == ()
    first = next(sa for sa in parsed.ike_sas or () if sa.ike_version == 2)
    assert first.source is not None and first.source.line_no == 2  # the raw capture's line


def test_kernel_sa_integrity_and_replay_failures_are_receive_errors() -> None:
    """With the kernel ESP backend `ip -s xfrm state` counts failures per SA (by SPI)."""
    device = capture("healthy", "gw1")
    xfrm = (
        "src 198.51.100.129 dst 198.51.100.1\n"
        "\tproto esp spi 0x2e527e3f(777158207) reqid 2(0x00000002) mode tunnel\n"
        "\treplay-window 32 seq 0x00000000 flag af-unspec (0x00100000)\n"
        "\tstats:\n"
        "\t  replay-window 0 replay 2 failed 5\n"
    )
    _with(device, "ip -s xfrm state list nokeys", xfrm)
    parsed = parse_device(device, GW2)
    errors = {sa.inbound_spis: sa.recv_errors for sa in parsed.ipsec_sas or ()}
    assert errors == {("0x2E527E3F",): 7, ("0x4920A2E5",): 0}
    assert parsed.extras["xfrm_states"] == 1
