"""Which SSH cipher paramiko asks for first: the AEAD ones (AES-GCM), where the server has them.

Contract:
- :func:`prefer_aead_ciphers` reorders paramiko's client cipher preference
  (``paramiko.Transport._preferred_ciphers``) so that the AEAD ciphers it knows
  (``aes128-gcm@openssh.com``, ``aes256-gcm@openssh.com``) come first, the others keeping their
  order. The set of ciphers is unchanged, so a server without AES-GCM (IOS 15, older IOS XE)
  negotiates exactly what it did before; one that has it (IOS XE 17, OpenSSH, the lab) gets
  AES-GCM. It is idempotent and changes nothing when this paramiko has no AEAD cipher.
- Why: with AES-CTR + HMAC-SHA2 paramiko computes the MAC of every packet with Python's
  ``hmac`` and compares it byte by byte in Python; with AES-GCM one call into the
  ``cryptography`` library encrypts and authenticates the packet. On an audit of 200 emulated
  routers that is a few milliseconds of CPU per router, on both ends of the connection.
- Applied process-wide (paramiko reads the preference when a transport is created; netmiko gives
  no per-connection hook), by the collectors when they open their first session, never at
  import. An inventory that must avoid AES-GCM on some router removes it there with netmiko's
  ``disabled_algorithms`` (``connection_options.netmiko.extras``:
  ``disabled_algorithms: {ciphers: [aes128-gcm@openssh.com, aes256-gcm@openssh.com]}``).
"""

from __future__ import annotations

import threading

import paramiko

#: paramiko's names of AEAD ciphers (the packet's MAC is the cipher's tag).
AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")

_lock = threading.Lock()


def aead_first(ciphers: tuple[str, ...]) -> tuple[str, ...]:
    """``ciphers`` with the AEAD ones first, each group in its original order."""
    return tuple(c for c in ciphers if c in AEAD_CIPHERS) + tuple(
        c for c in ciphers if c not in AEAD_CIPHERS
    )


def prefer_aead_ciphers() -> tuple[str, ...]:
    """Put AES-GCM first in paramiko's client cipher preference; returns the new order."""
    with _lock:
        current: tuple[str, ...] = tuple(paramiko.Transport._preferred_ciphers)
        ordered = aead_first(current)
        if ordered != current:
            paramiko.Transport._preferred_ciphers = ordered
        return ordered
