"""The closing summary on a terminal: counts by status, the slowest promotions, and what did
not complete and why. The same data is the ``run.summary`` log event
(:meth:`RunReport.summary_fields`), so cron logs and people see one story."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport

_STYLE = {
    Outcome.COMPLETED: "green",
    Outcome.FAILED: "red",
    Outcome.ERROR: "red",
    Outcome.TIMED_OUT: "yellow",
    Outcome.CANCELLED: "yellow",
    Outcome.SKIPPED: "dim",
}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _plain(value: str | None) -> Text:
    """Text as it is: a reason, a public id or a path comes from a server or a user, and must
    never be read as rich markup (``[/x]`` in a reason would stop the summary with an error)."""
    return Text(value or "")


def summary_renderable(report: RunReport, *, listed: int = 20) -> RenderableType:
    """Tables for ``rich.Console.print``; empty sections are left out."""
    fields = report.summary_fields(listed=listed)
    parts: list[RenderableType] = [_counts(report, fields)]
    if fields["slowest"]:
        parts.append(_rows("Slowest promotions", fields["slowest"], reason=False))
    if fields["notCompleted"]:
        more = fields["notCompletedCount"] - len(fields["notCompleted"])
        title = "Did not complete" + (
            f" (first {listed}; {more} more in the report)" if more else ""
        )
        parts.append(_rows(title, fields["notCompleted"], reason=True))
    if report.baseline is not None and report.baseline.has_changes:
        counts = report.baseline.counts
        changes = Table(
            title=_plain(f"Since {report.baseline.baseline_path}"), title_justify="left"
        )
        changes.add_column("new critical", justify="right")
        changes.add_column("fixed", justify="right")
        changes.add_column("regressed", justify="right")
        changes.add_column("status changed", justify="right")
        changes.add_row(
            str(counts.new_critical),
            str(counts.fixed),
            str(counts.regressed),
            str(counts.status_changed),
        )
        parts.append(changes)
    return Group(*parts)


def _counts(report: RunReport, fields: dict[str, Any]) -> Table:
    table = Table(
        title=f"{report.summary.total} promotions in {report.duration_seconds:.1f}s",
        title_justify="left",
    )
    for outcome in Outcome:
        table.add_column(outcome.value, justify="right", style=_STYLE[outcome])
    table.add_row(*(str(report.summary.by_status.get(o, 0)) for o in Outcome))
    return table


def _rows(title: str, rows: list[dict[str, Any]], *, reason: bool) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("application")
    table.add_column("transition")
    table.add_column("status")
    table.add_column("time", justify="right")
    if reason:
        table.add_column("reason", overflow="fold")
    for row in rows:
        cells = [
            _plain(row["publicId"]),
            _plain(row["transition"]),
            _plain(row["status"]),
            _plain(_seconds(row["durationSeconds"])),
        ]
        if reason:
            cells.append(_plain(row["reason"]))
        table.add_row(*cells, style=_STYLE.get(Outcome(row["status"])))
    return table
