"""Every bundled scenario through `check` over real SSH: emulator + Nornir + netmiko.

The same scenario folders the offline tests read are served by the asyncssh emulator; the
real collection path (discovery, Nornir task per host, netmiko) reads both routers, and the
findings must be exactly those of the offline run (and of the golden file).
"""

from __future__ import annotations

import pytest

from ipsec_doctor.cli.lab_cmd import running_lab
from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.collect.discovery import discover
from ipsec_doctor.collect.nornir_collector import build_nornir, collect_devices
from ipsec_doctor.workflow.flow import analyze_folder, diagnose_captures
from tests.e2e.scenario_support import (
    Scenario,
    assert_expectations,
    bundled_scenarios,
    golden_view,
)

SCENARIOS = bundled_scenarios()

pytestmark = pytest.mark.ssh


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_check_over_ssh_equals_offline(scenario: Scenario) -> None:
    with running_lab(str(scenario.folder)) as (_lab, config):
        nr = build_nornir(None, config, 4)
        discovery = discover(nr, scenario.peer)
        captures = collect_devices(
            nr,
            discovery.hosts,
            discovery.peer_for_host,
            interval=0.0,
            clock=NoWaitClock(),
            peer=scenario.peer,
        )
        report = diagnose_captures(captures, discovery)
    assert_expectations(scenario, report)
    offline = analyze_folder(scenario.folder)
    assert golden_view(report) == golden_view(offline)
