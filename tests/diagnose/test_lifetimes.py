"""LIFETIME_MISMATCH compares each platform's own effective lifetimes (IOS <-> strongSwan).

What an engineer checks: a Cisco router and a strongSwan gateway both left at their defaults
(IOS: ISAKMP 86400 s, IPsec SA 3600 s; strongSwan: IKE_SA rekey 4 h, CHILD_SA rekey 1 h) are
not reported; a lifetime that really differs still is, as info, quoting the two values with
the lines that print them, and the fix goes to the end that deviates, in its own words.
IKE SA lifetimes only count where IKEv1 negotiates them and the shorter end (IOS) refuses the
other's longer offers; IKEv2 does not negotiate lifetimes.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.model.findings import Code, Finding, Severity
from ipsec_doctor.model.state import DeviceState, TunnelView
from ipsec_doctor.resources import data_dir
from ipsec_doctor.workflow.flow import analyze_folder

from .builders import codes, ev, healthy_view, r1, r2

STRONGSWAN_CAPTURES = Path(__file__).resolve().parents[1] / "captures" / "strongswan"
CONNS = "swanctl --list-conns"

#: gw2 of the strongSwan lab readdressed as R2 of the bundled IOS scenarios (its IKEv2
#: connection s2s-ikev2 becomes the mirror of R1's crypto map)
REWRITE = (
    (r"198\.51\.100\.129\b", "10.2.2.1"),
    (r"198\.51\.100\.1\b", "10.1.1.1"),
    (r"192\.0\.2\.128/26", "192.168.2.0/24"),
    (r"192\.0\.2\.0/26", "192.168.1.0/24"),
)


def ios_and_strongswan(tmp_path: Path, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """A capture folder: R1 of the bundled healthy IOS scenario and the real strongSwan gateway
    gw2 of the lab's healthy capture as its peer; ``edits`` maps a file name (``R1/...`` or
    ``gw2/...``) to a (regex, replacement) applied to it."""
    folder = tmp_path / "ios+strongswan"
    folder.mkdir()
    shutil.copytree(data_dir("scenarios") / "healthy" / "R1", folder / "R1")
    (folder / "gw2").mkdir()
    for path in (STRONGSWAN_CAPTURES / "healthy" / "gw2").iterdir():
        text, name = path.read_text(encoding="utf-8"), path.name
        for pattern, replacement in REWRITE:
            text, name = re.sub(pattern, replacement, text), re.sub(pattern, replacement, name)
        (folder / "gw2" / name).write_text(text, encoding="utf-8")
    for name, (pattern, replacement) in (edits or {}).items():
        path = folder / name
        text = path.read_text(encoding="utf-8")
        changed = re.sub(pattern, replacement, text)
        assert changed != text, f"{name}: {pattern!r} not found"
        path.write_text(changed, encoding="utf-8")
    (folder / "scenario.yaml").write_text(
        "peer: 10.2.2.1\ndevices: [R1, gw2]\nexpected_first: UNUSED\n", encoding="utf-8"
    )
    return folder


def lifetime(findings: Any) -> list[Finding]:
    return [f for f in findings if f.code is Code.LIFETIME_MISMATCH]


# ------------------------------------------------------------------ real captures


def test_ios_and_strongswan_at_their_defaults_are_no_lifetime_mismatch(tmp_path: Path) -> None:
    report = analyze_folder(ios_and_strongswan(tmp_path))
    assert {d.name: d.platform for d in report.devices} == {"R1": "cisco_ios", "gw2": "strongswan"}
    # IPsec SA 3600 s (IOS) = CHILD_SA rekey 3600 s (strongSwan); IKE 86400 s vs 4 h is each
    # platform's default and neither refuses the other's offers
    assert lifetime(report.findings) == []


def test_a_real_ipsec_lifetime_difference_is_reported_with_both_values(tmp_path: Path) -> None:
    folder = ios_and_strongswan(
        tmp_path,
        {"R1/show_crypto_map.txt": (r"kilobytes/3600 seconds", "kilobytes/1800 seconds")},
    )
    found = lifetime(analyze_folder(folder).findings)
    assert len(found) == 1
    finding = found[0]
    assert finding.severity is Severity.INFO
    assert finding.detail["differences"] == [
        {
            "what": "ipsec",
            "local": 1800,
            "remote": 3600,
            "local_assumed_default": False,
            "remote_assumed_default": False,
        }
    ]
    quoted = {(e.device, e.command, e.line.strip()) for e in finding.evidence}
    assert quoted == {
        ("R1", "show crypto map", "Security association lifetime: 4608000 kilobytes/1800 seconds"),
        ("gw2", CONNS, "lan-ikev2: TUNNEL, rekeying every 3600s, dpd action is none"),
    }
    assert "1800s" in finding.summary and "3600s" in finding.summary
    # R1 left IOS's default 3600 s; strongSwan is at its own default: R1 changes, in IOS words
    assert finding.fix_device == "R1"
    assert (
        finding.fix
        == "crypto map VPNMAP 10 ipsec-isakmp\n set security-association lifetime seconds 3600"
    )


def test_a_strongswan_child_rekey_time_is_fixed_on_that_child(tmp_path: Path) -> None:
    folder = ios_and_strongswan(
        tmp_path,
        {
            f"gw2/{CONNS.replace(' ', '_')}.txt": (
                r"(lan-ikev2: TUNNEL, rekeying every )3600s",
                r"\g<1>28800s",
            )
        },
    )
    found = lifetime(analyze_folder(folder).findings)
    assert len(found) == 1
    finding = found[0]
    assert (
        finding.detail["differences"][0]["local"],
        finding.detail["differences"][0]["remote"],
    ) == (3600, 28800)
    assert finding.fix_device == "gw2"
    assert "rekey_time = 3600s" in finding.fix
    assert "s2s-ikev2 {" in finding.fix and "lan-ikev2 {" in finding.fix
    assert "<connection>" not in finding.fix and "<child>" not in finding.fix


# ------------------------------------------------------------------ hand-built: IKE SA lifetimes


def as_strongswan(state: DeviceState, version: str, ike_rekey: int = 14400) -> DeviceState:
    """``state`` as a strongSwan gateway: connection ``s2s`` (``version``) with child ``lan``
    at charon's default CHILD_SA rekey (not printed), IKE rekey ``ike_rekey`` as list-conns
    prints it."""
    assert state.crypto_maps and state.ike_policies
    entry = replace(
        state.crypto_maps[0],
        name="s2s",
        acl="lan",
        lifetime_seconds=None,
        source=ev(CONNS, "  remote: 10.1.1.1", 3),
    )
    policy = replace(
        state.ike_policies[0],
        priority=1,
        connection="s2s",
        lifetime_seconds=ike_rekey,
        source=ev("cat /etc/swanctl/swanctl.conf", "        proposals = aes256-sha256-modp2048", 7),
        lifetime_source=ev(CONNS, f"s2s: {version}, rekeying every {ike_rekey}s", 1),
    )
    return replace(
        state,
        platform="strongswan",
        crypto_maps=(entry,),
        ike_policies=(policy,),
        extras={
            "crypto_map_binding": False,
            "connections": [{"name": "s2s", "version": version, "children": ["lan"]}],
        },
    )


def ios_isakmp_lifetime(state: DeviceState, seconds: int) -> DeviceState:
    assert state.ike_policies
    policy = replace(
        state.ike_policies[0],
        lifetime_seconds=seconds,
        lifetime_source=ev(
            "show crypto isakmp policy", f"\tlifetime:\t\t{seconds} seconds, no volume limit", 8
        ),
    )
    return replace(state, ike_policies=(policy,))


def pair(ios: DeviceState | None = None, peer: DeviceState | None = None) -> TunnelView:
    """The healthy R1 <-> R2 tunnel with R1 and/or R2 replaced."""
    view = healthy_view()
    assert view.remote is not None
    return replace(view, local=ios or view.local, remote=peer or view.remote)


def test_ikev1_ios_default_and_strongswan_default_are_no_mismatch() -> None:
    view = pair(peer=as_strongswan(r2(), "IKEv1"))
    # IOS 86400 s accepts strongSwan's 4 h offers; strongSwan accepts any offered lifetime
    assert lifetime(diagnose(view)) == []


def test_ikev1_ios_shorter_than_strongswan_is_reported_and_fixed_on_ios() -> None:
    view = pair(ios=ios_isakmp_lifetime(r1(), 3600), peer=as_strongswan(r2(), "IKEv1"))
    found = lifetime(diagnose(view))
    assert len(found) == 1
    finding = found[0]
    assert finding.severity is Severity.INFO
    difference = finding.detail["differences"][0]
    assert (difference["what"], difference["local"], difference["remote"]) == ("ike", 3600, 14400)
    assert difference["refused_by"] == "R1"
    assert {e.line.strip() for e in finding.evidence} == {
        "lifetime:\t\t3600 seconds, no volume limit",
        "s2s: IKEv1, rekeying every 14400s",
    }
    # strongSwan offers 14400 s plus over_time (15840 s): R1 back at IOS's default takes them
    assert finding.fix_device == "R1"
    assert finding.fix == "crypto isakmp policy 10\n lifetime 86400"
    assert "15840" in finding.detail["fix_reason"]


def test_ikev1_strongswan_offer_with_over_time_beyond_ios_is_reported() -> None:
    view = pair(ios=ios_isakmp_lifetime(r1(), 15000), peer=as_strongswan(r2(), "IKEv1"))
    found = lifetime(diagnose(view))
    assert [f.detail["differences"][0]["refused_by"] for f in found] == ["R1"]


def test_ikev2_lifetimes_are_not_negotiated_so_no_mismatch() -> None:
    view = pair(ios=ios_isakmp_lifetime(r1(), 3600), peer=as_strongswan(r2(), "IKEv2"))
    assert lifetime(diagnose(view)) == []


def test_ios_pair_with_differing_isakmp_lifetimes_still_reported() -> None:
    found = lifetime(diagnose(pair(peer=ios_isakmp_lifetime(r2(), 28800))))
    assert codes(found) == [Code.LIFETIME_MISMATCH.value]
    finding = found[0]
    assert finding.detail["differences"][0]["refused_by"] == "R2"  # refuses R1's 86400 s
    assert finding.fix_device == "R2"
    assert finding.fix == "crypto isakmp policy 10\n lifetime 86400"


def test_strongswan_child_default_against_ios_explicit_lifetime() -> None:
    ios = r1()
    assert ios.crypto_maps
    entry = replace(ios.crypto_maps[0], lifetime_seconds=1800)
    ios = replace(ios, crypto_maps=(entry,))
    found = lifetime(diagnose(pair(ios=ios, peer=as_strongswan(r2(), "IKEv2"))))
    assert len(found) == 1
    difference = found[0].detail["differences"][0]
    assert (difference["local"], difference["remote"]) == (1800, 3600)
    assert difference["remote_assumed_default"] is True  # not printed: charon's 1 h
    assert "3600s (strongswan default)" in found[0].summary
    assert found[0].fix_device == "R1"
