"""Bad input never breaks the parse (issue 4, "Bad input"): a fuzz test over every template.

Truncated output, ``--More--`` prompts and banners mixed in, log lines interleaved, and random
garbage, per plan command of every platform and per template of ``textfsm_templates/index``
(hypothesis, bounded examples):

- through :func:`ipsec_doctor.parse.parse_device`: a healthy device's captures with one output
  replaced by the mangled text give a DeviceState, never an exception; a section that could not
  be read is ``None`` with a CommandProblem that carries the raw text, and the diagnosis turns
  it into an INSUFFICIENT_DATA finding quoting it;
- through :func:`ipsec_doctor.parse.one_command.parse_one`: a JSON-ready answer, or the
  documented :class:`~ipsec_doctor.errors.ParseError` (carrying the raw text) when nothing at
  all could be parsed - never another exception.
"""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipsec_doctor.diagnose import diagnose
from ipsec_doctor.diagnose.rules.meta import RAW_LIMIT
from ipsec_doctor.errors import ParseError
from ipsec_doctor.model.capture import DeviceCapture, Outcome
from ipsec_doctor.model.findings import Code
from ipsec_doctor.model.lookup import render_command
from ipsec_doctor.model.state import TunnelView
from ipsec_doctor.parse import parse_device
from ipsec_doctor.parse.one_command import parse_one
from ipsec_doctor.parse.textfsm_parser import find_template
from ipsec_doctor.platforms.loader import load_platform
from ipsec_doctor.resources import data_dir

from .scenario_support import SCENARIOS, load_device

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_TESTS = ROOT / "tests" / "templates"

#: Healthy devices whose captures are mangled one at a time: (folder, scenario.yaml beside it).
BASES = [
    SCENARIOS / "healthy" / "R1",  # IOS, crypto map, IKEv1
    SCENARIOS / "ikev2-healthy" / "R1",  # IOS-XE, IKEv2 + tunnel protection
    ROOT / "tests" / "captures" / "strongswan" / "healthy" / "gw1",
]

#: Lines that get mixed into real outputs: pager prompts (with the backspaces a terminal gets),
#: prompts, banners, errors and interleaved log messages of both platforms.
NOISE = [
    " --More-- ",
    " --More-- \x08\x08\x08\x08\x08\x08\x08\x08\x08         \x08\x08\x08\x08\x08\x08\x08\x08\x08",
    "<--- More --->",
    "R1#",
    "R1>show crypto isakmp sa",
    "% Invalid input detected at '^' marker.",
    "% Incomplete command.",
    "Building configuration...",
    "********** AUTHORIZED ACCESS ONLY - disconnect now **********",
    "Last login: Mon Nov 23 10:14:02 2026 from 192.0.2.9",
    "*Nov 23 10:14:02.311: %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has invalid"
    " spi for destaddr=10.1.1.1, prot=50, spi=0x1234ABCD(305441741), srcaddr=10.2.2.1",
    "*Nov 23 10:14:03.001: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1,"
    " changed state to down",
    "000123: *Nov 23 10:14:02.311 UTC: ISAKMP:(0): atts are not acceptable. Next payload is 0",
    "Nov 23 10:14:02 gw1 charon: 09[IKE] retransmit 2 of request with message ID 0",
    "connection to charon lost",
    "",
    "\t  ",
    "\x1b[1;31mcolour\x1b[0m",
]


#: What a number or an address may turn into in a garbled output.
ODD_VALUES = [
    "",
    "-1",
    "99999999999999999999999999",
    "0x",
    "NaN",
    "999.1.1.1",
    "1.2.3",
    ":::::",
    "fe80::1%eth0",
    "10.1.1.1/33",
    "255.255.255.256",
    "1e9",
    "١٢٣",
]


def _peer_of(folder: Path) -> str:
    data = yaml.safe_load((folder.parent / "scenario.yaml").read_text(encoding="utf-8"))
    return str(data["peer"])


def _bases() -> list[tuple[Path, str, DeviceCapture]]:
    found = []
    for folder in BASES:
        if (folder / "device.yaml").is_file():
            peer = _peer_of(folder)
            found.append((folder, peer, load_device(folder, peer)))
    return found


BASE_DEVICES = _bases()
#: (base device number, capture number): numbers, so that hypothesis reports stay short
CAPTURE_CASES = [
    (base, index)
    for base, (_folder, _peer, device) in enumerate(BASE_DEVICES)
    for index, capture in enumerate(device.captures)
    if capture.outcome is Outcome.OK
]


def _case_id(base: int, index: int) -> str:
    folder, _peer, device = BASE_DEVICES[base]
    capture = device.captures[index]
    return f"{folder.parent.name}/{folder.name}:{capture.command}#{capture.sample}"


@st.composite
def mangled(draw: st.DrawFn, original: str) -> str:
    """``original`` truncated, with noise lines mixed in, lines dropped or garbled, or replaced
    by random text altogether."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=600))
    lines = original.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["truncate", "noise", "garbage", "drop", "cut_line", "crlf", "values"])
        )
        position = draw(st.integers(0, max(len(lines), 1)))
        if op == "truncate":
            text = "\n".join(lines)
            lines = text[: draw(st.integers(0, len(text)))].split("\n")
        elif op == "noise":
            lines.insert(position, draw(st.sampled_from(NOISE)))
        elif op == "garbage":
            lines.insert(position, draw(st.text(max_size=120)))
        elif op == "drop" and lines:
            del lines[min(position, len(lines) - 1)]
        elif op == "cut_line" and lines:
            at = min(position, len(lines) - 1)
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif op == "crlf":
            lines = [line + "\r" for line in lines]
        elif op == "values" and lines:
            # numbers and addresses as a broken or hostile output could print them
            at = min(position, len(lines) - 1)
            odd = draw(st.sampled_from(ODD_VALUES))
            lines[at] = re.sub(
                r"[0-9A-Fa-f]*[.:]?\d+", odd, lines[at], count=draw(st.integers(1, 3))
            )
    return "\n".join(lines)


def _replace_capture(device: DeviceCapture, index: int, text: str) -> DeviceCapture:
    captures = list(device.captures)
    captures[index] = replace(captures[index], raw=text)
    return replace(device, captures=captures)


def test_the_bases_cover_every_plan_command() -> None:
    """Every plan command of every platform is mangled in at least one base device."""
    assert len(BASE_DEVICES) >= 2
    for platform in ("cisco_ios", "strongswan"):
        loaded = load_platform(platform)
        commands = {
            BASE_DEVICES[base][2].captures[index].command
            for base, index in CAPTURE_CASES
            if BASE_DEVICES[base][2].platform == platform
        }
        covered = {
            entry.id
            for entry in loaded.commands
            for command in commands
            if entry.matches(command) is not None or command in entry.wider
        }
        missing = {c.id for c in loaded.commands} - covered
        # IOS's crypto session summary is read by nothing the healthy labs need
        assert missing <= {"crypto_session"}, (platform, sorted(missing))


@pytest.mark.parametrize(
    ("base", "index"), CAPTURE_CASES, ids=[_case_id(*case) for case in CAPTURE_CASES]
)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_parse_device_never_raises_on_mangled_output(
    base: int, index: int, data: st.DataObject
) -> None:
    _folder, peer, device = BASE_DEVICES[base]
    original = device.captures[index]
    text = data.draw(mangled(original.raw), label="output")
    mangled_device = _replace_capture(device, index, text)
    state = parse_device(mangled_device, peer)  # never an exception
    for problem in state.problems:
        assert problem.section and problem.outcome, problem
        if problem.outcome == Outcome.UNPARSED.value:
            sources = [c.raw for c in mangled_device.captures if c.command == problem.command]
            assert problem.raw in sources, "a problem carries the raw text it could not read"
    findings = diagnose(TunnelView(local=state, peer=ip_address(peer)))
    assert findings
    about = [p for p in state.problems if p.command == original.command and p.outcome == "unparsed"]
    for problem in about:
        gaps = [
            f
            for f in findings
            if f.code is Code.INSUFFICIENT_DATA and f.detail.get("command") == problem.command
        ]
        assert gaps, f"no INSUFFICIENT_DATA for the unreadable `{problem.command}`"
        assert gaps[0].detail["raw"] == problem.raw[:RAW_LIMIT]


def _index_rows() -> list[tuple[str, str]]:
    """(platform, template file) of every row of textfsm_templates/index."""
    rows = []
    for line in (data_dir("templates") / "index").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(("#", "Template,")):
            continue
        parts = [p.strip() for p in line.split(",", 3)]
        rows.append((parts[2], parts[0]))
    return rows


SAMPLE_VALUES = {
    "peer": "10.2.2.1",
    "crypto_acl": "VPN-TRAFFIC",
    "local_lan": "192.168.1.0",
    "remote_lan": "192.168.2.0",
    "source_interface": "GigabitEthernet0/1",
    "crypto_interface": "GigabitEthernet0/0",
    "fvrf": "INET",
    "ipv6_peer": "2001:DB8:2::1",
    "ipv6_default": "::/0",
}


def _commands(platform: str) -> list[tuple[str, str]]:
    """(command, sample output) for every plan command, variant and wider output of
    ``platform``, and for every template test of the platform (its command from the template's
    own index row)."""
    loaded = load_platform(platform)
    found: list[tuple[str, str]] = []
    for entry in loaded.commands:
        values = {v: SAMPLE_VALUES.get(v, "X1") for v in entry.variables}
        rendered = entry.render(values)
        assert rendered is not None
        names = (*entry.variables, *entry.optional_variables)
        every = {v: SAMPLE_VALUES.get(v, "X1") for v in names}
        variants = [render_command(variant, (), every) or variant for variant in entry.variants]
        for command in (rendered, *variants, *entry.wider):
            if "{" in command:
                continue
            sample = ""
            for _f, _p, device in BASE_DEVICES:
                capture = device.get(command, 1) if device.platform == platform else None
                if capture is not None:
                    sample = capture.raw
            found.append((command, sample))
    return found


PARSE_ONE_CASES = [(p, c, s) for p in ("cisco_ios", "strongswan") for c, s in _commands(p)]


def test_every_template_of_the_index_is_fuzzed() -> None:
    reached = set()
    for platform, command, _sample in PARSE_ONE_CASES:
        ref = find_template(load_platform(platform).textfsm_platform, command)
        if ref is not None and ref.source == "ipsec-doctor":
            reached.add((platform, ref.path.name))
    # the index's strongSwan rows name the TextFSM platform "strongswan" as the plan does
    assert set(_index_rows()) <= reached, sorted(set(_index_rows()) - reached)


def _raw_samples(platform: str, command: str) -> list[str]:
    """The template tests' raw outputs for the template that parses ``command``."""
    ref = find_template(load_platform(platform).textfsm_platform, command)
    if ref is None:
        return []
    stem = re.sub(r"^(cisco_ios|linux)_", "", ref.path.stem)
    folder = TEMPLATE_TESTS / platform / stem
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.raw"))]


@pytest.mark.parametrize(
    ("platform", "command", "sample"),
    PARSE_ONE_CASES,
    ids=[f"{p}:{c}" for p, c, _ in PARSE_ONE_CASES],
)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_parse_one_never_raises_anything_but_parse_error(
    platform: str, command: str, sample: str, data: st.DataObject
) -> None:
    originals = [sample, *_raw_samples(platform, command)]
    original = data.draw(st.sampled_from([o for o in originals if o] or [""]), label="original")
    text = data.draw(mangled(original), label="output")
    try:
        result = parse_one(platform, command, text)
    except ParseError:
        return  # the documented answer when nothing at all could be parsed
    assert result["platform"] == platform and isinstance(result["rows"], list)
    assert isinstance(result["error"], str)


def test_a_capture_that_is_pure_noise_is_a_problem_with_its_raw_text() -> None:
    """The worked example: `show crypto isakmp sa` answered by a pager prompt and a banner."""
    _folder, peer, device = BASE_DEVICES[0]
    index = next(i for i, c in enumerate(device.captures) if c.command == "show crypto isakmp sa")
    text = " --More-- \n********** AUTHORIZED ACCESS ONLY **********\n%$#@!\n"
    state = parse_device(_replace_capture(device, index, text), peer)
    assert state.ike_sas is None or state.ike_sas == ()
    if state.ike_sas is None:
        (problem,) = [p for p in state.problems if p.section == "isakmp_sa"]
        assert problem.raw == text and problem.outcome == "unparsed"


#: Outputs the fuzzing found to break a converter once (kept as regressions).
FOUND = [
    # email.utils raised OverflowError for an absurd day
    ("gw1", "date -R", "Mon, 99999999999999999999999999 Nov 2026 07:13:47 +0000\n"),
]


@pytest.mark.parametrize(("device_name", "command", "text"), FOUND)
def test_outputs_that_once_broke_a_converter(device_name: str, command: str, text: str) -> None:
    base = next(b for b in BASE_DEVICES if b[0].name == device_name)
    _folder, peer, device = base
    index = next(i for i, c in enumerate(device.captures) if c.command == command)
    state = parse_device(_replace_capture(device, index, text), peer)
    problems = [p for p in state.problems if p.command == command]
    assert [p.raw for p in problems] == [text]
    with pytest.raises(ParseError, match="cannot read the time"):
        parse_one(device.platform, command, text)  # nothing at all could be parsed


def test_a_converter_error_no_one_foresaw_is_a_problem_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real devices print what no fixture had: a builder that trips over it (here made to
    raise KeyError) leaves its section unknown with the raw output, and the rest is parsed."""
    from ipsec_doctor.parse import cisco_ios

    def broken(*_args: object) -> object:
        raise KeyError("peers")

    monkeypatch.setitem(cisco_ios.BUILDERS, "transform_sets", broken)
    cisco_ios.SECTION_MEMO.clear()
    _folder, peer, device = BASE_DEVICES[0]
    state = parse_device(device, peer)
    cisco_ios.SECTION_MEMO.clear()
    (problem,) = [p for p in state.problems if p.section == "transform_sets"]
    assert problem.outcome == "unparsed" and "KeyError" in problem.reason and problem.raw
    assert state.transform_sets is None
    assert state.ike_sas is not None  # the other sections are still read


def test_a_strongswan_converter_error_no_one_foresaw_is_a_problem_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ipsec_doctor.parse import strongswan

    def broken(*_args: object) -> object:
        raise IndexError("list index out of range")

    monkeypatch.setitem(strongswan.BUILDERS, "stats", broken)
    _folder, peer, device = next(b for b in BASE_DEVICES if b[0].name == "gw1")
    state = parse_device(device, peer)
    problems = [p for p in state.problems if p.section == "stats"]  # one per sample
    assert problems
    assert all(p.outcome == "unparsed" and "IndexError" in p.reason and p.raw for p in problems)
    assert state.ike_sas is not None  # the other sections are still read
