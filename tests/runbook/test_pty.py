"""End to end in a pseudo-terminal: the real `ipsec-doctor runbook` against the bundled lab.

A person's keystrokes are sent with pexpect; the routers are the asyncssh emulator, reached
over real SSH through Nornir and netmiko. No sleeps: every step waits for the text it needs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

from ipsec_doctor.lab.emulator import EmulatorLab, run_lab  # noqa: E402
from ipsec_doctor.lab.inventory_writer import write_inventory  # noqa: E402
from ipsec_doctor.resources import data_dir  # noqa: E402

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
PROMPT = r"\[q\]uit > "
CONFIRM = r"Run this intrusive step\? \[y\]es / \[s\]kip / \[b\]ack / \[q\]uit > "
SCENARIO = "phase1-proposal-mismatch"


def command() -> list[str]:
    """The real command line: the installed console script, else the same entry point."""
    script = shutil.which("ipsec-doctor")
    if script:
        return [script]
    return [sys.executable, "-m", "ipsec_doctor.cli.main"]


def spawn(args: list[str], tmp_path: Path) -> pexpect.spawn:
    env = dict(os.environ)
    env.update(
        NO_COLOR="1",
        IPSEC_DOCTOR_STATE_DIR=str(tmp_path / "state"),  # the intrusive audit log
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        COLUMNS="120",
    )
    argv = [*command(), "runbook", *args]
    child = pexpect.spawn(
        argv[0], argv[1:], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=90
    )
    child.logfile_read = open(tmp_path / "terminal.log", "w", encoding="utf-8")  # noqa: SIM115
    return child


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return int(child.exitstatus)


def next_step(child: pexpect.spawn, step: str) -> None:
    child.expect(rf"== Step \d+: {step} ")
    child.expect(PROMPT)


def test_full_outage_in_a_terminal(tmp_path: Path) -> None:
    transcript = tmp_path / "incident.md"
    child = spawn(
        [
            "--lab",
            SCENARIO,
            "--peer",
            "10.2.2.1",
            "--interval",
            "0",
            "--debug-seconds",
            "2",
            "--transcript",
            str(transcript),
        ],
        tmp_path,
    )
    child.expect("ipsec-doctor runbook crypto-map")
    for step in ("prereq.isakmp", "traffic.acl", "traffic.route", "traffic.crypto_map"):
        next_step(child, step)
        assert "Verdict: clear" in child.before
        child.sendline("n")
    # question 2, step 1: IKE is not up, and the diagnosis already names why
    next_step(child, "ike.sa")
    assert "Verdict: FOUND" in child.before
    assert "PHASE1_PROPOSAL_MISMATCH" in child.before
    assert "MM_NO_STATE" in child.before
    assert "Next: ike.proposal" in child.before
    child.sendline("w")  # the raw output of the step, then the same question again
    child.expect("--- R1: show crypto isakmp sa")
    child.expect(PROMPT)
    child.sendline("n")
    next_step(child, "ike.proposal")
    assert "atts are not acceptable" in child.before
    assert "Fix (on R2):" in child.before
    child.sendline("n")
    # the debug step: the risk is explained and nothing runs before "y"
    child.expect(r"== Step 7: ike.debug ")
    child.expect("Risk:")
    child.expect(CONFIRM)
    assert "debug crypto condition peer ipv4 10.2.2.1" in child.before
    child.sendline("")  # Enter alone is no consent
    child.expect("Type y to run it")
    child.expect(CONFIRM)
    child.sendline("y")
    child.expect(PROMPT)
    result = child.before
    assert "debugs on for 10.2.2.1" in result
    assert "Verdict: FOUND" in result
    assert "PHASE1_PROPOSAL_MISMATCH" in result
    assert "undone (undebug all; no debug crypto condition peer ipv4 10.2.2.1)" in result
    child.sendline("n")
    child.expect(r"== Conclusion \(completed\) ==")
    child.expect("Root cause: PHASE1_PROPOSAL_MISMATCH")
    child.expect("Transcript written to")
    assert finish(child) == 1  # a critical finding, as `check` would exit

    text = transcript.read_text(encoding="utf-8")
    assert "| Mode | lab scenario phase1-proposal-mismatch |" in text
    assert "Root cause: **PHASE1_PROPOSAL_MISMATCH**" in text
    assert "### 7. `ike.debug`" in text
    assert "- Engineer: confirmed, next" in text
    assert "debug crypto isakmp; debug crypto ipsec` — undone" in text
    assert "Lab-R1-ssh!" not in text and "Sup3rS3cretPSK!" not in text
    audit = (tmp_path / "state" / "intrusive.log").read_text(encoding="utf-8")
    assert "undebug all" in audit


@pytest.fixture
def lab() -> Iterator[EmulatorLab]:
    with run_lab([data_dir("scenarios") / SCENARIO]) as running:
        yield running


def test_ctrl_c_during_a_debug_leaves_no_debug_and_writes_the_transcript(
    tmp_path: Path, lab: EmulatorLab
) -> None:
    config = write_inventory(lab, tmp_path / "inventory")
    transcript = tmp_path / "interrupted.md"
    child = spawn(
        [
            "--nornir-config",
            str(config),
            "--peer",
            "10.2.2.1",
            "--interval",
            "0",
            "--debug-seconds",
            "120",
            "--transcript",
            str(transcript),
        ],
        tmp_path,
    )
    for step in ("prereq.isakmp", "traffic.acl", "traffic.route", "traffic.crypto_map"):
        next_step(child, step)
        child.sendline("n")
    next_step(child, "ike.sa")
    child.sendline("n")
    next_step(child, "ike.proposal")
    child.sendline("n")
    child.expect(CONFIRM)
    child.sendline("y")
    child.expect("R1: debugs on for 10.2.2.1")
    child.expect("R2: debugs on for 10.1.1.1")
    assert lab.leftover_debugs(), "the debugs should be on while the step watches"
    child.sendintr()  # Ctrl-C while the debug output is being read
    child.expect(r"== Conclusion \(interrupted\) ==")
    child.expect("Transcript written to")
    assert finish(child) == 130
    lab.assert_debugs_off()
    text = transcript.read_text(encoding="utf-8")
    assert "interrupted with Ctrl-C" in text
    assert "Root cause: **PHASE1_PROPOSAL_MISMATCH**" in text
    assert text.count("— undone (undebug all;") == 2  # both routers, verified


def test_ctrl_c_at_a_prompt_still_writes_the_transcript(tmp_path: Path) -> None:
    transcript = tmp_path / "early.md"
    child = spawn(
        [
            "--lab",
            SCENARIO,
            "--peer",
            "10.2.2.1",
            "--interval",
            "0",
            "--transcript",
            str(transcript),
        ],
        tmp_path,
    )
    next_step(child, "prereq.isakmp")
    child.sendline("n")
    next_step(child, "traffic.acl")
    child.sendintr()
    child.expect(r"== Conclusion \(interrupted\) ==")
    assert finish(child) == 130
    text = transcript.read_text(encoding="utf-8")
    assert "interrupted with Ctrl-C" in text
    assert "`traffic.acl`" in text
    assert "None: only show commands were run." in text


TEAM_RUNBOOK = """\
runbook: team-debug
title: Our short phase 1 runbook
platform: cisco_ios
steps:
  - id: ike.proposal
    title: Do the ISAKMP policies match?
    commands: [isakmp_policy, running_config]
    next: {found: ike.debug, default: end}
  - id: ike.debug
    title: Watch phase 1 with debugs
    intrusive: true
    action: debug
    options: {seconds: 20}
    risk: Conditional debugs on both routers for at most 20 seconds, always turned off.
    references: [ike.logs, ike.proposal]
    next: end
"""


def test_a_team_runbook_shows_the_debug_lines(tmp_path: Path) -> None:
    """`--runbook FILE` and a lab folder whose R2 prints debug messages while debugging."""
    lab_folder = tmp_path / "lab" / SCENARIO
    shutil.copytree(data_dir("scenarios") / SCENARIO, lab_folder)
    log = (lab_folder / "R2" / "show_logging.txt").read_text(encoding="utf-8").splitlines()
    negotiation = [line for line in log if "10:15:11." in line]
    (lab_folder / "R2" / "debug_crypto_isakmp.txt").write_text(
        "\n".join(negotiation) + "\n", encoding="utf-8"
    )
    runbook = tmp_path / "team.yaml"
    runbook.write_text(TEAM_RUNBOOK, encoding="utf-8")
    transcript = tmp_path / "team.md"
    child = spawn(
        [
            "--lab",
            str(lab_folder),
            "--peer",
            "10.2.2.1",
            "--runbook",
            str(runbook),
            "--transcript",
            str(transcript),
        ],
        tmp_path,
    )
    child.expect("ipsec-doctor runbook team-debug")
    next_step(child, "ike.proposal")
    assert "PHASE1_PROPOSAL_MISMATCH" in child.before
    child.sendline("n")
    child.expect(CONFIRM)
    child.sendline("yes")
    child.expect(PROMPT)
    result = child.before
    assert "Output of `debug crypto isakmp` on R2" in result
    assert "no offers accepted!" in result
    assert "phase 1 SA policy not acceptable!" in result
    assert "negotiation failed" in result  # the debug session stopped at the failure message
    child.sendline("n")
    child.expect(r"== Conclusion \(completed\) ==")
    assert finish(child) == 1
    text = transcript.read_text(encoding="utf-8")
    assert "- R2: `debug crypto isakmp` — ok (from the intrusive action)" in text


IKEV2_RUNBOOK = """\
runbook: team-ikev2-debug
title: Our short IKEv2 runbook
platform: cisco_ios
steps:
  - id: ike.proposal
    title: Do the IKEv2 proposals match?
    commands: [running_config, ikev2_proposal, ikev2_policy]
    next: ike.debug
  - id: ike.debug
    title: Watch the IKE negotiation with the debugs check --debug would pick
    intrusive: true
    action: debug
    options: {seconds: 20}
    risk: Conditional debugs on both routers for at most 20 seconds, always turned off.
    references: [ike.logs, ike.proposal]
    next: end
"""


def test_an_ikev2_router_gets_the_ikev2_debug(tmp_path: Path) -> None:
    """No ``debugs`` option: the step turns on what ``check --debug`` picks, ikev2 here."""
    runbook = tmp_path / "team.yaml"
    runbook.write_text(IKEV2_RUNBOOK, encoding="utf-8")
    transcript = tmp_path / "team.md"
    args = ["--lab", "ikev2-proposal-mismatch", "--peer", "10.2.2.1", "--interval", "0"]
    child = spawn([*args, "--runbook", str(runbook), "--transcript", str(transcript)], tmp_path)
    child.expect("ipsec-doctor runbook team-ikev2-debug")
    next_step(child, "ike.proposal")
    child.sendline("n")
    child.expect(CONFIRM)
    shown = child.before  # what will be typed, before any consent
    flat = " ".join(shown.split())  # the plan may be wrapped to the terminal's width
    for peer in ("10.2.2.1", "10.1.1.1"):
        on = f"debug crypto condition peer ipv4 {peer}; debug crypto ikev2; debug crypto ipsec"
        assert on in flat
    assert "debug crypto isakmp" not in shown  # these routers run no IKEv1
    child.sendline("yes")
    child.expect(PROMPT)
    result = child.before
    assert "Output of `debug crypto ikev2` on R2" in result
    assert "Failed to find a matching policy" in result  # R2's IKEv2 debug line
    assert "negotiation failed" in result
    assert result.count("undone (undebug all; no debug crypto condition peer ipv4") == 2
    child.sendline("n")
    child.expect(r"== Conclusion \(completed\) ==")
    assert finish(child) == 1
    text = transcript.read_text(encoding="utf-8")
    assert "debug crypto ikev2; debug crypto ipsec` — undone" in text
    assert "- R2: `debug crypto ikev2` — ok (from the intrusive action)" in text
    audit = (tmp_path / "state" / "intrusive.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in audit]
    for device, peer in (("R1", "10.2.2.1"), ("R2", "10.1.1.1")):
        done = [(r["action"], r["command"]) for r in records if r["device"] == device]
        assert done == [
            ("do", f"debug crypto condition peer ipv4 {peer}"),
            ("do", "debug crypto ikev2"),
            ("do", "debug crypto ipsec"),
            ("undo", "undebug all"),
            ("undo", f"no debug crypto condition peer ipv4 {peer}"),
            ("check", "show debugging"),
        ]
