"""Markdown for CI step summaries."""

from __future__ import annotations

import re

import pytest
from sample_reports import (
    FIXED_APP,
    KNOWN_APP,
    MISSING_APP,
    NEW_APP,
    REGRESSED_APP,
    completed_report,
    sample_report,
)

from orchestrator.render.markdown import MAX_ROWS, cell, link, render_markdown
from orchestrator.report.results import Outcome

# A table row: starts and ends with a pipe that is not escaped.
ROW = re.compile(r"^\|.*[^\\]\|$")


def _cells(line: str) -> list[str]:
    """Split a table row on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append(line)
    return rows


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a|b", r"a\|b"),
        ("line one\nline two\r\nthree\rfour", "line one<br>line two<br>three<br>four"),
        ("<script>", r"\<script\>"),
        ("**bold** _it_ `code` [x](y)", r"\*\*bold\*\* \_it\_ \`code\` \[x\](y)"),
        ("back\\slash", "back\\\\slash"),
        (None, ""),
        (3, "3"),
    ],
)
def test_cell_escapes(raw: object, shown: str) -> None:
    assert cell(raw) == shown


def test_link_only_for_web_urls_and_encoded() -> None:
    assert link("report", "javascript:alert(1)") == ""
    assert link("report", None) == ""
    assert (
        link("report", "https://iq.test/a b(c)|d") == "[report](https://iq.test/a%20b%28c%29%7Cd)"
    )


def test_counts_table_has_every_status() -> None:
    report = sample_report()
    text = render_markdown(report)
    assert text.startswith("## ❌ iq-promote: 39 of 50 promotions completed")
    rows = {_cells(r)[0]: _cells(r)[1] for r in _section(text, "## ")[2:]}
    for outcome in Outcome:
        assert rows[str(outcome)] == str(report.summary.by_status[outcome])
    assert rows["**Total**"] == "**50**"


def test_successful_run_has_no_failure_table() -> None:
    text = render_markdown(completed_report(3))
    assert text.startswith("## ✅ iq-promote: 3 of 3 promotions completed")
    assert "Not completed" not in text


def test_not_completed_table() -> None:
    report = sample_report()
    text = render_markdown(report)
    rows = _section(text, "### Not completed")
    header = _cells(rows[0])
    assert header == [
        "Application",
        "Transition",
        "Status",
        "Reason",
        "Critical",
        "Severe",
        "Moderate",
        "Low",
        "Report",
    ]
    failed = [r for r in report.results if r.status is not Outcome.COMPLETED]
    assert len(rows) - 2 == len(failed)
    for row in rows:
        assert ROW.match(row), row
        assert len(_cells(row)) == len(header), row
    by_app = {_cells(r)[0]: _cells(r) for r in rows[2:]}
    regressed = by_app[REGRESSED_APP]
    assert regressed[1] == "build -\\> stage-release"  # ">" escaped, shown as typed
    assert regressed[2] == "FAILED"
    assert regressed[3] == r"Policy evaluation failed \| 2 components<br>see the server log"
    assert "promotions\\[4\\]" in by_app
    hostile = by_app["xss-probe"][3]
    assert "<script>" not in hostile
    assert "\\</script\\>" in hostile


def test_open_violations_are_summed() -> None:
    report = sample_report()
    rows = _section(render_markdown(report), "### Open policy violations")
    values = _cells(rows[2])
    with_counts = [r.violations for r in report.results if r.violations is not None]
    assert values[0] == str(sum(v.critical for v in with_counts))
    assert values[3] == str(sum(v.low for v in with_counts))
    assert values[4] == str(sum(1 for v in with_counts if v.critical))


def test_baseline_changes() -> None:
    text = render_markdown(sample_report())
    assert (
        "### Changes since the baseline (reports/nightly-previous.json, started 2025-03-03" in text
    )
    counts = {_cells(r)[0]: _cells(r)[1] for r in _section(text, "### Changes since")[2:]}
    assert counts == {
        "New critical violations": "1",
        "Critical violations fixed": "1",
        "Status changed": "1",
        "No longer completed": "1",
        "Critical, with no earlier count": "0",
        "New applications": "1",
        "Missing applications": "1",
    }
    new = _cells(_section(text, "#### New critical violations (1)")[2])
    assert new[0] == KNOWN_APP
    assert new[3:5] == ["0", "3"]
    assert new[5].startswith("[report](https://iq.example.test:8070/")
    assert _cells(_section(text, "#### Critical violations fixed (1)")[2])[0] == FIXED_APP
    status = _cells(_section(text, "#### Status changed (1)")[2])
    assert status[:3] == [REGRESSED_APP, "stage-release", "COMPLETED -> FAILED"]
    assert _cells(_section(text, "#### New applications (1)")[2])[0] == NEW_APP
    assert _cells(_section(text, "#### Missing applications (1)")[2])[0] == MISSING_APP


def test_without_baseline_or_violations_those_sections_are_absent() -> None:
    report = sample_report(with_baseline=False)
    for r in report.results:
        r.violations = None
    text = render_markdown(report)
    assert "baseline" not in text
    assert "policy violations" not in text
    assert _cells(_section(text, "### Not completed")[0])[-1] == "Report"
    assert "Critical" not in _section(text, "### Not completed")[0]


def test_long_lists_are_cut() -> None:
    report = sample_report(size=400)
    for r in report.results:
        r.status = Outcome.FAILED
    text = render_markdown(report)
    rows = _section(text, "### Not completed")
    assert len(rows) - 2 == MAX_ROWS
    assert f"…and {len(report.results) - MAX_ROWS} more" in text
