"""The event -> finding code table (platforms/event_codes.yaml) and how lines are read with it."""

from __future__ import annotations

from typing import Any

import pytest

from ipsec_doctor.diagnose.messages import interpret, load_event_codes, parse_event_codes
from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.findings import Code
from ipsec_doctor.model.state import Evidence, LogEvent


def event(name: str, line_no: int, command: str = "debug.txt", **detail: str) -> LogEvent:
    return LogEvent(
        event=name,
        peer=None,
        timestamp=None,
        message=f"line {line_no}",
        source=Evidence(command=command, line=f"line {line_no}", line_no=line_no, device="R1"),
        detail=dict(detail),
    )


def codes(name: str, *neighbours: LogEvent, **detail: str) -> list[str]:
    target = event(name, 20, **detail)
    (reading,) = [r for r in interpret([*neighbours, target]) if r.event is target]
    return [c.value for c in reading.codes]


def test_every_event_and_code_of_the_table_is_known() -> None:
    table = load_event_codes()
    assert set(table.entries) == {e.value for e in Event}
    for entries in table.entries.values():
        assert not entries[-1].when  # the default comes last
        for entry in entries:
            assert all(isinstance(c, Code) for c in entry.codes)
            assert entry.means
            if len(entry.codes) > 1:
                assert entry.ambiguous


def test_findings_md_ambiguities() -> None:
    # MM_NO_STATE follows a rejected proposal as well as silence
    assert codes("phase1_retransmit", state="MM_NO_STATE") == [
        "PHASE1_NO_RESPONSE",
        "PHASE1_PROPOSAL_MISMATCH",
    ]
    # IKMP_MODE_FAILURE follows proposal and authentication failures
    assert codes("phase1_mode_failure", mode="Main") == ["PHASE1_PROPOSAL_MISMATCH", "PSK_MISMATCH"]
    # ... and the lines around it decide
    assert codes("phase1_mode_failure", event("phase1_proposal_rejected", 18), mode="Main") == [
        "PHASE1_PROPOSAL_MISMATCH"
    ]
    assert codes("phase1_mode_failure", event("auth_failed", 19)) == ["PSK_MISMATCH"]
    assert codes("phase1_mode_failure", event("phase1_proposal_accepted", 5)) == ["PSK_MISMATCH"]
    # quick mode is phase 2
    assert codes("phase1_mode_failure", event("phase2_proxy_rejected", 17), mode="Quick") == [
        "PROXY_ID_MISMATCH"
    ]


def test_detail_selects_the_entry() -> None:
    assert codes("phase2_policy_invalidated", error="32") == ["PROXY_ID_MISMATCH"]
    assert codes("phase2_policy_invalidated", error="256") == ["TRANSFORM_SET_MISMATCH"]
    assert codes("phase2_policy_invalidated") == ["PROXY_ID_MISMATCH", "TRANSFORM_SET_MISMATCH"]
    assert codes("phase1_retransmit", state="MM_KEY_EXCH")[0] == "PSK_MISMATCH"
    assert codes("tunnel_up") == []


def test_neighbours_must_be_near_and_in_the_same_log() -> None:
    far = event("phase1_proposal_rejected", 20 + 16)
    other_log = event("phase1_proposal_rejected", 19, command="show logging")
    assert len(codes("phase1_mode_failure", far)) == 2
    assert len(codes("phase1_mode_failure", other_log)) == 2
    target = event("phase1_mode_failure", 20)
    nearer, farther = event("auth_failed", 19), event("phase1_proposal_rejected", 10)
    readings = interpret([farther, nearer, target])
    # the first clause that matches wins (proposal before keys), naming its nearest line
    assert [c.value for c in readings[-1].codes] == ["PHASE1_PROPOSAL_MISMATCH"]
    assert readings[-1].decided_by is farther
    assert "Ambiguous" not in readings[-1].note
    assert "Ambiguous:" in interpret([event("phase1_mode_failure", 1)])[0].note


def test_an_event_missing_from_the_table_reads_as_nothing() -> None:
    table = parse_event_codes({"events": {"isakmp_off": [{"codes": [], "means": "x"}]}})
    (reading,) = interpret([event("auth_failed", 1)], table)
    assert reading.entry is None and reading.codes == () and "no entry" in reading.note


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "top level"),
        ({"events": {"nope": [{"codes": [], "means": "x"}]}}, "unknown event"),
        ({"events": {"isakmp_off": [{"codes": ["NOPE"], "means": "x"}]}}, "unknown finding code"),
        ({"events": {"isakmp_off": [{"codes": [], "means": ""}]}}, "means"),
        (
            {"events": {"isakmp_off": [{"codes": ["PSK_MISSING", "PSK_MISMATCH"], "means": "x"}]}},
            "ambiguous",
        ),
        ({"events": {"isakmp_off": [{"codes": [], "means": "x", "when": {"a": "b"}}]}}, "last"),
        ({"events": {"isakmp_off": [{"codes": [], "means": "x", "typo": 1}]}}, "unknown key"),
        (
            {"events": {"isakmp_off": [{"codes": [], "means": "x", "near": [{"events": ["z"]}]}]}},
            "unknown event",
        ),
        ({"window": -1, "events": {}}, "window"),
    ],
)
def test_a_broken_table_is_a_config_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_event_codes(data)
