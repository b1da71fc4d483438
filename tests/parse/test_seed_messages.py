"""`analyze --log` classifies every message quoted in the seeds (issue 4, "Done when").

``seed_messages.txt`` holds, written out by hand, every log and debug message of
shared/seeds/000-004 with the event the Cisco IOS signature table must give it (and, where it
matters, detail values such as the mode of an IKMP_MODE_FAILURE). Routine trace lines are listed
with ``-``: they must stay unclassified. Every event a classified line gets must also point
somewhere in the event -> code table (``platforms/event_codes.yaml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipsec_doctor.diagnose.messages import interpret, load_event_codes
from ipsec_doctor.model.events import Event
from ipsec_doctor.parse.logs import classify_log_text

FIXTURE = Path(__file__).with_name("seed_messages.txt")

# Sample fixture line: "phase1_mode_failure{mode=Quick; peer=10.15.58.10} | 00:27:10: %CRYPTO-..."
_LINE = re.compile(r"^(?P<event>-|[a-z0-9_]+)(?:\{(?P<detail>[^}]*)\})?\s+\|\s(?P<message>.+)$")


@dataclass(frozen=True)
class Expected:
    line_no: int
    event: str  # "" = must stay unclassified
    detail: dict[str, str]
    message: str


def load_fixture() -> list[Expected]:
    found: list[Expected] = []
    for number, raw in enumerate(FIXTURE.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        match = _LINE.match(raw)
        assert match, f"seed_messages.txt:{number}: not 'EVENT | MESSAGE': {raw!r}"
        detail: dict[str, str] = {}
        for item in (match["detail"] or "").split(";"):
            if item.strip():
                key, _, value = item.partition("=")
                detail[key.strip()] = value.strip()
        event = "" if match["event"] == "-" else match["event"]
        found.append(Expected(number, event, detail, match["message"]))
    return found


CASES = load_fixture()


def test_the_fixture_covers_the_seeds() -> None:
    classified = [c for c in CASES if c.event]
    assert len(classified) >= 150
    assert len({c.event for c in classified}) >= 35
    for case in classified:
        assert case.event in {e.value for e in Event}, f"line {case.line_no}: {case.event}"


@pytest.mark.parametrize("case", CASES, ids=[f"L{c.line_no}" for c in CASES])
def test_seed_message_is_classified(case: Expected) -> None:
    events, unclassified = classify_log_text("cisco_ios", case.message)
    if not case.event:
        assert not events, (case.message, [e.event for e in events])
        assert [u.line for u in unclassified] == [case.message.rstrip()]
        return
    assert [e.event for e in events] == [case.event], case.message
    event = events[0]
    for key, value in case.detail.items():
        if key == "peer":
            assert str(event.peer) == value, (case.message, event.peer)
        else:
            assert event.detail.get(key, "").lower() == value.lower(), (case.message, event.detail)
    (reading,) = interpret(events)
    assert reading.entry is not None, f"{case.event} has no entry in event_codes.yaml"


def test_a_whole_seed_dump_keeps_its_line_numbers() -> None:
    """The fixture's messages pasted as one dump: one event per classified line, in order."""
    text = "\n".join(c.message for c in CASES)
    events, unclassified = classify_log_text("cisco_ios", text)
    assert [e.event for e in events] == [c.event for c in CASES if c.event]
    assert len(events) + len(unclassified) == len(CASES)
    numbers = [e.source.line_no for e in events if e.source is not None]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_every_event_has_an_entry_in_the_event_code_table() -> None:
    table = load_event_codes()
    missing = sorted(e.value for e in Event if e.value not in table.entries)
    assert not missing, f"platforms/event_codes.yaml lacks {missing}"
