"""TextFSM lookup: the command's output as rows, from our templates first, then ntc-templates'.

Contract:
- :func:`parse_output` returns the rows of one command's output as dicts with lower-case keys
  (the ntc-templates convention: ``{"dst": "10.2.2.1", "state": "QM_IDLE", ...}``); List
  values are lists of strings, other values strings ("" when absent).
- The template is chosen by the ntc-format ``index`` of ``textfsm_templates/`` (via
  :func:`ipsec_doctor.resources.data_dir`) and, when no line there matches, by the index that
  ships with ntc-templates. The first index with a matching line decides: a template that
  rejects the text (``-> Error``) is a :class:`~ipsec_doctor.errors.ParseError`, with no
  fallback to the other index.
- An IOS output filter (``show logging | include X``) is removed from the command before the
  lookup: the filtered output has the same layout.
- Zero rows is a valid answer ("no SAs"); an unknown command or a rejected output raises
  :class:`~ipsec_doctor.errors.ParseError` carrying platform, command and raw text.
- ``platform`` is the TextFSM platform name of the index (``cisco_ios``), which the platform
  YAML may map (``textfsm_platform``).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import textfsm
from textfsm import clitable

from ipsec_doctor.errors import ParseError
from ipsec_doctor.model.capture import strip_echo
from ipsec_doctor.model.lookup import split_output_filter
from ipsec_doctor.resources import data_dir

OURS = "ipsec-doctor"
NTC = "ntc-templates"


@dataclass(frozen=True)
class TemplateRef:
    """Which template parses a command: its index's owner and the template file."""

    source: str  # OURS or NTC
    path: Path


# Sample device lines: "R1#", "netops@gw1:~$", "root@gw1:/home/netops#" (the prompt a pasted
#   output ends with; the last two are Linux shells, strongSwan gateways)
_TRAILING_PROMPT = re.compile(r"\n[\w.:/()@~-]{1,63}[#>$]\s*$")


def clean_output(command: str, text: str) -> tuple[str, int]:
    """``text`` without an echoed ``R1#show ...`` first line and a trailing bare prompt, and the
    number of lines dropped at the top (so line numbers can still point into the raw text)."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = strip_echo(raw, command)
    offset = raw.count("\n") - cleaned.count("\n")
    return _TRAILING_PROMPT.sub("\n", cleaned), offset


def ntc_templates_dir() -> Path | None:
    """The templates directory of the installed ntc-templates (``NTC_TEMPLATES_DIR`` wins)."""
    override = os.environ.get("NTC_TEMPLATES_DIR")
    if override:
        return Path(override)
    return _installed_ntc_dir()


@lru_cache(maxsize=1)
def _installed_ntc_dir() -> Path | None:
    try:
        import ntc_templates
    except ImportError:  # pragma: no cover - a runtime dependency, but stay usable without it
        return None
    path = Path(ntc_templates.__file__).resolve().parent / "templates"
    return path if path.is_dir() else None


@lru_cache(maxsize=16)
def _dirs_for(_ours: str | None, _ntc: str | None) -> tuple[tuple[str, Path], ...]:
    """The template directories while the overriding variables hold these values (cached:
    resolving them costs stat calls, and every output parsed asks)."""
    dirs = [(OURS, data_dir("templates"))]
    ntc = ntc_templates_dir()
    if ntc is not None:
        dirs.append((NTC, ntc))
    return tuple(dirs)


def _template_dirs() -> tuple[tuple[str, Path], ...]:
    return _dirs_for(
        os.environ.get("IPSEC_DOCTOR_TEMPLATES_DIR"), os.environ.get("NTC_TEMPLATES_DIR")
    )


# Sample commands: "show ip route 10.2.2.1", "show crypto ipsec sa peer 2001:db8:2::1"
_IPV4 = re.compile(r"(?<![\w.:])\d{1,3}(?:\.\d{1,3}){3}(?![\w.:])")
_IPV6 = re.compile(r"(?<![\w.:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w.:])")


def _lookup_command(command: str) -> str:
    """The command as the template index sees it: without an output filter, and with every
    address made the same one (an index row matching one address matches any, and the
    lookups of a fleet's per-peer commands then share one cache entry)."""
    base, _filter = split_output_filter(command)
    return _IPV6.sub("2001:db8::1", _IPV4.sub("192.0.2.1", base))


_index_lock = threading.Lock()


def _index(directory: Path) -> clitable.IndexTable | None:
    """The parsed ``index`` of ``directory``, or None without one: once per process, even when
    many collector threads ask at once (ntc-templates' index compiles ~1,000 expressions)."""
    with _index_lock:
        return _read_index(directory)


@lru_cache(maxsize=16)
def _read_index(directory: Path) -> clitable.IndexTable | None:
    if not (directory / "index").is_file():
        return None
    return clitable.CliTable("index", str(directory)).index


@lru_cache(maxsize=4096)
def _match(directory: Path, platform: str, command: str) -> str | None:
    """The template file name the index in ``directory`` gives, or None (cached)."""
    index = _index(directory)
    if index is None:
        return None
    row = index.GetRowMatch({"Platform": platform, "Command": command})
    if not row:
        return None
    templates = str(index.index[row]["Template"])
    return templates.split(":")[0]


def find_template(platform: str, command: str) -> TemplateRef | None:
    """The template that parses ``command`` on ``platform``, ours before ntc-templates'."""
    return _find(_template_dirs(), platform, _lookup_command(command))


@lru_cache(maxsize=4096)
def _find(dirs: tuple[tuple[str, Path], ...], platform: str, wanted: str) -> TemplateRef | None:
    for source, directory in dirs:
        name = _match(directory, platform, wanted)
        if name is not None:
            return TemplateRef(source=source, path=directory / name)
    return None


#: Compiled templates by path, ready for a parse: a TextFSM object holds the state of one
#: parse, so each parse takes one out (compiling a new one only when none is free: as many
#: per template as parses of it ever ran at once), resets it, and puts it back.
_free: dict[Path, list[textfsm.TextFSM]] = {}


def _take(path: Path) -> textfsm.TextFSM:
    try:
        fsm = _free.setdefault(path, []).pop()  # list.pop and append are atomic
    except IndexError:
        with path.open(encoding="utf-8") as handle:
            return textfsm.TextFSM(handle)
    fsm.Reset()
    return fsm


def precompile(platform: str, commands: Iterable[str]) -> int:
    """Compile the template of each command once and keep it ready for the first parse (the
    audit does this before it forks its collectors, which then share the compiled templates);
    returns how many were compiled."""
    compiled = 0
    for command in commands:
        ref = find_template(platform, command)
        if ref is None or _free.get(ref.path):
            continue
        _free.setdefault(ref.path, []).append(_take(ref.path))
        compiled += 1
    return compiled


@lru_cache(maxsize=4096)
def _parse_cached(
    path: Path, text: str
) -> tuple[tuple[str, ...], tuple[tuple[str | tuple[str, ...], ...], ...]]:
    """(header, records) of one parse, immutable so that it can be shared (an audit parses the
    same outputs once per tunnel of a device, and again each time it derives plan variables)."""
    fsm = _take(path)
    try:
        records = fsm.ParseText(text)
        header = tuple(str(name).lower() for name in fsm.header)
        frozen = tuple(
            tuple(tuple(v) if isinstance(v, list) else str(v) for v in record) for record in records
        )
    finally:
        _free[path].append(fsm)
    return header, frozen


def parse_with_template(path: Path, text: str) -> list[dict[str, Any]]:
    """Rows of ``text`` parsed by one template file (lower-case keys; fresh lists per call)."""
    header, records = _parse_cached(path, text)
    return [
        {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in zip(header, record, strict=True)
        }
        for record in records
    ]


def parse_output(platform: str, command: str, text: str) -> list[dict[str, Any]]:
    """Rows of one command's output; raises :class:`ParseError` (see module docstring)."""
    ref = find_template(platform, command)
    if ref is None:
        raise ParseError(
            f"no TextFSM template for {platform!r} command {command!r}",
            platform=platform,
            command=command,
            raw=text,
        )
    try:
        return parse_with_template(ref.path, text)
    except (textfsm.Error, clitable.Error) as error:
        raise ParseError(
            f"template {ref.path.name} ({ref.source}) rejected the output of {command!r}: {error}",
            platform=platform,
            command=command,
            raw=text,
        ) from error
