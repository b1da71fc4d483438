"""``ipsec-doctor parse``: one command's output as rows and as typed state, JSON-ready.

Contract:
- :func:`parse_one` returns a JSON-serialisable dict::

      {"platform": ..., "command": ..., "section": <plan id or null>,
       "template": {"source": "ipsec-doctor" | "ntc-templates" | "python", "file": ...} | null,
       "rows": [...], "state": <typed section as JSON> | null, "error": "" | <why not>}

  The section is the platform plan entry whose command (or one of its variants or wider
  commands) matches; when none does, only the TextFSM rows are given. A parse failure is
  reported in ``error`` (and raised as :class:`~ipsec_doctor.errors.ParseError` only when
  nothing at all could be parsed, so the CLI can exit non-zero).
- :func:`state_to_json` turns any typed state (dataclasses, enums, addresses, datetimes,
  tuples, dicts) into plain JSON values; it is the one JSON shape of typed state.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from enum import Enum
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

from ipsec_doctor.errors import ParseError
from ipsec_doctor.model.lookup import match_pattern, split_output_filter
from ipsec_doctor.parse import converter_module
from ipsec_doctor.parse.textfsm_parser import clean_output, find_template, parse_output
from ipsec_doctor.platforms.loader import Platform, load_platform

_ADDRESS_TYPES = (IPv4Address, IPv6Address, IPv4Network, IPv6Network, IPv4Interface, IPv6Interface)


def state_to_json(value: Any) -> Any:
    """Plain JSON values (dict, list, str, int, float, bool, None) of a typed state value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, _ADDRESS_TYPES):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: state_to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(state_to_json(k)): state_to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [state_to_json(item) for item in value]
    return str(value)


def plan_section(platform: Platform, command: str) -> str | None:
    """The plan id whose command (or a variant of it), or wider command, ``command`` is an
    instance of."""
    base, _filter = split_output_filter(command)
    for entry in platform.commands:
        if entry.matches(base) is not None:
            return entry.id
    for entry in platform.commands:
        if any(match_pattern(base, wider) is not None for wider in entry.wider):
            return entry.id
    return None


def parse_one(platform: str, command: str, text: str) -> dict[str, Any]:
    """Rows and typed state of one output (see the module docstring)."""
    loaded = load_platform(platform)
    section = plan_section(loaded, command)
    result: dict[str, Any] = {
        "platform": platform,
        "command": " ".join(command.split()),
        "section": section,
        "template": None,
        "rows": [],
        "state": None,
        "error": "",
    }
    ref = find_template(loaded.textfsm_platform, command)
    if ref is not None:
        result["template"] = {"source": ref.source, "file": ref.path.name}
    if section is None:
        cleaned, _offset = clean_output(command, text)
        result["rows"] = parse_output(loaded.textfsm_platform, command, cleaned)
        return result
    module = converter_module(platform)
    try:
        rows, value = module.convert_command(section, command, text, platform=loaded)
    except ParseError as error:
        if ref is None:
            raise
        result["error"] = str(error)
        try:
            cleaned, _offset = clean_output(command, text)
            result["rows"] = parse_output(loaded.textfsm_platform, command, cleaned)
        except ParseError:
            raise error from None
        return result
    if ref is None:
        result["template"] = {"source": "python", "file": module.__name__}
    result["rows"] = state_to_json(rows)
    result["state"] = state_to_json(value)
    return result
