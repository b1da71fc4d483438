"""The finding-code contract: every code is documented, emitted by a rule and exercised.

Issue 4: "A contract test fails when a code has no rule or no scenario." For every ``Code`` of
``ipsec_doctor/model/findings.py``:

- it is in shared/FINDINGS.md's table (``../shared/FINDINGS.md`` beside the repository; on a
  clone without it, the copy in tests/contract/, which must equal it wherever both are present)
  and in docs/findings.md, whose summary table gives
  the stage, severity and strategy step the model gives it;
- some rule can emit it: ``Code.X`` appears in the diagnosis rules (``diagnose/rules/`` and the
  engine, which emits TUNNEL_HEALTHY and the gap findings);
- some bundled scenario expects it: an IOS lab scenario (``ipsec_doctor/lab/scenarios``) or a
  strongSwan capture (``tests/captures/strongswan``) names it in ``expected_first`` or
  ``expected_also``;
- and no scenario names a code the model does not know.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.diagnose.references import CODE_REFERENCE, REFERENCES
from ipsec_doctor.model.findings import CODE_STAGE, Code

ROOT = Path(__file__).resolve().parents[1]
SHARED_FINDINGS = ROOT.parent / "shared" / "FINDINGS.md"
#: The contract as this repository was built against it (CI clones the repository alone).
CONTRACT_COPY = ROOT / "tests" / "contract" / "FINDINGS.md"
CONTRACT = SHARED_FINDINGS if SHARED_FINDINGS.is_file() else CONTRACT_COPY
DOCS_FINDINGS = ROOT / "docs" / "findings.md"
DIAGNOSE = ROOT / "ipsec_doctor" / "diagnose"
RULE_FILES = [*sorted((DIAGNOSE / "rules").glob("*.py")), DIAGNOSE / "engine.py"]
SCENARIO_FILES = sorted(
    (ROOT / "ipsec_doctor" / "lab" / "scenarios").glob("*/scenario.yaml")
) + sorted((ROOT / "tests" / "captures" / "strongswan").glob("*/scenario.yaml"))
CODES = [code.value for code in Code]

# Sample table row: "| ISAKMP_DISABLED | prereq | critical | IKE/ISAKMP is switched off ... |"
_ROW = re.compile(r"^\|\s*(?P<code>[A-Z][A-Z0-9_]+)\s*\|(?P<rest>.*)\|\s*$", re.MULTILINE)


def _table(text: str) -> dict[str, list[str]]:
    """code -> the other cells of its row, for every table row that starts with a code."""
    return {m["code"]: [cell.strip() for cell in m["rest"].split("|")] for m in _ROW.finditer(text)}


def _names(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    assert isinstance(value, list), value
    return [str(v) for v in value]


def _scenarios() -> list[tuple[str, dict[str, object]]]:
    found = []
    for path in SCENARIO_FILES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict), path
        found.append((f"{path.parent.parent.name}/{path.parent.name}", data))
    return found


def test_there_are_codes_rules_and_scenarios_to_check() -> None:
    assert len(CODES) >= 36 and RULE_FILES and len(SCENARIO_FILES) >= 36


def test_the_contract_copy_is_the_shared_contract() -> None:
    if not SHARED_FINDINGS.is_file():
        pytest.skip(f"{SHARED_FINDINGS} is not beside this clone: its copy is the contract")
    assert CONTRACT_COPY.read_text(encoding="utf-8") == SHARED_FINDINGS.read_text(
        encoding="utf-8"
    ), "shared/FINDINGS.md changed: copy it to tests/contract/FINDINGS.md and follow the change"


@pytest.mark.parametrize("code", CODES)
def test_code_is_in_the_shared_contract(code: str) -> None:
    table = _table(CONTRACT.read_text(encoding="utf-8"))
    assert code in table, f"{code} is not in shared/FINDINGS.md's table"
    stage, severity = CODE_STAGE[Code(code)]
    row = table[code]
    assert row[0] == stage.value, (code, row[0], stage.value)
    assert severity.value in row[1], (code, row[1], severity.value)


@pytest.mark.parametrize("code", CODES)
def test_code_is_documented_in_docs_findings(code: str) -> None:
    text = DOCS_FINDINGS.read_text(encoding="utf-8")
    table = _table(text)
    assert code in table, f"docs/findings.md's summary table lacks {code}"
    stage, severity = CODE_STAGE[Code(code)]
    assert table[code][:3] == [stage.value, severity.value, CODE_REFERENCE[Code(code)]]
    assert CODE_REFERENCE[Code(code)] in REFERENCES
    section = re.search(rf"^### {code}\n(?P<body>.*?)(?=^##|\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, f"docs/findings.md has no '### {code}' section"
    body = section["body"]
    assert f"`{stage.value}`" in body and f"`{CODE_REFERENCE[Code(code)]}`" in body
    for part in (
        ("- IOS", "- strongSwan", "- Fix", "- Scenarios")
        if code != "INSUFFICIENT_DATA"
        else ("- Fix", "- Scenarios")
    ):
        assert part in body, f"docs/findings.md, {code}: no '{part}' line"


@pytest.mark.parametrize("code", CODES)
def test_code_has_a_rule_that_emits_it(code: str) -> None:
    sources = {path.name: path.read_text(encoding="utf-8") for path in RULE_FILES}
    emitting = [name for name, text in sources.items() if re.search(rf"\bCode\.{code}\b", text)]
    assert emitting, f"no rule names Code.{code} (diagnose/rules/*.py, diagnose/engine.py)"


@pytest.mark.parametrize("code", CODES)
def test_code_has_a_scenario_that_expects_it(code: str) -> None:
    expecting = [
        name
        for name, data in _scenarios()
        if code in _names(data.get("expected_first")) + _names(data.get("expected_also"))
    ]
    assert expecting, f"no bundled scenario or strongSwan capture expects {code}"


def test_no_scenario_names_an_unknown_code() -> None:
    known = set(CODES)
    unknown = [
        (name, key, value)
        for name, data in _scenarios()
        for key in ("expected_first", "expected_also", "must_not")
        for value in _names(data.get(key))
        if value not in known
    ]
    assert not unknown, unknown
