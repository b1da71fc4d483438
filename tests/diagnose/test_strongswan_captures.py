"""The decision tree on real strongSwan lab captures (tests/captures/strongswan): same codes.

The IOS scenarios run end to end in tests/e2e; these captures from the live strongSwan lab
prove that rules which read only platform-neutral state name the same causes there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.scenario_support import Scenario, assert_expectations, load_scenario

ROOT = Path(__file__).resolve().parents[1] / "captures" / "strongswan"
SCENARIOS = (
    [load_scenario(p) for p in sorted(ROOT.iterdir()) if (p / "scenario.yaml").is_file()]
    if ROOT.is_dir()
    else []
)


@pytest.mark.skipif(not SCENARIOS, reason="no strongSwan lab captures in tests/captures")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_strongswan_capture_names_the_expected_cause(scenario: Scenario) -> None:
    from ipsec_doctor.workflow.flow import analyze_folder

    report = analyze_folder(scenario.folder)
    assert_expectations(scenario, report)
    for finding in report.findings:
        assert finding.reference and finding.summary.startswith(finding.device)
