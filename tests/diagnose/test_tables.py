"""The data the diagnosis leans on: strategy step ids, fix texts, report model round trips."""

from __future__ import annotations

import re
from itertools import product

import pytest
import yaml

from ipsec_doctor.diagnose import diagnose, diagnose_tunnels
from ipsec_doctor.diagnose.fixes import load_fixes, render, template, term
from ipsec_doctor.diagnose.references import CODE_REFERENCE, REFERENCES
from ipsec_doctor.model.findings import Code, Stage
from ipsec_doctor.model.report import (
    CommandRecord,
    DeviceRecord,
    Report,
    TunnelResult,
    finding_from_dict,
)
from ipsec_doctor.resources import data_dir

from .builders import healthy_view, one_ended
from .test_engine_properties import FAULTS, inject

STAGES = {s.value for s in Stage}
NO_FIX = {Code.TUNNEL_HEALTHY, Code.INSUFFICIENT_DATA}


def test_reference_ids_are_stage_dot_step() -> None:
    for ref, title in REFERENCES.items():
        stage, _, step = ref.partition(".")
        assert stage in STAGES and re.fullmatch(r"[a-z_]+", step), ref
        assert title and len(title) <= 90 and "\n" not in title


def test_every_code_has_a_known_reference() -> None:
    assert set(CODE_REFERENCE) == set(Code)
    assert set(CODE_REFERENCE.values()) <= set(REFERENCES)


@pytest.mark.parametrize("platform", ["cisco_ios", "strongswan"])
def test_plan_references_are_in_the_table(platform: str) -> None:
    plan = yaml.safe_load((data_dir("platforms") / f"{platform}.yaml").read_text())
    for command in plan["commands"]:
        if "reference" in command:
            assert command["reference"] in REFERENCES, (platform, command)


def test_fixes_cover_every_code_for_ios_and_strongswan() -> None:
    fixes = load_fixes()["fixes"]
    keys = {k.split("/", 1)[0] for k in fixes}
    assert keys <= {c.value for c in Code}
    for code in set(Code) - NO_FIX:
        variants = [k for k in fixes if k.split("/", 1)[0] == code.value]
        assert variants, code
        for key, platform in product(variants, ("cisco_ios", "strongswan", "cisco_asa")):
            assert template(key, platform), (key, platform)


def test_templates_render_without_values_and_show_blanks() -> None:
    for key, platform in product(load_fixes()["fixes"], ("cisco_ios", "strongswan", "generic")):
        text = render(key, platform)
        assert not re.search(r"\{[a-z_]+\}", text), (key, platform, text)


SECRET_LINE = re.compile(
    r"^\s*(crypto isakmp key|no crypto isakmp key|secret =|username .* secret| key )"
)


def test_no_template_carries_a_real_secret() -> None:
    for per_platform in load_fixes()["fixes"].values():
        for text in per_platform.values():
            for line in text.splitlines():
                if SECRET_LINE.search(line) and not line.lstrip().startswith(("!", "#")):
                    assert re.search(r"<(pre-shared-key|old-key|password)>", line), line


def test_vocabulary() -> None:
    assert term("cisco_ios", "encryption", "aes-256") == "aes 256"
    assert term("strongswan", "group", 14) == "modp2048"
    assert term("cisco_ios", "transform", "esp-aes-256") == "esp-aes 256"
    assert term("cisco_ios", "pfs", 14) == "group14"
    assert term("cisco_ios", "encryption", "unheard-of") == "unheard-of"


@pytest.mark.parametrize(
    ("stage", "index"), [(s, i) for s, faults in FAULTS.items() for i in range(len(faults))]
)
def test_every_failure_has_a_fix_a_reference_and_readable_summary(stage: Stage, index: int) -> None:
    for view in (inject({stage: index}),):
        for f in diagnose(view):
            assert f.reference in REFERENCES
            assert f.summary.startswith(f"{f.device}:") or f.summary.startswith(f.device)
            assert "\n" not in f.summary
            if f.code not in NO_FIX:
                assert f.fix and f.fix_device, f
                for line in f.fix.splitlines():
                    if SECRET_LINE.search(line):
                        assert "<pre-shared-key>" in line or "<old-key>" in line, line


def test_report_round_trip() -> None:
    findings = tuple(diagnose(inject({Stage.IKE: 1})))
    report = Report(
        peer="10.2.2.1",
        started_at="2026-11-23T10:15:00+00:00",
        devices=(
            DeviceRecord(
                "R1",
                "cisco_ios",
                "R1",
                role="local",
                peer="10.2.2.1",
                commands=(CommandRecord("show crypto isakmp sa", 1, "ok", elapsed=0.1234),),
            ),
        ),
        findings=findings,
    )
    data = report.to_dict()
    assert list(data)[:5] == ["schema_version", "tool_version", "mode", "started_at", "peer"]
    assert data["devices"][0]["commands"][0]["elapsed"] == 0.123
    again = Report.from_dict(data)
    assert again.to_dict() == data
    assert again.worst.value == "critical"
    assert [finding_from_dict(f.to_dict()) for f in findings] == list(findings)


def test_report_validates_against_the_shipped_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from ipsec_doctor.report.json_report import load_schema

    report = Report(
        peer="10.2.2.1",
        started_at="2026-11-23T10:15:00+00:00",
        findings=tuple(diagnose(inject({Stage.TRAFFIC: 0, Stage.IPSEC: 1}))),
    )
    jsonschema.validate(report.to_dict(), load_schema())


def test_diagnose_tunnels_one_result_per_view() -> None:
    results = diagnose_tunnels([healthy_view(), one_ended(inject({Stage.IKE: 3}))])
    assert [r.device for r in results] == ["R1", "R1"]
    assert results[0].healthy and results[0].worst.value == "ok"
    assert not results[1].healthy and results[1].worst.value == "critical"
    line = results[1].to_dict()
    assert line["remote"] == "" and line["worst_severity"] == "critical"
    assert TunnelResult.from_dict(line).to_dict() == line
