"""The ``render`` command: turn a saved run report into JUnit, Markdown, metrics or HTML,
optionally compared with an earlier report. It needs no server and no manifest."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.support import guarded
from orchestrator.render import RenderOutputs, check_output_paths, write_outputs
from orchestrator.report.baseline import compare
from orchestrator.report.run_report import load_report

_OUTPUT = click.Path(path_type=Path, dir_okay=False)


@click.command("render")
@click.argument("report_path", metavar="REPORT", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--junit", type=_OUTPUT, metavar="PATH", help="JUnit XML, for CI test views.")
@click.option(
    "--markdown", type=_OUTPUT, metavar="PATH", help="Markdown, e.g. $GITHUB_STEP_SUMMARY."
)
@click.option(
    "--metrics",
    type=_OUTPUT,
    metavar="PATH",
    help="Prometheus text for node_exporter's textfile collector.",
)
@click.option("--html", type=_OUTPUT, metavar="PATH", help="A self-contained HTML page.")
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PREVIOUS_REPORT",
    help="An earlier report to compare with: new and fixed critical violations, status changes.",
)
def render(
    report_path: Path,
    junit: Path | None,
    markdown: Path | None,
    metrics: Path | None,
    html: Path | None,
    baseline_path: Path | None,
) -> None:
    """Render the JSON REPORT of a run as JUnit, Markdown, Prometheus metrics and/or HTML."""
    outputs = RenderOutputs(junit=junit, markdown=markdown, metrics=metrics, html=html)
    if not outputs:
        raise click.UsageError(
            "nothing to render: give at least one of --junit, --markdown, --metrics, --html"
        )

    def body() -> int:
        inputs = {"REPORT": report_path}
        if baseline_path is not None:
            inputs["--baseline"] = baseline_path
        check_output_paths(outputs, inputs)
        report = load_report(report_path)
        if baseline_path is not None:
            previous = load_report(baseline_path)
            report = report.model_copy(
                update={"baseline": compare(report, previous, str(baseline_path))}
            )
        for path in write_outputs(report, outputs):
            click.echo(f"wrote {path}")
        return 0

    guarded(body)
