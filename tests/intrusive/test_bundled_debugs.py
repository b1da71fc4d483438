"""The bundled scenarios' own debug output, as `check --lab <scenario> --debug` reads it.

tests/scenarios/build_scenarios.py writes ``debug_crypto_<flag>.txt`` for the scenarios where
the debugs tell the story (the next attempt of the negotiation the log shows, just after the
collection). These tests check the files as a reviewer would (IOS stamps, time order, the
scenario's addresses, each message under the debug that prints it), then run the real
``check --lab X --debug`` path (non-interactive: no --clear, so nothing to confirm) and
require the same findings as the golden, now quoting debug lines, with every debug undone;
and that the no-debug path (the goldens) never reads those files.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsec_doctor.cli import check_cmd
from ipsec_doctor.cli.main import main
from ipsec_doctor.collect.file_collector import collect_folder
from ipsec_doctor.collect.intrusive_check import IntrusiveOptions
from ipsec_doctor.collect.intrusive_data import load_intrusive, owner_of
from ipsec_doctor.lab.emulator import EmulatorLab
from ipsec_doctor.workflow.flow import analyze_folder
from tests.e2e.scenario_support import (
    Scenario,
    bundled_scenarios,
    golden_view,
    load_golden,
    load_scenario,
)

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2] / "ipsec_doctor" / "lab" / "scenarios"
DATA = load_intrusive("cisco_ios")
FLAGS = ("isakmp", "ipsec", "ikev2")

#: scenario -> (the debug each router needs for its IKE, a debug line the root cause must quote)
REQUIRED = {
    "healthy": ("isakmp", ""),
    "psk-mismatch": ("isakmp", "ISAKMP: reserved no zero on payload 5!"),
    "phase1-proposal-mismatch": ("isakmp", "ISAKMP:(0):no offers accepted!"),
    "transform-set-mismatch": (
        "isakmp",
        "IPSEC(ipsec_process_proposal): transform proposal not supported for identity:",
    ),
    "proxy-id-mismatch": (
        "isakmp",
        "IPSEC(ipsec_process_proposal): proxy identities not supported",
    ),
    "ikev2-proposal-mismatch": ("ikev2", "Failed to find a matching policyProposal 1:"),
}

# Sample device line: "*Nov 23 10:15:48.521: ISAKMP:(1001): retransmitting phase 1 MM_KEY_EXCH..."
STAMP = re.compile(
    r"^\*(?P<mon>[A-Z][a-z]{2}) (?P<day>[ \d]\d) (?P<time>\d\d:\d\d:\d\d\.\d{3}): \S"
)
# Sample device line: "*10:15:32.123 UTC Mon Nov 23 2026"
CLOCK = re.compile(
    r"^\*(?P<time>\d\d:\d\d:\d\d\.\d{3}) UTC \w{3} (?P<mon>\w{3}) (?P<day>\d+) (?P<year>\d{4})"
)
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
SAMPLE_GAP = 6.0  # the generator's seconds between sample 1 and sample 2


def _debug_files(folder: Path) -> dict[str, list[Path]]:
    return {
        device.name: sorted(device.glob("debug_crypto_*.txt"))
        for device in sorted(folder.iterdir())
        if (device / "device.yaml").is_file()
    }


DEBUGGED = sorted(
    p.name
    for p in ROOT.iterdir()
    if any(_debug_files(p).values())
    if (p / "scenario.yaml").is_file()
)


def test_the_scenarios_where_debugs_tell_the_story_have_them() -> None:
    assert set(REQUIRED) <= set(DEBUGGED), set(REQUIRED) - set(DEBUGGED)
    for name in REQUIRED:
        files = _debug_files(ROOT / name)
        assert all(files.values()), f"{name}: a router without debug output: {files}"


def _messages(text: str) -> list[list[str]]:
    messages: list[list[str]] = []
    for line in text.splitlines():
        if STAMP.match(line):
            messages.append([line])
        else:
            assert line.startswith((" ", "\t")) and messages, f"unstamped line {line!r}"
            messages[-1].append(line)
    return messages


def _clock(device: Path) -> datetime:
    match = CLOCK.match((device / "show_clock.txt").read_text())
    assert match, device
    return datetime.strptime(
        f"{match['mon']} {match['day']} {match['year']} {match['time']}", "%b %d %Y %H:%M:%S.%f"
    )


def _stamp(line: str, year: int) -> datetime:
    match = STAMP.match(line)
    assert match
    return datetime.strptime(
        f"{match['mon']} {match['day'].strip()} {year} {match['time']}", "%b %d %Y %H:%M:%S.%f"
    )


@pytest.mark.parametrize("name", DEBUGGED)
def test_debug_files_read_like_the_routers_debugs(name: str) -> None:
    folder = ROOT / name
    config = {d: (folder / d / "show_running-config.txt").read_text() for d in _debug_files(folder)}
    addresses = {a for text in config.values() for a in IPV4.findall(text)}
    networks = [ipaddress.ip_network(f"{a}/24", strict=False) for a in addresses]
    for device, files in _debug_files(folder).items():
        clock = _clock(folder / device)
        meta = yaml.safe_load((folder / device / "device.yaml").read_text())
        for path in files:
            flag = path.stem.removeprefix("debug_crypto_")
            assert flag in FLAGS, path
            text = path.read_text()
            assert text.endswith("\n") and "\r" not in text
            messages = _messages(text)
            assert messages, path
            stamps = [_stamp(m[0], clock.year) for m in messages]
            assert stamps == sorted(stamps), f"{path}: not in time order"
            # after the collection (sample 2 at +6 s), within one --debug-seconds (60 s)
            assert clock + timedelta(seconds=SAMPLE_GAP) < stamps[0], path
            assert stamps[-1] < clock + timedelta(seconds=60), path
            for message in messages:
                body = "\n".join(message)
                # the tool files each message under the debug that prints it
                assert owner_of(body, DATA, ("ikev2", "isakmp", "ipsec")) == flag, body
                for address in IPV4.findall(body):
                    ip = ipaddress.ip_address(address)
                    assert address in addresses or any(ip in n for n in networks), (
                        f"{path}: {address} is no address of the scenario"
                    )
                for secret in (meta["password"], meta["secret"], "Sup3rS3cret"):
                    assert secret not in body


def test_no_debug_path_never_reads_the_debug_files() -> None:
    """`analyze DIR` / `check` without --debug run the plan only: the goldens stay as they are."""
    for name in DEBUGGED:
        scenario = load_scenario(ROOT / name)
        captures = collect_folder(scenario.folder, {}, peer=scenario.peer)
        for device in captures.devices.values():
            assert not [c for c in device.captures if c.command.startswith("debug")], name
        assert golden_view(analyze_folder(scenario.folder)) == load_golden(scenario), name


@pytest.fixture
def lab_runs(monkeypatch: pytest.MonkeyPatch) -> list[EmulatorLab]:
    """The labs `check --lab` starts, kept for inspection once the run is over."""
    labs: list[EmulatorLab] = []
    original = check_cmd.running_lab

    @contextmanager
    def recording(scenario: str, inventory_dir: Path | None = None) -> Iterator[Any]:
        with original(scenario, inventory_dir) as (lab, config):
            labs.append(lab)
            yield lab, config

    monkeypatch.setattr(check_cmd, "running_lab", recording)
    return labs


def _evidence(finding: dict[str, Any], debug: bool) -> list[str]:
    return [
        f"{e['device']}|{e['command']}|{e['sample']}|{e['line'].strip()}"
        for e in finding["evidence"]
        if e["command"].startswith("debug ") == debug
    ]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_check_lab_debug_quotes_the_bundled_debugs_and_undoes_them(
    name: str,
    lab_runs: list[EmulatorLab],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario: Scenario = next(s for s in bundled_scenarios() if s.name == name)
    ike_debug, quoted = REQUIRED[name]
    audit = tmp_path / "audit.log"
    argv = ["check", "--lab", name, "--peer", scenario.peer, "--interval", "0", "--quiet"]
    argv += ["--format", "json", "--debug", "--debug-seconds", "30", "--audit-log", str(audit)]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    golden = load_golden(scenario)
    assert golden is not None
    findings = report["findings"]

    # the same root cause and findings; what is not a debug line is exactly the golden's
    assert [f["code"] for f in findings] == [g["code"] for g in golden]
    assert [_evidence(f, debug=False) for f in findings] == [g["evidence"] for g in golden]
    assert code == (0 if name == "healthy" else 1)
    debug_lines = [line for f in findings for line in _evidence(f, debug=True)]
    if quoted:
        root = _evidence(findings[0], debug=True)
        assert any(quoted in line for line in root), debug_lines
        assert all(
            f"|debug crypto {ike_debug}|" in line or "|debug crypto ipsec|" in line
            for line in debug_lines
        )
    for device in report["devices"]:
        commands = [c["command"] for c in device["commands"] if c["command"].startswith("debug")]
        assert commands == [f"debug crypto {ike_debug}", "debug crypto ipsec"], device["name"]

    # every debug undone on both routers, the condition last
    (lab,) = lab_runs
    lab.assert_debugs_off()
    for device_name in ("R1", "R2"):
        history = lab.device(device_name).history
        peer = next(d["peer"] for d in report["devices"] if d["name"] == device_name)
        assert history[0] == f"debug crypto condition peer ipv4 {peer}"
        assert f"debug crypto {ike_debug}" in history and "debug crypto ipsec" in history
        assert history[-2:] == ["undebug all", f"no debug crypto condition peer ipv4 {peer}"]
    assert "undebug all" in audit.read_text()


def test_debugs_follow_the_ike_versions_a_router_runs() -> None:
    options = IntrusiveOptions(debug=True)
    assert options.debugs_for({}) == ("isakmp", "ipsec")  # unknown: IKEv1, as before
    assert options.debugs_for({"ikev1": True, "ikev2": False}) == ("isakmp", "ipsec")
    assert options.debugs_for({"ikev1": False, "ikev2": True}) == ("ikev2", "ipsec")
    assert options.debugs_for({"ikev2": True}) == ("ikev2", "isakmp", "ipsec")
    engine = IntrusiveOptions(debug=True, debug_engine=True)
    assert engine.debugs_for({"ikev1": False, "ikev2": True}) == ("ikev2", "ipsec", "engine")
    for name in ("isakmp", "ikev2", "ipsec"):
        spec = DATA.debugs[name]
        assert spec.command == f"debug crypto {name}" and spec.undo == f"no {spec.command}"
