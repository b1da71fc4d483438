"""`--runbook auto`: the runbook is chosen by the tunnel's design, read from the local router."""

from __future__ import annotations

from pathlib import Path

import yaml

from ipsec_doctor.model.features import Feature
from ipsec_doctor.runbook.choose import choose_runbook
from ipsec_doctor.runbook.session import folder_session
from tests.runbook.support import scenario

VTI_CONFIG = """\
Building configuration...
!
hostname R1
!
crypto ikev2 proposal PROP-1
 encryption aes-cbc-256
 integrity sha256
 group 14
crypto ikev2 policy POL-1
 proposal PROP-1
crypto ikev2 keyring KR
 peer R2
  address 10.2.2.1
  pre-shared-key Sup3rS3cretPSK!
crypto ikev2 profile IKEV2-PROF
 match identity remote address 10.2.2.1 255.255.255.255
 authentication remote pre-share
 authentication local pre-share
 keyring local KR
!
crypto ipsec transform-set TS-AES256 esp-aes 256 esp-sha256-hmac
 mode tunnel
crypto ipsec profile VTI-PROF
 set transform-set TS-AES256
 set ikev2-profile IKEV2-PROF
!
interface Tunnel0
 ip address 172.16.0.1 255.255.255.252
 tunnel source GigabitEthernet0/0
 tunnel mode ipsec ipv4
 tunnel destination 10.2.2.1
 tunnel protection ipsec profile VTI-PROF
!
interface GigabitEthernet0/0
 ip address 10.1.1.1 255.255.255.252
!
interface GigabitEthernet0/1
 ip address 192.168.1.1 255.255.255.0
!
ip route 192.168.2.0 255.255.255.0 Tunnel0
ip route 0.0.0.0 0.0.0.0 10.1.1.2
!
end
"""


def vti_folder(tmp_path: Path) -> Path:
    """A one-router capture folder of a route-based IKEv2 tunnel to 10.2.2.1."""
    folder = tmp_path / "vti"
    device = folder / "R1"
    device.mkdir(parents=True)
    (device / "device.yaml").write_text(
        yaml.safe_dump({"platform": "cisco_ios", "hostname": "R1", "peers": ["10.2.2.1"]}),
        encoding="utf-8",
    )
    (device / "show_running-config.txt").write_text(VTI_CONFIG, encoding="utf-8")
    return folder


def test_a_crypto_map_tunnel_gets_the_crypto_map_runbook() -> None:
    session = folder_session(scenario("healthy"), "10.2.2.1")
    runbook, why = choose_runbook(session)
    assert runbook.name == "crypto-map"
    assert Feature.CRYPTO_MAP in runbook.when
    assert why == "R1: its crypto map VPNMAP 10 names 10.2.2.1 (crypto_map)"
    # the configuration read to choose is reused by the first step
    r1 = next(e for e in session.ends if e.name == "R1")
    assert [c.command for c in r1.capture.captures] == ["show running-config"]


def test_a_route_based_tunnel_gets_the_vti_runbook(tmp_path: Path) -> None:
    session = folder_session(vti_folder(tmp_path), "10.2.2.1", device="R1")
    runbook, why = choose_runbook(session)
    assert runbook.name == "ikev2-vti"
    assert "Tunnel0 has destination 10.2.2.1" in why
    # the plan leaves out what this router does not have, and the runbook says so
    r1 = session.ends[0]
    assert r1.features().get("ikev1") is False
    preview = {p.command: p.left_out for p in session.plan(runbook.step("ike.sa"))}
    assert preview["show crypto isakmp sa"] == "the device has no ikev1"
    assert preview["show crypto ikev2 sa detail"] == ""
