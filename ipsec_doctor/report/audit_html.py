"""``audit --html FILE``: one self-contained page a person opens in a browser.

Contract: :func:`render_audit_html` returns a complete HTML5 document with no external
resource (inline CSS, inline SVG, a small inline script): the run line; summary cards (tunnels
by status, findings by severity, devices reached, silenced findings); a chart of healthy and
broken tunnels over the last runs (inline SVG, one point per run with a tooltip); the changes
since the previous run; findings by code; a table of every tunnel, worst first, that sorts by
any column when its header is clicked (severity and duration sort by value, not text), each
problem tunnel with its findings, evidence and fix in a ``<details>``; unreachable devices;
notes. Every text is escaped. The markup is also well-formed XML (void elements closed, the
script in a CDATA section), which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from ipsec_doctor.audit.model import AuditReport, TrendPoint, TunnelRecord, TunnelStatus
from ipsec_doctor.report.audit_common import (
    STATUS_ORDER,
    duration,
    headline,
    run_title,
    since_text,
    stamp,
)

STATUS_COLOUR = {
    TunnelStatus.HEALTHY: "#2e7d32",
    TunnelStatus.DOWN: "#c62828",
    TunnelStatus.DEGRADED: "#ef6c00",
    TunnelStatus.UNKNOWN: "#607d8b",
    TunnelStatus.UNREACHABLE: "#6a1b9a",
}
SEVERITY_COLOUR = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0", "ok": "#2e7d32"}

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px;
       color: #222; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 17px; margin: 28px 0 8px 0; }
.run { color: #555; margin-bottom: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px;
        min-width: 110px; }
.card .n { font-size: 28px; font-weight: 600; }
.card .l { color: #555; font-size: 13px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; cursor: pointer; user-select: none; white-space: nowrap; }
th[data-dir='asc']::after { content: ' \\25B2'; }
th[data-dir='desc']::after { content: ' \\25BC'; }
.sev { font-weight: 600; }
.badge { color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 12px; }
pre { background: #f4f4f4; padding: 6px; margin: 4px 0; white-space: pre-wrap; }
details summary { cursor: pointer; color: #1565c0; }
.muted { color: #777; }
.chart { background: #fff; border: 1px solid #ddd; border-radius: 6px; }
"""

SCRIPT = """
(function () {
  function key(row, index) {
    var cell = row.cells[index];
    return cell.getAttribute('data-sort') || cell.textContent.trim();
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, index) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute('data-dir') !== 'asc';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', asc ? 'asc' : 'desc');
        var numeric = th.getAttribute('data-type') === 'number';
        rows.sort(function (a, b) {
          var x = key(a, index), y = key(b, index), d;
          if (numeric) { d = parseFloat(x) - parseFloat(y); }
          else { d = x.localeCompare(y); }
          return asc ? d : -d;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _card(number: object, label: str, colour: str = "#222") -> str:
    return (
        f'<div class="card"><div class="n" style="color:{colour}">{_e(number)}</div>'
        f'<div class="l">{_e(label)}</div></div>'
    )


def trend_svg(points: tuple[TrendPoint, ...], width: int = 560, height: int = 180) -> str:
    """Healthy and broken tunnels per run as an inline SVG line chart."""
    if not points:
        return '<p class="muted">No runs yet.</p>'
    left, right, top, bottom = 44, 110, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([1] + [max(p.count(TunnelStatus.HEALTHY), p.broken) for p in points])
    n = len(points)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(value: int) -> float:
        return top + plot_h - plot_h * value / top_value

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="healthy and broken tunnels per run">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{top_value}</text>',
        f'<text x="{left - 6}" y="{top + plot_h + 4}" font-size="11" text-anchor="end">0</text>',
    ]

    def healthy(p: TrendPoint) -> int:
        return p.count(TunnelStatus.HEALTHY)

    def broken(p: TrendPoint) -> int:
        return p.broken

    series: tuple[tuple[str, str, Callable[[TrendPoint], int]], ...] = (
        ("healthy", STATUS_COLOUR[TunnelStatus.HEALTHY], healthy),
        ("broken", STATUS_COLOUR[TunnelStatus.DOWN], broken),
    )
    for index, (name, colour, value) in enumerate(series):
        coords = " ".join(f"{x(i):.1f},{y(value(p)):.1f}" for i, p in enumerate(points))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        for i, p in enumerate(points):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value(p)):.1f}" r="3" fill="{colour}">'
                f"<title>run {p.run_id} ({_e(stamp(p.started_at))}): {value(p)} {name}"
                "</title></circle>"
            )
        legend_y = top + 14 + index * 18
        parts.append(
            f'<rect x="{left + plot_w + 14}" y="{legend_y - 9}" width="10" height="10" '
            f'fill="{colour}"/>'
            f'<text x="{left + plot_w + 30}" y="{legend_y}" font-size="12">{name}</text>'
        )
    first, last = points[0], points[-1]
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="11">run {first.run_id} '
        f"({first.started_at:%Y-%m-%d})</text>"
    )
    if n > 1:
        parts.append(
            f'<text x="{left + plot_w}" y="{height - 8}" font-size="11" text-anchor="end">'
            f"run {last.run_id} ({last.started_at:%Y-%m-%d})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _details(report: AuditReport, record: TunnelRecord) -> str:
    if not record.problems and not record.silenced:
        return '<span class="muted">-</span>'
    parts = [f"<details><summary>{len(record.problems)} finding(s)</summary>"]
    for f in record.problems:
        colour = SEVERITY_COLOUR.get(f.severity.value, "#222")
        parts.append(
            f'<p><span class="badge" style="background:{colour}">{_e(f.severity.value)}</span> '
            f"<b>{_e(f.code.value)}</b> ({_e(f.stage.value)}) {_e(f.summary)}</p>"
        )
        if f.evidence:
            lines = "\n".join(
                f"{e.device or f.device} `{e.command}`: {e.line.rstrip()}" for e in f.evidence[:12]
            )
            parts.append(f"<pre>{_e(lines)}</pre>")
        if f.fix:
            target = f" on {f.fix_device}" if f.fix_device else ""
            parts.append(f"<div>Fix{_e(target)}:</div><pre>{_e(f.fix)}</pre>")
    for s in record.silenced:
        parts.append(
            f'<p class="muted">silenced {_e(s.finding.code.value)} until '
            f"{_e(stamp(s.until))}: {_e(s.reason)}</p>"
        )
    parts.append("</details>")
    return "".join(parts)


def _tunnel_row(report: AuditReport, record: TunnelRecord) -> str:
    status = record.status
    severity = record.worst
    first = record.codes[0] if record.codes else ""
    age = report.age(record, first) if first else None
    seconds = age.seconds(report.now) if age is not None else -1
    return (
        "<tr>"
        f'<td class="sev" data-sort="{severity.rank}" '
        f'style="color:{SEVERITY_COLOUR.get(severity.value, "#222")}">{_e(severity.value)}</td>'
        f'<td data-sort="{status.rank}"><span class="badge" '
        f'style="background:{STATUS_COLOUR[status]}">{_e(status.value)}</span></td>'
        f"<td>{_e(record.device)}</td><td>{_e(record.peer or '-')}</td>"
        f"<td>{_e(record.remote or '-')}</td>"
        f"<td>{_e(', '.join(record.codes) or '-')}</td>"
        f'<td data-sort="{seconds:.0f}">{_e(since_text(report, record, first) if first else "")}'
        "</td>"
        f"<td>{_e(headline(record))}{_details(report, record)}</td>"
        "</tr>"
    )


def render_audit_html(report: AuditReport) -> str:
    """The whole page (see the module contract)."""
    counts = report.counts_by_status()
    severity = report.counts_by_severity()
    cards = [_card(len(report.tunnels), "tunnels")]
    cards += [_card(counts[s.value], s.value, STATUS_COLOUR[s]) for s in STATUS_ORDER]
    cards += [_card(n, f"{name} findings", SEVERITY_COLOUR[name]) for name, n in severity.items()]
    cards.append(_card(f"{report.reachable_devices}/{len(report.devices)}", "devices reached"))
    if report.silenced_count:
        cards.append(_card(report.silenced_count, "silenced findings", "#777"))
    body = [
        f"<h1>ipsec-doctor audit: {counts['down']} down, {counts['healthy']} healthy of "
        f"{len(report.tunnels)} tunnels</h1>",
        f'<div class="run">{_e(run_title(report))}</div>',
        '<h2 id="summary">Summary</h2>',
        f'<div class="cards">{"".join(cards)}</div>',
        "<h2>Trend over the last runs</h2>",
        trend_svg(report.trend),
        "<h2>Changes since the previous run</h2>",
    ]
    changes = report.changes
    if changes is None:
        body.append('<p class="muted">First run in this history: nothing to compare with.</p>')
    elif changes.empty:
        body.append(f'<p class="muted">Nothing changed since run {changes.previous_run}.</p>')
    else:
        rows = [
            f"<tr><td>{kind}</td><td>{_e(c.device)}</td><td>{_e(c.peer or '-')}</td>"
            f"<td>{_e(c.code)}</td><td>{_e(c.severity)}</td><td>{_e(c.summary)}</td></tr>"
            for kind, items in (("new", changes.new), ("resolved", changes.resolved))
            for c in items
        ]
        rows += [
            f"<tr><td>{kind}</td><td>{_e(t.device)}</td><td>{_e(t.peer)}</td>"
            f"<td>tunnel</td><td></td><td>{_e(t.reason)}</td></tr>"
            for kind, tunnels in (("appeared", changes.appeared), ("vanished", changes.vanished))
            for t in tunnels
        ]
        body.append(
            '<table class="sortable"><thead><tr><th>change</th><th>device</th><th>peer</th>'
            "<th>code</th><th>severity</th><th>summary</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
    by_code = report.counts_by_code()
    if by_code:
        body.append("<h2>Findings by code</h2>")
        body.append(
            '<table class="sortable"><thead><tr><th>code</th><th>severity</th>'
            '<th data-type="number">tunnels</th></tr></thead><tbody>'
            + "".join(
                f"<tr><td>{_e(code)}</td><td>{_e(sev)}</td><td>{n}</td></tr>"
                for code, (sev, n) in by_code.items()
            )
            + "</tbody></table>"
        )
    body.append(f"<h2>Tunnels ({len(report.tunnels)})</h2>")
    body.append(
        '<table class="sortable" id="tunnels"><thead><tr>'
        '<th data-type="number" data-dir="desc">severity</th><th data-type="number">status</th>'
        "<th>device</th><th>peer</th><th>remote</th><th>codes</th>"
        '<th data-type="number">since</th><th>finding</th></tr></thead><tbody>'
        + "".join(_tunnel_row(report, r) for r in report.worst_first())
        + "</tbody></table>"
    )
    down = [d for d in report.devices if not d.reachable]
    if down:
        body.append(f"<h2>Unreachable devices ({len(down)})</h2>")
        body.append(
            '<table class="sortable"><thead><tr><th>device</th><th>host</th><th>error</th>'
            "</tr></thead><tbody>"
            + "".join(
                f"<tr><td>{_e(d.name)}</td><td>{_e(d.host)}</td><td>{_e(d.error)}</td></tr>"
                for d in down
            )
            + "</tbody></table>"
        )
    if report.notes:
        body.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>"
        )
    body.append(
        f'<p class="muted">Generated by ipsec-doctor on {_e(stamp(report.now))}; the run took '
        f"{_e(duration(report.run.duration or 0))}.</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>ipsec-doctor audit run {report.run.id}</title>"
        f"<style>{CSS}</style></head><body>"
        + "\n".join(body)
        + f"<script>//<![CDATA[\n{SCRIPT}\n//]]></script></body></html>\n"
    )
