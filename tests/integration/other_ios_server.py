"""A second IOS-like SSH server for tests, written apart from the bundled emulator on purpose.

The bundled lab (``ipsec_doctor/lab/emulator.py``) is asyncssh, answers each command in one
write and always behaves the same. Real routers do not: this server is built on paramiko's
server API instead (``paramiko.ServerInterface`` + ``paramiko.Transport``, one thread per
connection, a blocking line reader), shares no session code with the emulator, and can switch
on the quirks real IOS SSH servers show (:class:`Quirks`), so the collector is tested against
"another SSH implementation of IOS" than our own.

It serves the same scenario folders (``<scenario>/<device>/device.yaml`` plus one file per
command named by :func:`~ipsec_doctor.model.capture.command_filename`; ``.2.txt`` is the second
sample, served the second time a command is run). A command without its own file is answered
from the wider outputs of the platform plan and IOS output filters
(:mod:`ipsec_doctor.model.lookup`, the capture-folder rule every reader shares); anything else
gets IOS's ``% Invalid input detected at '^' marker.``.

What it does like IOS whatever the quirks: password login; ``R1>`` user mode; ``enable`` asks
``Password:`` without echo and asks again on a wrong secret (three tries, then
``% Bad secrets``); privileged-only commands are refused in user mode; ``terminal length N``
sets the pager (default 24 lines, ``--More--`` waiting for space / return / q);
``exit``/``logout`` ends the session.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import paramiko
import yaml

from ipsec_doctor.model.capture import strip_echo
from ipsec_doctor.model.lookup import (
    apply_output_filter,
    candidate_filenames,
    split_output_filter,
    wider_patterns_from_plan,
)
from ipsec_doctor.resources import data_dir

INVALID_INPUT = "% Invalid input detected at '^' marker."
BAD_SECRETS = "% Bad secrets"
MORE = " --More-- "
# IOS erases " --More-- " with backspaces, spaces and backspaces again.
MORE_ERASE = "\b" * len(MORE) + " " * len(MORE) + "\b" * len(MORE)

# Sample device line: "*Nov 23 10:20:01.101: %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC ..."
SYSLOG_LINE = (
    "*Nov 23 10:20:01.101: %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has "
    "invalid spi for destaddr=10.1.1.1, prot=50, spi=0xB2D1A5C3(3000083907), srcaddr=10.2.2.1"
)

MOTD = """\
################################################################
#  AUTHORIZED ACCESS ONLY -- all sessions are logged           #
#  vpn-gw01.dc1> change window: Sat 02:00-04:00 UTC            #
#  escalation: noc@example.net  ->  #network-oncall            #
################################################################"""

# (command words, privileged EXEC only); a typed word may abbreviate the keyword (2+ letters)
_PRIVILEGED = (("show", "running-config"), ("show", "startup-config"), ("debug",), ("clear",))

# Sample device line: "R1#" alone on the last line of a capture file pasted from a terminal
_PASTED_PROMPT = re.compile(r"^\S{1,64}[#>]\s*$")


@dataclass(frozen=True)
class Quirks:
    """What this device does differently from a tidy IOS (all off: a tidy IOS)."""

    hostname: str = ""  # the prompt's hostname instead of device.yaml's; "{device}": R1, R2
    ssh_banner: str = ""  # SSH userauth banner (``banner login`` over SSH), before the password
    motd: str = ""  # ``banner motd`` printed on the channel before the first prompt
    newline: str = "\r\n"  # "\n": LF-only line ends
    blank_before_prompt: bool = False  # an empty line between an output and the next prompt
    prompt_suffix: str = ""  # what follows the prompt character ("  ": trailing spaces)
    echo_gap: float = 0.0  # > 0: the echo is written alone, the output this much later
    chunk: int = 0  # > 0: every write goes out in pieces of this many bytes ...
    chunk_gap: float = 0.001  # ... with this pause between pieces
    reject_terminal_width: bool = False  # "terminal width 511" -> % Invalid input
    enable_tries: int = 3  # IOS: three Password: prompts, then % Bad secrets
    # A syslog line on the vty (``terminal monitor`` / ``logging monitor``), once every
    # ``syslog_every`` commands: "after_prompt" in the same write as the prompt that ends an
    # output (the log line and the prompt reach the client together), "before_echo" between
    # two commands (printed while the session is idle, before the next echo).
    syslog: str = ""
    syslog_at: str = "after_prompt"
    syslog_every: int = 4
    logging_synchronous: bool = False  # IOS reprints the prompt after a log line


@dataclass
class DeviceFiles:
    """One scenario device: credentials from device.yaml, answers from its files."""

    directory: Path
    hostname: str
    username: str
    password: str
    secret: str
    addresses: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, directory: Path) -> DeviceFiles:
        raw = yaml.safe_load((directory / "device.yaml").read_text(encoding="utf-8")) or {}
        return cls(
            directory=directory,
            hostname=str(raw.get("hostname") or directory.name),
            username=str(raw.get("username") or "admin"),
            password=str(raw.get("password") or ""),
            secret=str(raw.get("secret") or ""),
            addresses=[str(a) for a in raw.get("addresses") or ()],
        )

    def answer(self, command: str) -> str | None:
        """The output for ``command`` (the n-th run serves sample n, else the highest below)."""
        base, output_filter = split_output_filter(command)
        with self.lock:
            sample = self.counts.get(command.lower(), 0) + 1
            for current in range(sample, 0, -1):
                for typed, narrowed in ((command, False), (base, True)):
                    for name in candidate_filenames(typed, current, _wider(), strip_filter=False):
                        path = self.directory / name
                        if path.is_file():
                            self.counts[command.lower()] = sample
                            text = _file_text(path, base)
                            return apply_output_filter(text, output_filter) if narrowed else text
        return None


@lru_cache(maxsize=1)
def _wider() -> tuple[tuple[str, tuple[str, ...]], ...]:
    plan = yaml.safe_load((data_dir("platforms") / "cisco_ios.yaml").read_text(encoding="utf-8"))
    return tuple((pattern, tuple(items)) for pattern, items in wider_patterns_from_plan(plan))


def _file_text(path: Path, command: str) -> str:
    lines = strip_echo(path.read_text(encoding="utf-8"), command).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and _PASTED_PROMPT.match(lines[-1]):
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


_LOG_CHANNEL = "tests.other_ios_server"
logging.getLogger(_LOG_CHANNEL).setLevel(logging.CRITICAL)


@lru_cache(maxsize=1)
def _host_key() -> paramiko.RSAKey:
    return paramiko.RSAKey.generate(2048)


def _abbreviates(typed: str, keyword: str) -> bool:
    typed = typed.lower()
    return keyword.startswith(typed) and len(typed) >= min(2, len(keyword))


class _Auth(paramiko.ServerInterface):  # type: ignore[misc]
    def __init__(self, device: DeviceFiles, quirks: Quirks) -> None:
        self.device = device
        self.quirks = quirks
        self.shell = threading.Event()

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = username == self.device.username and password == self.device.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args: Any) -> bool:
        return True

    def check_channel_shell_request(self, channel: Any) -> bool:
        self.shell.set()
        return True

    def get_banner(self) -> tuple[str | None, str | None]:
        return (self.quirks.ssh_banner or None, "en-US" if self.quirks.ssh_banner else None)


class _ClosedError(Exception):
    """The client went away."""


class _Vty:
    """One SSH shell session: a blocking line reader and IOS's answers, quirks applied."""

    def __init__(
        self,
        channel: Any,
        device: DeviceFiles,
        quirks: Quirks,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self.channel = channel
        self.device = device
        self.quirks = quirks
        self.count = count or (lambda what: None)
        self.hostname = quirks.hostname.format(device=device.directory.name) or device.hostname
        self.privileged = False
        self.length = 24  # terminal length; 0 = no pager
        self.commands = 0
        self._pending = b""
        self._skip_lf = False

    # -- wire -------------------------------------------------------------------------------

    def prompt(self) -> str:
        return self.hostname + ("#" if self.privileged else ">") + self.quirks.prompt_suffix

    def send(self, text: str) -> None:
        data = text.replace("\r\n", "\n").replace("\n", self.quirks.newline).encode()
        step = self.quirks.chunk
        try:
            if step <= 0:
                self.channel.sendall(data)
                return
            for start in range(0, len(data), step):
                self.channel.sendall(data[start : start + step])
                time.sleep(self.quirks.chunk_gap)
        except OSError as exc:
            raise _ClosedError from exc

    def _byte(self) -> bytes:
        while not self._pending:
            data = self.channel.recv(4096)
            if not data:
                raise _ClosedError
            self._pending += data
        byte, self._pending = self._pending[:1], self._pending[1:]
        return byte

    def key(self) -> bytes:
        """One key press (a CR LF pair counts once)."""
        byte = self._byte()
        while self._skip_lf and byte == b"\n":
            self._skip_lf = False
            byte = self._byte()
        self._skip_lf = byte == b"\r"
        return byte

    def line(self) -> str:
        """One typed line, without its line end (nothing is echoed here)."""
        typed = bytearray()
        while True:
            byte = self.key()
            if byte in (b"\r", b"\n"):
                return typed.decode(errors="replace")
            if byte in (b"\x08", b"\x7f"):
                del typed[-1:]
            elif byte >= b" ":
                typed += byte

    # -- session ----------------------------------------------------------------------------

    def run(self) -> None:
        with contextlib.suppress(_ClosedError, EOFError, OSError, paramiko.SSHException):
            if self.quirks.motd:
                self.count("motd")
                self.send("\n" + self.quirks.motd + "\n\n")
            self.send(self.prompt())
            while self.serve_one():
                pass
        with contextlib.suppress(Exception):
            self.channel.close()

    def serve_one(self) -> bool:
        typed = self.line()
        words = typed.split()
        quirks = self.quirks
        if not words:
            self.send("\n" + self._end())
            return True
        first = words[0].lower()
        if _abbreviates(first, "exit") or _abbreviates(first, "logout") or first == "quit":
            self.send(typed + "\n")
            return False
        if len(words) == 1 and _abbreviates(first, "enable") and len(first) >= 2:
            self.send(typed + "\n")
            self._enable()
            return True
        if len(words) == 1 and _abbreviates(first, "disable") and len(first) >= 4:
            self.send(typed + "\n")
            self.privileged = False
            self.send(self._end(blank=False))
            return True
        self.commands += 1
        log_now = bool(quirks.syslog) and self.commands % max(1, quirks.syslog_every) == 0
        if log_now:
            self.count("syslog")
        if log_now and quirks.syslog_at == "before_echo":  # printed while the vty was idle
            self.send("\n" + quirks.syslog + "\n")
        if quirks.echo_gap > 0:
            self.send(typed + "\n")
            time.sleep(quirks.echo_gap)
            echo = ""
        else:
            echo = typed + "\n"
        body = self._execute(typed, words)
        self._page(echo + body)
        tail = self._end()
        if log_now and quirks.syslog_at == "after_prompt":
            tail += "\n" + quirks.syslog + "\n"
            if quirks.logging_synchronous:
                tail += self.prompt()
        self.send(tail)
        return True

    def _end(self, blank: bool | None = None) -> str:
        """The prompt that ends an output, after an empty line if the quirk says so."""
        extra = self.quirks.blank_before_prompt if blank is None else blank
        return ("\n" if extra else "") + self.prompt()

    def _enable(self) -> None:
        if self.privileged or not self.device.secret:
            self.privileged = True
            self.send(self.prompt())
            return
        for _ in range(max(1, self.quirks.enable_tries)):
            self.send("Password: ")
            secret = self.line()  # not echoed, as on IOS
            self.send("\n")
            if secret == self.device.secret:
                self.privileged = True
                self.send(self.prompt())
                return
        self.count("bad secrets")
        self.send(f"{BAD_SECRETS}\n\n{self.prompt()}")

    def _invalid(self, typed: str, word_index: int) -> str:
        # Sample typed line: "show crypto ikev2 sa" -> words start at 0, 5, 12, 18
        starts = [m.start() for m in re.finditer(r"\S+", typed)]
        column = len(self.prompt()) + starts[min(word_index, len(starts) - 1)]
        return " " * column + "^\n" + INVALID_INPUT + "\n\n"

    def _execute(self, typed: str, words: list[str]) -> str:
        first = words[0].lower()
        if _abbreviates(first, "terminal") and len(words) >= 2:
            option = words[1].lower()
            if _abbreviates(option, "length") and len(words) == 3 and words[2].isdigit():
                self.length = int(words[2])
                return ""
            if _abbreviates(option, "width") and len(words) == 3:
                if self.quirks.reject_terminal_width:
                    self.count("terminal width refused")
                    return self._invalid(typed, 1)
                return ""
            if option in ("monitor", "no"):
                return ""
            return self._invalid(typed, 1)
        if not self.privileged:
            for keywords in _PRIVILEGED:
                if len(words) >= len(keywords) and all(
                    _abbreviates(w, k) for w, k in zip(words, keywords, strict=False)
                ):
                    return self._invalid(typed, len(keywords) - 1)
        if len(words) == 2 and _abbreviates(first, "show") and _abbreviates(words[1], "privilege"):
            return f"Current privilege level is {15 if self.privileged else 1}\n"
        output = self.device.answer(" ".join(words))
        if output is None:
            return self._invalid(typed, len(words) - 1)
        return output

    def _page(self, text: str) -> None:
        """Write ``text``, stopping at ``--More--`` every page unless ``terminal length 0``."""
        if self.length <= 0:
            self.send(text)
            return
        lines = text.split("\n")
        page = self.length - 1
        shown = 0
        while shown < len(lines):
            chunk = lines[shown : shown + page]
            shown += len(chunk)
            last = shown >= len(lines)
            self.send("\n".join(chunk) + ("" if last else "\n"))
            if last:
                return
            self.count("more")
            self.send(MORE)
            key = self.key()
            self.send(MORE_ERASE)
            if key in (b"\r", b"\n"):
                page = 1
            elif key == b" ":
                page = self.length - 1
            else:  # q or anything else: the rest of the output is dropped
                self.send("\n")
                return


class OtherIosServer:
    """One device on ``127.0.0.1:<port>`` (port 0: the kernel chooses), served in threads."""

    def __init__(self, device_dir: Path, quirks: Quirks | None = None) -> None:
        self.device = DeviceFiles.load(device_dir)
        self.quirks = quirks or Quirks()
        self.port = 0
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()  # how often each quirk showed ("syslog", "more" ...)

    def count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def start(self) -> OtherIosServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            transports = list(self._transports)
        for transport in transports:
            with contextlib.suppress(Exception):
                transport.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="other-ios")
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.set_log_channel(_LOG_CHANNEL)  # clients hanging up are no server errors
        with self._lock:
            self._transports.append(transport)
        transport.add_server_key(_host_key())
        auth = _Auth(self.device, self.quirks)
        try:
            transport.start_server(server=auth)
            channel = transport.accept(timeout=15)
            if channel is None or not auth.shell.wait(timeout=15):
                return
            _Vty(channel, self.device, self.quirks, self.count).run()
        except (paramiko.SSHException, EOFError, OSError):
            return
        finally:
            with contextlib.suppress(Exception):
                transport.close()


@contextlib.contextmanager
def serve_scenario(
    scenario: Path, quirks: Quirks | None = None, **per_device: Quirks
) -> Iterator[dict[str, OtherIosServer]]:
    """Every device of ``scenario`` on its own port: ``{device name: server}``."""
    servers: dict[str, OtherIosServer] = {}
    try:
        for directory in sorted(p for p in scenario.iterdir() if (p / "device.yaml").is_file()):
            device_quirks = per_device.get(directory.name, quirks)
            servers[directory.name] = OtherIosServer(directory, device_quirks).start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def write_inventory(servers: dict[str, OtherIosServer], directory: Path) -> Path:
    """A Nornir SimpleInventory folder for the servers (``check --inventory DIR``)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts: dict[str, Any] = {}
    for name, server in servers.items():
        device = server.device
        hosts[name] = {
            "hostname": "127.0.0.1",
            "port": server.port,
            "username": device.username,
            "password": device.password,
            "platform": "cisco_ios",
            "groups": ["other_ios"],
            "data": {"tunnel_endpoints": device.addresses},
            "connection_options": {"netmiko": {"extras": {"secret": device.secret}}},
        }
    (directory / "hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    groups = {"other_ios": {"data": {"server": "paramiko"}}}
    (directory / "groups.yaml").write_text(yaml.safe_dump(groups), encoding="utf-8")
    (directory / "defaults.yaml").write_text(yaml.safe_dump({"data": {}}), encoding="utf-8")
    return directory
