"""The offline collector and the capture store: pasted outputs, samples, wider files, round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.base import OutputMissingError
from ipsec_doctor.collect.capture_store import load_captures, save_captures
from ipsec_doctor.collect.file_collector import FileCommandRunner, collect_folder, list_devices
from ipsec_doctor.collect.plan_runner import Derivation, plan_info
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.capture import (
    CaptureSet,
    CommandCapture,
    DeviceCapture,
    Outcome,
    command_filename,
)

ISAKMP = """IPv4 Crypto ISAKMP SA
dst             src             state          conn-id status
10.2.2.1        10.1.1.1        QM_IDLE           {n} ACTIVE
"""

IPSEC_ALL = """interface: GigabitEthernet0/0
    Crypto map tag: VPNMAP, local addr 10.1.1.1
   current_peer 10.2.2.1 port 500
    #pkts encaps: 10, #pkts encrypt: 10, #pkts digest: 10
"""

ACLS = """Extended IP access list VPN-ACL
    10 permit ip 192.168.1.0 0.0.0.255 192.168.2.0 0.0.0.255 (5 matches)
"""

RUNNING = """Building configuration...
hostname R1
enable secret 9 $9$abcdefghijklmn$OPQRSTUVWXYZ
crypto isakmp key Very-Secret-PSK address 10.2.2.1
interface GigabitEthernet0/0
 ip address 10.1.1.1 255.255.255.0
 crypto map VPNMAP
end
"""


def derive(capture: DeviceCapture, peer: str) -> Derivation:
    if capture.get("show crypto map") is None or not capture.get("show crypto map").ok:  # type: ignore[union-attr]
        return Derivation(reasons={"crypto_acl": f"no crypto map entry names {peer}"})
    return Derivation(
        values={
            "crypto_acl": "VPN-ACL",
            "crypto_interface": "GigabitEthernet0/0",
            "local_lan": "192.168.1.0",
            "remote_lan": "192.168.2.0",
        },
        reasons={"source_interface": "no connected route for 192.168.1.0"},
    )


def write(device_dir: Path, command: str, text: str, sample: int = 1) -> None:
    (device_dir / command_filename(command, sample)).write_text(text, encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pasted"
    r1 = root / "R1"
    r1.mkdir(parents=True)
    (r1 / "device.yaml").write_text(
        yaml.safe_dump(
            {"platform": "cisco_ios", "hostname": "R1", "password": "lab-pass-77", "secret": "s"}
        )
    )
    write(r1, "show clock", "R1#show clock\n*10:00:00.000 UTC Mon Mar 1 2027\nR1#\n")
    write(r1, "show crypto map", 'Crypto Map "VPNMAP" 10 ipsec-isakmp\n\tPeer = 10.2.2.1\n')
    write(r1, "show crypto isakmp sa", "R1#show crypto isakmp sa\n" + ISAKMP.format(n=1001))
    write(r1, "show crypto isakmp sa", ISAKMP.format(n=1002), sample=2)
    write(r1, "show crypto ipsec sa", "R1#show crypto ipsec sa\n" + IPSEC_ALL)  # wider only
    write(r1, "show access-lists", ACLS)  # wider only, one sample
    write(
        r1,
        "show crypto engine connections active",
        "R1>show crypto engine connections active\n"
        "                                  ^\n% Invalid input detected at '^' marker.\n",
    )
    write(r1, "show running-config", RUNNING + "banner motd lab-pass-77\n")
    write(r1, "show ip route 10.2.2.1", "R1#sh ip ro 10.2.2.1\nRouting entry for 10.2.2.0/24\n")
    return root


def test_pasted_folder_through_the_plan(folder: Path) -> None:
    result = collect_folder(folder, {"R1": "10.2.2.1"}, deriver=derive)
    r1 = result.devices["R1"]
    clock = r1.get("show clock")
    assert clock is not None and clock.ok
    assert clock.raw == "*10:00:00.000 UTC Mon Mar 1 2027\n"  # echo and trailing prompt gone
    first, second = r1.samples("show crypto isakmp sa")
    assert "1001" in first.raw and "1002" in second.raw
    assert not first.raw.startswith("R1#")
    ipsec = r1.get("show crypto ipsec sa peer 10.2.2.1")
    assert ipsec is not None and ipsec.ok and "current_peer 10.2.2.1" in ipsec.raw
    assert r1.get("show crypto ipsec sa peer 10.2.2.1", 2) is not None
    assert r1.get("show crypto ipsec sa peer 10.2.2.1", 2).outcome is Outcome.MISSING  # type: ignore[union-attr]
    acl = r1.get("show access-lists VPN-ACL")
    assert acl is not None and acl.ok and "VPN-ACL" in acl.raw
    engine = r1.get("show crypto engine connections active")
    assert engine is not None and engine.outcome is Outcome.REJECTED
    assert "% Invalid input detected" in engine.raw
    policy = r1.get("show crypto isakmp policy")
    assert policy is not None and policy.outcome is Outcome.MISSING
    assert "no output of 'show crypto isakmp policy'" in policy.error
    source = r1.get("show interfaces {source_interface}")
    assert source is not None and source.outcome is Outcome.MISSING
    assert source.error == "no connected route for 192.168.1.0"
    route = r1.get("show ip route 10.2.2.1")
    assert route is not None and route.raw == "Routing entry for 10.2.2.0/24\n"
    running = r1.get("show running-config")
    assert running is not None
    assert "Very-Secret-PSK" not in running.raw and "lab-pass-77" not in running.raw
    assert "$9$abc" not in running.raw


def test_sample_two_is_never_answered_by_sample_one(folder: Path) -> None:
    runner = FileCommandRunner(folder / "R1", device="R1")
    with pytest.raises(OutputMissingError, match="no sample 2 output"):
        runner.run("show access-lists", sample=2, read_timeout=1)


def test_filtered_command_is_narrowed_from_the_unfiltered_file(folder: Path) -> None:
    runner = FileCommandRunner(folder / "R1", device="R1")
    text = runner.run("show running-config | include crypto isakmp", sample=1, read_timeout=1)
    assert text.strip() == "crypto isakmp key Very-Secret-PSK address 10.2.2.1"  # runner: raw


def test_wider_patterns_come_from_the_plan() -> None:
    info = plan_info("cisco_ios")
    assert ("show access-lists {crypto_acl}", ("show access-lists", "show ip access-lists")) in (
        info.wider_patterns
    )
    assert info.netmiko_device_type == "cisco_ios"


def test_unknown_device_and_empty_folder(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no device R9"):
        collect_folder(folder, {"R9": "10.2.2.1"}, deriver=derive)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no device directories"):
        list_devices(tmp_path / "empty")


def test_bad_device_yaml_names_file_and_line(tmp_path: Path) -> None:
    device = tmp_path / "f" / "R1"
    device.mkdir(parents=True)
    (device / "device.yaml").write_text("platform: cisco_ios\nhostname: [R1\n")
    with pytest.raises(ConfigError, match=r"device\.yaml:\d+"):
        list_devices(tmp_path / "f")


def test_folder_without_device_yaml_needs_a_platform(tmp_path: Path) -> None:
    device = tmp_path / "f" / "edge1"
    device.mkdir(parents=True)
    write(device, "show clock", "edge1#show clock\n10:00:00 UTC\n")
    with pytest.raises(UsageError):
        list_devices(tmp_path / "f")
    assert [d.platform for d in list_devices(tmp_path / "f", "cisco_ios")] == ["cisco_ios"]


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    started = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
    device = DeviceCapture(name="R1", platform="cisco_ios", hostname="R1", host="192.0.2.1")
    device.started_at = started
    device.captures = [
        CommandCapture("show clock", 1, Outcome.OK, "*10:00:00.000 UTC Mon Mar 1 2027\n"),
        CommandCapture("show crypto isakmp sa", 1, Outcome.OK, ISAKMP.format(n=1001)),
        CommandCapture("show crypto isakmp sa", 2, Outcome.OK, ISAKMP.format(n=1002)),
        CommandCapture(
            "show crypto map",
            1,
            Outcome.REJECTED,
            "% Invalid input detected at '^' marker.\n",
            error="R1 refused 'show crypto map'",
        ),
        CommandCapture("show logging", 1, Outcome.TIMEOUT, "", error="R1: timed out after 20 s"),
        CommandCapture(
            "show running-config", 1, Outcome.OK, "crypto isakmp key Leaky1 address 10.2.2.1\n"
        ),
        CommandCapture(
            "show access-lists {crypto_acl}", 1, Outcome.MISSING, "", error="no crypto map"
        ),
    ]
    down = DeviceCapture(name="R2", platform="cisco_ios", error="R2 (192.0.2.2:22): refused")
    saved = save_captures(
        CaptureSet(devices={"R1": device, "R2": down}, peer="10.2.2.1", started_at=started),
        tmp_path / "saved",
        peer_for_host={"R1": "10.2.2.1", "R2": "10.1.1.1"},
    )
    meta = yaml.safe_load((saved / "R1" / "device.yaml").read_text())
    assert meta["platform"] == "cisco_ios" and meta["host"] == "192.0.2.1"
    assert not {"password", "secret", "username"} & set(meta)
    assert (saved / "R1" / "show_crypto_isakmp_sa.2.txt").is_file()
    assert not list((saved / "R1").glob("*{*"))
    loaded = load_captures(saved, deriver=derive)
    assert set(loaded.devices) == {"R1", "R2"}
    assert loaded.peer == "10.2.2.1"
    r1 = loaded.devices["R1"]
    assert r1.started_at == started
    assert r1.get("show crypto isakmp sa", 2).raw == ISAKMP.format(n=1002)  # type: ignore[union-attr]
    assert r1.get("show crypto map").outcome is Outcome.REJECTED  # type: ignore[union-attr]
    logging = r1.get("show logging")
    assert logging is not None and logging.outcome is Outcome.TIMEOUT
    assert logging.error == "R1: timed out after 20 s"
    assert loaded.devices["R2"].error == "R2 (192.0.2.2:22): refused"
    assert loaded.devices["R2"].captures == []
    assert_no_secrets(saved, ["Leaky1"])


def assert_no_secrets(directory: Path, secrets: list[str]) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for secret in secrets:
                assert secret not in text, f"{secret!r} in {path}"


def test_saving_a_pasted_folder_keeps_no_secret(folder: Path, tmp_path: Path) -> None:
    result = collect_folder(folder, {"R1": "10.2.2.1"}, deriver=derive)
    saved = save_captures(result, tmp_path / "out", peer_for_host={"R1": "10.2.2.1"})
    assert_no_secrets(saved, ["Very-Secret-PSK", "lab-pass-77", "$9$abcdefghijklmn"])
    again = load_captures(saved, deriver=derive)
    assert again.devices["R1"].get("show crypto isakmp sa", 2) is not None
