"""Plan variables from partial state, and why the missing ones are missing."""

from __future__ import annotations

from ipaddress import IPv4Interface, ip_address, ip_network

from ipsec_doctor.model.state import (
    AclEntry,
    ConfigFacts,
    CryptoMapEntry,
    DeviceState,
    IpsecSa,
    RouteLookup,
    RuleAction,
)
from ipsec_doctor.parse.derive import derive_variables, missing_reasons

PEER = "10.2.2.1"
ENTRY = CryptoMapEntry(
    name="VPN-MAP",
    sequence=10,
    peers=(ip_address(PEER),),
    acl="VPN-ACL",
    local_selectors=(ip_network("192.168.10.0/24"),),
    remote_selectors=(ip_network("192.168.20.0/24"),),
    interfaces=("GigabitEthernet0/1",),
)


def state(**values: object) -> DeviceState:
    return DeviceState(name="R1", platform="cisco_ios", **values)  # type: ignore[arg-type]


def test_nothing_known_gives_only_the_peer() -> None:
    assert derive_variables(state(), PEER) == {"peer": PEER}
    reasons = missing_reasons(state(), PEER)
    assert "unknown" in reasons["crypto_acl"] and reasons["source_interface"]


def test_from_the_crypto_map() -> None:
    values = derive_variables(state(crypto_maps=(ENTRY,)), PEER)
    assert values == {
        "peer": PEER,
        "crypto_acl": "VPN-ACL",
        "crypto_interface": "GigabitEthernet0/1",
        "local_lan": "192.168.10.0",
        "remote_lan": "192.168.20.0",
    }


def test_acl_wins_over_map_selectors_and_route_gives_source_interface() -> None:
    acl = (
        AclEntry("VPN-ACL", 10, RuleAction.DENY, "ip", None, None, 0),
        AclEntry(
            "VPN-ACL",
            20,
            RuleAction.PERMIT,
            "ip",
            ip_network("192.168.11.0/24"),
            ip_network("192.168.21.0/24"),
            5,
        ),
    )
    route = RouteLookup(query="192.168.11.0", found=True, interfaces=("Gi0/2",), connected=True)
    values = derive_variables(
        state(crypto_maps=(ENTRY,), crypto_acl=acl, routes={"route_local_lan": route}), PEER
    )
    assert values["local_lan"] == "192.168.11.0" and values["remote_lan"] == "192.168.21.0"
    assert values["source_interface"] == "Gi0/2"


def test_config_fallbacks() -> None:
    config = ConfigFacts(
        crypto_map_interfaces={"VPN-MAP": ("Gi0/9",)},
        interface_addresses={"Gi0/3": IPv4Interface("192.168.10.1/24")},
    )
    entry = CryptoMapEntry(name="VPN-MAP", sequence=10, peers=(ip_address(PEER),), acl="VPN-ACL")
    missing_route = RouteLookup(query="192.168.10.0", found=False)
    values = derive_variables(
        state(
            config=config,
            extras={"config_crypto_maps": (entry,)},
            ipsec_sas=(
                IpsecSa(
                    peer=ip_address(PEER),
                    local=None,
                    interface="",
                    crypto_map="VPN-MAP",
                    local_selector=ip_network("192.168.10.0/24"),
                    remote_selector=ip_network("192.168.20.0/24"),
                    encaps=0,
                    decaps=0,
                ),
            ),
            routes={"route_local_lan": missing_route},
        ),
        PEER,
    )
    assert values["crypto_acl"] == "VPN-ACL" and values["crypto_interface"] == "Gi0/9"
    assert values["local_lan"] == "192.168.10.0"  # from the IPsec SA ident
    assert values["source_interface"] == "Gi0/3"  # the interface holding the LAN address


def test_dynamic_map_gives_the_crypto_interface() -> None:
    dynamic = CryptoMapEntry(name="VPNMAP", sequence=65535, peers=(), acl="", interfaces=("Gi0/0",))
    values = derive_variables(state(crypto_maps=(dynamic,)), PEER)
    assert values["crypto_interface"] == "Gi0/0"
    reasons = missing_reasons(state(crypto_maps=(dynamic,)), PEER)
    assert reasons["crypto_acl"] == f"no crypto map entry names the peer {PEER}"


def test_bad_peer() -> None:
    assert derive_variables(state(crypto_maps=(ENTRY,)), "not-an-ip") == {"peer": "not-an-ip"}
    assert "not an IP address" in missing_reasons(state(), "x")["crypto_acl"]
