"""Fixtures for tests that drive the SSH emulator: tiny scenario folders and a running lab."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.lab.emulator import EmulatorLab, run_lab
from ipsec_doctor.model.capture import command_filename

DeviceFactory = Callable[..., Path]

SHOW_CLOCK = "*10:00:00.123 UTC Mon Nov 23 2026"

ISAKMP_SA_1 = """\
IPv4 Crypto ISAKMP SA
dst             src             state          conn-id status
10.2.2.1        10.1.1.1        QM_IDLE           1001 ACTIVE
"""

ISAKMP_SA_2 = ISAKMP_SA_1.replace("1001", "1002")

IPSEC_SA = """\

interface: GigabitEthernet0/1
    Crypto map tag: CM, local addr 10.1.1.1

   protected vrf: (none)
   local  ident (addr/mask/prot/port): (192.168.1.0/255.255.255.0/0/0)
   remote ident (addr/mask/prot/port): (192.168.2.0/255.255.255.0/0/0)
   current_peer 10.2.2.1 port 500
    #pkts encaps: 10, #pkts encrypt: 10, #pkts digest: 10
    #pkts decaps: 9, #pkts decrypt: 9, #pkts verify: 9
"""

ACCESS_LISTS = """\
Extended IP access list VPN-TRAFFIC
    10 permit ip 192.168.1.0 0.0.0.255 192.168.2.0 0.0.0.255 (5 matches)
Standard IP access list 10
    10 permit 10.0.0.0, wildcard bits 0.255.255.255
"""

RUNNING_CONFIG = """\
hostname R1
!
crypto isakmp policy 10
 encr aes
 authentication pre-share
!
interface GigabitEthernet0/1
 ip address 10.1.1.1 255.255.255.0
 crypto map CM
!
end
"""


def default_outputs(hostname: str) -> dict[str, str]:
    """Command -> file text of a healthy-looking IOS router (second samples as ``cmd#2``)."""
    return {
        "show clock": f"{hostname}#show clock\n{SHOW_CLOCK}\n",
        "show crypto isakmp sa": ISAKMP_SA_1,
        "show crypto isakmp sa#2": ISAKMP_SA_2,
        "show crypto ipsec sa": IPSEC_SA,
        "show access-lists": ACCESS_LISTS,
        "show running-config": RUNNING_CONFIG.replace("R1", hostname),
        "show interfaces GigabitEthernet0/1": "GigabitEthernet0/1 is up, line protocol is up\n",
    }


def write_device(
    scenario: Path,
    name: str,
    *,
    outputs: Mapping[str, str] | None = None,
    hostname: str | None = None,
    addresses: list[str] | None = None,
    password: str = "lab-pass",
    secret: str = "lab-secret",
) -> Path:
    """Create ``scenario/name`` with ``device.yaml`` and one file per output."""
    hostname = hostname or name
    directory = scenario / name
    directory.mkdir(parents=True)
    device: dict[str, object] = {
        "platform": "cisco_ios",
        "hostname": hostname,
        "username": "admin",
        "password": password,
        "secret": secret,
    }
    if addresses is not None:
        device["addresses"] = addresses
    (directory / "device.yaml").write_text(yaml.safe_dump(device), encoding="utf-8")
    for key, text in (outputs if outputs is not None else default_outputs(hostname)).items():
        command, _, sample = key.partition("#")
        filename = command_filename(command, int(sample) if sample else 1)
        (directory / filename).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    """A scenario with two routers, R1 (10.1.1.1) and R2 (10.2.2.1)."""
    scenario = tmp_path / "healthy"
    write_device(scenario, "R1", addresses=["10.1.1.1", "192.168.1.1"])
    write_device(scenario, "R2", addresses=["10.2.2.1"])
    return scenario


@pytest.fixture
def lab(scenario_dir: Path) -> Iterator[EmulatorLab]:
    """The scenario served on 127.0.0.1 in a background thread."""
    with run_lab([scenario_dir]) as running:
        yield running
