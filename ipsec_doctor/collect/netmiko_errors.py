"""netmiko / paramiko / socket exceptions translated in ONE place.

Contract:
- :func:`connect_error` turns whatever opening a session raised into a
  :class:`~ipsec_doctor.collect.base.DeviceCollectionError` subclass
  (:class:`~ipsec_doctor.collect.base.AuthenticationFailedError`,
  :class:`~ipsec_doctor.collect.base.DeviceUnreachableError`,
  :class:`~ipsec_doctor.collect.base.SshNegotiationError`) whose message names the device and
  its address and says what to check; never netmiko's multi-paragraph text, never a password.
- :func:`command_error` turns what one ``send_command`` raised into a
  :class:`~ipsec_doctor.collect.base.CommandCollectionError`: netmiko ``ReadTimeout`` ->
  :class:`~ipsec_doctor.collect.base.CommandTimeoutError` (outcome ``TIMEOUT``); a closed
  socket, ``EOFError``, a paramiko ``SSHException`` -> :class:`~ipsec_doctor.collect.base.
  ConnectionLostError`; anything else -> a plain command error.
- Paramiko 5 removed SHA-1 key exchange and ``ssh-rsa`` host-key signatures altogether
  (netmiko #3892): an old IOS that offers only ``diffie-hellman-group14-sha1`` /
  ``diffie-hellman-group1-sha1`` fails in key exchange. No ``disabled_algorithms`` setting can
  bring SHA-1 back in paramiko 5; the message says so and names the fixes (modern algorithms on
  the router, or paramiko 4 via ``pip install 'netmiko[par4]'`` and the host's
  ``connection_options.netmiko.extras.allow_sha1: true``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

import paramiko
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadException,
    ReadTimeout,
)

from ipsec_doctor.collect.base import (
    AuthenticationFailedError,
    CommandCollectionError,
    CommandTimeoutError,
    ConnectionLostError,
    DeviceCollectionError,
    DeviceUnreachableError,
    SshNegotiationError,
)
from ipsec_doctor.collect.redaction import redact

PARAMIKO_MAJOR = int(paramiko.__version__.split(".")[0])

# Paramiko's words when the algorithms do not meet.
# Sample message: "Incompatible ssh peer (no acceptable kex algorithm)"
# Sample message: "Incompatible ssh peer (no acceptable host key)"
_NEGOTIATION_WORDS = ("incompatible ssh peer", "no acceptable", "no matching", "unknown cipher")


def sha1_advice(allow_sha1: bool = False) -> str:
    """What to do about a router that offers only SHA-1 SSH algorithms."""
    if PARAMIKO_MAJOR >= 5:
        note = (
            "allow_sha1 is set, but " if allow_sha1 else ""
        ) + f"paramiko {paramiko.__version__} has no SHA-1 key exchange or ssh-rsa at all"
        return (
            f"{note}; old IOS images offer only diffie-hellman-group14-sha1/group1-sha1. Fix the "
            "router (ip ssh server algorithm kex ecdh-sha2-nistp256 / ip ssh dh min size 2048, a "
            "2048-bit RSA key) or install paramiko 4 (pip install 'netmiko[par4]') and set "
            "connection_options.netmiko.extras.allow_sha1: true for that host"
        )
    return (
        "the router and paramiko share no SSH algorithm; for routers that need ssh-rsa with "
        "SHA-1 set connection_options.netmiko.extras.allow_sha1: true (and, for public-key "
        "login, disabled_algorithms: {pubkeys: [rsa-sha2-256, rsa-sha2-512]})"
    )


def _where(device: str, host: str, port: int | None) -> str:
    target = f"{host}:{port}" if port else host
    return f"{device} ({target})" if target and target != device else device


def _clean(text: str, known: Iterable[str]) -> str:
    first = " ".join(str(text).split())
    return redact(first, known)[:300]


def connect_error(
    exc: BaseException,
    *,
    device: str,
    host: str = "",
    port: int | None = None,
    username: str = "",
    known: Iterable[str] = (),
    allow_sha1: bool = False,
) -> DeviceCollectionError:
    """The collection error for a failed login (see module contract)."""
    where = _where(device, host, port)
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, DeviceCollectionError):
        return exc
    if isinstance(exc, NetmikoAuthenticationException | paramiko.AuthenticationException):
        who = f" as {username!r}" if username else ""
        return AuthenticationFailedError(
            f"{where}: authentication failed{who}: check the username and password (inventory "
            "or IPSEC_DOCTOR_USERNAME / IPSEC_DOCTOR_PASSWORD)",
            device=device,
        )
    if any(word in lowered for word in _NEGOTIATION_WORDS):
        detail = _clean(text.split("creation:")[-1], known)
        return SshNegotiationError(
            f"{where}: SSH negotiation failed ({detail}): {sha1_advice(allow_sha1)}",
            device=device,
        )
    if isinstance(exc, socket.gaierror) or "dns failure" in lowered:
        return DeviceUnreachableError(f"{where}: the name does not resolve (DNS)", device=device)
    if isinstance(exc, ConnectionRefusedError) or "refused" in lowered:
        return DeviceUnreachableError(
            f"{where}: connection refused (SSH not listening on that port?)", device=device
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return DeviceUnreachableError(
            f"{where}: no answer within the connect timeout (host down or filtered?)",
            device=device,
        )
    if "protocol banner" in lowered:
        return DeviceUnreachableError(
            f"{where}: the TCP connection opened but no SSH banner came (not an SSH server, a "
            "proxy or firewall in the way, or an overloaded device: raise banner_timeout)",
            device=device,
        )
    if isinstance(exc, NetmikoTimeoutException):
        if "tcp connection to device failed" in lowered:
            return DeviceUnreachableError(
                f"{where}: TCP connection failed (wrong address or port, host down, or a "
                "firewall in the way)",
                device=device,
            )
        if "no existing session" in lowered:
            return DeviceUnreachableError(
                f"{where}: SSH session not established in time (raise conn_timeout)",
                device=device,
            )
        return DeviceUnreachableError(
            f"{where}: SSH connection failed: {_clean(text.split('creation:')[-1], known)}",
            device=device,
        )
    if isinstance(exc, ReadTimeout | ReadException):
        return DeviceUnreachableError(
            f"{where}: logged in but no prompt came back in time (banner or prompt not "
            f"recognised): {_clean(text, known)[:120]}",
            device=device,
        )
    if isinstance(exc, paramiko.SSHException | EOFError | OSError):
        return DeviceUnreachableError(
            f"{where}: SSH failed: {type(exc).__name__}: {_clean(text, known)}", device=device
        )
    return DeviceCollectionError(
        f"{where}: cannot open a session: {type(exc).__name__}: {_clean(text, known)}",
        device=device,
    )


def command_error(
    exc: BaseException,
    *,
    device: str,
    command: str,
    read_timeout: float,
    known: Iterable[str] = (),
) -> CommandCollectionError:
    """The collection error for one failed command (see module contract)."""
    if isinstance(exc, CommandCollectionError):
        return exc
    if isinstance(exc, ReadTimeout):
        return CommandTimeoutError(
            f"{device}: {command!r} did not finish within {read_timeout:g} s (no prompt came "
            "back; raise read_timeout for slow devices)",
            device=device,
            command=command,
        )
    if isinstance(exc, EOFError | OSError | paramiko.SSHException | ReadException):
        detail = _clean(str(exc), known) or type(exc).__name__
        return ConnectionLostError(
            f"{device}: connection lost during {command!r}: {detail}",
            device=device,
            command=command,
        )
    return CommandCollectionError(
        f"{device}: {command!r} failed: {type(exc).__name__}: {_clean(str(exc), known)}",
        device=device,
        command=command,
    )
