"""Runbook files: the packaged ones are valid; every kind of mistake is reported with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ipsec_doctor.diagnose.references import REFERENCES
from ipsec_doctor.errors import ConfigError, UsageError
from ipsec_doctor.model.findings import Code
from ipsec_doctor.platforms.loader import load_platform
from ipsec_doctor.resources import data_dir
from ipsec_doctor.runbook.schema import (
    END,
    Outcome,
    find_runbook,
    load_runbook_file,
    load_runbook_text,
    runbook_paths,
)

GOOD = """\
runbook: tiny
title: A tiny runbook
platform: cisco_ios
steps:
  - id: traffic.acl
    title: Interesting traffic?
    commands: [crypto_map, crypto_acl]
    confirms: [NO_INTERESTING_TRAFFIC]
    rules_out: [NO_INTERESTING_TRAFFIC]
    next:
      NO_INTERESTING_TRAFFIC: traffic.source
      found: end
      clear: ike.sa
      unknown: ike.sa
  - id: traffic.source
    title: Source interface up?
    commands: [route_local_lan, source_interface]
    next: ike.sa
  - id: ike.sa
    title: IKE up?
    commands: [isakmp_sa]
"""


def errors_of(text: str, tmp_path: Path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_runbook_file(path)
    message = str(caught.value)
    for line in message.splitlines():
        assert line.startswith(f"{path}:"), line  # every problem names the file and line
    return message


def at(text: str, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``text`` containing ``marker``."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    return found[occurrence - 1]


def mutate(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_packaged_runbooks_load_and_cover_the_strategy() -> None:
    paths = runbook_paths()
    names = {p.stem for p in paths}
    assert {"crypto-map", "ikev2-vti"} <= names
    for path in paths:
        runbook = load_runbook_file(path)
        assert runbook.name == path.stem
        plan_ids = {c.id for c in load_platform(runbook.platform).commands}
        for step in runbook.steps:
            assert set(step.commands) <= plan_ids
            assert all(ref in REFERENCES for ref in step.references)
            if step.intrusive:
                assert step.risk.strip() and step.action


def test_crypto_map_runbook_follows_the_guide() -> None:
    runbook = load_runbook_file(find_runbook("crypto-map"))
    ids = [s.id for s in runbook.steps]
    # the guide's questions: traffic, then IKE, then IPsec, then the counters
    assert ids.index("traffic.acl") < ids.index("ike.sa") < ids.index("ipsec.sa")
    assert ids.index("ipsec.sa") < ids.index("data.counters")
    ike = runbook.step("ike.sa")
    assert ike.next_step(Outcome.FOUND, [Code.PHASE1_PROPOSAL_MISMATCH]) == "ike.proposal"
    assert runbook.step("ike.proposal").next_step(Outcome.FOUND) == "ike.debug"
    debug = runbook.step("ike.debug")
    assert debug.intrusive and debug.action == "debug"
    assert {s.action for s in runbook.steps if s.intrusive} == {"debug", "ping", "clear"}


def test_runbooks_dir_is_the_resolver_s() -> None:
    assert runbook_paths()[0].parent == data_dir("runbooks")


def test_a_good_runbook_and_its_defaults() -> None:
    runbook = load_runbook_text(GOOD, "tiny.yaml")
    assert runbook.start == "traffic.acl"
    acl = runbook.step("traffic.acl")
    assert acl.references == ("traffic.acl",)  # default: the id itself
    assert acl.next_step(Outcome.FOUND, [Code.NO_INTERESTING_TRAFFIC]) == "traffic.source"
    assert acl.next_step(Outcome.FOUND, [Code.SOURCE_INTERFACE_DOWN]) == END
    assert acl.next_step(Outcome.SKIPPED) == "ike.sa"  # skipped falls back to unknown
    assert runbook.step("traffic.source").next_step(Outcome.CLEAR) == "ike.sa"
    assert runbook.step("ike.sa").next_step(Outcome.CLEAR) == END  # last step: the end
    assert Code.NO_INTERESTING_TRAFFIC in acl.codes


def test_unknown_keys_name_the_line(tmp_path: Path) -> None:
    text = mutate("    confirms:", "    comfirms:")
    message = errors_of(text, tmp_path)
    assert f":{at(text, 'comfirms')}: step 'traffic.acl': unknown key 'comfirms'" in message
    message = errors_of("verbose: true\n" + GOOD, tmp_path)
    assert ":1: runbook: unknown key 'verbose'" in message


def test_unknown_codes_and_command_ids(tmp_path: Path) -> None:
    text = mutate("rules_out: [NO_INTERESTING_TRAFFIC]", "rules_out: [NO_INTERESTING_TRAFIC]")
    text = text.replace("commands: [isakmp_sa]", "commands:\n      - isakmp_sa\n      - ikev9_sa")
    message = errors_of(text, tmp_path)
    code_line = at(text, "NO_INTERESTING_TRAFIC]")
    assert f":{code_line}: step 'traffic.acl': unknown finding code 'NO_INTERESTING_TRAFIC'" in (
        message
    )
    id_line = at(text, "ikev9_sa")
    assert f":{id_line}: step 'ike.sa': unknown command id 'ikev9_sa' for platform cisco_ios" in (
        message
    )


def test_unreachable_steps_and_unknown_targets(tmp_path: Path) -> None:
    text = GOOD.replace("      NO_INTERESTING_TRAFFIC: traffic.source\n", "")
    message = errors_of(text, tmp_path)
    line = at(text, "id: traffic.source")
    assert f":{line}: step 'traffic.source' cannot be reached from 'traffic.acl'" in message
    text = mutate("clear: ike.sa", "clear: ike.sas")
    message = errors_of(text, tmp_path)
    assert f":{at(text, 'ike.sas')}: step 'traffic.acl': next: clear: no step 'ike.sas'" in message


def test_outcomes_need_a_target_and_codes_must_be_nameable(tmp_path: Path) -> None:
    text = mutate("      unknown: ike.sa\n", "")
    message = errors_of(text, tmp_path)
    line = at(text, "id: traffic.acl")
    assert f":{line}: step 'traffic.acl': next gives no step for outcome 'unknown'" in message
    text = mutate("NO_INTERESTING_TRAFFIC: traffic.source", "PSK_MISMATCH: traffic.source")
    message = errors_of(text, tmp_path)
    line = at(text, "PSK_MISMATCH")
    assert f":{line}: step 'traffic.acl': next: PSK_MISMATCH is a code this step never names" in (
        message
    )
    text = mutate("      found: end", "      founds: end")
    message = errors_of(text, tmp_path)
    assert f":{at(text, 'founds')}: step 'traffic.acl': next: 'founds' is neither" in message


def test_intrusive_steps_must_explain_their_risk(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    commands: [isakmp_sa]\n", "    commands: [isakmp_sa]\n    next: ike.debug\n"
    ) + (
        "  - id: ike.debug\n"
        "    title: Debug\n"
        "    intrusive: true\n"
        "    action: debug\n"
        "    options: {seconds: 3000, colour: true}\n"
    )
    message = errors_of(text, tmp_path)
    step, options = at(text, "id: ike.debug"), at(text, "options:")
    assert f":{step}: step 'ike.debug': 'ike.debug' is not a strategy step id" in message
    assert f":{step}: step 'ike.debug': an intrusive step must explain its 'risk'" in message
    assert f":{options}: step 'ike.debug': bad value 3000 for 'seconds'" in message
    assert f":{options}: step 'ike.debug': unknown option 'colour' for action 'debug'" in message
    text = mutate("    title: IKE up?\n", "    title: IKE up?\n    risk: none\n")
    message = errors_of(text, tmp_path)
    assert f":{at(text, 'risk: none')}: step 'ike.sa': 'risk' needs 'intrusive: true'" in message


def test_duplicate_ids_keys_and_bad_yaml(tmp_path: Path) -> None:
    text = GOOD + "  - id: ike.sa\n    title: again\n"
    message = errors_of(text, tmp_path)
    assert f":{at(text, 'id: ike.sa', 2)}: step 'ike.sa': duplicate id" in message
    text = mutate("    title: IKE up?\n", "    title: IKE up?\n    title: twice\n")
    message = errors_of(text, tmp_path)
    first, second = at(text, "IKE up?"), at(text, "twice")
    assert f":{second}: duplicate key 'title' (first on line {first})" in message
    message = errors_of(GOOD.replace("steps:", "steps: [", 1), tmp_path)
    assert "invalid YAML" in message
    message = errors_of("- just\n- a list\n", tmp_path)
    assert ":1: a runbook is a mapping" in message


def test_unknown_platform_and_start(tmp_path: Path) -> None:
    message = errors_of(mutate("platform: cisco_ios", "platform: cisco_nxos"), tmp_path)
    assert ":3: platform: unknown platform 'cisco_nxos'" in message
    message = errors_of("start: ike.nope\n" + GOOD, tmp_path)
    assert ":1: start: no step 'ike.nope'" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = mutate("    confirms:", "    comfirms:").replace("[isakmp_sa]", "[isakmp_sas]")
    assert len(errors_of(text, tmp_path).splitlines()) == 2


def test_find_runbook(tmp_path: Path) -> None:
    assert find_runbook("crypto-map").stem == "crypto-map"
    own = tmp_path / "team.yaml"
    own.write_text(GOOD, encoding="utf-8")
    assert find_runbook(str(own)) == own
    with pytest.raises(UsageError, match="no runbook 'nope'"):
        find_runbook("nope")
