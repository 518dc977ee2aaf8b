"""Markdown for CI step summaries (GitHub's ``$GITHUB_STEP_SUMMARY``, GitLab, Gitea).

Long lists are cut at :data:`MAX_ROWS` rows, since step summaries have a size limit and the
JSON report holds everything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

from orchestrator.render.views import (
    BANDS,
    headline,
    not_completed,
    promotion_views,
    seconds,
    violation_totals,
    web_url,
    webhook_line,
)
from orchestrator.report.baseline import (
    ApplicationRef,
    BaselineComparison,
    StatusChange,
    ViolationChange,
)
from orchestrator.report.run_report import RunReport

MAX_ROWS = 100

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def cell(value: object) -> str:
    """Text that stays inside one table cell and shows as typed: ``|`` and Markdown's
    punctuation are backslash-escaped, newlines become ``<br>``."""
    if value is None:
        return ""
    text = _SPECIAL.sub(r"\\\1", str(value))
    return _NEWLINES.sub("<br>", text)


def link(text: str, url: str | None) -> str:
    """A Markdown link when ``url`` is an http(s) address, else nothing."""
    target = web_url(url)
    if target is None:
        return ""
    return f"[{cell(text)}]({quote(target, safe=':/?#[]@!$&*+,;=%~')})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    aligns = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in aligns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _cut(total: int, shown: int) -> list[str]:
    return ["", f"_…and {total - shown} more: see the JSON report._"] if total > shown else []


def render_markdown(report: RunReport) -> str:
    """The report as a Markdown summary."""
    summary = report.summary
    verdict = headline(report)
    mark = "✅" if verdict.passed else "❌"
    lines = [
        f"## {mark} iq-promote: {cell(verdict.text)}",
        "",
        f"Manifest {cell(report.manifest)} against {cell(report.server_url)}; "
        f"started {report.started_at.isoformat(timespec='seconds')}, "
        f"took {seconds(report.duration_seconds)}.",
        "",
        *_table(
            ["Status", "Promotions"],
            [
                *([str(o), str(n)] for o, n in summary.by_status.items()),
                ["**Total**", f"**{summary.total}**"],
            ],
            "lr",
        ),
    ]
    hook = webhook_line(report)
    if hook is not None:
        lines += ["", cell(hook)]
    lines += _gate(report)
    totals = violation_totals(report.results)
    if totals is not None:
        lines += [
            "",
            f"### Open policy violations ({totals.reports} reports)",
            "",
            *_table(
                ["Critical", "Severe", "Moderate", "Low", "Reports with critical"],
                [
                    [
                        *(str(getattr(totals.counts, b)) for b in BANDS),
                        str(totals.reports_with_critical),
                    ]
                ],
                "rrrrr",
            ),
        ]
    lines += _not_completed(report, with_violations=totals is not None)
    if report.baseline is not None:
        lines += _baseline(report.baseline)
    return "\n".join(lines) + "\n"


def _gate(report: RunReport) -> list[str]:
    """What crossed ``--fail-on`` (or could not be checked against it): the gate's failures."""
    gate = report.policy_gate
    if gate is None or not gate.failed:
        return []
    gated = [v for v in promotion_views(report) if v.crossed or v.unchecked]
    rows = []
    for view in gated[:MAX_ROWS]:
        r, v = view.result, view.result.violations
        rows.append(
            [
                cell(view.application),
                cell(r.target_stage_id),
                "crossed" if view.crossed else "not checked",
                *(str(getattr(v, b)) if v else "" for b in BANDS),
                cell(r.violations_unchecked) if view.unchecked else "",
                link("report", r.report_html_url),
            ]
        )
    header = ["Application", "Stage", "Gate", *(b.capitalize() for b in BANDS), "Why", "Report"]
    return [
        "",
        f"### Failed the gate: --fail-on {gate.fail_on} ({len(gated)})",
        "",
        *_table(header, rows, "lllrrrrll"),
        *_cut(len(gated), len(rows)),
    ]


def _not_completed(report: RunReport, *, with_violations: bool) -> list[str]:
    failed = not_completed(report.results)
    if not failed:
        return []
    header = ["Application", "Transition", "Status", "Reason"]
    if with_violations:
        header += [b.capitalize() for b in BANDS]
    header.append("Report")
    rows = []
    for r in failed[:MAX_ROWS]:
        row = [cell(r.application), cell(r.transition), str(r.status), cell(r.reason)]
        if with_violations:
            row += [str(getattr(r.violations, b)) if r.violations else "" for b in BANDS]
        row.append(link("report", r.report_html_url))
        rows.append(row)
    align = "llll" + ("rrrr" if with_violations else "") + "l"
    return [
        "",
        f"### Not completed ({len(failed)})",
        "",
        *_table(header, rows, align),
        *_cut(len(failed), len(rows)),
    ]


def _baseline(baseline: BaselineComparison) -> list[str]:
    c = baseline.counts
    lines = [
        "",
        f"### Changes since the baseline ({cell(baseline.baseline_path)}, "
        f"started {baseline.baseline_started_at.isoformat(timespec='seconds')})",
        "",
        *_table(
            ["Change", "Count"],
            [
                ["New critical violations", str(c.new_critical)],
                ["Critical violations fixed", str(c.fixed)],
                ["Status changed", str(c.status_changed)],
                ["No longer completed", str(c.regressed)],
                ["Critical, with no earlier count", str(c.no_earlier_count)],
                ["New applications", str(c.new_applications)],
                ["Missing applications", str(c.missing_applications)],
            ],
            "lr",
        ),
    ]
    lines += _violation_changes("New critical violations", baseline.new_critical)
    lines += _violation_changes("Critical violations fixed", baseline.fixed)
    lines += _violation_changes(
        "Critical violations with no earlier count (not new: unknown before)",
        baseline.no_earlier_count,
    )
    lines += _status_changes(baseline.status_changes)
    lines += _applications("New applications", baseline.new_applications)
    lines += _applications("Missing applications", baseline.missing_applications)
    return lines


def _violation_changes(title: str, changes: list[ViolationChange]) -> list[str]:
    if not changes:
        return []
    rows = [
        [
            cell(v.public_id),
            cell(v.organization),
            cell(v.target_stage_id),
            "-" if v.critical_before is None else str(v.critical_before),
            str(v.critical_after),
            link("report", v.report_html_url),
        ]
        for v in changes[:MAX_ROWS]
    ]
    header = ["Application", "Organization", "Stage", "Critical before", "Critical now", "Report"]
    return [
        "",
        f"#### {title} ({len(changes)})",
        "",
        *_table(header, rows, "lllrrl"),
        *_cut(len(changes), len(rows)),
    ]


def _status_changes(changes: list[StatusChange]) -> list[str]:
    if not changes:
        return []
    rows = [
        [
            cell(s.public_id),
            cell(s.target_stage_id),
            f"{s.status_before} -> {s.status_after}",
            cell(s.reason),
            link("report", s.report_html_url),
        ]
        for s in changes[:MAX_ROWS]
    ]
    return [
        "",
        f"#### Status changed ({len(changes)})",
        "",
        *_table(["Application", "Stage", "Status", "Reason", "Report"], rows),
        *_cut(len(changes), len(rows)),
    ]


def _applications(title: str, apps: list[ApplicationRef]) -> list[str]:
    if not apps:
        return []
    rows = [[cell(a.public_id), cell(a.organization)] for a in apps[:MAX_ROWS]]
    return [
        "",
        f"#### {title} ({len(apps)})",
        "",
        *_table(["Application", "Organization"], rows),
        *_cut(len(apps), len(rows)),
    ]
