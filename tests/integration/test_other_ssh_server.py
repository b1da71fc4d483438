"""`ipsec-doctor check` against another SSH implementation of IOS than our own emulator.

The routers here are served by ``other_ios_server`` (paramiko's server API, threads, no code of
the bundled asyncssh emulator) with the quirks real IOS SSH servers show switched on one by
one: a banner before the first prompt, LF-only line ends, output trickling in 64-byte writes
with the echo apart, hostnames with dots and dashes (and longer than netmiko's 16-character
base prompt), trailing spaces and an empty line before the prompt, a refused ``terminal
width``, syslog messages on the vty between commands (with and without ``logging
synchronous``), IOS's three ``Password:`` tries for a wrong enable secret. The real CLI path
(``main(["check", ...])``: discovery, Nornir, netmiko, the collector, parse, diagnosis) must
give exactly the scenario's golden findings, and what it saved must be each command's output
and nothing else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from ipsec_doctor.cli.main import main
from ipsec_doctor.resources import data_dir

from .other_ios_server import (
    BAD_SECRETS,
    INVALID_INPUT,
    MORE,
    MOTD,
    SYSLOG_LINE,
    OtherIosServer,
    Quirks,
    serve_scenario,
    write_inventory,
)

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]

SCENARIOS = data_dir("scenarios")
PEER = "10.2.2.1"
LONG_HOSTNAME = "vpn-gw01-{device}.fra-dc1"  # 20 characters: netmiko keeps 16 of them

# name -> (quirks, the server counter that proves the quirk showed, or "")
QUIRKS: dict[str, tuple[Quirks, str]] = {
    "motd-banner": (Quirks(motd=MOTD, ssh_banner="Authorized access only\n"), "motd"),
    "lf-only": (Quirks(newline="\n"), ""),
    "trickle-echo-apart": (Quirks(chunk=64, echo_gap=0.02), ""),
    "dotted-hostname-spaces-blank-line": (
        Quirks(hostname="vpn-{device}.dc1", prompt_suffix="  ", blank_before_prompt=True),
        "",
    ),
    "long-hostname": (Quirks(hostname=LONG_HOSTNAME), ""),
    "terminal-width-refused": (Quirks(reject_terminal_width=True), "terminal width refused"),
    "syslog-before-echo": (Quirks(syslog=SYSLOG_LINE, syslog_at="before_echo"), "syslog"),
    "syslog-after-prompt": (Quirks(syslog=SYSLOG_LINE, syslog_at="after_prompt"), "syslog"),
    "syslog-logging-synchronous": (
        Quirks(syslog=SYSLOG_LINE, logging_synchronous=True, chunk=64, syslog_every=3),
        "syslog",
    ),
}

EVERYTHING = Quirks(
    motd=MOTD,
    ssh_banner="Authorized access only\n",
    newline="\n",
    blank_before_prompt=True,
    prompt_suffix=" ",
    chunk=64,
    echo_gap=0.01,
    reject_terminal_width=True,
    hostname=LONG_HOSTNAME,
    syslog=SYSLOG_LINE,
    syslog_every=3,
    logging_synchronous=True,
)


def golden(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON report's findings in the form of a scenario's expected.json."""
    return [
        {
            "code": f["code"],
            "severity": f["severity"],
            "device": f["device"],
            "fix_device": f["fix_device"],
            "evidence": [
                f"{e['device']}|{e['command']}|{e['sample']}|{e['line'].strip()}"
                for e in f["evidence"]
            ],
        }
        for f in report["findings"]
    ]


def run_check(
    capsys: pytest.CaptureFixture[str],
    inventory: Path,
    saved: Path,
) -> tuple[int, dict[str, Any]]:
    code = main(
        [
            "check", "--peer", PEER, "--inventory", str(inventory), "--interval", "0",
            "--format", "json", "--quiet", "--save-captures", str(saved),
        ]
    )  # fmt: skip
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def check_scenario(
    name: str, quirks: Quirks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], dict[str, OtherIosServer]]:
    with serve_scenario(SCENARIOS / name, quirks) as servers:
        inventory = write_inventory(servers, tmp_path / "inventory")
        code, report = run_check(capsys, inventory, tmp_path / "saved")
    return code, report, servers


def assert_clean_collection(
    report: dict[str, Any], saved: Path, hostname: Callable[[str], str]
) -> None:
    """Every command answered, and each saved output is that command's output only."""
    for device in report["devices"]:
        name = device["name"]
        assert device["error"] == "", device["error"]
        failed = [(c["command"], c["outcome"], c["error"]) for c in device["commands"]]
        assert [f for f in failed if f[1] != "ok"] == [], name
        assert device["hostname"] == hostname(name)  # the whole hostname, not netmiko's 16
        prompts = {hostname(name) + "#", hostname(name) + ">"}
        for path in (saved / name).glob("*.txt"):
            text = path.read_text(encoding="utf-8")
            assert "--More--" not in text, path
            assert "%CRYPTO-4-RECVD_PKT_INV_SPI" not in text, f"a vty log line was saved: {path}"
            assert not prompts & {line.strip() for line in text.splitlines()}, path


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_healthy_tunnel_read_through_one_quirk(
    quirk: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quirks, counter = QUIRKS[quirk]
    code, report, servers = check_scenario("healthy", quirks, tmp_path, capsys)
    expected = json.loads((SCENARIOS / "healthy" / "expected.json").read_text(encoding="utf-8"))
    assert golden(report) == expected
    assert code == 0
    prompt_name = quirks.hostname or "{device}"
    assert_clean_collection(report, tmp_path / "saved", lambda d: prompt_name.format(device=d))
    if counter:  # the quirk really showed during the run
        assert all(server.stats[counter] > 0 for server in servers.values()), counter
    # netmiko's `terminal length 0` reached every session: the pager never stopped an output
    assert sum(server.stats["more"] for server in servers.values()) == 0


@pytest.mark.parametrize("scenario", ["psk-mismatch", "ikev2-proposal-mismatch"])
def test_faulty_tunnel_read_through_every_quirk_at_once(
    scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = check_scenario(scenario, EVERYTHING, tmp_path, capsys)
    expected = json.loads((SCENARIOS / scenario / "expected.json").read_text(encoding="utf-8"))
    assert golden(report) == expected
    assert code == 1
    assert_clean_collection(report, tmp_path / "saved", lambda d: LONG_HOSTNAME.format(device=d))


def test_wrong_enable_secret_collects_in_user_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IOS asks `Password:` three times; the router is still read, in user mode, and says so."""
    with serve_scenario(SCENARIOS / "healthy") as servers:
        inventory = write_inventory(servers, tmp_path / "inventory")
        hosts_file = inventory / "hosts.yaml"
        hosts = yaml.safe_load(hosts_file.read_text(encoding="utf-8"))
        hosts["R2"]["connection_options"]["netmiko"]["extras"]["secret"] = "Not-the-secret!"
        hosts_file.write_text(yaml.safe_dump(hosts), encoding="utf-8")
        started = time.monotonic()
        _code, report = run_check(capsys, inventory, tmp_path / "saved")
        elapsed = time.monotonic() - started
    assert servers["R2"].stats["bad secrets"] == 1  # one login, three tries, no retry storm
    r1, r2 = (next(d for d in report["devices"] if d["name"] == n) for n in ("R1", "R2"))
    assert r1["error"] == "" and all(c["outcome"] == "ok" for c in r1["commands"])
    assert r2["error"] == ""  # reached, not "no prompt came back"
    outcomes = {c["command"]: (c["outcome"], c["error"]) for c in r2["commands"]}
    assert outcomes["enable"][0] == "rejected" and "enable refused" in outcomes["enable"][1]
    assert outcomes["show running-config"][0] == "rejected"  # privileged: refused in user mode
    assert outcomes["show crypto isakmp sa"][0] == "ok"  # user-mode commands still read
    assert not [c for c, (outcome, _) in outcomes.items() if outcome == "timeout"]
    assert "Not-the-secret!" not in json.dumps(report)
    # netmiko waits 10 s for a prompt after the secret; no reconnects on top of that
    assert elapsed < 30


# -- the server itself shows the quirks (so the tests above are not vacuous) ------------------


class Terminal:
    """A raw SSH shell: what the server sent, read up to each expected text in turn."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.seen = ""
        self.position = 0

    def send(self, text: str) -> None:
        self.channel.send(text.encode())

    def expect(self, marker: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while (found := self.seen.find(marker, self.position)) < 0:
            assert time.monotonic() < deadline, f"{marker!r} not in {self.seen[-300:]!r}"
            if self.channel.recv_ready():
                self.seen += self.channel.recv(65536).decode()
            else:
                time.sleep(0.005)
        text, self.position = self.seen[self.position : found + len(marker)], found + len(marker)
        return text


def test_the_server_pages_refuses_and_asks_three_times() -> None:
    device = SCENARIOS / "healthy" / "R1"
    config = yaml.safe_load((device / "device.yaml").read_text(encoding="utf-8"))
    server = OtherIosServer(device, Quirks(motd=MOTD, syslog=SYSLOG_LINE, syslog_every=2)).start()
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            "127.0.0.1",
            port=server.port,
            username=config["username"],
            password=config["password"],
            look_for_keys=False,
            allow_agent=False,
        )
        term = Terminal(client.invoke_shell())
        assert "AUTHORIZED ACCESS ONLY" in term.expect("R1>")
        term.send("enable\n")
        for _ in range(3):
            term.expect("Password: ")
            term.send("wrong\n")
        assert BAD_SECRETS in term.expect("R1>")
        term.send("enable\n")
        term.expect("Password: ")
        term.send(config["secret"] + "\n")
        term.expect("R1#")
        term.send("show running-config\n")  # no `terminal length 0` yet: the pager stops it
        assert "hostname R1" in term.expect(MORE)
        term.send("q")
        term.expect("R1#")
        term.send("show crypto ikev2 sa\n")  # unknown to this router
        assert INVALID_INPUT in term.expect(INVALID_INPUT)
        term.expect("R1#")
        term.send("terminal length 0\nshow running-config\n")
        assert MORE not in term.expect("\nend")
        term.expect("R1#")
        term.expect(SYSLOG_LINE)  # every 2nd command: a log line after the prompt
        assert term.seen.count(SYSLOG_LINE) == 2
    finally:
        client.close()
        server.stop()
