"""The ``iq-promote`` command line: it wires the modules together and maps errors to exit codes.

Exit codes (also in the README): 0 every promotion COMPLETED (for a dry run: every step
resolved); 1 some did not; 2 usage or manifest error; 3 server unreachable or credentials
refused; 75 the state directory is locked; 130/143 stopped by SIGINT/SIGTERM; 70 an internal
error (a bug: please report it).
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import click
import structlog
from rich.console import Console

from orchestrator.cli.console import summary_renderable
from orchestrator.cli.firewall import repositories, repository_results
from orchestrator.cli.progress import show_progress
from orchestrator.cli.render import render
from orchestrator.cli.simulate import simulate
from orchestrator.cli.support import (
    client_settings,
    fail,
    guarded,
    log_options,
    server_options,
)
from orchestrator.errors import UsageError, sole_error
from orchestrator.iq.client import ClientSettings, Credentials, IqClient
from orchestrator.logs import LogFormat, configure_logging
from orchestrator.manifest.model import Manifest, load_manifest
from orchestrator.promote.control import RunControl
from orchestrator.promote.journal import manifest_digest
from orchestrator.promote.plan import Plan, resolve_plan, transition_label
from orchestrator.promote.progress import ProgressTracker, log_progress
from orchestrator.render import RenderOutputs, check_output_paths, write_outputs
from orchestrator.report.baseline import compare
from orchestrator.report.gate import Threshold, gate
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport, load_report, write_report
from orchestrator.runner.run import RunConfig, run
from orchestrator.simulator import Simulator, SimulatorConfig
from orchestrator.simulator.seeding import seeded_from

log = structlog.get_logger("orchestrator.cli.main")

DEFAULT_CONCURRENCY = 20
SIMULATED = Credentials("admin", "admin123")
"""The embedded simulator's default account."""


class ConcurrencyType(click.ParamType):  # type: ignore[type-arg]
    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'auto'", param, ctx)
        if not 1 <= number <= 1000:
            self.fail("concurrency must be between 1 and 1000", param, ctx)
        return number


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="iq-promote")
def main() -> None:
    """Promote and re-evaluate application scans on Sonatype IQ Server, in bulk."""


for command in (simulate, render, repository_results, repositories):
    main.add_command(command)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """The report is written after the run; a late Ctrl-C must not lose it."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@asynccontextmanager
async def _connection(
    manifest: Manifest,
    *,
    simulate: bool,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
) -> AsyncIterator[ClientSettings]:
    """Where to connect: the embedded simulator (seeded from the manifest, for as long as the
    block runs) or the server the options, environment or manifest name."""
    if simulate:
        async with Simulator(_simulator_config(manifest), port=0) as sim:
            log.info("simulator.started", url=sim.base_url)
            yield ClientSettings(sim.base_url, SIMULATED)
        return
    yield client_settings(server_url, username, ca_bundle=ca_bundle, server=manifest.server)


def _simulator_config(manifest: Manifest) -> SimulatorConfig:
    """A small, quick portfolio holding every application and organization the manifest
    names, so that a ``--simulate`` rehearsal resolves what the real run would."""
    return seeded_from(
        manifest, SimulatorConfig(apps=24, organizations=4, workers=8, eval_time=0.4)
    )


_OUTPUT = click.Path(path_type=Path, dir_okay=False)


@main.command("run")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@server_options
@click.option("--concurrency", type=ConcurrencyType(), help="Most evaluations outstanding at once.")
@click.option(
    "--report",
    "report_path",
    type=_OUTPUT,
    help="Where to write the JSON report [default: reports/<manifest name>.json].",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Journal, lock and history [default: .iq-promote-state beside the report].",
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
@click.option("--promotion-timeout", type=click.FloatRange(min=1), help="Seconds per promotion.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to keep polling after SIGTERM/SIGINT before cancelling.",
)
@click.option(
    "--server-down-timeout",
    type=click.FloatRange(min=1),
    default=300.0,
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
    "baseline_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="PREVIOUS_REPORT",
    help="Compare with this report [default: the previous run of the manifest in the state dir].",
)
@click.option("--no-baseline", is_flag=True, help="Compare with nothing.")
@click.option("--junit", type=_OUTPUT, metavar="PATH", help="Also write JUnit XML.")
@click.option("--markdown", type=_OUTPUT, metavar="PATH", help="Also write a Markdown summary.")
@click.option("--metrics", type=_OUTPUT, metavar="PATH", help="Also write Prometheus metrics.")
@click.option("--html", type=_OUTPUT, metavar="PATH", help="Also write an HTML report.")
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds between run.progress events when not on a terminal.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only warnings, errors and the exit code.")
@log_options
def run_command(
    manifest_path: Path,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
    concurrency: int | str | None,
    report_path: Path | None,
    state_dir: Path | None,
    resume: bool,
    simulate: bool,
    dry_run: bool,
    ensure_scan_retention: bool,
    promotion_timeout: float | None,
    grace: float,
    server_down_timeout: float,
    fetch_results: bool | None,
    fail_on: Threshold | None,
    baseline_path: Path | None,
    no_baseline: bool,
    junit: Path | None,
    markdown: Path | None,
    metrics: Path | None,
    html: Path | None,
    progress_interval: float,
    quiet: bool,
    log_format: LogFormat,
    log_level: str,
) -> None:
    """Promote or re-evaluate every application the MANIFEST names, and write a report."""
    configure_logging(level="warning" if quiet else log_level, fmt=log_format)
    outputs = RenderOutputs(junit=junit, markdown=markdown, metrics=metrics, html=html)

    def body() -> int:
        manifest = load_manifest(manifest_path)
        report_file = report_path or Path("reports") / f"{manifest_path.stem}.json"
        inputs = {"--report": report_file} | (
            {"--baseline": baseline_path} if baseline_path else {}
        )
        check_output_paths(outputs, inputs)
        states = state_dir or report_file.parent / ".iq-promote-state"
        kept = states / "reports" / f"{manifest_path.stem}.json"
        baseline = None if no_baseline else _baseline(baseline_path, kept)
        bound = concurrency or manifest.concurrency or DEFAULT_CONCURRENCY
        digest = manifest_digest(manifest_path.read_text(encoding="utf-8"))
        tracker = ProgressTracker()
        console = Console(stderr=True)
        live = console.is_terminal and not quiet and log_format != "json"

        async def execute() -> tuple[RunReport, RunControl]:
            control = RunControl()  # its cancel scope belongs to this event loop
            async with _connection(
                manifest,
                simulate=simulate,
                server_url=server_url,
                username=username,
                ca_bundle=ca_bundle,
            ) as settings:
                config = RunConfig(
                    manifest=manifest,
                    manifest_path=str(manifest_path),
                    manifest_digest=digest,
                    client=settings,
                    concurrency="auto" if bound == "auto" else int(bound),
                    promotion_timeout=promotion_timeout or manifest.promotion_timeout,
                    state_dir=states,
                    resume=resume,
                    dry_run=dry_run,
                    ensure_scan_retention=ensure_scan_retention,
                    grace=grace,
                    server_down_timeout=server_down_timeout,
                    fetch_results=True if fetch_results is None and fail_on else fetch_results,
                    progress=tracker,
                )
                try:
                    async with anyio.create_task_group() as tg:
                        if live:
                            tg.start_soon(show_progress, tracker, console)
                        elif not quiet:
                            tg.start_soon(log_progress, tracker, progress_interval)
                        report = await run(config, control=control)
                        tg.cancel_scope.cancel()
                except ExceptionGroup as group:
                    raise sole_error(group) from None
                return report, control

        report, control = anyio.run(execute)
        if baseline is not None:
            report = report.model_copy(update={"baseline": compare(report, *baseline)})
        if fail_on is not None:
            report = report.model_copy(update={"policy_gate": gate(report.results, fail_on)})
        with _signals_ignored():
            write_report(report, report_file)
            write_outputs(report, outputs)
            if not report.dry_run:
                write_report(report, kept)
        log.info("run.summary", report=str(report_file), **_summary_fields(report))
        if live:
            console.print(summary_renderable(report))
        if control.fatal is not None:
            fail(control.fatal)
        if control.signal is not None:
            return 128 + control.signal
        return _exit_code(report)

    guarded(body)


def _exit_code(report: RunReport) -> int:
    """0 when every promotion COMPLETED and none crossed ``--fail-on``, else 1. A dry run
    completes nothing by design (every step it can resolve is SKIPPED): it exits 0 unless
    some step is an ERROR, such as an application the server does not know."""
    if report.dry_run:
        return 1 if report.summary.by_status[Outcome.ERROR] else 0
    passed = report.policy_gate is None or not report.policy_gate.failed
    return 0 if report.succeeded and passed else 1


def _baseline(given: Path | None, kept: Path) -> tuple[RunReport, str] | None:
    """The report to compare with, read before the run so that a bad one costs nothing: the
    one given, else the previous run's copy in the state directory, if there is one."""
    if given is not None:
        return load_report(given), str(given)
    if not kept.exists():
        return None
    try:
        return load_report(kept), str(kept)
    except UsageError as exc:
        log.warning("baseline.unreadable", path=str(kept), error=str(exc))
        return None


def _summary_fields(report: RunReport) -> dict[str, Any]:
    """``run.summary``: the report's summary, with the gate and the changes since the baseline."""
    fields = report.summary_fields()
    if report.policy_gate is not None:
        fields["policyGate"] = report.policy_gate.model_dump(mode="json", by_alias=True)
    if report.baseline is not None:
        fields["baseline"] = report.baseline.counts.model_dump(mode="json", by_alias=True)
    if report.firewall_error is not None:
        fields["firewallError"] = report.firewall_error
    return fields


@main.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
def validate(manifest_path: Path) -> None:
    """Check MANIFEST without touching the network."""

    def body() -> int:
        manifest = load_manifest(manifest_path)
        steps = sum(len(e.transitions) for e in manifest.promotions)
        click.echo(
            f"{manifest_path}: valid: {len(manifest.promotions)} entries, "
            f"{steps} transitions per application"
        )
        return 0

    guarded(body)


@main.command("plan")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@server_options
@click.option("--simulate", is_flag=True, help="Resolve against the embedded simulator.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@log_options
def plan_command(
    manifest_path: Path,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
    simulate: bool,
    as_json: bool,
    log_format: LogFormat,
    log_level: str,
) -> None:
    """Resolve MANIFEST's applications and print what would run; sends no promotion."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        manifest = load_manifest(manifest_path)

        async def resolve() -> Plan:
            async with (
                _connection(
                    manifest,
                    simulate=simulate,
                    server_url=server_url,
                    username=username,
                    ca_bundle=ca_bundle,
                ) as settings,
                IqClient(settings) as client,
            ):
                return await resolve_plan(manifest, client)

        plan = anyio.run(resolve)
        click.echo(_plan_json(plan) if as_json else _plan_text(plan))
        return 0

    guarded(body)


def _plan_rows(plan: Plan) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for work in plan.work:
        rows.extend(
            {
                "position": step.position,
                "publicId": work.target.public_id,
                "organization": work.target.organization,
                "entry": step.entry_index,
                "transition": step.label,
            }
            for step in work.steps
        )
    rows.extend(
        {
            "position": u.step.position,
            "publicId": u.public_id,
            "organization": u.organization,
            "entry": u.step.entry_index,
            "transition": transition_label(u.step.transition),
            "error": u.reason,
        }
        for u in plan.unresolved
    )
    return sorted(rows, key=lambda row: row["position"])


def _plan_json(plan: Plan) -> str:
    return json.dumps({"total": plan.total, "steps": _plan_rows(plan)}, indent=2)


def _plan_text(plan: Plan) -> str:
    lines = [
        f"{row['publicId'] or '-'}\t{row['organization'] or '-'}\tpromotions[{row['entry']}]"
        f"\t{row['transition']}" + (f"\tERROR: {row['error']}" if "error" in row else "")
        for row in _plan_rows(plan)
    ]
    lines.append(
        f"{plan.total} promotions for {len(plan.work)} applications; "
        f"{len(plan.unresolved)} cannot run"
    )
    return "\n".join(lines)


@main.command()
@click.argument("which", type=click.Choice(["manifest", "report"]))
def schema(which: str) -> None:
    """Print the JSON Schema of a manifest or of a report."""
    document = Manifest.json_schema() if which == "manifest" else RunReport.json_schema()
    click.echo(json.dumps(document, indent=2))
