"""The Cisco IOS converter: vocabulary, sections, problems and evidence."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome
from ipsec_doctor.model.state import IkeStatus, InterfaceStatus
from ipsec_doctor.parse import cisco_ios, parse_device
from ipsec_doctor.parse.cisco_ios import (
    acl_selectors,
    ike_authentication,
    ike_encryption,
    ike_hash,
    ike_status,
    ipsec_transforms,
    pfs_group,
)
from ipsec_doctor.parse.cisco_ios_config import config_facts, parse_running_config
from ipsec_doctor.platforms.loader import PlanCommand, load_platform

FIXTURES = Path(__file__).resolve().parents[1] / "templates" / "cisco_ios"
PEER = "10.2.2.1"


def fixture(command_dir: str, case: str) -> str:
    return (FIXTURES / command_dir / f"{case}.raw").read_text(encoding="utf-8")


def ok(command: str, text: str, sample: int = 1) -> CommandCapture:
    return CommandCapture(command=command, sample=sample, outcome=Outcome.OK, raw=text)


def device(*captures: CommandCapture, name: str = "R1") -> DeviceCapture:
    return DeviceCapture(name=name, platform="cisco_ios", captures=list(captures))


CRYPTO_MAP = ok("show crypto map", fixture("show_crypto_map", "ios15_two_entries_pfs"))
IPSEC = ok("show crypto ipsec sa", fixture("show_crypto_ipsec_sa", "ios15_two_peers"))
ISAKMP = ok("show crypto isakmp sa", fixture("show_crypto_isakmp_sa", "ios15_ipv4_ipv6"))

ACLS = """\
Extended IP access list BRANCH2-ACL
    10 permit ip 192.168.10.0 0.0.0.255 172.20.30.0 0.0.0.255
Extended IP access list VPN-ACL
    10 permit ip 192.168.10.0 0.0.0.255 192.168.20.0 0.0.0.255 (1543 matches)
    20 permit ip 192.168.11.0 0.0.0.255 192.168.20.0 0.0.0.255
Standard IP access list 99
    10 permit 10.0.0.0, wildcard bits 0.255.255.255
"""

CONFIG = """\
Building configuration...

Current configuration : 2100 bytes
!
hostname R1
!
no crypto isakmp enable
crypto isakmp policy 10
 encr aes 256
crypto isakmp key 6 FLgBaJHXdYY address 10.2.2.1
crypto isakmp key cisco123 address 0.0.0.0 0.0.0.0
crypto isakmp keepalive 10 3 periodic
crypto isakmp nat keepalive 20
crypto keyring KR
  pre-shared-key address 172.16.9.2 key s3cr3t
!
crypto map VPN-MAP 10 ipsec-isakmp
 set peer 10.2.2.1
 set transform-set TS-AES256
 set pfs group14
 match address VPN-ACL
!
interface GigabitEthernet0/1
 ip address 10.1.1.1 255.255.255.252
 crypto map VPN-MAP
!
interface GigabitEthernet0/2
 ip address 192.168.10.1 255.255.255.0
 ip address 192.168.11.1 255.255.255.0 secondary
 shutdown
!
end
"""


# --- vocabulary -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("QM_IDLE", IkeStatus.ESTABLISHED),
        ("MM_NO_STATE", IkeStatus.NO_STATE),
        ("AG_NO_STATE", IkeStatus.NO_STATE),
        ("MM_WAIT_MSG2", IkeStatus.WAITING_RESPONSE),
        ("MM_KEY_EXCH", IkeStatus.NEGOTIATING),
        ("MM_SA_SETUP", IkeStatus.NEGOTIATING),
        ("MM_WAIT_MSG5", IkeStatus.NEGOTIATING),
        ("DELETED", IkeStatus.DELETED),
        ("WHATEVER", IkeStatus.UNKNOWN),
    ],
)
def test_ike_states(state: str, status: IkeStatus) -> None:
    assert ike_status(state) is status


@pytest.mark.parametrize(
    ("printed", "normal"),
    [
        ("AES - Advanced Encryption Standard (256 bit keys).", "aes-256"),
        ("AES - Advanced Encryption Standard (128 bit keys).", "aes-128"),
        ("DES - Data Encryption Standard (56 bit keys).", "des"),
        ("Three key triple DES", "3des"),
    ],
)
def test_ike_encryption(printed: str, normal: str) -> None:
    assert ike_encryption(printed) == normal


@pytest.mark.parametrize(
    ("printed", "normal"),
    [
        ("Secure Hash Standard", "sha"),
        ("Secure Hash Standard 2 (256 bit)", "sha256"),
        ("Secure Hash Standard 2 (512 bit)", "sha512"),
        ("Message Digest 5", "md5"),
    ],
)
def test_ike_hash(printed: str, normal: str) -> None:
    assert ike_hash(printed) == normal


@pytest.mark.parametrize(
    ("printed", "normal"),
    [
        ("Pre-Shared Key", "pre-share"),
        ("Rivest-Shamir-Adleman Signature", "rsa-sig"),
        ("Rivest-Shamir-Adleman Encryption", "rsa-encr"),
        ("Pre-Shared Key with XAUTH", "pre-share+xauth"),
    ],
)
def test_ike_authentication(printed: str, normal: str) -> None:
    assert ike_authentication(printed) == normal


@pytest.mark.parametrize(
    ("printed", "normal"),
    [
        (["esp-aes 256 esp-sha256-hmac"], ("esp-aes-256", "esp-sha256-hmac")),
        (["esp-256-aes esp-sha256-hmac"], ("esp-aes-256", "esp-sha256-hmac")),
        (["esp-aes esp-sha-hmac"], ("esp-aes-128", "esp-sha-hmac")),
        (["esp-gcm 256"], ("esp-gcm-256",)),
        (["ah-sha-hmac", "esp-3des esp-md5-hmac"], ("ah-sha-hmac", "esp-3des", "esp-md5-hmac")),
    ],
)
def test_ipsec_transforms(printed: list[str], normal: tuple[str, ...]) -> None:
    assert ipsec_transforms(printed) == normal


def test_pfs_group() -> None:
    assert pfs_group("N", "none") == ""
    assert pfs_group("Y", "group14") == "group14"
    assert pfs_group("Y", "") == "group1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "permit ip 192.168.10.0 0.0.0.255 192.168.20.0 0.0.0.255",
            ("permit", "192.168.10.0/24", "192.168.20.0/24"),
        ),
        ("permit ip host 10.1.1.1 host 10.2.2.1", ("permit", "10.1.1.1/32", "10.2.2.1/32")),
        ("permit tcp any eq 22 192.168.20.0 0.0.0.255", ("permit", None, "192.168.20.0/24")),
        ("deny ip any any", ("deny", None, None)),
    ],
)
def test_acl_selectors(text: str, expected: tuple[str, str | None, str | None]) -> None:
    found = acl_selectors(text)
    assert found is not None
    action, source, destination = found
    assert (action, str(source) if source else None, str(destination) if destination else None) == (
        expected
    )


def test_acl_selectors_unknown() -> None:
    assert acl_selectors("permit ip object-group A object-group B") is None


# --- sections ---------------------------------------------------------------------------------


def test_crypto_maps_ipsec_and_ike() -> None:
    state = parse_device(device(CRYPTO_MAP, IPSEC, ISAKMP), PEER)
    entries = state.map_entries_for(ip_address(PEER))
    assert [(e.name, e.sequence) for e in entries] == [("VPN-MAP", 10)]
    entry = entries[0]
    assert entry.acl == "VPN-ACL" and entry.pfs_group == "group14"
    assert entry.interfaces == ("GigabitEthernet0/1",)
    assert entry.local_selectors == (ip_network("192.168.10.0/24"), ip_network("192.168.11.0/24"))
    assert entry.lifetime_seconds == 3600 and entry.lifetime_kilobytes == 4608000
    assert entry.source is not None and entry.source.line_no == 1
    second = state.crypto_maps[1] if state.crypto_maps else None
    assert second is not None and second.transform_sets == ("TS-AES128", "TS-3DES")

    sas = state.ipsec_sas
    assert sas is not None and len(sas) == 3
    up = sas[0]
    assert up.inbound_spis == ("0x8A2B5C11", "0x1F00B7E2")
    assert up.outbound_spis == ("0x5D3C9E21", "0xC3D2A1F0")
    assert up.remaining_seconds == 3571  # the current outbound SA's
    assert up.pfs_group == "group14" and up.transforms == ("esp-aes-256", "esp-sha256-hmac")
    assert (up.encaps, up.decaps) == (1543, 1498)
    assert up.encaps_source is not None and up.encaps_source.line_no == 10
    down = sas[1]
    assert down.peer == ip_address("172.16.9.2") and not down.has_sas and down.send_errors == 12
    assert down.errors_source is not None and "#send errors 12" in down.errors_source.line

    ike = state.ike_sas
    assert ike is not None and len(ike) == 4
    assert ike[1].status is IkeStatus.NO_STATE and ike[1].active is False
    assert ike[2].status is IkeStatus.WAITING_RESPONSE
    assert ike[3].peer == ip_address("2001:db8:20::1") and ike[3].ike_version == 1
    assert ike[3].source is not None and "state: QM_IDLE" in ike[3].source.line


def test_ike_sa_peer_is_the_other_end() -> None:
    responder = ok(
        "show crypto isakmp sa",
        "IPv4 Crypto ISAKMP SA\ndst             src             state          conn-id status\n"
        "10.1.1.1        10.2.2.1        QM_IDLE           1001 ACTIVE\n",
    )
    state = parse_device(device(responder), PEER)
    assert state.ike_sas is not None
    assert state.ike_sas[0].peer == ip_address(PEER)
    assert state.ike_sas[0].local == ip_address("10.1.1.1")


def test_crypto_acl_is_filtered_to_the_peer_entry() -> None:
    acl = ok("show access-lists", ACLS)
    state = parse_device(device(CRYPTO_MAP, acl), PEER)
    assert state.crypto_acl is not None
    assert {e.acl for e in state.crypto_acl} == {"VPN-ACL"}
    first = state.crypto_acl[0]
    assert first.matches == 1543 and first.sequence == 10
    assert first.source_net == ip_network("192.168.10.0/24")
    assert first.source is not None and first.source.line_no == 4
    assert state.crypto_acl[1].matches is None


def test_second_sample_and_problems() -> None:
    capture = device(
        CRYPTO_MAP,
        IPSEC,
        ok("show crypto ipsec sa", fixture("show_crypto_ipsec_sa", "ios15_two_peers"), 2),
        CommandCapture("show crypto isakmp sa", 1, Outcome.REJECTED, "% Invalid input detected"),
        CommandCapture("show crypto ipsec transform-set", 1, Outcome.TIMEOUT, "", error="60 s"),
        ok("show crypto isakmp policy", "this is not a policy listing\n"),
        ok(
            "show crypto engine connections active",
            fixture("show_crypto_engine_connections_active", "ios15_none"),
        ),
    )
    state = parse_device(capture, PEER)
    assert state.ipsec_sas_later is not None
    assert state.ike_sas is None and state.ike_sas_later is None
    assert state.transform_sets is None and state.ike_policies is None
    assert state.engine == () and state.engine_later is None
    problems = {p.section: p for p in state.problems}
    assert problems["isakmp_sa"].outcome == "rejected"
    assert problems["isakmp_sa"].raw == "% Invalid input detected"
    assert problems["transform_sets"].outcome == "timeout"
    assert problems["isakmp_policy"].outcome == "unparsed"
    assert problems["isakmp_policy"].raw == "this is not a policy listing\n"
    assert problems["clock"].outcome == "missing" and problems["clock"].reason == "not collected"
    assert "engine_connections" not in problems
    assert [p.section for p in state.problems].count("isakmp_sa") == 1


def test_echo_line_keeps_line_numbers() -> None:
    text = "R1#show crypto isakmp sa\n" + fixture("show_crypto_isakmp_sa", "ios15_ipv4_ipv6")
    state = parse_device(device(ok("show crypto isakmp sa", text)), PEER)
    assert state.ike_sas is not None and state.ike_sas[0].source is not None
    assert state.ike_sas[0].source.line_no == 4
    assert text.splitlines()[3] == state.ike_sas[0].source.line


def test_running_config_facts() -> None:
    state = parse_device(device(ok("show running-config", CONFIG)), PEER)
    config = state.config
    assert config is not None and state.hostname == "R1"
    assert config.isakmp_enabled is False
    assert config.psk_peers == (ip_address("10.2.2.1"), ip_address("172.16.9.2"))
    assert config.psk_wildcard is True
    assert (config.dpd_seconds, config.dpd_retry_seconds) == (10, 3)
    assert config.nat_keepalive_seconds == 20 and config.nat_traversal_enabled is True
    assert config.crypto_map_interfaces == {"VPN-MAP": ("GigabitEthernet0/1",)}
    assert str(config.interface_addresses["GigabitEthernet0/2"]) == "192.168.10.1/24"
    lines = " ".join(e.line for e in config.sources)
    assert "FLgBaJHXdYY" not in lines and "cisco123" not in lines and "s3cr3t" not in lines
    assert "<redacted>" in lines
    entries = state.extras["config_crypto_maps"]
    assert entries[0].acl == "VPN-ACL" and entries[0].pfs_group == "group14"


def test_config_rows_never_hold_keys() -> None:
    rows = parse_running_config(CONFIG)
    text = repr(rows)
    assert "FLgBaJHXdYY" not in text and "s3cr3t" not in text and "cisco123" not in text
    assert config_facts(rows).psk_wildcard is True


def test_old_crypto_map_takes_interfaces_from_the_config() -> None:
    old_map = ok("show crypto map", fixture("show_crypto_map", "ios12_source_dest"))
    config = ok(
        "show running-config", "crypto map test 10 ipsec-isakmp\ninterface BRI0\n crypto map test\n"
    )
    state = parse_device(device(old_map, config), "12.12.12.12")
    entry = state.map_entries_for(ip_address("12.12.12.12"))[0]
    assert entry.interfaces == ("BRI0",)
    assert entry.local_selectors == (ip_network("40.40.40.0/24"),)
    assert entry.remote_selectors == (ip_network("20.20.20.0/24"),)


def test_routes_and_interfaces_follow_the_derived_variables() -> None:
    capture = device(
        CRYPTO_MAP,
        ok("show access-lists VPN-ACL", ACLS),
        ok("show ip route 10.2.2.1", fixture("show_ip_route_address", "network_not_in_table")),
        ok("show ip route 192.168.10.0", fixture("show_ip_route_address", "connected")),
        ok("show ip route 192.168.20.0", fixture("show_ip_route_address", "static_nexthop")),
        ok(
            "show interfaces GigabitEthernet0/0",
            "GigabitEthernet0/0 is administratively down, line protocol is down \n"
            "  Hardware is iGbE, address is 5000.0001.0000 (bia 5000.0001.0000)\n"
            "  Internet address is 192.168.10.1/24\n",
        ),
    )
    state = parse_device(capture, PEER)
    assert state.routes["route_peer"].found is False
    local = state.routes["route_local_lan"]
    assert local.connected and local.interfaces == ("GigabitEthernet0/0",)
    assert local.query == "192.168.10.0"
    assert state.routes["route_remote_lan"].next_hops == (ip_address("10.1.1.2"),)
    iface = state.interfaces["GigabitEthernet0/0"]
    assert iface.status is InterfaceStatus.ADMIN_DOWN and iface.protocol_up is False
    assert not iface.is_up
    assert state.extras["source_interface"] == "GigabitEthernet0/0"
    problems = {p.section: p for p in state.problems}
    assert problems["crypto_interface"].outcome == "missing"
    assert "GigabitEthernet0/1" in problems["crypto_interface"].command


def test_logging_without_a_buffer_is_unknown() -> None:
    text = "Syslog logging: enabled (0 messages dropped)\n    Buffer logging:  disabled\n"
    state = parse_device(device(ok("show logging", text)), PEER)
    assert state.logs is None
    assert [p.section for p in state.problems if p.outcome == "unparsed"] == ["logging"]


def test_logging_uses_the_device_clock_for_the_year() -> None:
    capture = device(
        ok("show clock", "*10:14:02.311 UTC Tue Jan 2 2024\n"),
        ok("show logging", "*Dec 31 23:00:00.000: %CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF\n"),
    )
    state = parse_device(capture, PEER)
    assert state.logs is not None and state.logs[0].timestamp is not None
    assert state.logs[0].timestamp.year == 2023


def test_engine_configuration_when_the_plan_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    platform = load_platform("cisco_ios")
    extended = replace(
        platform,
        commands=(
            *platform.commands,
            PlanCommand(id="engine_configuration", command="show crypto engine configuration"),
        ),
    )
    monkeypatch.setattr(cisco_ios, "load_platform", lambda _name: extended)
    text = fixture("show_crypto_engine_configuration", "ios15_hw_and_sw")
    state = cisco_ios.parse_device(device(ok("show crypto engine configuration", text)), PEER)
    engine = state.extras["crypto_engine"]
    assert engine["type"] == "hardware" and engine["slot"] == "onboard 0"
    assert engine["evidence"][0].line.strip().startswith("crypto engine name:")
    assert len(engine["engines"]) == 2


def test_dispatch_and_unreachable() -> None:
    unreachable = DeviceCapture(name="R9", platform="cisco_ios", error="timed out")
    state = parse_device(unreachable, PEER)
    assert state.unreachable == "timed out" and state.ike_sas is None
    with pytest.raises(ConfigError):
        parse_device(DeviceCapture(name="X", platform="nope", captures=[ok("a", "b")]), PEER)


def test_no_peer_keeps_every_crypto_acl() -> None:
    state = parse_device(device(CRYPTO_MAP, ok("show access-lists", ACLS)))
    assert state.crypto_acl is not None
    assert {e.acl for e in state.crypto_acl} == {"VPN-ACL", "BRANCH2-ACL"}
    assert state.ipsec_sas is None
    assert any(p.section == "ipsec_sa" for p in state.problems)


def test_no_entry_for_the_peer_leaves_the_acl_unknown() -> None:
    dynamic = ok("show crypto map", fixture("show_crypto_map", "ios15_dynamic"))
    state = parse_device(device(dynamic, ok("show access-lists", ACLS)), "10.9.9.9")
    assert state.crypto_acl is None
    problem = next(p for p in state.problems if p.section == "crypto_acl")
    assert problem.outcome == "missing" and "no crypto map entry names" in problem.reason
    assert state.extras["variables"]["crypto_interface"] == "GigabitEthernet0/0"


def test_counter_evidence_stays_inside_its_flow() -> None:
    text = fixture("show_crypto_ipsec_sa", "ios15_two_peers").replace(
        "    #pkts encaps: 0, #pkts encrypt: 0, #pkts digest: 0\n", "", 1
    )
    state = parse_device(device(ok("show crypto ipsec sa", text)), PEER)
    assert state.ipsec_sas is not None
    down = state.ipsec_sas[1]
    assert down.encaps == 0 and down.encaps_source is None
    assert down.decaps_source is not None and down.decaps_source.line_no > 60


def test_pasted_output_with_prompts() -> None:
    text = "R1#show crypto isakmp sa\n" + fixture("show_crypto_isakmp_sa", "ios12_slot") + "R1#"
    state = parse_device(device(ok("show crypto isakmp sa", text)), "192.1.66.1")
    assert state.ike_sas is not None and len(state.ike_sas) == 3
    assert state.problems[0].section != "isakmp_sa"


def test_a_sub_command_a_block_kind_lacks_is_passed_over() -> None:
    """``set peer`` belongs to crypto map entries; inside an IPsec profile (where IOS refuses
    it, but a pasted or edited configuration may have it) it must not stop the parse."""
    rows = parse_running_config(
        "hostname R1\n"
        "crypto ipsec profile VTI-PROF\n"
        " set transform-set TS-AES\n"
        " set peer 10.2.2.1\n"
        "!\n"
    )
    profile = next(r for r in rows if r["kind"] == "ipsec_profile")
    assert profile["name"] == "VTI-PROF"
    assert profile["transform_sets"] == ["TS-AES"]
    assert "peers" not in profile
