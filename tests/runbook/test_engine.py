"""The runbook engine driven by a scripted IO over the bundled scenarios (the real pipeline)."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.collect.base import ConnectionLostError
from ipsec_doctor.model.findings import Code, Severity, Stage, make_finding
from ipsec_doctor.model.report import Report
from ipsec_doctor.model.state import Evidence
from ipsec_doctor.resources import data_dir
from ipsec_doctor.runbook.choose import choose_runbook
from ipsec_doctor.runbook.engine import RunbookEngine, judge, unread_gap
from ipsec_doctor.runbook.io import Action, CommandRun
from ipsec_doctor.runbook.schema import Outcome, load_runbook_text
from ipsec_doctor.runbook.session import InterruptibleClock, folder_session
from tests.runbook.support import (
    INTERRUPT,
    FakeDriver,
    FaultyRunner,
    ScriptedIO,
    crypto_map,
    files_opener,
    scenario,
    walk,
)

PROPOSAL = "phase1-proposal-mismatch"
TO_IKE = ["prereq.isakmp", "traffic.acl", "traffic.route", "traffic.crypto_map", "ike.sa"]


def path_of(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [v.step.id for v in run.visits]


def test_proposal_mismatch_is_found_at_the_ike_step(tmp_path: Path) -> None:
    run, io, _ = walk(PROPOSAL, tmp_path=tmp_path)
    assert run.ended == "completed"
    assert path_of(run) == [*TO_IKE, "ike.proposal", "ike.debug"]
    ike = run.visits[4]
    assert ike.outcome is Outcome.FOUND
    assert ike.failure_codes == [Code.PHASE1_PROPOSAL_MISMATCH]
    assert ike.next_step == "ike.proposal"
    proposal = run.visits[5]
    assert proposal.failure_codes == [Code.PHASE1_PROPOSAL_MISMATCH]
    # the proposal step quotes the routers' own messages as evidence
    lines = [e.line for f in proposal.verdict for e in f.evidence]
    assert any("atts are not acceptable" in line for line in lines)
    # offline, the debug step cannot run: it is shown with the reason and skipped
    debug = run.visits[6]
    assert debug.outcome is Outcome.SKIPPED
    assert any("offline" in note for note in debug.notes)
    assert not io.kinds("confirm")
    assert run.conclusion.root_cause is not None
    assert run.conclusion.root_cause.code is Code.PHASE1_PROPOSAL_MISMATCH
    assert run.conclusion.changes == ()
    assert run.transcript_path is not None and run.transcript_path.is_file()
    # never read: what the diagnosis lacks, not what this router has no use for (IKEv2 here)
    assert "R1: show crypto ipsec transform-set" in run.conclusion.not_read
    assert not any("ikev2" in item for item in run.conclusion.not_read)


def test_earlier_steps_rule_codes_out_and_show_what_they_read(tmp_path: Path) -> None:
    run, _, _ = walk(PROPOSAL, tmp_path=tmp_path)
    acl = run.visits[1]
    assert acl.outcome is Outcome.CLEAR
    assert acl.ruled_out == [Code.NO_INTERESTING_TRAFFIC]
    commands = {(c.device, c.command, c.sample) for c in acl.commands}
    assert ("R1", "show access-lists VPN-TRAFFIC", 2) in commands  # counters read twice
    assert ("R2", "show crypto map", 1) in commands  # both ends
    # the mismatch is already visible from the configurations read at step 1
    assert Code.PHASE1_PROPOSAL_MISMATCH in {f.code for f in run.visits[0].others}
    # a command read earlier is reused, not run again
    crypto_map_step = run.visits[3]
    reused = [c for c in crypto_map_step.commands if c.reused]
    assert {c.command for c in reused} >= {"show crypto map", "show running-config"}


def test_a_healthy_tunnel_walks_every_stage_to_the_end(tmp_path: Path) -> None:
    run, _, _ = walk("healthy", tmp_path=tmp_path)
    assert path_of(run)[-2:] == ["data.counters", "routing.remote_lan"]
    assert all(v.outcome is Outcome.CLEAR for v in run.visits)
    counters = run.visits[-2]
    assert Code.TUNNEL_HEALTHY in {f.code for f in counters.verdict}
    assert run.conclusion.root_cause is None
    assert "The tunnel is healthy" in (tmp_path / "transcript.md").read_text()


@pytest.mark.parametrize(
    ("name", "step", "code"),
    [
        ("transform-set-mismatch", "ipsec.transform", Code.TRANSFORM_SET_MISMATCH),
        ("one-way-traffic", "data.counters", Code.ONE_WAY_TRAFFIC),
        ("crypto-map-not-applied", "traffic.crypto_map", Code.CRYPTO_MAP_NOT_APPLIED),
        ("no-route-to-peer", "ike.route", Code.NO_ROUTE_TO_PEER),
        ("psk-mismatch", "ike.auth", Code.PSK_MISMATCH),
    ],
)
def test_the_tree_leads_to_the_step_that_names_the_cause(
    tmp_path: Path, name: str, step: str, code: Code
) -> None:
    run, _, _ = walk(name, tmp_path=tmp_path)
    found = {v.step.id: v for v in run.visits}
    assert step in found, path_of(run)
    assert code in found[step].failure_codes
    assert run.conclusion.root_cause is not None and run.conclusion.root_cause.code is code


def test_back_returns_to_the_previous_step_without_running_it_again(tmp_path: Path) -> None:
    run, io, _ = walk(PROPOSAL, ["next", "next", "back", "next", "quit"], tmp_path=tmp_path)
    assert io.steps_shown[:4] == ["prereq.isakmp", "traffic.acl", "traffic.route", "traffic.acl"]
    traffic_acl = run.visits[1]
    assert traffic_acl.actions == ["next", "next"]  # left forward twice, shown once more
    assert traffic_acl.runs == 1  # going back re-shows the verdict; it does not run again
    assert run.visits[2].actions == ["back"]
    assert run.ended == "quit"
    text = (tmp_path / "transcript.md").read_text()
    assert "left with back" in text


def test_back_at_the_first_step_says_so(tmp_path: Path) -> None:
    run, io, _ = walk(PROPOSAL, ["back", "quit"], tmp_path=tmp_path)
    assert any("first step" in m for m in io.kinds("message"))
    assert run.ended == "quit"


def test_rerun_samples_the_counters_again(tmp_path: Path) -> None:
    ran: list[str] = []

    def wrap(inner):  # type: ignore[no-untyped-def]
        runner = FaultyRunner(inner, on="no such command", error=RuntimeError())
        runner.ran = ran
        return runner

    run, _, session = walk(PROPOSAL, ["next", "rerun", "quit"], tmp_path=tmp_path, wrap=wrap)
    acl = run.visits[1]
    assert acl.runs == 2
    assert acl.actions == ["rerun", "quit"]
    assert ran.count("show access-lists VPN-TRAFFIC") == 8  # 2 samples x 2 runs x 2 ends
    r1 = next(e for e in session.ends if e.name == "R1")
    kept = [c for c in r1.capture.captures if c.command == "show access-lists VPN-TRAFFIC"]
    assert sorted(c.sample for c in kept) == [1, 2]  # the re-run replaced the first samples


def test_raw_shows_the_outputs_then_asks_again(tmp_path: Path) -> None:
    _, io, _ = walk(PROPOSAL, ["raw", "quit"], tmp_path=tmp_path)
    (raw,) = io.kinds("raw")
    assert any("Protection suite" in c.raw for c in raw.commands)
    assert io.kinds("ask") == ["prereq.isakmp", "prereq.isakmp"]


def test_skip_follows_the_skipped_branch(tmp_path: Path) -> None:
    run, _, _ = walk(PROPOSAL, ["next", "skip", "quit"], tmp_path=tmp_path)
    acl = run.visits[1]
    assert acl.outcome is Outcome.SKIPPED
    assert acl.ruled_out == []
    assert acl.next_step == "traffic.source"  # skipped falls back to the unknown branch
    assert run.visits[2].step.id == "traffic.source"


def test_quit_writes_the_transcript_with_what_was_read(tmp_path: Path) -> None:
    run, io, session = walk(PROPOSAL, ["next", "quit"], tmp_path=tmp_path)
    assert run.ended == "quit"
    text = (tmp_path / "transcript.md").read_text()
    assert "quit by the engineer" in text
    assert "`traffic.acl`" in text and "`ike.sa`" not in text
    assert io.kinds("conclusion")[0].ended == "quit"
    assert all(end.runner is None for end in session.ends)  # sessions closed


def test_ctrl_c_at_a_prompt_still_writes_the_transcript(tmp_path: Path) -> None:
    driver = FakeDriver()
    run, io, _ = walk(PROPOSAL, ["next", INTERRUPT], tmp_path=tmp_path, driver=driver)
    assert run.ended == "interrupted"
    assert driver.undo_calls == 1  # the safety net ran before the sessions closed
    assert run.visits[-1].actions[-1] == "interrupted (Ctrl-C)"
    text = (tmp_path / "transcript.md").read_text()
    assert "interrupted with Ctrl-C" in text
    assert io.kinds("conclusion")


def test_ctrl_c_while_a_command_runs(tmp_path: Path) -> None:
    def wrap(inner):  # type: ignore[no-untyped-def]
        return FaultyRunner(inner, on="show crypto isakmp sa", error=KeyboardInterrupt())

    run, _, session = walk(PROPOSAL, tmp_path=tmp_path, wrap=wrap)
    assert run.ended == "interrupted"
    assert path_of(run) == TO_IKE
    assert run.visits[-1].finished_at is not None
    assert "interrupted with Ctrl-C" in (tmp_path / "transcript.md").read_text()
    assert all(end.runner is None for end in session.ends)


def test_a_failing_command_makes_the_step_not_judged(tmp_path: Path) -> None:
    def wrap(inner):  # type: ignore[no-untyped-def]
        return FaultyRunner(
            inner, on="access-lists", error=ConnectionLostError("R1: session dropped")
        )

    run, _, _ = walk(PROPOSAL, ["next", "quit"], tmp_path=tmp_path, wrap=wrap)
    acl = run.visits[1]
    assert acl.outcome is Outcome.UNKNOWN
    assert any("session dropped" in note for note in acl.notes)
    assert acl.next_step == "traffic.source"


def test_intrusive_steps_ask_first_and_can_be_declined(tmp_path: Path) -> None:
    driver = FakeDriver()
    script = ["next"] * 6 + ["skip"]
    run, io, _ = walk(PROPOSAL, script, tmp_path=tmp_path, driver=driver)
    (confirm,) = io.kinds("confirm")
    assert confirm.step.id == "ike.debug"
    assert confirm.intrusive_plan == ("R1: fake debug", "R2: fake debug")
    assert "condition peer" in confirm.step.risk
    assert driver.runs == []
    debug = run.visits[-1]
    assert debug.outcome is Outcome.SKIPPED
    assert any("declined" in note for note in debug.notes)


def test_a_confirmed_debug_step_confirms_the_finding(tmp_path: Path) -> None:
    driver = FakeDriver()
    script = ["next"] * 6 + ["run", "next"]
    run, _, session = walk(PROPOSAL, script, tmp_path=tmp_path, driver=driver)
    assert driver.runs == ["ike.debug"]
    debug = run.visits[-1]
    assert debug.actions == ["confirmed", "next"]
    assert debug.outcome is Outcome.FOUND
    assert debug.failure_codes == [Code.PHASE1_PROPOSAL_MISMATCH]
    assert [c.command for c in debug.commands if c.intrusive] == ["debug crypto debug"]
    r1 = next(e for e in session.ends if e.name == "R1")
    assert any(c.command == "debug crypto debug" for c in r1.capture.captures)
    assert [c.what for c in run.conclusion.changes] == ["fake debug"]
    text = (tmp_path / "transcript.md").read_text()
    assert "## Changes made on the devices" in text
    assert "`fake debug` — undone (fake undo)" in text


def test_rerun_of_an_intrusive_step_asks_again(tmp_path: Path) -> None:
    driver = FakeDriver()
    script = ["next"] * 6 + ["run", "rerun", "skip", "next"]
    _, io, _ = walk(PROPOSAL, script, tmp_path=tmp_path, driver=driver)
    assert len(io.kinds("confirm")) == 2
    assert driver.runs == ["ike.debug"]  # the second confirmation was declined


def test_ctrl_c_during_an_intrusive_step_reports_the_undo(tmp_path: Path) -> None:
    driver = FakeDriver(interrupt=True)
    run, _, _ = walk(PROPOSAL, ["next"] * 6 + ["run"], tmp_path=tmp_path, driver=driver)
    assert run.ended == "interrupted"
    assert [(c.what, c.undone) for c in run.conclusion.changes] == [("fake debug", True)]
    text = (tmp_path / "transcript.md").read_text()
    assert "undone at the end" in text


def test_intrusive_step_back_and_quit_from_the_confirmation(tmp_path: Path) -> None:
    driver = FakeDriver()
    run, io, _ = walk(PROPOSAL, ["next"] * 6 + ["back", "quit"], tmp_path=tmp_path, driver=driver)
    assert io.steps_shown[-1] == "ike.proposal"
    assert run.visits[-1].actions == ["back"]
    assert run.ended == "quit"


def test_transcript_is_ready_for_a_ticket(tmp_path: Path) -> None:
    walk(PROPOSAL, tmp_path=tmp_path)
    text = (tmp_path / "transcript.md").read_text()
    for part in (
        "# IPsec outage runbook: peer 10.2.2.1",
        "| User | tester |",
        "| Device R1 | local end (cisco_ios), checked for 10.2.2.1",
        "| Device R2 | remote end (cisco_ios)",
        "| Mode | offline over captures in",
        "## Conclusion",
        "Root cause: **PHASE1_PROPOSAL_MISMATCH**",
        "Fix (on R2):",
        "## Changes made on the devices",
        "None: only show commands were run.",
        "## Steps",
        "### 5. `ike.sa` — Does the router negotiate an IKE (phase 1) SA with its peer?",
        "- R1: `show crypto isakmp sa` — ok (2 samples)",
        "- Verdict: FOUND: PHASE1_PROPOSAL_MISMATCH",
        "- Verdict: clear; rules out NO_INTERESTING_TRAFFIC",
        "MM_NO_STATE",
    ):
        assert part in text, part
    # secrets never reach the transcript (the folder's PSK, login password and enable secret)
    for secret in ("Sup3rS3cretPSK!", "Lab-R1-ssh!", "Lab-R1-enable!"):
        assert secret not in text


def test_an_internal_error_still_writes_the_transcript(tmp_path: Path) -> None:
    def wrap(inner):  # type: ignore[no-untyped-def]
        return FaultyRunner(inner, on="show clock", error=KeyboardInterrupt())

    # KeyboardInterrupt at the first command: nothing judged yet, the transcript still exists
    run, _, _ = walk(PROPOSAL, tmp_path=tmp_path, wrap=wrap)
    assert run.ended == "interrupted"
    assert "## Steps" in (tmp_path / "transcript.md").read_text()


# -- judge: the verdict of one step on a hand-built report ---------------------------------------

STEP = load_runbook_text(
    """\
runbook: t
title: t
platform: cisco_ios
steps:
  - id: ipsec.transform
    title: transform sets
    commands: [transform_sets]
    rules_out: [TRANSFORM_SET_MISMATCH, PFS_MISMATCH]
""",
).steps[0]


def _finding(code: Code, reference: str, **detail: object):  # type: ignore[no-untyped-def]
    return make_finding(
        code,
        device="R1",
        peer="10.2.2.1",
        summary=code.value,
        evidence=[Evidence(str(detail.get("command", "x")), "line", device="R1")],
        reference=reference,
        detail=dict(detail),
    )


def _report(*findings) -> Report:  # type: ignore[no-untyped-def]
    return Report(peer="10.2.2.1", started_at=datetime.now(UTC).isoformat(), findings=findings)


RUN = [CommandRun("R1", "show crypto ipsec transform-set", 1, "ok")]


def test_judge_found_clear_and_rules_out() -> None:
    mismatch = _finding(Code.TRANSFORM_SET_MISMATCH, "ipsec.transform")
    verdict = judge(STEP, _report(mismatch), RUN)
    assert verdict.outcome is Outcome.FOUND and verdict.findings == [mismatch]
    pfs = _finding(Code.PFS_MISMATCH, "ipsec.pfs")
    verdict = judge(STEP, _report(pfs), RUN)
    assert verdict.outcome is Outcome.CLEAR
    assert verdict.ruled_out == [Code.TRANSFORM_SET_MISMATCH]  # PFS_MISMATCH stands elsewhere
    assert verdict.others == [pfs]


def test_judge_ignores_data_gaps_of_commands_not_run_yet() -> None:
    unread = _finding(
        Code.INSUFFICIENT_DATA, "ipsec.transform", command="show crypto ipsec sa peer 10.2.2.1"
    )
    verdict = judge(STEP, _report(unread), RUN)
    assert verdict.outcome is Outcome.CLEAR and verdict.findings == []
    assert unread_gap(unread, {("R1", "show crypto ipsec transform-set")})
    mine = _finding(
        Code.INSUFFICIENT_DATA, "ipsec.transform", command="show crypto ipsec transform-set"
    )
    verdict = judge(STEP, _report(mine), RUN)
    assert verdict.outcome is Outcome.UNKNOWN and verdict.findings == [mine]


def test_a_grouped_gap_of_skipped_commands_is_unread_until_one_of_them_ran() -> None:
    grouped = _finding(
        Code.INSUFFICIENT_DATA,
        "traffic.acl",
        outcome="skipped",
        commands=[
            {"command": "show access-lists {crypto_acl}"},
            {"command": "show ip route {remote_lan}"},
        ],
    )
    assert unread_gap(grouped, {("R1", "show crypto ipsec transform-set")})
    assert not unread_gap(grouped, {("R1", "show ip route {remote_lan}")})


def test_judge_an_earlier_critical_stage_masks_the_step() -> None:
    phase1 = _finding(Code.PHASE1_PROPOSAL_MISMATCH, "ike.proposal")
    verdict = judge(STEP, _report(phase1), RUN)
    assert verdict.outcome is Outcome.UNKNOWN
    assert "PHASE1_PROPOSAL_MISMATCH" in verdict.notes[0]
    weak = make_finding(
        Code.WEAK_CRYPTO, device="R1", peer="p", summary="s", reference="audit.crypto"
    )
    assert weak.stage is Stage.AUDIT and weak.severity is Severity.WARNING
    assert judge(STEP, _report(weak), RUN).outcome is Outcome.CLEAR


def test_judge_a_failed_command_is_not_judged() -> None:
    runs = [CommandRun("R1", "show crypto ipsec transform-set", 1, "timeout", error="timed out")]
    verdict = judge(STEP, _report(), runs)
    assert verdict.outcome is Outcome.UNKNOWN
    assert "timed out" in verdict.notes[0]
    assert judge(STEP, _report(), []).outcome is Outcome.SKIPPED


def test_actions_are_the_documented_keys() -> None:
    assert [a.value for a in Action] == ["next", "rerun", "raw", "skip", "back", "quit", "run"]
    assert crypto_map().start == "prereq.isakmp"


def test_ctrl_c_does_not_wait_for_devices_still_answering(tmp_path: Path) -> None:
    """Live devices run in threads: Ctrl-C ends the runbook at once, not after their commands."""
    release = threading.Event()

    class Slow:
        def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
            self.inner = inner

        @property
        def device(self) -> str:
            return str(self.inner.device)

        def run(self, command: str, *, sample: int, read_timeout: float) -> str:
            if command == "show crypto map" and self.device == "R2":
                # the person presses Ctrl-C while R2 is slow to answer
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                release.wait(60)
            return str(self.inner.run(command, sample=sample, read_timeout=read_timeout))

        def reconnect(self) -> bool:
            return False

    folder = scenario(PROPOSAL)
    session = folder_session(folder, "10.2.2.1", opener=files_opener(folder, Slow))
    session.parallel = True
    session.clock = InterruptibleClock()
    io = ScriptedIO(["next"])
    engine = RunbookEngine(crypto_map(), session, io, transcript_path=tmp_path / "t.md")
    started = time.monotonic()
    try:
        run = engine.run()
    finally:
        release.set()
    assert time.monotonic() - started < 10, time.monotonic() - started
    assert run.ended == "interrupted"
    assert (tmp_path / "t.md").is_file()


SCENARIOS = sorted(
    p.name for p in data_dir("scenarios").iterdir() if (p / "scenario.yaml").is_file()
)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_runbook_concludes_what_analyze_finds(tmp_path: Path, name: str) -> None:
    """`--runbook auto`, next at every step: the conclusion is the scenario's first cause."""
    meta = yaml.safe_load((scenario(name) / "scenario.yaml").read_text())
    expected = meta["expected_first"]
    session = folder_session(scenario(name), str(meta.get("peer") or "10.2.2.1"))
    runbook, _why = choose_runbook(session)
    route_based = name.startswith(("ikev2-", "vti-"))
    assert runbook.name == ("ikev2-vti" if route_based else "crypto-map")
    engine = RunbookEngine(runbook, session, ScriptedIO(), transcript_path=tmp_path / "t.md")
    run = engine.run()
    assert run.ended == "completed"
    conclusion = run.conclusion
    if expected == "TUNNEL_HEALTHY":
        assert conclusion.root_cause is None
        assert Code.TUNNEL_HEALTHY in {f.code for f in conclusion.findings}
    elif expected == "INSUFFICIENT_DATA":
        assert conclusion.root_cause is None
        assert Code.INSUFFICIENT_DATA in {f.code for f in conclusion.findings}
    else:
        assert conclusion.root_cause is not None, [v.step.id for v in run.visits]
        assert conclusion.root_cause.code.value == expected


def test_judge_a_grouped_gap_belongs_to_the_step_that_ran_one_of_its_commands() -> None:
    grouped = _finding(
        Code.INSUFFICIENT_DATA,
        "traffic.acl",
        outcome="skipped",
        commands=[{"command": "show access-lists {crypto_acl}"}],
    )
    assert judge(STEP, _report(grouped), RUN).outcome is Outcome.CLEAR  # not this step's
    ran = [CommandRun("R1", "show access-lists {crypto_acl}", 1, "missing", error="no ACL")]
    verdict = judge(STEP, _report(grouped), ran)
    assert verdict.outcome is Outcome.UNKNOWN and verdict.findings == [grouped]
