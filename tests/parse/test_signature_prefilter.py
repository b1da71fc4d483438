"""The joined signature expression passes over exactly the lines no signature matches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipsec_doctor.parse.logs import _any_signature, match_signature
from ipsec_doctor.platforms.loader import LogSignature, available_platforms, load_platform
from ipsec_doctor.resources import data_dir

_TESTS = Path(__file__).resolve().parents[1]


def _log_lines() -> list[str]:
    """Every line of the seed messages, the bundled scenarios and the saved lab captures."""
    files = [_TESTS / "parse" / "seed_messages.txt"]
    files += sorted(Path(data_dir("scenarios")).rglob("*.txt"))
    files += sorted((_TESTS / "captures").rglob("*.txt"))
    lines: list[str] = []
    for path in files:
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in dict.fromkeys(lines) if line.strip()]


@pytest.mark.parametrize("platform", available_platforms())
def test_the_joined_expression_agrees_with_the_signatures(platform: str) -> None:
    signatures = load_platform(platform).signatures
    joined = _any_signature(signatures)
    assert joined is not None, "the signature table can be joined"
    lines = _log_lines()
    matched = 0
    for line in lines:
        any_one = any(s.pattern.search(line) for s in signatures)
        assert (joined.search(line) is not None) == any_one, line
        matched += any_one
    assert matched > 50  # the corpus does exercise the signatures


def test_a_table_that_cannot_be_joined_is_searched_one_by_one() -> None:
    # Sample wording: "peer 10.2.2.1 said 10.2.2.1" (a back-reference keeps it apart)
    repeated = re.compile(r"peer (?P<peer>\S+) said (?P=peer)")
    table = [
        LogSignature(
            event=load_platform("cisco_ios").signatures[0].event, regex="", pattern=repeated
        )
    ]
    assert _any_signature(table) is None
    found = match_signature("peer 10.2.2.1 said 10.2.2.1", table)
    assert found is not None and found[1]["peer"] == "10.2.2.1"
    assert match_signature("peer 10.2.2.1 said 10.9.9.9", table) is None
