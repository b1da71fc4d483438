"""Plan conditions (`when:`): the loader validates them, the runner leaves out what a device
lacks (recording nothing), and runs what it cannot decide yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsec_doctor.collect.base import ProgressEvent
from ipsec_doctor.collect.plan_runner import Derivation, PlanStep, run_plan, steps_from_plan
from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.capture import DeviceCapture
from ipsec_doctor.platforms.loader import load_platform, load_platform_file

from .conftest import FakeClock, FakeRunner

PLAN = [
    PlanStep("clock", "show clock"),
    PlanStep("running_config", "show running-config"),
    PlanStep("crypto_map", "show crypto map", when=("crypto_map",)),
    PlanStep("isakmp_sa", "show crypto isakmp sa", samples=2, when=("ikev1",)),
    PlanStep("ikev2_sa", "show crypto ikev2 sa detail", samples=2, when=("ikev2",)),
    PlanStep("ipsec_sa", "show crypto ipsec sa", samples=2),
    PlanStep("ipsec_profile", "show crypto ipsec profile", when=("tunnel_protection",)),
    PlanStep("either", "show crypto session detail", when=("ikev1", "tunnel_protection")),
    PlanStep("logging", "show logging"),
]

VTI_CONFIG = "crypto ikev2 keyring K\ninterface Tunnel0\n tunnel protection ipsec profile P\n"


def config_deriver(capture: DeviceCapture, peer: str) -> Derivation:
    """Features from the raw configuration text, as the parse layer decides them."""
    config = capture.get("show running-config")
    if config is None or not config.ok:
        return Derivation()
    text = config.raw
    return Derivation(
        features={
            "crypto_map": "crypto map " in text,
            "tunnel_protection": "tunnel protection" in text,
            "ikev1": "crypto isakmp" in text,
            "ikev2": "crypto ikev2" in text,
        }
    )


def run(answers: dict[str, object], **kw: object) -> tuple[FakeRunner, DeviceCapture]:
    clock = FakeClock()
    runner = FakeRunner(answers, clock)  # type: ignore[arg-type]
    device = run_plan(
        runner,
        PLAN,
        device=DeviceCapture(name="R1", platform="cisco_ios"),
        peer="10.2.2.1",
        interval=5.0,
        clock=clock,
        deriver=config_deriver,
        **kw,  # type: ignore[arg-type]
    )
    return runner, device


def test_vti_device_gets_only_its_commands_and_nothing_is_recorded_for_the_rest() -> None:
    events: list[ProgressEvent] = []
    runner, device = run({"show running-config": VTI_CONFIG}, progress=events.append)
    sent = [c for c, _s, _t in runner.calls]
    assert sent[:2] == ["show clock", "show running-config"]  # the configuration decides first
    assert "show crypto map" not in sent and "show crypto isakmp sa" not in sent
    assert sent.count("show crypto ikev2 sa detail") == 2
    assert "show crypto ipsec profile" in sent and "show crypto session detail" in sent
    recorded = {c.command for c in device.captures}
    assert "show crypto map" not in recorded and "show crypto isakmp sa" not in recorded
    skipped = [e.message for e in events if e.outcome is None and "left out" in e.message]
    assert any(m.startswith("show crypto map: left out") for m in skipped)
    assert any("show crypto isakmp sa" in m and "ikev1" in m for m in skipped)


def test_crypto_map_device_skips_the_ikev2_commands() -> None:
    config = "crypto isakmp policy 10\ncrypto map VPNMAP 10 ipsec-isakmp\n"
    runner, _device = run({"show running-config": config})
    sent = {c for c, _s, _t in runner.calls}
    assert {"show crypto map", "show crypto isakmp sa", "show crypto session detail"} <= sent
    assert not sent & {"show crypto ikev2 sa detail", "show crypto ipsec profile"}


def test_unknown_features_run_everything() -> None:
    runner, _device = run({"show running-config": ValueError("boom")})
    sent = {c for c, _s, _t in runner.calls}
    assert {"show crypto map", "show crypto isakmp sa", "show crypto ikev2 sa detail"} <= sent


def test_steps_from_raw_yaml_read_when() -> None:
    steps = steps_from_plan(
        {"commands": [{"id": "a", "command": "show a", "when": "ikev2"}, {"command": "show b"}]}
    )
    assert steps[0].when == ("ikev2",) and steps[1].when == ()


def test_cisco_ios_plan_conditions() -> None:
    plan = {c.id: c.when for c in load_platform("cisco_ios").commands}
    assert plan["crypto_map"] == ("crypto_map",) and plan["isakmp_sa"] == ("ikev1",)
    assert plan["ikev2_sa"] == ("ikev2",) and plan["ipsec_profile"] == ("tunnel_protection",)
    assert plan["ipsec_sa"] == () and plan["running_config"] == ()
    ids = list(plan)
    assert ids.index("running_config") < ids.index("crypto_map") < ids.index("isakmp_sa")


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("ikev3", "unknown feature 'ikev3'"),
        ("[ikev2, vti]", "unknown feature 'vti'"),
        ("[]", "expected a feature or a list of features"),
        ("7", "expected a feature or a list of features"),
    ],
)
def test_loader_rejects_bad_when(tmp_path: Path, when: str, message: str) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        f"platform: demo\ncommands:\n  - id: a\n    command: show a\n    when: {when}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"demo.yaml: commands\[0\].when") as raised:
        load_platform_file(path)
    assert message in str(raised.value)


def test_loader_accepts_a_list(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        "platform: demo\ncommands:\n  - id: a\n    command: show a\n"
        "    when: [ikev1, ikev2, ikev1]\n",
        encoding="utf-8",
    )
    assert load_platform_file(path).commands[0].when == ("ikev1", "ikev2")
