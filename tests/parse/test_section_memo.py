"""The section memo of the IOS converter: reused only where the section cannot differ."""

from __future__ import annotations

import ast
import inspect
from dataclasses import fields, replace
from pathlib import Path

import pytest

from ipsec_doctor.model.capture import DeviceCapture
from ipsec_doctor.parse import cisco_ios
from ipsec_doctor.parse.cisco_ios import BUILDERS, CONTEXT_USED, SECTION_MEMO, parse_device
from ipsec_doctor.parse.memo import MISSING, BoundedMemo
from ipsec_doctor.parse.textfsm_parser import find_template
from ipsec_doctor.resources import data_dir
from tests.parse.scenario_support import load_device

#: What the key holds anyway: the query (and the VRF it names) comes from the command, the
#: platform is in the key.
_IN_KEY_ANYWAY = {"query", "query_vrf", "platform"}


def _context_fields_read(function_name: str, seen: set[str] | None = None) -> set[str]:
    """The ``ctx.<field>`` a module function reads, through the functions it hands ``ctx``."""
    seen = seen if seen is not None else set()
    if function_name in seen:
        return set()
    seen.add(function_name)
    tree = ast.parse(inspect.getsource(cisco_ios))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found: set[str] = set()
    for node in ast.walk(functions[function_name]):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ctx"
        ):
            found.add(node.attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            passed = [*node.args, *(k.value for k in node.keywords)]
            hands_ctx = any(isinstance(a, ast.Name) and a.id == "ctx" for a in passed)
            if hands_ctx and node.func.id in functions:
                found |= _context_fields_read(node.func.id, seen)
    return found


@pytest.mark.parametrize("plan_id", sorted(BUILDERS))
def test_the_memo_key_names_every_context_field_a_builder_reads(plan_id: str) -> None:
    read = _context_fields_read(BUILDERS[plan_id].__name__) - _IN_KEY_ANYWAY
    assert read <= set(CONTEXT_USED.get(plan_id, ())), (
        f"{plan_id}: its builder reads ctx.{sorted(read)}; add them to CONTEXT_USED"
    )


def test_the_log_conversion_reads_only_the_reference_time() -> None:
    read = _context_fields_read("_logs") - _IN_KEY_ANYWAY
    assert read <= set(CONTEXT_USED["logging"])


def test_context_used_names_real_fields() -> None:
    names = {f.name for f in fields(cisco_ios._Context)}
    for plan_id, used in CONTEXT_USED.items():
        assert set(used) <= names, plan_id


def _healthy() -> DeviceCapture:
    return load_device(Path(data_dir("scenarios"), "healthy", "R1"), "10.2.2.1")


def test_a_memoised_parse_equals_a_fresh_one() -> None:
    capture = _healthy()
    SECTION_MEMO.clear()
    fresh = parse_device(capture, "10.2.2.1")
    hits_before = SECTION_MEMO.hits
    again = parse_device(capture, "10.2.2.1")
    assert SECTION_MEMO.hits > hits_before  # the second parse used the memo
    assert again == fresh


def test_peer_dependent_sections_are_not_shared_between_peers() -> None:
    capture = _healthy()
    SECTION_MEMO.clear()
    for_peer = parse_device(capture, "10.2.2.1")
    for_none = parse_device(capture, None)
    SECTION_MEMO.clear()
    assert parse_device(capture, None) == for_none
    assert parse_device(capture, "10.2.2.1") == for_peer


def test_a_changed_output_is_parsed_again() -> None:
    capture = _healthy()
    parse_device(capture, "10.2.2.1")
    edited = replace(
        capture,
        captures=[
            replace(c, raw=c.raw.replace("QM_IDLE", "MM_NO_STATE"))
            if c.command == "show crypto isakmp sa"
            else c
            for c in capture.captures
        ],
    )
    states = {sa.state for sa in parse_device(edited, "10.2.2.1").ike_sas or ()}
    assert "MM_NO_STATE" in states


def test_the_memo_forgets_the_least_recently_used() -> None:
    memo = BoundedMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "a" is now the most recent
    memo.put("c", 3)
    assert memo.get("b") is MISSING
    assert memo.get("a") == 1 and memo.get("c") == 3
    with pytest.raises(ValueError):
        BoundedMemo(0)


@pytest.mark.parametrize(
    ("command", "same_as"),
    [
        ("show ip route 10.64.3.1", "show ip route 10.2.2.1"),
        ("show crypto ipsec sa peer 10.64.3.1", "show crypto ipsec sa peer 10.2.2.1"),
        ("show ip route vrf CUST-A 10.64.3.1", "show ip route vrf CUST-A 10.2.2.1"),
    ],
)
def test_template_lookup_does_not_depend_on_the_address(command: str, same_as: str) -> None:
    assert find_template("cisco_ios", command) == find_template("cisco_ios", same_as)
    assert find_template("cisco_ios", command) is not None
