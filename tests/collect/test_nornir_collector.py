"""Live collection through real Nornir + netmiko against the asyncssh IOS emulator."""

from __future__ import annotations

import importlib
import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from nornir.core import Nornir

from ipsec_doctor.collect.capture_store import save_captures
from ipsec_doctor.collect.nornir_collector import (
    CollectOptions,
    build_nornir,
    collect_devices,
)
from ipsec_doctor.collect.plan_runner import Derivation, plan_info
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.lab.emulator import DeviceBehaviour, EmulatorLab, run_lab
from ipsec_doctor.lab.inventory_writer import write_inventory
from ipsec_doctor.model.capture import DeviceCapture, Outcome, command_filename

from .conftest import FakeClock

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]

PASSWORD = "Lab-ssh-Pw-4471"
SECRET = "Lab-enable-Sec-9902"
PSK = "Psk-Never-Leaks-31337"

VALUES = {
    "crypto_acl": "VPN-TRAFFIC",
    "crypto_interface": "GigabitEthernet0/0",
    "local_lan": "192.168.1.0",
    "remote_lan": "192.168.2.0",
    "source_interface": "GigabitEthernet0/1",
}
PEERS = {"R1": "10.2.2.1", "R2": "10.1.1.1"}


def parse_layer_ready() -> bool:
    if importlib.util.find_spec("ipsec_doctor.parse.derive") is None:
        return False
    return hasattr(importlib.import_module("ipsec_doctor.parse"), "parse_device")


def fixed_deriver(capture: DeviceCapture, peer: str) -> Derivation:
    """The plan variables of the generated scenario (the parse layer is tested elsewhere)."""
    return Derivation(values=dict(VALUES))


def write_scenario(root: Path) -> Path:
    """R1 and R2 answering every command of the cisco_ios plan, sampled ones twice."""
    scenario = root / "every-command"
    for name, peer in PEERS.items():
        directory = scenario / name
        directory.mkdir(parents=True)
        device = {
            "platform": "cisco_ios",
            "hostname": name,
            "username": "netops",
            "password": PASSWORD,
            "secret": SECRET,
            "addresses": [PEERS["R2" if name == "R1" else "R1"]],
        }
        (directory / "device.yaml").write_text(yaml.safe_dump(device), encoding="utf-8")
        for step in plan_info("cisco_ios").steps:
            command = step.command.format(peer=peer, **VALUES)
            for sample in range(1, step.samples + 1):
                text = f"{name} output of {command} sample {sample}\n"
                if step.id == "running_config":
                    text = f"hostname {name}\ncrypto isakmp key {PSK} address {peer}\nend\n"
                path = directory / command_filename(command, sample)
                path.write_text(text, encoding="utf-8")
    return scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scenario(tmp_path_factory.mktemp("scenarios"))


@pytest.fixture
def lab(scenario: Path) -> Iterator[EmulatorLab]:
    with run_lab([scenario]) as running:
        yield running


@pytest.fixture
def nornir(lab: EmulatorLab, tmp_path: Path) -> Nornir:
    return build_nornir(config_file=write_inventory(lab, tmp_path / "inventory"), num_workers=4)


def test_every_planned_command_comes_back_ok(nornir: Nornir, tmp_path: Path) -> None:
    clock = FakeClock()
    result = collect_devices(
        nornir,
        ["R1", "R2"],
        PEERS,
        interval=30.0,
        clock=clock,
        options=CollectOptions(deriver=fixed_deriver),
    )
    steps = plan_info("cisco_ios").steps
    for name, peer in PEERS.items():
        device = result.devices[name]
        assert device.error == ""
        assert device.hostname == name
        assert device.platform == "cisco_ios"
        for step in steps:
            command = step.command.format(peer=peer, **VALUES)
            for sample in range(1, step.samples + 1):
                capture = device.get(command, sample)
                assert capture is not None, (name, command, sample)
                assert capture.outcome is Outcome.OK, (name, command, capture.error)
                if step.id != "running_config":
                    assert capture.raw.strip() == f"{name} output of {command} sample {sample}"
        assert PSK not in device.get("show running-config").raw  # type: ignore[union-attr]
    # both devices waited on the fake clock, never on the real one
    assert clock.slept and all(s <= 30.0 for s in clock.slept)


def test_unreachable_host_and_wrong_password_are_device_errors(
    lab: EmulatorLab, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    inventory = tmp_path / "inv"
    inventory.mkdir()
    base = {"platform": "cisco_ios", "username": "netops", "hostname": lab.host}
    hosts = {
        "R1": {**base, "port": lab.ports["R1"], "password": "wrong-" + PASSWORD},
        "R2": {**base, "port": lab.ports["R2"], "password": PASSWORD},
        "R3": {**base, "port": closed_port, "password": PASSWORD},
    }
    for host in hosts.values():
        host["connection_options"] = {"netmiko": {"extras": {"secret": SECRET}}}
    (inventory / "hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    result = collect_devices(
        inventory,
        ["R1", "R2", "R3"],
        {"R1": "10.2.2.1", "R2": "10.1.1.1", "R3": "10.9.9.9"},
        interval=None,
        clock=FakeClock(),
        options=CollectOptions(deriver=fixed_deriver, conn_timeout=5),
    )
    r1, r2, r3 = (result.devices[n] for n in ("R1", "R2", "R3"))
    assert "authentication failed as 'netops'" in r1.error and r1.captures == []
    assert "R3" in r3.error and ("refused" in r3.error or "TCP connection failed" in r3.error)
    assert r2.error == "" and all(c.ok for c in r2.captures)
    for device in (r1, r3):
        assert PASSWORD not in device.error and SECRET not in device.error


def test_credentials_from_the_environment(
    lab: EmulatorLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "inv"
    inventory.mkdir()
    hosts = {"R2": {"platform": "cisco_ios", "hostname": lab.host, "port": lab.ports["R2"]}}
    (inventory / "hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    monkeypatch.setenv("IPSEC_DOCTOR_USERNAME", "netops")
    monkeypatch.setenv("IPSEC_DOCTOR_PASSWORD", PASSWORD)
    monkeypatch.setenv("IPSEC_DOCTOR_SECRET", SECRET)
    result = collect_devices(
        build_nornir(inventory_dir=inventory, num_workers=2),
        ["R2"],
        {"R2": "10.1.1.1"},
        interval=None,
        clock=FakeClock(),
        options=CollectOptions(deriver=fixed_deriver),
    )
    r2 = result.devices["R2"]
    assert r2.error == ""
    # privileged: only reachable after enable with the secret from the environment
    assert r2.get("show running-config").ok  # type: ignore[union-attr]


def test_session_log_and_saved_folder_hold_no_secret(nornir: Nornir, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    result = collect_devices(
        nornir,
        ["R1", "R2"],
        PEERS,
        interval=0.0,
        clock=FakeClock(),
        options=CollectOptions(deriver=fixed_deriver, session_log_dir=logs),
    )
    saved = save_captures(result, tmp_path / "saved", peer_for_host=PEERS)
    log_text = (logs / "R1.log").read_text(encoding="utf-8")
    assert "show crypto isakmp sa" in log_text and "crypto isakmp key <redacted>" in log_text
    for directory in (logs, saved):
        for path in directory.rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                for secret in (PASSWORD, SECRET, PSK):
                    assert secret not in text, f"{secret} in {path}"


def test_hung_command_times_out_and_the_rest_still_runs(scenario: Path) -> None:
    behaviours = {"R1": DeviceBehaviour(hang_on="show logging")}
    with run_lab([scenario], behaviours=behaviours) as lab:
        config = write_inventory(lab, Path(lab_tmp(scenario)) / "inv-hang")
        result = collect_devices(
            config,
            ["R1"],
            {"R1": "10.2.2.1"},
            interval=0.0,
            clock=FakeClock(),
            options=CollectOptions(deriver=fixed_deriver, read_timeout=1.0, resync_timeout=0.2),
        )
    r1 = result.devices["R1"]
    logging = r1.get("show logging")
    assert logging is not None and logging.outcome is Outcome.TIMEOUT
    assert "did not finish within 1 s" in logging.error
    # the session was stuck, one reconnect brought the second samples back
    assert r1.get("show crypto isakmp sa", 2).ok  # type: ignore[union-attr]
    assert r1.get("show access-lists VPN-TRAFFIC", 2).ok  # type: ignore[union-attr]


def test_dropped_connection_keeps_partial_captures(scenario: Path) -> None:
    behaviours = {"R2": DeviceBehaviour(drop_on="show running-config")}
    with run_lab([scenario], behaviours=behaviours) as lab:
        config = write_inventory(lab, Path(lab_tmp(scenario)) / "inv-drop")
        result = collect_devices(
            config,
            ["R2"],
            {"R2": "10.1.1.1"},
            interval=0.0,
            clock=FakeClock(),
            options=CollectOptions(deriver=fixed_deriver, read_timeout=1.0),
        )
    r2 = result.devices["R2"]
    assert r2.error == ""
    # the configuration is read second (it decides which commands the device needs)
    assert r2.get("show clock").ok  # type: ignore[union-attr]
    running = r2.get("show running-config")
    assert running is not None and running.outcome is Outcome.ERROR
    assert "connection lost during 'show running-config'" in running.error
    after = r2.captures[r2.captures.index(running) + 1 :]
    assert after and all(c.outcome is Outcome.ERROR for c in after)
    assert all(c.error.startswith("not run: R2: connection lost") for c in after)


def lab_tmp(scenario: Path) -> Path:
    return scenario.parent


def test_inventory_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text("R1:\n  hostname: 10.0.0.1\n  port: [22\n")
    with pytest.raises(ConfigError, match=r"hosts\.yaml:\d+: invalid YAML"):
        build_nornir(inventory_dir=tmp_path)


def test_inventory_unknown_group_and_missing_hosts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no hosts\.yaml"):
        build_nornir(inventory_dir=tmp_path)
    (tmp_path / "hosts.yaml").write_text("R1:\n  groups: [core]\n")
    with pytest.raises(ConfigError, match="names group 'core'"):
        build_nornir(inventory_dir=tmp_path)


def test_unknown_host_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text("R1:\n  platform: cisco_ios\n")
    with pytest.raises(UsageError, match="not in the inventory: R9"):
        collect_devices(tmp_path, ["R9"], {"R9": "10.0.0.1"}, interval=None)


@pytest.mark.skipif(
    not parse_layer_ready(),
    reason="the parse layer (parse_device, derive_variables) is not there yet",
)
def test_bundled_healthy_scenario_with_the_parse_layer(tmp_path: Path) -> None:
    healthy = Path(__file__).parents[2] / "ipsec_doctor" / "lab" / "scenarios" / "healthy"
    with run_lab([healthy]) as lab:
        config = write_inventory(lab, tmp_path / "inv")
        result = collect_devices(
            config, ["R1", "R2"], {"R1": "10.2.2.1", "R2": "10.1.1.1"}, 5.0, FakeClock()
        )
    for device in result.devices.values():
        assert device.error == ""
        bad = [(c.command, c.sample, c.outcome, c.error) for c in device.captures if not c.ok]
        assert bad == []


def test_wrong_enable_secret_collects_in_user_mode(lab: EmulatorLab, tmp_path: Path) -> None:
    inventory = tmp_path / "inv"
    inventory.mkdir()
    hosts = {
        "R1": {
            "platform": "cisco_ios",
            "hostname": lab.host,
            "port": lab.ports["R1"],
            "username": "netops",
            "password": PASSWORD,
            "connection_options": {"netmiko": {"extras": {"secret": "wrong-secret"}}},
        }
    }
    (inventory / "hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    result = collect_devices(
        inventory,
        ["R1"],
        {"R1": "10.2.2.1"},
        interval=None,
        clock=FakeClock(),
        options=CollectOptions(deriver=fixed_deriver),
    )
    r1 = result.devices["R1"]
    assert r1.error == ""
    enable = r1.get("enable")
    assert enable is not None and enable.outcome is Outcome.REJECTED
    assert "enable refused" in enable.error and "wrong-secret" not in enable.error
    running = r1.get("show running-config")  # privileged EXEC only
    assert running is not None and running.outcome is Outcome.REJECTED
    assert r1.get("show crypto isakmp sa").ok  # type: ignore[union-attr]


@pytest.mark.skipif(not parse_layer_ready(), reason="the parse layer is not there yet")
def test_discover_by_asking_the_lab_devices(tmp_path: Path) -> None:
    from ipsec_doctor.collect.discovery import discover

    mismatch = Path(__file__).parents[2] / "ipsec_doctor" / "lab" / "scenarios"
    with run_lab([mismatch / "peer-address-mismatch"]) as lab:
        config = write_inventory(lab, tmp_path / "inv")
        found = discover(config, "10.2.2.1")
    assert found.asked == ["R1", "R2"]
    assert found.peer_for_host == {"R1": "10.2.2.1", "R2": "10.1.1.1"}
    assert "R1's crypto config does not name 10.2.2.1 (it names 10.2.2.9)" in found.local[0].reason


def test_netmiko_debug_log_holds_no_secret(
    nornir: Nornir, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="netmiko"):
        collect_devices(
            nornir,
            ["R1"],
            {"R1": "10.2.2.1"},
            interval=None,
            clock=FakeClock(),
            options=CollectOptions(deriver=fixed_deriver),
        )
    assert "show running-config" in caplog.text  # the channel reads were logged ...
    for secret in (PASSWORD, SECRET, PSK):  # ... without a secret
        assert secret not in caplog.text


@pytest.mark.skipif(not parse_layer_ready(), reason="the parse layer is not there yet")
def test_collection_reuses_the_discovery_session_and_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ipsec_doctor.collect import nornir_collector
    from ipsec_doctor.collect.discovery import discover

    healthy = Path(__file__).parents[2] / "ipsec_doctor" / "lab" / "scenarios" / "healthy"
    scenario = tmp_path / "three"
    shutil.copytree(healthy / "R1", scenario / "R1")
    shutil.copytree(healthy / "R2", scenario / "R2")
    (scenario / "R3").mkdir()
    (scenario / "R3" / "device.yaml").write_text(
        yaml.safe_dump({"platform": "cisco_ios", "hostname": "R3", "password": "p", "secret": "s"})
    )
    (scenario / "R3" / "show_crypto_map.txt").write_text("\n")
    (scenario / "R3" / "show_running-config.txt").write_text("hostname R3\nend\n")
    sent: list[tuple[str, str]] = []
    original = nornir_collector.NetmikoCommandRunner.run

    def spy(self: nornir_collector.NetmikoCommandRunner, command: str, **kw: float) -> str:
        sent.append((self.device, command))
        return original(self, command, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(nornir_collector.NetmikoCommandRunner, "run", spy)
    with run_lab([scenario]) as lab:
        nr = build_nornir(config_file=write_inventory(lab, tmp_path / "inv"), num_workers=3)
        found = discover(nr, "10.2.2.1")
        assert found.hosts == ["R1", "R2"]
        open_sessions = [n for n, h in nr.inventory.hosts.items() if "netmiko" in h.connections]
        assert open_sessions == ["R1", "R2"]  # R3 was asked, not chosen: closed
        sent.clear()
        result = collect_devices(nr, found.hosts, found.peer_for_host, 0.0, FakeClock())
        assert not any("netmiko" in h.connections for h in nr.inventory.hosts.values())
    r1 = result.devices["R1"]
    assert r1.get("show crypto map").ok and r1.get("show running-config").ok  # type: ignore[union-attr]
    assert ("R1", "show crypto map") not in sent and ("R1", "show running-config") not in sent
    assert ("R1", "show crypto isakmp sa") in sent
