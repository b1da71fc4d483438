"""AES-GCM first in paramiko's cipher preference; servers or inventories without it still work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from ipsec_doctor.collect.nornir_collector import (
    CollectOptions,
    NetmikoCommandRunner,
    build_nornir,
    host_settings,
)
from ipsec_doctor.collect.ssh_ciphers import AEAD_CIPHERS, aead_first, prefer_aead_ciphers
from ipsec_doctor.lab.emulator import EmulatorLab, run_lab
from ipsec_doctor.lab.inventory_writer import write_inventory
from ipsec_doctor.resources import data_dir


def test_aead_first_keeps_every_cipher_and_the_order_within_each_group() -> None:
    ciphers = ("aes128-ctr", "aes256-ctr", "aes256-gcm@openssh.com", "aes128-cbc")
    ordered = aead_first(ciphers)
    assert ordered == ("aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr", "aes128-cbc")
    assert aead_first(ordered) == ordered
    assert aead_first(("aes128-ctr", "3des-cbc")) == ("aes128-ctr", "3des-cbc")


def test_prefer_aead_ciphers_reorders_paramiko_without_adding_or_removing_any() -> None:
    before = set(paramiko.Transport._preferred_ciphers)
    ordered = prefer_aead_ciphers()
    assert set(ordered) == before
    assert paramiko.Transport._preferred_ciphers == ordered
    known = [c for c in AEAD_CIPHERS if c in before]
    assert list(ordered[: len(known)]) == known


@pytest.fixture(scope="module")
def lab() -> Iterator[EmulatorLab]:
    with run_lab([data_dir("scenarios") / "healthy"]) as running:
        yield running


def _open(lab: EmulatorLab, tmp_path: Path, extras: dict[str, Any]) -> NetmikoCommandRunner:
    config = write_inventory(lab, tmp_path / "inventory")
    hosts_file = tmp_path / "inventory" / "hosts.yaml"
    hosts = yaml.safe_load(hosts_file.read_text(encoding="utf-8"))
    netmiko = hosts["R1"].setdefault("connection_options", {}).setdefault("netmiko", {})
    netmiko.setdefault("extras", {}).update(extras)
    hosts_file.write_text(yaml.safe_dump(hosts), encoding="utf-8")
    nr = build_nornir(config_file=config, num_workers=1)
    host = nr.inventory.hosts["R1"]
    options = CollectOptions()
    runner = NetmikoCommandRunner(host, nr.config, host_settings(host, options), options)
    runner.open()
    return runner


def _cipher(runner: NetmikoCommandRunner) -> str:
    transport = runner.connection.remote_conn.get_transport()
    return str(transport.local_cipher)


@pytest.mark.ssh
@pytest.mark.timeout(120)
def test_a_server_offering_aes_gcm_gets_it(lab: EmulatorLab, tmp_path: Path) -> None:
    runner = _open(lab, tmp_path, {})
    try:
        assert _cipher(runner) == "aes128-gcm@openssh.com"
        output = runner.run("show crypto isakmp sa", sample=1, read_timeout=10)
        assert output.startswith("IPv4 Crypto ISAKMP SA") and "QM_IDLE" in output
    finally:
        runner.close()


@pytest.mark.ssh
@pytest.mark.timeout(120)
def test_an_inventory_can_still_rule_aes_gcm_out(lab: EmulatorLab, tmp_path: Path) -> None:
    extras = {"disabled_algorithms": {"ciphers": list(AEAD_CIPHERS)}}
    runner = _open(lab, tmp_path, extras)
    try:
        assert _cipher(runner) == "aes128-ctr"  # paramiko's first choice without AES-GCM
        output = runner.run("show crypto isakmp sa", sample=1, read_timeout=10)
        assert output.startswith("IPv4 Crypto ISAKMP SA") and "QM_IDLE" in output
    finally:
        runner.close()
