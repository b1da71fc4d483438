"""The command line as a user meets it: exit codes, JSON schema, dry runs, bad input, secrets.

These run the real `main()` (and one real subprocess) against the bundled emulated lab over
SSH, so every layer is exercised the way `ipsec-doctor check --lab` exercises it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from ipsec_doctor.cli.main import main
from ipsec_doctor.report.json_report import load_schema
from ipsec_doctor.resources import data_dir

SCENARIOS = data_dir("scenarios")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def scenario_secrets(folder: Path) -> set[str]:
    """Every secret a scenario holds: login/enable passwords and the pre-shared keys."""
    secrets: set[str] = set()
    for device_yaml in folder.glob("*/device.yaml"):
        raw = yaml.safe_load(device_yaml.read_text(encoding="utf-8"))
        secrets.update(str(raw[key]) for key in ("password", "secret") if raw.get(key))
    for config in folder.glob("*/show_running-config*.txt"):
        # Sample device line: "crypto isakmp key Sup3rS3cretPSK! address 10.2.2.1"
        secrets.update(re.findall(r"crypto isakmp key (?:\d )?(\S+) address", config.read_text()))
    return {s for s in secrets if len(s) >= 6}


def test_healthy_lab_check_exits_0_with_tunnel_healthy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "check", "--peer", "10.2.2.1", "--lab", "healthy", "--interval", "0", "--quiet"
    )
    assert code == 0, out
    assert "TUNNEL_HEALTHY" in out
    assert "R1 (cisco_ios, local)" in out and "R2 (cisco_ios, remote)" in out


def test_json_report_follows_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "check", "--peer", "10.2.2.1", "--lab", "transform-set-mismatch",
        "--interval", "0", "--format", "json", "--quiet",
    )  # fmt: skip
    assert code == 1
    document = json.loads(out)
    jsonschema.validate(document, load_schema())
    assert document["findings"][0]["code"] == "TRANSFORM_SET_MISMATCH"
    assert document["findings"][0]["evidence"], "the root cause must quote device lines"
    assert {d["name"] for d in document["devices"]} == {"R1", "R2"}


def test_fail_on_warning_turns_a_warning_into_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["analyze", str(SCENARIOS / "no-interesting-traffic"), "--format", "json"]
    code, out, _ = run_cli(capsys, *args)
    severities = {f["severity"] for f in json.loads(out)["findings"]}
    assert "critical" not in severities and "warning" in severities
    assert code == 0
    code, _, _ = run_cli(capsys, *args, "--fail-on", "warning")
    assert code == 1


def test_unknown_peer_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "check", "--peer", "10.9.9.9", "--lab", "healthy", "--interval", "0"
    )
    assert code == 2
    assert "10.9.9.9" in err


def test_bad_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check", "--peer", "10.2.2.300", "--lab", "healthy")
    assert code == 2
    assert "10.2.2.300" in err


def test_missing_inventory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "check", "--peer", "10.2.2.1")
    assert code == 2
    assert "inventory" in err


def test_unreachable_devices_exit_4(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hosts = {
        "R1": {
            "hostname": "127.0.0.1",
            "port": 1,  # nothing listens there
            "username": "u",
            "password": "p4ssw0rd-never-printed",
            "platform": "cisco_ios",
            "data": {"peers": ["10.2.2.1"]},
            "connection_options": {"netmiko": {"extras": {"conn_timeout": 2}}},
        }
    }
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    (tmp_path / "groups.yaml").write_text("{}\n")
    (tmp_path / "defaults.yaml").write_text("{}\n")
    code, out, err = run_cli(
        capsys, "check", "--peer", "10.2.2.1", "--device", "R1", "--inventory", str(tmp_path),
        "--interval", "0", "--format", "json",
    )  # fmt: skip
    assert code == 4, out + err
    document = json.loads(out)
    assert document["devices"][0]["error"]
    assert any(
        f["code"] == "INSUFFICIENT_DATA" and f["severity"] == "warning"
        for f in document["findings"]
    )
    assert "p4ssw0rd-never-printed" not in out + err


def test_dry_run_lists_commands_and_runs_none(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "check", "--peer", "10.2.2.1", "--lab", "healthy", "--dry-run", "--quiet"
    )
    assert code == 0
    assert "R1 (cisco_ios, local, checked for 10.2.2.1)" in out
    assert "show crypto isakmp sa  x2" in out
    assert "show crypto ipsec sa peer 10.2.2.1" in out
    assert "R2 (cisco_ios, remote, checked for 10.1.1.1)" in out


def test_saved_captures_reanalyse_the_same_and_hold_no_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = SCENARIOS / "psk-mismatch"
    saved = tmp_path / "captures"
    code, live_out, live_err = run_cli(
        capsys, "check", "--peer", "10.2.2.1", "--lab", str(folder), "--interval", "0",
        "--save-captures", str(saved), "--format", "json",
    )  # fmt: skip
    assert code == 1
    code, offline_out, _ = run_cli(capsys, "analyze", str(saved), "--format", "json")
    assert code == 1
    live = [(f["code"], f["device"]) for f in json.loads(live_out)["findings"]]
    offline = [(f["code"], f["device"]) for f in json.loads(offline_out)["findings"]]
    assert live == offline and live[0][0] == "PSK_MISMATCH"
    secrets = scenario_secrets(folder)
    assert "Sup3rS3cretPSK!" in secrets  # the scenario really holds a key to leak
    artefacts = [p.read_text(errors="replace") for p in saved.rglob("*") if p.is_file()]
    artefacts += [live_out, live_err, offline_out]
    for secret in secrets:
        for text in artefacts:
            assert secret not in text


def test_parse_prints_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    path = SCENARIOS / "healthy" / "R1" / "show_crypto_isakmp_sa.txt"
    code, out, _ = run_cli(
        capsys, "parse", "--platform", "cisco_ios", "--command", "show crypto isakmp sa", str(path)
    )
    assert code == 0
    assert "10.2.2.1" in out and "QM_IDLE" in out
    json.loads(out)


def test_lab_list_names_the_bundled_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "lab", "list")
    assert code == 0
    assert "healthy" in out and "psk-mismatch" in out


def test_console_script_runs_in_a_real_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ipsec_doctor.cli.main", "analyze",
         str(SCENARIOS / "phase1-no-response")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Root cause: PHASE1_NO_RESPONSE" in result.stdout
