"""Fix texts: configuration snippets kept as data in ``ipsec_doctor/platforms/fixes.yaml``.

Contract:
- ``fixes.yaml`` has ``vocabulary`` (neutral algorithm names -> each platform's keywords),
  ``variables`` (placeholders that name a configured object of the tunnel: what each names and
  the wording printed when it is unknown) and ``fixes`` (key -> platform -> template). A key is
  a finding code, optionally with a ``/variant`` suffix (``CRYPTO_MAP_WRONG_INTERFACE/remote_lan``).
- Templates use ``{name}`` placeholders (lowercase letters, digits, ``_``). :func:`render`
  fills them with the values a rule found in the state; a placeholder the rule could not fill
  shows its ``variables.<name>.unknown`` wording, or ``<name>``, so a fix never invents an
  address or a name. Any other brace is literal (strongSwan's ``connections {`` blocks need
  no escaping).
- Names of the tunnel's configured objects (``{connection}``, ``{child}``: a strongSwan
  connection and CHILD_SA configuration; :func:`entry_names` takes them from the policy
  entries of the state) are given to :func:`render` as ``names``, one mapping per object the
  fix concerns. A template that uses them is rendered once per object and the renderings are
  merged: a block they open alike (``connections {``) is written once around what differs, so
  two connections of one peer get one ``connections`` block; renderings that share no opening
  follow each other and a command already written at the top level is not repeated.
- A platform without its own text gets the ``generic`` one. Secrets never appear: keys are
  always the literal ``<pre-shared-key>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ipsec_doctor.model.state import CryptoMapEntry

FIXES_PACKAGE = "ipsec_doctor.platforms"
FIXES_FILE = "fixes.yaml"


# Sample template line: " set peer {peer}" -> placeholder "peer"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@lru_cache(maxsize=1)
def load_fixes() -> dict[str, Any]:
    """The parsed ``fixes.yaml`` (validated: a mapping with ``fixes`` of string templates)."""
    text = resources.files(FIXES_PACKAGE).joinpath(FIXES_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("fixes"), dict):
        raise ValueError(f"{FIXES_FILE}: expected a mapping with a 'fixes' mapping")
    for key, per_platform in data["fixes"].items():
        if not isinstance(per_platform, dict) or not per_platform:
            raise ValueError(f"{FIXES_FILE}: fixes.{key} must map platforms to templates")
        for platform, template in per_platform.items():
            if not isinstance(template, str):
                raise ValueError(f"{FIXES_FILE}: fixes.{key}.{platform} must be a string")
    vocabulary = data.setdefault("vocabulary", {})
    if not isinstance(vocabulary, dict):
        raise ValueError(f"{FIXES_FILE}: vocabulary must be a mapping")
    variables = data.setdefault("variables", {})
    if not isinstance(variables, dict):
        raise ValueError(f"{FIXES_FILE}: variables must be a mapping")
    for name, spec in variables.items():
        if not isinstance(name, str) or not PLACEHOLDER.fullmatch(f"{{{name}}}"):
            raise ValueError(f"{FIXES_FILE}: variables.{name}: not a placeholder name")
        if not isinstance(spec, dict) or not isinstance(spec.get("unknown"), str):
            raise ValueError(f"{FIXES_FILE}: variables.{name} needs an 'unknown' wording")
    return data


def template(key: str, platform: str) -> str:
    """The raw template of ``key`` for ``platform`` (generic fallback; "" when none)."""
    fixes: dict[str, dict[str, str]] = load_fixes()["fixes"]
    per_platform = fixes.get(key) or fixes.get(key.split("/", 1)[0]) or {}
    return per_platform.get(platform) or per_platform.get("generic", "")


def unknown(name: str) -> str:
    """What a fix prints for placeholder ``name`` when its value is not known."""
    variables: dict[str, dict[str, str]] = load_fixes()["variables"]
    spec = variables.get(name)
    return spec["unknown"] if spec is not None else f"<{name}>"


def entry_names(entries: Iterable[CryptoMapEntry]) -> tuple[dict[str, str], ...]:
    """The names a fix uses for policy entries, in order, duplicates dropped: ``connection``
    (the entry's name: a strongSwan connection, an IOS crypto map or IPsec profile) and
    ``child`` (its ACL name: a strongSwan CHILD_SA configuration), where not empty."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for entry in entries:
        names = {"connection": entry.name, "child": entry.acl}
        found.setdefault(
            (entry.name, entry.acl), {key: value for key, value in names.items() if value}
        )
    return tuple(found.values())


def _fill(text: str, values: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return unknown(match.group(1)) if value is None else str(value)

    return PLACEHOLDER.sub(fill, text).rstrip("\n")


def render(
    key: str, platform: str, *, names: Sequence[Mapping[str, Any]] = (), **values: Any
) -> str:
    """The fix text of ``key`` for ``platform`` with ``values`` filled in; with ``names``, once
    per named object the template mentions, merged (see the module contract)."""
    text = template(key, platform)
    if not text:
        return ""
    used = set(PLACEHOLDER.findall(text))
    named = [n for n in names if used & set(n)]
    if not named:
        return _fill(text, values)
    renderings = [_fill(text, {**values, **n}).split("\n") for n in named]
    return "\n".join(merge_renderings(renderings))


def _depth(line: str) -> int:
    return line.count("{") - line.count("}")


def merge_renderings(renderings: Sequence[Sequence[str]]) -> list[str]:
    """One text (lines) from several renderings of one template.

    The longest common opening that leaves braces open, and the common closing lines that
    shut exactly those braces, are written once around what lies between them (merged the
    same way where several of those start alike). Renderings that share no such opening
    follow each other a blank line apart, and a line already written outside every block (a
    command) is not written again (what is left of such a rendering follows on directly).
    """
    unique = [list(r) for r in dict.fromkeys(tuple(r) for r in renderings)]
    if len(unique) == 1:
        return unique[0]
    common = 0
    shortest = min(len(r) for r in unique)
    while common < shortest and all(r[common] == unique[0][common] for r in unique):
        common += 1
    for opening in range(common, 0, -1):
        depth = sum(_depth(line) for line in unique[0][:opening])
        if depth <= 0:
            continue
        closing = _closing(unique, opening, depth)
        if closing is None:
            continue
        bodies = [r[opening : len(r) - closing] for r in unique]
        groups: dict[str, list[list[str]]] = {}
        for body in bodies:
            groups.setdefault(body[0] if body else "", []).append(body)
        inner = [line for group in groups.values() for line in merge_renderings(group)]
        return [*unique[0][:opening], *inner, *unique[0][len(unique[0]) - closing :]]
    merged: list[str] = []
    written: set[str] = set()
    for rendering in unique:
        kept: list[str] = []
        depth = 0
        for line in rendering:
            if depth == 0 and line.strip() and _depth(line) == 0:
                if line in written:
                    continue
                written.add(line)
            kept.append(line)
            depth += _depth(line)
        continued = bool(kept) and kept[0] != rendering[0]
        if merged and kept and not continued:
            merged.append("")  # a new group; a continued one (first line written) follows on
        merged.extend(kept)
    return merged


def _closing(unique: Sequence[Sequence[str]], opening: int, depth: int) -> int | None:
    """How many last lines, alike in every rendering, shut the ``depth`` braces the first
    ``opening`` lines leave open, so that what lies between is balanced; None if none do."""
    first = unique[0]
    for count in range(1, len(first) - opening + 1):
        tail = list(first[len(first) - count :])
        if sum(_depth(line) for line in tail) != -depth:
            continue
        if all(
            len(r) >= opening + count
            and list(r[len(r) - count :]) == tail
            and sum(_depth(line) for line in r[opening : len(r) - count]) == 0
            for r in unique
        ):
            return count
    return None


def term(platform: str, kind: str, value: object) -> str:
    """A neutral value in a platform's words: ``term("cisco_ios", "encryption", "aes-256")``."""
    vocabulary: dict[str, dict[str, dict[str, str]]] = load_fixes()["vocabulary"]
    table = vocabulary.get(platform, {}).get(kind, {})
    key = str(value)
    return str(table.get(key, key))
