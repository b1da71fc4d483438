"""`ipsec-doctor runbook`: listing, validation errors, offline runs and exit codes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ipsec_doctor.cli.main import main
from tests.runbook.support import scenario

PROPOSAL = str(scenario("phase1-proposal-mismatch"))


def answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_list_shows_the_packaged_runbooks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "--list"]) == 0
    out = capsys.readouterr().out
    assert "crypto-map" in out and "ikev2-vti" in out
    assert "Site-to-site tunnel over a crypto map (IKEv1 or IKEv2)" in out


def test_an_invalid_runbook_is_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_text(
        "runbook: team\ntitle: Team\nplatform: cisco_ios\nsteps:\n"
        "  - id: ike.sa\n    title: IKE\n    commands: [isakmp_sas]\n",
        encoding="utf-8",
    )
    assert main(["runbook", "--list", "--runbook", str(bad)]) == 2
    assert f"{bad}:7: step 'ike.sa': unknown command id 'isakmp_sas'" in capsys.readouterr().out
    assert main(["runbook", "--runbook", str(bad), "--captures", PROPOSAL]) == 2
    assert f"{bad}:7: step 'ike.sa'" in capsys.readouterr().err


def test_offline_run_over_captures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answer(monkeypatch, "n\n" * 20)
    transcript = tmp_path / "t.md"
    code = main(
        ["runbook", "--captures", PROPOSAL, "--transcript", str(transcript), "--interval", "0"]
    )
    assert code == 1  # a critical finding, like `check`
    out = capsys.readouterr().out
    assert "== Step 5: ike.sa" in out
    assert "Root cause: PHASE1_PROPOSAL_MISMATCH" in out
    assert "offline: intrusive steps cannot run on saved captures" in out
    assert f"Transcript written to {transcript}" in out
    assert "Root cause: **PHASE1_PROPOSAL_MISMATCH**" in transcript.read_text()


def test_quit_and_end_of_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    answer(monkeypatch, "n\nq\n")
    assert main(["runbook", "--captures", PROPOSAL, "--peer", "10.2.2.1"]) == 1
    (written,) = tmp_path.glob("ipsec-doctor-runbook-10.2.2.1-*.md")  # the default path
    assert "quit by the engineer" in written.read_text()
    answer(monkeypatch, "")  # end of input is quit
    assert main(["runbook", "--captures", PROPOSAL, "--transcript", "eof.md"]) == 1
    assert "quit by the engineer" in (tmp_path / "eof.md").read_text()


def test_a_healthy_tunnel_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer(monkeypatch, "n\n" * 30)
    folder = str(scenario("healthy"))
    assert main(["runbook", "--captures", folder, "--transcript", str(tmp_path / "h.md")]) == 0


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook"]) == 2
    assert "--peer is required" in capsys.readouterr().err
    assert main(["runbook", "--captures", PROPOSAL, "--lab"]) == 2
    assert "--captures reads a folder offline" in capsys.readouterr().err
    assert main(["runbook", "--captures", PROPOSAL, "--runbook", "nope"]) == 2
    assert "no runbook 'nope'" in capsys.readouterr().err


def test_ctrl_c_before_the_first_step_still_leaves_a_transcript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # e.g. while the devices are being asked

    monkeypatch.setattr("ipsec_doctor.cli.runbook_cmd.folder_session", interrupted)
    transcript = tmp_path / "early.md"
    assert main(["runbook", "--captures", PROPOSAL, "--transcript", str(transcript)]) == 130
    text = transcript.read_text()
    assert "interrupted with Ctrl-C before the first step" in text
    assert "No step was reached." in text


def test_dry_run_lists_every_step_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = tmp_path / "none.md"
    code = main(["runbook", "--captures", PROPOSAL, "--dry-run", "--transcript", str(transcript)])
    assert code == 0
    out = capsys.readouterr().out
    assert "ike.debug: Watch phase 1 negotiate" in out and "[intrusive: debug]" in out
    assert "    R1: show crypto isakmp sa  x2" in out
    assert "    R2: show crypto isakmp sa  x2" in out
    assert "next: PHASE1_PROPOSAL_MISMATCH -> ike.proposal" in out
    assert not transcript.exists()
