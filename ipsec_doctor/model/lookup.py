"""Which capture file answers a command: the one lookup rule shared by every reader of folders.

Contract (pure, no I/O):
- :func:`candidate_filenames` lists, best first and without duplicates, the file names that may
  hold the output of ``command`` for ``sample``:

  1. the exact command (``command_filename(command, sample)``);
  2. the wider outputs of every plan command pattern the command matches, transitively
     (``show crypto ipsec sa peer 10.2.2.1`` -> ``show crypto ipsec sa``;
     ``show access-lists VPN`` -> ``show access-lists``, ``show ip access-lists``);
  3. as a last resort, when the command ends in an output filter (``| include X``,
     ``| section X``, ...), the unfiltered command and its wider outputs.

  It never falls back to another sample: callers decide whether sample 2 may be answered by
  sample 1.
- ``wider_patterns`` is ``[(pattern, [wider, ...]), ...]`` where ``pattern`` is a plan command
  with ``{var}`` placeholders; a placeholder matches one whitespace-free word, keywords match
  case-insensitively, and a wider command may reuse the placeholders its pattern captured.
  :func:`wider_patterns_from_plan` extracts that list from a loaded platform plan mapping.
- :func:`split_output_filter` and :func:`apply_output_filter` model IOS output modifiers so a
  reader serving an unfiltered file can narrow it the way the device would have.
- :func:`render_command` fills a plan command that may have ``variants`` (the plan's other
  forms of the same command, e.g. ``show ip route vrf {fvrf} {peer}`` beside ``show ip route
  {peer}``): the first variant whose variables all have a (non-empty) value is used, else the
  command itself, else ``None``. :func:`variables_of` lists a template's placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ipsec_doctor.model.capture import command_filename

WiderPatterns = Sequence[tuple[str, Sequence[str]]]

# Sample plan line: "show crypto ipsec sa peer {peer}" -> placeholder "{peer}"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Sample device line: "show logging | include %CRYPTO-4|IKMP" -> kind "include", expression the rest
_MODIFIER = re.compile(r"^\s*(?P<kind>[A-Za-z]+)(?:\s+(?P<expr>.*?))?\s*$")

# IOS output modifiers; each may be abbreviated to any prefix ("| i", "| inc", "| sec").
_FILTER_KINDS = ("include", "exclude", "begin", "section", "count")

# In an IOS CLI regular expression "_" stands for a delimiter (space, comma, brace, paren, edge).
# Sample device line: "show ip bgp | include _65001_" matches " 65001 " and "65001" at line end.
_IOS_UNDERSCORE = r"(?:^|$|[ ,{}()])"


def normalize_command(command: str) -> str:
    """The command with runs of whitespace collapsed and the ends trimmed."""
    return " ".join(command.split())


@lru_cache(maxsize=1024)
def _compile_pattern(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    normalized = normalize_command(pattern)
    for match in _PLACEHOLDER.finditer(normalized):
        parts.append(re.escape(normalized[position : match.start()]))
        name = match.group(1)
        parts.append(f"(?P={name})" if name in seen else rf"(?P<{name}>\S+)")
        seen.add(name)
        position = match.end()
    parts.append(re.escape(normalized[position:]))
    return re.compile("".join(parts), re.IGNORECASE)


def match_pattern(command: str, pattern: str) -> dict[str, str] | None:
    """The placeholder values if ``command`` is an instance of ``pattern``, else ``None``."""
    match = _compile_pattern(pattern).fullmatch(normalize_command(command))
    return None if match is None else match.groupdict()


def _fill(template: str, values: Mapping[str, str]) -> str | None:
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        if match.group(1) not in values:
            missing = True
            return ""
        return values[match.group(1)]

    filled = _PLACEHOLDER.sub(replace, template)
    return None if missing else normalize_command(filled)


def variables_of(template: str) -> tuple[str, ...]:
    """The ``{variables}`` of a command template, in order of appearance, once each."""
    return tuple(dict.fromkeys(_PLACEHOLDER.findall(template)))


def optional_variables_of(command: str, variants: Sequence[str]) -> tuple[str, ...]:
    """The variables only the ``variants`` of ``command`` use (unknown: the command runs)."""
    needed = set(variables_of(command))
    return tuple(
        dict.fromkeys(name for v in variants for name in variables_of(v) if name not in needed)
    )


def render_command(command: str, variants: Sequence[str], values: Mapping[str, str]) -> str | None:
    """The first of ``variants`` whose variables all have a non-empty value, filled in; else
    ``command`` filled in; ``None`` when ``command`` needs a value that is missing too."""
    known = {name: value for name, value in values.items() if value}
    for template in (*variants, command):
        filled = _fill(template, known)
        if filled is not None:
            return filled
    return None


def wider_commands(command: str, wider_patterns: WiderPatterns) -> list[str]:
    """Commands whose output contains the answer to ``command`` (transitively), best first."""
    found: list[str] = []
    queue = [normalize_command(command)]
    seen = {queue[0].lower()}
    while queue:
        current = queue.pop(0)
        for pattern, wider_list in wider_patterns:
            values = match_pattern(current, pattern)
            if values is None:
                continue
            for wider in wider_list:
                filled = _fill(wider, values)
                if filled is None or filled.lower() in seen:
                    continue
                seen.add(filled.lower())
                found.append(filled)
                queue.append(filled)
    return found


@dataclass(frozen=True)
class OutputFilter:
    """An IOS output modifier: ``| include REGEX`` and friends."""

    kind: str  # include, exclude, begin, section, count, or the unknown word as typed
    expression: str


def split_output_filter(command: str) -> tuple[str, OutputFilter | None]:
    """``show log | include X`` -> (``show log``, include X); the filter is ``None`` if absent."""
    normalized = normalize_command(command)
    if "|" not in normalized:
        return normalized, None
    base, _, modifier = normalized.partition("|")
    match = _MODIFIER.match(modifier)
    if match is None:
        return normalize_command(base), OutputFilter(kind="", expression=modifier.strip())
    typed = match.group("kind").lower()
    kind = typed
    for name in _FILTER_KINDS:
        if name.startswith(typed):
            kind = name
            break
    return normalize_command(base), OutputFilter(kind=kind, expression=match.group("expr") or "")


def _ios_regex(expression: str) -> re.Pattern[str]:
    translated = expression.replace("_", _IOS_UNDERSCORE)
    try:
        return re.compile(translated)
    except re.error:
        return re.compile(re.escape(expression))


def apply_output_filter(text: str, output_filter: OutputFilter | None) -> str:
    """Narrow ``text`` the way the device applies the modifier (unknown modifiers: unchanged).

    ``section`` keeps every top-level block (an unindented line and the indented lines below
    it) in which any line matches.
    """
    if output_filter is None:
        return text
    kind = output_filter.kind
    expression = output_filter.expression
    # "| section include X" / "| section exclude X" name the sub-mode explicitly.
    if kind == "section":
        first, _, rest = expression.partition(" ")
        if first in {"include", "exclude"} and rest:
            expression = rest
    regex = _ios_regex(expression)
    lines = text.replace("\r\n", "\n").split("\n")
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines = lines[:-1]
    kept: list[str]
    if kind == "include":
        kept = [line for line in lines if regex.search(line)]
    elif kind == "exclude":
        kept = [line for line in lines if not regex.search(line)]
    elif kind == "begin":
        start = next((i for i, line in enumerate(lines) if regex.search(line)), len(lines))
        kept = lines[start:]
    elif kind == "count":
        total = sum(1 for line in lines if regex.search(line))
        return f"Number of lines which match regexp = {total}\n"
    elif kind == "section":
        kept = []
        for block in _blocks(lines):
            if any(regex.search(line) for line in block):
                kept.extend(block)
    else:
        return text
    return "\n".join(kept) + ("\n" if kept else "")


def _blocks(lines: Iterable[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        if line[:1].isspace() and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def candidate_commands(
    command: str, wider_patterns: WiderPatterns = (), *, strip_filter: bool = True
) -> list[str]:
    """The commands whose saved output may answer ``command``, best first (see module doc)."""
    normalized = normalize_command(command)
    found = [normalized, *wider_commands(normalized, wider_patterns)]
    if strip_filter:
        base, output_filter = split_output_filter(normalized)
        if output_filter is not None and base:
            found += [base, *wider_commands(base, wider_patterns)]
    unique: list[str] = []
    for candidate in found:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def candidate_filenames(
    command: str,
    sample: int = 1,
    wider_patterns: WiderPatterns = (),
    *,
    strip_filter: bool = True,
) -> list[str]:
    """File names that may hold the output of ``command`` for ``sample``, best first."""
    return [
        command_filename(candidate, sample)
        for candidate in candidate_commands(command, wider_patterns, strip_filter=strip_filter)
    ]


def wider_patterns_from_plan(plan: Mapping[str, object]) -> list[tuple[str, list[str]]]:
    """``[(command pattern, [wider, ...])]`` of a platform plan mapping (its ``commands`` list)."""
    commands = plan.get("commands")
    patterns: list[tuple[str, list[str]]] = []
    if not isinstance(commands, list):
        return patterns
    for entry in commands:
        if not isinstance(entry, Mapping):
            continue
        pattern = entry.get("command")
        wider = entry.get("wider")
        if isinstance(pattern, str) and isinstance(wider, list) and wider:
            patterns.append((pattern, [str(item) for item in wider]))
    return patterns
