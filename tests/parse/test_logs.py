"""Log signatures and the log parser: every sample line in the table maps to its event."""

from __future__ import annotations

import re
from datetime import datetime
from ipaddress import ip_address

import pytest
import yaml

from ipsec_doctor.parse.logs import (
    classify_log_text,
    match_signature,
    parse_log_line,
    split_log_lines,
)
from ipsec_doctor.platforms.loader import load_platform
from ipsec_doctor.resources import data_dir

D = datetime
TABLE = data_dir("platforms") / "cisco_ios_signatures.yaml"


def _samples() -> list[tuple[str, str, int]]:
    """(sample line, event, index) for every '# sample' comment directly above an entry."""
    samples: list[tuple[str, str, int]] = []
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
                # "(wrapped ...)" / "(hypothetical ...)" notes after a sample are comments
                text = re.sub(r"\s{2,}\(.*\)\s*$", "", sample)
                for part in text.split("   /   "):
                    samples.append((part.strip(), entries[index]["event"], index))
            pending = []
        elif stripped and not stripped.startswith("#"):
            pending = []
    return samples


SAMPLES = _samples()


def test_every_signature_has_a_sample() -> None:
    platform = load_platform("cisco_ios")
    sampled = {index for _line, _event, index in SAMPLES}
    missing = [s.regex for i, s in enumerate(platform.signatures) if i not in sampled]
    assert not missing, missing


@pytest.mark.parametrize(("line", "event", "index"), SAMPLES, ids=[s[0][:60] for s in SAMPLES])
def test_sample_line_maps_to_its_event(line: str, event: str, index: int) -> None:
    found = match_signature(line, load_platform("cisco_ios").signatures)
    assert found is not None, line
    assert found[0].event.value == event


SEED_LINES = {
    "%CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF": "isakmp_off",
    "ISAKMP:(0): atts are not acceptable. Next payload is 0": "phase1_proposal_rejected",
    "ISAKMP:(0): no offers accepted!": "phase1_proposal_rejected",
    "ISAKMP:(0): phase 1 SA policy not acceptable! (local 10.1.1.1 remote 10.2.2.1)": (
        "phase1_proposal_rejected"
    ),
    "ISAKMP (0:3): Hash algorithm offered does not match policy!": "phase1_proposal_rejected",
    "ISAKMP (0:3): Encryption algorithm offered does not match policy!": (
        "phase1_proposal_rejected"
    ),
    "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at 10.2.2.1": (
        "phase1_mode_failure"
    ),
    "ISAKMP:(0): No pre-shared key with 101.1.1.100!": "psk_missing",
    "Preshared authentication offered but does not match policy!": "psk_missing",
    "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 155.0.0.1 failed its sanity check": (
        "auth_failed"
    ),
    "ISAKMP: reserved no zero on payload 5!": "auth_failed",
    "ISAKMP: reserved not zero on NOTIFY payload!": "auth_failed",
    "ISAKMP:(0): retransmitting phase 1 MM_NO_STATE...": "phase1_retransmit",
    "ISAKMP: No cert, and no keys (public or pre-shared) with remote peer 150.150.150.2": (
        "peer_address_mismatch"
    ),
    "IPSEC(validate_proposal_request): transform proposal not supported for identity:": (
        "phase2_transform_rejected"
    ),
    "IPSEC(ipsec_process_proposal): proxy identities not supported": "phase2_proxy_rejected",
    "IPSEC(initialize_sas): invalid proxy IDs": "phase2_proxy_rejected",
    "ISAKMP:(0): IPSEC policy invalidated proposal with error 32": "phase2_policy_invalidated",
    "ISAKMP:(0): IPSEC policy invalidated proposal with error 256": "phase2_policy_invalidated",
    "IPSEC(validate_proposal): invalid local address 30.1.1.2": "invalid_local_address",
    "IPSEC(validate_proposal): peer address 20.1.1.1 not found": "peer_not_found",
    "Identity doesn't match negotiated identity": "identity_mismatch",
    "%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSec packet has invalid spi for "
    "destaddr=16.0.0.3, prot=50, spi=0xdeadbeef": "invalid_spi",
    "%CRYPTO-4-RECVD_PKT_NOT_IPSEC: Rec'd packet not an IPSEC packet. (ip) "
    "dest_addr= 1.2.3.4, src_addr= 2.3.4.5, prot= 1": "packet_not_ipsec",
    "Rec'd packet not an IPSEC packet. (ip) dest_addr= 1.2.3.4, src_addr= 2.3.4.5, prot= 1": (
        "packet_not_ipsec"
    ),
    "ISAKMP: DPD: Peer 10.2.2.1 not responding, tearing down SA": "dpd_teardown",
    "AAA/AUTHEN(2414480242): User not found": "xauth_failed",
    "AAA/AUTHEN(243054726): password incorrect": "xauth_failed",
    "AAA/AUTHOR/IKMP/LOCAL: group ezvpn does not exist": "vpn_group_not_found",
    "ISAKMP (0:1): Could not get address from pool!": "address_pool_failure",
    "%IPRT-3-ROUTELIMITEXCEEDED: IP routing table limit exceeded - vpn1, 2.1.1.0/24": (
        "route_limit_exceeded"
    ),
    "%IPRT-3-ROUTEELIMITEXCEEDED: IP routing table limit exceeded - vpn1, 2.1.1.0/24": (
        "route_limit_exceeded"
    ),
    "BGP(2): 99.1.1.3 rcvd 100:1:101.1.2.0/24 -- DENIED due to: extended community "
    "not supported;": "route_target_denied",
}


@pytest.mark.parametrize(("line", "event"), sorted(SEED_LINES.items()))
def test_seed_wordings(line: str, event: str) -> None:
    found = match_signature(f"*Nov 23 10:14:02.311: {line}", load_platform("cisco_ios").signatures)
    assert found is not None and found[0].event.value == event


def test_groups_become_peer_and_detail() -> None:
    text = (
        "*Apr 20 09:14:23.441: ISAKMP:(0): phase 1 SA policy not acceptable! "
        "(local 10.1.1.1 remote 10.2.2.1)\n"
        "*Apr 20 09:14:24.001: ISAKMP:(0): IPSEC policy invalidated proposal with error 256\n"
        "*Apr 20 09:14:25.001: ISAKMP (0:3): Hash algorithm offered does not match policy!\n"
    )
    events, unclassified = classify_log_text("cisco_ios", text, reference=datetime(2024, 1, 2))
    assert not unclassified
    first, second, third = events
    assert first.peer == ip_address("10.2.2.1") and first.detail["local"] == "10.1.1.1"
    assert second.detail["error"] == "256" and second.peer is None
    assert third.detail["attribute"] == "hash"
    assert first.timestamp == datetime(2023, 4, 20, 9, 14, 23, 441000)
    assert [e.source.line_no for e in events if e.source] == [1, 2, 3]


def test_show_logging_header_is_skipped_and_lines_counted() -> None:
    text = (
        "Syslog logging: enabled (0 messages dropped, 0 flushes, 0 overruns)\n"
        "    Console logging: level debugging, 45 messages logged\n"
        "\n"
        "Log Buffer (8192 bytes):\n"
        "\n"
        "*Nov 23 10:14:02.311: %CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF\n"
        "*Nov 23 10:14:05.877: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed\n"
    )
    events, unclassified = classify_log_text(
        "cisco_ios", text, reference=datetime(2023, 11, 23, 11, 0)
    )
    assert [e.event for e in events] == ["isakmp_off"]
    assert events[0].source is not None and events[0].source.line_no == 6
    assert [u.line_no for u in unclassified] == [7]
    assert events[0].timestamp == datetime(2023, 11, 23, 10, 14, 2, 311000)


@pytest.mark.parametrize(
    ("line", "stamp", "expected", "uptime"),
    [
        (
            "*Nov 23 10:14:02.311: x",
            "*Nov 23 10:14:02.311",
            datetime(2022, 11, 23, 10, 14, 2, 311000),
            False,
        ),
        (
            ".Nov 23 2022 10:14:02 UTC: x",
            ".Nov 23 2022 10:14:02 UTC",
            datetime(2022, 11, 23, 10, 14, 2),
            False,
        ),
        (
            "000123: Dec 31 23:59:59.900: x",
            "Dec 31 23:59:59.900",
            datetime(2022, 12, 31, 23, 59, 59, 900000),
            False,
        ),
        ("1d09h: ISAKMP (16): x", "1d09h", None, True),
        ("2w3d: %SYS-5-RESTART: x", "2w3d", None, True),
        ("00:26:15: IPSEC(create_sa): x", "00:26:15", None, True),
        (
            "2023-11-23T10:14:02.5+01:00 gw charon: x",
            "2023-11-23T10:14:02.5+01:00",
            datetime(2023, 11, 23, 10, 14, 2, 500000),
            False,
        ),
        ("(key eng. msg.) dest= 1.1.1.1", "", None, False),
    ],
)
def test_timestamps(line: str, stamp: str, expected: datetime | None, uptime: bool) -> None:
    parsed = parse_log_line(1, line, reference=datetime(2023, 1, 5, 12, 0))
    assert parsed.stamp == stamp
    assert parsed.timestamp == expected
    assert parsed.uptime is uptime


def test_continuation_lines_inherit_the_timestamp() -> None:
    text = (
        "*Nov 17 16:52:03.373: IPSEC(validate_proposal_request): proposal part #1,\n"
        "(key eng. msg.) INBOUND local= 30.1.1.2, remote= 20.1.1.1,\n"
    )
    events, unclassified = classify_log_text("cisco_ios", text, reference=datetime(2023, 12, 1))
    assert [e.event for e in events] == ["phase2_proposal"]
    assert [u.line_no for u in unclassified] == [2]
    lines = split_log_lines(text, load_platform("cisco_ios"), datetime(2023, 12, 1))
    assert lines[1].timestamp == lines[0].timestamp == datetime(2023, 11, 17, 16, 52, 3, 373000)


def test_generic_fallback_without_a_template(tmp_path: object) -> None:
    platform = load_platform("cisco_ios")
    from dataclasses import replace

    other = replace(platform, log_command="show nonexistent thing")
    events, _ = classify_log_text(other, "header line\n%CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF\n")
    assert [e.source.line_no for e in events if e.source] == [2]


def test_no_clock_no_year_no_timestamp() -> None:
    events, _ = classify_log_text(
        "cisco_ios", "*Nov 23 10:14:02.311: %CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF\n"
    )
    assert events[0].timestamp is None and events[0].detail["stamp"] == "Nov 23 10:14:02.311"
