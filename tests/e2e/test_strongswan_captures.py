"""The strongSwan lab's saved captures through `analyze`: the same causes as against the live lab.

tests/captures/strongswan/<scenario>/ holds what tests/lab/capture_strongswan.py read from the
real gateways (strongSwan 5.9.8, kernel-libipsec) over SSH; this test runs everywhere in CI and
asserts what tests/lab/test_live_lab.py asserts against the running lab
(tests/lab/strongswan_expectations.py), with both gateways read and with gw1 alone. A
Cisco IOS router and a strongSwan gateway as the two ends of one tunnel are compared across
platforms (policies, transform sets, selectors, PFS).
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from ipsec_doctor.cli.main import main
from ipsec_doctor.model.report import Report
from ipsec_doctor.resources import data_dir
from ipsec_doctor.workflow.flow import analyze_folder
from tests.e2e.scenario_support import assert_expectations, load_scenario
from tests.lab.strongswan_expectations import PEER, SCENARIOS, check_report

ROOT = Path(__file__).resolve().parents[1] / "captures" / "strongswan"


def test_every_lab_scenario_was_captured() -> None:
    captured = sorted(p.name for p in ROOT.iterdir() if (p / "scenario.yaml").is_file())
    assert captured == sorted(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_both_gateways_read(scenario: str) -> None:
    folder = ROOT / scenario
    report = analyze_folder(folder)
    check_report(scenario, report)
    assert_expectations(load_scenario(folder), report)  # scenario.yaml agrees with the table
    roles = {d.name: d.role for d in report.devices}
    assert roles == {"gw1": "local", "gw2": "remote"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gw1_alone(scenario: str, tmp_path: Path) -> None:
    """Only the local gateway is read (the peer is not in the inventory)."""
    folder = tmp_path / scenario
    folder.mkdir()
    shutil.copytree(ROOT / scenario / "gw1", folder / "gw1")
    shutil.copy(ROOT / scenario / "scenario.yaml", folder / "scenario.yaml")
    report = analyze_folder(folder)
    assert [d.name for d in report.devices] == ["gw1"]
    check_report(scenario, report, gw1_alone=True)


def test_udp4500_names_the_silent_port() -> None:
    finding = analyze_folder(ROOT / "udp4500-blocked").findings[0]
    assert finding.detail["silent_port"] == 4500
    assert finding.detail["answered_ports"] == [500]
    assert finding.detail["blocked_ports"] == {"gw2": [4500]}
    assert any("udp dport 4500" in e.line for e in finding.evidence)


def test_udp500_quotes_the_peers_packet_filter() -> None:
    finding = analyze_folder(ROOT / "udp500-blocked").findings[0]
    assert finding.detail["blocked_ports"] == {"gw2": [500]}
    assert "silent_port" not in finding.detail  # nothing was ever answered
    assert any(e.device == "gw2" and "drop" in e.line for e in finding.evidence)


def test_wrong_peer_address_quotes_both_connections() -> None:
    finding = analyze_folder(ROOT / "wrong-peer-address").findings[0]
    remote_lines = [e for e in finding.evidence if e.line.strip() == "remote: 198.51.100.130"]
    assert len(remote_lines) == 2  # s2s-ikev2 and s2s-ikev1
    assert finding.fix_device == "gw1"
    assert "remote_addrs = 198.51.100.129" in finding.fix


def test_transform_set_mismatch_compares_the_esp_proposals() -> None:
    finding = analyze_folder(ROOT / "esp-proposal-mismatch").findings[0]
    assert finding.detail["local"]["transforms"] == ["esp-aes-256", "esp-sha256-hmac"]
    assert finding.detail["remote"]["transforms"] == ["esp-aes-128", "esp-sha-hmac"]
    assert finding.fix_device == "gw2"
    assert "esp_proposals = aes256-sha256-modp2048" in finding.fix
    quoted = {e.line.strip() for e in finding.evidence}
    assert "esp_proposals = aes128-sha1" in quoted


def test_proposal_mismatch_names_the_attributes() -> None:
    finding = analyze_folder(ROOT / "ike-proposal-mismatch").findings[0]
    assert finding.detail["differing"][:3] == ["encryption", "hash", "group"]
    assert finding.fix_device == "gw2"
    assert "proposals = aes256-sha256-modp2048" in finding.fix


def test_json_output_of_analyze(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", str(ROOT / "psk-mismatch"), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    report = Report.from_dict(document)
    assert code == 1  # a critical finding
    assert document["peer"] == PEER
    check_report("psk-mismatch", report)


# ------------------------------------------------------------------ Cisco <-> strongSwan

#: gw2's lab addresses -> the bundled IOS scenarios' addresses (R2 = 10.2.2.1, R1 = 10.1.1.1,
#: LANs 192.168.1.0/24 and 192.168.2.0/24), so that a real strongSwan gateway stands in for R2
REWRITE = (
    (r"198\.51\.100\.129\b", "10.2.2.1"),
    (r"198\.51\.100\.1\b", "10.1.1.1"),
    (r"192\.0\.2\.128/26", "192.168.2.0/24"),
    (r"192\.0\.2\.0/26", "192.168.1.0/24"),
)


def mixed_pair(tmp_path: Path, ios_scenario: str, strongswan_scenario: str) -> Path:
    """A capture folder: the IOS router R1 of a bundled scenario, and the real strongSwan gw2
    of a lab capture readdressed as R1's peer (IKEv2 connection = R1's crypto map mirror)."""
    folder = tmp_path / f"{ios_scenario}+{strongswan_scenario}"
    folder.mkdir()
    shutil.copytree(data_dir("scenarios") / ios_scenario / "R1", folder / "R1")
    (folder / "gw2").mkdir()
    for path in (ROOT / strongswan_scenario / "gw2").iterdir():
        text, name = path.read_text(encoding="utf-8"), path.name
        for pattern, replacement in REWRITE:
            text, name = re.sub(pattern, replacement, text), re.sub(pattern, replacement, name)
        (folder / "gw2" / name).write_text(text, encoding="utf-8")
    (folder / "scenario.yaml").write_text(
        "peer: 10.2.2.1\ndevices: [R1, gw2]\nexpected_first: UNUSED\n", encoding="utf-8"
    )
    return folder


def test_cisco_and_strongswan_ike_policies_are_compared(tmp_path: Path) -> None:
    report = analyze_folder(
        mixed_pair(tmp_path, "phase1-proposal-mismatch", "ike-proposal-mismatch")
    )
    assert {d.name: d.platform for d in report.devices} == {"R1": "cisco_ios", "gw2": "strongswan"}
    first = report.findings[0]
    assert first.code.value == "PHASE1_PROPOSAL_MISMATCH" and first.device == "R1"
    assert first.detail["local"]["encryption"] == "aes-256"  # crypto isakmp policy 10 (IOS)
    assert first.detail["remote"]["encryption"] == "aes-128"  # proposals = aes128-sha1-modp1024
    assert first.detail["differing"][:3] == ["encryption", "hash", "group"]
    assert first.fix_device == "gw2"  # the weaker end, fixed in its own words
    assert "proposals = aes256-sha256-modp2048" in first.fix
    devices = {e.device for e in first.evidence}
    assert devices == {"R1", "gw2"}


def test_cisco_and_strongswan_transform_sets_are_compared(tmp_path: Path) -> None:
    report = analyze_folder(mixed_pair(tmp_path, "transform-set-mismatch", "esp-proposal-mismatch"))
    first = report.findings[0]
    assert first.code.value == "TRANSFORM_SET_MISMATCH"
    assert first.detail["local"] == {
        "name": "TS-AES256",
        "transforms": ["esp-aes-256", "esp-sha256-hmac"],
    }
    assert first.detail["remote"]["transforms"] == ["esp-aes-128", "esp-sha-hmac"]
    assert first.fix_device == "gw2"
    assert "esp_proposals = aes256-sha256" in first.fix


def test_cisco_and_strongswan_healthy_pair_differs_only_in_pfs(tmp_path: Path) -> None:
    report = analyze_folder(mixed_pair(tmp_path, "healthy", "healthy"))
    codes = [f.code.value for f in report.findings]
    for code in ("PHASE1_PROPOSAL_MISMATCH", "TRANSFORM_SET_MISMATCH", "PROXY_ID_MISMATCH"):
        assert code not in codes  # the two platforms' settings are compared and agree
    assert "LIFETIME_MISMATCH" not in codes  # each end runs its own platform's defaults
    pfs = report.findings[0]
    assert pfs.code.value == "PFS_MISMATCH" and pfs.severity.value == "warning"  # SAs are up
    assert (pfs.detail["local"], pfs.detail["remote"]) == (None, 14)
    assert pfs.fix_device == "R1" and "set pfs group14" in pfs.fix


# ------------------------------------------------------------------ runbook


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_runbook_walks_to_the_same_cause(
    scenario: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`ipsec-doctor runbook --runbook strongswan` over the capture, Enter at every prompt."""
    monkeypatch.setattr("sys.stdin", io.StringIO("\n" * 40))
    transcript = tmp_path / "transcript.md"
    code = main(
        [
            "runbook",
            "--captures",
            str(ROOT / scenario),
            "--runbook",
            "strongswan",
            "--interval",
            "0",
            "--transcript",
            str(transcript),
        ]
    )
    out = capsys.readouterr().out
    expected = analyze_folder(ROOT / scenario).findings[0]
    if expected.code.value == "TUNNEL_HEALTHY":
        assert "The tunnel is healthy" in out
    else:
        assert f"Root cause: {expected.code.value} on {expected.device}" in out
    assert code == (1 if expected.severity.value == "critical" else 0)
    assert "None: only show commands were run." in transcript.read_text(encoding="utf-8")
