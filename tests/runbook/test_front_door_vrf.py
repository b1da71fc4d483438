"""The runbook's route step asks the table the tunnel uses, even when it is the first step run."""

from __future__ import annotations

from ipsec_doctor.runbook.schema import Step
from ipsec_doctor.runbook.session import folder_session

from .support import scenario


def test_the_route_step_reads_the_configuration_first_then_asks_the_front_door_vrf() -> None:
    session = folder_session(scenario("front-door-vrf"), "10.2.2.1", device="R1")
    step = Step(id="route", title="Route to the peer", commands=("route_peer", "route_default"))
    runs = [r for r in session.collect(step) if r.device == "R1"]
    ran = [r.command for r in runs]
    # which table IKE uses is in the configuration: it is read before the lookups
    assert ran.index("show running-config") < ran.index("show ip route vrf INET 10.2.2.1")
    assert "show ip route vrf INET 0.0.0.0" in ran
    assert "show ip route 10.2.2.1" not in ran  # the global table is not the one that counts
    assert all(r.outcome == "ok" for r in runs)


def test_once_the_configuration_is_read_no_earlier_command_is_pulled_in() -> None:
    session = folder_session(scenario("healthy"), "10.2.2.1", device="R1")
    session.collect(Step(id="config", title="Configuration", commands=("running_config",)))
    step = Step(id="route", title="Route to the peer", commands=("route_peer",))
    ran = [r.command for r in session.collect(step) if r.device == "R1"]
    assert ran == ["show ip route 10.2.2.1"]
