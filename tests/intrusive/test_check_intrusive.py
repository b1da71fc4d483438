"""The intrusive steps as `check` runs them: over a Nornir inventory, both ends in parallel, and
their debug lines as evidence for findings."""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path

import pytest
import yaml
from nornir.core import Nornir

from ipsec_doctor.collect.audit_log import commands_of, read_audit_log
from ipsec_doctor.collect.base import NoWaitClock
from ipsec_doctor.collect.file_collector import collect_folder
from ipsec_doctor.collect.intrusive import IntrusiveRefusedError, run_debug
from ipsec_doctor.collect.intrusive_check import (
    DeviceIntrusive,
    IntrusiveOptions,
    add_debug_captures,
    add_intrusive_options,
    options_from_args,
    run_intrusive,
    with_debug_events,
)
from ipsec_doctor.collect.nornir_collector import build_nornir
from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.errors import UsageError
from ipsec_doctor.lab.emulator import DeviceBehaviour, EmulatorLab
from ipsec_doctor.lab.inventory_writer import write_inventory
from ipsec_doctor.model.state import TunnelView
from ipsec_doctor.parse import parse_device

from .conftest import PEER, LabFactory, connect

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(180)]

PEERS = {"R1": PEER, "R2": "10.1.1.1"}


def _nornir(lab: EmulatorLab, tmp_path: Path, production: set[str] | None = None) -> Nornir:
    config = write_inventory(lab, tmp_path / "inventory")
    if production:
        hosts_file = tmp_path / "inventory" / "hosts.yaml"
        hosts = yaml.safe_load(hosts_file.read_text())
        for name in production:
            hosts[name]["data"]["production"] = True
        hosts_file.write_text(yaml.safe_dump(hosts))
    return build_nornir(None, config)


def test_flags_parse_into_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_intrusive_options(parser)
    args = parser.parse_args(
        ["--debug", "--debug-seconds", "30", "--ping", "--clear", "--yes", "--audit-log", "x.log"]
    )
    options = options_from_args(args)
    assert options.requested and options.debug and options.ping and options.clear and options.yes
    assert options.debug_seconds == 30 and options.audit_log == Path("x.log")
    assert options.debugs == ("isakmp", "ipsec")
    assert not options_from_args(parser.parse_args([])).requested
    with pytest.raises(UsageError):
        options_from_args(parser.parse_args(["--debug-seconds", "5000"]))


def shown_and_yes(shown: list[str]) -> Callable[[str], bool]:
    def confirm(plan: str) -> bool:
        shown.append(plan)
        return True

    return confirm


def test_debug_ping_clear_on_both_ends(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab(
        "healthy",
        behaviours={
            "R1": DeviceBehaviour(debug_autostart=False),
            "R2": DeviceBehaviour(debug_autostart=False),
        },
    )
    nr = _nornir(lab, tmp_path)
    shown: list[str] = []
    options = IntrusiveOptions(
        debug=True,
        ping=True,
        clear=True,
        debug_seconds=60,
        clear_wait=30,
        audit_log=tmp_path / "audit.log",
        poll_interval=1,
    )
    results = run_intrusive(
        nr,
        PEERS,
        options,
        hosts=["R1"],
        clock=NoWaitClock(),
        confirm=shown_and_yes(shown),
    )
    outcome = results["R1"]
    assert outcome.error == "", outcome.error
    assert len(shown) == 1 and "clear crypto isakmp 1001" in shown[0]
    assert outcome.clear is not None and outcome.clear.came_back
    assert outcome.ping is not None and outcome.ping.received == 5
    assert outcome.debug is not None and outcome.debug.ended == "established"
    assert outcome.debug.undone
    history = lab.device("R1").history
    assert history[0] == f"debug crypto condition peer ipv4 {PEER}"
    assert history[-2:] == ["undebug all", f"no debug crypto condition peer ipv4 {PEER}"]
    assert f"clear crypto sa peer {PEER}" in history
    assert any(h.startswith("ping 192.168.2.1 source GigabitEthernet0/1") for h in history)
    assert not any(h in ("clear crypto sa", "clear crypto isakmp") for h in history)
    summary = "\n".join(outcome.summary())
    assert "came back" in summary and "turned off again" in summary
    records = read_audit_log(tmp_path / "audit.log")
    assert "undebug all" in commands_of(records, "undo")
    assert lab.device("R2").history == []


def test_production_hosts_are_refused_before_any_login(
    make_lab: LabFactory, tmp_path: Path
) -> None:
    lab = make_lab("healthy")
    nr = _nornir(lab, tmp_path, production={"R2"})
    options = IntrusiveOptions(debug=True, audit_log=tmp_path / "audit.log")
    with pytest.raises(IntrusiveRefusedError, match="R2 marked production"):
        run_intrusive(nr, PEERS, options, clock=NoWaitClock())
    assert lab.device("R1").history == [] and lab.device("R2").history == []
    allowed = IntrusiveOptions(
        debug=True, allow_intrusive=True, audit_log=tmp_path / "audit.log", debug_seconds=4
    )
    results = run_intrusive(nr, PEERS, allowed, clock=NoWaitClock())
    assert all(r.debug is not None and r.debug.undone for r in results.values())


def test_nothing_requested_runs_nothing(make_lab: LabFactory, tmp_path: Path) -> None:
    lab = make_lab("healthy")
    nr = _nornir(lab, tmp_path)
    assert run_intrusive(nr, PEERS, IntrusiveOptions()) == {}
    assert lab.device("R1").history == []


def test_ctrl_c_in_the_main_thread_undoes_every_device(
    make_lab: LabFactory, tmp_path: Path
) -> None:
    lab = make_lab("psk-mismatch")  # neither end's negotiation ends: both keep watching
    nr = _nornir(lab, tmp_path)
    options = IntrusiveOptions(
        debug=True, debug_seconds=120, poll_interval=0.1, audit_log=tmp_path / "audit.log"
    )
    started: set[str] = set()

    def progress(message: str) -> None:  # called from the worker threads
        if "debugs on" in message:
            started.add(message.split(":")[0])
            if started == {"R1", "R2"}:
                os.kill(os.getpid(), signal.SIGINT)  # delivered to the main thread

    warnings: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_intrusive(nr, PEERS, options, progress=progress, warn=warnings.append)
    assert lab.device("R1").debug_state.clean and lab.device("R2").debug_state.clean
    assert any("turning the debugs off first" in w for w in warnings)


def test_findings_quote_debug_lines(make_lab: LabFactory, tmp_path: Path) -> None:
    """PSK mismatch: the buffers hold no debug lines; the debug session's lines are evidence."""
    lab = make_lab("psk-mismatch")
    folder = next(Path(d.config.directory).parent for d in lab.devices.values())
    results = {
        name: run_debug(
            connect(lab, name), peer=peer, device=name, clock=NoWaitClock(), max_seconds=120
        )
        for name, peer in PEERS.items()
    }
    assert results["R2"].ended == "failed"
    assert "IKMP_BAD_MESSAGE" in results["R2"].end_message

    captures = collect_folder(folder, PEERS, peer=PEER)
    states = {name: parse_device(captures.devices[name], PEERS[name]) for name in PEERS}
    without = diagnose(TunnelView(states["R1"], ip_address(PEER), states["R2"]))
    debug_quoted = [e for f in without for e in f.evidence if e.command.startswith("debug crypto")]
    assert debug_quoted == []

    states = {name: with_debug_events(states[name], results[name]) for name in PEERS}
    findings = diagnose(TunnelView(states["R1"], ip_address(PEER), states["R2"]))
    psk = [f for f in findings if f.code == "PSK_MISMATCH"]
    assert psk, [f.code for f in findings]
    quoted = [e for e in psk[0].evidence if e.command.startswith("debug crypto")]
    assert quoted, psk[0].evidence
    assert any("IKMP_BAD_MESSAGE" in e.line or "reserved" in e.line for e in quoted)
    assert all(e.device in ("R1", "R2") for e in quoted)

    # the debug captures join the capture set under their own commands; parsing ignores them
    outcomes = {
        name: DeviceIntrusive(device=name, peer=PEERS[name], debug=results[name]) for name in PEERS
    }
    add_debug_captures(outcomes, captures)
    commands = [c.command for c in captures.devices["R2"].captures]
    assert "debug crypto isakmp" in commands and "debug crypto ipsec" in commands
    assert parse_device(captures.devices["R2"], "10.1.1.1").ike_sas == states["R2"].ike_sas
