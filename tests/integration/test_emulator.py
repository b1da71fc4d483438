"""The bundled lab: real netmiko / Nornir sessions against the asyncssh IOS emulator.

No sleeps: every wait is a read until an expected prompt, or a call that returns once ready.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncssh
import pytest
import yaml
from netmiko import BaseConnection, ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException

from ipsec_doctor.lab.emulator import (
    DeviceBehaviour,
    EmulatedDevice,
    EmulatorLab,
    LabError,
    load_device_config,
    load_devices,
    run_lab,
)
from ipsec_doctor.lab.inventory_writer import write_inventory

from .conftest import (
    ACCESS_LISTS,
    IPSEC_SA,
    ISAKMP_SA_1,
    ISAKMP_SA_2,
    SHOW_CLOCK,
    write_device,
)

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]

INVALID = "% Invalid input detected at '^' marker."


@contextmanager
def netmiko_session(
    lab: EmulatorLab, name: str = "R1", *, enable: bool = True, **kwargs: object
) -> Iterator[BaseConnection]:
    config = lab.device(name).config
    params: dict[str, object] = {
        "device_type": "cisco_ios",
        "host": lab.host,
        "port": lab.ports[name],
        "username": config.username,
        "password": config.password,
        "secret": config.secret,
    }
    params.update(kwargs)
    connection = ConnectHandler(**params)
    try:
        if enable:
            connection.enable()
        yield connection
    finally:
        connection.disconnect()


def lines(text: object) -> list[str]:
    """Output lines without trailing blanks (netmiko's send_command is typed str | list | dict)."""
    assert isinstance(text, str)
    return [line.rstrip() for line in text.replace("\r\n", "\n").strip("\n").split("\n")]


# -- netmiko -----------------------------------------------------------------------------------


def test_netmiko_logs_in_enables_and_reads_a_file(lab: EmulatorLab) -> None:
    with netmiko_session(lab, enable=False) as session:
        assert session.find_prompt() == "R1>"
        session.enable()
        assert session.find_prompt() == "R1#"
        # the file starts with an echo line "R1#show clock": it is not served twice
        assert lines(session.send_command("show clock")) == [SHOW_CLOCK]


def test_each_device_has_its_own_port_and_prompt(lab: EmulatorLab) -> None:
    assert set(lab.ports) == {"R1", "R2"}
    assert len(set(lab.ports.values())) == 2
    with netmiko_session(lab, "R2") as session:
        assert session.find_prompt() == "R2#"


def test_unknown_command_gets_the_ios_rejection(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        output = session.send_command("show crypto foo")
    marker, message = lines(output)
    assert marker.index("^") == len("R1#show crypto ")
    assert message == INVALID


def test_second_run_serves_the_second_sample(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        first = session.send_command("show crypto isakmp sa")
        second = session.send_command("show crypto isakmp sa")
        third = session.send_command("show crypto isakmp sa")
    assert lines(first) == lines(ISAKMP_SA_1)
    assert lines(second) == lines(ISAKMP_SA_2)
    assert lines(third) == lines(ISAKMP_SA_2)  # no .3.txt: the last sample again


def test_sample_counter_is_per_device_across_sessions_until_reset(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        assert lines(session.send_command("show crypto isakmp sa")) == lines(ISAKMP_SA_1)
    with netmiko_session(lab) as session:
        assert lines(session.send_command("show crypto isakmp sa")) == lines(ISAKMP_SA_2)
    with netmiko_session(lab, "R2") as session:  # another device counts on its own
        assert "1001" in str(session.send_command("show crypto isakmp sa"))
    lab.reset()
    with netmiko_session(lab) as session:
        assert lines(session.send_command("show crypto isakmp sa")) == lines(ISAKMP_SA_1)


def test_wider_output_answers_a_narrower_command(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        ipsec = session.send_command("show crypto ipsec sa peer 10.2.2.1")
        acl = session.send_command("show access-lists VPN-TRAFFIC")
    assert lines(ipsec) == lines(IPSEC_SA)
    assert lines(acl) == lines(ACCESS_LISTS)


def test_output_filter_narrows_the_unfiltered_file(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        included = session.send_command("show running-config | include crypto")
        section = session.send_command("show running-config | section interface")
    assert lines(included) == ["crypto isakmp policy 10", " crypto map CM"]
    assert lines(section) == [
        "interface GigabitEthernet0/1",
        " ip address 10.1.1.1 255.255.255.0",
        " crypto map CM",
    ]


def test_abbreviated_command_is_expanded(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        interface = session.send_command("sh int Gi0/1")
        clock = session.send_command("sh clo")
        unknown = session.send_command("sh int Gi0/9")
    assert lines(interface) == ["GigabitEthernet0/1 is up, line protocol is up"]
    assert lines(clock) == [SHOW_CLOCK]
    assert lines(unknown)[-1] == INVALID


def test_running_config_needs_privileged_mode(lab: EmulatorLab) -> None:
    with netmiko_session(lab, enable=False) as session:
        output = session.send_command("show running-config")
        assert "1001" in str(session.send_command("show crypto isakmp sa"))  # works in user mode
    marker, message = lines(output)
    assert marker.index("^") == len("R1>show ")
    assert message == INVALID


def test_wrong_password_is_an_authentication_failure(lab: EmulatorLab) -> None:
    with (
        pytest.raises(NetmikoAuthenticationException),
        netmiko_session(lab, password="wrong", enable=False),
    ):
        pass


def test_wrong_secret_stays_in_user_mode(lab: EmulatorLab) -> None:
    with netmiko_session(lab, enable=False, secret="wrong") as session:
        with pytest.raises(ValueError, match="enable mode"):
            session.enable()
        assert session.find_prompt() == "R1>"


def test_fast_path_with_expect_string(lab: EmulatorLab) -> None:
    with netmiko_session(lab) as session:
        for _ in range(3):
            output = session.send_command(
                "show clock", expect_string=r"R1#", auto_find_prompt=False, read_timeout=5
            )
            assert lines(output) == [SHOW_CLOCK]


# -- Nornir ------------------------------------------------------------------------------------


def test_nornir_collects_through_the_written_inventory(lab: EmulatorLab, tmp_path: Path) -> None:
    from nornir import InitNornir
    from nornir_netmiko.tasks import netmiko_send_command

    config_file = write_inventory(lab, tmp_path / "inventory")
    hosts = yaml.safe_load((config_file.parent / "hosts.yaml").read_text(encoding="utf-8"))
    assert hosts["R1"]["port"] == lab.ports["R1"]
    assert hosts["R1"]["platform"] == "cisco_ios"
    assert hosts["R1"]["data"] == {
        "scenario": "healthy",
        "tunnel_endpoints": ["10.1.1.1", "192.168.1.1"],
    }
    assert hosts["R1"]["connection_options"]["netmiko"]["extras"]["secret"] == "lab-secret"
    assert (config_file.parent / "hosts.yaml").stat().st_mode & 0o077 == 0

    nornir = InitNornir(config_file=str(config_file))
    try:
        result = nornir.run(
            task=netmiko_send_command,
            command_string="show crypto ipsec sa peer 10.2.2.1",
            enable=True,
        )
    finally:
        nornir.close_connections()
    assert not result.failed
    assert set(result) == {"R1", "R2"}
    for host in ("R1", "R2"):
        assert lines(result[host][0].result) == lines(IPSEC_SA)


# -- the exact bytes of the CLI (asyncssh client) ---------------------------------------------


async def _open(
    lab: EmulatorLab, name: str = "R1", password: str | None = None
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[str]]:
    config = lab.device(name).config
    conn = await asyncssh.connect(
        lab.host,
        lab.ports[name],
        username=config.username,
        password=config.password if password is None else password,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
    )
    process = await conn.create_process(term_type="vt100")
    return conn, process


def test_transcript_matches_ios(lab: EmulatorLab) -> None:
    async def scenario() -> str:
        conn, process = await _open(lab)
        transcript = await process.stdout.readuntil("R1>")
        process.stdin.write("terminal length 0\n")
        transcript += await process.stdout.readuntil("R1>")
        process.stdin.write("enable\n")
        transcript += await process.stdout.readuntil("Password: ")
        process.stdin.write("nope\n")
        transcript += await process.stdout.readuntil("R1>")
        process.stdin.write("enable\r\n")
        transcript += await process.stdout.readuntil("Password: ")
        process.stdin.write("lab-secret\r")
        transcript += await process.stdout.readuntil("R1#")
        process.stdin.write("show crypto foo\n")
        transcript += await process.stdout.readuntil("R1#")
        process.stdin.write("show clock\n")
        transcript += await process.stdout.readuntil("R1#")
        process.stdin.write("exit\n")
        await process.wait_closed()
        conn.close()
        await conn.wait_closed()
        return transcript

    assert asyncio.run(scenario()) == (
        "\r\nR1>"
        "terminal length 0\r\nR1>"
        "enable\r\nPassword: "
        "\r\n% Access denied\r\n\r\nR1>"
        "enable\r\nPassword: "
        "\r\nR1#"
        "show crypto foo\r\n"
        "               ^\r\n"
        f"{INVALID}\r\n"
        "\r\nR1#"
        "show clock\r\n"
        f"{SHOW_CLOCK}\r\nR1#"
    )


def test_drop_on_closes_the_connection(scenario_dir: Path) -> None:
    behaviours = {"R1": DeviceBehaviour(drop_on="show crypto")}

    async def scenario(lab: EmulatorLab) -> str:
        conn, process = await _open(lab)
        await process.stdout.readuntil("R1>")
        process.stdin.write("show crypto isakmp sa\n")
        rest = await process.stdout.read()  # until the connection is gone
        conn.close()
        return rest

    with run_lab([scenario_dir], behaviours=behaviours) as lab:
        assert asyncio.run(scenario(lab)) == "show crypto isakmp sa\r\n"


def test_latency_delays_the_answer_not_the_echo(scenario_dir: Path) -> None:
    async def scenario(lab: EmulatorLab) -> float:
        conn, process = await _open(lab)
        await process.stdout.readuntil("R1>")
        started = time.monotonic()
        process.stdin.write("show clock\n")
        await process.stdout.readuntil("show clock\r\n")
        await process.stdout.readuntil("R1>")
        elapsed = time.monotonic() - started
        conn.close()
        return elapsed

    with run_lab([scenario_dir], behaviour=DeviceBehaviour(latency=0.2)) as lab:
        assert asyncio.run(scenario(lab)) >= 0.2


def test_refuse_login(scenario_dir: Path) -> None:
    async def scenario(lab: EmulatorLab) -> None:
        await _open(lab, "R2")

    with run_lab([scenario_dir], behaviours={"R2": DeviceBehaviour(refuse_login=True)}) as lab:
        with pytest.raises(asyncssh.PermissionDenied):
            asyncio.run(scenario(lab))
        lab.devices["R2"].behaviour.refuse_login = False  # behaviours may change while running


def test_sockets_have_nodelay(lab: EmulatorLab) -> None:
    async def scenario() -> int:
        conn, process = await _open(lab)
        await process.stdout.readuntil("R1>")
        (server_conn,) = lab._connections
        sock = server_conn.get_extra_info("socket")
        value = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        conn.close()
        return value

    assert asyncio.run(scenario()) != 0


# -- lifecycle --------------------------------------------------------------------------------


def test_start_listens_before_returning_and_stop_closes(scenario_dir: Path) -> None:
    lab = EmulatorLab([scenario_dir])
    lab.start()
    port = lab.ports["R1"]
    with socket.create_connection((lab.host, port), timeout=5) as probe:
        assert probe.recv(4).startswith(b"SSH-")
    lab.stop()
    assert lab.ports == {}
    with pytest.raises(OSError):
        socket.create_connection((lab.host, port), timeout=5).close()


def test_many_devices_share_one_loop(tmp_path: Path) -> None:
    scenario = tmp_path / "many"
    for index in range(100):
        write_device(scenario, f"R{index}", outputs={"show clock": SHOW_CLOCK + "\n"})
    with run_lab([scenario]) as lab:
        assert len(set(lab.ports.values())) == 100
        with netmiko_session(lab, "R99") as session:
            assert session.find_prompt() == "R99#"


def test_same_device_name_in_two_scenarios_is_qualified(tmp_path: Path) -> None:
    write_device(tmp_path / "a", "R1")
    write_device(tmp_path / "b", "R1")
    assert set(load_devices([tmp_path / "a", tmp_path / "b"])) == {"a.R1", "b.R1"}
    assert set(load_devices([tmp_path / "a"])) == {"R1"}
    with pytest.raises(LabError):
        load_devices([tmp_path / "a", tmp_path / "b"], qualify=False)
    with pytest.raises(LabError):
        load_devices([tmp_path / "nothing"])


# -- the device model without SSH ---------------------------------------------------------------


@pytest.fixture
def device(scenario_dir: Path) -> EmulatedDevice:
    return EmulatedDevice(load_device_config(scenario_dir / "R1"))


def test_incomplete_and_ambiguous_commands(device: EmulatedDevice) -> None:
    incomplete = device.run("show crypto", privileged=True)
    assert not incomplete.accepted
    assert incomplete.output.startswith("% Incomplete command.")
    ambiguous = device.run("sh c", privileged=True)
    assert not ambiguous.accepted
    assert ambiguous.output.startswith("% Ambiguous command:")


def test_caret_under_the_first_unknown_word(device: EmulatedDevice) -> None:
    result = device.run("show  crypto bogus sa", privileged=True)
    assert (result.accepted, result.caret) == (False, len("show  crypto "))
    result = device.run("show ip route 10.9.9.9", privileged=True)
    assert not result.accepted


def test_answers_report_the_file_and_sample(device: EmulatedDevice) -> None:
    first = device.run("show crypto isakmp sa", privileged=False)
    second = device.run("sh cry isa sa", privileged=False)  # same command, abbreviated
    assert (first.filename, first.sample) == ("show_crypto_isakmp_sa.txt", 1)
    assert (second.filename, second.sample) == ("show_crypto_isakmp_sa.2.txt", 2)
    assert device.run("terminal width 511", privileged=False).output == ""
    assert device.run("undebug all", privileged=True).output.startswith("All possible")


def test_keyboard_interactive_login_and_exec_request(lab: EmulatorLab) -> None:
    async def scenario() -> str:
        async with asyncssh.connect(
            lab.host,
            lab.ports["R1"],
            username="admin",
            password="lab-pass",
            preferred_auth="keyboard-interactive",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
        ) as conn:
            result = await conn.run("show clock", check=True)
            return str(result.stdout)

    assert asyncio.run(scenario()) == f"{SHOW_CLOCK}\r\n"


def test_hung_command_does_not_block_stop(scenario_dir: Path) -> None:
    async def scenario(lab: EmulatorLab) -> str:
        conn, process = await _open(lab)
        await process.stdout.readuntil("R1>")
        process.stdin.write("show crypto isakmp sa\n")
        await process.stdout.readuntil("show crypto isakmp sa\r\n")  # echoed, never answered
        await asyncio.to_thread(lab.stop)  # closes the hung session too
        rest = await process.stdout.read()
        await conn.wait_closed()
        return rest

    lab = EmulatorLab([scenario_dir], behaviours={"R1": DeviceBehaviour(hang_on="isakmp")})
    lab.start()
    assert asyncio.run(scenario(lab)) == ""
    assert lab.ports == {}
