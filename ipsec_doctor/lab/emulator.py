"""The bundled lab: asyncssh servers on 127.0.0.1 that play Cisco IOS routers from capture folders.

Contract:
- A device directory ``<scenario>/<device>/`` holds ``device.yaml`` (``platform``, ``hostname``,
  ``username``, ``password``, ``secret``; optional ``addresses``, ``host``, ``port``) and one
  ``<command>.txt`` per command (``<command>.2.txt`` for the second sample), named by
  :func:`ipsec_doctor.model.capture.command_filename`. A leading ``R1#show ...`` echo line in a
  file is dropped (:func:`~ipsec_doctor.model.capture.strip_echo`).
- Each device gets its own listener (port 0 on ``host``; :attr:`EmulatorLab.ports` reports
  them). Login is password or keyboard-interactive with ``username``/``password``; a wrong
  password refuses the login. The CLI is IOS-like: prompt ``R1>``; ``enable`` asks
  ``Password: `` and checks ``secret`` (wrong: ``% Access denied``, stays in user mode), then
  ``R1#``; ``disable`` goes back; ``exit``/``logout``/``quit`` closes the session. Every typed
  line is echoed as a PTY does, output lines end in ``\\r\\n``, and each command is answered in
  one write (echo, output, next prompt), without delays unless a latency is configured.
- ``terminal ...`` (length, width, monitor, no monitor, pager) is accepted silently. Commands
  of privileged EXEC (``show running-config``, ``debug``, ``clear``, ``configure`` ...) are
  rejected in user mode. A command is answered from, in order: the exact file, the wider
  outputs of the platform plan (``ipsec_doctor/platforms/<platform>.yaml``), and the unfiltered
  output narrowed by its ``| include``/``| section``... filter
  (:mod:`ipsec_doctor.model.lookup`); IOS-style abbreviations (``sh cry isa sa``) are
  expanded against the commands the device knows. Anything else gets IOS's rejection: the
  ``^`` marker under the first unknown word and ``% Invalid input detected at '^' marker.``
  (``% Incomplete command.`` / ``% Ambiguous command:`` where IOS would say so).
- Samples: the n-th time a device answers a command (counted per device across sessions) it
  serves ``<command>.n.txt``, or the highest lower sample that exists. :meth:`EmulatedDevice.reset`
  and :meth:`EmulatorLab.reset` restart the count.
- :class:`DeviceBehaviour` injects latency per command and faults (``refuse_login``,
  ``hang_on``: never answer a command containing the text, ``drop_on``: drop the connection).
- Debugs, clears and ping (the intrusive steps; privileged EXEC except ping):

  * Debug state is the device's, not the session's (as on IOS it outlives a dropped SSH
    session): :attr:`EmulatedDevice.debug_state` holds the flags (``debug crypto isakmp``,
    ``ipsec``, ``engine``) and the conditions (``debug crypto condition peer ipv4 X``).
    ``undebug all`` / ``no debug all`` clear the flags but not the conditions; ``no debug
    crypto condition peer ipv4 X`` (or ``... condition reset``) removes them. ``show
    debugging`` prints both as IOS 15 does. :attr:`EmulatedDevice.history` lists every
    intrusive command accepted; :meth:`EmulatorLab.assert_debugs_off` fails a test that left
    anything on, and :meth:`EmulatedDevice.wait_for_debug` lets a test wait (bounded, on a
    condition variable) until the state is what it expects, e.g. while another process runs.
  * Debug output: ``debug_crypto_isakmp.txt`` / ``debug_crypto_ipsec.txt`` /
    ``debug_crypto_ikev2.txt`` / ``debug_crypto_engine.txt`` in the device folder hold one
    negotiation's debug lines (the bundled scenarios' come from their generator). A
    negotiation starts when the first crypto debug is turned on (``debug_autostart``), on
    interesting traffic (``ping``) and on a clear that concerns the tunnel. Its messages, merged
    in time order, are released ``debug_burst`` at a time each time the device answers any
    other command (time passes), and every ``debug_interval`` seconds to ``terminal monitor``
    sessions. A message is printed only while its debug is on and no condition filters its
    peer out; printed messages are appended to ``show logging`` (with the buffer's message
    count) when the file's ``Buffer logging`` is at level debugging, and written to every
    ``terminal monitor`` session.
  * ``clear crypto sa [peer X]``, ``clear crypto isakmp [conn-id]`` and ``clear crypto session``
    that concern the tunnel serve ``<command>.after-clear.txt`` (else the table's header only,
    and nothing for ``show crypto ipsec sa``) for the next ``clear_recovery`` SA outputs, then
    the normal files again (the tunnel renegotiated); ``clear_recovery=None``: never back.
  * ``ping A [source X] [repeat N] [size N] [timeout N]`` and the extended-ping dialog (a bare
    ``ping``) answer from an exact file or with IOS's text (``ping_replies`` marks), and add
    the echoes to the hit counters of ACL lines whose destination holds A.
- :class:`EmulatorLab` runs every listener on one asyncio loop, either in a background thread
  (:meth:`EmulatorLab.start`, ``with run_lab(...)``) for synchronous callers such as Nornir, or
  on the caller's running loop (:meth:`EmulatorLab.start_async`). Start returns once every port
  listens; stop closes listeners and sessions. One host key is generated per process and
  shared by every device. Passwords and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncssh
import yaml

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.capture import command_filename, strip_echo
from ipsec_doctor.model.lookup import (
    apply_output_filter,
    candidate_filenames,
    normalize_command,
    split_output_filter,
    wider_patterns_from_plan,
)

log = logging.getLogger(__name__)

DEVICE_FILE = "device.yaml"
PLATFORMS_DIR = Path(__file__).resolve().parent.parent / "platforms"
HOST_KEY_ALGORITHM = "ssh-ed25519"
_ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)

INVALID_INPUT = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."
ACCESS_DENIED = "% Access denied"

# Commands of privileged EXEC mode only (IOS keyword sequences; typed words may abbreviate them).
_PRIVILEGED_ONLY: tuple[tuple[str, ...], ...] = (
    ("show", "running-config"),
    ("show", "startup-config"),
    ("show", "tech-support"),
    ("show", "archive"),
    ("configure",),
    ("debug",),
    ("undebug",),
    ("no", "debug"),
    ("clear",),
    ("write",),
    ("copy",),
    ("reload",),
)

# Commands the emulator answers itself, in any mode where they are allowed.
_BUILTIN_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("enable",),
    ("disable",),
    ("exit",),
    ("logout",),
    ("quit",),
    ("terminal", "length", "{n}"),
    ("terminal", "width", "{n}"),
    ("terminal", "monitor"),
    ("terminal", "no", "monitor"),
    ("terminal", "pager", "{n}"),
    ("show", "privilege"),
    ("undebug", "all"),
    ("no", "debug", "all"),
)

# Sample device line: "R1#" or "R1>" alone on the last line of a pasted output.
_TRAILING_PROMPT = re.compile(r"^\S{1,64}[#>]\s*$")

# Sample file name: "show_crypto_isakmp_sa.2.txt" -> stem "show_crypto_isakmp_sa", sample ".2"
_SAMPLE_SUFFIX = re.compile(r"\.\d+$")

_CANDIDATE_CACHE_SIZE = 256


class LabError(ConfigError):
    """The lab cannot load a device or start a listener."""


@dataclass
class DeviceBehaviour:
    """Latency and fault injection for one emulated device."""

    latency: float = 0.0  # seconds added before each command's answer
    refuse_login: bool = False  # every login attempt fails
    hang_on: str | None = None  # a command containing this text is never answered
    drop_on: str | None = None  # a command containing this text drops the connection
    # -- intrusive steps (see "Debugs, clears and ping" in the module docstring) --
    debug_burst: int = 5  # debug messages released per command answered (or monitor tick)
    debug_autostart: bool = True  # turning a debug on starts a negotiation (a retrying tunnel)
    debug_interval: float = 0.02  # seconds between pushes to `terminal monitor` sessions
    clear_recovery: int | None = 1  # SA outputs served empty after a clear; None: never back
    ping_replies: str = "!!!!!"  # reply marks, repeated to the ping's count


@dataclass(frozen=True)
class DeviceConfig:
    """What ``device.yaml`` says about one emulated device."""

    name: str
    scenario: str
    directory: Path
    platform: str
    hostname: str
    username: str
    password: str = field(repr=False)
    secret: str = field(repr=False)
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandResult:
    """The device's answer to one command line (mode changes are the session's business)."""

    output: str = ""  # text with "\n" line ends, without echo and prompt
    accepted: bool = True
    caret: int | None = None  # offset in the typed line of the "^" marker when rejected
    filename: str | None = None  # the file that answered
    sample: int = 0


def load_device_config(directory: Path, name: str | None = None) -> DeviceConfig:
    """Read ``directory/device.yaml``; ``name`` defaults to the directory name."""
    path = directory / DEVICE_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read device file: {exc}") from exc
    if not isinstance(data, dict):
        raise LabError(f"{path}: expected a mapping")
    hostname = str(data.get("hostname") or directory.name)
    addresses = data.get("addresses") or ()
    if not isinstance(addresses, list | tuple):
        raise LabError(f"{path}: addresses must be a list")
    return DeviceConfig(
        name=name or directory.name,
        scenario=directory.parent.name,
        directory=directory,
        platform=str(data.get("platform") or "cisco_ios"),
        hostname=hostname,
        username=str(data.get("username") or "admin"),
        password=str(data.get("password") or ""),
        secret=str(data.get("secret") or ""),
        addresses=tuple(str(address) for address in addresses),
    )


@lru_cache(maxsize=16)
def _plan_commands(
    platform: str,
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """(command patterns, wider patterns) of a platform plan; empty when there is no plan."""
    path = PLATFORMS_DIR / f"{platform}.yaml"
    try:
        plan = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return (), ()
    if not isinstance(plan, dict):
        return (), ()
    commands = plan.get("commands")
    patterns: list[str] = []
    if isinstance(commands, list):
        patterns = [
            str(entry["command"])
            for entry in commands
            if isinstance(entry, dict) and isinstance(entry.get("command"), str)
        ]
    wider = tuple((pattern, tuple(items)) for pattern, items in wider_patterns_from_plan(plan))
    return tuple(patterns), wider


@lru_cache(maxsize=16)
def netmiko_device_type(platform: str) -> str:
    """netmiko's device type for an ipsec-doctor platform (the plan's ``netmiko_device_type``)."""
    try:
        plan = yaml.safe_load((PLATFORMS_DIR / f"{platform}.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return platform
    if isinstance(plan, dict) and isinstance(plan.get("netmiko_device_type"), str):
        return str(plan["netmiko_device_type"])
    return platform


def _prefix_of(word: str, keyword: str, minimum: int = 2) -> bool:
    word = word.lower()
    return keyword.startswith(word) and len(word) >= min(minimum, len(keyword))


# Sample device line: "show interfaces Gi0/1" -> type "Gi", number "0/1" (GigabitEthernet0/1)
_INTERFACE = re.compile(r"^([a-z][a-z-]*)(\d[\d/.:]*)$")


def _abbreviates(typed: str, word: str) -> bool:
    """``typed`` is a prefix of ``word``, or an abbreviated interface name (``gi0/1``)."""
    if word.startswith(typed):
        return True
    short, full = _INTERFACE.match(typed), _INTERFACE.match(word)
    return bool(short and full and full.group(1).startswith(short.group(1)) and short[2] == full[2])


def _decode_stem(filename: str) -> list[str]:
    """Commands a file name may stand for (the emulator's own vocabulary, never used to look up)."""
    stem = filename.removesuffix(".txt")
    stems = [stem]
    unsampled = _SAMPLE_SUFFIX.sub("", stem)
    if unsampled != stem:
        stems.append(unsampled)
    decoded = []
    for item in stems:
        text = item.replace("_", " ").replace("%2F", "/").replace("%7C", "|").replace("%25", "%")
        decoded.append(text.partition("|")[0].strip())
    return decoded


# -- debugs, clears and ping: the state the intrusive steps change ------------------------------

#: ``debug crypto <flag>`` keywords the emulator knows, and how IOS names them when it answers.
DEBUG_FLAGS: dict[str, str] = {
    "isakmp": "Crypto ISAKMP",
    "ipsec": "Crypto IPSEC",
    "engine": "Crypto Engine",
    "ikev2": "IKEv2 default",  # `debug crypto ikev2` (IOS 15.1+, IOS-XE): its default level
}

#: Outputs that a clear empties until the tunnel is renegotiated (encoded file-name stems).
_SA_OUTPUT_STEMS = (
    "show_crypto_isakmp_sa",
    "show_crypto_ipsec_sa",
    "show_crypto_engine_connections",
    "show_crypto_session",
)
_ACL_OUTPUT_STEMS = ("show_access-lists", "show_ip_access-lists")

# Sample device line: "*Nov 23 10:14:58.246: ISAKMP:(0): SA request profile is (NULL)"
# Sample device line: "000123: *Nov 23 10:14:58.246: %CRYPTO-6-IKMP_MODE_FAILURE: Processing ..."
# Sample device line: "00:24:30: IPSEC(sa_request): ,"
# Sample device line: "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 10.2.2.1 failed its sanity"
_MESSAGE_START = re.compile(
    r"^(?:\d+:\s+)?[*.]?(?:(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2})\s+)?"
    r"(?P<time>\d{1,2}:\d{2}:\d{2}(?:\.\d+)?):|^%[A-Z]"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Sample device line: "    Buffer logging:  level debugging, 1389 messages logged, xml disabled,"
_BUFFER_COUNT = re.compile(r"(Buffer logging:\s+level\s+\w+,\s+)(\d+)(\s+messages? logged)")
# Sample device line: "    Buffer logging:  level informational, 12 messages logged, xml disabled,"
# Sample device line: "    Buffer logging:  disabled, xml disabled,"
_BUFFER_LEVEL = re.compile(r"Buffer logging:\s+(?:level\s+(?P<level>\w+)|(?P<off>disabled))")
# Sample device line: "  Internet address is 192.168.1.1/24"
_INTERNET_ADDRESS = re.compile(r"Internet address is (\d+\.\d+\.\d+\.\d+)/\d+")
# Sample device line: "    10 permit ip 192.168.1.0 0.0.0.255 192.168.2.0 0.0.0.255 (1528 matches)"
# Sample device line: "    20 permit icmp host 192.168.1.1 any"
_ACL_LINE = re.compile(
    r"^(?P<head>\s*(?:\d+\s+)?permit\s+(?:ip|icmp)\s+)(?P<specs>.+?)"
    r"(?:\s+\((?P<hits>\d+) matches?\))?\s*$"
)
# Sample device line: "10.2.2.1        10.1.1.1        QM_IDLE           1001 ACTIVE" -> 2 addresses
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")

_EMPTY_LOG = """\
Syslog logging: enabled (0 messages dropped, 0 messages rate-limited, 0 flushes, 0 overruns, \
xml disabled, filtering disabled)

    Console logging: disabled
    Monitor logging: level debugging, 0 messages logged, xml disabled,
                     filtering disabled
    Buffer logging:  level debugging, 0 messages logged, xml disabled,
                    filtering disabled

Log Buffer (8192 bytes):

"""

#: The extended-ping dialog of IOS 15: (prompt, default answer, key of the one-line form).
PING_DIALOG: tuple[tuple[str, str, str], ...] = (
    ("Protocol [ip]: ", "ip", "protocol"),
    ("Target IP address: ", "", "target"),
    ("Repeat count [5]: ", "5", "repeat"),
    ("Datagram size [100]: ", "100", "size"),
    ("Timeout in seconds [2]: ", "2", "timeout"),
    ("Extended commands [n]: ", "n", "extended"),
)
PING_EXTENDED_DIALOG: tuple[tuple[str, str, str], ...] = (
    ("Ingress ping [n]: ", "n", ""),
    ("Source address or interface: ", "", "source"),
    ("DSCP Value [0]: ", "0", ""),
    ("Type of service [0]: ", "0", ""),
    ("Set DF bit in IP header? [no]: ", "no", ""),
    ("Validate reply data? [no]: ", "no", ""),
    ("Data pattern [0x0000ABCD]: ", "0x0000ABCD", ""),
    ("Loose, Strict, Record, Timestamp, Verbose[none]: ", "none", ""),
    ("Sweep range of sizes [n]: ", "n", ""),
)


def ping_command_from_dialog(answers: Mapping[str, str]) -> str:
    """The one-line ``ping`` equivalent to the answers of the extended-ping dialog."""
    parts = ["ping", answers.get("target", "").strip()]
    for key in ("source", "repeat", "size", "timeout"):
        value = answers.get(key, "").strip()
        if value:
            parts += [key, value]
    return " ".join(part for part in parts if part)


@dataclass
class DebugState:
    """What debugging a device has on: global on IOS, so it outlives the SSH session.

    ``flags`` holds the debugs as typed after ``debug`` (``crypto isakmp``); ``conditions`` the
    crypto debug conditions (``peer ipv4 10.2.2.1``). ``undebug all`` clears the flags but not
    the conditions, as on IOS: those go only with ``no debug crypto condition ...``.
    """

    flags: set[str] = field(default_factory=set)
    conditions: set[str] = field(default_factory=set)

    @property
    def clean(self) -> bool:
        """Nothing left on: no debug and no condition."""
        return not self.flags and not self.conditions

    def describe(self) -> str:
        parts = [f"debug {flag}" for flag in sorted(self.flags)]
        parts += [f"debug crypto condition {cond}" for cond in sorted(self.conditions)]
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class _DebugMessage:
    flag: str  # the debug flag that prints it ("crypto isakmp")
    text: str  # one message: its first line and any continuation lines
    key: tuple[int, int, str]  # (month, day, time) to merge the debug files in time order


def _split_messages(text: str, flag: str) -> list[_DebugMessage]:
    """One message per timestamped (or ``%``) line, with its untimestamped continuation lines."""
    messages: list[tuple[str, tuple[int, int, str]]] = []
    key = (0, 0, "")
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        match = _MESSAGE_START.match(line)
        if match is None and messages:
            messages[-1] = (messages[-1][0] + "\n" + line, messages[-1][1])
            continue
        if match is not None and match.group("time"):
            month = match.group("mon") or ""
            key = (
                _MONTHS.index(month) + 1 if month in _MONTHS else 0,
                int(match.group("day") or 0),
                match.group("time").rjust(12, "0"),
            )
        messages.append((line, key))
    return [_DebugMessage(flag, body, when) for body, when in messages]


def _acl_spec(tokens: list[str]) -> tuple[ipaddress.IPv4Network | None, list[str]] | None:
    """The network of one ACL address spec (``any``, ``host A``, ``A W``) and the rest."""
    if not tokens:
        return None
    if tokens[0] == "any":
        return None, tokens[1:]
    try:
        if tokens[0] == "host" and len(tokens) >= 2:
            return ipaddress.IPv4Network(tokens[1]), tokens[2:]
        if len(tokens) >= 2:
            return ipaddress.IPv4Network(f"{tokens[0]}/{tokens[1]}", strict=False), tokens[2:]
    except ValueError:
        return None
    return None


def _acl_destination_matches(specs: str, target: ipaddress.IPv4Address) -> bool:
    """Whether the destination of an ACL line's ``source destination`` specs holds ``target``."""
    tokens = specs.split()
    source = _acl_spec(tokens)
    if source is None:
        return False
    destination = _acl_spec(source[1])
    if destination is None:
        return False
    network = destination[0]
    return network is None or target in network


class EmulatedDevice:
    """One router's answers: files, plan fallbacks, sample counters and behaviour."""

    def __init__(self, config: DeviceConfig, behaviour: DeviceBehaviour | None = None) -> None:
        self.config = config
        self.behaviour = behaviour or DeviceBehaviour()
        self._patterns, self._wider = _plan_commands(config.platform)
        self._counts: dict[str, int] = {}
        self._vocabulary: list[tuple[str, ...]] | None = None
        self._candidate_cache: dict[tuple[str, int], list[str]] = {}
        self._texts: dict[str, tuple[tuple[int, int], str]] = {}  # file name -> (stat, text)
        self._max_sample = 1
        self.files: frozenset[str] = frozenset()
        self._monitors: list[Callable[[str], None]] = []
        self._push_timer: asyncio.TimerHandle | None = None
        self._debug_changed = threading.Condition()
        self.reset_intrusive()
        self.reload()

    @property
    def name(self) -> str:
        return self.config.name

    def reload(self) -> None:
        """Re-read the list of files of the device directory."""
        try:
            self.files = frozenset(
                entry.name
                for entry in self.config.directory.iterdir()
                if entry.name.endswith(".txt") and entry.is_file()
            )
        except OSError as exc:
            raise LabError(f"{self.config.directory}: cannot list device files: {exc}") from exc
        self._vocabulary = None
        self._candidate_cache.clear()
        # An upper bound of the samples on disk (an address such as "10.2.2.254" may inflate it).
        suffixes = [_SAMPLE_SUFFIX.search(name.removesuffix(".txt")) for name in self.files]
        self._max_sample = max([int(m.group()[1:]) for m in suffixes if m] + [1])

    def reset(self) -> None:
        """Forget how often each command was run: the next run serves sample 1 again."""
        self._counts.clear()

    def check_login(self, username: str, password: str) -> bool:
        if self.behaviour.refuse_login:
            return False
        return username == self.config.username and password == self.config.password

    def check_secret(self, secret: str) -> bool:
        return secret == self.config.secret

    # -- command answering -------------------------------------------------------------------

    def run(self, line: str, privileged: bool) -> CommandResult:
        """Answer one command line typed at the ``#`` (privileged) or ``>`` prompt."""
        # Sample device line: "show crypto ipsec sa peer 10.2.2.1 | include pkts" -> 6 words
        words = [(m.start(), m.group()) for m in re.finditer(r"\S+", line.partition("|")[0])]
        if not words:
            return CommandResult()
        typed = [word for _, word in words]
        builtin = self._builtin(typed, privileged)
        if builtin is not None:
            return builtin
        if not privileged:
            for keywords in _PRIVILEGED_ONLY:
                if len(typed) >= len(keywords) and all(
                    _prefix_of(word, keyword)
                    for word, keyword in zip(typed, keywords, strict=False)
                ):
                    return CommandResult(accepted=False, caret=words[len(keywords) - 1][0])
        intrusive = self._intrusive(line, typed, words)
        if intrusive is not None:
            return intrusive
        self._tick()
        if len(typed) == 2 and _prefix_of(typed[0], "show") and _prefix_of(typed[1], "logging", 3):
            return self._show_logging(line)
        return self._adjusted(self._answer(line, typed, words))

    def _answer(self, line: str, typed: list[str], words: list[tuple[int, str]]) -> CommandResult:
        command = normalize_command(line)
        answer = self._serve(command)
        if answer is not None:
            return answer
        expanded, problem = self._expand(typed)
        if expanded is not None:
            base, _ = split_output_filter(command)
            full = " ".join(expanded) + command[len(base) :]
            if full != command:
                answer = self._serve(full)
                if answer is not None:
                    return answer
            return CommandResult(accepted=False, caret=words[-1][0])
        kind, index = problem or ("invalid", len(words) - 1)
        if kind == "ambiguous":
            return CommandResult(output=f'% Ambiguous command:  "{command}"\n', accepted=False)
        if kind == "incomplete":
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        return CommandResult(accepted=False, caret=words[min(index, len(words) - 1)][0])

    def _builtin(self, typed: list[str], privileged: bool) -> CommandResult | None:
        if _prefix_of(typed[0], "terminal", 3):
            return CommandResult()
        if len(typed) == 2 and _prefix_of(typed[0], "show") and _prefix_of(typed[1], "privilege"):
            return CommandResult(output=f"Current privilege level is {15 if privileged else 1}\n")
        undebug = len(typed) == 2 and _prefix_of(typed[0], "undebug", 3)
        no_debug = len(typed) == 3 and typed[0] == "no" and _prefix_of(typed[1], "debug", 3)
        if privileged and (undebug or no_debug) and _prefix_of(typed[-1], "all", 1):
            self.history.append(" ".join(typed))
            self.debug_state.flags.clear()  # conditions stay, as on IOS
            self._debug_state_changed()
            return CommandResult(output="All possible debugging has been turned off\n")
        return None

    # -- debugs, clears, ping ----------------------------------------------------------------

    def reset_intrusive(self) -> None:
        """Forget debugs, conditions, clears, pings and released log lines (a fresh router)."""
        self.debug_state = DebugState()
        self.history: list[str] = []
        self._log_lines: list[str] = []
        self._log_messages = 0
        self._episode: list[_DebugMessage] = []
        self._episode_pos = 0
        self._episode_pending = False
        self._episode_peers: frozenset[str] = frozenset()
        self._cleared_left: int | None = None  # SA outputs still served empty; -1: forever
        self._ping_hits: list[tuple[ipaddress.IPv4Address, int]] = []

    def wait_for_debug(self, predicate: Callable[[DebugState], bool], timeout: float) -> bool:
        """Block until ``predicate(debug_state)`` holds (True) or ``timeout`` seconds pass.

        For tests in another thread or process driver: wakes on every debug state change.
        """
        with self._debug_changed:
            return self._debug_changed.wait_for(lambda: predicate(self.debug_state), timeout)

    def _debug_state_changed(self) -> None:
        with self._debug_changed:
            self._debug_changed.notify_all()

    def add_monitor(self, write: Callable[[str], None]) -> None:
        """Register a ``terminal monitor`` session: ``write`` gets each released debug line."""
        self._monitors.append(write)
        self._schedule_monitor_push()

    def remove_monitor(self, write: Callable[[str], None]) -> None:
        with contextlib.suppress(ValueError):
            self._monitors.remove(write)

    @property
    def log_lines(self) -> tuple[str, ...]:
        """Debug lines released into the logging buffer so far (in order)."""
        return tuple(self._log_lines)

    @property
    def negotiation_pending(self) -> bool:
        """Debug messages of a negotiation are still waiting to be printed."""
        return self._episode_pending or self._episode_pos < len(self._episode)

    def _debug_files(self) -> dict[str, str]:
        """``{flag: file name}`` of the debug output files this device has."""
        found: dict[str, str] = {}
        for flag in DEBUG_FLAGS:
            name = command_filename(f"debug crypto {flag}")
            if name in self.files:
                found[f"crypto {flag}"] = name
        return found

    def _start_negotiation(self, *, restart: bool) -> None:
        """Interesting traffic or a clear: the debug files' messages will be printed again."""
        if not self._debug_files():
            return
        if not restart and self.negotiation_pending:
            return
        self._episode_pending = True
        self._schedule_monitor_push()

    def _compose_episode(self) -> None:
        messages: list[_DebugMessage] = []
        text = []
        for flag, name in self._debug_files().items():
            body = self._read(name, "")
            text.append(body)
            messages.extend(_split_messages(body, flag))
        messages.sort(key=lambda message: message.key)  # stable: file order within a second
        self._episode = messages
        self._episode_pos = 0
        self._episode_pending = False
        self._episode_peers = frozenset(_IPV4.findall("\n".join(text)))

    def _tick(self) -> None:
        """Time passes (a command was answered): release the next burst of debug messages."""
        if self._episode_pending:
            self._compose_episode()
        if self._episode_pos >= len(self._episode):
            return
        burst = self._episode[
            self._episode_pos : self._episode_pos + max(1, self.behaviour.debug_burst)
        ]
        self._episode_pos += len(burst)
        printed = [m for m in burst if self._prints(m)]
        if not printed:
            return
        if self._buffer_takes_debugs():
            for message in printed:
                self._log_lines.extend(message.text.split("\n"))
                self._log_messages += 1
        lines = [line for message in printed for line in message.text.split("\n")]
        for write in list(self._monitors):
            write("\n".join(lines) + "\n")

    def _prints(self, message: _DebugMessage) -> bool:
        """A message is printed if its debug is on and no condition filters its peer out."""
        state = self.debug_state
        if message.flag not in state.flags and "all" not in state.flags:
            return False
        if not state.conditions:
            return True
        wanted = {cond.split()[-1] for cond in state.conditions if cond.startswith("peer ")}
        return bool(wanted & self._episode_peers)

    def _buffer_takes_debugs(self) -> bool:
        """Whether ``logging buffered`` is at level debugging (as the show logging file says)."""
        name = command_filename("show logging")
        if name not in self.files:
            return True
        match = _BUFFER_LEVEL.search(self._read(name, "show logging"))
        if match is None:
            return True
        return match.group("off") is None and match.group("level") == "debugging"

    def _schedule_monitor_push(self) -> None:
        if not self._monitors or self._push_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the lab's loop (a unit test): nothing to push
            return
        self._push_timer = loop.call_later(self.behaviour.debug_interval, self._monitor_push)

    def _monitor_push(self) -> None:
        self._push_timer = None
        if not self._monitors or not self.negotiation_pending:
            return
        self._tick()
        self._schedule_monitor_push()

    def _show_logging(self, line: str) -> CommandResult:
        """``show logging``: the file's text plus the debug lines released so far."""
        _, output_filter = split_output_filter(normalize_command(line))
        answer = self._serve("show logging")
        text = answer.output if answer is not None else _EMPTY_LOG
        if self._log_lines:
            text = _BUFFER_COUNT.sub(
                lambda m: f"{m.group(1)}{int(m.group(2)) + self._log_messages}{m.group(3)}", text
            )
            text = text.rstrip("\n") + "\n" + "\n".join(self._log_lines) + "\n"
        if output_filter is not None:
            text = apply_output_filter(text, output_filter)
        return CommandResult(
            output=text,
            filename=answer.filename if answer is not None else None,
            sample=answer.sample if answer is not None else 0,
        )

    def _intrusive(
        self, line: str, typed: list[str], words: list[tuple[int, str]]
    ) -> CommandResult | None:
        """Debug, undebug, show debugging, clear and ping; None for any other command."""
        first = typed[0].lower()
        if _prefix_of(first, "debug", 3):
            return self._debug(words[1:], on=True, line=line)
        if _prefix_of(first, "undebug", 3):
            return self._debug(words[1:], on=False, line=line)
        if first == "no" and len(typed) > 1 and _prefix_of(typed[1], "debug", 3):
            return self._debug(words[2:], on=False, line=line)
        if len(typed) == 2 and _prefix_of(first, "show") and _prefix_of(typed[1], "debugging", 3):
            return CommandResult(output=self._show_debugging())
        if _prefix_of(first, "clear", 3):
            return self._clear(words[1:], line=line)
        if _prefix_of(first, "ping", 2):
            return self._ping(words[1:], line=line)
        return None

    def _debug(self, words: list[tuple[int, str]], *, on: bool, line: str) -> CommandResult:
        """``debug crypto isakmp|ipsec|engine|condition ...`` and their ``no`` / ``undebug``."""
        typed = [word.lower() for _, word in words]
        if not typed:
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        if on and len(typed) == 1 and typed[0] == "all":
            self.history.append(normalize_command(line))
            self.debug_state.flags.add("all")
            self._debug_state_changed()
            return CommandResult(output="This may severely impact network performance.\n")
        if not _prefix_of(typed[0], "crypto", 3):
            return CommandResult(accepted=False, caret=words[0][0])
        if len(typed) < 2:
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        if _prefix_of(typed[1], "condition", 4):
            return self._debug_condition(words[2:], on=on, line=line)
        flag = next((f for f in DEBUG_FLAGS if _prefix_of(typed[1], f, 3)), None)
        if flag is None:
            return CommandResult(accepted=False, caret=words[1][0])
        self.history.append(normalize_command(line))
        name = f"crypto {flag}"
        if on:
            was_quiet = not any(f.startswith("crypto ") for f in self.debug_state.flags)
            self.debug_state.flags.add(name)
            if was_quiet and self.behaviour.debug_autostart:
                self._start_negotiation(restart=False)
        else:
            self.debug_state.flags.discard(name)
        self._debug_state_changed()
        return CommandResult(output=f"{DEBUG_FLAGS[flag]} debugging is {'on' if on else 'off'}\n")

    def _debug_condition(
        self, words: list[tuple[int, str]], *, on: bool, line: str
    ) -> CommandResult:
        typed = [word.lower() for _, word in words]
        if typed in (["reset"], ["all"]):
            if on and typed == ["all"]:
                return CommandResult(accepted=False, caret=words[0][0])
            self.history.append(normalize_command(line))
            self.debug_state.conditions.clear()
            self._debug_state_changed()
            return CommandResult()
        if not typed or not _prefix_of(typed[0], "peer", 2):
            if not typed:
                return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
            return CommandResult(accepted=False, caret=words[0][0])
        if len(typed) < 3:
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        family = "ipv4" if _prefix_of(typed[1], "ipv4", 3) else None
        family = family or ("ipv6" if _prefix_of(typed[1], "ipv6", 3) else None)
        if family is None:
            return CommandResult(accepted=False, caret=words[1][0])
        try:
            address = ipaddress.ip_address(typed[2])
        except ValueError:
            return CommandResult(accepted=False, caret=words[2][0])
        if len(typed) > 3 or f"ipv{address.version}" != family:
            return CommandResult(accepted=False, caret=words[min(3, len(words) - 1)][0])
        self.history.append(normalize_command(line))
        condition = f"peer {family} {address}"
        if on:
            self.debug_state.conditions.add(condition)
        else:
            self.debug_state.conditions.discard(condition)
        self._debug_state_changed()
        return CommandResult()

    def _show_debugging(self) -> str:
        """``show debugging`` as IOS 15 prints the crypto part of it."""
        state = self.debug_state
        lines: list[str] = []
        crypto = sorted(f for f in state.flags if f.startswith("crypto "))
        if crypto:
            lines.append("Cryptographic Subsystem:")
            lines += [f"  {DEBUG_FLAGS[f.split()[1]]} debugging is on" for f in crypto]
            lines.append("")
        if "all" in state.flags:
            lines += ["All possible debugging is on", ""]
        if state.conditions:
            lines += [
                "Crypto conditional debug currently is turned ON",
                "IKE debug context unmatched flag:OFF",
                "IPsec debug context unmatched flag:OFF",
                "Crypto Engine debug context unmatched flag:OFF",
                "IKE peer IP address filters:",
            ]
            lines += [cond.split()[-1] + " " for cond in sorted(state.conditions)]
            lines.append("")
        return "\n".join(lines) + ("\n" if lines else "")

    def _clear(self, words: list[tuple[int, str]], *, line: str) -> CommandResult:
        """``clear crypto sa [peer X]``, ``clear crypto isakmp [N]``, ``clear crypto session``.

        A clear that concerns the tunnel of the ``show crypto isakmp sa`` file (unscoped, or
        naming its peer or one of its conn-ids) empties the SA outputs for
        ``behaviour.clear_recovery`` answers and restarts a negotiation when debugs are on.
        """
        typed = [word.lower() for _, word in words]
        if not typed:
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        if not _prefix_of(typed[0], "crypto", 3):
            return CommandResult(accepted=False, caret=words[0][0])
        if len(typed) < 2:
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        what, rest = typed[1], typed[2:]
        isakmp_text = self._read(command_filename("show crypto isakmp sa"), "show crypto isakmp sa")
        if _prefix_of(what, "sa", 2) or _prefix_of(what, "session", 4):
            if rest:
                keyword = "peer" if _prefix_of(what, "sa", 2) else "remote"
                if len(rest) != 2 or not _prefix_of(rest[0], keyword, 2):
                    return CommandResult(accepted=False, caret=words[2][0])
                try:
                    ipaddress.ip_address(rest[1])
                except ValueError:
                    return CommandResult(accepted=False, caret=words[3][0])
                affects = rest[1] in _IPV4.findall(isakmp_text) or not isakmp_text
            else:
                affects = True
        elif _prefix_of(what, "isakmp", 3):
            if len(rest) > 1 or (rest and not rest[0].isdigit()):
                return CommandResult(accepted=False, caret=words[2][0])
            # Sample device line: "10.2.2.1        10.1.1.1        QM_IDLE           1001 ACTIVE"
            affects = not rest or re.search(rf"\s{rest[0]}\s", isakmp_text) is not None
        else:
            return CommandResult(accepted=False, caret=words[1][0])
        self.history.append(normalize_command(line))
        if affects:
            recovery = self.behaviour.clear_recovery
            self._cleared_left = -1 if recovery is None else max(0, recovery)
            if self.debug_state.flags:
                self._start_negotiation(restart=True)
        return CommandResult()

    def _ping(self, words: list[tuple[int, str]], *, line: str) -> CommandResult:
        """One-line ``ping [vrf V] [ip] A [source X] [repeat N] [size N] [timeout N] ...``."""
        typed = [word for _, word in words]
        if not typed:
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        options: dict[str, str] = {}
        index = 0
        if typed[0].lower() == "vrf" and len(typed) >= 2:
            options["vrf"] = typed[1]
            index = 2
        if index < len(typed) and typed[index].lower() == "ip":
            index += 1
        if index >= len(typed):
            return CommandResult(output=INCOMPLETE + "\n\n", accepted=False)
        target_text = typed[index]
        index += 1
        valued = ("source", "repeat", "size", "timeout", "data", "tos", "vrf")
        flags = ("df-bit", "validate", "verbose")
        while index < len(typed):
            word = typed[index].lower()
            key = next((k for k in valued if _prefix_of(word, k, 2)), None)
            if key is not None and index + 1 < len(typed):
                options[key] = typed[index + 1]
                index += 2
            elif any(_prefix_of(word, f, 2) for f in flags):
                index += 1
            else:
                return CommandResult(accepted=False, caret=words[index][0])
        try:
            target = ipaddress.IPv4Address(target_text)
        except ValueError:
            return CommandResult(
                output="% Unrecognized host or address, or protocol not running.\n\n"
            )
        try:
            count = int(options.get("repeat", "5"))
            size = int(options.get("size", "100"))
            timeout = int(options.get("timeout", "2"))
        except ValueError:
            return CommandResult(accepted=False, caret=words[-1][0])
        self.history.append(normalize_command(line))
        self._ping_hits.append((target, count))
        self._tick()  # the echoes take time
        if self.debug_state.flags:
            self._start_negotiation(restart=False)
        exact = self._serve(normalize_command(line))
        if exact is not None:
            return exact
        marks = (self.behaviour.ping_replies or "!") * (
            count // max(1, len(self.behaviour.ping_replies or "!")) + 1
        )
        marks = marks[:count]
        ok = marks.count("!")
        lines = [
            "Type escape sequence to abort.",
            f"Sending {count}, {size}-byte ICMP Echos to {target}, timeout is {timeout} seconds:",
        ]
        source = options.get("source")
        if source is not None:
            address = self._source_address(source)
            if address:
                lines.append(f"Packet sent with a source address of {address} ")
        lines.append(marks)
        rate = f"Success rate is {ok * 100 // count if count else 0} percent ({ok}/{count})"
        lines.append(rate + (", round-trip min/avg/max = 1/2/4 ms" if ok else ""))
        return CommandResult(output="\n".join(lines) + "\n")

    def _source_address(self, source: str) -> str:
        try:
            return str(ipaddress.IPv4Address(source))
        except ValueError:
            pass
        for name in self.files:
            if name.startswith("show_interfaces_") or name.startswith("show_ip_interface_"):
                for command in _decode_stem(name):
                    interface = command.split()[-1]
                    if interface.lower() == source.lower() or _abbreviates(
                        source.lower(), interface.lower()
                    ):
                        match = _INTERNET_ADDRESS.search(self._read(name, command))
                        if match:
                            return match.group(1)
        return ""

    def _adjusted(self, result: CommandResult) -> CommandResult:
        """An answer from the files as the intrusive steps changed it (clears, ping hits)."""
        name = result.filename or ""
        if self._cleared_left is not None and name.startswith(_SA_OUTPUT_STEMS):
            stem = _SAMPLE_SUFFIX.sub("", name.removesuffix(".txt"))
            after = f"{stem}.after-clear.txt"
            if after in self.files:
                text = self._read(after, "")
            elif stem.startswith("show_crypto_ipsec_sa"):
                text = ""
            else:  # the table's header: the lines that name no address
                text = "".join(
                    f"{row}\n" for row in result.output.split("\n")[:-1] if not _IPV4.search(row)
                )
            if self._cleared_left > 0:
                self._cleared_left -= 1
            if self._cleared_left == 0:
                self._cleared_left = None
            return replace(result, output=text, filename=after if after in self.files else None)
        if self._ping_hits and name.startswith(_ACL_OUTPUT_STEMS):
            return replace(result, output=self._with_ping_hits(result.output))
        return result

    def _with_ping_hits(self, text: str) -> str:
        out: list[str] = []
        for row in text.split("\n"):
            match = _ACL_LINE.match(row)
            if match is not None:
                extra = sum(
                    count
                    for target, count in self._ping_hits
                    if _acl_destination_matches(match.group("specs"), target)
                )
                if extra:
                    hits = int(match.group("hits") or 0) + extra
                    row = f"{match.group('head')}{match.group('specs')} ({hits} matches)"
            out.append(row)
        return "\n".join(out)

    def _serve(self, command: str) -> CommandResult | None:
        """The answer from the files to a complete command, counting the sample; None if none."""
        key = command.lower()
        sample = self._counts.get(key, 0) + 1
        found = self._find([command], sample, filtered=False)
        base, output_filter = split_output_filter(command)
        if found is None and output_filter is not None and base:
            found = self._find([base], sample, filtered=True)
        if found is None:
            return None
        filename, served_sample, needs_filter = found
        self._counts[key] = sample
        text = self._read(filename, base)
        if needs_filter:
            text = apply_output_filter(text, output_filter)
        return CommandResult(output=text, filename=filename, sample=served_sample)

    def _find(
        self, commands: Sequence[str], sample: int, *, filtered: bool
    ) -> tuple[str, int, bool] | None:
        for current in range(min(sample, self._max_sample), 0, -1):
            for command in commands:
                for name in self._candidates(command, current):
                    if name in self.files:
                        return name, current, filtered
        return None

    def _candidates(self, command: str, sample: int) -> list[str]:
        key = (command, sample)
        names = self._candidate_cache.get(key)
        if names is None:
            if len(self._candidate_cache) >= _CANDIDATE_CACHE_SIZE:
                self._candidate_cache.clear()
            names = candidate_filenames(command, sample, self._wider, strip_filter=False)
            self._candidate_cache[key] = names
        return names

    def _read(self, filename: str, command: str) -> str:
        path = self.config.directory / filename
        try:
            stat = os.stat(path)
            cached = self._texts.get(filename)
            if cached is not None and cached[0] == (stat.st_mtime_ns, stat.st_size):
                text = cached[1]  # unchanged since it was last served (a test may edit it)
            else:
                text = path.read_text(encoding="utf-8", errors="replace")
                self._texts[filename] = ((stat.st_mtime_ns, stat.st_size), text)
        except OSError:
            return ""
        text = strip_echo(text, command)
        lines = text.split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and _TRAILING_PROMPT.match(lines[-1].strip()):
            lines.pop()
        return "\n".join(lines) + "\n" if lines else ""

    # -- abbreviations -----------------------------------------------------------------------

    def vocabulary(self) -> list[tuple[str, ...]]:
        """Word sequences of the commands this device knows (files, plan, built-ins)."""
        if self._vocabulary is None:
            known: set[tuple[str, ...]] = set(_BUILTIN_COMMANDS)
            for filename in self.files:
                if ".after-clear." in filename:
                    continue
                for command in _decode_stem(filename):
                    if command:
                        known.add(tuple(command.split()))
            for pattern in self._patterns:
                known.add(tuple(pattern.split()))
            for _pattern, wider in self._wider:
                known.update(tuple(item.split()) for item in wider)
            self._vocabulary = sorted(known)
        return self._vocabulary

    def _expand(self, typed: list[str]) -> tuple[list[str] | None, tuple[str, int] | None]:
        """Typed words with abbreviated keywords completed, or the problem and its word index."""
        candidates = self.vocabulary()
        expanded: list[str] = []
        for index, word in enumerate(typed):
            lower = word.lower()
            following = [c for c in candidates if len(c) > index]
            literals = {c[index] for c in following if not c[index].startswith("{")}
            exact = [lit for lit in literals if lit.lower() == lower]
            prefixed = sorted({lit for lit in literals if _abbreviates(lower, lit.lower())})
            if exact:
                choice = exact[0]
                following = [c for c in following if c[index] == choice or c[index][0] == "{"]
            elif len(prefixed) == 1:
                choice = prefixed[0]
                following = [c for c in following if c[index] == choice or c[index][0] == "{"]
            elif any(c[index].startswith("{") for c in following):
                choice = word
                following = [c for c in following if c[index].startswith("{")]
            elif len(prefixed) > 1:
                return None, ("ambiguous", index)
            else:
                return None, ("invalid", index)
            expanded.append(choice)
            candidates = following
        if not any(len(c) == len(typed) for c in candidates):
            return None, ("incomplete", len(typed))
        return expanded, None


def load_devices(
    sources: Iterable[str | Path], *, qualify: bool | None = None
) -> dict[str, DeviceConfig]:
    """Device configs of scenario folders (``<scenario>/<device>/device.yaml``) or device folders.

    Devices are named after their directory; with ``qualify`` (default: only when two
    scenarios share a device name) every name is ``<scenario>.<device>``.
    """
    found: list[Path] = []
    for source in sources:
        root = Path(source)
        if (root / DEVICE_FILE).is_file():
            found.append(root)
            continue
        if not root.is_dir():
            raise LabError(f"{root}: not a scenario folder")
        devices = sorted(p for p in root.iterdir() if (p / DEVICE_FILE).is_file())
        if not devices:
            raise LabError(f"{root}: no <device>/{DEVICE_FILE} in this folder")
        found.extend(devices)
    plain = [path.name for path in found]
    if qualify is None:
        qualify = len(set(plain)) != len(plain)
    configs: dict[str, DeviceConfig] = {}
    for path in found:
        name = f"{path.parent.name}.{path.name}" if qualify else path.name
        if name in configs:
            raise LabError(f"{path}: device name {name!r} is used twice")
        configs[name] = load_device_config(path, name)
    return configs


# -- SSH ------------------------------------------------------------------------------------------

_host_key_lock = threading.Lock()
_host_key: asyncssh.SSHKey | None = None


def host_key() -> asyncssh.SSHKey:
    """The lab's host key, generated once per process and shared by every device."""
    global _host_key
    with _host_key_lock:
        if _host_key is None:
            _host_key = asyncssh.generate_private_key(HOST_KEY_ALGORITHM)
        return _host_key


class CliSession(asyncssh.SSHServerSession[str]):
    """One interactive IOS EXEC session on a PTY (or one ``ssh host command`` exec request)."""

    def __init__(self, device: EmulatedDevice) -> None:
        self._device = device
        self._chan: asyncssh.SSHServerChannel[str] | None = None
        self._privileged = False
        self._awaiting_secret = False
        self._line: list[str] = []
        self._pending = ""
        self._last_cr = False
        self._busy = False
        self._closed = False
        self._out: list[str] = []
        self._exec_command: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._monitor = False  # `terminal monitor`: released debug lines are written here
        self._dialog: list[tuple[str, str, str]] = []  # extended-ping prompts still to ask
        self._answers: dict[str, str] = {}

    # asyncssh callbacks

    def connection_made(self, chan: asyncssh.SSHServerChannel[str]) -> None:
        self._chan = chan

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._exec_command = command
        return True

    def session_started(self) -> None:
        if self._exec_command is not None:
            result = self._device.run(self._exec_command, privileged=False)
            self._out.append(self._render(result, self._exec_command))
            self._flush()
            self._exit()
            return
        self._out.append("\r\n" + self._prompt())
        self._flush()

    def data_received(self, data: str, datatype: asyncssh.DataType) -> None:
        self._pending += data
        self._pump()

    def eof_received(self) -> bool:
        self._exit()
        return False

    def break_received(self, msec: int) -> bool:
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._set_monitor(False)
        if self._timer is not None:
            self._timer.cancel()

    # CLI

    def _prompt(self) -> str:
        return self._device.config.hostname + ("#" if self._privileged else ">")

    def _flush(self) -> None:
        if self._out and self._chan is not None and not self._closed:
            self._chan.write("".join(self._out))
        self._out.clear()

    def _exit(self) -> None:
        if not self._closed and self._chan is not None:
            self._closed = True
            self._flush()
            self._chan.exit(0)

    def _pump(self) -> None:
        """Consume typed characters until a command needs time (latency, hang) or input ends."""
        index = 0
        pending = self._pending
        while index < len(pending) and not self._busy and not self._closed:
            char = pending[index]
            index += 1
            if char == "\n" and self._last_cr:
                self._last_cr = False
                continue
            self._last_cr = char == "\r"
            if char in "\r\n":
                line = "".join(self._line)
                self._line.clear()
                self._out.append("\r\n")
                self._enter(line)
            elif char in "\x08\x7f":
                if self._line:
                    self._line.pop()
                    if not self._awaiting_secret:
                        self._out.append("\x08 \x08")
            elif char == "\x15":  # Ctrl-U: erase the line
                if not self._awaiting_secret:
                    self._out.append("\x08 \x08" * len(self._line))
                self._line.clear()
            elif char == "\x03":  # Ctrl-C: abandon the line
                self._line.clear()
                if not self._awaiting_secret:
                    self._out.append("\r\n" + self._prompt())
            elif char >= " " or char == "\t":
                self._line.append(char)
                if not self._awaiting_secret:
                    self._out.append(char)
        self._pending = pending[index:]
        self._flush()

    def _enter(self, line: str) -> None:
        """One complete line: a secret for ``enable``, a mode change, or a command."""
        if self._dialog:
            self._dialog_answer(line)
            return
        if self._awaiting_secret:
            self._awaiting_secret = False
            if self._device.check_secret(line):
                self._privileged = True
                self._out.append(self._prompt())
            else:
                self._out.append(f"{ACCESS_DENIED}\r\n\r\n{self._prompt()}")
            return
        words = line.split()
        first = words[0].lower() if words else ""
        if len(words) <= 2 and first and _prefix_of(first, "enable", 2):
            if self._privileged:
                self._out.append(self._prompt())
            elif not self._device.config.secret:
                self._privileged = True
                self._out.append(self._prompt())
            else:
                self._awaiting_secret = True
                self._out.append("Password: ")
            return
        if len(words) == 1 and _prefix_of(first, "disable", 4):
            self._privileged = False
            self._out.append(self._prompt())
            return
        if len(words) == 1 and (
            _prefix_of(first, "exit", 3) or _prefix_of(first, "logout", 4) or first == "quit"
        ):
            self._exit()
            return
        if len(words) == 1 and _prefix_of(first, "ping", 2):
            self._answers = {}
            self._dialog = list(PING_DIALOG)
            self._out.append(self._dialog[0][0])
            return
        if words and _prefix_of(first, "terminal", 3) and len(words) in (2, 3):
            if len(words) == 2 and _prefix_of(words[1].lower(), "monitor", 3):
                self._set_monitor(True)
            elif words[1].lower() == "no" and _prefix_of(words[-1].lower(), "monitor", 3):
                self._set_monitor(False)
        behaviour = self._device.behaviour
        if behaviour.drop_on and behaviour.drop_on in line:
            self._flush()
            self._closed = True
            if self._chan is not None:
                self._chan.get_connection().abort()
            return
        if behaviour.hang_on and behaviour.hang_on in line:
            self._busy = True
            return
        result = self._device.run(line, self._privileged)
        answer = self._render(result, line) + self._prompt()
        if behaviour.latency > 0 and words:
            self._busy = True
            self._flush()
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(behaviour.latency, self._answer_later, answer)
            return
        self._out.append(answer)

    def _set_monitor(self, on: bool) -> None:
        if on and not self._monitor:
            self._device.add_monitor(self._monitor_write)
        elif not on and self._monitor:
            self._device.remove_monitor(self._monitor_write)
        self._monitor = on

    def _monitor_write(self, text: str) -> None:
        """Debug lines arriving on a ``terminal monitor`` session, between prompts as on IOS."""
        if self._closed:
            return
        # Sample device output: "R1#\r\n*Nov 23 10:20:01.101: ISAKMP:(0): SA request ..." (IOS
        # moves off the prompt line first and does not print the prompt again)
        body = text.replace("\r\n", "\n").strip("\n").replace("\n", "\r\n")
        self._out.append("\r\n" + body)
        self._flush()

    def _dialog_answer(self, line: str) -> None:
        """One answer of the extended-ping dialog; the last one runs the ping."""
        _prompt, default, key = self._dialog.pop(0)
        value = line.strip() or default
        if key:
            self._answers[key] = value
        if key == "target" and not value:
            self._dialog = []
            self._out.append(f"% Bad IP address or host name\r\n{self._prompt()}")
            return
        if key == "extended" and value.lower().startswith("y"):
            self._dialog = list(PING_EXTENDED_DIALOG) + self._dialog
        if self._dialog:
            self._out.append(self._dialog[0][0])
            return
        command = ping_command_from_dialog(self._answers)
        result = self._device.run(command, self._privileged)
        self._out.append(self._render(result, command) + self._prompt())

    def _answer_later(self, answer: str) -> None:
        self._timer = None
        self._busy = False
        self._out.append(answer)
        self._pump()

    def _render(self, result: CommandResult, line: str) -> str:
        """Output text as the terminal shows it, ``\\r\\n`` line ends, without the prompt."""
        if not result.accepted and result.caret is not None:
            marker = " " * (len(self._prompt()) + result.caret) + "^"
            return f"{marker}\r\n{INVALID_INPUT}\r\n\r\n"
        return result.output.replace("\r\n", "\n").replace("\n", "\r\n")


class _DeviceServer(asyncssh.SSHServer):
    """Authentication and sessions for the device a connection arrived on (by local port)."""

    def __init__(self, lab: EmulatorLab) -> None:
        self._lab = lab
        self._device: EmulatedDevice | None = None
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        sock = conn.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockname = conn.get_extra_info("sockname")
        port = int(sockname[1]) if sockname else 0
        self._device = self._lab.device_on_port(port)
        self._lab._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._lab._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._device is not None and self._device.check_login(username, password)

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username: str, responses: Sequence[str]) -> bool:
        return len(responses) == 1 and self.validate_password(username, responses[0])

    def session_requested(self) -> asyncssh.SSHServerSession[str] | bool:
        if self._device is None:
            return False
        return CliSession(self._device)


# -- the lab --------------------------------------------------------------------------------------


class EmulatorLab:
    """Emulated devices of one or more scenario folders, one SSH listener each, on one loop."""

    def __init__(
        self,
        sources: Iterable[str | Path],
        *,
        host: str = "127.0.0.1",
        behaviour: DeviceBehaviour | None = None,
        behaviours: Mapping[str, DeviceBehaviour] | None = None,
        qualify: bool | None = None,
    ) -> None:
        self.host = host
        configs = load_devices(sources, qualify=qualify)
        behaviours = behaviours or {}
        unknown = set(behaviours) - set(configs)
        if unknown:
            raise LabError(f"behaviour for unknown devices: {', '.join(sorted(unknown))}")
        self.devices: dict[str, EmulatedDevice] = {
            name: EmulatedDevice(
                config, behaviours.get(name) or replace(behaviour or DeviceBehaviour())
            )
            for name, config in configs.items()
        }
        self.ports: dict[str, int] = {}
        self._by_port: dict[int, EmulatedDevice] = {}
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # lookups

    def device(self, name: str) -> EmulatedDevice:
        try:
            return self.devices[name]
        except KeyError:
            raise LabError(f"no device {name!r} in the lab") from None

    def device_on_port(self, port: int) -> EmulatedDevice | None:
        return self._by_port.get(port)

    def address(self, name: str) -> tuple[str, int]:
        return self.host, self.ports[name]

    @property
    def running(self) -> bool:
        return bool(self._acceptors)

    def reset(self) -> None:
        """Restart every device's sample counters."""
        for device in self.devices.values():
            device.reset()

    def leftover_debugs(self) -> dict[str, str]:
        """``{device: what is still on}`` for every device with a debug or condition left on."""
        return {
            name: device.debug_state.describe()
            for name, device in self.devices.items()
            if not device.debug_state.clean
        }

    def assert_debugs_off(self) -> None:
        """Raise ``AssertionError`` naming each device that still has a debug or condition on."""
        left = self.leftover_debugs()
        if left:
            listing = "; ".join(f"{name}: {what}" for name, what in sorted(left.items()))
            raise AssertionError(f"debugging left on at the end of the session: {listing}")

    # running on the caller's loop

    async def start_async(self) -> Self:
        """Listen on every device's port on the running loop; returns once all listen."""
        if self._acceptors:
            raise LabError("the lab is already running")
        options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[host_key()],
            server_factory=lambda: _DeviceServer(self),
            line_editor=False,
            allow_pty=True,
            encoding="utf-8",
            # C-accelerated ciphers only (asyncssh's chacha20-poly1305 costs Python per packet)
            # and no compression: per-connection CPU is what limits a 1,000-device lab.
            encryption_algs=_ENCRYPTION_ALGS,
            compression_algs=("none",),
        )
        names = list(self.devices)
        results = await asyncio.gather(
            *(asyncssh.listen(self.host, 0, options=options) for _ in names),
            return_exceptions=True,
        )
        acceptors = [r for r in results if isinstance(r, asyncssh.SSHAcceptor)]
        self._acceptors = acceptors
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop_async()
            raise LabError(f"cannot listen on {self.host}: {failures[0]}") from failures[0]
        for name, acceptor in zip(names, acceptors, strict=True):
            port = int(acceptor.get_port())
            self.ports[name] = port
            self._by_port[port] = self.devices[name]
        log.info("lab listening: %d devices on %s", len(names), self.host)
        return self

    async def stop_async(self) -> None:
        """Close the listeners and every open session."""
        acceptors, self._acceptors = self._acceptors, []
        for acceptor in acceptors:
            acceptor.close()
        await asyncio.gather(*(a.wait_closed() for a in acceptors), return_exceptions=True)
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        await asyncio.gather(*(c.wait_closed() for c in connections), return_exceptions=True)
        self._connections.clear()
        self._by_port.clear()
        self.ports = {}

    # running in a background thread

    def start(self) -> Self:
        """Run the lab's loop in a background thread; returns once every port listens."""
        if self._thread is not None:
            raise LabError("the lab is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="ipsec-doctor-lab", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self.start_async(), loop).result()
        except BaseException:
            self._stop_thread()
            raise
        return self

    def stop(self) -> None:
        """Stop the background lab (no-op when it is not running in a thread)."""
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.stop_async(), self._loop).result(timeout=30)
        self._stop_thread()

    def _stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=30)
        loop.close()

    def call(self, function: Callable[..., object], *args: object) -> None:
        """Run ``function(*args)`` on the lab's loop (thread-safe), e.g. to change behaviours."""
        if self._loop is None:
            function(*args)
        else:
            self._loop.call_soon_threadsafe(function, *args)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def run_lab(
    sources: Iterable[str | Path],
    *,
    host: str = "127.0.0.1",
    behaviour: DeviceBehaviour | None = None,
    behaviours: Mapping[str, DeviceBehaviour] | None = None,
    qualify: bool | None = None,
) -> Iterator[EmulatorLab]:
    """``with run_lab([scenario_dir]) as lab: lab.ports`` -> ``{device: port}`` on ``host``."""
    lab = EmulatorLab(
        sources, host=host, behaviour=behaviour, behaviours=behaviours, qualify=qualify
    )
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


__all__ = [
    "CliSession",
    "CommandResult",
    "DeviceBehaviour",
    "DeviceConfig",
    "EmulatedDevice",
    "EmulatorLab",
    "LabError",
    "host_key",
    "load_device_config",
    "load_devices",
    "netmiko_device_type",
    "run_lab",
]
