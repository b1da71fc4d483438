"""``ipsec-doctor parse``: rows and typed state of one output as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipsec_doctor.errors import ParseError
from ipsec_doctor.parse.one_command import parse_one, state_to_json
from ipsec_doctor.parse.textfsm_parser import NTC, OURS, find_template, parse_output

FIXTURES = Path(__file__).resolve().parents[1] / "templates" / "cisco_ios"


def test_ipsec_sa_rows_and_state_are_json() -> None:
    text = (FIXTURES / "show_crypto_ipsec_sa" / "ios15_two_peers.raw").read_text()
    result = parse_one("cisco_ios", "show crypto ipsec sa", text)
    json.dumps(result)
    assert result["section"] == "ipsec_sa"
    assert result["template"] == {"source": OURS, "file": "cisco_ios_show_crypto_ipsec_sa.textfsm"}
    assert len(result["rows"]) == 3
    assert result["state"][0]["peer"] == "10.2.2.1"
    assert result["state"][0]["source"]["line_no"] == 8


def test_peer_command_maps_to_the_plan_section() -> None:
    result = parse_one("cisco_ios", "show crypto ipsec sa peer 10.2.2.1", "")
    assert result["section"] == "ipsec_sa" and result["state"] == []


def test_running_config_uses_the_python_parser() -> None:
    result = parse_one("cisco_ios", "show running-config", "hostname R1\nno crypto isakmp enable\n")
    assert result["template"]["source"] == "python"
    assert result["state"]["isakmp_enabled"] is False


def test_ntc_template_for_access_lists() -> None:
    text = "Extended IP access list VPN\n    10 permit ip any any (3 matches)\n"
    result = parse_one("cisco_ios", "show access-lists VPN", text)
    assert result["template"]["source"] == NTC
    assert result["state"][0]["matches"] == 3


def test_command_outside_the_plan_gives_rows_only() -> None:
    text = "Routing Table: CUST-A\n% Network not in table\n"
    result = parse_one("cisco_ios", "show ip route vrf CUST-A 192.168.2.0 255.255.255.0", text)
    assert result["section"] is None
    assert result["rows"][0]["not_found"] == "Network" and result["rows"][0]["vrf"] == "CUST-A"


def test_a_plan_variant_is_typed_like_its_command() -> None:
    # `show ip route vrf V A` is a variant of the plan's `show ip route {peer}` (route_peer)
    text = "Routing Table: INET\n% Subnet not in table\n"
    result = parse_one("cisco_ios", "show ip route vrf INET 10.2.2.1", text)
    assert result["section"] == "route_peer"
    assert result["state"]["found"] is False and result["state"]["vrf"] == "INET"
    assert result["state"]["source"]["line"] == "% Subnet not in table"


def test_ipv6_route_lookup_is_typed() -> None:
    text = (
        "Routing entry for ::/0\n"
        '  Known via "static", distance 1, metric 0\n'
        "  Route count is 1/1, share count 0\n"
        "  Routing paths:\n"
        "    2001:DB8:10::2, GigabitEthernet0/0\n"
        "      Last updated 00:41:07 ago\n"
    )
    result = parse_one("cisco_ios", "show ipv6 route vrf INET 2001:DB8:2::1", text)
    assert result["section"] == "route_peer"
    assert result["template"]["file"] == "cisco_ios_show_ipv6_route_address.textfsm"
    state = result["state"]
    assert state["found"] and state["is_default"] and state["prefix"] == "::/0"
    assert state["vrf"] == "INET" and state["interfaces"] == ["GigabitEthernet0/0"]
    assert state["next_hops"] == ["2001:db8:10::2"]


def test_rejected_output_raises_with_the_raw_text() -> None:
    with pytest.raises(ParseError, match="rejected") as raised:
        parse_one("cisco_ios", "show crypto isakmp sa", "something else entirely\n")
    assert raised.value.raw == "something else entirely\n"


def test_typed_failure_after_rows_reports_the_error() -> None:
    result = parse_one("cisco_ios", "show clock", "")
    assert result["rows"] == [] and result["state"] is None
    assert "no time" in result["error"]


def test_unknown_command_raises() -> None:
    with pytest.raises(ParseError, match="no TextFSM template"):
        parse_one("cisco_ios", "show frobnicate widgets", "x")


def test_lookup_prefers_ours_and_strips_filters() -> None:
    ref = find_template("cisco_ios", "show logging | include CRYPTO")
    assert ref is not None and ref.source == OURS
    ntc = find_template("cisco_ios", "show interfaces GigabitEthernet0/1")
    assert ntc is not None and ntc.source == NTC
    assert find_template("cisco_ios", "show crypto ipsec sa detail") is not None
    assert find_template("cisco_ios", "show crypto ipsec sa detail").source == NTC  # type: ignore[union-attr]
    with pytest.raises(ParseError) as raised:
        parse_output("cisco_ios", "show crypto map", "garbage\n")
    assert raised.value.raw == "garbage\n" and raised.value.command == "show crypto map"


def test_state_to_json_shapes() -> None:
    from datetime import datetime
    from ipaddress import ip_address, ip_network

    from ipsec_doctor.model.state import IkeStatus

    assert state_to_json(
        {"a": (ip_address("10.0.0.1"), ip_network("10.0.0.0/8")), 1: IkeStatus.ESTABLISHED}
    ) == {"a": ["10.0.0.1", "10.0.0.0/8"], "1": "established"}
    assert state_to_json(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
