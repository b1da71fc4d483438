"""What ipsec-doctor must say about each scenario of the strongSwan lab (shared/lab/strongswan).

One table for the saved captures (tests/e2e/test_strongswan_captures.py, runs everywhere) and
the live lab (tests/lab/test_live_lab.py, root + network namespaces): the same assertions on
the same :class:`~ipsec_doctor.model.report.Report`, whether it came from ``analyze`` over a
capture folder or from ``ipsec-doctor check --format json`` over SSH.

Every scenario starts both tunnels of the lab from gw1: ``s2s-ikev2`` (IKEv2, FQDN identities,
the lower /26s) and ``s2s-ikev1`` (IKEv1 main mode, address identities, the upper /26s), both to
the same peer address. Where a scenario breaks both, the first finding must quote both: its
``detail["connections"]`` lists ``s2s-ikev1`` and ``s2s-ikev2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipsec_doctor.model.findings import Finding
from ipsec_doctor.model.report import Report

PEER = "198.51.100.129"  # gw2's IKE address, checked from gw1
WRONG_PEER = "198.51.100.130"  # gw1's typo in wrong-peer-address
CONNECTIONS = ("s2s-ikev1", "s2s-ikev2")


@dataclass(frozen=True)
class Expect:
    """The first finding of one scenario, and what it must (not) carry."""

    first: tuple[str, ...]  # acceptable first codes, the likelier first
    must_not: tuple[str, ...] = ()
    both_connections: bool = False  # detail["connections"] names the IKEv1 and IKEv2 connection
    mentions: tuple[str, ...] = ()  # text the first finding's summary or detail must contain
    evidence: tuple[str, ...] = ()  # regexes that some evidence line must match (each)
    device: str = ""  # the device the first finding is about ("" = any)


_PHASE1 = ("PHASE1_PROPOSAL_MISMATCH", "PSK_MISMATCH", "PHASE1_NO_RESPONSE")

#: scenario -> expectation when both gateways are read (``check`` with both in the inventory)
EXPECTED: dict[str, Expect] = {
    "healthy": Expect(
        ("TUNNEL_HEALTHY",),
        must_not=(
            *_PHASE1,
            "TRANSFORM_SET_MISMATCH",
            "PROXY_ID_MISMATCH",
            "ONE_WAY_TRAFFIC",
            "NO_TRAFFIC_ENCRYPTED",
            "ISAKMP_DISABLED",
            "DPD_TOO_AGGRESSIVE",
        ),
        evidence=(r"^\s*out [0-9a-f]{8},", r"^\s*in\s+[0-9a-f]{8},"),
    ),
    "psk-mismatch": Expect(
        ("PSK_MISMATCH",),
        must_not=(
            "PHASE1_PROPOSAL_MISMATCH",
            "PHASE1_NO_RESPONSE",
            "TRANSFORM_SET_MISMATCH",
            "PROXY_ID_MISMATCH",
            "TUNNEL_HEALTHY",
        ),
        both_connections=True,
        evidence=(
            r"received AUTHENTICATION_FAILED notify error",
            r"invalid HASH_V1 payload length, decryption failed",
        ),
    ),
    "ike-proposal-mismatch": Expect(
        ("PHASE1_PROPOSAL_MISMATCH",),
        must_not=("PSK_MISMATCH", "TRANSFORM_SET_MISMATCH", "PROXY_ID_MISMATCH", "TUNNEL_HEALTHY"),
        both_connections=True,
        evidence=(r"received NO_PROPOSAL_CHOSEN (?:notify error|error notify)",),
    ),
    "esp-proposal-mismatch": Expect(
        ("TRANSFORM_SET_MISMATCH",),
        must_not=(*_PHASE1, "PROXY_ID_MISMATCH", "TUNNEL_HEALTHY"),
        both_connections=True,
    ),
    "ts-mismatch": Expect(
        ("PROXY_ID_MISMATCH",),
        must_not=(*_PHASE1, "TRANSFORM_SET_MISMATCH", "TUNNEL_HEALTHY"),
        both_connections=True,
        evidence=(r"TS_UNACCEPTABLE|traffic selectors .* unacceptable",),
    ),
    "no-route-to-peer": Expect(
        ("NO_ROUTE_TO_PEER",),
        must_not=("PSK_MISMATCH", "PHASE1_PROPOSAL_MISMATCH", "ISAKMP_DISABLED", "TUNNEL_HEALTHY"),
        evidence=(r"Network is unreachable",),
        device="gw1",
    ),
    "peer-down": Expect(
        ("ISAKMP_DISABLED",),
        must_not=("PSK_MISMATCH", "PHASE1_PROPOSAL_MISMATCH", "NO_ROUTE_TO_PEER", "TUNNEL_HEALTHY"),
        evidence=(r"charon\.vici' failed: Connection refused",),
        device="gw2",
    ),
    "udp500-blocked": Expect(
        ("PHASE1_NO_RESPONSE",),
        must_not=("NO_ROUTE_TO_PEER", "ISAKMP_DISABLED", "PSK_MISMATCH", "TUNNEL_HEALTHY"),
        both_connections=True,
        evidence=(r"retransmit \d+ of request",),
    ),
    "udp4500-blocked": Expect(
        ("PHASE1_NO_RESPONSE",),
        must_not=("NO_ROUTE_TO_PEER", "ISAKMP_DISABLED", "PSK_MISMATCH", "TUNNEL_HEALTHY"),
        both_connections=True,
        mentions=("UDP 4500",),
        evidence=(r"retransmit \d+ of request (?:with )?message ID",),
    ),
    "wrong-peer-address": Expect(
        ("PEER_ADDRESS_MISMATCH", "PHASE1_NO_RESPONSE"),
        must_not=("NO_ROUTE_TO_PEER", "PSK_MISMATCH", "ISAKMP_DISABLED", "TUNNEL_HEALTHY"),
        mentions=(WRONG_PEER,),
        device="gw1",
    ),
    "dpd-teardown": Expect(
        ("DPD_TOO_AGGRESSIVE",),
        must_not=(
            "PSK_MISMATCH",
            "PHASE1_PROPOSAL_MISMATCH",
            "PHASE1_NO_RESPONSE",
            "TUNNEL_HEALTHY",
        ),
        both_connections=True,
        evidence=(r"DPD check timed out", r"giving up after \d+ retransmits"),
    ),
}

#: where reading gw1 alone (no gw2 in the inventory) says something else
EXPECTED_GW1_ALONE: dict[str, Expect] = {
    "peer-down": Expect(
        ("PHASE1_NO_RESPONSE",),
        must_not=("PSK_MISMATCH", "PHASE1_PROPOSAL_MISMATCH", "NO_ROUTE_TO_PEER", "TUNNEL_HEALTHY"),
        both_connections=True,
        device="gw1",
    ),
}

SCENARIOS = tuple(EXPECTED)


def _text(finding: Finding) -> str:
    return f"{finding.summary} {finding.detail!r}"


def check_report(scenario: str, report: Report, *, gw1_alone: bool = False) -> None:
    """Assert the report names the scenario's cause (see the module docstring)."""
    expect = (EXPECTED_GW1_ALONE.get(scenario) if gw1_alone else None) or EXPECTED[scenario]
    codes = [f.code.value for f in report.findings]
    assert codes, f"{scenario}: no findings at all"
    first = report.findings[0]
    assert first.code.value in expect.first, (
        f"{scenario}: first finding {first.code.value} ({first.summary}); expected one of "
        f"{expect.first}; all: {codes}"
    )
    wrong = [c for c in codes if c in expect.must_not]
    assert not wrong, f"{scenario}: {wrong} must not be reported; all: {codes}"
    if expect.device:
        assert first.device == expect.device, f"{scenario}: {first.device}: {first.summary}"
    if expect.both_connections:
        named = first.detail.get("connections", [])
        assert set(CONNECTIONS) <= set(named), (
            f"{scenario}: the first finding covers {named}, not both the IKEv1 and the IKEv2 "
            f"connection; evidence: {[e.line for e in first.evidence]}"
        )
    for text in expect.mentions:
        assert text in _text(first), f"{scenario}: {text!r} not in {first.summary!r}"
    lines = [e.line for e in first.evidence]
    for pattern in expect.evidence:
        assert any(re.search(pattern, line) for line in lines), (
            f"{scenario}: no evidence line matches {pattern!r}: {lines}"
        )
    assert first.summary.startswith(first.device), first.summary
    assert first.reference, f"{scenario}: no strategy step on {first.code.value}"
    if first.code.value != "TUNNEL_HEALTHY":
        assert first.evidence, f"{scenario}: {first.code.value} quotes no evidence"
        assert first.fix, f"{scenario}: {first.code.value} has no fix"
