"""Hand-built state for rule tests: a healthy two-ended tunnel to mutate with ``replace``.

R1 (10.1.1.1 on Gi0/0, LAN 192.168.1.0/24 on Gi0/1) <-> R2 (10.2.2.1, LAN 192.168.2.0/24).
Both ends: crypto map VPNMAP 10, ACL VPN-ACL, transform set TS-AES256, ISAKMP policy 10
(aes-256/sha256/pre-share/group 14/86400), PFS group14, QM_IDLE, counters rising both ways.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_interface, ip_network
from typing import Any

from ipsec_doctor.model.state import (
    AclEntry,
    CommandProblem,
    ConfigFacts,
    CryptoMapEntry,
    DeviceState,
    Evidence,
    IkePolicy,
    IkeSa,
    IkeStatus,
    Interface,
    InterfaceStatus,
    IpsecSa,
    LogEvent,
    RouteLookup,
    RuleAction,
    TransformSet,
    TunnelView,
)

CLOCK = datetime(2024, 3, 1, 12, 0, 0)
R1_WAN = ip_address("10.1.1.1")
R2_WAN = ip_address("10.2.2.1")
R1_LAN = ip_network("192.168.1.0/24")
R2_LAN = ip_network("192.168.2.0/24")
WAN_IF = "GigabitEthernet0/0"
LAN_IF = "GigabitEthernet0/1"


def ev(command: str, line: str, line_no: int = 1, sample: int = 1) -> Evidence:
    return Evidence(command=command, line=line, line_no=line_no, sample=sample)


def ike_sa(
    peer: IPv4Address,
    local: IPv4Address,
    state: str = "QM_IDLE",
    status: IkeStatus = IkeStatus.ESTABLISHED,
    conn_id: int = 1001,
    sample: int = 1,
    **kw: Any,
) -> IkeSa:
    return IkeSa(
        peer=peer,
        local=local,
        state=state,
        status=status,
        conn_id=conn_id,
        source=ev("show crypto isakmp sa", f"{peer} {local} {state} {conn_id} ACTIVE", 3, sample),
        **kw,
    )


def ipsec_sa(
    peer: IPv4Address,
    local: IPv4Address,
    lan: IPv4Network,
    remote_lan: IPv4Network,
    encaps: int,
    decaps: int,
    sample: int = 1,
    **kw: Any,
) -> IpsecSa:
    cmd = f"show crypto ipsec sa peer {peer}"
    values: dict[str, Any] = {
        "inbound_spis": ("0x1111",),
        "outbound_spis": ("0x2222",),
        "transforms": ("esp-aes-256", "esp-sha256-hmac"),
        "remaining_seconds": 3000,
    }
    values.update(kw)
    return IpsecSa(
        peer=peer,
        local=local,
        interface=WAN_IF,
        crypto_map="VPNMAP",
        local_selector=lan,
        remote_selector=remote_lan,
        encaps=encaps,
        decaps=decaps,
        source=ev(cmd, f"current_peer {peer} port 500", 5, sample),
        encaps_source=ev(cmd, f"#pkts encaps: {encaps}, #pkts encrypt: {encaps}", 7, sample),
        decaps_source=ev(cmd, f"#pkts decaps: {decaps}, #pkts decrypt: {decaps}", 8, sample),
        errors_source=ev(cmd, f"#send errors {values.get('send_errors', 0)}", 10, sample),
        **values,
    )


def acl(
    lan: IPv4Network,
    remote_lan: IPv4Network,
    matches: int | None,
    sample: int = 1,
    name: str = "VPN-ACL",
) -> AclEntry:
    return AclEntry(
        acl=name,
        sequence=10,
        action=RuleAction.PERMIT,
        protocol="ip",
        source_net=lan,
        destination_net=remote_lan,
        matches=matches,
        source=ev(
            f"show access-lists {name}",
            f"10 permit ip {lan.network_address} {lan.hostmask} {remote_lan.network_address} "
            f"{remote_lan.hostmask}" + (f" ({matches} matches)" if matches else ""),
            2,
            sample,
        ),
    )


def device(
    name: str,
    wan: IPv4Address,
    peer: IPv4Address,
    lan: IPv4Network,
    remote_lan: IPv4Network,
    conn_id: int,
) -> DeviceState:
    lan_addr = ip_interface(f"{next(lan.hosts())}/{lan.prefixlen}")
    wan_addr = ip_interface(f"{wan}/24")
    return DeviceState(
        name=name,
        platform="cisco_ios",
        hostname=name,
        clock=CLOCK,
        ike_sas=(ike_sa(peer, wan, conn_id=conn_id),),
        ike_sas_later=(ike_sa(peer, wan, conn_id=conn_id, sample=2),),
        ipsec_sas=(ipsec_sa(peer, wan, lan, remote_lan, 100, 98),),
        ipsec_sas_later=(ipsec_sa(peer, wan, lan, remote_lan, 120, 117, sample=2),),
        crypto_acl=(acl(lan, remote_lan, 50),),
        crypto_acl_later=(acl(lan, remote_lan, 60, sample=2),),
        crypto_maps=(
            CryptoMapEntry(
                name="VPNMAP",
                sequence=10,
                peers=(peer,),
                acl="VPN-ACL",
                local_selectors=(lan,),
                remote_selectors=(remote_lan,),
                transform_sets=("TS-AES256",),
                pfs_group="group14",
                lifetime_seconds=3600,
                interfaces=(WAN_IF,),
                source=ev("show crypto map", 'Crypto Map "VPNMAP" 10 ipsec-isakmp', 1),
            ),
        ),
        ike_policies=(
            IkePolicy(
                priority=10,
                encryption="aes-256",
                hash="sha256",
                authentication="pre-share",
                dh_group=14,
                lifetime_seconds=86400,
                source=ev("show crypto isakmp policy", "Protection suite of priority 10", 2),
            ),
        ),
        transform_sets=(
            TransformSet(
                name="TS-AES256",
                transforms=("esp-aes-256", "esp-sha256-hmac"),
                source=ev(
                    "show crypto ipsec transform-set",
                    "Transform set TS-AES256: { esp-256-aes esp-sha256-hmac }",
                    1,
                ),
            ),
        ),
        config=ConfigFacts(
            isakmp_enabled=True,
            psk_peers=(peer,),
            dpd_seconds=30,
            dpd_retry_seconds=10,
            crypto_map_interfaces={"VPNMAP": (WAN_IF,)},
            interface_addresses={WAN_IF: wan_addr, LAN_IF: lan_addr},
            sources=(
                ev("show running-config", f"crypto isakmp key ***** address {peer}", 20),
                ev("show running-config", "crypto isakmp keepalive 30 10", 21),
            ),
        ),
        routes={
            "route_peer": RouteLookup(
                query=str(peer),
                found=True,
                prefix=ip_network(f"{peer}/32"),
                interfaces=(WAN_IF,),
                source=ev(f"show ip route {peer}", f"* 10.0.0.254, via {WAN_IF}", 4),
            ),
            "route_local_lan": RouteLookup(
                query=str(lan.network_address),
                found=True,
                prefix=lan,
                interfaces=(LAN_IF,),
                connected=True,
                source=ev(
                    f"show ip route {lan.network_address}", f"* directly connected, via {LAN_IF}", 4
                ),
            ),
            "route_remote_lan": RouteLookup(
                query=str(remote_lan.network_address),
                found=True,
                prefix=remote_lan,
                interfaces=(WAN_IF,),
                source=ev(
                    f"show ip route {remote_lan.network_address}", f"* 10.0.0.254, via {WAN_IF}", 4
                ),
            ),
        },
        interfaces={
            LAN_IF: Interface(
                LAN_IF,
                InterfaceStatus.UP,
                True,
                lan_addr,
                source=ev(f"show interfaces {LAN_IF}", f"{LAN_IF} is up, line protocol is up", 1),
            ),
            WAN_IF: Interface(
                WAN_IF,
                InterfaceStatus.UP,
                True,
                wan_addr,
                source=ev(f"show interfaces {WAN_IF}", f"{WAN_IF} is up, line protocol is up", 1),
            ),
        },
        logs=(),
    )


def r1() -> DeviceState:
    return device("R1", R1_WAN, R2_WAN, R1_LAN, R2_LAN, 1001)


def r2() -> DeviceState:
    return device("R2", R2_WAN, R1_WAN, R2_LAN, R1_LAN, 2001)


def healthy_view() -> TunnelView:
    return TunnelView(local=r1(), peer=R2_WAN, remote=r2(), remote_peer=R1_WAN)


def one_ended(view: TunnelView | None = None) -> TunnelView:
    return replace(view or healthy_view(), remote=None, remote_peer=None)


def local(view: TunnelView, **changes: Any) -> TunnelView:
    return replace(view, local=replace(view.local, **changes))


def remote(view: TunnelView, **changes: Any) -> TunnelView:
    assert view.remote is not None
    return replace(view, remote=replace(view.remote, **changes))


def log(
    event: str,
    peer: IPv4Address | None = None,
    line: str = "",
    line_no: int = 1,
    age: timedelta = timedelta(minutes=5),
    dated: bool = True,
    **detail: str,
) -> LogEvent:
    return LogEvent(
        event=event,
        peer=peer,
        timestamp=(CLOCK - age) if dated else None,
        message=line or event,
        source=ev("show logging", line or f"%{event.upper()}: {peer}", line_no),
        detail=dict(detail),
    )


def phase1_down(
    view: TunnelView,
    state: str = "MM_NO_STATE",
    status: IkeStatus = IkeStatus.NO_STATE,
    remote_too: bool = True,
) -> TunnelView:
    """Phase 1 stuck in ``state`` on R1 (and R2 sees nothing); no IPsec SAs anywhere."""
    sa = ike_sa(R2_WAN, R1_WAN, state=state, status=status, conn_id=0)
    sa2 = ike_sa(R2_WAN, R1_WAN, state=state, status=status, conn_id=0, sample=2)
    view = local(view, ike_sas=(sa,), ike_sas_later=(sa2,), ipsec_sas=(), ipsec_sas_later=())
    if view.remote is not None and remote_too:
        view = remote(view, ike_sas=(), ike_sas_later=(), ipsec_sas=(), ipsec_sas_later=())
    return view


def phase2_down(view: TunnelView) -> TunnelView:
    """Phase 1 up on both ends, no IPsec SAs."""
    view = local(view, ipsec_sas=(), ipsec_sas_later=())
    if view.remote is not None:
        view = remote(view, ipsec_sas=(), ipsec_sas_later=())
    return view


def problem(
    command: str,
    section: str,
    outcome: str = "rejected",
    raw: str = "% Invalid input detected at '^' marker.",
) -> CommandProblem:
    return CommandProblem(command=command, outcome=outcome, raw=raw, section=section)


def codes(findings: Any) -> list[str]:
    return [f.code.value for f in findings]
