"""ntc-style template tests: every ``<case>.raw`` parses to its ``<case>.yml`` (``parsed_sample``).

Layout: ``tests/templates/<platform>/<command>/<case>.raw`` + ``.yml`` for the template
``textfsm_templates/<platform>_<command>.textfsm``. Meta-tests keep index, templates and test
folders in step: every indexed template has at least two cases, every test folder a template.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ipsec_doctor.parse.textfsm_parser import parse_with_template
from ipsec_doctor.resources import data_dir

TESTS_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = data_dir("templates")


def _index_rows() -> list[tuple[str, str, str]]:
    """(template, platform, command) of every index line."""
    rows: list[tuple[str, str, str]] = []
    header_seen = False
    for line in (TEMPLATES_DIR / "index").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            assert line.replace(" ", "") == "Template,Hostname,Platform,Command"
            continue
        template, _hostname, platform, command = (part.strip() for part in line.split(",", 3))
        rows.append((template, platform, command))
    return rows


def _test_dir(template: str, platform: str) -> Path:
    command = template.removesuffix(".textfsm").removeprefix(f"{platform}_")
    return TESTS_DIR / platform / command


def _cases() -> list[tuple[Path, Path]]:
    cases: list[tuple[Path, Path]] = []
    for template, platform, _command in _index_rows():
        for raw in sorted(_test_dir(template, platform).glob("*.raw")):
            cases.append((TEMPLATES_DIR / template, raw))
    return cases


CASES = _cases()


@pytest.mark.parametrize(
    ("template", "raw"), CASES, ids=[f"{raw.parent.name}/{raw.stem}" for _, raw in CASES]
)
def test_raw_parses_to_parsed_sample(template: Path, raw: Path) -> None:
    expected: dict[str, Any] = yaml.safe_load(raw.with_suffix(".yml").read_text(encoding="utf-8"))
    rows = parse_with_template(template, raw.read_text(encoding="utf-8"))
    assert rows == expected["parsed_sample"]


def test_every_indexed_template_exists_and_has_two_cases() -> None:
    for template, platform, _command in _index_rows():
        assert (TEMPLATES_DIR / template).is_file(), template
        raws = list(_test_dir(template, platform).glob("*.raw"))
        assert len(raws) >= 2, f"{template}: needs at least 2 test cases, has {len(raws)}"


def test_every_test_folder_has_an_indexed_template() -> None:
    indexed = {_test_dir(template, platform) for template, platform, _ in _index_rows()}
    for folder in TESTS_DIR.glob("*/*"):
        if folder.is_dir() and folder.name != "__pycache__":
            assert folder in indexed, f"{folder} has no template in the index"


def test_every_raw_has_a_yml_and_back() -> None:
    for raw in TESTS_DIR.glob("*/*/*.raw"):
        assert raw.with_suffix(".yml").is_file(), raw
    for yml in TESTS_DIR.glob("*/*/*.yml"):
        assert yml.with_suffix(".raw").is_file(), yml


def test_every_template_file_is_indexed() -> None:
    indexed = {template for template, _, _ in _index_rows()}
    for path in TEMPLATES_DIR.glob("*.textfsm"):
        assert path.name in indexed, f"{path.name} is not in the index"


def test_index_commands_compile() -> None:
    for _template, _platform, command in _index_rows():
        expanded = re.sub(
            r"\[\[(.+?)\]\]", lambda m: "(" + "(".join(m.group(1)) + ")?" * len(m.group(1)), command
        )
        re.compile(expanded)


def test_index_parts_are_merged() -> None:
    """Lines a colleague keeps in ``index.<platform>.part`` must also be in the index."""
    index = {line.strip() for line in (TEMPLATES_DIR / "index").read_text().splitlines()}
    for part in TEMPLATES_DIR.glob("index.*.part"):
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert line.strip() in index, f"{part.name}: not merged: {line}"
