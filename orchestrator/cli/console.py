"""The closing summary on a terminal: how the night went (with the error that ended it, if
one did), what did not complete and why, the gate, violations by band, changes since the
baseline, where the report went, and, when the run was stopped, the command that continues it.
The same data is the ``run.summary`` log event (:meth:`RunReport.summary_fields`), so cron
logs and people see one story."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.render.views import BANDS, headline, promotion_views, violation_totals
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


def summary_renderable(
    report: RunReport,
    *,
    listed: int = 20,
    report_path: Path | None = None,
    resume_command: Sequence[str] | None = None,
) -> RenderableType:
    """Tables and lines for ``rich.Console.print``; empty sections are left out."""
    fields = report.summary_fields(listed=listed)
    verdict = headline(report)
    parts: list[RenderableType] = [
        Text(
            ("✔ " if verdict.passed else "✘ ") + verdict.text,
            style="bold green" if verdict.passed else "bold red",
        ),
        _counts(report),
    ]
    if fields["notCompleted"]:
        more = fields["notCompletedCount"] - len(fields["notCompleted"])
        title = "Did not complete" + (
            f" (first {listed}; {more} more in the report)" if more else ""
        )
        parts.append(_rows(title, fields["notCompleted"]))
    gate = _gate(report, listed)
    if gate is not None:
        parts.append(gate)
    totals = violation_totals(report.results)
    if totals is not None:
        bands = Table(
            title=f"Open policy violations ({totals.reports} reports)", title_justify="left"
        )
        for band in BANDS:
            bands.add_column(band, justify="right")
        bands.add_row(*(str(getattr(totals.counts, b)) for b in BANDS))
        parts.append(bands)
    if report.baseline is not None and report.baseline.has_changes:
        counts = report.baseline.counts
        changes = Table(
            title=_plain(f"Since {report.baseline.baseline_path}"), title_justify="left"
        )
        for column in ("new critical", "fixed", "regressed", "status changed", "no earlier count"):
            changes.add_column(column, justify="right")
        changes.add_row(
            str(counts.new_critical),
            str(counts.fixed),
            str(counts.regressed),
            str(counts.status_changed),
            str(counts.no_earlier_count),
        )
        parts.append(changes)
    if report_path is not None:
        parts.append(Text.assemble("Report: ", (str(report_path), "bold")))
    if report.stopped is not None and resume_command:
        parts.append(
            Text.assemble(
                "Stopped before the end; to continue: ", (" ".join(resume_command), "bold")
            )
        )
    return Group(*parts)


def _counts(report: RunReport) -> Table:
    table = Table(
        title=f"{report.summary.total} promotions in {report.duration_seconds:.1f}s",
        title_justify="left",
    )
    for outcome in Outcome:
        table.add_column(outcome.value, justify="right", style=_STYLE[outcome])
    table.add_row(*(str(report.summary.by_status.get(o, 0)) for o in Outcome))
    return table


def _gate(report: RunReport, listed: int) -> Table | None:
    gate = report.policy_gate
    if gate is None or not gate.failed:
        return None
    failing = len(gate.crossed) + gate.unchecked
    more = f" (first {listed}; {failing - listed} more in the report)" if failing > listed else ""
    table = Table(title=f"Failed the gate: --fail-on {gate.fail_on}{more}", title_justify="left")
    for column in ("application", "stage", "gate", *BANDS):
        table.add_column(column, justify="right" if column in BANDS else "left")
    shown = 0
    for view in promotion_views(report):
        if not (view.crossed or view.unchecked) or shown >= listed:
            continue
        shown += 1
        counts = view.result.violations
        table.add_row(
            _plain(view.application),
            _plain(view.result.target_stage_id),
            "crossed" if view.crossed else "not checked",
            *(str(getattr(counts, b)) if counts else "" for b in BANDS),
            style="red",
        )
    return table


def _rows(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("application")
    table.add_column("transition")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(
            _plain(row["publicId"]),
            _plain(row["transition"]),
            _plain(row["status"]),
            _plain(_seconds(row["durationSeconds"])),
            _plain(row["reason"]),
            style=_STYLE.get(Outcome(row["status"])),
        )
    return table
