"""Every bundled scenario through `analyze` (the file collector): its expected codes and golden."""

from __future__ import annotations

import pytest

from ipsec_doctor.workflow.flow import analyze_folder
from tests.e2e.scenario_support import (
    Scenario,
    assert_expectations,
    bundled_scenarios,
    golden_view,
    load_golden,
)

SCENARIOS = bundled_scenarios()


def test_there_are_scenarios_for_issue_3() -> None:
    assert len(SCENARIOS) >= 16


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_analyze_names_the_expected_cause(scenario: Scenario) -> None:
    report = analyze_folder(scenario.folder)
    assert_expectations(scenario, report)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_analyze_matches_the_golden_findings(scenario: Scenario) -> None:
    golden = load_golden(scenario)
    if golden is None:
        pytest.skip(f"{scenario.name}: no expected.json yet (tests/scenarios/update_golden.py)")
    report = analyze_folder(scenario.folder)
    assert golden_view(report) == golden
