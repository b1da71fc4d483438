"""`audit --filter`: name, group (nested), platform and data keys; mistakes say what is known."""

from __future__ import annotations

from pathlib import Path

import pytest
from nornir.core import Nornir

from ipsec_doctor.audit.filters import declared_endpoints, declared_peers, select_hosts
from ipsec_doctor.collect.nornir_collector import build_nornir
from ipsec_doctor.errors import UsageError

HOSTS = """\
hub-ams-1:
  hostname: 192.0.2.1
  platform: cisco_ios
  groups: [hub]
  data: {site: ams, peers: [10.2.2.1, 10.3.3.1], tunnel_endpoints: 10.1.1.1}
spoke-fra-1:
  hostname: 192.0.2.2
  platform: cisco_ios
  groups: [spoke]
  data: {site: fra, roles: [edge, vpn]}
gw-ber-1:
  hostname: 192.0.2.3
  platform: strongswan
  groups: [spoke]
  data: {site: ber}
"""

GROUPS = """\
core:
  data: {tier: 1}
hub:
  groups: [core]
spoke: {}
"""


@pytest.fixture
def nr(tmp_path: Path) -> Nornir:
    (tmp_path / "hosts.yaml").write_text(HOSTS)
    (tmp_path / "groups.yaml").write_text(GROUPS)
    return build_nornir(tmp_path, None, 2)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], ["gw-ber-1", "hub-ams-1", "spoke-fra-1"]),
        (["name=hub-*"], ["hub-ams-1"]),
        (["group=spoke"], ["gw-ber-1", "spoke-fra-1"]),
        (["group=core"], ["hub-ams-1"]),  # through hub
        (["site=fra"], ["spoke-fra-1"]),
        (["tier=1"], ["hub-ams-1"]),  # group data
        (["roles=vpn"], ["spoke-fra-1"]),  # one element of a list
        (["platform=cisco_*", "group=spoke"], ["spoke-fra-1"]),
        (["hostname=192.0.2.3"], ["gw-ber-1"]),
    ],
)
def test_filters_select_hosts(nr: Nornir, filters: list[str], expected: list[str]) -> None:
    assert select_hosts(nr, filters) == expected


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["colour=red"], "unknown filter key 'colour'.*known: name, hostname, group, platform"),
        (["group=nosuch"], "no such group.*core, hub, spoke"),
        (["site"], "expected key=value"),
        (["=ams"], "expected key=value"),
        (["site=lhr"], "no host matches --filter site=lhr"),
    ],
)
def test_bad_filters_say_why(nr: Nornir, filters: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select_hosts(nr, filters)


def test_declared_peers_and_endpoints(nr: Nornir) -> None:
    hosts = list(nr.inventory.hosts)
    assert declared_peers(nr, hosts) == {"hub-ams-1": ("10.2.2.1", "10.3.3.1")}
    assert declared_endpoints(nr, hosts) == {"hub-ams-1": ("10.1.1.1",)}
