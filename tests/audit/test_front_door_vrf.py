"""The nightly audit asks each tunnel's route in the table the tunnel uses (front-door VRF)."""

from __future__ import annotations

import pytest

from ipsec_doctor.audit.collector import audit_device, split_plan
from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.collect.file_collector import FileCommandRunner
from ipsec_doctor.collect.plan_runner import plan_info
from tests.audit.fleet import SCENARIOS_ROOT


@pytest.mark.parametrize(
    ("scenario", "code"),
    [("front-door-vrf", "TUNNEL_HEALTHY"), ("front-door-vrf-no-route", "NO_ROUTE_TO_PEER")],
)
def test_the_audit_looks_the_peer_up_in_the_front_door_vrf(scenario: str, code: str) -> None:
    folder = SCENARIOS_ROOT / scenario / "R1"
    runner = FileCommandRunner(
        folder, device="R1", wider_patterns=plan_info("cisco_ios").wider_patterns
    )
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=NoWaitClock())
    (tunnel,) = audit.tunnels
    assert tunnel.findings[0].code.value == code
    ran = {c.command for c in audit.commands}
    assert {"show ip route vrf INET 10.2.2.1", "show ip route vrf INET 0.0.0.0"} <= ran
    assert not {"show ip route 10.2.2.1", "show ip route 0.0.0.0"} & ran


def test_a_lookup_whose_form_depends_on_the_tunnel_is_asked_per_tunnel() -> None:
    shared, per_tunnel = split_plan(plan_info("cisco_ios").steps)
    assert "route_default" in {s.id for s in per_tunnel}  # its VRF is the tunnel's
    assert "route_default" not in {s.id for s in shared}
