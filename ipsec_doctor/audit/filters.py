"""``audit --filter``: choose hosts of the Nornir inventory by name, group, platform or data.

Contract:
- Each filter is ``key=value``; several filters must all match. ``name`` and ``hostname``
  match the host's name / address with shell wildcards (``name=R1*``); ``group`` is a
  group the host belongs to, directly or through its groups (the group must exist);
  ``platform`` is the host's platform; any other key is a ``data`` key as Nornir resolves it
  (host, then its groups, then defaults: ``site=ams``), compared with wildcards, or as one
  element when the value is a list.
- A malformed filter, an unknown group or a key no host has is a
  :class:`~ipsec_doctor.errors.UsageError` that names it and lists what is known; so is a
  filter set that matches no host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from nornir.core import Nornir
from nornir.core.inventory import Host

from ipsec_doctor.errors import UsageError

ATTRIBUTES = ("name", "hostname", "group", "platform")


def parse_filter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise UsageError(
            f"--filter {text!r}: expected key=value (name=R1*, group=hub, site=ams, ...)"
        )
    return key, value


def _groups(host: Host) -> set[str]:
    found: set[str] = set()
    pending = list(host.groups)
    while pending:
        group = pending.pop()
        if group.name in found:
            continue
        found.add(group.name)
        pending.extend(group.groups)
    return found


def data_keys(nr: Nornir) -> set[str]:
    """Every data key some host has, through its groups or the defaults."""
    keys: set[str] = set(nr.inventory.defaults.data)
    for host in nr.inventory.hosts.values():
        keys.update(host.data)
        pending = list(host.groups)
        while pending:
            group = pending.pop()
            keys.update(group.data)
            pending.extend(group.groups)
    return keys


def _value_matches(found: Any, wanted: str) -> bool:
    if found is None:
        return False
    if isinstance(found, list | tuple | set):
        return any(_value_matches(item, wanted) for item in found)
    return fnmatchcase(str(found), wanted)


def _host_matches(host: Host, key: str, value: str) -> bool:
    if key == "name":
        return fnmatchcase(host.name, value)
    if key == "hostname":
        return fnmatchcase(str(host.hostname or ""), value)
    if key == "group":
        return value in _groups(host)
    if key == "platform":
        return fnmatchcase(str(host.platform or ""), value)
    try:
        found = host.get(key)
    except Exception:  # nornir raises for odd keys on some versions
        found = None
    return _value_matches(found, value)


def select_hosts(nr: Nornir, filters: Sequence[str]) -> list[str]:
    """Host names matching every filter, sorted (see the module contract)."""
    parsed = [parse_filter(f) for f in filters]
    keys = data_keys(nr)
    groups = set(nr.inventory.groups)
    for key, value in parsed:
        if key == "group" and value not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise UsageError(f"--filter group={value}: no such group (groups: {known})")
        if key not in ATTRIBUTES and key not in keys:
            known = ", ".join([*ATTRIBUTES, *sorted(keys)])
            raise UsageError(
                f"--filter {key}={value}: unknown filter key {key!r} (no host has it; "
                f"known: {known})"
            )
    hosts = [
        name
        for name, host in nr.inventory.hosts.items()
        if all(_host_matches(host, key, value) for key, value in parsed)
    ]
    if not hosts:
        what = " ".join(f"--filter {k}={v}" for k, v in parsed) or "the inventory"
        raise UsageError(f"no host matches {what} ({len(nr.inventory.hosts)} hosts in total)")
    return sorted(hosts)


def declared_peers(nr: Nornir, hosts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``data.peers`` of each host (tunnels the inventory says it has)."""
    out: dict[str, tuple[str, ...]] = {}
    for name in hosts:
        value = nr.inventory.hosts[name].get("peers")
        if isinstance(value, str):
            out[name] = (value,)
        elif isinstance(value, list | tuple):
            out[name] = tuple(str(v) for v in value)
    return out


def declared_endpoints(nr: Nornir, hosts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``data.tunnel_endpoints`` of each host (its own crypto endpoint addresses)."""
    out: dict[str, tuple[str, ...]] = {}
    for name in hosts:
        value = nr.inventory.hosts[name].get("tunnel_endpoints")
        if isinstance(value, str):
            out[name] = (value,)
        elif isinstance(value, list | tuple):
            out[name] = tuple(str(v) for v in value)
    return out
