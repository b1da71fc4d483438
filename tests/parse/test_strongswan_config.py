"""swanctl.conf and proposal keywords -> neutral values (parse/strongswan_config.py)."""

from __future__ import annotations

import pytest

from ipsec_doctor.errors import ParseError
from ipsec_doctor.parse.strongswan_config import (
    esp_transforms,
    ike_policies,
    negotiated_transforms,
    parse_swanctl_conf,
    seconds,
    split_list,
)

CONF = """\
# swanctl.conf
connections {
    s2s {   # trailing comment
        version = 2
        remote_addrs = 192.0.2.1, 192.0.2.2
        proposals = aes256-sha256-modp2048,aes128-sha1-modp1024
        children {
            lan {
                esp_proposals = aes256gcm16-modp2048
                local_ts = 10.0.0.0/24
            }
        }
    }
}
secrets {
    ike-1 {
        id = "peer # not a comment"
        secret = <redacted>
    }
}
include conf.d/*.conf
"""


def test_sections_settings_and_line_numbers() -> None:
    tree = parse_swanctl_conf(CONF)
    conn = tree.section("connections", "s2s")
    assert conn is not None and conn.line_no == 3
    assert conn.get("remote_addrs") == "192.0.2.1, 192.0.2.2"
    assert conn.settings["proposals"].line_no == 6
    child = conn.section("children", "lan")
    assert child is not None and child.get("esp_proposals") == "aes256gcm16-modp2048"
    secret = tree.section("secrets", "ike-1")
    assert secret is not None and secret.get("id") == "peer # not a comment"
    assert tree.includes == ["conf.d/*.conf"]
    assert [s.key for s in conn.all_settings()][:3] == ["version", "remote_addrs", "proposals"]


def test_line_offset_is_added() -> None:
    tree = parse_swanctl_conf(CONF, line_offset=1)
    conn = tree.section("connections", "s2s")
    assert conn is not None and conn.settings["version"].line_no == 5


@pytest.mark.parametrize("text", ["a {\n", "}\n", "connections {\n  what is this\n}\n"])
def test_broken_files_are_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_swanctl_conf(text)


def test_ike_proposals_expand_to_combinations() -> None:
    combos = ike_policies("aes256-aes128-sha256-modp2048-ecp256, aes128gcm16-prfsha256-x25519")
    assert combos is not None
    values = [(c.encryption, c.hash, c.dh_group) for c in combos]
    assert values[:4] == [
        ("aes-256", "sha256", 14),
        ("aes-256", "sha256", 19),
        ("aes-128", "sha256", 14),
        ("aes-128", "sha256", 19),
    ]
    assert values[4] == ("aes-gcm-128", "sha256", 31)
    sha1 = ike_policies("3des-sha1-modp1024")
    assert sha1 is not None and (sha1[0].encryption, sha1[0].hash) == ("3des", "sha")


@pytest.mark.parametrize(
    "value", [None, "", "default", "aes256-sha256-modp2048,default", "foo-bar"]
)
def test_undecidable_ike_proposals_are_unknown(value: str | None) -> None:
    assert ike_policies(value) is None


def test_esp_proposals() -> None:
    combos = esp_transforms("aes256-sha256-modp2048, aes128-sha1, aes256gcm16")
    assert combos is not None
    assert [(c.transforms, c.pfs_group) for c in combos] == [
        (("esp-aes-256", "esp-sha256-hmac"), "group14"),
        (("esp-aes-128", "esp-sha-hmac"), ""),
        (("esp-gcm-256",), ""),
    ]
    assert esp_transforms("default") is None


def test_negotiated_transforms() -> None:
    assert negotiated_transforms("ESP:AES_CBC-256/HMAC_SHA2_256_128/MODP_2048") == (
        ("esp-aes-256", "esp-sha256-hmac"),
        "group14",
    )
    assert negotiated_transforms("AES_GCM_16-256") == (("esp-gcm-256",), "")
    assert negotiated_transforms("AES_CBC-128/HMAC_SHA1_96/ECP_256") == (
        ("esp-aes-128", "esp-sha-hmac"),
        "group19",
    )


def test_small_helpers() -> None:
    assert split_list("a, b c") == ["a", "b", "c"]
    assert (seconds("5s"), seconds("2m"), seconds("1h"), seconds("x")) == (5, 120, 3600, None)
