"""Closing a session: ``exit`` once when healthy (no configuration-mode round trip), nothing
sent when dead; the SSH transport is closed either way and Nornir forgets the connection."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ipsec_doctor.collect.nornir_collector import CONNECTION, close_session


@dataclass
class FakeTransport:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class FakeChannel:
    transport: FakeTransport
    closed: bool = False

    def get_transport(self) -> FakeTransport:
        return self.transport


@dataclass
class FakeSessionLog:
    fin: bool = False


@dataclass
class FakeConnection:
    """Records what a netmiko connection is asked to do; never reads (a read would block)."""

    remote_conn: FakeChannel
    RETURN: str = "\n"
    session_log: FakeSessionLog | None = field(default_factory=FakeSessionLog)
    written: list[str] = field(default_factory=list)
    cleaned_up: int = 0

    def write_channel(self, text: str) -> None:
        if self.remote_conn.closed:
            raise OSError("Socket is closed")
        self.written.append(text)

    def paramiko_cleanup(self) -> None:
        self.cleaned_up += 1
        self.remote_conn.closed = True

    def check_config_mode(self) -> bool:  # netmiko's cleanup would call this: it must not
        raise AssertionError("configuration-mode check sent on close")


@dataclass
class FakePlugin:
    connection: FakeConnection


@dataclass
class FakeHost:
    connections: dict[str, Any]
    closed: list[str] = field(default_factory=list)

    def close_connection(self, name: str) -> None:
        plugin = self.connections.pop(name)
        # what nornir_netmiko's close does: netmiko's disconnect, whose cleanup fails fast on
        # the closed channel and is swallowed by netmiko
        with contextlib.suppress(OSError):
            plugin.connection.write_channel("exit\n")
        self.closed.append(name)


def _host(alive: bool) -> tuple[FakeHost, FakeConnection]:
    conn = FakeConnection(FakeChannel(FakeTransport(active=alive)))
    return FakeHost({CONNECTION: FakePlugin(conn)}), conn


def test_a_healthy_session_gets_one_exit_then_the_transport_closes() -> None:
    host, conn = _host(alive=True)
    close_session(host)  # type: ignore[arg-type]
    assert conn.written == ["exit\n"]
    assert conn.session_log is not None and conn.session_log.fin
    assert conn.cleaned_up == 1
    assert host.closed == [CONNECTION] and not host.connections


def test_a_dead_session_is_closed_without_writing() -> None:
    host, conn = _host(alive=False)
    close_session(host)  # type: ignore[arg-type]
    assert conn.written == []
    assert conn.cleaned_up == 1
    assert host.closed == [CONNECTION]


def test_a_host_without_a_session_is_left_alone() -> None:
    host = FakeHost({})
    close_session(host)  # type: ignore[arg-type]
    assert host.closed == []
