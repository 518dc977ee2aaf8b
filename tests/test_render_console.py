"""The closing summary on a terminal: the headline, counts by status, what did not complete and
why, the gate, violations by band, the changes since the baseline, where the report went, and
how to continue a stopped run."""

from __future__ import annotations

import io
import re
from typing import Literal

from rich.console import Console
from sample_reports import (
    BASELINE_PATH,
    FAILED_REASON,
    STARTED,
    _report,
    completed_report,
    result,
    sample_report,
)

from orchestrator.cli.console import summary_renderable
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport


def render(report: RunReport, *, listed: int = 20, terminal: bool = False) -> str:
    out = io.StringIO()
    colours: Literal["standard"] | None = "standard" if terminal else None
    console = Console(file=out, width=200, force_terminal=terminal, color_system=colours)
    console.print(summary_renderable(report, listed=listed))
    return out.getvalue()


def section(text: str, title: str) -> str:
    """The lines of the table whose title starts with ``title``, up to the next title."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i] and lines[i][0].isalpha()),
        len(lines),
    )
    return "\n".join(lines[start:end])


def counts_row(text: str) -> dict[str, int]:
    """The counts table as {status: count}, read from its header and its one row."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if "COMPLETED" in line)
    names = re.findall(r"[A-Z_]{4,}", lines[header])
    row = next(line for line in lines[header + 1 :] if re.search(r"\d", line))
    return dict(zip(names, map(int, re.findall(r"\d+", row)), strict=True))


MIXED = [
    result("fast-app", Outcome.COMPLETED, start=0, duration=3.0),
    result("slow-app", Outcome.COMPLETED, start=1, duration=250.25),
    result("broken-app", Outcome.FAILED, start=2, duration=12.0, reason="policy action: fail"),
    result("gone-app", Outcome.ERROR, reason="application 'gone-app' is not known", duration=None),
    result("late-app", Outcome.TIMED_OUT, start=3, duration=900.0, reason="no final status"),
    result("next-app", Outcome.SKIPPED, duration=None, reason="earlier transition ended FAILED"),
    result("other-app", Outcome.COMPLETED, start=4, duration=40.0),
]


def test_counts_by_status_in_a_table_titled_with_the_total() -> None:
    report = _report(MIXED, STARTED)
    lines = render(report).splitlines()
    assert lines[0] == "✘ 3 of 7 promotions completed"
    assert lines[1].startswith(f"7 promotions in {report.duration_seconds:.1f}s")
    assert counts_row("\n".join(lines)) == {
        "COMPLETED": 3,
        "FAILED": 1,
        "ERROR": 1,
        "SKIPPED": 1,
        "TIMED_OUT": 1,
        "CANCELLED": 0,
    }


def test_what_did_not_complete_is_listed_with_its_reason() -> None:
    listed = section(render(_report(MIXED, STARTED)), "Did not complete")
    for app, status, reason in [
        ("broken-app", "FAILED", "policy action: fail"),
        ("gone-app", "ERROR", "application 'gone-app' is not known"),
        ("late-app", "TIMED_OUT", "no final status"),
        ("next-app", "SKIPPED", "earlier transition ended FAILED"),
    ]:
        line = next(line for line in listed.splitlines() if app in line)
        assert status in line
        assert reason in line
    assert "fast-app" not in listed
    assert "build -> release" in listed


def test_a_long_list_says_how_many_more_the_report_has() -> None:
    failures = [result(f"app-{i}", Outcome.FAILED, start=i, reason=f"reason {i}") for i in range(8)]
    text = render(_report(failures, STARTED), listed=3)
    listed = section(text, "Did not complete")
    assert listed.startswith("Did not complete (first 3; 5 more in the report)")
    assert [f"app-{i}" in listed for i in range(8)] == [True] * 3 + [False] * 5


def test_a_run_that_completed_has_no_failure_section() -> None:
    text = render(completed_report(4))
    assert text.splitlines()[0] == "✔ 4 of 4 promotions completed"
    assert counts_row(text)["COMPLETED"] == 4
    assert "Did not complete" not in text
    assert "Failed the gate" not in text
    assert "Since" not in text


def test_changes_since_the_baseline_are_counted() -> None:
    report = sample_report()
    assert report.baseline is not None
    counts = report.baseline.counts
    changes = section(render(report), f"Since {BASELINE_PATH}")
    header, row = (line for line in changes.splitlines()[1:] if re.search(r"[a-z0-9]", line))
    assert "new critical" in header
    assert "no earlier count" in header
    assert re.findall(r"\d+", row) == [
        str(counts.new_critical),
        str(counts.fixed),
        str(counts.regressed),
        str(counts.status_changed),
        str(counts.no_earlier_count),
    ]


def test_the_sample_report_renders_every_section() -> None:
    text = render(sample_report(), terminal=True)
    assert "\x1b[" in text  # coloured for a terminal
    for title in ("promotions in", "Did not complete", "Open policy violations", "Since"):
        assert title in text
    assert "data-pipeline" in text  # TIMED_OUT
    assert FAILED_REASON.splitlines()[0] in text  # a multi-line reason keeps its lines


def test_server_text_is_shown_as_it_is_never_as_markup() -> None:
    reason = "evaluation failed: [/policy] and [bold red]not bold[/bold red]"
    report = _report(
        [
            result("app[1]", Outcome.FAILED, reason=reason),
            result("ok", Outcome.COMPLETED),
        ],
        STARTED,
    )
    text = render(report)
    assert reason in text
    assert "app[1]" in text
