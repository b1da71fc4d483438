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
- :class:`EmulatorLab` runs every listener on one asyncio loop, either in a background thread
  (:meth:`EmulatorLab.start`, ``with run_lab(...)``) for synchronous callers such as Nornir, or
  on the caller's running loop (:meth:`EmulatorLab.start_async`). Start returns once every port
  listens; stop closes listeners and sessions. One host key is generated per process and
  shared by every device. Passwords and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from ipsec_doctor.model.capture import strip_echo
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


class EmulatedDevice:
    """One router's answers: files, plan fallbacks, sample counters and behaviour."""

    def __init__(self, config: DeviceConfig, behaviour: DeviceBehaviour | None = None) -> None:
        self.config = config
        self.behaviour = behaviour or DeviceBehaviour()
        self._patterns, self._wider = _plan_commands(config.platform)
        self._counts: dict[str, int] = {}
        self._vocabulary: list[tuple[str, ...]] | None = None
        self._candidate_cache: dict[tuple[str, int], list[str]] = {}
        self._max_sample = 1
        self.files: frozenset[str] = frozenset()
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
            return CommandResult(output="All possible debugging has been turned off\n")
        return None

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
            text = path.read_text(encoding="utf-8", errors="replace")
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
