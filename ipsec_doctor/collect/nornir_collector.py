"""Live collection: one Nornir task per host, netmiko sessions, the shared plan runner.

Contract:
- :func:`build_nornir` makes a Nornir from an inventory directory (SimpleInventory
  ``hosts.yaml`` + optional ``groups.yaml`` / ``defaults.yaml``; threaded runner; Nornir's own
  log file off) or from a Nornir config file. Broken YAML or a bad inventory is a
  :class:`~ipsec_doctor.errors.ConfigError` naming the file and line.
- :func:`collect_devices` runs one task per requested host in parallel (threaded runner,
  ``num_workers`` of the Nornir). Each task opens the host's netmiko connection through
  Nornir (``host.open_connection`` / ``host.get_connection("netmiko", ...)``) - or adopts
  the session :func:`~ipsec_doctor.collect.discovery.discover` left open on a chosen host,
  together with the outputs discovery read on it (``show crypto map``, ``show
  running-config``: not sent twice) - runs the host platform's plan with
  :func:`~ipsec_doctor.collect.plan_runner.run_plan` and closes the connection
  (:func:`close_sessions` closes sessions nobody collected, e.g. after ``--dry-run``). It
  returns a :class:`~ipsec_doctor.model.capture.CaptureSet` with one
  :class:`~ipsec_doctor.model.capture.DeviceCapture` per host: a host that could not be
  reached or logged into has ``error`` set (and no captures); a host that failed midway keeps
  its partial captures. It never raises for a device problem.
- Host settings: ``platform`` is the ipsec-doctor platform; netmiko's device type is the plan's
  ``netmiko_device_type`` unless ``connection_options.netmiko.platform`` overrides it.
  ``connection_options.netmiko.extras`` pass through to netmiko's ``ConnectHandler``
  (``conn_timeout``, ``auth_timeout``, ``banner_timeout``, ``read_timeout_override``,
  ``disabled_algorithms``, ``ssh_config_file``, ``global_delay_factor``, ``fast_cli`` ...),
  except ipsec-doctor's own keys, which are removed first: ``allow_sha1`` (see
  :mod:`~ipsec_doctor.collect.netmiko_errors`; without it SHA-1 key exchange is refused even
  where paramiko < 5 still has it, with it a paramiko 4 install can reach old IOS) and
  ``read_timeout`` (seconds per command, instead of the plan's). Username, password and
  enable secret come from the inventory (``extras.secret``, or ``data.secret``), else from
  ``IPSEC_DOCTOR_USERNAME``, ``IPSEC_DOCTOR_PASSWORD`` and ``IPSEC_DOCTOR_SECRET``.
- Before its first login the runner puts AES-GCM first in paramiko's cipher preference
  (:mod:`~ipsec_doctor.collect.ssh_ciphers`; same ciphers, servers without AES-GCM negotiate as
  before).
- One round trip per command: the runner opens the TCP connection itself with TCP_NODELAY
  (unless an SSH config file or an explicit ``sock`` decides how to connect; then it sets
  TCP_NODELAY on paramiko's socket after login), enters enable mode when there is a secret,
  takes the prompt netmiko found ONCE at login (``base_prompt``), and then sends each command
  with ``send_command(cmd, expect_string=<that prompt, anchored>, read_timeout=...,
  auto_find_prompt=False, strip_prompt=True, strip_command=True)``. ``fast_cli`` is on (netmiko's
  delay factor 0.1) unless the inventory says otherwise. The prompt counts only after the
  command's echo; syslog lines a ``terminal monitor`` vty prints before the echo or after the
  prompt (and the prompt ``logging synchronous`` prints again) are not part of the output. A
  hostname longer than netmiko's 16-character IOS base prompt is read whole at login; a wrong
  enable secret that IOS asks for again (``Password:`` three times) leaves the session in user
  mode with the ``enable`` capture ``rejected``.
- After a command timeout the runner checks the SSH channel: closed means the connection was
  lost (netmiko reads a closed channel as silence, so a drop shows as a timeout first);
  otherwise it reads up to the prompt again, and if the prompt does not come back the session
  counts as lost. Either way the plan runner's single reconnect opens a new session.
- No netmiko session log unless :attr:`CollectOptions.session_log_dir` is set; then one
  ``<host>.log`` per host (appended to: discovery, reconnects and collection in one file),
  written by :class:`~ipsec_doctor.collect.redaction.
  RedactingSessionLog` with netmiko's ``no_log`` holding the password and secret (netmiko
  #2597/#3307) and every line redacted as captures are. While a session is open netmiko's
  and paramiko's loggers carry a :class:`~ipsec_doctor.collect.redaction.RedactingLogFilter`
  with its password and secret (installed and removed by :class:`NetmikoCommandRunner`, so
  the audit and the runbook get it too).
- The progress callback is called from worker threads, one call at a time (serialised here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from netmiko import BaseConnection, ReadTimeout
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import Host
from nornir.core.task import Result, Task

from ipsec_doctor.collect.base import (
    Clock,
    CommandCollectionError,
    ConnectionLostError,
    DeviceCollectionError,
    ProgressCallback,
    ProgressEvent,
    SystemClock,
)
from ipsec_doctor.collect.netmiko_errors import PARAMIKO_MAJOR, command_error, connect_error
from ipsec_doctor.collect.plan_runner import Deriver, PlanInfo, plan_info, run_plan
from ipsec_doctor.collect.redaction import RedactingLogFilter, RedactingSessionLog, redact
from ipsec_doctor.collect.ssh_ciphers import prefer_aead_ciphers
from ipsec_doctor.errors import ConfigError, IpsecDoctorError, UsageError
from ipsec_doctor.model.capture import CaptureSet, CommandCapture, DeviceCapture, Outcome

ENV_USERNAME = "IPSEC_DOCTOR_USERNAME"
ENV_PASSWORD = "IPSEC_DOCTOR_PASSWORD"
ENV_SECRET = "IPSEC_DOCTOR_SECRET"
DEFAULT_WORKERS = 20
CONNECTION = "netmiko"
#: What ends a session on every platform ipsec-doctor reads (IOS exec mode, a Linux shell).
LOGOUT_COMMAND = "exit"

# ipsec-doctor's own keys in connection_options.netmiko.extras (never passed to netmiko)
_OWN_EXTRAS = ("allow_sha1", "read_timeout")
_FILTERED_LOGGERS = ("netmiko", "paramiko")
# Sample device line: "\x1b[0;1;31mSystem has not been booted with systemd\x1b[0m"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


@dataclass(frozen=True)
class CollectOptions:
    """How live collection behaves (defaults suit a check; an audit may lower timeouts)."""

    session_log_dir: Path | None = None  # one redacted <host>.log per host when set
    read_timeout: float | None = None  # seconds per command; None: the plan's
    conn_timeout: float | None = None  # TCP connect timeout; None: inventory or netmiko's 10 s
    fast_cli: bool = True
    global_delay_factor: float | None = None  # None: netmiko's (0.1 with fast_cli)
    deriver: Deriver | None = None  # plan variables; None: the parse layer
    resync_timeout: float = 5.0  # after a command timeout, how long to wait for the prompt


# -- building Nornir ----------------------------------------------------------------------------


def _yaml_location(exc: BaseException, fallback: Path) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return str(fallback)
    name = getattr(mark, "name", "") or ""
    where = name if name and not name.startswith("<") else str(fallback)
    return f"{where}:{int(getattr(mark, 'line', 0)) + 1}"


def _check_yaml_file(path: Path, kind: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{_yaml_location(exc, path)}: invalid YAML in {kind}: {problem}"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {kind}: {exc.strerror or exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}:1: {kind} must be a mapping, found {type(loaded).__name__}")
    return loaded


def _check_inventory(hosts_file: Path, groups_file: Path, defaults_file: Path) -> None:
    hosts = _check_yaml_file(hosts_file, "hosts")
    groups = _check_yaml_file(groups_file, "groups") if groups_file.is_file() else {}
    if defaults_file.is_file():
        _check_yaml_file(defaults_file, "defaults")
    for kind, path, entries in (("host", hosts_file, hosts), ("group", groups_file, groups)):
        for name, entry in entries.items():
            if entry is not None and not isinstance(entry, dict):
                raise ConfigError(f"{path}: {kind} {name!r} must be a mapping")
            for group in (entry or {}).get("groups") or ():
                if group not in groups:
                    raise ConfigError(
                        f"{path}: {kind} {name!r} names group {group!r}, which "
                        f"{groups_file.name} does not define"
                    )


def build_nornir(
    inventory_dir: Path | None = None,
    config_file: Path | None = None,
    num_workers: int | None = DEFAULT_WORKERS,
) -> Nornir:
    """Nornir from an inventory directory or a config file (see module contract)."""
    if (inventory_dir is None) == (config_file is None):
        raise UsageError("give exactly one of an inventory directory or a Nornir config file")
    runner = {"plugin": "threaded", "options": {"num_workers": num_workers or DEFAULT_WORKERS}}
    try:
        if config_file is not None:
            if not config_file.is_file():
                raise ConfigError(f"{config_file}: no such Nornir config file")
            _check_yaml_file(config_file, "Nornir config")
            kwargs: dict[str, Any] = {"runner": runner} if num_workers else {}
            return InitNornir(config_file=str(config_file), **kwargs)
        assert inventory_dir is not None
        hosts_file = inventory_dir / "hosts.yaml"
        if not hosts_file.is_file():
            raise ConfigError(f"{inventory_dir}: no hosts.yaml (a Nornir SimpleInventory)")
        groups_file = inventory_dir / "groups.yaml"
        defaults_file = inventory_dir / "defaults.yaml"
        _check_inventory(hosts_file, groups_file, defaults_file)
        return InitNornir(
            runner=runner,
            inventory={
                "plugin": "SimpleInventory",
                "options": {
                    "host_file": str(hosts_file),
                    "group_file": str(groups_file),
                    "defaults_file": str(defaults_file),
                },
            },
            logging={"enabled": False},
        )
    except IpsecDoctorError:
        raise
    except Exception as exc:  # ruamel / nornir errors: name the file, and the line if known
        source = config_file or inventory_dir or Path(".")
        first = " ".join(str(exc).split())[:300]
        raise ConfigError(f"{_yaml_location(exc, source)}: {type(exc).__name__}: {first}") from exc


# -- one host's session -------------------------------------------------------------------------


@dataclass(frozen=True)
class HostSettings:
    """What opening one host's netmiko session needs (resolved inventory + environment)."""

    name: str
    platform: str
    hostname: str
    port: int | None
    username: str
    password: str
    secret: str
    device_type: str
    extras: dict[str, Any]
    allow_sha1: bool = False
    read_timeout: float | None = None

    @property
    def known(self) -> tuple[str, ...]:
        return tuple(v for v in (self.password, self.secret) if v)


def host_settings(host: Host, options: CollectOptions | None = None) -> HostSettings:
    """Resolve ``host``'s netmiko parameters (inventory, then environment)."""
    options = options or CollectOptions()
    params = host.get_connection_parameters(CONNECTION)
    platform = host.platform or ""
    if not platform:
        raise ConfigError(f"host {host.name}: no 'platform' (cisco_ios, strongswan, ...)")
    info = plan_info(platform)
    overridden = params.platform is not None and params.platform != platform
    device_type = str(params.platform) if overridden else info.netmiko_device_type
    extras: dict[str, Any] = dict(params.extras or {})
    own = {key: extras.pop(key) for key in _OWN_EXTRAS if key in extras}
    secret = str(
        extras.pop("secret", "") or host.data.get("secret") or os.environ.get(ENV_SECRET, "")
    )
    extras.setdefault("fast_cli", options.fast_cli)
    if options.global_delay_factor is not None:
        extras.setdefault("global_delay_factor", options.global_delay_factor)
    if options.conn_timeout is not None:
        extras.setdefault("conn_timeout", options.conn_timeout)
    allow_sha1 = bool(own.get("allow_sha1", False))
    if not allow_sha1:
        _refuse_sha1(extras)
    timeout = own.get("read_timeout")
    return HostSettings(
        name=host.name,
        platform=platform,
        hostname=str(params.hostname or host.name),
        port=int(params.port) if params.port else None,
        username=str(params.username or os.environ.get(ENV_USERNAME, "")),
        password=str(params.password or os.environ.get(ENV_PASSWORD, "")),
        secret=secret,
        device_type=device_type,
        extras=extras,
        allow_sha1=allow_sha1,
        read_timeout=float(timeout) if timeout is not None else None,
    )


# SHA-1 key exchanges and host-key signatures that paramiko < 5 still offers.
SHA1_KEX = (
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group1-sha1",
)


def _refuse_sha1(extras: dict[str, Any]) -> None:
    """Same rule whatever the paramiko: SHA-1 only for hosts with ``allow_sha1: true``.

    Paramiko 5 has no SHA-1 left; with paramiko 4 (installed for old routers) the SHA-1 key
    exchanges are disabled here unless the host allows them.
    """
    if PARAMIKO_MAJOR >= 5:
        return
    disabled = dict(extras.get("disabled_algorithms") or {})
    kex = list(disabled.get("kex") or [])
    disabled["kex"] = kex + [k for k in SHA1_KEX if k not in kex]
    extras["disabled_algorithms"] = disabled


@dataclass
class _SessionState:
    """Kept on the host's open connection so a later task can reuse the session."""

    prompt: str
    pattern: str
    enable_error: str
    session_log_dir: Path | None
    captures: list[CommandCapture] = field(default_factory=list)


_STATE_ATTR = "ipsec_doctor_session"


def _alive(conn: BaseConnection) -> bool:
    try:
        channel: Any = conn.remote_conn
        return not channel.closed and bool(channel.get_transport().is_active())
    except Exception:
        return False


def _log_out(conn: BaseConnection) -> None:
    """Send ``exit`` as netmiko's cleanup does, without its configuration-mode check.

    netmiko first asks the device whether it is in configuration mode (one more round trip per
    session); ipsec-doctor never enters configuration mode, so it only says ``exit``.
    """
    with contextlib.suppress(Exception):
        if conn.session_log is not None:
            conn.session_log.fin = True
        conn.write_channel(LOGOUT_COMMAND + conn.RETURN)


def close_session(host: Host) -> None:
    """Close ``host``'s netmiko session: ``exit`` when healthy, then the SSH transport at once.

    netmiko's graceful disconnect waits for a prompt first (seconds on a stuck or dead session);
    with the transport already closed its cleanup fails fast, and it still closes the session
    log and drops its references.
    """
    plugin = host.connections.get(CONNECTION)
    if plugin is None:
        return
    if _alive(plugin.connection):
        _log_out(plugin.connection)
    with contextlib.suppress(Exception):
        plugin.connection.paramiko_cleanup()
    try:
        host.close_connection(CONNECTION)
    except Exception:  # closing a dead session may fail: nothing to do about it
        host.connections.pop(CONNECTION, None)


def _close_task(task: Task) -> Result:
    close_session(task.host)
    return Result(host=task.host)


def close_sessions(nr: Nornir, hosts: Sequence[str] | None = None) -> None:
    """Close the sessions :func:`~ipsec_doctor.collect.discovery.discover` left open, in
    parallel (all hosts when ``hosts`` is None)."""
    names = [
        h for h in (hosts if hosts is not None else nr.inventory.hosts) if h in nr.inventory.hosts
    ]
    names = [h for h in names if CONNECTION in nr.inventory.hosts[h].connections]
    if names:
        select_hosts(nr, names).run(task=_close_task, name="close_sessions")


class NetmikoCommandRunner:
    """A :class:`~ipsec_doctor.collect.base.CommandRunner` over one host's netmiko session.

    :meth:`open` logs in (or adopts the session a previous task left open with
    :meth:`detach`, with the outputs it read in :attr:`preloaded`); :meth:`close` ends it.
    """

    def __init__(
        self,
        host: Host,
        config: Config,
        settings: HostSettings,
        options: CollectOptions,
    ) -> None:
        self.host = host
        self.config = config
        self.settings = settings
        self.options = options
        self.prompt = ""
        self.pattern = ""
        self.enable_error = ""
        self.preloaded: list[CommandCapture] = []
        self.reused = False
        self._stuck = ""
        self._log_filter: RedactingLogFilter | None = None

    @property
    def device(self) -> str:
        return self.settings.name

    @property
    def connection(self) -> BaseConnection:
        plugin = self.host.connections.get(CONNECTION)
        if plugin is None:
            raise ConnectionLostError(f"{self.device}: no open session", device=self.device)
        conn: BaseConnection = plugin.connection
        return conn

    def _session_log(self) -> RedactingSessionLog | None:
        directory = self.options.session_log_dir
        if directory is None:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        return RedactingSessionLog(
            file_name=str(directory / f"{self.settings.name}.log"),
            no_log={"password": self.settings.password, "secret": self.settings.secret},
            file_mode="append",  # a reconnect or a second task continues the same log
        )

    def _adopt(self) -> bool:
        plugin = self.host.connections.get(CONNECTION)
        state = getattr(plugin, _STATE_ATTR, None)
        if plugin is None or not isinstance(state, _SessionState):
            return False
        if state.session_log_dir != self.options.session_log_dir or not _alive(plugin.connection):
            return False
        self._filter_logs()
        self.prompt, self.pattern, self.enable_error = (
            state.prompt,
            state.pattern,
            state.enable_error,
        )
        self.preloaded, state.captures = state.captures, []
        self.reused = True
        return True

    def open(self, reuse: bool = True) -> None:
        """Log in, enable, TCP_NODELAY, learn the prompt once. Raises DeviceCollectionError.

        With ``reuse``, a session left open by :meth:`detach` (discovery) is adopted instead.
        """
        if reuse and self._adopt():
            return
        s = self.settings
        extras = dict(s.extras)
        if s.secret:
            extras["secret"] = s.secret
        self.reused = False
        prefer_aead_ciphers()
        try:
            self.close()  # a reconnect: the old session goes first (fast when stuck)
            self._stuck = ""
            self._filter_logs()
            session_log = self._session_log()
            if session_log is not None:
                extras["session_log"] = session_log
            if "sock" not in extras and not _ssh_config_in_use(self.config):
                extras["sock"] = _nodelay_socket(s.hostname, s.port, extras.get("conn_timeout"))
            self.host.open_connection(
                CONNECTION,
                configuration=self.config,
                hostname=s.hostname,
                username=s.username,
                password=s.password,
                port=s.port,
                platform=s.device_type,
                extras=extras,
                default_to_host_attributes=False,
            )
            conn: BaseConnection = self.host.get_connection(CONNECTION, self.config)
            _set_nodelay(conn)
            enabled = ""
            if s.secret:
                try:
                    enabled = conn.enable()
                except (ValueError, ReadTimeout) as exc:  # netmiko: "Failed to enter enable ..."
                    self.enable_error = (
                        f"{s.name}: enable refused (wrong enable secret?); collecting in user "
                        "mode, privileged commands will be refused"
                    )
                    # IOS asks for the secret again (or a slow AAA enable did succeed)
                    if isinstance(exc, ReadTimeout) and _leave_password_prompt(conn):
                        self.enable_error = ""
            self.prompt, self.pattern = _prompt_of(conn, enabled)
        except Exception as exc:
            self.close()
            sock = extras.get("sock")
            if isinstance(sock, socket.socket):
                sock.close()
            raise connect_error(
                exc,
                device=s.name,
                host=s.hostname,
                port=s.port,
                username=s.username,
                known=s.known,
                allow_sha1=s.allow_sha1,
            ) from None
        plugin = self.host.connections[CONNECTION]
        setattr(
            plugin,
            _STATE_ATTR,
            _SessionState(
                self.prompt, self.pattern, self.enable_error, self.options.session_log_dir
            ),
        )

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        if self._stuck:
            raise ConnectionLostError(self._stuck, device=self.device, command=command)
        timeout = self.settings.read_timeout or self.options.read_timeout or read_timeout
        try:
            output = exchange(self.connection, command, self.pattern, timeout)
        except Exception as exc:
            error = command_error(
                exc,
                device=self.device,
                command=command,
                read_timeout=timeout,
                known=self.settings.known,
            )
            if error.outcome is Outcome.TIMEOUT:
                if not self._alive():  # netmiko reads a closed channel as silence
                    raise ConnectionLostError(
                        f"{self.device}: connection lost during {command!r}: the device "
                        "closed the session",
                        device=self.device,
                        command=command,
                    ) from None
                self._resync(command)
            raise error from None
        text = output if isinstance(output, str) else str(output)
        if "\x1b" in text:  # colour codes (systemctl, ls ...) are terminal noise, not output
            text = _ANSI.sub("", text)
        return text

    def _alive(self) -> bool:
        plugin = self.host.connections.get(CONNECTION)
        return plugin is not None and _alive(plugin.connection)

    def _resync(self, command: str) -> None:
        try:
            self.connection.read_until_pattern(
                pattern=self.pattern, read_timeout=self.options.resync_timeout
            )
        except Exception:
            self._stuck = (
                f"{self.device}: the session did not return to the prompt after {command!r} "
                "timed out"
            )

    def reconnect(self) -> bool:
        try:
            self.open(reuse=False)
        except DeviceCollectionError:
            return False
        return True

    def detach(self, captures: Sequence[CommandCapture] = ()) -> None:
        """Leave the session open for the next task on this host, with what it read."""
        plugin = self.host.connections.get(CONNECTION)
        state = getattr(plugin, _STATE_ATTR, None)
        if self._stuck or not self._alive() or not isinstance(state, _SessionState):
            self.close()
            return
        state.captures = [*self.preloaded, *captures]
        self.preloaded = []
        self._unfilter_logs()

    def close(self) -> None:
        """Close the session: politely when it is healthy, at once when it is stuck or dead."""
        if self._stuck and CONNECTION in self.host.connections:
            with contextlib.suppress(Exception):
                self.connection.paramiko_cleanup()
        close_session(self.host)
        self._unfilter_logs()

    def _filter_logs(self) -> None:
        """Redact netmiko's and paramiko's log records while this session is open."""
        if self._log_filter is None:
            self._log_filter = RedactingLogFilter(self.settings.known)
            for name in _FILTERED_LOGGERS:
                logging.getLogger(name).addFilter(self._log_filter)

    def _unfilter_logs(self) -> None:
        if self._log_filter is not None:
            for name in _FILTERED_LOGGERS:
                logging.getLogger(name).removeFilter(self._log_filter)
            self._log_filter = None


def _wait_readable(channel: Any, seconds: float) -> None:
    """Block until the SSH channel has data (or ``seconds`` pass): no fixed poll delay."""
    try:
        select.select([channel], [], [], max(0.0, seconds))
    except (OSError, ValueError, TypeError):  # no fileno (telnet, test doubles): short sleep
        threading.Event().wait(min(seconds, 0.01))


@lru_cache(maxsize=4096)
def _prompt_regex(pattern: str) -> re.Pattern[str]:
    """A prompt pattern compiled once per prompt (the ``re`` module's own cache of 512 is
    churned by the parsers' per-device expressions)."""
    return re.compile(pattern)


# Sample device line: "*Nov 23 10:20:01.101: %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC ..."
# Sample device line: "000412: Nov 23 10:20:01 UTC: %LINK-3-UPDOWN: Interface Tunnel0, changed ..."
# Sample device line: "%CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is ON"
_SYSLOG_LINE = re.compile(r"^[^%\n]{0,48}%[A-Z][A-Z0-9_]*-[0-7]-[A-Z0-9_]+:")
_TAIL_LINES = 16  # lines examined back from the end for a prompt followed by syslog lines
_NETMIKO_PROMPT_CUT = 16  # netmiko's cisco_ios base_prompt keeps this many characters


def _output_end(output: str, regex: re.Pattern[str], after: int) -> int | None:
    """Where the output ends (its prompt), or None while no prompt has come back after ``after``.

    A syslog message on the vty (``terminal monitor``) may follow the prompt: IOS prints it
    after the prompt and, with ``logging synchronous``, prints the prompt again. The output
    ends at the first prompt that only syslog lines and reprinted prompts follow.
    """
    found = None
    end = len(output)
    for _ in range(_TAIL_LINES):
        if end <= after:
            break
        begin = max(output.rfind("\n", after, end) + 1, after)
        line = output[begin:end]
        if regex.search("\n" + line):
            found = end
        elif line.strip() and not _SYSLOG_LINE.match(line):
            break
        end = begin - 1
    return found


def exchange(conn: BaseConnection, command: str, pattern: str, read_timeout: float) -> str:
    """One command, one round trip: write it, then read until the prompt pattern ends the output.

    netmiko's ``send_command`` polls every 25 ms; here the reader blocks on the channel until
    data arrives, and every read still goes through netmiko's ``read_channel`` (line-feed
    normalisation, redacting session log). Only a prompt after the command's echo ends the
    output (netmiko's ``cmd_verify``); what came before the echo and syslog lines printed after
    the prompt are left out. The echo and the trailing prompt are stripped as
    ``send_command(strip_command=True, strip_prompt=True)`` does. Raises netmiko's
    ``ReadTimeout`` when the prompt does not come back in ``read_timeout`` seconds, and
    ``EOFError`` when the device closed the session.
    """
    regex = _prompt_regex(pattern)
    channel = getattr(conn, "remote_conn", None)
    conn.write_channel(conn.normalize_cmd(command))
    deadline = time.monotonic() + read_timeout
    output = ""
    echo = command.strip()
    start = -1
    while True:
        output += conn.read_channel()
        # Only a prompt after the command's echo ends its output (netmiko's cmd_verify): a log
        # line and the prompt IOS printed again after it, read late, are not this output.
        start = output.find(echo) if start < 0 else start
        end = _output_end(output, regex, start + len(echo)) if start >= 0 else None
        if end is not None:
            output = output[start:end]
            break
        if channel is not None and (getattr(channel, "closed", False) or channel.eof_received):
            raise EOFError(f"the device closed the session during {command!r}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout(f"Pattern not detected: {pattern!r} in output of {command!r}")
        _wait_readable(channel, min(remaining, 0.5))
    return str(
        conn._sanitize_output(output, strip_command=True, command_string=command, strip_prompt=True)
    )


def _prompt_of(conn: BaseConnection, enable_output: str) -> tuple[str, str]:
    """The prompt and its anchored pattern, from what login (and enable) already read.

    netmiko's session preparation found the prompt once (``base_prompt``: the prompt without
    its terminator, refreshed by enable where the prompt changes, e.g. ``sudo -s``); the
    pattern accepts any terminator, so user and privileged mode both match, and needs the
    prompt at a line start at the very end of the output. Only when netmiko has no base
    prompt, or cut it (its IOS drivers keep 16 characters of a longer hostname), is the prompt
    searched (one extra round trip).
    """
    base = str(getattr(conn, "base_prompt", "") or "").strip()
    if not base:
        prompt = str(conn.find_prompt()).strip()
        return prompt, rf"(?:^|[\r\n]){re.escape(prompt)}\s*$"
    terminator = ""
    if len(base) == _NETMIKO_PROMPT_CUT:
        # Sample device line: "vpn-gw01-fra.dc1-core#" (netmiko's base_prompt: "vpn-gw01-fra.dc1")
        found = str(conn.find_prompt(pattern=rf"{re.escape(base)}\S*[>#]")).strip()
        if found.startswith(base) and found[-1] in ">#":
            base, terminator = found[:-1], found[-1]
    lines = [line.strip() for line in enable_output.splitlines() if line.strip()]
    if lines and lines[-1].startswith(base) and len(lines[-1]) == len(base) + 1:
        terminator = lines[-1][-1]
    pattern = rf"(?:^|[\r\n]){re.escape(base)}[>#$%]\s*$"
    return base + terminator, pattern


def _leave_password_prompt(conn: BaseConnection) -> bool:
    """Back to the prompt after netmiko's ``enable`` timed out; True if it is privileged.

    IOS asks ``Password:`` up to three times for a wrong secret, then prints ``% Bad secrets``
    and the user prompt; netmiko sends the secret once and times out waiting for the prompt.
    The tries left are answered with empty lines. Raises netmiko's ``ReadTimeout`` if no prompt
    comes back.
    """
    # Sample device lines: "Password: " (another try), "R1>" (back in user mode)
    pattern = rf"ssword|(?:^|\n){re.escape(str(conn.base_prompt))}\S*[>#]"
    for _ in range(3):
        conn.write_channel(conn.RETURN)
        read = str(conn.read_until_pattern(pattern=pattern, read_timeout=10))
        if not read.endswith("ssword"):
            return read.endswith("#")
    raise ReadTimeout("the device kept asking for the enable secret")


def _ssh_config_in_use(config: Config) -> bool:
    """An SSH config file (ProxyCommand, jump hosts) decides how to reach hosts: leave the
    socket to netmiko then."""
    path = getattr(getattr(config, "ssh", None), "config_file", None)
    return bool(path) and Path(str(path)).expanduser().is_file()


def _nodelay_socket(host: str, port: int | None, timeout: object) -> socket.socket:
    """The TCP connection, opened here so TCP_NODELAY is on before netmiko's login exchange."""
    seconds = float(timeout) if isinstance(timeout, int | float) else 10.0
    sock = socket.create_connection((host, port or 22), timeout=seconds)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _set_nodelay(conn: BaseConnection) -> None:
    """Send each command at once (no Nagle delay waiting for the echo's ACK)."""
    try:
        channel: Any = conn.remote_conn
        sock = channel.get_transport().sock
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # not a TCP socket (proxy command, telnet, serial): nothing to tune


# -- the Nornir task -----------------------------------------------------------------------------


@dataclass
class _Job:
    peer_for_host: Mapping[str, str]
    interval: float | None
    clock: Clock
    options: CollectOptions
    progress: ProgressCallback | None


def _serialised(progress: ProgressCallback | None) -> ProgressCallback | None:
    if progress is None:
        return None
    lock = threading.Lock()

    def call(event: ProgressEvent) -> None:
        with lock:
            progress(event)

    return call


def collect_host(task: Task, job: _Job) -> Result:
    """The Nornir task: collect one host's plan; the result is its DeviceCapture."""
    host = task.host
    capture = DeviceCapture(
        name=host.name,
        platform=host.platform or "",
        host=str(host.hostname or ""),
        started_at=datetime.now(UTC),
    )
    runner: NetmikoCommandRunner | None = None
    try:
        settings = host_settings(host, job.options)
        info: PlanInfo = plan_info(settings.platform)
        runner = NetmikoCommandRunner(host, task.nornir.config, settings, job.options)
        runner.open()
        capture.hostname = runner.prompt.rstrip("#>$% ").strip()
        if runner.enable_error:
            capture.captures.append(
                CommandCapture("enable", 1, Outcome.REJECTED, "", error=runner.enable_error)
            )
        run_plan(
            runner,
            info.steps,
            device=capture,
            peer=job.peer_for_host[host.name],
            interval=job.interval,
            clock=job.clock,
            read_timeout=info.read_timeout,
            deriver=job.options.deriver,
            known_secrets=settings.known,
            progress=job.progress,
            preloaded=runner.preloaded,
        )
    except (DeviceCollectionError, ConfigError, UsageError) as exc:
        capture.error = redact(str(exc), _known(host))
    except CommandCollectionError as exc:  # should not escape the plan runner; be safe
        capture.error = redact(str(exc), _known(host))
    except Exception as exc:  # never lose the host's partial captures to a bug
        capture.error = redact(
            f"{host.name}: internal error: {type(exc).__name__}: {exc}", _known(host)
        )
    finally:
        if runner is not None:
            runner.close()
    if capture.error and job.progress is not None:
        job.progress(ProgressEvent(host.name, "", 1, None, message=capture.error))
    return Result(host=host, result=capture, failed=bool(capture.error))


def _known(host: Host) -> tuple[str, ...]:
    try:
        s = host.get_connection_parameters(CONNECTION)
        extras = s.extras or {}
        values = (s.password, extras.get("secret"), os.environ.get(ENV_PASSWORD))
    except Exception:
        values = (host.password, None, os.environ.get(ENV_PASSWORD))
    return tuple(str(v) for v in (*values, os.environ.get(ENV_SECRET)) if v)


def as_nornir(nornir_or_inventory: Nornir | Path | str, num_workers: int | None = None) -> Nornir:
    """A Nornir as given, or built from an inventory directory or a config file path."""
    if isinstance(nornir_or_inventory, Nornir):
        return nornir_or_inventory
    path = Path(nornir_or_inventory)
    if path.is_dir():
        return build_nornir(inventory_dir=path, num_workers=num_workers or DEFAULT_WORKERS)
    return build_nornir(config_file=path, num_workers=num_workers)


def select_hosts(nr: Nornir, hosts: Sequence[str]) -> Nornir:
    """``nr`` filtered to ``hosts``; unknown names are a UsageError."""
    unknown = [h for h in hosts if h not in nr.inventory.hosts]
    if unknown:
        known = ", ".join(sorted(nr.inventory.hosts)[:20])
        raise UsageError(f"not in the inventory: {', '.join(unknown)} (hosts: {known})")
    wanted = set(hosts)
    return nr.filter(filter_func=lambda h: h.name in wanted)


def run_on_hosts(
    nr: Nornir,
    hosts: Sequence[str],
    task: Callable[..., Result],
    **kwargs: Any,
) -> dict[str, Any]:
    """Run ``task`` on ``hosts`` in parallel; ``{host: result or the exception}``."""
    selected = select_hosts(nr, hosts)
    results = selected.run(task=task, name=task.__name__, **kwargs)
    found: dict[str, Any] = {}
    for name in hosts:
        multi = results.get(name)
        if multi is None or not len(multi):
            found[name] = None
        elif multi[0].exception is not None:
            found[name] = multi[0].exception
        else:
            found[name] = multi[0].result
    return found


def collect_devices(
    nornir_or_inventory: Nornir | Path | str,
    hosts: Sequence[str],
    peer_for_host: Mapping[str, str],
    interval: float | None,
    clock: Clock | None = None,
    progress: ProgressCallback | None = None,
    *,
    options: CollectOptions | None = None,
    peer: str = "",
) -> CaptureSet:
    """Collect ``hosts`` live, each for its peer in ``peer_for_host`` (see module contract).

    ``interval`` is the sampling interval in seconds (``None``: one sample only); ``clock``
    defaults to the system clock. ``peer`` is the run's main peer (default: the first host's).
    """
    missing = [h for h in hosts if h not in peer_for_host]
    if missing:
        raise UsageError(f"no peer given for {', '.join(missing)}")
    nr = as_nornir(nornir_or_inventory)
    job = _Job(
        peer_for_host=dict(peer_for_host),
        interval=interval,
        clock=clock or SystemClock(),
        options=options or CollectOptions(),
        progress=_serialised(progress),
    )
    started = datetime.now(UTC)
    results = run_on_hosts(nr, hosts, collect_host, job=job)
    capture_set = CaptureSet(
        peer=peer or (peer_for_host[hosts[0]] if hosts else ""), started_at=started
    )
    for name in hosts:
        result = results[name]
        if isinstance(result, DeviceCapture):
            capture_set.devices[name] = result
            continue
        host = nr.inventory.hosts[name]
        reason = (
            f"{name}: internal error: {type(result).__name__}: {result}"
            if isinstance(result, BaseException)
            else f"{name}: not collected"
        )
        capture_set.devices[name] = DeviceCapture(
            name=name,
            platform=host.platform or "",
            host=str(host.hostname or ""),
            error=redact(reason, _known(host)),
            started_at=started,
        )
    return capture_set
