"""The runbook's intrusive steps (debug, ping, clear) over real SSH sessions to the lab.

Each test runs one step of the packaged crypto-map runbook on a live session
(:func:`~ipsec_doctor.runbook.live.nornir_session`) and checks what the emulated routers saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.nornir_collector import build_nornir
from ipsec_doctor.lab.emulator import EmulatorLab, run_lab
from ipsec_doctor.lab.inventory_writer import write_inventory
from ipsec_doctor.resources import data_dir
from ipsec_doctor.runbook.engine import RunbookEngine, RunbookRun
from ipsec_doctor.runbook.intrusive import IntrusiveSteps
from ipsec_doctor.runbook.io import Action
from ipsec_doctor.runbook.live import nornir_session
from ipsec_doctor.runbook.schema import END, Outcome, Runbook
from ipsec_doctor.runbook.session import PipelineSession
from tests.runbook.support import ScriptedIO, crypto_map

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]


@pytest.fixture
def healthy_lab(audit_dir: Path) -> Iterator[EmulatorLab]:
    with run_lab([data_dir("scenarios") / "healthy"]) as lab:
        yield lab
        lab.assert_debugs_off()


def only(step_id: str) -> Runbook:
    """The packaged runbook reduced to one step (then the end)."""
    step = replace(crypto_map().step(step_id), next={"default": END})
    return Runbook(name="one", title="one step", platform="cisco_ios", steps=(step,), start=step_id)


def session(lab: EmulatorLab, tmp_path: Path, **kwargs: object) -> PipelineSession:
    config = write_inventory(lab, tmp_path / "inventory")
    nr = build_nornir(None, config, 4)
    return nornir_session(nr, "10.2.2.1", interval=0, poll_interval=0.05, **kwargs)  # type: ignore[arg-type]


def run_step(
    step_id: str, live: PipelineSession, script: list[object], tmp_path: Path
) -> tuple[RunbookRun, ScriptedIO]:
    io = ScriptedIO(script)
    engine = RunbookEngine(only(step_id), live, io, transcript_path=tmp_path / "t.md")
    return engine.run(), io


def test_ping_generates_traffic_from_the_protected_lan(
    healthy_lab: EmulatorLab, tmp_path: Path, audit_dir: Path
) -> None:
    run, io = run_step("data.ping", session(healthy_lab, tmp_path), [Action.RUN], tmp_path)
    (confirm,) = io.kinds("confirm")
    assert any(
        "sourced from the protected LAN interface" in line for line in confirm.intrusive_plan
    )
    visit = run.visits[0]
    (change,) = visit.changes
    assert change.device == "R1" and change.what.startswith("ping 192.168.2.1 source ")
    assert any("success rate 100%" in note for note in visit.notes)
    assert any(c.intrusive and c.command.startswith("ping ") for c in visit.commands)
    assert any(line.startswith("ping 192.168.2.1") for line in healthy_lab.device("R1").history)
    assert not any(line.startswith("ping") for line in healthy_lab.device("R2").history)
    assert "ping 192.168.2.1" in (audit_dir / "intrusive.log").read_text()


def test_clear_shows_the_exact_commands_first_and_is_scoped_to_the_peer(
    healthy_lab: EmulatorLab, tmp_path: Path
) -> None:
    run, io = run_step("clear.sa", session(healthy_lab, tmp_path), [Action.RUN], tmp_path)
    (confirm,) = io.kinds("confirm")
    assert any("clear crypto sa peer 10.2.2.1" in line for line in confirm.intrusive_plan)
    visit = run.visits[0]
    cleared = [c.what for c in visit.changes]
    assert cleared[0] == "clear crypto sa peer 10.2.2.1"
    assert all(what.startswith("clear crypto") for what in cleared)
    history = healthy_lab.device("R1").history
    assert "clear crypto sa peer 10.2.2.1" in history
    assert "clear crypto sa" not in history  # never unscoped
    assert any("came back" in note or "did not come back" in note for note in visit.notes)


def test_declining_runs_nothing_on_the_device(healthy_lab: EmulatorLab, tmp_path: Path) -> None:
    run, _ = run_step("clear.sa", session(healthy_lab, tmp_path), [Action.SKIP], tmp_path)
    assert run.visits[0].outcome is Outcome.SKIPPED
    assert not any(line.startswith("clear") for line in healthy_lab.device("R1").history)


def test_production_devices_are_refused_unless_allowed(
    healthy_lab: EmulatorLab, tmp_path: Path
) -> None:
    config = write_inventory(healthy_lab, tmp_path / "inventory")
    hosts_file = config.parent / "hosts.yaml"
    hosts = yaml.safe_load(hosts_file.read_text())
    for host in hosts.values():
        host["data"]["production"] = True
    hosts_file.write_text(yaml.safe_dump(hosts))
    nr = build_nornir(None, config, 4)
    refused = nornir_session(nr, "10.2.2.1", interval=0)
    run, io = run_step("ike.debug", refused, [], tmp_path)
    assert not io.kinds("confirm")  # not even offered
    assert "production: true" in run.visits[0].notes[0]
    allowed = nornir_session(
        nr, "10.2.2.1", interval=0, allow_intrusive=True, poll_interval=0.05, max_debug_seconds=1
    )
    run, io = run_step("ike.debug", allowed, [Action.RUN], tmp_path)
    assert io.kinds("confirm")
    assert [c.undone for c in run.visits[0].changes] == [True, True]


def test_debug_step_is_undone_and_verified(healthy_lab: EmulatorLab, tmp_path: Path) -> None:
    live = session(healthy_lab, tmp_path, max_debug_seconds=1)
    run, _ = run_step("ike.debug", live, [Action.RUN], tmp_path)
    visit = run.visits[0]
    assert {c.device for c in visit.changes} == {"R1", "R2"}
    assert all(c.undone for c in visit.changes)
    assert all("verified with show debugging" in c.note for c in visit.changes)
    assert "debug crypto condition peer ipv4 10.2.2.1" in healthy_lab.device("R1").history


def test_a_session_dropped_while_the_person_read_is_reopened_first(
    healthy_lab: EmulatorLab, tmp_path: Path
) -> None:
    live = session(healthy_lab, tmp_path, max_debug_seconds=1)
    r1 = next(end for end in live.ends if end.name == "R1")
    live.runner_for(r1)
    runner = r1.runner
    assert runner is not None
    runner.connection.disconnect()  # the router's exec-timeout closed the idle vty
    run, _ = run_step("ike.debug", live, [Action.RUN], tmp_path)
    assert [c.undone for c in run.visits[0].changes] == [True, True]


def test_a_read_step_reconnects_a_dropped_session(healthy_lab: EmulatorLab, tmp_path: Path) -> None:
    live = session(healthy_lab, tmp_path)
    r1 = next(end for end in live.ends if end.name == "R1")
    live.runner_for(r1)
    assert r1.runner is not None
    r1.runner.connection.disconnect()  # type: ignore[attr-defined]
    run, _ = run_step("ike.sa", live, [], tmp_path)
    visit = run.visits[0]
    assert {c.outcome for c in visit.commands if c.device == "R1"} == {"ok"}
    assert visit.outcome is Outcome.CLEAR


def test_ctrl_c_while_the_second_router_starts_its_debugs_reports_both(
    healthy_lab: EmulatorLab, tmp_path: Path
) -> None:
    """Ctrl-C inside a debug session's start: it undoes itself, and the change is on record."""
    live = session(healthy_lab, tmp_path, max_debug_seconds=5)
    driver = live.intrusive
    assert isinstance(driver, IntrusiveSteps)

    def notify(text: str) -> None:
        if text.startswith("R2:"):
            raise KeyboardInterrupt  # the person presses Ctrl-C just as R2's debugs are on

    driver.notify = notify
    step = crypto_map().step("ike.debug")
    with pytest.raises(KeyboardInterrupt):
        driver.run(step, live.ends)
    changes = driver.undo_all()
    assert sorted(c.device for c in changes) == ["R1", "R2"]
    assert all(c.undone for c in changes)
    live.close()
    healthy_lab.assert_debugs_off()


def config_then_debug(debug_id: str) -> Runbook:
    """The packaged runbook's configuration step, then its debug step (default debugs)."""
    config = replace(crypto_map().step("prereq.isakmp"), next={"default": debug_id})
    debug = replace(crypto_map().step(debug_id), next={"default": END})
    return Runbook(
        name="two",
        title="config, then debug",
        platform="cisco_ios",
        steps=(config, debug),
        start=config.id,
    )


def run_debug_after_config(
    lab: EmulatorLab, tmp_path: Path, debug_id: str = "ike.debug"
) -> tuple[RunbookRun, ScriptedIO]:
    live = session(lab, tmp_path, max_debug_seconds=10)
    io = ScriptedIO([Action.NEXT, Action.RUN])
    engine = RunbookEngine(config_then_debug(debug_id), live, io, transcript_path=tmp_path / "t.md")
    return engine.run(), io


@pytest.mark.parametrize("debug_id", ["ike.debug", "ipsec.debug"])
def test_an_ikev2_router_gets_the_debugs_check_debug_picks(
    audit_dir: Path, tmp_path: Path, debug_id: str
) -> None:
    """IKEv2 routers (no IKEv1): `debug crypto ikev2` and ipsec, as `check --debug` does."""
    with run_lab([data_dir("scenarios") / "ikev2-proposal-mismatch"]) as lab:
        run, io = run_debug_after_config(lab, tmp_path, debug_id)
        lab.assert_debugs_off()
    (confirm,) = io.kinds("confirm")
    assert confirm.intrusive_plan[0].startswith(
        "R1: debug crypto condition peer ipv4 10.2.2.1; debug crypto ikev2; debug crypto ipsec "
    )
    visit = run.visits[-1]
    assert [c.what.split("; ")[1:] for c in visit.changes] == [
        ["debug crypto ikev2", "debug crypto ipsec"]
    ] * 2
    assert all(c.undone and "verified with show debugging" in c.note for c in visit.changes)
    for name, peer in (("R1", "10.2.2.1"), ("R2", "10.1.1.1")):
        history = lab.device(name).history
        assert history[0] == f"debug crypto condition peer ipv4 {peer}"
        assert "debug crypto ikev2" in history and "debug crypto ipsec" in history
        assert "debug crypto isakmp" not in history
        assert history[-2:] == ["undebug all", f"no debug crypto condition peer ipv4 {peer}"]
    lines = [c for c in visit.commands if c.intrusive and c.command == "debug crypto ikev2"]
    assert {c.device for c in lines} == {"R1", "R2"}
    r2 = next(c.raw for c in lines if c.device == "R2")
    assert "IKEv2-ERROR:" in r2 and "Failed to find a matching policy" in r2


def test_an_ikev1_router_keeps_isakmp_and_ipsec(healthy_lab: EmulatorLab, tmp_path: Path) -> None:
    run, _ = run_debug_after_config(healthy_lab, tmp_path)
    visit = run.visits[-1]
    assert [c.what.split("; ")[1:] for c in visit.changes] == [
        ["debug crypto isakmp", "debug crypto ipsec"]
    ] * 2
    assert all(c.undone for c in visit.changes)
    for name in ("R1", "R2"):
        history = healthy_lab.device(name).history
        assert "debug crypto isakmp" in history and "debug crypto ipsec" in history
        assert "debug crypto ikev2" not in history
