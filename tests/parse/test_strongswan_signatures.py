"""The strongSwan log signature table: every sample maps to its event; IKE vs CHILD context.

The table is ipsec_doctor/platforms/strongswan_signatures.yaml; the context (which phase a line
belongs to) is ipsec_doctor/parse/strongswan_logs.py, proven on the real lab logs in
tests/captures/strongswan/.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.events import Event
from ipsec_doctor.model.state import LogEvent
from ipsec_doctor.parse.logs import match_signature
from ipsec_doctor.parse.strongswan_logs import IGNORE, WHEN_CONNECTING, WHEN_ESTABLISHED
from ipsec_doctor.parse.strongswan_logs import charon_events as _charon_events
from ipsec_doctor.platforms.loader import LogSignature, Platform, load_platform
from ipsec_doctor.resources import data_dir

TABLE = data_dir("platforms") / "strongswan_signatures.yaml"
CAPTURES = Path(__file__).resolve().parents[1] / "captures" / "strongswan"
LOG = "tail_-n_1000_%2Fvar%2Flog%2Fcharon.log.txt"
CLOCK = datetime(2026, 11, 23, 8, 0, 0)


def _samples() -> list[tuple[str, str, int, bool]]:
    """(sample line, event, index, hypothetical) for each '# sample' comment above an entry."""
    samples: list[tuple[str, str, int, bool]] = []
    pending: list[str] = []
    index = -1
    entries = yaml.safe_load(TABLE.read_text(encoding="utf-8"))["signatures"]
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if line.startswith("  # ") and "---" not in stripped:
            pending.append(stripped[2:])
        elif stripped.startswith("- event:"):
            index += 1
            for sample in pending:
                hypothetical = "(hypothetical" in sample
                text = re.sub(r"\s{2,}\(.*\)\s*$", "", sample)
                samples.append((text.strip(), entries[index]["event"], index, hypothetical))
            pending = []
        elif stripped and not stripped.startswith("#"):
            pending = []
    return samples


SAMPLES = _samples()


def platform() -> Platform:
    return load_platform("strongswan")


def charon_events(text: str) -> tuple[LogEvent, ...]:
    events, _ = _charon_events(platform(), text, reference=CLOCK)
    return events


def log_of(scenario: str, gateway: str) -> str:
    return (CAPTURES / scenario / gateway / LOG).read_text(encoding="utf-8")


def test_every_signature_has_a_sample() -> None:
    sampled = {index for _line, _event, index, _h in SAMPLES}
    missing = [s.regex for i, s in enumerate(platform().signatures) if i not in sampled]
    assert not missing, missing


@pytest.mark.parametrize(
    ("line", "event", "index", "hypothetical"), SAMPLES, ids=[s[0][16:76] for s in SAMPLES]
)
def test_sample_line_maps_to_its_event(
    line: str, event: str, index: int, hypothetical: bool
) -> None:
    found = match_signature(line, platform().signatures)
    assert found is not None, line
    assert found[0].event.value == event
    assert found[0] is platform().signatures[index], "an earlier signature takes this line"


def _real_lines() -> set[str]:
    return {
        line.strip()
        for path in CAPTURES.glob(f"*/*/{LOG}")
        for line in path.read_text(encoding="utf-8").splitlines()
    }


def test_samples_not_marked_hypothetical_are_real_lab_lines() -> None:
    real = _real_lines()
    invented = [line for line, _e, _i, hypothetical in SAMPLES if not hypothetical]
    assert [line for line in invented if line not in real] == []


def test_context_overrides_name_events() -> None:
    known = {e.value for e in Event} | {IGNORE}
    for signature in platform().signatures:
        for key in (WHEN_ESTABLISHED, WHEN_CONNECTING):
            assert signature.detail.get(key, IGNORE) in known, signature.regex


def test_a_typo_in_an_override_is_an_error() -> None:
    broken = platform().signatures[0]
    typo = LogSignature(
        event=broken.event,
        regex=broken.regex,
        pattern=broken.pattern,
        detail={WHEN_ESTABLISHED: "phase2_proposal_rejectd"},
    )
    bad = Platform(**{**platform().__dict__, "signatures": (typo,)})
    with pytest.raises(ConfigError, match="phase2_proposal_rejectd"):
        _charon_events(bad, "Nov 23 07:14:15 06[IKE] <a|1> SIGTERM received, shutting down")


# ------------------------------------------------------------------ IKE vs CHILD context


def _events(scenario: str, gateway: str, wording: str) -> list[LogEvent]:
    return [e for e in charon_events(log_of(scenario, gateway)) if wording in e.message]


def test_ikev1_no_proposal_chosen_is_phase1_while_connecting() -> None:
    found = _events("ike-proposal-mismatch", "gw1", "received NO_PROPOSAL_CHOSEN error notify")
    assert [e.event for e in found] == [Event.PHASE1_PROPOSAL_REJECTED.value]
    assert found[0].detail["connection"] == "s2s-ikev1"


def test_ikev1_no_proposal_chosen_is_phase2_once_established() -> None:
    found = _events("esp-proposal-mismatch", "gw1", "received NO_PROPOSAL_CHOSEN error notify")
    assert [e.event for e in found] == [Event.PHASE2_PROPOSAL_REJECTED.value]


def test_no_acceptable_algorithm_by_phase() -> None:
    ike = _events("ike-proposal-mismatch", "gw2", "no acceptable ENCRYPTION_ALGORITHM found")
    child = _events("esp-proposal-mismatch", "gw2", "no acceptable ENCRYPTION_ALGORITHM found")
    assert {e.event for e in ike} == {Event.PHASE1_PROPOSAL_REJECTED.value}
    assert {e.event for e in child} == {Event.PHASE2_TRANSFORM_REJECTED.value}
    assert all(e.detail["attribute"] == "encryption" for e in ike + child)
    assert {e.detail.get("connection") for e in child} == {"s2s-ikev1", "s2s-ikev2"}


def test_ikev2_notifies_are_told_apart_by_their_wording() -> None:
    ike = _events("ike-proposal-mismatch", "gw1", "NO_PROPOSAL_CHOSEN notify error")
    child = _events("esp-proposal-mismatch", "gw1", "NO_PROPOSAL_CHOSEN notify, no CHILD_SA")
    assert [e.event for e in ike] == [Event.PHASE1_PROPOSAL_REJECTED.value]
    assert [e.event for e in child] == [Event.PHASE2_PROPOSAL_REJECTED.value]


def test_unnamed_responder_sa_gets_its_peer() -> None:
    """gw2 never chose a config for the IKEv1 SA `<2>` (its keys did not decrypt): no
    connection name, but the peer it talks to."""
    found = _events("psk-mismatch", "gw2", "invalid ID_V1 payload length")
    assert found and {e.event for e in found} == {Event.AUTH_FAILED.value}
    assert {e.detail.get("connection") for e in found} == {None}
    assert {str(e.peer) for e in found} == {"198.51.100.1"}


def test_unnamed_responder_sa_learns_its_connection_later() -> None:
    """`<1>` until the config is chosen, then `<s2s-ikev1|1>`: one IKE_SA, one name."""
    text = "\n".join(
        [
            "Nov 23 07:14:25 08[IKE] <1> 198.51.100.1 is initiating a Main Mode IKE_SA",
            "Nov 23 07:14:25 08[CFG] <1>   no acceptable DIFFIE_HELLMAN_GROUP found",
            'Nov 23 07:14:25 13[CFG] <1> selected peer config "s2s-ikev1"',
        ]
    )
    (event,) = charon_events(text)
    assert event.event == Event.PHASE1_PROPOSAL_REJECTED.value
    assert event.detail == {"attribute": "group", "connection": "s2s-ikev1", "ike_sa": "1"}
    assert str(event.peer) == "198.51.100.1"


def test_psk_mismatch_both_versions_are_auth_failures() -> None:
    events = charon_events(log_of("psk-mismatch", "gw1"))
    auth = [e for e in events if e.event == Event.AUTH_FAILED.value]
    assert {e.detail["connection"] for e in auth} == {"s2s-ikev1", "s2s-ikev2"}


def test_dpd_retransmissions_are_not_phase1_silence() -> None:
    events = charon_events(log_of("dpd-teardown", "gw1"))
    names = [e.event for e in events]
    assert Event.PHASE1_RETRANSMIT.value not in names
    assert Event.PHASE1_NO_RESPONSE.value not in names
    teardowns = [e for e in events if e.event == Event.DPD_TEARDOWN.value]
    assert sorted(e.detail["connection"] for e in teardowns) == ["s2s-ikev1", "s2s-ikev2"]
    assert any("giving up after 3 retransmits" in e.message for e in teardowns)
    assert any("DPD check timed out" in e.message for e in teardowns)


def test_retransmissions_carry_the_port_and_what_was_answered() -> None:
    blocked_4500 = [
        e
        for e in charon_events(log_of("udp4500-blocked", "gw1"))
        if e.event in (Event.PHASE1_RETRANSMIT.value, Event.PHASE1_NO_RESPONSE.value)
    ]
    assert blocked_4500
    assert {e.detail["port"] for e in blocked_4500} == {"4500"}
    assert {e.detail["answered_ports"] for e in blocked_4500} == {"500"}
    blocked_500 = [
        e
        for e in charon_events(log_of("udp500-blocked", "gw1"))
        if e.event == Event.PHASE1_RETRANSMIT.value
    ]
    assert {e.detail["port"] for e in blocked_500} == {"500"}
    assert all("answered_ports" not in e.detail for e in blocked_500)


def test_events_get_the_peer_of_their_ike_sa() -> None:
    wrong = charon_events(log_of("wrong-peer-address", "gw1"))
    retransmits = [e for e in wrong if e.event == Event.PHASE1_RETRANSMIT.value]
    assert retransmits and {str(e.peer) for e in retransmits} == {"198.51.100.130"}


def test_daemon_stop_is_logged_as_ike_off() -> None:
    events = charon_events(log_of("peer-down", "gw2"))
    assert events[-1].event == Event.ISAKMP_OFF.value


def test_ike_sa_ids_restart_with_the_daemon() -> None:
    text = "\n".join(
        [
            "Nov 23 07:00:00 09[IKE] <s2s-ikev2|1> IKE_SA s2s-ikev2[1] state change: "
            "CONNECTING => ESTABLISHED",
            "Nov 23 07:00:01 00[DMN] SIGTERM received, shutting down",
            "Nov 23 07:00:05 07[IKE] <s2s-ikev1|1> received NO_PROPOSAL_CHOSEN error notify",
        ]
    )
    events = charon_events(text)
    assert events[-1].event == Event.PHASE1_PROPOSAL_REJECTED.value  # a new SA #1, connecting
    assert events[-1].detail["connection"] == "s2s-ikev1"


def test_timestamps_take_the_year_of_the_device_clock() -> None:
    events = charon_events(log_of("psk-mismatch", "gw1"))
    assert events[0].timestamp is not None and events[0].timestamp.year == 2026
