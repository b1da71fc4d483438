"""The plan runner: order, sampling on a fake clock, variables, refusals, dropped connections."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.base import CommandTimeoutError, ProgressEvent
from ipsec_doctor.collect.plan_runner import (
    Derivation,
    PlanStep,
    rejection_line,
    run_plan,
    steps_from_plan,
)
from ipsec_doctor.errors import UsageError
from ipsec_doctor.model.capture import DeviceCapture, Outcome

from .conftest import FakeClock, FakeRunner

PLAN = [
    PlanStep("clock", "show clock"),
    PlanStep("crypto_map", "show crypto map"),
    PlanStep("isakmp_sa", "show crypto isakmp sa", samples=2),
    PlanStep("ipsec_sa", "show crypto ipsec sa peer {peer}", samples=2),
    PlanStep("crypto_acl", "show access-lists {crypto_acl}", samples=2),
    PlanStep("route_peer", "show ip route {peer}"),
    PlanStep("route_local_lan", "show ip route {local_lan}"),
    PlanStep("source_interface", "show interfaces {source_interface}"),
    PlanStep("logging", "show logging"),
]

CRYPTO_MAP = """Crypto Map "VPNMAP" 10 ipsec-isakmp
\tPeer = 10.2.2.1
\tExtended IP access list VPN-ACL
"""


def fake_deriver(capture: DeviceCapture, peer: str) -> Derivation:
    """Derives like the parse layer would, from the raw text (enough for these tests)."""
    values: dict[str, str] = {}
    reasons: dict[str, str] = {}
    crypto_map = capture.get("show crypto map")
    if crypto_map is not None and crypto_map.ok and f"Peer = {peer}" in crypto_map.raw:
        values["crypto_acl"] = "VPN-ACL"
        values["local_lan"] = "192.168.1.0"
    elif crypto_map is not None:
        reasons["crypto_acl"] = f"no crypto map entry names {peer}"
        reasons["local_lan"] = f"no crypto map entry names {peer}"
    route = capture.get("show ip route 192.168.1.0")
    if route is not None and "directly connected, via GigabitEthernet0/1" in route.raw:
        values["source_interface"] = "GigabitEthernet0/1"
    return Derivation(values=values, reasons=reasons)


def answers() -> dict[str, object]:
    return {
        "show clock": "*10:00:00.000 UTC Mon Mar 1 2027",
        "show crypto map": CRYPTO_MAP,
        "show crypto isakmp sa": lambda s: f"10.2.2.1 10.1.1.1 QM_IDLE 100{s} ACTIVE",
        "show crypto ipsec sa peer 10.2.2.1": lambda s: f"#pkts encaps: {s * 10}",
        "show access-lists VPN-ACL": lambda s: f"10 permit ip any any ({s} matches)",
        "show ip route 10.2.2.1": "Routing entry for 10.2.2.0/24",
        "show ip route 192.168.1.0": "  * directly connected, via GigabitEthernet0/1",
        "show interfaces GigabitEthernet0/1": "GigabitEthernet0/1 is up, line protocol is up",
        "show logging": "Syslog logging: enabled",
    }


def run(
    runner: FakeRunner, clock: FakeClock, interval: float | None = 5.0, **kw: object
) -> DeviceCapture:
    device = DeviceCapture(name="R1", platform="cisco_ios")
    return run_plan(
        runner,
        PLAN,
        device=device,
        peer="10.2.2.1",
        interval=interval,
        clock=clock,
        deriver=fake_deriver,
        **kw,  # type: ignore[arg-type]
    )


def test_sampled_first_interval_filled_then_second_samples(clock: FakeClock) -> None:
    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    device = run(runner, clock, interval=5.0)
    order = [(c, s) for c, s, _ in runner.calls]
    assert order == [
        ("show crypto isakmp sa", 1),
        ("show crypto ipsec sa peer 10.2.2.1", 1),
        # the ACL name is not known yet: the crypto map (and what precedes it) runs first
        ("show clock", 1),
        ("show crypto map", 1),
        ("show access-lists VPN-ACL", 1),
        ("show ip route 10.2.2.1", 1),
        ("show ip route 192.168.1.0", 1),
        ("show interfaces GigabitEthernet0/1", 1),
        ("show logging", 1),
        ("show crypto isakmp sa", 2),
        ("show crypto ipsec sa peer 10.2.2.1", 2),
        ("show access-lists VPN-ACL", 2),
    ]
    # four one-second commands ran after the last first sample: 1 s of the 5 s is waited
    assert clock.slept == [1.0]
    assert all(c.outcome is Outcome.OK for c in device.captures)
    assert device.get("show crypto isakmp sa", 2) is not None
    assert device.get("show crypto isakmp sa", 2).raw.endswith("1002 ACTIVE")  # type: ignore[union-attr]


def test_waits_the_rest_of_the_interval_on_the_clock(clock: FakeClock) -> None:
    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    run(runner, clock, interval=30.0)
    times = {(c, s): t for c, s, t in runner.calls}
    # last first sample (the ACL) ended at +6; 30 s later sample 2 starts
    acl_end = times[("show access-lists VPN-ACL", 1)] + 1
    assert clock.slept == [pytest.approx(30.0 - (times[("show logging", 1)] + 1 - acl_end))]
    for command in ("show crypto isakmp sa", "show access-lists VPN-ACL"):
        assert times[(command, 2)] - times[(command, 1)] >= 30.0


def test_single_sample_when_no_interval(clock: FakeClock) -> None:
    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    device = run(runner, clock, interval=None)
    assert all(c.sample == 1 for c in device.captures)
    assert clock.slept == []


def test_missing_variable_recorded_with_reason(clock: FakeClock) -> None:
    data = answers()
    data["show crypto map"] = 'Crypto Map "VPNMAP" 10 ipsec-isakmp\n\tPeer = 10.9.9.9\n'
    runner = FakeRunner(data, clock)  # type: ignore[arg-type]
    device = run(runner, clock)
    acl = device.get("show access-lists {crypto_acl}")
    assert acl is not None and acl.outcome is Outcome.MISSING
    assert acl.error == "no crypto map entry names 10.2.2.1"
    assert device.get("show access-lists {crypto_acl}", 2) is None
    lan = device.get("show ip route {local_lan}")
    assert lan is not None and lan.outcome is Outcome.MISSING
    source = device.get("show interfaces {source_interface}")
    assert source is not None and source.outcome is Outcome.MISSING
    assert "could not be derived for peer 10.2.2.1" in source.error
    # everything that did not need the variables ran
    assert device.get("show logging") is not None and device.get("show logging").ok  # type: ignore[union-attr]
    assert not any("{" in command for command, _, _ in runner.calls)


def test_derivation_only_when_needed_and_new_outputs(clock: FakeClock) -> None:
    calls: list[int] = []

    def counting(capture: DeviceCapture, peer: str) -> Derivation:
        calls.append(len(capture.captures))
        return fake_deriver(capture, peer)

    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    device = DeviceCapture(name="R1", platform="cisco_ios")
    run_plan(
        runner, PLAN, device=device, peer="10.2.2.1", interval=0, clock=clock, deriver=counting
    )
    # once for the ACL before the crypto map, once after it, once for the source interface
    assert calls == [2, 4, 7]


def test_unsafe_derived_value_is_refused(clock: FakeClock) -> None:
    def evil(capture: DeviceCapture, peer: str) -> Derivation:
        return Derivation(values={"crypto_acl": "X | include", "local_lan": "1.1.1.0"})

    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    device = DeviceCapture(name="R1", platform="cisco_ios")
    run_plan(runner, PLAN, device=device, peer="10.2.2.1", interval=0, clock=clock, deriver=evil)
    acl = device.get("show access-lists {crypto_acl}")
    assert acl is not None and acl.outcome is Outcome.MISSING and "not a safe" in acl.error


def test_deriver_crash_is_a_reason_not_a_crash(clock: FakeClock) -> None:
    def broken(capture: DeviceCapture, peer: str) -> Derivation:
        raise ValueError("template exploded")

    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    device = DeviceCapture(name="R1", platform="cisco_ios")
    run_plan(runner, PLAN, device=device, peer="10.2.2.1", interval=0, clock=clock, deriver=broken)
    acl = device.get("show access-lists {crypto_acl}")
    assert acl is not None and "template exploded" in acl.error
    assert device.get("show logging") is not None


def test_rejected_command_keeps_raw_and_others_run(clock: FakeClock) -> None:
    data = answers()
    rejected = (
        "show crypto isakmp sa\n                  ^\n% Invalid input detected at '^' marker.\n"
    )
    data["show crypto isakmp sa"] = rejected
    data["show clock"] = CommandTimeoutError("R1: 'show clock' timed out after 20 s", device="R1")
    runner = FakeRunner(data, clock)  # type: ignore[arg-type]
    device = run(runner, clock)
    isakmp = device.get("show crypto isakmp sa")
    assert isakmp is not None and isakmp.outcome is Outcome.REJECTED
    assert isakmp.raw == rejected
    assert "% Invalid input detected" in isakmp.error
    assert device.get("show crypto isakmp sa", 2) is None  # no second sample after a refusal
    clock_capture = device.get("show clock")
    assert clock_capture is not None and clock_capture.outcome is Outcome.TIMEOUT
    assert device.get("show logging").ok  # type: ignore[union-attr]
    assert device.get("show crypto ipsec sa peer 10.2.2.1", 2).ok  # type: ignore[union-attr]


def test_unexpected_exception_is_one_command_error(clock: FakeClock) -> None:
    data = answers()
    data["show ip route 10.2.2.1"] = RuntimeError("boom")
    runner = FakeRunner(data, clock)  # type: ignore[arg-type]
    device = run(runner, clock)
    route = device.get("show ip route 10.2.2.1")
    assert route is not None and route.outcome is Outcome.ERROR and "boom" in route.error
    assert device.get("show logging").ok  # type: ignore[union-attr]


def test_dropped_connection_marks_the_rest_as_error(clock: FakeClock) -> None:
    runner = FakeRunner(answers(), clock, drop_after=5)  # type: ignore[arg-type]
    device = run(runner, clock, interval=30.0)
    outcomes = [(c.command, c.sample, c.outcome) for c in device.captures]
    assert [o for _, _, o in outcomes[:5]] == [Outcome.OK] * 5
    assert all(o is Outcome.ERROR for _, _, o in outcomes[5:])
    assert runner.reconnects == 1
    later = device.captures[-1]
    assert later.error.startswith("not run: R1: connection lost")
    assert len(runner.calls) == 6  # the reconnect failed: nothing more was sent
    assert clock.slept == []  # no waiting for samples that cannot be read
    assert ("show crypto isakmp sa", 2, Outcome.ERROR) in outcomes


def test_dropped_connection_recovers_after_one_reconnect(clock: FakeClock) -> None:
    runner = FakeRunner(answers(), clock, drop_after=5, reconnect_ok=True)  # type: ignore[arg-type]
    device = run(runner, clock)
    assert runner.reconnects == 1
    assert all(c.ok for c in device.captures)


def test_secrets_are_redacted_before_capture(clock: FakeClock) -> None:
    data = answers()
    data["show logging"] = "crypto isakmp key S3cretKey address 10.2.2.1\nbanner hunter2pw\n"
    runner = FakeRunner(data, clock)  # type: ignore[arg-type]
    device = run(runner, clock, known_secrets=["hunter2pw"])
    raw = device.get("show logging").raw  # type: ignore[union-attr]
    assert "S3cretKey" not in raw and "hunter2pw" not in raw
    assert "crypto isakmp key <redacted> address 10.2.2.1" in raw


def test_progress_reports_every_command_and_the_wait(clock: FakeClock) -> None:
    events: list[ProgressEvent] = []
    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    device = run(runner, clock, interval=60.0, progress=events.append)
    assert [e.command for e in events if e.command] == [c.command for c in device.captures]
    waits = [e for e in events if e.waiting]
    assert len(waits) == 1 and waits[0].waiting == pytest.approx(clock.slept[0])


def test_bad_peer_is_a_usage_error(clock: FakeClock) -> None:
    runner = FakeRunner(answers(), clock)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        run_plan(
            runner,
            PLAN,
            device=DeviceCapture("R1", "cisco_ios"),
            peer="10.2.2.1; reload",
            interval=0,
            clock=clock,
        )


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("                  ^\n% Invalid input detected at '^' marker.\n", True),
        ("% Incomplete command.\n", True),
        ('% Ambiguous command:  "show cr"\n', True),
        ("% Unknown command or computer name, or unable to find computer address\n", True),
        ("ERROR: % Invalid input detected at '^' marker.\n", True),
        ("bash: /usr/sbin/swanctl: Permission denied\n", True),
        ("Syslog logging: enabled\n" + "line\n" * 5 + "%SYS-5: Permission denied for x\n", False),
        ("", False),
    ],
)
def test_rejection_detection(text: str, refused: bool) -> None:
    assert (rejection_line(text) is not None) is refused


def test_steps_from_the_real_cisco_plan() -> None:
    plan_file = Path(__file__).parents[2] / "ipsec_doctor" / "platforms" / "cisco_ios.yaml"
    steps = steps_from_plan(yaml.safe_load(plan_file.read_text()))
    by_id = {s.id: s for s in steps}
    assert by_id["isakmp_sa"].samples == 2
    assert by_id["ipsec_sa"].wider == ("show crypto ipsec sa",)
    assert by_id["crypto_acl"].variables == ("crypto_acl",)


def test_two_steps_resolving_to_one_command_run_it_once(clock: FakeClock) -> None:
    steps = [
        PlanStep("a", "show interfaces {source_interface}"),
        PlanStep("b", "show interfaces {crypto_interface}"),
    ]

    def same(capture: DeviceCapture, peer: str) -> Derivation:
        return Derivation(values={"source_interface": "Gi0/1", "crypto_interface": "Gi0/1"})

    runner = FakeRunner({"show interfaces Gi0/1": "up"}, clock)
    device = DeviceCapture("R1", "cisco_ios")
    run_plan(runner, steps, device=device, peer="10.2.2.1", interval=0, clock=clock, deriver=same)
    assert [c for c, _, _ in runner.calls] == ["show interfaces Gi0/1"]
    assert len(device.captures) == 1
