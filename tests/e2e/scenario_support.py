"""Helpers shared by the end-to-end scenario tests: scenario discovery, expectations, goldens.

A scenario folder (DESIGN.md "Capture folders") carries ``scenario.yaml`` with ``peer``,
``expected_first``, ``expected_also`` and ``must_not``, and may carry ``expected.json``: the
golden findings (code, severity, device, fix_device and the evidence lines) written by
``tests/scenarios/update_golden.py`` and reviewed by a person.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ipsec_doctor.model.report import Report
from ipsec_doctor.resources import data_dir

GOLDEN_FILE = "expected.json"


@dataclass(frozen=True)
class Scenario:
    name: str
    folder: Path
    peer: str
    expected_first: str
    expected_also: tuple[str, ...]
    must_not: tuple[str, ...]

    @property
    def golden_path(self) -> Path:
        return self.folder / GOLDEN_FILE


def load_scenario(folder: Path) -> Scenario:
    raw = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
    return Scenario(
        name=folder.name,
        folder=folder,
        peer=str(raw["peer"]),
        expected_first=str(raw["expected_first"]),
        expected_also=tuple(raw.get("expected_also") or ()),
        must_not=tuple(raw.get("must_not") or ()),
    )


def bundled_scenarios() -> list[Scenario]:
    root = data_dir("scenarios")
    return [load_scenario(p) for p in sorted(root.iterdir()) if (p / "scenario.yaml").is_file()]


def golden_view(report: Report) -> list[dict[str, Any]]:
    """What the golden file pins: every finding's identity and its evidence lines."""
    return [
        {
            "code": f.code.value,
            "severity": f.severity.value,
            "device": f.device,
            "fix_device": f.fix_device,
            "evidence": [f"{e.device}|{e.command}|{e.sample}|{e.line.strip()}" for e in f.evidence],
        }
        for f in report.findings
    ]


def load_golden(scenario: Scenario) -> list[dict[str, Any]] | None:
    if not scenario.golden_path.is_file():
        return None
    data: list[dict[str, Any]] = json.loads(scenario.golden_path.read_text(encoding="utf-8"))
    return data


def assert_expectations(scenario: Scenario, report: Report) -> None:
    codes = [f.code.value for f in report.findings]
    assert codes, f"{scenario.name}: no findings at all"
    assert codes[0] == scenario.expected_first, (
        f"{scenario.name}: first finding {codes[0]}, expected {scenario.expected_first}; "
        f"all: {codes}"
    )
    for code in scenario.expected_also:
        assert code in codes, f"{scenario.name}: {code} missing from {codes}"
    for code in scenario.must_not:
        assert code not in codes, f"{scenario.name}: {code} must not appear; got {codes}"
