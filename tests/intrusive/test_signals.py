"""Signals sent to a real process while its debugs are on: the debugs are always undone.

The process is ``debug_script.py`` (a DebugSession against the lab) and, once ``check`` has
``--debug``, the real ``ipsec-doctor`` command. The test waits on the emulated router's debug
state (a condition variable, bounded), never on a sleep.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipsec_doctor.collect.audit_log import commands_of, read_audit_log
from ipsec_doctor.lab.emulator import DebugState, EmulatorLab
from ipsec_doctor.lab.inventory_writer import write_inventory

from .conftest import PEER, LabFactory

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(180)]

SCRIPT = Path(__file__).with_name("debug_script.py")
REPO = Path(__file__).resolve().parents[2]
BOTH_ON = {"crypto isakmp", "crypto ipsec"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _script(lab: EmulatorLab, audit: Path, max_seconds: float = 120) -> subprocess.Popen[str]:
    config = lab.device("R1").config
    command = [
        sys.executable,
        str(SCRIPT),
        lab.host,
        str(lab.ports["R1"]),
        config.username,
        config.password,
        config.secret,
        PEER,
        str(audit),
        str(max_seconds),
    ]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )


def _wait_for_line(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Read the process's stdout until a line holds ``marker`` (bounded; select, no sleep)."""
    assert process.stdout is not None
    seen: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if marker in line:
                return "".join(seen)
    pytest.fail(f"no {marker!r} from the process within {timeout} s: {''.join(seen)!r}")


def _debugs_on(state: DebugState) -> bool:
    return state.flags >= BOTH_ON and bool(state.conditions)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the process did not end after the signal:\n{out}\n{err}")
    return process.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_while_watching_undoes_the_debugs(
    make_lab: LabFactory, tmp_path: Path, signum: signal.Signals
) -> None:
    lab = make_lab("psk-mismatch")  # R1's negotiation never ends: the process keeps watching
    device = lab.device("R1")
    audit = tmp_path / "audit.log"
    process = _script(lab, audit)
    try:
        _wait_for_line(process, "DEBUGS-ON", timeout=60)  # watching now
        assert _debugs_on(device.debug_state)
        process.send_signal(signum)
        code, _out, err = _finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 130, err
    assert "interrupted" in err
    assert device.debug_state.clean, device.debug_state.describe()
    records = read_audit_log(audit)
    assert commands_of(records, "undo") == [
        "undebug all",
        f"no debug crypto condition peer ipv4 {PEER}",
    ]
    assert device.history[-2:] == ["undebug all", f"no debug crypto condition peer ipv4 {PEER}"]


def test_sigint_while_the_debugs_are_being_turned_on(make_lab: LabFactory, tmp_path: Path) -> None:
    """Interrupted half way through switching on: whatever came on goes off again."""
    lab = make_lab("psk-mismatch")
    device = lab.device("R1")
    process = _script(lab, tmp_path / "audit.log")
    try:
        assert device.wait_for_debug(lambda s: bool(s.conditions), timeout=60)
        process.send_signal(signal.SIGINT)
        code, _out, err = _finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 130, err
    assert device.debug_state.clean, device.debug_state.describe()


def test_a_finished_process_leaves_nothing_on(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab("healthy")
    process = _script(lab, tmp_path / "audit.log", max_seconds=60)
    code, out, err = _finish(process)
    assert code == 0, err
    assert "ENDED established" in out
    assert lab.device("R1").debug_state.clean


def _check_has_debug() -> bool:
    tool = shutil.which("ipsec-doctor") or str(Path(sys.executable).with_name("ipsec-doctor"))
    if not Path(tool).exists():
        return False
    shown = subprocess.run(
        [tool, "check", "--help"], capture_output=True, text=True, env=_env(), check=False
    )
    return "--debug" in shown.stdout


@pytest.mark.skipif(not _check_has_debug(), reason="`ipsec-doctor check` has no --debug yet")
def test_sigint_to_ipsec_doctor_check_debug(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab("psk-mismatch")
    device = lab.device("R1")
    config = write_inventory(lab, tmp_path / "inventory")
    tool = shutil.which("ipsec-doctor") or str(Path(sys.executable).with_name("ipsec-doctor"))
    env = _env()
    env["IPSEC_DOCTOR_STATE_DIR"] = str(tmp_path / "state")
    process = subprocess.Popen(
        [
            tool,
            "check",
            "--peer",
            PEER,
            "--device",
            "R1",
            "--nornir-config",
            str(config),
            "--interval",
            "0",
            "--debug",
            "--debug-seconds",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert device.wait_for_debug(_debugs_on, timeout=120), "the debugs never came on"
        process.send_signal(signal.SIGINT)
        code, _out, err = _finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 130, err
    assert device.debug_state.clean, device.debug_state.describe()
    records = read_audit_log(tmp_path / "state" / "intrusive.log")
    assert "undebug all" in commands_of(records, "undo")
