"""The capture lookup rule shared by the emulator and the offline file collector (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ipsec_doctor.model.lookup import (
    OutputFilter,
    apply_output_filter,
    candidate_filenames,
    match_pattern,
    split_output_filter,
    wider_commands,
    wider_patterns_from_plan,
)

PLAN = Path(__file__).resolve().parents[2] / "ipsec_doctor" / "platforms" / "cisco_ios.yaml"


@pytest.fixture(scope="module")
def wider() -> list[tuple[str, list[str]]]:
    return wider_patterns_from_plan(yaml.safe_load(PLAN.read_text(encoding="utf-8")))


def test_plan_wider_patterns(wider: list[tuple[str, list[str]]]) -> None:
    assert ("show crypto ipsec sa peer {peer}", ["show crypto ipsec sa"]) in wider


def test_exact_then_wider(wider: list[tuple[str, list[str]]]) -> None:
    assert candidate_filenames("show crypto ipsec sa peer 10.2.2.1", 1, wider) == [
        "show_crypto_ipsec_sa_peer_10.2.2.1.txt",
        "show_crypto_ipsec_sa.txt",
    ]
    assert candidate_filenames("show  access-lists VPN-TRAFFIC", 2, wider) == [
        "show_access-lists_VPN-TRAFFIC.2.txt",
        "show_access-lists.2.txt",
        "show_ip_access-lists.2.txt",
    ]


def test_no_wider_for_a_command_that_is_not_an_instance(wider: list[tuple[str, list[str]]]) -> None:
    assert candidate_filenames("show crypto ipsec sa", 1, wider) == ["show_crypto_ipsec_sa.txt"]
    assert candidate_filenames("show clock", 1, []) == ["show_clock.txt"]


def test_filter_is_stripped_as_last_resort(wider: list[tuple[str, list[str]]]) -> None:
    assert candidate_filenames("show access-lists VPN | include permit", 1, wider) == [
        "show_access-lists_VPN_%7C_include_permit.txt",
        "show_access-lists_VPN.txt",
        "show_access-lists.txt",
        "show_ip_access-lists.txt",
    ]
    assert candidate_filenames("show logging | i A|B", 1, wider, strip_filter=False) == [
        "show_logging_%7C_i_A%7CB.txt"
    ]


def test_pattern_matching() -> None:
    assert match_pattern("SHOW ip route 10.2.2.1", "show ip route {peer}") == {"peer": "10.2.2.1"}
    assert match_pattern("show ip route", "show ip route {peer}") is None
    assert match_pattern("show ip route 1.1.1.1 2.2.2.2", "show ip route {peer}") is None
    # wider commands may reuse what the pattern captured, and chain
    patterns = [("show a {x} detail", ["show a {x}"]), ("show a {x}", ["show a"])]
    assert wider_commands("show a Gi0/1 detail", patterns) == ["show a Gi0/1", "show a"]


def test_split_and_apply_filters() -> None:
    assert split_output_filter("show log | inc CRYPTO|IKE") == (
        "show log",
        OutputFilter(kind="include", expression="CRYPTO|IKE"),
    )
    assert split_output_filter("show clock") == ("show clock", None)
    text = "a one\n two\nb three\n four\nc five\n"
    assert apply_output_filter(text, OutputFilter("include", "t[wh]")) == " two\nb three\n"
    assert apply_output_filter(text, OutputFilter("exclude", "^ ")) == "a one\nb three\nc five\n"
    assert apply_output_filter(text, OutputFilter("begin", "^b")) == "b three\n four\nc five\n"
    assert apply_output_filter(text, OutputFilter("section", "four")) == "b three\n four\n"
    assert apply_output_filter(text, OutputFilter("count", "o")) == (
        "Number of lines which match regexp = 3\n"
    )
    assert apply_output_filter(text, OutputFilter("include", "_two")) == " two\n"
    assert apply_output_filter(text, OutputFilter("tee", "x")) == text
