"""`ipsec-doctor analyze --log`: a pasted debug / syslog dump read the way an expert reads it.

Standalone: each classified line as event -> finding code(s) with its line number, the ambiguity
notes of FINDINGS.md, the lines not classified, the diagnosis the log alone supports, JSON and
exit codes. With a capture folder: the log's events join a device's logs in the diagnosis.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from ipsec_doctor.cli.main import main
from ipsec_doctor.report.json_report import load_schema
from ipsec_doctor.resources import data_dir

SCENARIOS = data_dir("scenarios")

# seed 004, Appendix B "Transform Set Mismatch" (CE2), with one routine line kept as context
TRANSFORM_DUMP = """\
00:27:10: ISAKMP (0:2): SA has been authenticated with 10.15.58.10
00:27:10: ISAKMP (0:2): Checking IPsec proposal 1
00:27:10: IPSEC(validate_proposal): transform proposal (prot 3, trans 2, hmac_alg 1) not supported
00:27:10: ISAKMP (0:2): atts not acceptable. Next payload is 0
00:27:10: ISAKMP (0:2): phase 2 SA not acceptable!
00:27:10: %CRYPTO-6-IKMP_MODE_FAILURE: Processing of Quick mode failed with peer at 10.15.58.10
"""

# seed 002: retransmissions with nothing that tells silence from a refused proposal
NO_STATE_DUMP = """\
ISAKMP:(0): retransmitting phase 1 MM_NO_STATE...
ISAKMP:(0): incrementing error counter on sa, attempt 2 of 5
"""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "debug.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dump_on_its_own_lists_each_message_its_codes_and_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "analyze", "--log", str(write(tmp_path, TRANSFORM_DUMP)))
    assert code == 1, err  # TRANSFORM_SET_MISMATCH is critical
    assert "5 of 6 lines classified, 1 not" in out
    assert "L3    phase2_transform_rejected -> TRANSFORM_SET_MISMATCH" in out
    # the quick-mode IKMP_MODE_FAILURE is phase 2, decided by the transform line beside it
    assert (
        "L6    phase1_mode_failure -> TRANSFORM_SET_MISMATCH "
        "(line 3 decides: phase2_transform_rejected)" in out
    )
    assert "L1    phase1_authenticated -> no finding of its own" in out
    unclassified = out.split("Lines not classified (1)")[1]
    assert "L2" in unclassified and "Checking IPsec proposal 1" in unclassified
    # then the diagnosis the log alone supports, with the log's lines as evidence
    diagnosis = out.split("ipsec-doctor analyze — peer 10.15.58.10")[1]
    assert "Root cause: TRANSFORM_SET_MISMATCH on log" in diagnosis
    assert "log `debug.txt`:" in diagnosis


def test_an_ambiguous_message_lists_its_candidates_likelier_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "analyze", "--log", str(write(tmp_path, NO_STATE_DUMP)))
    assert code == 1
    assert (
        "L1    phase1_retransmit -> PHASE1_NO_RESPONSE or PHASE1_PROPOSAL_MISMATCH "
        "(ambiguous, likelier first)" in out
    )
    flat = " ".join(out.split())  # notes are wrapped to the terminal width
    assert "Ambiguous: MM_NO_STATE follows a rejected proposal as well as silence" in flat
    assert "no line names the peer's address; use --peer" in out
    assert "0.0.0.0" not in out


def test_an_ikmp_mode_failure_alone_names_both_causes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main Mode failed with peer at 155.0.0.1\n"
    code, out, _ = run_cli(
        capsys, "analyze", "--log", str(write(tmp_path, line)), "--format", "json"
    )
    assert code == 1
    document = json.loads(out)
    (message,) = document["log"]["messages"]
    assert message["codes"] == ["PHASE1_PROPOSAL_MISMATCH", "PSK_MISMATCH"]
    assert message["ambiguous"] is True and "follows proposal and authentication" in message["note"]
    assert document["peer"] == "155.0.0.1"


def test_json_has_the_log_object_and_follows_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, TRANSFORM_DUMP)
    code, out, _ = run_cli(capsys, "analyze", "--log", str(path), "--format", "json")
    assert code == 1
    document = json.loads(out)
    jsonschema.validate(document, load_schema())
    log = document["log"]
    assert log["source"] == "debug.txt" and log["platform"] == "cisco_ios"
    assert (log["lines"], log["classified"], log["joined"]) == (6, 5, False)
    assert [m["line_no"] for m in log["messages"]] == [1, 3, 4, 5, 6]
    assert log["unclassified"] == [
        {"line_no": 2, "line": "00:27:10: ISAKMP (0:2): Checking IPsec proposal 1"}
    ]
    mode_failure = log["messages"][-1]
    assert mode_failure["detail"]["mode"] == "Quick" and mode_failure["decided_by_line"] == 3
    assert [f["code"] for f in document["findings"]] == ["TRANSFORM_SET_MISMATCH"]
    evidence = document["findings"][0]["evidence"]
    assert {(e["command"], e["line_no"]) for e in evidence} >= {("debug.txt", 3)}


def test_stdin_and_the_fail_on_threshold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spi = (
        "%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has invalid spi for "
        "destaddr=10.15.58.38, prot=50, spi=0x3ACB80F(61650959), srcaddr=10.15.58.10\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(spi))
    code, out, _ = run_cli(capsys, "analyze", "--log", "-")
    assert code == 0  # SPI_OUT_OF_SYNC is a warning; --fail-on critical by default
    assert "analyze --log stdin" in out and "SPI_OUT_OF_SYNC" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(spi))
    code, _, _ = run_cli(capsys, "analyze", "--log", "-", "--fail-on", "warning")
    assert code == 1


def test_peer_and_other_platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    charon = (
        "Nov 23 10:14:02 gw1 charon: 09[IKE] received AUTHENTICATION_FAILED notify error\n"
        "Nov 23 10:14:03 gw1 charon: 09[NET] sending packet: from 10.1.1.1[500] to 10.2.2.1\n"
    )
    path = write(tmp_path, charon, "charon.log")
    code, out, _ = run_cli(
        capsys, "analyze", "--log", str(path), "--platform", "strongswan", "--peer", "10.2.2.1"
    )
    assert "(strongswan), read on its own" in out
    assert "auth_failed -> PSK_MISMATCH" in out
    assert "ipsec-doctor analyze — peer 10.2.2.1" in out
    assert code == 1


def test_bad_input_gives_the_usual_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "analyze")[0] == 2  # neither a folder nor --log
    code, _, err = run_cli(capsys, "analyze", "--log", str(tmp_path / "nope.txt"))
    assert code == 2 and "cannot read" in err
    log = str(write(tmp_path, NO_STATE_DUMP))
    code, _, err = run_cli(capsys, "analyze", "--log", log, "--platform", "junos")
    assert code == 2 and "unknown platform" in err
    assert run_cli(capsys, "analyze", "--log", log, "--log-device", "R1")[0] == 2
    folder = str(SCENARIOS / "healthy")
    assert run_cli(capsys, "analyze", folder, "--platform", "cisco_ios")[0] == 2
    code, _, err = run_cli(capsys, "analyze", folder, "--log", log, "--log-device", "R9")
    assert code == 2 and "R9" in err
    code, out, _ = run_cli(capsys, "analyze", "--log", str(write(tmp_path, "", "empty.txt")))
    assert code == 4  # nothing was read
    assert "0 of 0 lines classified" in out
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    code, out, _ = run_cli(capsys, "analyze", "--log", str(garbage))
    assert code == 0 and "Lines not classified" in out


def test_joined_to_a_folder_the_log_is_evidence_in_the_normal_diagnosis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(SCENARIOS / "one-way-traffic")
    code, out, _ = run_cli(capsys, "analyze", folder, "--format", "json")
    assert [f["code"] for f in json.loads(out)["findings"]] == ["ONE_WAY_TRAFFIC"]
    # R1's clock: Nov 23 2026 10:15:32; the pasted line has no year and is 12 s old
    line = (
        "*Nov 23 10:15:20.001: %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has "
        "invalid spi for destaddr=10.1.1.1, prot=50, spi=0x1234ABCD(305441741), srcaddr=10.2.2.1\n"
    )
    log = str(write(tmp_path, line, "r1-syslog.txt"))
    code, out, _ = run_cli(capsys, "analyze", folder, "--log", log, "--format", "json")
    assert code == 1
    document = json.loads(out)
    jsonschema.validate(document, load_schema())
    assert document["log"]["joined"] is True and document["log"]["device"] == "R1"
    codes = [f["code"] for f in document["findings"]]
    assert codes == ["SPI_OUT_OF_SYNC", "ONE_WAY_TRAFFIC"]  # the cause, then what it explains
    spi = document["findings"][0]
    assert spi["evidence"][0]["command"] == "r1-syslog.txt"
    assert spi["evidence"][0]["device"] == "R1" and spi["evidence"][0]["line_no"] == 1
    assert any("joined to R1's logs" in note for note in document["notes"])
    # the same message a day older is context, not evidence (read with the device clock)
    old = str(write(tmp_path, line.replace("Nov 23", "Nov 22"), "old.txt"))
    code, out, _ = run_cli(capsys, "analyze", folder, "--log", old, "--format", "json")
    assert [f["code"] for f in json.loads(out)["findings"]] == ["ONE_WAY_TRAFFIC"]


def test_the_log_can_join_the_remote_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "lab"
    shutil.copytree(SCENARIOS / "healthy", folder)
    text = "*Nov 23 10:15:20.001: %CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF\n"
    log = str(write(tmp_path, text, "r2.txt"))
    code, out, _ = run_cli(capsys, "analyze", str(folder), "--log", log, "--log-device", "R2")
    assert "joined to R2's logs" in out
    assert "L1    isakmp_off -> ISAKMP_DISABLED" in out
    assert code in (0, 1)
