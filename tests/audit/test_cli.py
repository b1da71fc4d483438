"""`ipsec-doctor audit` and `history` on the command line: exit codes, silences, bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from ipsec_doctor.audit.store import HistoryStore
from ipsec_doctor.cli.main import main

pytestmark = pytest.mark.ssh


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def inventory(tmp_path: Path, hosts: dict[str, object]) -> Path:
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    return folder


def test_lab_audit_then_history_and_silence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "h.sqlite")
    assert main(["audit", "--lab", "psk-mismatch", "--db", db, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "Tunnels: 1 (1 down)" in out and "PSK_MISMATCH" in out
    assert "first run in this history" in out

    assert (
        main(
            [
                "audit",
                "silence",
                "--peer",
                "10.2.2.1",
                "--code",
                "PSK_MISMATCH",
                "--until",
                "7d",
                "--reason",
                "keys rotated on Friday",
                "--db",
                db,
            ]
        )
        == 0
    )
    assert "silence 1: PSK_MISMATCH for peer 10.2.2.1" in capsys.readouterr().out
    assert main(["audit", "silences", "--db", db]) == 0
    assert "keys rotated on Friday" in capsys.readouterr().out

    # the silenced finding no longer fails the run, and is reported as silenced
    assert main(["audit", "--lab", "psk-mismatch", "--db", db, "--quiet", "--format", "json"]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [f["code"] for f in line["silenced"]] == ["PSK_MISMATCH"]
    assert line["silenced"][0]["silence"]["reason"] == "keys rotated on Friday"

    assert main(["history", "--peer", "10.2.2.1", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "Tunnel history for peer 10.2.2.1 (2 records" in out
    assert "silenced PSK_MISMATCH: keys rotated on Friday" in out
    assert main(["history", "--db", db]) == 0
    assert "complete" in capsys.readouterr().out

    assert main(["audit", "unsilence", "1", "--db", db]) == 0
    assert main(["audit", "unsilence", "1", "--db", db]) == 2
    assert main(["audit", "report", "--db", db, "--fail-on", "warning"]) == 0  # run 2: silenced
    assert "run 2" in capsys.readouterr().out


def test_fail_on_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "h.sqlite")
    assert main(["audit", "--lab", "weak-crypto", "--db", db, "--quiet"]) == 0
    assert (
        main(["audit", "--lab", "weak-crypto", "--db", db, "--quiet", "--fail-on", "warning"]) == 1
    )
    assert "WEAK_CRYPTO" in capsys.readouterr().out


def test_no_device_reached_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    hosts = {
        f"R{i}": {
            "hostname": "127.0.0.1",
            "port": port,
            "platform": "cisco_ios",
            "username": "u",
            "password": "p",
        }
        for i in (1, 2)
    }
    folder = inventory(tmp_path, hosts)
    code = main(
        [
            "audit",
            "--inventory",
            str(folder),
            "--db",
            str(tmp_path / "h.sqlite"),
            "--quiet",
            "--connect-timeout",
            "3",
        ]
    )
    assert code == 4
    out = capsys.readouterr().out
    assert "Unreachable devices (2)" in out and "Devices: 2 (0 reached, 2 unreachable)" in out


def test_broken_inventory_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "hosts.yaml").write_text("R1:\n  hostname: 10.0.0.1\n  platform: [cisco_ios\n")
    assert main(["audit", "--inventory", str(folder), "--db", str(tmp_path / "h.sqlite")]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'hosts.yaml'}:" in err and "invalid YAML" in err


def test_unknown_filter_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = inventory(
        tmp_path, {"R1": {"hostname": "10.0.0.1", "platform": "cisco_ios", "data": {"site": "ams"}}}
    )
    db = str(tmp_path / "h.sqlite")
    assert main(["audit", "--inventory", str(folder), "--db", db, "--filter", "colour=red"]) == 2
    assert "unknown filter key 'colour'" in capsys.readouterr().err
    assert main(["audit", "--inventory", str(folder), "--db", db, "--filter", "site=fra"]) == 2
    assert "no host matches --filter site=fra" in capsys.readouterr().err


def test_a_second_audit_is_refused_while_one_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.sqlite"
    with HistoryStore(db) as store, store.lock():
        assert main(["audit", "--lab", "healthy", "--db", str(db), "--quiet"]) == 2
    assert "another audit is running" in capsys.readouterr().err
    with HistoryStore(db) as store:
        assert store.runs() == []


def test_bad_silence_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "h.sqlite")
    base = ["audit", "silence", "--peer", "10.2.2.1", "--reason", "r", "--db", db]
    assert main([*base, "--code", "NOT_A_CODE", "--until", "7d"]) == 2
    assert "not a finding code" in capsys.readouterr().err
    assert main([*base, "--code", "PSK_MISMATCH", "--until", "2001-01-01"]) == 2
    assert "in the past" in capsys.readouterr().err
    assert main([*base, "--code", "*", "--until", "tomorrow"]) == 2
    assert "expected a date" in capsys.readouterr().err
