"""The ``render`` command: turn a saved run report into JUnit, Markdown, metrics or HTML,
optionally compared with an earlier report. It needs no server and no manifest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from orchestrator.baseline import compare
from orchestrator.errors import IqPromoteError, UsageError
from orchestrator.render import RenderOutputs, write_outputs
from orchestrator.report import load_report

_OUTPUT = click.Path(path_type=Path, dir_okay=False)


def _fail(exc: IqPromoteError) -> NoReturn:
    click.echo(f"iq-promote: error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _check_paths(report_path: Path, baseline_path: Path | None, outputs: RenderOutputs) -> None:
    """Refuse to overwrite an input, or to write two formats to one file."""
    inputs = {report_path.resolve(): "REPORT"}
    if baseline_path is not None:
        inputs[baseline_path.resolve()] = "--baseline"
    seen: dict[Path, str] = {}
    for name, path in outputs.items():
        where = path.resolve()
        if where in inputs:
            raise UsageError(
                f"--{name} {path} would overwrite {inputs[where]}; choose another path"
            )
        if where in seen:
            raise UsageError(f"--{name} and --{seen[where]} both write {path}; choose two paths")
        seen[where] = name


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
    try:
        _check_paths(report_path, baseline_path, outputs)
        report = load_report(report_path)
        if baseline_path is not None:
            previous = load_report(baseline_path)
            report = report.model_copy(
                update={"baseline": compare(report, previous, str(baseline_path))}
            )
        for path in write_outputs(report, outputs):
            click.echo(f"wrote {path}")
    except IqPromoteError as exc:
        _fail(exc)
