"""The audit's renderers: terminal summary, JSON lines, Markdown, HTML, Prometheus textfile."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ipsec_doctor.report.audit_html import render_audit_html, trend_svg
from ipsec_doctor.report.audit_json import render_audit_json
from ipsec_doctor.report.audit_markdown import render_audit_markdown
from ipsec_doctor.report.audit_prometheus import render_audit_prometheus, write_textfile
from ipsec_doctor.report.audit_text import render_audit_text
from tests.audit.report_data import sample_report

XHTML = "{http://www.w3.org/1999/xhtml}"


def test_text_summary_worst_first_with_changes_and_durations() -> None:
    text = render_audit_text(sample_report())
    assert text.startswith("ipsec-doctor audit run 5 of 2026-11-23 02:00:00 UTC in 1 min")
    assert "Devices: 4 (3 reached, 1 unreachable)" in text
    assert "Tunnels: 4 (1 healthy, 1 down, 1 degraded, 1 unreachable)" in text
    assert "Findings: critical 1, warning 3, info 0; 1 silenced" in text
    assert re.search(r"PSK_MISMATCH\s+critical\s+1", text)
    assert "new       SA_FLAPPING" in text and "resolved  NO_ROUTE_TO_PEER" in text
    assert "vanished  tunnel spoke-6 -> 10.6.6.1" in text
    worst = text.index("Worst tunnels")
    assert text.index("[FAIL] hub|1 -> 10.2.2.1 <-> spoke-2", worst) < text.index("spoke-4", worst)
    assert "PSK_MISMATCH, WEAK_CRYPTO (for 3 d (4 runs))" in text
    assert "spoke-5: spoke-5: timed out" in text
    assert "Trend (healthy/broken per run)" in text


def test_json_lines_one_tunnel_per_line() -> None:
    lines = [json.loads(line) for line in render_audit_json(sample_report()).splitlines()]
    assert [(x["device"], x["status"]) for x in lines] == [
        ("hub|1", "down"),
        ("spoke-5", "unreachable"),
        ("spoke-4", "degraded"),
        ("spoke-3", "healthy"),
    ]
    first = lines[0]
    assert first["run_id"] == 5 and first["paired"] and first["remote"] == "spoke-2"
    assert [f["code"] for f in first["findings"]] == ["PSK_MISMATCH", "WEAK_CRYPTO"]
    assert first["silenced"][0]["silence"]["reason"] == "change CHG-42 pending"
    assert first["since"]["PSK_MISMATCH"].startswith("2026-11-20")
    assert lines[2]["new_codes"] == ["SA_FLAPPING"] and first["new_codes"] == []


def test_markdown_escapes_table_cells() -> None:
    text = render_audit_markdown(sample_report())
    assert text.startswith("# ipsec-doctor audit run 5")
    assert "| hub\\|1 |" in text  # a pipe in a device name cannot break the table
    assert "| new | spoke-4 | 10.4.4.1 | SA_FLAPPING | warning |" in text
    assert "### hub|1 -> 10.2.2.1 <-> spoke-2" in text
    assert "~~NO_ROUTE_TO_REMOTE_LAN~~ silenced until" in text
    assert "## Unreachable devices" in text


def test_html_is_self_contained_well_formed_and_escaped() -> None:
    page = render_audit_html(sample_report())
    assert page.startswith("<!DOCTYPE html>")
    root = ET.fromstring(page.split("\n", 1)[1])
    assert not re.search(r"""(src|href)=["']https?:""", page)  # nothing to fetch
    tables = {t.get("id"): t for t in root.iter(f"{XHTML}table")}
    rows = tables["tunnels"].find(f"{XHTML}tbody")
    assert rows is not None and len(rows) == 4
    first = [td.text or "" for td in rows[0]]
    assert first[0] == "critical" and rows[0][0].get("data-sort") == "3"
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) == 2
    assert "sortable" in page and "addEventListener('click'" in page
    assert "Summary" in page and "1 down, 1 healthy of 4 tunnels" in page


def test_trend_chart_with_one_run_and_none() -> None:
    report = sample_report()
    one = trend_svg(report.trend[:1])
    ET.fromstring(one)
    assert "run 1" in one
    assert "No runs yet" in trend_svg(())


def test_prometheus_textfile_format(tmp_path: Path) -> None:
    text = render_audit_prometheus(sample_report())
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? -?[0-9.e+]+$')
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            names.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        assert sample.match(line), line
        assert line.split("{")[0].split(" ")[0] in names
    assert 'ipsec_doctor_audit_tunnels{status="down"} 1' in text
    assert 'ipsec_doctor_audit_findings{code="PSK_MISMATCH",severity="critical"} 1' in text
    assert 'ipsec_doctor_tunnel_up{device="hub|1",peer="10.2.2.1",remote="spoke-2"} 0' in text
    assert 'ipsec_doctor_tunnel_problem_seconds{device="hub|1",peer="10.2.2.1",' in text
    assert "ipsec_doctor_audit_silenced_findings 1" in text
    path = tmp_path / "textfile" / "ipsec_doctor.prom"
    write_textfile(path, text)
    assert path.read_text() == text
    assert [p.name for p in path.parent.iterdir()] == ["ipsec_doctor.prom"]
