"""The audit's per-device collection: shared outputs once, each command once, one reconnect."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsec_doctor.audit import collector
from ipsec_doctor.audit.collector import CachingRunner, SharedDeriver, audit_device, split_plan
from ipsec_doctor.collect.base import (
    CommandTimeoutError,
    ConnectionLostError,
    NoWaitClock,
)
from ipsec_doctor.collect.file_collector import FileCommandRunner
from ipsec_doctor.collect.plan_runner import PlanStep, parse_layer_deriver, plan_info
from ipsec_doctor.model.capture import Outcome
from tests.audit.fleet import SCENARIOS_ROOT


class CountingRunner(FileCommandRunner):
    """Files, counting what is sent; optionally failing some commands."""

    def __init__(self, directory: Path, device: str, fail: dict[str, Exception] | None = None):
        super().__init__(
            directory, device=device, wider_patterns=plan_info("cisco_ios").wider_patterns
        )
        self.sent: list[tuple[str, int]] = []
        self.fail = fail or {}
        self.reconnects = 0

    def run(self, command: str, *, sample: int, read_timeout: float) -> str:
        self.sent.append((command, sample))
        for text, error in self.fail.items():
            if text in command:
                raise error
        return super().run(command, sample=sample, read_timeout=read_timeout)

    def reconnect(self) -> bool:
        self.reconnects += 1
        return True


def test_split_plan_shares_what_every_tunnel_reads() -> None:
    shared, per_tunnel = split_plan(plan_info("cisco_ios").steps)
    assert "show crypto ipsec sa" in [s.command for s in shared]  # the wider output
    assert all("{" not in s.command for s in shared)
    assert {s.id for s in per_tunnel} >= {"crypto_acl", "route_peer", "route_local_lan"}


def test_a_device_with_two_tunnels_sends_each_command_once() -> None:
    runner = CountingRunner(SCENARIOS_ROOT / "crypto-acl-overlap" / "R1", "R1")
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=NoWaitClock())
    assert [t.ref.peer for t in audit.tunnels] == ["10.2.2.1", "10.3.3.1"]
    assert len(runner.sent) == len(set(runner.sent))
    shared = ("show running-config", 1)
    assert runner.sent.count(shared) == 1
    assert {c.command for c in audit.commands} >= {
        "show ip route 10.2.2.1",
        "show ip route 10.3.3.1",
    }
    assert audit.addresses and "10.1.1.1" in audit.addresses
    codes = {f.code.value for t in audit.tunnels for f in t.findings}
    assert "CRYPTO_ACL_OVERLAP" in codes


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("healthy", "TUNNEL_HEALTHY"),
        ("psk-mismatch", "PSK_MISMATCH"),
        ("transform-set-mismatch", "TRANSFORM_SET_MISMATCH"),
    ],
)
def test_one_end_alone_is_diagnosed(scenario: str, code: str) -> None:
    runner = CountingRunner(SCENARIOS_ROOT / scenario / "R1", "R1")
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=NoWaitClock())
    (tunnel,) = audit.tunnels
    assert code in [f.code.value for f in tunnel.findings]
    outcome = audit.outcome()
    assert outcome.reachable and outcome.tunnels == 1 and outcome.commands_ok > 10


def test_interval_takes_the_second_samples_once_per_device() -> None:
    runner = CountingRunner(SCENARIOS_ROOT / "crypto-acl-overlap" / "R1", "R1")
    clock = NoWaitClock()
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=clock, interval=5.0)
    second = [c for c, s in runner.sent if s == 2]
    shared = {
        "show crypto isakmp sa",
        "show crypto ipsec sa",
        "show crypto engine connections active",
    }
    assert shared <= set(second)
    acls = [c for c in second if c.startswith("show access-lists ")]
    assert len(acls) == 2  # each tunnel's own crypto ACL
    assert len(second) == len(set(second))
    assert clock.slept and sum(clock.slept) >= 5.0
    for tunnel in audit.tunnels:
        assert tunnel.state.ike_sas_later is not None


def test_a_timeout_is_not_retried_for_the_next_tunnel() -> None:
    error = CommandTimeoutError("R1: timed out", device="R1", command="show crypto ipsec sa")
    runner = CountingRunner(
        SCENARIOS_ROOT / "crypto-acl-overlap" / "R1", "R1", fail={"show crypto ipsec sa": error}
    )
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=NoWaitClock())
    assert runner.sent.count(("show crypto ipsec sa", 1)) == 1
    outcomes = {(c.command, c.outcome) for c in audit.commands}
    assert ("show crypto ipsec sa", Outcome.TIMEOUT.value) in outcomes
    for tunnel in audit.tunnels:
        assert any(
            f.code.value == "INSUFFICIENT_DATA" and f.detail.get("outcome") == "timeout"
            for f in tunnel.findings
        )


def test_a_lost_session_is_reopened_once_per_device() -> None:
    lost = ConnectionLostError("R1: closed", device="R1", command="show crypto isakmp policy")
    runner = CountingRunner(
        SCENARIOS_ROOT / "crypto-acl-overlap" / "R1", "R1", fail={"show crypto isakmp policy": lost}
    )
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=NoWaitClock())
    assert runner.reconnects == 1
    assert runner.sent.count(("show crypto isakmp policy", 1)) == 2  # once more after reopening
    failed = [c for c in audit.commands if c.outcome == "error"]
    assert failed and all("closed" in c.error or "not run" in c.error for c in failed)
    assert len(audit.tunnels) == 2  # enumerated before the loss


def test_caching_runner_remembers_outputs_and_failures() -> None:
    class Inner:
        device = "R1"
        calls = 0

        def run(self, command: str, *, sample: int, read_timeout: float) -> str:
            self.calls += 1
            if command == "bad":
                raise CommandTimeoutError("slow", device="R1", command=command)
            return f"out {command} {sample}"

        def reconnect(self) -> bool:
            return False

    inner = Inner()
    cache = CachingRunner(inner)
    assert cache.run("show  x", sample=1, read_timeout=1) == "out show  x 1"
    assert cache.run("show x", sample=1, read_timeout=1) == "out show  x 1"
    assert cache.run("show x", sample=2, read_timeout=1) == "out show x 2"
    for _ in range(2):
        with pytest.raises(CommandTimeoutError):
            cache.run("bad", sample=1, read_timeout=1)
    assert inner.calls == 3
    assert not cache.reconnect() and cache.dead
    with pytest.raises(ConnectionLostError):
        cache.run("new", sample=1, read_timeout=1)


def test_strongswan_ikev2_tunnels_are_enumerated() -> None:
    folder = Path(__file__).resolve().parents[1] / "captures" / "strongswan" / "healthy" / "gw1"
    runner = FileCommandRunner(
        folder, device="gw1", wider_patterns=plan_info("strongswan").wider_patterns
    )
    audit = audit_device(runner, name="gw1", platform="strongswan", clock=NoWaitClock())
    (tunnel,) = audit.tunnels
    assert tunnel.ref.peer == "198.51.100.129"
    assert "IKEv2 SA (ESTABLISHED)" in tunnel.ref.sources
    assert [f.code.value for f in tunnel.findings] == ["TUNNEL_HEALTHY"]


def _cisco_devices() -> list[Path]:
    found = []
    for folder in sorted(SCENARIOS_ROOT.glob("*/*")):
        device = folder / "device.yaml"
        if folder.is_dir() and device.is_file() and "cisco_ios" in device.read_text():
            found.append(folder)
    return found


@pytest.mark.parametrize("folder", _cisco_devices(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_settled_features_change_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared steps' deriver stops parsing once the configuration has decided every
    feature: the audit of each lab device is the same as with a parse per derivation."""
    fast = audit_device(
        CountingRunner(folder, folder.name), name=folder.name, platform="cisco_ios",
        clock=NoWaitClock(),
    )  # fmt: skip
    monkeypatch.setattr(collector, "SharedDeriver", lambda _steps: parse_layer_deriver)
    slow = audit_device(
        CountingRunner(folder, folder.name), name=folder.name, platform="cisco_ios",
        clock=NoWaitClock(),
    )  # fmt: skip
    assert fast.commands == slow.commands
    assert fast.note == slow.note
    assert [(t.ref, t.state, t.findings) for t in fast.tunnels] == [
        (t.ref, t.state, t.findings) for t in slow.tunnels
    ]


def test_shared_deriver_parses_until_the_features_are_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[SharedDeriver] = []

    def counting(steps: list[PlanStep]) -> SharedDeriver:
        made.append(SharedDeriver(steps))
        return made[-1]

    monkeypatch.setattr(collector, "SharedDeriver", counting)
    runner = CountingRunner(SCENARIOS_ROOT / "healthy" / "R1", "R1")
    audit = audit_device(runner, name="R1", platform="cisco_ios", clock=NoWaitClock())
    assert audit.tunnels
    (deriver,) = made
    assert deriver.words == {"crypto_map", "tunnel_protection", "ikev1", "ikev2"}
    assert deriver.settled is not None
    assert deriver.parses == 1  # the configuration decides
