"""``iq-promote run``: its options become a :class:`RunRequest`, :func:`run` does the run, and
this module only shows it (a live bar on a terminal, ``run.progress`` events off one) and exits
with the report's exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import click
from rich.console import Console

from orchestrator import defaults
from orchestrator.cli.console import summary_renderable
from orchestrator.cli.progress import show_progress
from orchestrator.cli.support import guarded, log_options, say_error, server_options
from orchestrator.logs import LogFormat, configure_logging
from orchestrator.promote.progress import ProgressTracker, log_progress
from orchestrator.render import RenderOutputs
from orchestrator.report.run_report import RunReport
from orchestrator.runner.config import RunConfig
from orchestrator.runner.request import RunRequest, resolve
from orchestrator.runner.run import run


class ConcurrencyType(click.ParamType):  # type: ignore[type-arg]
    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            return "auto"
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'auto'", param, ctx)
        if not 1 <= number <= 1000:
            self.fail("concurrency must be between 1 and 1000", param, ctx)
        return number


OUTPUT = click.Path(path_type=Path, dir_okay=False)


@click.command("run")
@click.argument("manifest", metavar="MANIFEST", type=click.Path(path_type=Path))
@server_options
@click.option(
    "--concurrency",
    type=ConcurrencyType(),
    help="Most evaluations outstanding at once, or 'auto' "
    f"[default: the manifest's, else {defaults.CONCURRENCY}].",
)
@click.option(
    "--report",
    type=OUTPUT,
    help="Where to write the JSON report [default: reports/<manifest name>.json].",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Journal, lock and kept report [default: $XDG_STATE_HOME/iq-promote/<manifest "
    "name>-<hash of its real path>, else under ~/.local/state].",
)
@click.option("--resume", is_flag=True, help="Continue the last unfinished run of this manifest.")
@click.option("--simulate", is_flag=True, help="Run against the embedded simulator.")
@click.option(
    "--dry-run", is_flag=True, help="Resolve applications, write the report, send nothing."
)
@click.option(
    "--ensure-scan-retention",
    is_flag=True,
    help="Set purgeScanFiles=withReports before promoting by scanId (needs admin rights).",
)
@click.option(
    "--promotion-timeout",
    type=click.FloatRange(min=1),
    help="Seconds per promotion "
    f"[default: the manifest's promotionTimeout, else {defaults.PROMOTION_TIMEOUT:g}].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=defaults.GRACE,
    show_default=True,
    help="Seconds to keep polling after SIGTERM, SIGINT or SIGHUP before cancelling.",
)
@click.option(
    "--server-down-timeout",
    type=click.FloatRange(min=1),
    default=defaults.SERVER_DOWN_TIMEOUT,
    show_default=True,
    help="Seconds the server may stay away before the run gives up on it.",
)
@click.option(
    "--fetch-results/--no-fetch-results",
    default=None,
    help="Count each new report's violations by threat band "
    "[default: for re-evaluations, and for every promotion with --fail-on].",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "severe"]),
    help="Exit 1 when a completed promotion's report has a violation this severe or worse.",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="PREVIOUS_REPORT",
    help="Compare with this report [default: the previous run of the manifest in the state dir].",
)
@click.option("--no-baseline", is_flag=True, help="Compare with nothing.")
@click.option(
    "--webhook-listen",
    metavar="HOST:PORT",
    help="Listen here for IQ's Application Evaluation webhook, to learn of finished "
    "evaluations without waiting for a poll [default: the manifest's webhook.listen]; the "
    "secret comes from IQ_WEBHOOK_SECRET.",
)
@click.option(
    "--webhook-insecure",
    is_flag=True,
    help="Take unsigned webhook deliveries when IQ_WEBHOOK_SECRET is unset.",
)
@click.option(
    "--no-webhook-sweep",
    is_flag=True,
    help="Find lost webhook deliveries by polls alone, without sweeping IQ's latest-reports "
    "listing [default: the manifest's webhook.sweep, else sweep].",
)
@click.option("--junit", type=OUTPUT, metavar="PATH", help="Also write JUnit XML.")
@click.option("--markdown", type=OUTPUT, metavar="PATH", help="Also write a Markdown summary.")
@click.option("--metrics", type=OUTPUT, metavar="PATH", help="Also write Prometheus metrics.")
@click.option("--html", type=OUTPUT, metavar="PATH", help="Also write an HTML report.")
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=1),
    default=defaults.PROGRESS_INTERVAL,
    show_default=True,
    help="Seconds between run.progress events when not on a terminal.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only warnings, errors and the exit code.")
@log_options
def run_command(
    junit: Path | None,
    markdown: Path | None,
    metrics: Path | None,
    html: Path | None,
    progress_interval: float,
    quiet: bool,
    log_format: LogFormat,
    log_level: str | None,
    **options: Any,
) -> None:
    """Promote or re-evaluate every application the MANIFEST names, and write a report."""
    console = Console(stderr=True)
    display = Display(
        tracker=ProgressTracker(),
        console=console,
        live=console.is_terminal and not quiet and log_format != "json",
        events=not quiet,
        interval=progress_interval,
    )
    configure_logging(
        level="warning" if quiet else log_level,
        fmt=log_format,
        # On a terminal the closing summary says what run.summary says, as tables.
        shown_otherwise=frozenset({"run.summary"}) if display.live else frozenset(),
    )

    def body() -> int:
        request = RunRequest(
            outputs=RenderOutputs(junit=junit, markdown=markdown, metrics=metrics, html=html),
            progress=display.tracker,
            **options,
        )
        config = resolve(request)  # everything wrong that can be known, before the loop
        report = anyio.run(display.running, config)
        if display.live:
            console.print(
                summary_renderable(
                    report, report_path=config.report_path, resume_command=_resume(request)
                )
            )
        if report.error is not None:
            say_error(report.error)
        assert report.exit_code is not None
        return report.exit_code

    guarded(body)


def _resume(request: RunRequest) -> list[str]:
    """The command that continues a stopped run: the same manifest, server, report and state."""
    command = ["iq-promote", "run", str(request.manifest), "--resume"]
    if request.server_url:
        command += ["--server-url", request.server_url]
    if request.report is not None:
        command += ["--report", str(request.report)]
    if request.state_dir is not None:
        command += ["--state-dir", str(request.state_dir)]
    return command


@dataclass(frozen=True, slots=True, kw_only=True)
class Display:
    """What a person or a log sees while the run goes: the live bar, or progress events."""

    tracker: ProgressTracker
    console: Console
    live: bool
    """A live bar (a terminal, not quiet, not JSON logs)."""
    events: bool
    """Else ``run.progress`` events every ``interval`` seconds (unless quiet)."""
    interval: float

    async def running(self, request: RunConfig) -> RunReport:
        async with anyio.create_task_group() as tg:
            if self.live:
                tg.start_soon(show_progress, self.tracker, self.console)
            elif self.events:
                tg.start_soon(log_progress, self.tracker, self.interval)
            report = await run(request)
            tg.cancel_scope.cancel()
        return report
