"""`ipsec-doctor clear`: peer scoped, confirmed (or refused), against the lab's inventory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ipsec_doctor.cli import clear_cmd
from ipsec_doctor.collect.audit_log import commands_of, read_audit_log
from ipsec_doctor.collect.intrusive import IntrusiveRefusedError
from ipsec_doctor.lab.emulator import DeviceBehaviour
from ipsec_doctor.lab.inventory_writer import write_inventory

from .conftest import PEER, LabFactory

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ipsec-doctor")
    clear_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(["clear", *argv])


def test_clear_with_yes_is_scoped_and_reports_the_recovery(
    make_lab: LabFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab("healthy")
    config = write_inventory(lab, tmp_path / "inventory")
    audit = tmp_path / "audit.log"
    args = _args(
        "--peer",
        PEER,
        "--device",
        "R1",
        "--nornir-config",
        str(config),
        "--yes",
        "--wait",
        "30",
        "--audit-log",
        str(audit),
        "--format",
        "json",
        "--quiet",
    )
    assert args.func(args) == 0
    document = json.loads(capsys.readouterr().out)
    (device,) = document["devices"]
    assert device["device"] == "R1" and device["confirmed"] and device["came_back"]
    assert device["planned"] == [f"clear crypto sa peer {PEER}", "clear crypto isakmp 1001"]
    assert lab.device("R1").history == device["planned"]
    assert lab.device("R2").history == []
    assert commands_of(read_audit_log(audit), "do") == device["planned"]


def test_clear_without_a_terminal_and_without_yes_is_refused(
    make_lab: LabFactory, tmp_path: Path
) -> None:
    lab = make_lab("healthy")
    config = write_inventory(lab, tmp_path / "inventory")
    args = _args("--peer", PEER, "--device", "R1", "--nornir-config", str(config))
    with pytest.raises(IntrusiveRefusedError, match="--yes"):
        args.func(args)
    assert lab.device("R1").history == []


def test_clear_dry_run_sends_nothing(
    make_lab: LabFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab("healthy")
    config = write_inventory(lab, tmp_path / "inventory")
    args = _args("--peer", PEER, "--nornir-config", str(config), "--dry-run", "--quiet")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"clear crypto sa peer {PEER}" in out and "<each conn-id of 10.2.2.1>" in out
    assert lab.device("R1").history == [] and lab.device("R2").history == []


def test_tunnel_not_back_exits_1_with_text(
    make_lab: LabFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab("healthy", behaviours={"R1": DeviceBehaviour(clear_recovery=None)})
    config = write_inventory(lab, tmp_path / "inventory")
    args = _args(
        "--peer",
        PEER,
        "--device",
        "R1",
        "--nornir-config",
        str(config),
        "--yes",
        "--wait",
        "0",
        "--audit-log",
        str(tmp_path / "audit.log"),
        "--quiet",
    )
    assert args.func(args) == 1
    assert "did not come back" in capsys.readouterr().out
