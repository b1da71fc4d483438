"""Write each bundled scenario's expected.json from the current diagnosis (review the diff!).

Usage: python tests/scenarios/update_golden.py [SCENARIO ...]

The golden file pins every finding's code, severity, device, fix_device and evidence lines, so
an unintended change in parsing or rules shows up as a test failure. It refuses to write a
golden whose findings contradict scenario.yaml (expected_first / expected_also / must_not).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ipsec_doctor.workflow.flow import analyze_folder
from tests.e2e.scenario_support import (
    assert_expectations,
    bundled_scenarios,
    golden_view,
)


def main(names: list[str]) -> int:
    failures = 0
    for scenario in bundled_scenarios():
        if names and scenario.name not in names:
            continue
        report = analyze_folder(scenario.folder)
        try:
            assert_expectations(scenario, report)
        except AssertionError as error:
            print(f"SKIP {scenario.name}: {error}")
            failures += 1
            continue
        text = json.dumps(golden_view(report), indent=2) + "\n"
        scenario.golden_path.write_text(text, encoding="utf-8")
        print(f"wrote {scenario.golden_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
