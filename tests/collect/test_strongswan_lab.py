"""Live collection from the real strongSwan lab gateways (shared/lab/strongswan), when it is up.

The test does not start the lab (that needs root and network namespaces and is shared with the
strongSwan tests); it runs only when gw1 answers on its management address.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.collect.capture_store import save_captures
from ipsec_doctor.collect.nornir_collector import CollectOptions, build_nornir, collect_devices
from ipsec_doctor.collect.plan_runner import plan_info
from ipsec_doctor.model.capture import Outcome

GATEWAYS = {"gw1": "203.0.113.2", "gw2": "203.0.113.6"}
PEERS = {"gw1": "198.51.100.129", "gw2": "198.51.100.1"}
PASSWORD = "netops-lab"


def lab_up() -> bool:
    """gw1 speaks SSH (a bare TCP accept is not enough: some networks accept any connection)."""
    try:
        with socket.create_connection((GATEWAYS["gw1"], 22), timeout=0.5) as sock:
            sock.settimeout(1.0)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not lab_up(), reason="the strongSwan lab is not up (lab.sh up, as root)"),
]


def test_both_gateways_answer_every_planned_command(tmp_path: Path) -> None:
    hosts = {
        name: {
            "hostname": address,
            "platform": "strongswan",
            "username": "netops",
            "password": PASSWORD,
            "connection_options": {"netmiko": {"extras": {"secret": PASSWORD}}},
        }
        for name, address in GATEWAYS.items()
    }
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    result = collect_devices(
        build_nornir(inventory_dir=tmp_path, num_workers=2),
        list(GATEWAYS),
        PEERS,
        interval=0.0,
        clock=NoWaitClock(),
        options=CollectOptions(session_log_dir=tmp_path / "logs"),
    )
    steps = plan_info("strongswan").steps
    for name, device in result.devices.items():
        assert device.error == ""
        assert device.hostname.startswith("root@")  # sudo -s with the secret
        for step in steps:
            command = step.command.format(peer=PEERS[name])
            capture = device.get(command)
            assert capture is not None, (name, command)
            assert capture.outcome is Outcome.OK, (name, command, capture.error)
            assert "\x1b" not in capture.raw
    saved = save_captures(result, tmp_path / "saved", peer_for_host=PEERS)
    for directory in (saved, tmp_path / "logs"):
        for path in directory.rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                assert PASSWORD not in text and "lab-psk" not in text, path
