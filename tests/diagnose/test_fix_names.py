"""strongSwan fix texts name the real connection and child of the tunnel under diagnosis.

What an engineer checks: the configuration a finding proposes can be pasted into swanctl.conf
as it is, naming the connection(s) whose ``remote_addrs`` is the peer (both of them where the
lab runs an IKEv1 and an IKEv2 tunnel to one peer, in one ``connections`` block), and the
generic ``<connection>`` wording is left only where the name is truly unknown.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from ipsec_doctor.diagnose.fixes import (
    entry_names,
    load_fixes,
    merge_renderings,
    render,
    template,
)
from ipsec_doctor.model.state import CryptoMapEntry
from ipsec_doctor.workflow.flow import analyze_folder

CAPTURES = Path(__file__).resolve().parents[1] / "captures" / "strongswan"
SCENARIOS = sorted(p.name for p in CAPTURES.iterdir() if (p / "scenario.yaml").is_file())
BOTH = ("s2s-ikev2", "s2s-ikev1")


def entry(connection: str, child: str) -> CryptoMapEntry:
    return CryptoMapEntry(
        name=connection,
        sequence=1,
        peers=(ip_address("198.51.100.129"),),
        acl=child,
        local_selectors=(ip_network("192.0.2.0/26"),),
        remote_selectors=(ip_network("192.0.2.128/26"),),
    )


def finding_of(scenario: str, code: str, device: str = "") -> tuple[str, str]:
    """(fix, fix_device) of the first ``code`` finding (on ``device``) of a lab capture."""
    report = analyze_folder(CAPTURES / scenario)
    found = next(
        f for f in report.findings if f.code.value == code and (not device or f.device == device)
    )
    return found.fix, found.fix_device


def test_no_strongswan_template_prints_a_literal_connection_placeholder() -> None:
    for key, per_platform in load_fixes()["fixes"].items():
        text = per_platform.get("strongswan", "")
        assert "<connection>" not in text and "<child>" not in text, key


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lab_fixes_name_the_connections(scenario: str) -> None:
    for finding in analyze_folder(CAPTURES / scenario).findings:
        assert "<connection>" not in finding.fix, (finding.code, finding.fix)
        assert "<child>" not in finding.fix, (finding.code, finding.fix)


def test_dpd_fix_names_both_connections_in_one_block() -> None:
    fix, device = finding_of("dpd-teardown", "DPD_TOO_AGGRESSIVE", "gw1")
    assert device == "gw1"
    assert fix == (
        "connections {\n"
        "    s2s-ikev2 {\n"
        "        dpd_delay = 30s\n"
        "        dpd_timeout = 150s\n"
        "    }\n"
        "    s2s-ikev1 {\n"
        "        dpd_delay = 30s\n"
        "        dpd_timeout = 150s\n"
        "    }\n"
        "}"
    )


def test_proposal_fix_names_the_connections_offering_the_weak_proposal() -> None:
    fix, device = finding_of("ike-proposal-mismatch", "PHASE1_PROPOSAL_MISMATCH")
    assert device == "gw2"
    assert fix.count("connections {") == 1
    for name in BOTH:
        assert f"    {name} {{\n        proposals = aes256-sha256-modp2048\n    }}" in fix


def test_weak_crypto_fix_names_connections_and_children() -> None:
    fix, _ = finding_of("ike-proposal-mismatch", "WEAK_CRYPTO", "gw2")
    for connection, child in (("s2s-ikev2", "lan-ikev2"), ("s2s-ikev1", "lan-ikev1")):
        assert f"    {connection} {{\n" in fix
        assert f"            {child} {{\n" in fix


def test_peer_address_fix_corrects_every_connection_naming_the_wrong_peer() -> None:
    fix, device = finding_of("wrong-peer-address", "PEER_ADDRESS_MISMATCH")
    assert device == "gw1"
    for name in BOTH:
        assert f"    {name} {{\n        remote_addrs = 198.51.100.129\n    }}" in fix


def test_unknown_name_keeps_the_generic_wording() -> None:
    # the fix is for an end that was not read: no state tells the connection's name
    fix = render("NAT_T_NOT_ENABLED", "strongswan")
    assert "<connection> {" in fix and "{connection}" not in fix
    named = render("NAT_T_NOT_ENABLED", "strongswan", names=entry_names([entry("vpn", "lan")]))
    assert named == "connections {\n    vpn {\n        encap = yes\n    }\n}"


def test_two_children_of_one_connection_share_its_block() -> None:
    names = entry_names([entry("vpn", "lan-a"), entry("vpn", "lan-b")])
    fix = render("LIFETIME_MISMATCH", "strongswan", names=names, seconds=3600)
    assert fix == (
        "connections {\n"
        "    vpn {\n"
        "        children {\n"
        "            lan-a {\n"
        "                rekey_time = 3600s\n"
        "            }\n"
        "            lan-b {\n"
        "                rekey_time = 3600s\n"
        "            }\n"
        "        }\n"
        "    }\n"
        "}"
    )


def test_commands_for_several_children_terminate_the_ike_sa_once() -> None:
    names = entry_names([entry("vpn", "lan-a"), entry("vpn", "lan-b")])
    fix = render("SPI_OUT_OF_SYNC", "strongswan", names=names)
    assert fix.splitlines() == [
        "swanctl --terminate --ike vpn",
        "swanctl --initiate --child lan-a",
        "swanctl --initiate --child lan-b",
    ]
    names = entry_names([entry("vpn", "lan-a"), entry("other", "lan-c")])
    assert render("SPI_OUT_OF_SYNC", "strongswan", names=names).splitlines() == [
        "swanctl --terminate --ike vpn",
        "swanctl --initiate --child lan-a",
        "",
        "swanctl --terminate --ike other",
        "swanctl --initiate --child lan-c",
    ]


def test_ios_fix_texts_are_unchanged_by_names() -> None:
    names = entry_names([entry("VPNMAP", "VPN-TRAFFIC")])
    assert render(
        "LIFETIME_MISMATCH", "cisco_ios", names=names, map_name="VPNMAP", seq=10, seconds=3600
    ) == template("LIFETIME_MISMATCH", "cisco_ios").format(
        map_name="VPNMAP", seq=10, seconds=3600
    ).rstrip("\n")


def test_merge_keeps_structure_when_renderings_share_nothing() -> None:
    assert merge_renderings([["a {", "  x", "}"], ["b {", "  y", "}"]]) == [
        "a {",
        "  x",
        "}",
        "",
        "b {",
        "  y",
        "}",
    ]
