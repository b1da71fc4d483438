"""Plan variants: the form of a command chosen from what the device's earlier outputs say.

``show ip route {peer}`` has the variants ``show ip route vrf {fvrf} {peer}`` and the IPv6
forms: the device is asked in the table its tunnel really uses, and nothing is recorded as
missing when a variant's variable does not apply.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsec_doctor.collect.file_collector import FileCommandRunner
from ipsec_doctor.collect.plan_runner import (
    Derivation,
    PlanStep,
    parse_layer_deriver,
    plan_info,
    run_plan,
    steps_from_plan,
)
from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.capture import DeviceCapture, Outcome
from ipsec_doctor.platforms.loader import load_platform_file
from ipsec_doctor.resources import data_dir

from .conftest import FakeClock, FakeRunner

ROUTE = PlanStep(
    "route_peer",
    "show ip route {peer}",
    variants=(
        "show ipv6 route vrf {fvrf} {ipv6_peer}",
        "show ipv6 route {ipv6_peer}",
        "show ip route vrf {fvrf} {peer}",
    ),
)
PLAN = [PlanStep("running_config", "show running-config"), ROUTE]


def config_deriver(capture: DeviceCapture, peer: str) -> Derivation:
    """The front-door VRF once the configuration was read, the IPv6 forms for IPv6 peers."""
    values: dict[str, str] = {}
    if ":" in peer:
        values["ipv6_peer"] = peer
    config = capture.get("show running-config")
    if config is not None and config.ok and "ip vrf forwarding" in config.raw:
        values["fvrf"] = config.raw.split("ip vrf forwarding ", 1)[1].split()[0]
    return Derivation(values=values)


def commands(config: str, peer: str = "10.2.2.1") -> tuple[list[str], DeviceCapture]:
    clock = FakeClock()
    runner = FakeRunner({"show running-config": config}, clock)
    device = DeviceCapture(name="R1", platform="cisco_ios")
    run_plan(
        runner, PLAN, device=device, peer=peer, interval=None, clock=clock, deriver=config_deriver
    )
    return [c for c, _s, _t in runner.calls], device


@pytest.mark.parametrize(
    ("config", "peer", "lookup"),
    [
        (
            "interface Gi0/0\n ip address 10.1.1.1 255.255.255.252\n",
            "10.2.2.1",
            "show ip route 10.2.2.1",
        ),
        (
            "interface Gi0/0\n ip vrf forwarding INET\n",
            "10.2.2.1",
            "show ip route vrf INET 10.2.2.1",
        ),
        (
            "interface Gi0/0\n ipv6 address 2001:DB8:10::1/64\n",
            "2001:DB8:30::1",
            "show ipv6 route 2001:DB8:30::1",
        ),
        (
            "interface Gi0/0\n ip vrf forwarding INET\n",
            "2001:DB8:30::1",
            "show ipv6 route vrf INET 2001:DB8:30::1",
        ),
    ],
)
def test_the_route_to_the_peer_is_asked_in_its_table(config: str, peer: str, lookup: str) -> None:
    ran, device = commands(config, peer)
    assert ran == ["show running-config", lookup]
    assert all(c.outcome is Outcome.OK for c in device.captures)  # nothing "missing"


def test_a_vrf_name_that_is_not_one_safe_word_is_never_typed() -> None:
    ran, device = commands("interface Gi0/0\n ip vrf forwarding INET;reload\n")
    assert ran == ["show running-config"]
    route = device.captures[-1]
    assert route.outcome is Outcome.MISSING
    assert "is not a safe single word" in route.error


def test_a_variant_is_never_a_reason_to_be_missing() -> None:
    assert ROUTE.variables == ("peer",)
    assert ROUTE.optional_variables == ("fvrf", "ipv6_peer")
    assert ROUTE.render({"peer": "10.2.2.1"}) == "show ip route 10.2.2.1"
    assert ROUTE.render({"peer": "10.2.2.1", "fvrf": ""}) == "show ip route 10.2.2.1"
    assert ROUTE.render({}) is None


def test_steps_from_a_raw_plan_keep_their_variants() -> None:
    (step,) = steps_from_plan(
        {
            "commands": [
                {"id": "r", "command": "show ip route {peer}", "variants": [ROUTE.variants[2]]}
            ]
        }
    )
    assert step.render({"peer": "10.2.2.1", "fvrf": "INET"}) == "show ip route vrf INET 10.2.2.1"


def test_the_loader_refuses_variants_that_are_not_commands(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        "platform: demo\ncommands: [{id: a, command: 'show ip route {peer}', variants: [1]}]\n"
    )
    with pytest.raises(ConfigError, match=r"commands\[0\]\.variants"):
        load_platform_file(path)


@pytest.mark.parametrize(
    ("scenario", "peer_lookup", "default_lookup"),
    [
        ("front-door-vrf", "show ip route vrf INET 10.2.2.1", "show ip route vrf INET 0.0.0.0"),
        ("healthy", "show ip route 10.2.2.1", "show ip route 0.0.0.0"),
    ],
)
def test_the_cisco_plan_reads_the_front_door_vrf_from_the_configuration(
    scenario: str, peer_lookup: str, default_lookup: str
) -> None:
    folder = Path(data_dir("scenarios"), scenario, "R1")
    plan = plan_info("cisco_ios")
    runner = FileCommandRunner(folder, device="R1", wider_patterns=plan.wider_patterns)
    device = DeviceCapture(name="R1", platform="cisco_ios")
    run_plan(
        runner,
        plan.steps,
        device=device,
        peer="10.2.2.1",
        interval=None,
        clock=FakeClock(),
        deriver=parse_layer_deriver,
    )
    ran = [c.command for c in device.captures]
    assert peer_lookup in ran and default_lookup in ran
    # the configuration is read before the route lookups, so the form is chosen once
    assert ran.index("show running-config") < ran.index(peer_lookup)
    assert all(c.outcome is Outcome.OK for c in device.captures), [
        (c.command, c.outcome) for c in device.captures if not c.ok
    ]
