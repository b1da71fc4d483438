#!/usr/bin/env python3
"""A small ipsec-doctor process for the signal tests: a DebugSession against one lab device.

Usage: debug_script.py HOST PORT USERNAME PASSWORD SECRET PEER AUDIT_LOG [MAX_SECONDS]

Connects with netmiko, turns the debugs on through :class:`DebugSession` (real clock), prints
``DEBUGS-ON`` once they are on, and watches until the negotiation ends or the time is up.
Exit codes as the CLI's: 0 done, 130 interrupted (SIGINT, SIGTERM), 3 anything else.
The credentials come on the command line because the lab's are throw-away test values.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netmiko import ConnectHandler

from ipsec_doctor.collect.audit_log import AuditLog
from ipsec_doctor.collect.intrusive import DebugSession


def main(argv: list[str]) -> int:
    host, port, username, password, secret, peer, audit_path = argv[:7]
    max_seconds = float(argv[7]) if len(argv) > 7 else 120.0

    def connect() -> object:
        connection = ConnectHandler(
            device_type="cisco_ios",
            host=host,
            port=int(port),
            username=username,
            password=password,
            secret=secret,
            fast_cli=True,
        )
        connection.enable()
        return connection

    try:
        with DebugSession(
            connect(),
            peer=peer,
            device="R1",
            max_seconds=max_seconds,
            poll_interval=0.1,
            reconnect=connect,
            audit=AuditLog(Path(audit_path)),
            on_started=lambda session: print("DEBUGS-ON", flush=True),
        ) as session:
            result = session.watch()
        print(f"ENDED {result.ended}", flush=True)
        return 0
    except KeyboardInterrupt:
        print("ipsec-doctor: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # the exit code of an internal error, with the reason
        print(f"ipsec-doctor: error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
