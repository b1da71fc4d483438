"""netmiko / paramiko / socket exceptions become named, password-free collection errors."""

from __future__ import annotations

import socket
from pathlib import Path

import paramiko
import pytest
import yaml
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from ipsec_doctor.collect.base import (
    AuthenticationFailedError,
    CommandCollectionError,
    CommandTimeoutError,
    ConnectionLostError,
    DeviceUnreachableError,
    SshNegotiationError,
)
from ipsec_doctor.collect.netmiko_errors import command_error, connect_error
from ipsec_doctor.collect.nornir_collector import build_nornir, host_settings
from ipsec_doctor.model.capture import Outcome

PASSWORD = "S3cret-Pw-123"


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (
            NetmikoAuthenticationException(f"Authentication to device failed.\n{PASSWORD}"),
            AuthenticationFailedError,
            "authentication failed as 'netops'",
        ),
        (
            NetmikoTimeoutException(
                "TCP connection to device failed.\n\nCommon causes of this problem are: ..."
            ),
            DeviceUnreachableError,
            "TCP connection failed",
        ),
        (
            NetmikoTimeoutException(
                "\nA paramiko SSHException occurred during connection creation:\n\n"
                "Incompatible ssh peer (no acceptable kex algorithm)\n"
            ),
            SshNegotiationError,
            "SSH negotiation failed (Incompatible ssh peer (no acceptable kex algorithm))",
        ),
        (socket.gaierror("Name or service not known"), DeviceUnreachableError, "DNS"),
        (ConnectionRefusedError(111, "Connection refused"), DeviceUnreachableError, "refused"),
        (TimeoutError("timed out"), DeviceUnreachableError, "connect timeout"),
        (
            paramiko.SSHException("Error reading SSH protocol banner"),
            DeviceUnreachableError,
            "no SSH banner came",
        ),
        (EOFError(), DeviceUnreachableError, "EOFError"),
    ],
)
def test_connect_errors(exc: BaseException, kind: type, words: str) -> None:
    error = connect_error(
        exc, device="R1", host="192.0.2.1", port=22, username="netops", known=[PASSWORD]
    )
    assert isinstance(error, kind)
    message = str(error)
    assert message.startswith("R1 (192.0.2.1:22): ")
    assert words in message
    assert PASSWORD not in message
    assert "\n" not in message


def test_sha1_advice_names_the_fixes() -> None:
    exc = NetmikoTimeoutException(
        "A paramiko SSHException occurred during connection creation:\n\n"
        "Incompatible ssh peer (no acceptable kex algorithm)"
    )
    message = str(connect_error(exc, device="R1", allow_sha1=True))
    assert "allow_sha1" in message
    if paramiko.__version__.startswith("5"):
        assert "netmiko[par4]" in message and "no SHA-1" in message


@pytest.mark.parametrize(
    ("exc", "kind", "outcome"),
    [
        (ReadTimeout("Pattern not detected"), CommandTimeoutError, Outcome.TIMEOUT),
        (OSError("Socket is closed"), ConnectionLostError, Outcome.ERROR),
        (EOFError(), ConnectionLostError, Outcome.ERROR),
        (paramiko.SSHException("SSH session not active"), ConnectionLostError, Outcome.ERROR),
        (ValueError("odd"), CommandCollectionError, Outcome.ERROR),
    ],
)
def test_command_errors(exc: BaseException, kind: type, outcome: Outcome) -> None:
    error = command_error(exc, device="R1", command="show clock", read_timeout=20)
    assert type(error) is kind
    assert error.outcome is outcome
    assert str(error).startswith("R1: ")
    assert "show clock" in str(error)


def test_host_settings_resolve_platform_extras_and_sha1(tmp_path: Path) -> None:
    hosts = {
        "gw1": {
            "hostname": "192.0.2.9",
            "platform": "strongswan",
            "groups": ["linux"],
            "data": {"secret": "sudo-pw"},
        },
        "R1": {
            "hostname": "192.0.2.1",
            "platform": "cisco_ios",
            "username": "netops",
            "password": PASSWORD,
            "connection_options": {
                "netmiko": {
                    "extras": {
                        "allow_sha1": True,
                        "read_timeout": 45,
                        "conn_timeout": 7,
                        "secret": "en",
                    }
                }
            },
        },
    }
    groups = {"linux": {"connection_options": {"netmiko": {"extras": {"banner_timeout": 30}}}}}
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    (tmp_path / "groups.yaml").write_text(yaml.safe_dump(groups))
    nr = build_nornir(inventory_dir=tmp_path, num_workers=2)
    r1 = host_settings(nr.inventory.hosts["R1"])
    assert r1.device_type == "cisco_ios"
    assert r1.allow_sha1 is True and r1.read_timeout == 45
    assert r1.secret == "en" and r1.password == PASSWORD
    assert "allow_sha1" not in r1.extras and "read_timeout" not in r1.extras
    assert "secret" not in r1.extras
    assert r1.extras["conn_timeout"] == 7 and r1.extras["fast_cli"] is True
    gw1 = host_settings(nr.inventory.hosts["gw1"])
    assert gw1.device_type == "linux"  # the plan's netmiko_device_type
    assert gw1.secret == "sudo-pw"
    assert gw1.extras["banner_timeout"] == 30  # group extras pass through


def test_connection_options_platform_overrides_the_plan(tmp_path: Path) -> None:
    hosts = {
        "gw1": {
            "hostname": "192.0.2.9",
            "platform": "strongswan",
            "connection_options": {"netmiko": {"platform": "linux_ssh"}},
        }
    }
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    nr = build_nornir(inventory_dir=tmp_path, num_workers=1)
    assert host_settings(nr.inventory.hosts["gw1"]).device_type == "linux_ssh"
