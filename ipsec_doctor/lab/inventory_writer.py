"""Nornir SimpleInventory for a running lab, so the real collection path can reach its devices.

Contract:
- :func:`write_inventory` writes ``hosts.yaml``, ``groups.yaml``, ``defaults.yaml`` and a
  Nornir ``config.yaml`` (SimpleInventory on those files by absolute path, threaded runner,
  Nornir's own log file off) into ``directory`` and returns the ``config.yaml`` path, ready for
  ``InitNornir(config_file=...)``.
- One host per lab device, named as in :attr:`EmulatorLab.ports`: ``hostname`` (the lab's
  listening address), ``port``, ``username``, ``password``, ``platform`` (the ipsec-doctor
  platform of ``device.yaml``), group ``ipsec_doctor_lab``, ``data.scenario``,
  ``data.tunnel_endpoints`` (the device's own crypto endpoint addresses, only when
  ``device.yaml`` lists ``addresses``) and ``connection_options.netmiko.extras.secret``; where
  netmiko's device type differs from the platform, ``connection_options.netmiko.platform``.
- The files hold the lab's own credentials and are written with mode 0600; nothing is logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ipsec_doctor.lab.emulator import EmulatorLab, LabError, netmiko_device_type

LAB_GROUP = "ipsec_doctor_lab"


def inventory_hosts(lab: EmulatorLab) -> dict[str, dict[str, Any]]:
    """The ``hosts.yaml`` mapping of a running lab."""
    if not lab.ports:
        raise LabError("the lab is not running: no ports to write")
    hosts: dict[str, dict[str, Any]] = {}
    for name, port in lab.ports.items():
        config = lab.device(name).config
        data: dict[str, Any] = {"scenario": config.scenario}
        if config.addresses:
            data["tunnel_endpoints"] = list(config.addresses)
        netmiko: dict[str, Any] = {"extras": {"secret": config.secret}}
        device_type = netmiko_device_type(config.platform)
        if device_type != config.platform:
            netmiko["platform"] = device_type
        hosts[name] = {
            "hostname": lab.host,
            "port": port,
            "username": config.username,
            "password": config.password,
            "platform": config.platform,
            "groups": [LAB_GROUP],
            "data": data,
            "connection_options": {"netmiko": netmiko},
        }
    return hosts


def _write(path: Path, content: object) -> None:
    text = yaml.safe_dump(content, sort_keys=False, default_flow_style=False)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_inventory(lab: EmulatorLab, directory: str | Path, *, num_workers: int = 20) -> Path:
    """Write the lab's Nornir inventory and config into ``directory``; return ``config.yaml``."""
    target = Path(directory).resolve()
    target.mkdir(parents=True, exist_ok=True)
    hosts = inventory_hosts(lab)
    _write(target / "hosts.yaml", hosts)
    _write(target / "groups.yaml", {LAB_GROUP: {"data": {"lab": True}}})
    _write(target / "defaults.yaml", {"data": {}})
    config = {
        "inventory": {
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(target / "hosts.yaml"),
                "group_file": str(target / "groups.yaml"),
                "defaults_file": str(target / "defaults.yaml"),
            },
        },
        "runner": {
            "plugin": "threaded",
            "options": {"num_workers": max(1, min(num_workers, len(hosts)))},
        },
        "logging": {"enabled": False},
    }
    config_path = target / "config.yaml"
    _write(config_path, config)
    return config_path
