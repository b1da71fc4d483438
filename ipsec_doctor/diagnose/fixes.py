"""Fix texts: configuration snippets kept as data in ``ipsec_doctor/platforms/fixes.yaml``.

Contract:
- ``fixes.yaml`` has ``vocabulary`` (neutral algorithm names -> each platform's keywords) and
  ``fixes`` (key -> platform -> template). A key is a finding code, optionally with a
  ``/variant`` suffix (``CRYPTO_MAP_WRONG_INTERFACE/remote_lan``).
- Templates use ``{name}`` placeholders (lowercase letters, digits, ``_``). :func:`render`
  fills them with the values a rule found in the state; a placeholder the rule could not fill
  stays visible as ``<name>``, so a fix never invents an address or a name. Any other brace is
  literal (strongSwan's ``connections {`` blocks need no escaping).
- A platform without its own text gets the ``generic`` one. Secrets never appear: keys are
  always the literal ``<pre-shared-key>``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

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
    return data


def template(key: str, platform: str) -> str:
    """The raw template of ``key`` for ``platform`` (generic fallback; "" when none)."""
    fixes: dict[str, dict[str, str]] = load_fixes()["fixes"]
    per_platform = fixes.get(key) or fixes.get(key.split("/", 1)[0]) or {}
    return per_platform.get(platform) or per_platform.get("generic", "")


def render(key: str, platform: str, **values: Any) -> str:
    """The fix text of ``key`` for ``platform`` with ``values`` filled in."""
    text = template(key, platform)
    if not text:
        return ""

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return f"<{match.group(1)}>" if value is None else str(value)

    return PLACEHOLDER.sub(fill, text).rstrip("\n")


def term(platform: str, kind: str, value: object) -> str:
    """A neutral value in a platform's words: ``term("cisco_ios", "encryption", "aes-256")``."""
    vocabulary: dict[str, dict[str, dict[str, str]]] = load_fixes()["vocabulary"]
    table = vocabulary.get(platform, {}).get(kind, {})
    key = str(value)
    return str(table.get(key, key))
