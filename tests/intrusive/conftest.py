"""Fixtures for the intrusive steps: bundled scenarios with debug output files, a running lab
that fails the test if any debug or condition is left on, netmiko sessions and a fake clock.

Debug output files are made from a scenario's own log: the debug messages of its
``show logging`` move to ``debug_crypto_isakmp.txt`` / ``debug_crypto_ipsec.txt`` (the buffer
keeps only the syslog lines), so they appear only while the debugs are on. The debug files the
generator bundles with some scenarios are removed from the copy first (test_bundled_debugs.py
runs those as they ship).
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from netmiko import BaseConnection, ConnectHandler

from ipsec_doctor.collect.audit_log import AuditLog
from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.lab.emulator import DeviceBehaviour, EmulatorLab
from ipsec_doctor.resources import data_dir

PEER = "10.2.2.1"

# Sample device line: "*Nov 23 10:14:58.250: ISAKMP:(0): SA request profile is (NULL)"
_STAMP = re.compile(r"^[*.]?[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}")

#: A successful negotiation on R1 of the healthy scenario (10.1.1.1 -> 10.2.2.1).
HEALTHY_ISAKMP = """\
*Nov 23 10:20:01.101: ISAKMP:(0): SA request profile is (NULL)
*Nov 23 10:20:01.105: ISAKMP: Created a peer struct for 10.2.2.1, peer port 500
*Nov 23 10:20:01.121: ISAKMP:(0): beginning Main Mode exchange
*Nov 23 10:20:01.125: ISAKMP:(0): sending packet to 10.2.2.1 my_port 500 peer_port 500 (I)
*Nov 23 10:20:01.161: ISAKMP:(0):Checking ISAKMP transform 1 against priority 10 policy
*Nov 23 10:20:01.165: ISAKMP:      encryption AES-CBC
*Nov 23 10:20:01.169: ISAKMP:      hash SHA256
*Nov 23 10:20:01.173: ISAKMP:      default group 14
*Nov 23 10:20:01.177: ISAKMP:(0):atts are acceptable. Next payload is 0
*Nov 23 10:20:01.301: ISAKMP:(1002): SA has been authenticated with 10.2.2.1
*Nov 23 10:20:01.305: ISAKMP:(1002):Old State = IKE_I_MM6  New State = IKE_P1_COMPLETE
*Nov 23 10:20:01.321: ISAKMP:(1002): beginning Quick Mode exchange, M-ID of 1829744373
*Nov 23 10:20:01.401: ISAKMP:(1002):Checking IPSec proposal 1
*Nov 23 10:20:01.405: ISAKMP:(1002):atts are acceptable.
*Nov 23 10:20:01.421: ISAKMP:(1002): Creating IPSec SAs
*Nov 23 10:20:01.461: ISAKMP:(1002):Old State = IKE_QM_I_QM1  New State = IKE_QM_PHASE2_COMPLETE
"""

HEALTHY_IPSEC = """\
*Nov 23 10:20:01.099: IPSEC(sa_request): ,
  (key eng. msg.) OUTBOUND local= 10.1.1.1:500, remote= 10.2.2.1:500,
    local_proxy= 192.168.1.0/255.255.255.0/256/0,
    remote_proxy= 192.168.2.0/255.255.255.0/256/0,
    protocol= ESP, transform= esp-aes 256 esp-sha256-hmac  (Tunnel),
*Nov 23 10:20:01.409: IPSEC(validate_proposal_request): proposal part #1
*Nov 23 10:20:01.441: IPSEC(create_sa): sa created,
  (sa) sa_dest= 10.2.2.1, sa_prot= 50,
    sa_spi= 0xC3E8DE2C(3286818348),
*Nov 23 10:20:01.451: %CRYPTO-5-SESSION_STATUS: Crypto tunnel is UP  .  Peer 10.2.2.1:500 Id:
"""

#: A negotiation that never ends (retransmissions only): for the time limit.
ENDLESS_ISAKMP = "\n".join(
    f"*Nov 23 10:21:{second:02d}.101: ISAKMP:(0): retransmitting phase 1 MM_NO_STATE... to 10.2.2.1"
    for second in range(60)
)


def _messages(lines: list[str]) -> list[list[str]]:
    messages: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        if messages and not _STAMP.match(line) and not line.startswith("%"):
            messages[-1].append(line)
        else:
            messages.append([line])
    return messages


def move_debugs_out_of_log(device_dir: Path) -> dict[str, int]:
    """Move the debug messages of ``show_logging.txt`` into debug output files (see above)."""
    log_file = device_dir / "show_logging.txt"
    text = log_file.read_text(encoding="utf-8")
    head, marker, body = text.partition("Log Buffer")
    if not marker:
        return {}
    first, _, rest = body.partition("\n")
    kept: list[str] = []
    owned: dict[str, list[str]] = {"isakmp": [], "ipsec": []}
    for message in _messages(rest.split("\n")):
        first_line = message[0]
        if "IPSEC(" in first_line:
            owned["ipsec"].extend(message)
        elif "ISAKMP" in first_line or ("%CRYPTO" in first_line and "Nov 23 10:" in first_line):
            owned["isakmp"].extend(message)
        else:
            kept.extend(message)
    log_file.write_text(f"{head}{marker}{first}\n\n" + "\n".join(kept) + "\n", encoding="utf-8")
    counts = {}
    for flag, lines in owned.items():
        if lines:
            (device_dir / f"debug_crypto_{flag}.txt").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
            counts[flag] = len(lines)
    return counts


def copy_scenario(name: str, target: Path) -> Path:
    """A bundled scenario copied to ``target`` with debug output files for every device."""
    folder = target / name
    shutil.copytree(data_dir("scenarios") / name, folder)
    for device_dir in sorted(p for p in folder.iterdir() if (p / "device.yaml").is_file()):
        for bundled in device_dir.glob("debug_crypto_*.txt"):
            bundled.unlink()
        move_debugs_out_of_log(device_dir)
    if name == "healthy":
        r1 = folder / "R1"
        (r1 / "debug_crypto_isakmp.txt").write_text(HEALTHY_ISAKMP, encoding="utf-8")
        (r1 / "debug_crypto_ipsec.txt").write_text(HEALTHY_IPSEC, encoding="utf-8")
    return folder


LabFactory = Callable[..., EmulatorLab]


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[LabFactory]:
    """Start a lab on a copy of a bundled scenario; at the end, fail if debugging was left on."""
    labs: list[EmulatorLab] = []

    def start(
        scenario: str = "healthy",
        *,
        behaviours: Mapping[str, DeviceBehaviour] | None = None,
        edit: Callable[[Path], None] | None = None,
    ) -> EmulatorLab:
        folder = copy_scenario(scenario, tmp_path / f"lab{len(labs)}")
        if edit is not None:
            edit(folder)
        lab = EmulatorLab([folder], behaviours=behaviours)
        lab.start()
        labs.append(lab)
        return lab

    yield start
    try:
        for lab in labs:
            lab.assert_debugs_off()
    finally:
        for lab in labs:
            lab.stop()


def connect(lab: EmulatorLab, name: str = "R1", **kwargs: Any) -> BaseConnection:
    """A logged-in, enabled netmiko session to one lab device."""
    config = lab.device(name).config
    params: dict[str, Any] = {
        "device_type": "cisco_ios",
        "host": lab.host,
        "port": lab.ports[name],
        "username": config.username,
        "password": config.password,
        "secret": config.secret,
        "fast_cli": True,
        "conn_timeout": 10,
    }
    params.update(kwargs)
    connection = ConnectHandler(**params)
    connection.enable()
    return connection


@pytest.fixture
def sessions() -> Iterator[Callable[[EmulatorLab, str], BaseConnection]]:
    """Open netmiko sessions that are closed at the end of the test."""
    opened: list[BaseConnection] = []

    def open_session(lab: EmulatorLab, name: str = "R1") -> BaseConnection:
        connection = connect(lab, name)
        opened.append(connection)
        return connection

    yield open_session
    for connection in opened:
        with contextlib.suppress(Exception):
            connection.disconnect()


@pytest.fixture
def clock() -> NoWaitClock:
    return NoWaitClock(start=1000.0)


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "state" / "intrusive.log")
