"""`ipsec-doctor check` against the real strongSwan gateways of shared/lab/strongswan, over SSH.

For each of the lab's eleven scenarios: ``lab.sh scenario NAME`` (reconfigures both gateways,
starts the IKEv2 and the IKEv1 tunnel from gw1 and waits until the failure shows: 3 to 30 s),
then the real command line, ``ipsec-doctor check --peer 198.51.100.129`` with the inventory of
tests/lab/inventory (gw1 and gw2, platform ``strongswan``, netmiko ``linux``, user netops,
``sudo -s`` as enable), and the assertions of tests/lab/strongswan_expectations.py, the same
the saved captures meet offline. In ``healthy`` LAN hosts ping through both tunnels while the
gateways are read. ``peer-down`` and ``wrong-peer-address`` are checked a second time with gw1
alone in the inventory (and ``--device gw1``). After the checks the lab must still run the
scenario (``lab.sh status``): nothing else reconfigured it meanwhile.

Skipped, with the reason, where the lab cannot run (tests/lab/conftest.py). Whole module:
about 11 x (scenario 3-30 s + check about 7 s) = 3 to 4 minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsec_doctor.model.report import Report
from tests.lab.conftest import Lab
from tests.lab.strongswan_expectations import PEER, SCENARIOS, check_report

pytestmark = pytest.mark.lab

INVENTORY = Path(__file__).resolve().parent / "inventory"
CHECK_TIMEOUT = 120  # seconds for one `ipsec-doctor check`
# lan1's hosts -> lan2's hosts through the IKEv2 tunnel (lower /26s) and the IKEv1 tunnel
TRAFFIC = (("192.0.2.10", "192.0.2.140"), ("192.0.2.70", "192.0.2.200"))
GW1_ALONE = ("peer-down", "wrong-peer-address")


def write_inventory(folder: Path, hosts: tuple[str, ...] = ("gw1", "gw2")) -> Path:
    """tests/lab/inventory (optionally fewer hosts), with $IPSEC_LAB_PASSWORD if set."""
    folder.mkdir(parents=True, exist_ok=True)
    all_hosts = yaml.safe_load((INVENTORY / "hosts.yaml").read_text(encoding="utf-8"))
    groups = yaml.safe_load((INVENTORY / "groups.yaml").read_text(encoding="utf-8"))
    password = os.environ.get("IPSEC_LAB_PASSWORD")
    if password:
        group = groups["strongswan_lab"]
        group["password"] = password
        group["data"]["secret"] = password
        group["connection_options"]["netmiko"]["extras"]["secret"] = password
    chosen = {name: all_hosts[name] for name in hosts}
    (folder / "hosts.yaml").write_text(yaml.safe_dump(chosen), encoding="utf-8")
    (folder / "groups.yaml").write_text(yaml.safe_dump(groups), encoding="utf-8")
    (folder / "defaults.yaml").write_text("platform: strongswan\n", encoding="utf-8")
    return folder


@contextmanager
def traffic() -> Iterator[None]:
    """Pings from lan1 through both tunnels while the gateways are read (stopped by PID)."""
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", "lan1", "ping", "-q", "-i", "0.2", "-W", "1", "-I", src, dst],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for src, dst in TRAFFIC
    ]
    try:
        time.sleep(1)  # the first packets pass before the first sample
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def run_check(inventory: Path, captures: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """The real command line; (exit code, JSON document, stderr)."""
    command = [
        sys.executable,
        "-m",
        "ipsec_doctor.cli.main",
        "check",
        "--peer",
        PEER,
        "--inventory",
        str(inventory),
        "--interval",
        "2",
        "--format",
        "json",
        "--quiet",
        "--save-captures",
        str(captures),
        *extra,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )
    assert result.returncode in (0, 1), (
        f"check exited {result.returncode}:\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}"
    )
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"check printed no JSON ({error}):\n{result.stdout[-2000:]}") from None
    return result.returncode, document, result.stderr


def _explain(document: dict[str, Any]) -> str:
    return "\n".join(f"  {f['code']}: {f['summary']}" for f in document.get("findings", []))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_check_names_the_cause(strongswan_lab: Lab, scenario: str, tmp_path: Path) -> None:
    started = time.monotonic()
    strongswan_lab.run("scenario", scenario)
    ready = time.monotonic()
    inventory = write_inventory(tmp_path / "inventory")
    if scenario == "healthy":
        with traffic():
            code, document, stderr = run_check(inventory, tmp_path / "captures")
    else:
        code, document, stderr = run_check(inventory, tmp_path / "captures")
    done = time.monotonic()
    report = Report.from_dict(document)
    devices = {d.name: d for d in report.devices}
    assert set(devices) == {"gw1", "gw2"}, stderr
    for device in devices.values():
        assert not device.error, f"{device.name}: {device.error}"
        assert device.platform == "strongswan"
        # every command of the plan answered (none refused, timed out or lost)
        failed = [c.command for c in device.commands if c.outcome != "ok"]
        assert not failed, f"{device.name}: {failed}"
    check_report(scenario, report)
    worst_critical = any(f.severity.value == "critical" for f in report.findings)
    assert code == (1 if worst_critical else 0), _explain(document)
    print(
        f"\n{scenario}: lab.sh scenario {ready - started:.1f} s, check {done - ready:.1f} s; "
        f"{report.findings[0].code.value}: {report.findings[0].summary}"
    )
    if scenario in GW1_ALONE:
        check_gw1_alone(scenario, tmp_path)
    assert lab_scenario(strongswan_lab) == scenario, "the lab was reconfigured meanwhile"


def lab_scenario(lab: Lab) -> str:
    """The scenario lab.sh says it runs (another user of the lab would change it)."""
    status = lab.run("status").stdout
    for line in status.splitlines():
        if line.startswith("scenario:"):
            return line.split(":", 1)[1].strip()
    return ""


def check_gw1_alone(scenario: str, tmp_path: Path) -> None:
    """The same scenario with gw1 alone in the inventory (the peer is not ours to read)."""
    inventory = write_inventory(tmp_path / "inventory-gw1", hosts=("gw1",))
    # gw1's connections may not name the peer (wrong-peer-address): say which device is local
    _code, document, stderr = run_check(inventory, tmp_path / "captures-gw1", "--device", "gw1")
    report = Report.from_dict(document)
    assert [d.name for d in report.devices] == ["gw1"], stderr
    check_report(scenario, report, gw1_alone=True)


def test_audit_and_runbook_over_ssh(strongswan_lab: Lab, tmp_path: Path) -> None:
    """The other two ways in, against the same live gateways: `audit` enumerates the tunnel
    and names the cause; `runbook --runbook strongswan` walks to it (Enter at every prompt)."""
    strongswan_lab.run("scenario", "ts-mismatch")
    inventory = write_inventory(tmp_path / "inventory")
    base = [sys.executable, "-m", "ipsec_doctor.cli.main"]
    audit = subprocess.run(
        [
            *base,
            "audit",
            "--inventory",
            str(inventory),
            "--interval",
            "2",
            "--db",
            str(tmp_path / "audit.db"),
            "--format",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )
    assert audit.returncode == 1, audit.stderr[-3000:]
    tunnels = [json.loads(line) for line in audit.stdout.splitlines() if line.strip()]
    ours = [t for t in tunnels if t.get("device") == "gw1" and t.get("peer") == PEER]
    assert ours, audit.stdout[-3000:]
    assert ours[0]["findings"][0]["code"] == "PROXY_ID_MISMATCH"
    transcript = tmp_path / "runbook.md"
    runbook = subprocess.run(
        [
            *base,
            "runbook",
            "--inventory",
            str(inventory),
            "--peer",
            PEER,
            "--runbook",
            "strongswan",
            "--interval",
            "2",
            "--transcript",
            str(transcript),
        ],
        input="\n" * 40,
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )
    assert runbook.returncode == 1, runbook.stdout[-3000:] + runbook.stderr[-2000:]
    assert "Root cause: PROXY_ID_MISMATCH on gw1" in runbook.stdout
    assert "None: only show commands were run." in transcript.read_text(encoding="utf-8")
