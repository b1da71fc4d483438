"""The text a signature needs passes over exactly the log lines the signature cannot match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipsec_doctor.parse.logs import match_signature, required_literal
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


def _brute_force(line: str, table: list[LogSignature]) -> tuple[LogSignature, str] | None:
    for signature in table:
        match = signature.pattern.search(line)
        if match:
            return signature, match.group(0)
    return None


@pytest.mark.parametrize("platform", available_platforms())
def test_the_shortcut_finds_what_every_signature_finds(platform: str) -> None:
    table = list(load_platform(platform).signatures)
    matched = 0
    for line in _log_lines():
        expected = _brute_force(line, table)
        found = match_signature(line, table)
        got = (found[0], found[1].group(0)) if found else None
        assert got == expected, line
        matched += expected is not None
    assert matched > 50  # the corpus does exercise the signatures


@pytest.mark.parametrize("platform", available_platforms())
def test_every_match_holds_its_signatures_required_text(platform: str) -> None:
    table = load_platform(platform).signatures
    with_text = 0
    for signature in table:
        literal = required_literal(signature.pattern.pattern)
        with_text += bool(literal)
        folded = bool(signature.pattern.flags & re.IGNORECASE)
        for line in _log_lines():
            if signature.pattern.search(line):
                haystack, needle = (line.lower(), literal.lower()) if folded else (line, literal)
                assert needle in haystack, (signature.pattern.pattern, line)
    assert with_text >= len(table) * 3 // 4  # most signatures do have a shortcut


@pytest.mark.parametrize(
    ("expression", "literal"),
    [
        (r"%CRYPTO-4-RECVD_PKT_INV_SPI.*?(?P<peer>\d+)", "%CRYPTO-4-RECVD_PKT_INV_SPI"),
        (r"ISAKMP:\s*\(\d+\):\s*SA not acceptable", "SA not acceptable"),
        (r"colou?r", "colo"),  # the optional u and what follows it are not required
        (r"abc\.def+x", "abc.def"),
        (r"no (?:proposal|offer) chosen", " chosen"),  # a group's text is not required
        (r"sa_up|sa_down", ""),  # alternatives at the top: nothing is required
        (r"[A-Z]+ peer", " peer"),
        (r"x{2}yy", "yy"),
    ],
)
def test_required_literal(expression: str, literal: str) -> None:
    assert required_literal(expression) == literal
    # whatever the expression matches holds the text
    sample = {
        r"colou?r": "color",
        r"abc\.def+x": "abc.deffx",
        r"x{2}yy": "xxyy",
    }.get(expression)
    if sample is not None:
        assert re.search(expression, sample) and literal in sample
