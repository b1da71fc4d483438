"""Lifetimes keep the line that prints or sets them (LIFETIME_MISMATCH quotes it).

IOS: the crypto map entry's ``Security association lifetime`` line and the ISAKMP policy's
``lifetime:`` line. strongSwan: the list-conns lines ``rekeying every Ns`` of the connection and
of each child (or the swanctl.conf ``rekey_time`` lines when charon is down); a child's
``life_time`` shorter than its rekey time stands for its lifetime. IKE policies name their
connection.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ipsec_doctor.collect.file_collector import collect_folder
from ipsec_doctor.model.state import DeviceState
from ipsec_doctor.parse import parse_device
from ipsec_doctor.resources import data_dir

CAPTURES = Path(__file__).resolve().parents[1] / "captures" / "strongswan"
CONF = "cat_%2Fetc%2Fswanctl%2Fswanctl.conf.txt"


def parsed(folder: Path, device: str, peer: str) -> DeviceState:
    captures = collect_folder(folder, {device: peer}, peer=peer)
    return parse_device(captures.devices[device], peer)


def line(value: object) -> str:
    text = getattr(value, "line", None)
    assert isinstance(text, str), value
    return text.strip()


def test_ios_lifetime_lines() -> None:
    state = parsed(data_dir("scenarios") / "lifetime-mismatch", "R2", "10.1.1.1")
    assert state.crypto_maps and state.ike_policies
    entry = state.crypto_maps[0]
    assert entry.lifetime_seconds == 1800
    assert entry.lifetime_source is not None and entry.lifetime_source.command == "show crypto map"
    assert line(entry.lifetime_source) == (
        "Security association lifetime: 4608000 kilobytes/1800 seconds"
    )
    policy = state.ike_policies[0]
    assert line(policy.lifetime_source) == "lifetime:\t\t86400 seconds, no volume limit"
    assert policy.connection == ""


def test_strongswan_list_conns_lines_and_connections() -> None:
    state = parsed(CAPTURES / "healthy", "gw1", "198.51.100.129")
    entries = {e.name: e for e in state.crypto_maps or ()}
    assert line(entries["s2s-ikev2"].lifetime_source) == (
        "lan-ikev2: TUNNEL, rekeying every 3600s, dpd action is none"
    )
    policies = {p.connection: p for p in state.ike_policies or ()}
    assert set(policies) == {"s2s-ikev2", "s2s-ikev1"}
    assert line(policies["s2s-ikev1"].lifetime_source) == (
        "s2s-ikev1: IKEv1, reauthentication every 14400s, dpd delay 5s"
    )


def copy_with_conf(tmp_path: Path, scenario: str, device: str, pattern: str, repl: str) -> Path:
    folder = tmp_path / scenario
    shutil.copytree(CAPTURES / scenario, folder)
    path = folder / device / CONF
    text = path.read_text(encoding="utf-8")
    changed = re.sub(pattern, repl, text, count=1)
    assert changed != text
    path.write_text(changed, encoding="utf-8")
    return folder


def test_a_shorter_child_life_time_stands_for_the_lifetime(tmp_path: Path) -> None:
    folder = copy_with_conf(
        tmp_path,
        "healthy",
        "gw1",
        r"(\n(\s+)esp_proposals = aes256-sha256-modp2048\n)",
        r"\1\2life_time = 20m\n",
    )
    state = parsed(folder, "gw1", "198.51.100.129")
    entries = {e.name: e for e in state.crypto_maps or ()}
    assert entries["s2s-ikev2"].lifetime_seconds == 1200
    source = entries["s2s-ikev2"].lifetime_source
    assert source is not None and source.command == "cat /etc/swanctl/swanctl.conf"
    assert line(source) == "life_time = 20m"
    assert entries["s2s-ikev1"].lifetime_seconds == 3600  # its child has no life_time


def test_charon_down_takes_rekey_time_lines_from_swanctl_conf(tmp_path: Path) -> None:
    folder = copy_with_conf(
        tmp_path,
        "peer-down",
        "gw2",
        r"(\n(\s+)esp_proposals = aes256-sha256-modp2048\n)",
        r"\1\2rekey_time = 2h\n",
    )
    state = parsed(folder, "gw2", "198.51.100.1")
    entries = {e.name: e for e in state.crypto_maps or ()}
    assert entries["s2s-ikev2"].lifetime_seconds == 7200
    assert line(entries["s2s-ikev2"].lifetime_source) == "rekey_time = 2h"
    assert entries["s2s-ikev1"].lifetime_seconds is None  # charon's default 1 h applies
    assert entries["s2s-ikev1"].lifetime_source is None
