"""The bundled two-router IOS scenarios are consistent, as a reviewer would check them by hand.

These tests read the generated folders (ipsec_doctor/lab/scenarios/) with their own small regexes
(independent of the project's parsers) and check what must hold in any real pair of routers:
both devices and every planned command present, sample-2 files for sampled commands, SPIs that
mirror between the ends, conn-ids that agree between `show crypto isakmp sa`, `show crypto
engine connections active` and `show crypto ipsec sa`, addresses that match the configs, log
timestamps that fit the device clock, and secrets that appear only in `show running-config`.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.model.capture import command_filename
from ipsec_doctor.model.findings import Code

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "ipsec_doctor" / "lab" / "scenarios"
GENERATOR = REPO / "tests" / "scenarios" / "build_scenarios.py"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_scenarios", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_scenarios", module)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "scenario.yaml").is_file())

# (command, sampled twice) every device must answer in every scenario
PLAN_FIXED = [
    ("show clock", False),
    ("show crypto map", False),
    ("show crypto isakmp sa", True),
    ("show crypto ipsec sa", True),
    ("show crypto engine connections active", True),
    ("show crypto isakmp policy", False),
    ("show crypto ipsec transform-set", False),
    ("show running-config", False),
    ("show interfaces GigabitEthernet0/0", False),
    ("show interfaces GigabitEthernet0/1", False),
    ("show logging", False),
]
# IOS-XE routers with an IKEv2 route-based tunnel (VTI): what their plan runs instead of the
# crypto-map commands (the plan leaves those out; the files exist, as the router would answer).
PLAN_XE = [
    ("show clock", False),
    ("show running-config", False),
    ("show crypto ikev2 sa detail", True),
    ("show crypto ipsec sa", True),
    ("show crypto engine connections active", True),
    ("show crypto ikev2 proposal", False),
    ("show crypto ikev2 policy", False),
    ("show crypto ikev2 profile", False),
    ("show crypto ipsec transform-set", False),
    ("show crypto ipsec profile", False),
    ("show crypto session detail", False),
    ("show interfaces GigabitEthernet0/0/0", False),
    ("show interfaces GigabitEthernet0/0/1", False),
    ("show interfaces Tunnel0", False),
    ("show logging", False),
]
# Remote access: only the Easy VPN server R1 is in the inventory; the client (10.2.2.1) is not.
REMOTE_ACCESS = {"XAUTH_FAILED", "VPN_GROUP_NOT_FOUND", "ADDRESS_POOL_FAILURE"}
PHASE1_DOWN = {
    "ISAKMP_DISABLED",
    "NO_ISAKMP_POLICY",
    "CRYPTO_MAP_NOT_APPLIED",
    "CRYPTO_MAP_WRONG_INTERFACE",
    "NO_INTERESTING_TRAFFIC",
    "SOURCE_INTERFACE_DOWN",
    "NO_ROUTE_TO_PEER",
    "PHASE1_NO_RESPONSE",
    "PHASE1_PROPOSAL_MISMATCH",
    "PSK_MISSING",
    "PSK_MISMATCH",
    "PEER_ADDRESS_MISMATCH",
}


# ---------------------------------------------------------------------------------------------
# Tiny independent readers
# ---------------------------------------------------------------------------------------------


@dataclass
class SaBlock:
    peer: str
    encaps: int
    decaps: int
    inbound: list[tuple[int, int]] = field(default_factory=list)  # (spi, conn id)
    outbound: list[tuple[int, int]] = field(default_factory=list)
    flow_ids: dict[int, int] = field(default_factory=dict)  # conn id -> engine id


# Sample line: "   current_peer 10.2.2.1 port 500" (15.x) / "   current_peer: 10.2.2.1:500" (12.x)
_PEER = re.compile(r"^\s+current_peer:? (?P<peer>[\d.]+)")
# Sample line: "    #pkts encaps: 1523, #pkts encrypt: 1523, #pkts digest: 1523"
_ENCAPS = re.compile(r"^\s+#pkts encaps: (\d+)")
_DECAPS = re.compile(r"^\s+#pkts decaps: (\d+)")
# Sample line: "      spi: 0x6F1C1B7E(1864113022)"
_SPI = re.compile(r"^\s+spi: 0x([0-9A-F]+)\((\d+)\)")
# Sample lines: "        conn id: 2001, flow_id: SW:1, ..." (15.x)
#               "        slot: 0, conn id: 2000, flow_id: 1, ..." (12.x)
_CONN15 = re.compile(r"^\s+conn id: (\d+), flow_id: [^:]+:(\d+),")
_CONN12 = re.compile(r"^\s+slot: \d+, conn id: (\d+), flow_id: (\d+),")
_DIRECTION = re.compile(r"^\s+(inbound|outbound) (esp|ah|pcp) sas:")


def ipsec_blocks(text: str) -> list[SaBlock]:
    blocks: list[SaBlock] = []
    direction = ""
    pending_spi: int | None = None
    for line in text.splitlines():
        if m := _PEER.match(line):
            blocks.append(SaBlock(m["peer"], 0, 0))
            continue
        if not blocks:
            continue
        block = blocks[-1]
        if m := _ENCAPS.match(line):
            block.encaps = int(m[1])
        elif m := _DECAPS.match(line):
            block.decaps = int(m[1])
        elif m := _DIRECTION.match(line):
            direction = m[1] if m[2] == "esp" else ""
        elif (m := _SPI.match(line)) and direction:
            assert int(m[1], 16) == int(m[2]), f"hex and decimal SPI differ: {line!r}"
            pending_spi = int(m[2])
        elif (m := _CONN15.match(line) or _CONN12.match(line)) and pending_spi is not None:
            conn = int(m[1])
            getattr(block, direction).append((pending_spi, conn))
            block.flow_ids[conn] = int(m[2]) if _CONN15.match(line) else conn
            pending_spi = None
    return blocks


# Sample line: "10.2.2.1        10.1.1.1        QM_IDLE           1001 ACTIVE"
_ISAKMP = re.compile(
    r"^(?P<dst>[\d.]+)\s+(?P<src>[\d.]+)\s+(?P<state>[A-Z_]+)\s+(?P<conn>\d+)(?:\s+\d+)?\s+(?P<status>ACTIVE.*)$"
)


def isakmp_rows(text: str) -> list[dict[str, str]]:
    return [m.groupdict() for line in text.splitlines() if (m := _ISAKMP.match(line))]


@dataclass
class EngineRow:
    ident: int
    kind: str
    encrypt: int
    decrypt: int
    address: str


# 15.x: " 1001  IKE     SHA256+AES256             0        0        0 10.1.1.1"
_ENGINE15 = re.compile(r"^\s*(\d+)\s+(IPsec|IKE)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s*$")
# 12.x: "2000 GigabitEthernet0/0   10.1.1.1        set    HMAC_SHA+AES_256_C        0     1519"
_ENGINE12 = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+set\s+\S+\s+(\d+)\s+(\d+)\s*$")


def engine_rows(text: str) -> list[EngineRow]:
    rows = []
    for line in text.splitlines():
        if m := _ENGINE15.match(line):
            rows.append(EngineRow(int(m[1]), m[2], int(m[3]), int(m[4]), m[6]))
        elif m := _ENGINE12.match(line):
            kind = "IKE" if m[2] == "<none>" else "IPsec"
            rows.append(EngineRow(int(m[1]), kind, int(m[4]), int(m[5]), m[3]))
    return rows


# Sample line: "2         10.1.1.1/500          10.2.2.1/500          none/none            READY"
_IKEV2 = re.compile(
    r"^(?P<id>\d+)\s+(?P<local>[\d.]+)/\d+\s+(?P<remote>[\d.]+)/\d+\s+\S+\s+(?P<status>[A-Z-]+)\s*$"
)
# Sample line: "      Local spi: 6B1D1E5A09C4F2A7       Remote spi: D02C8E41A3B95F16"
_IKEV2_SPI = re.compile(r"^\s+Local spi: (?P<local>[0-9A-F]+)\s+Remote spi: (?P<remote>[0-9A-F]+)")


def ikev2_rows(text: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        if m := _IKEV2.match(line):
            rows.append(m.groupdict())
        elif (m := _IKEV2_SPI.match(line)) and rows:
            rows[-1].update(local_spi=m["local"], remote_spi=m["remote"])
    return rows


@dataclass
class Device:
    name: str
    folder: Path
    meta: dict[str, object]

    @property
    def xe(self) -> bool:
        """An IOS-XE router with an IKEv2 route-based tunnel (the VTI scenarios)."""
        return (self.folder / command_filename("show crypto ikev2 sa detail")).is_file()

    @property
    def wan(self) -> str:
        return "GigabitEthernet0/0/0" if self.xe else "GigabitEthernet0/0"

    def read(self, command: str, sample: int = 1) -> str | None:
        path = self.folder / command_filename(command, sample)
        return path.read_text() if path.is_file() else None

    @property
    def addresses(self) -> list[str]:
        return [str(a) for a in self.meta["addresses"]]  # type: ignore[union-attr]

    def clock(self) -> datetime:
        text = self.read("show clock")
        assert text is not None
        return datetime.strptime(text.strip().lstrip("*."), "%H:%M:%S.%f UTC %a %b %d %Y")


@cache
def load(name: str) -> tuple[dict[str, object], list[Device]]:
    folder = SCENARIOS / name
    meta = yaml.safe_load((folder / "scenario.yaml").read_text())
    devices = []
    for device in meta["devices"]:
        data = yaml.safe_load((folder / device / "device.yaml").read_text())
        devices.append(Device(device, folder / device, data))
    return meta, devices


# Sample lines: '\tPeer = 10.2.2.1' then '\tExtended IP access list VPN-TRAFFIC' (backup peers
# and an ISAKMP profile may stand between: '\tPeer = 10.4.4.2', '\tISAKMP Profile: P')
_MAP_ENTRY = re.compile(
    r"^\tPeer = (?P<peer>[\d.]+)\n(?:\t(?:Peer = |ISAKMP Profile: ).*\n)*"
    r"\tExtended IP access list (?P<acl>\S+)",
    re.MULTILINE,
)


def crypto_acl(device: Device, peers: list[str] | None = None) -> str | None:
    """The match-address ACL of the map entry naming one of ``peers`` (else the first entry);
    None when the map has only dynamic entries or only the ones of tunnel protection."""
    text = device.read("show crypto map") or ""
    entries = _MAP_ENTRY.findall(text)
    if not entries:
        assert "Dynamic map template tag:" in text or "Map is a PROFILE INSTANCE." in text
        return None
    return next((acl for peer, acl in entries if peers and peer in peers), entries[0][1])


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_every_registered_scenario_is_generated_and_up_to_date(tmp_path: Path) -> None:
    assert sorted(GEN.REGISTRY) == NAMES
    GEN.build_all(tmp_path)
    for name in NAMES:
        assert GEN._same_tree(tmp_path / name, SCENARIOS / name), (
            f"{name} is stale: run python tests/scenarios/build_scenarios.py"
        )


def test_the_issue_scenarios_exist() -> None:
    core = {
        "healthy",
        "healthy-legacy-12x",
        "isakmp-disabled",
        "no-isakmp-policy",
        "crypto-map-not-applied",
        "crypto-map-wrong-interface",
        "no-interesting-traffic",
        "source-interface-down",
        "no-route-to-peer",
        "phase1-no-response",
        "phase1-proposal-mismatch",
        "psk-mismatch",
        "transform-set-mismatch",
        "proxy-id-mismatch",
        "one-way-traffic",
        "no-traffic-encrypted",
        "insufficient-data",
    }
    assert core <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_yaml_names_known_codes(name: str) -> None:
    meta, devices = load(name)
    assert isinstance(meta["description"], str) and len(meta["description"]) > 20
    ipaddress.IPv4Address(meta["peer"])
    if meta["expected_first"] in REMOTE_ACCESS:
        assert meta["devices"] == ["R1"]
    else:
        assert meta["devices"] == ["R1", "R2"]
        # the peer checked from R1 is one of R2's own addresses
        assert meta["peer"] in devices[1].addresses
    codes = {c.value for c in Code}
    assert meta["expected_first"] in codes
    assert set(meta["expected_also"]) <= codes
    assert set(meta["must_not"]) <= codes
    assert meta["expected_first"] not in meta["must_not"]
    assert not set(meta["expected_also"]) & set(meta["must_not"])


@pytest.mark.parametrize("name", NAMES)
def test_device_yaml_and_planned_files_exist(name: str) -> None:
    meta, devices = load(name)
    missing = []
    for device in devices:
        assert device.meta["platform"] == "cisco_ios"
        assert device.meta["hostname"] == device.name
        for key in ("username", "password", "secret"):
            assert isinstance(device.meta[key], str) and device.meta[key]
        for address in device.addresses:
            ipaddress.IPv4Address(address)
        acl = crypto_acl(device)
        plan = PLAN_XE if device.xe else PLAN_FIXED
        commands = list(plan) + ([(f"show access-lists {acl}", True)] if acl else [])
        for command, sampled in commands:
            if device.read(command) is None:
                missing.append(f"{device.name}: {command}")
            elif sampled:
                assert device.read(command, 2) is not None, (
                    f"{device.name}: {command} lacks sample 2"
                )
            else:
                assert device.read(command, 2) is None, f"{device.name}: {command} is not sampled"
    if meta["expected_first"] == "INSUFFICIENT_DATA":
        assert missing == ["R1: show crypto isakmp sa"]
    else:
        assert missing == []


@pytest.mark.parametrize("name", NAMES)
def test_route_files_for_the_peer_and_both_lans(name: str) -> None:
    meta, devices = load(name)
    assert devices[0].read(f"show ip route {meta['peer']}") is not None
    lans = {"R1": ("192.168.1.0", "192.168.2.0"), "R2": ("192.168.2.0", "192.168.1.0")}
    for device in devices:
        own, other = lans[device.name]
        for lan in (own, other) if len(devices) == 2 else (own,):
            text = device.read(f"show ip route {lan}")
            assert text is not None, f"{device.name}: show ip route {lan}"
            assert text.startswith(
                ("Routing entry for ", "% Network not in table", "% Subnet not in table")
            )


@pytest.mark.parametrize("name", NAMES)
def test_addresses_agree_with_configs_and_interfaces(name: str) -> None:
    _, devices = load(name)
    for device in devices:
        config = device.read("show running-config") or ""
        assert config.startswith("Building configuration...\n\nCurrent configuration : ")
        size = int(re.search(r"Current configuration : (\d+) bytes", config)[1])  # type: ignore[index]
        assert size == len(config.split("\n", 3)[3].encode()), "Current configuration size is wrong"
        configured = re.findall(r"^ ip address ([\d.]+) ([\d.]+)$", config, re.MULTILINE)
        assert sorted(a for a, _ in configured) == sorted(device.addresses)
        assert re.search(rf"^hostname {device.name}$", config, re.MULTILINE)
        wan = device.read(f"show interfaces {device.wan}") or ""
        wan_address = re.search(r"Internet address is ([\d.]+)/", wan)
        assert wan_address and wan_address[1] in device.addresses
        # every ISAKMP SA has one of this device's addresses at one end
        for sample in (1, 2):
            for row in isakmp_rows(device.read("show crypto isakmp sa", sample) or ""):
                assert row["dst"] in device.addresses or row["src"] in device.addresses, row


@pytest.mark.parametrize("name", NAMES)
def test_conn_ids_agree_between_isakmp_engine_and_ipsec(name: str) -> None:
    _, devices = load(name)
    for device in devices:
        for sample in (1, 2):
            engine = engine_rows(device.read("show crypto engine connections active", sample) or "")
            ike_engine = {row.ident for row in engine if row.kind == "IKE"}
            isakmp_text = device.read("show crypto isakmp sa", sample)
            if isakmp_text is not None:
                live = {
                    int(r["conn"])
                    for r in isakmp_rows(isakmp_text)
                    if int(r["conn"]) and "deleted" not in r["status"]
                }
                assert live == ike_engine, f"{device.name} sample {sample}"
            ipsec_engine = {row.ident: row for row in engine if row.kind == "IPsec"}
            seen = set()
            for block in ipsec_blocks(device.read("show crypto ipsec sa", sample) or ""):
                for direction, pairs in (("inbound", block.inbound), ("outbound", block.outbound)):
                    for _, conn in pairs:
                        row = ipsec_engine.get(block.flow_ids[conn])
                        assert row is not None, (
                            f"{device.name} s{sample}: conn id {conn} not in engine"
                        )
                        seen.add(row.ident)
                        if direction == "inbound":
                            assert (row.encrypt, row.decrypt) == (0, block.decaps)
                        else:
                            assert (row.encrypt, row.decrypt) == (block.encaps, 0)
            assert seen == set(ipsec_engine), f"{device.name} s{sample}: engine rows without SAs"


@pytest.mark.parametrize("name", NAMES)
def test_spis_mirror_between_the_ends(name: str) -> None:
    _, devices = load(name)
    if len(devices) < 2:
        pytest.skip("remote access: the client is not captured")
    r1, r2 = devices
    for sample in (1, 2):
        b1 = [
            b
            for b in ipsec_blocks(r1.read("show crypto ipsec sa", sample) or "")
            if b.peer in r2.addresses and b.inbound
        ]
        b2 = [b for b in ipsec_blocks(r2.read("show crypto ipsec sa", sample) or "") if b.inbound]
        if not b1 or not b2:
            continue
        (a,), (b,) = b1, b2
        assert [spi for spi, _ in a.outbound] == [spi for spi, _ in b.inbound], f"sample {sample}"
        assert [spi for spi, _ in a.inbound] == [spi for spi, _ in b.outbound], f"sample {sample}"


@pytest.mark.parametrize("name", NAMES)
def test_counters_and_states_fit_the_expected_code(name: str) -> None:
    meta, devices = load(name)
    first = meta["expected_first"]
    for device in devices:
        s1 = ipsec_blocks(device.read("show crypto ipsec sa", 1) or "")
        s2 = ipsec_blocks(device.read("show crypto ipsec sa", 2) or "")
        for b1, b2 in zip(s1, s2, strict=True):
            if b1.inbound and b2.inbound and b1.inbound == b2.inbound:
                assert b2.encaps >= b1.encaps and b2.decaps >= b1.decaps, "counters went backwards"
        others = [a for d in devices if d is not device for a in d.addresses]
        if first in PHASE1_DOWN:
            # phase 2 cannot exist without phase 1
            assert not any(b.inbound or b.outbound for b in s1 + s2), device.name
            for sample in (1, 2):
                rows = isakmp_rows(device.read("show crypto isakmp sa", sample) or "")
                assert all(r["state"] != "QM_IDLE" for r in rows), device.name
                v2 = ikev2_rows(device.read("show crypto ikev2 sa detail", sample) or "")
                assert all(r["status"] != "READY" for r in v2), device.name
        if first == "TUNNEL_HEALTHY":
            for sample in (1, 2):
                if device.xe:
                    v2 = ikev2_rows(device.read("show crypto ikev2 sa detail", sample) or "")
                    assert [r["status"] for r in v2 if r["remote"] in others] == ["READY"]
                    continue
                rows = isakmp_rows(device.read("show crypto isakmp sa", sample) or "")
                assert [r["state"] for r in rows if {r["dst"], r["src"]} & set(others)] == [
                    "QM_IDLE"
                ]
            (b1,) = [b for b in s1 if b.peer in others]
            (b2,) = [b for b in s2 if b.peer in others]
            assert b2.encaps > b1.encaps and b2.decaps > b1.decaps, device.name
    if first in ("ONE_WAY_TRAFFIC", "NO_ROUTE_TO_REMOTE_LAN", "NAT_T_NOT_ENABLED"):
        (b1,), (b2,) = (
            ipsec_blocks(devices[0].read("show crypto ipsec sa", n) or "") for n in (1, 2)
        )
        assert b2.encaps > b1.encaps and b1.decaps == b2.decaps == 0
    if first == "NO_TRAFFIC_ENCRYPTED":
        for device in devices:
            for sample in (1, 2):
                (b,) = ipsec_blocks(device.read("show crypto ipsec sa", sample) or "")
                assert b.inbound and b.encaps == b.decaps == 0


@pytest.mark.parametrize("name", NAMES)
def test_crypto_acls_mirror_unless_the_fault_says_otherwise(name: str) -> None:
    meta, devices = load(name)
    if len(devices) < 2:
        pytest.skip("remote access: the client is not captured")
    r1, r2 = devices

    def permits(device: Device, other: Device) -> list[tuple[str, str]]:
        text = device.read(f"show access-lists {crypto_acl(device, other.addresses)}") or ""
        return re.findall(r"^\s+\d+ permit ip (\S+ \S+) (\S+ \S+)", text, re.MULTILINE)

    if r1.xe:  # route-based: the selectors follow the tunnel mode (any/any, or GRE host/host)
        modes = [
            re.findall(r"^ tunnel mode (.+)$", d.read("show running-config") or "", re.MULTILINE)
            for d in (r1, r2)
        ]
        assert (modes[0] == modes[1]) == (meta["expected_first"] != "PROXY_ID_MISMATCH")
        return
    pairs1, pairs2 = permits(r1, r2), permits(r2, r1)
    mirrored = sorted(pairs1) == sorted((d, s) for s, d in pairs2)
    assert mirrored == (meta["expected_first"] != "PROXY_ID_MISMATCH")


# Sample line: "*Nov 23 10:15:07.510: IPSEC(sa_request): ,"
_LOG_STAMP = re.compile(r"^\*(\w{3}) +(\d+) (\d\d:\d\d:\d\d\.\d{3}): ")


@pytest.mark.parametrize("name", NAMES)
def test_log_timestamps_fit_the_device_clock(name: str) -> None:
    _, devices = load(name)
    for device in devices:
        clock = device.clock()
        text = device.read("show logging") or ""
        assert "\nLog Buffer (" in text
        body = text.split("\nLog Buffer (", 1)[1].split("\n", 2)[2]
        stamps = []
        for line in body.splitlines():
            if m := _LOG_STAMP.match(line):
                stamp = datetime.strptime(
                    f"{m[1]} {m[2]} {clock.year} {m[3]}", "%b %d %Y %H:%M:%S.%f"
                )
                stamps.append(stamp)
            else:
                # a continuation line of a multi-line debug message, never a bare message
                assert line.startswith((" ", "\t")), f"{device.name}: untimestamped line {line!r}"
        assert stamps == sorted(stamps), f"{device.name}: log not in time order"
        assert stamps and stamps[-1] <= clock + timedelta(seconds=10)
        assert stamps[0] >= clock - timedelta(days=7)


@pytest.mark.parametrize("name", NAMES)
def test_secrets_appear_only_in_running_config(name: str) -> None:
    folder = SCENARIOS / name
    _, devices = load(name)
    login_secrets = [str(d.meta[k]) for d in devices for k in ("password", "secret")]
    for path in folder.rglob("*.txt"):
        text = path.read_text()
        for secret in GEN.SECRETS:
            if secret in text:
                assert path.name == "show_running-config.txt", f"{secret!r} leaks into {path}"
        for secret in login_secrets:
            assert secret not in text, f"a device.yaml credential appears in {path}"
    for device in devices:
        config = device.read("show running-config") or ""
        assert "enable secret 9 $9$" in config
        assert re.search(r"^username \S+ privilege 15 secret 9 \$9\$", config, re.MULTILINE)
    # R1's config carries a pre-shared secret for redaction tests to find (site-to-site key or,
    # for the Easy VPN server, the group key)
    r1_config = devices[0].read("show running-config") or ""
    assert (
        f"crypto isakmp key {GEN.PSK} address" in r1_config
        or f"\n key {GEN.EZVPN_GROUP_KEY}\n" in r1_config
        or f"\n  pre-shared-key {GEN.PSK}\n" in r1_config  # IKEv2 keyring
        or f" key {GEN.PSK}\n" in r1_config  # IKEv1 keyring: pre-shared-key address A key K
    )


def test_issue_4_ikev2_and_format_variant_scenarios_exist() -> None:
    assert {
        "ikev2-healthy",
        "ikev2-proposal-mismatch",
        "ikev2-auth-failed",
        "ikev2-ts-unacceptable",
        "ikev2-transform-mismatch",
        "ikev2-no-response",
        "vti-tunnel-down",
        "multi-peer-crypto-map",
        "vrf-aware-crypto-map",
        "healthy-ipv6-isakmp-section",
    } <= set(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if load(n)[1][0].xe])
def test_ikev2_sas_mirror_and_tunnels_follow_the_ipsec_sas(name: str) -> None:
    """Both ends of one READY IKEv2 SA show each other's SPIs swapped; a VTI's line protocol is
    up exactly while IPsec SAs exist (GRE mode: whenever the interface is up)."""
    _, devices = load(name)
    for sample in (1, 2):
        ready = [
            [
                r
                for r in ikev2_rows(d.read("show crypto ikev2 sa detail", sample) or "")
                if r["status"] == "READY"
            ]
            for d in devices
        ]
        if all(ready):
            (a,), (b,) = ready
            assert (a["local_spi"], a["remote_spi"]) == (b["remote_spi"], b["local_spi"])
    for device in devices:
        tunnel = device.read("show interfaces Tunnel0") or ""
        config = device.read("show running-config") or ""
        sas = any(b.inbound for b in ipsec_blocks(device.read("show crypto ipsec sa") or ""))
        up = "line protocol is up" in tunnel.splitlines()[0]
        if " tunnel mode ipsec ipv4" in config:
            assert up == sas, device.name
        assert f"destination {'10.2.2.1' if device.name == 'R1' else '10.1.1.1'}" in tunnel


def test_psk_mismatch_configs_hold_different_keys() -> None:
    _, (r1, r2) = load("psk-mismatch")
    keys = [
        re.search(
            r"^crypto isakmp key (\S+) address", d.read("show running-config") or "", re.MULTILINE
        )[1]  # type: ignore[index]
        for d in (r1, r2)
    ]
    assert keys[0] != keys[1] and set(keys) <= set(GEN.SECRETS)


def test_legacy_scenario_uses_the_old_layouts() -> None:
    _, (r1, _) = load("healthy-legacy-12x")
    assert (r1.read("show crypto isakmp sa") or "").startswith(
        "dst             src             state          conn-id slot status"
    )
    assert "ID Interface            IP-Address      State  Algorithm" in (
        r1.read("show crypto engine connections active") or ""
    )
    assert "local addr. 10.1.1.1" in (r1.read("show crypto ipsec sa") or "")
    _, (h1, _) = load("healthy")
    assert (h1.read("show crypto isakmp sa") or "").startswith("IPv4 Crypto ISAKMP SA\n")
    assert "Crypto Engine Connections" in (h1.read("show crypto engine connections active") or "")
