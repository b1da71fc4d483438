"""SA_FLAPPING across runs: a replacement well before the lifetime, or up and down repeatedly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any

from ipsec_doctor.audit.flapping import cross_run_flap, extend_history, sa_facts, transitions
from ipsec_doctor.audit.model import TunnelStatus
from ipsec_doctor.model.state import (
    CryptoMapEntry,
    DeviceState,
    Evidence,
    IkePolicy,
    IkeSa,
    IkeStatus,
    IpsecSa,
)

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PEER = "10.2.2.1"


def facts(
    at: datetime, ike: list[str], ipsec: list[str], ike_life: int = 86400, ipsec_life: int = 3600
) -> dict[str, Any]:
    return {
        "observed_at": at.isoformat(),
        "ike": ike,
        "ipsec": ipsec,
        "ike_lifetime": ike_life,
        "ipsec_lifetime": ipsec_life,
    }


def flap(previous: dict[str, Any] | None, now: dict[str, Any], history: str = "") -> Any:
    return cross_run_flap(
        device="R1", peer=PEER, platform="cisco_ios", previous=previous, now=now, history=history
    )


def test_ike_sa_replaced_an_hour_later_is_a_flap() -> None:
    found = flap(
        facts(T0, ["conn:1001"], ["0xA"]), facts(T0 + timedelta(hours=1), ["conn:1002"], ["0xA"])
    )
    assert found is not None and found.code.value == "SA_FLAPPING"
    assert found.severity.value == "warning" and found.stage.value == "ike"
    assert found.detail["across_runs"] and "ike_replaced" in found.detail
    assert "well before their lifetime of 24.0 h" in found.summary
    assert found.fix  # the platform's fix text


def test_a_rekey_after_the_lifetime_is_not_a_flap() -> None:
    nightly = T0 + timedelta(days=1)
    assert flap(facts(T0, ["conn:1001"], ["0xA"]), facts(nightly, ["conn:1002"], ["0xB"])) is None
    # IPsec SAs live an hour: new SPIs a day later are normal rekeys
    assert flap(facts(T0, ["conn:1"], ["0xA"]), facts(nightly, ["conn:1"], ["0xB"])) is None


def test_ipsec_spis_replaced_within_their_lifetime_flap() -> None:
    found = flap(
        facts(T0, ["conn:1"], ["0xA", "0xB"]),
        facts(T0 + timedelta(minutes=10), ["conn:1"], ["0xC", "0xD"]),
    )
    assert found is not None and "ipsec_replaced" in found.detail
    assert "ike_replaced" not in found.detail


def test_nothing_to_compare_is_no_flap() -> None:
    assert flap(None, facts(T0, ["conn:1"], ["0xA"])) is None
    assert flap(facts(T0, [], []), facts(T0 + timedelta(minutes=5), ["conn:1"], ["0xA"])) is None
    same = facts(T0, ["conn:1"], ["0xA"])
    assert flap(same, facts(T0 + timedelta(minutes=5), ["conn:1"], ["0xA"])) is None


def test_up_and_down_repeatedly_is_a_flap() -> None:
    assert transitions("HHDHDU") == 3
    assert transitions("HUUDG") == 2  # unknown runs count neither way
    found = flap(None, facts(T0, [], []), history="HDHDH")
    assert found is not None and found.detail["transitions"] == 4
    assert flap(None, facts(T0, [], []), history="HHHDDD") is None


def test_history_keeps_observed_runs_only() -> None:
    assert extend_history("HD", TunnelStatus.UNREACHABLE) == "HD"
    assert extend_history("HD", TunnelStatus.HEALTHY) == "HDH"
    assert extend_history("H" * 20, TunnelStatus.DOWN, 20) == "H" * 19 + "D"


def test_sa_facts_from_a_state() -> None:
    source = Evidence("show crypto isakmp sa", "10.2.2.1 10.1.1.1 QM_IDLE 1001 ACTIVE", 3)
    state = DeviceState(
        name="R1",
        platform="cisco_ios",
        ike_sas=(
            IkeSa(
                ip_address(PEER),
                ip_address("10.1.1.1"),
                "QM_IDLE",
                IkeStatus.ESTABLISHED,
                conn_id=1001,
                source=source,
            ),
            IkeSa(ip_address(PEER), None, "MM_NO_STATE", IkeStatus.NO_STATE, conn_id=1002),
        ),
        ipsec_sas=(
            IpsecSa(
                ip_address(PEER),
                None,
                "Gi0/0",
                "VPNMAP",
                None,
                None,
                1,
                1,
                inbound_spis=("0xA",),
                outbound_spis=("0xB",),
            ),
        ),
        ike_policies=(IkePolicy(10, "aes-256", "sha256", "pre-share", 14, 28800),),
        crypto_maps=(
            CryptoMapEntry("VPNMAP", 10, (ip_address(PEER),), "ACL", lifetime_seconds=1800),
        ),
    )
    found = sa_facts(state, PEER, T0)
    assert found["ike"] == ["conn:1001"]  # established SAs only
    assert found["ipsec"] == ["0xA", "0xB"]
    assert found["ike_lifetime"] == 28800 and found["ipsec_lifetime"] == 1800
    later = dict(found, ike=["conn:1003"], observed_at=(T0 + timedelta(hours=2)).isoformat())
    flapped = cross_run_flap(
        device="R1",
        peer=PEER,
        platform="cisco_ios",
        previous=found,
        now=later,
        history="",
        state=state,
    )
    assert flapped is not None
    assert flapped.evidence[0].line == source.line and flapped.evidence[0].device == "R1"
