"""One self-contained HTML page: counts, a timeline, evaluation times, organizations and a
searchable table linking every IQ report.

Nothing is fetched (a Content-Security-Policy forbids it); the results travel as JSON in a
``<script type="application/json">`` and the table shows a page of them at a time, so a run
of 20,000 promotions stays quick to open.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

from orchestrator.render.charts import histogram_svg, timeline_svg
from orchestrator.render.views import (
    BANDS,
    PromotionView,
    ViolationTotals,
    headline,
    promotion_views,
    seconds,
    violation_totals,
    web_url,
    webhook_line,
)
from orchestrator.report.baseline import BaselineComparison
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.report.run_report import RunReport

STATUS_COLOURS = {
    "COMPLETED": "#2e7d32",
    "FAILED": "#c62828",
    "ERROR": "#ef6c00",
    "SKIPPED": "#90a4ae",
    "TIMED_OUT": "#8e24aa",
    "CANCELLED": "#5d4037",
}


def _asset(name: str) -> str:
    """A file of ``render/assets``, package data shipped beside this module."""
    return resources.files("orchestrator.render").joinpath("assets", name).read_text("utf-8")


def _status_rules() -> str:
    return "\n".join(
        f".s-{status} {{ fill: {colour}; background: {colour}; }}\n"
        f".card.s-{status} {{ border-top-color: {colour}; background: var(--card); }}\n"
        f".badge.s-{status} {{ color: #fff; }}"
        for status, colour in STATUS_COLOURS.items()
    )


CSS = _asset("report.css") + _status_rules()
JS = _asset("report.js")

PAGE_SIZE = 100
MAX_CHANGES = 200
"""Rows of each baseline list shown in the page; the JSON report has them all."""

COLUMNS = (
    "publicId",
    "organization",
    "transition",
    "status",
    "durationSeconds",
    "evaluationSeconds",
    "critical",
    "severe",
    "moderate",
    "low",
    "reason",
    "reportUrl",
    "change",
)

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def embed_json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` can end the element or
    start a comment, since each is written as a ``\\u`` escape."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(report: RunReport) -> str:
    """The report as a self-contained HTML page."""
    totals = violation_totals(report.results)
    title = f"iq-promote: {report.manifest}"
    sections = [
        _header(report),
        _gate(report),
        _counts(report),
        _violations(totals) if totals is not None else "",
        _baseline(report.baseline) if report.baseline is not None else "",
        _timeline(report),
        _histogram(report.results),
        _organizations(report.results),
        _table(with_violations=totals is not None, with_baseline=report.baseline is not None),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{escape(title)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            *sections,
            '<script type="application/json" id="report-data">'
            + embed_json(_data(report))
            + "</script>",
            f"<script>{JS}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _header(report: RunReport) -> str:
    meta = [
        f"manifest {report.manifest}",
        f"server {report.server_url}",
        f"started {report.started_at.isoformat(timespec='seconds')}",
        f"took {seconds(report.duration_seconds)}",
    ]
    verdict = headline(report)
    spans = "".join(f"<span>{escape(m)}</span>" for m in meta)
    state = "passed" if verdict.passed else "failed"
    return (
        f'<header class="{state}"><h1>iq-promote run report: {escape(verdict.text)}</h1>'
        f'<p class="meta">{spans}</p></header>'
    )


def _gate(report: RunReport) -> str:
    """What failed ``--fail-on``: each report that crossed it, or could not be checked."""
    gate = report.policy_gate
    if gate is None or not gate.failed:
        return ""
    rows: list[list[str | None]] = []
    for view in promotion_views(report):
        if not (view.crossed or view.unchecked):
            continue
        counts = view.result.violations
        rows.append(
            [
                view.application,
                view.result.target_stage_id,
                "crossed" if view.crossed else "not checked",
                *(str(getattr(counts, b)) if counts else "" for b in BANDS),
                view.result.violations_unchecked or "",
                view.result.report_html_url,
            ]
        )
    table = _change_table(
        f"Failed the gate: --fail-on {gate.fail_on}",
        ["Application", "Stage", "Gate", *(b.capitalize() for b in BANDS), "Why", "Report"],
        rows,
    )
    return (
        '<section id="gate"><h2>The gate</h2>'
        f'<p class="meta">--fail-on {escape(gate.fail_on)}: {len(gate.crossed)} crossed, '
        f"{gate.unchecked} could not be checked.</p>{table}</section>"
    )


def _card(number: int | str, label: str, attrs: str = "", css: str = "") -> str:
    return (
        f'<div class="card {css}"{attrs}><span class="n">{escape(str(number))}</span>'
        f'<span class="label">{escape(label)}</span></div>'
    )


def _counts(report: RunReport) -> str:
    cards = [_card(report.summary.total, "promotions", ' id="count-total"')]
    cards += [
        _card(n, str(o), f' data-status="{o}" title="Show only {o}"', f"s-{o}")
        for o, n in report.summary.by_status.items()
    ]
    hook = webhook_line(report)
    said = f'<p class="meta" id="webhook">{escape(hook)}</p>' if hook is not None else ""
    return (
        '<section id="counts"><h2>Promotions by status</h2>'
        f'<div class="cards">{"".join(cards)}</div>{said}</section>'
    )


def _violations(totals: ViolationTotals) -> str:
    cards = [_card(getattr(totals.counts, b), b, f' data-band="{b}"', f"band-{b}") for b in BANDS]
    cards.append(_card(totals.reports_with_critical, "reports with critical violations"))
    return (
        '<section id="violations"><h2>Open policy violations</h2>'
        f'<p class="meta">Not waived, in the {totals.reports} new reports whose data was read.</p>'
        f'<div class="cards">{"".join(cards)}</div></section>'
    )


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{status}</span>'
        for status, colour in STATUS_COLOURS.items()
    )
    return f'<div class="legend">{items}</div>'


def _timeline(report: RunReport) -> str:
    svg = timeline_svg(report.results, report.started_at, report.finished_at)
    return (
        '<section id="timeline"><h2>Timeline</h2>'
        '<p class="meta">Each bar runs from the accepted request to the final status; '
        "bars that overlap in time sit in separate lanes.</p>"
        f"{_legend()}{svg}</section>"
    )


def _histogram(results: Sequence[PromotionResult]) -> str:
    values = [r.evaluation_seconds for r in results if r.evaluation_seconds is not None]
    return (
        '<section id="evaluation-times"><h2>Evaluation times</h2>'
        f'<p class="meta">{len(values)} promotions; estimated time IQ Server spent evaluating '
        "each.</p>"
        f"{histogram_svg(values)}</section>"
    )


def _organizations(results: Sequence[PromotionResult]) -> str:
    by_org: dict[str, Counter[Outcome]] = defaultdict(Counter)
    for r in results:
        by_org[r.organization or ""][r.status] += 1
    head = "".join(f'<th class="num">{o}</th>' for o in Outcome)
    rows = []
    for org in sorted(by_org):
        counts = by_org[org]
        total = sum(counts.values())
        cells = "".join(f'<td class="num">{counts[o] or ""}</td>' for o in Outcome)
        stack = "".join(
            f'<span class="s-{o}" style="width:{counts[o] / total * 100:.2f}%" '
            f'title="{o}: {counts[o]}"></span>'
            for o in Outcome
            if counts[o]
        )
        name = escape(org) if org else '<span class="empty">(no organization)</span>'
        rows.append(
            f'<tr><td>{name}</td>{cells}<td class="num">{total}</td>'
            f'<td><div class="stack">{stack}</div></td></tr>'
        )
    return (
        '<section id="organizations"><h2>Status by organization</h2>'
        f'<table><thead><tr><th>Organization</th>{head}<th class="num">Total</th><th></th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _table(*, with_violations: bool, with_baseline: bool) -> str:
    headers = [
        ("publicId", "Application", ""),
        ("organization", "Organization", ""),
        ("transition", "Transition", ""),
        ("status", "Status", ""),
        ("durationSeconds", "Duration", "num"),
        ("evaluationSeconds", "Evaluation", "num"),
    ]
    if with_violations:
        headers += [(b, b.capitalize(), "num") for b in BANDS]
    if with_baseline:
        headers.append(("change", "Since baseline", ""))
    headers += [("reason", "Reason", ""), ("report", "Report", "")]
    ths = "".join(f'<th data-key="{k}" class="{c}">{label}</th>' for k, label, c in headers)
    options = "".join(f'<option value="{o}">{o}</option>' for o in Outcome)
    return f"""<section id="promotions"><h2>Promotions</h2>
<div class="controls">
<input type="search" id="search" placeholder="Search application, organization, transition, reason"
 aria-label="Search promotions" autocomplete="off">
<select id="status-filter" aria-label="Status">
<option value="">All statuses</option>{options}</select>
<select id="org-filter" aria-label="Organization">
<option value="">All organizations</option></select>
</div>
<div class="scroll"><table id="promotions-table"><thead><tr>{ths}</tr></thead><tbody></tbody>
</table></div>
<div class="pager"><button type="button" id="prev-page">Previous</button>
<span id="page-info"></span><button type="button" id="next-page">Next</button></div>
<noscript><p>The table needs JavaScript; the JSON report holds the same results.</p></noscript>
</section>"""


def _change(view: PromotionView) -> str | None:
    """What changed since the baseline, in a few words for the table's column."""
    words = []
    if view.new_critical is not None:
        words.append("new critical")
    if view.fixed is not None:
        words.append("critical fixed")
    if view.status_change is not None:
        words.append(f"was {view.status_change.status_before}")
    if not words and view.new_application:
        words.append("new application")
    return ", ".join(words) or None


def _data(report: RunReport) -> dict[str, Any]:
    rows = []
    for view in promotion_views(report):
        r, v = view.result, view.result.violations
        rows.append(
            [
                view.application,
                r.organization,
                view.transition,
                str(r.status),
                r.duration_seconds,
                r.evaluation_seconds,
                v.critical if v else None,
                v.severe if v else None,
                v.moderate if v else None,
                v.low if v else None,
                r.reason,
                web_url(r.report_html_url),
                _change(view),
            ]
        )
    return {"columns": COLUMNS, "pageSize": PAGE_SIZE, "rows": rows}


def _baseline(baseline: BaselineComparison) -> str:
    c = baseline.counts
    cards = "".join(
        [
            _card(c.new_critical, "new critical violations", ' id="baseline-new-critical"'),
            _card(c.fixed, "critical violations fixed", ' id="baseline-fixed"'),
            _card(c.status_changed, "status changes", ' id="baseline-status-changed"'),
            _card(c.regressed, "no longer completed", ' id="baseline-regressed"'),
            _card(c.no_earlier_count, "critical, no earlier count", ' id="baseline-no-count"'),
            _card(c.new_applications, "new applications", ' id="baseline-new-apps"'),
            _card(c.missing_applications, "missing applications", ' id="baseline-missing-apps"'),
        ]
    )
    lists = [
        _change_table(
            "New critical violations",
            ["Application", "Stage", "Critical before", "Critical now", "Report"],
            [
                [
                    v.public_id,
                    v.target_stage_id,
                    "-" if v.critical_before is None else str(v.critical_before),
                    str(v.critical_after),
                    v.report_html_url,
                ]
                for v in baseline.new_critical
            ],
        ),
        _change_table(
            "Critical violations fixed",
            ["Application", "Stage", "Critical before", "Critical now", "Report"],
            [
                [v.public_id, v.target_stage_id, str(v.critical_before), "0", v.report_html_url]
                for v in baseline.fixed
            ],
        ),
        _change_table(
            "Critical violations with no earlier count (not new: unknown before)",
            ["Application", "Stage", "Critical now", "Report"],
            [
                [v.public_id, v.target_stage_id, str(v.critical_after), v.report_html_url]
                for v in baseline.no_earlier_count
            ],
        ),
        _change_table(
            "Status changed",
            ["Application", "Stage", "Before", "Now", "Reason", "Report"],
            [
                [
                    s.public_id,
                    s.target_stage_id,
                    str(s.status_before),
                    str(s.status_after),
                    s.reason,
                    s.report_html_url,
                ]
                for s in baseline.status_changes
            ],
        ),
        _change_table(
            "New applications",
            ["Application", "Organization"],
            [[a.public_id, a.organization] for a in baseline.new_applications],
        ),
        _change_table(
            "Missing applications",
            ["Application", "Organization"],
            [[a.public_id, a.organization] for a in baseline.missing_applications],
        ),
    ]
    started = baseline.baseline_started_at.isoformat(timespec="seconds")
    return (
        '<section id="baseline"><h2>Changes since the baseline</h2>'
        f'<p class="meta">Compared with {escape(baseline.baseline_path)}, '
        f"a run started {escape(started)}.</p>"
        f'<div class="cards">{cards}</div>{"".join(lists)}</section>'
    )


def _change_table(title: str, header: list[str], rows: list[list[str | None]]) -> str:
    """A table of baseline changes; the last column is a report link when headed "Report"."""
    if not rows:
        return ""
    linked = header[-1] == "Report"
    body = []
    for row in rows[:MAX_CHANGES]:
        cells = [f"<td>{escape(v or '')}</td>" for v in (row[:-1] if linked else row)]
        if linked:
            url = web_url(row[-1])
            cells.append(
                f'<td><a href="{escape(url)}" target="_blank" rel="noopener noreferrer">report</a>'
                "</td>"
                if url
                else "<td></td>"
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = (
        f'<p class="more">…and {len(rows) - MAX_CHANGES} more: see the JSON report.</p>'
        if len(rows) > MAX_CHANGES
        else ""
    )
    ths = "".join(f"<th>{escape(h)}</th>" for h in header)
    return (
        f"<h3>{escape(title)} ({len(rows)})</h3>"
        f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"
    )
