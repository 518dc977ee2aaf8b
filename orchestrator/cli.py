"""The ``iq-promote`` command line: it wires the modules together and maps errors to exit codes.

Exit codes (also in the README): 0 every promotion COMPLETED; 1 some did not; 2 usage or
manifest error; 3 server unreachable or credentials refused; 75 the state directory is locked;
130/143 stopped by SIGINT/SIGTERM; 70 an internal error (a bug: please report it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click
import structlog

from orchestrator.errors import IqPromoteError, UsageError
from orchestrator.iq.client import ClientSettings, Credentials, IqClient
from orchestrator.journal import manifest_digest
from orchestrator.logs import SCRUBBER, LogFormat, configure_logging
from orchestrator.manifest import Manifest, load_manifest
from orchestrator.plan import Plan, resolve_plan, transition_label
from orchestrator.report import RunReport, write_report
from orchestrator.runner import RunConfig, run
from orchestrator.scheduler import RunControl
from orchestrator.simulator import Simulator, SimulatorConfig
from orchestrator.simulator.command import simulate

log = structlog.get_logger("orchestrator.cli")

EXIT_INTERNAL = 70
DEFAULT_CONCURRENCY = 20


def fail(exc: IqPromoteError) -> NoReturn:
    """Print an error the user can act on and exit with its code: the one place that maps."""
    click.echo(f"iq-promote: error: {SCRUBBER.scrub(str(exc))}", err=True)
    sys.exit(exc.exit_code)


def guarded(action: Callable[[], int]) -> NoReturn:
    """Run a command body; known errors become their exit codes, anything else code 70."""
    try:
        code = action()
    except IqPromoteError as exc:
        fail(exc)
    except Exception as exc:
        log.exception("internal.error", error=SCRUBBER.scrub(repr(exc)))
        click.echo("iq-promote: internal error (a bug): see the log above", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code)


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


log_options = [
    click.option(
        "--log-format",
        type=click.Choice(["auto", "json", "console"]),
        default="auto",
        show_default=True,
        help="JSON lines, or console text; auto picks console on a terminal.",
    ),
    click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
    ),
]


def with_log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(log_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="iq-promote")
def main() -> None:
    """Promote and re-evaluate application scans on Sonatype IQ Server, in bulk."""


main.add_command(simulate)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """The report is written after the run; a late Ctrl-C must not lose it."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _read_manifest(path: Path) -> Manifest:
    return load_manifest(path)


def _client_settings(
    manifest: Manifest, server_url: str | None, username: str | None
) -> ClientSettings:
    """A value comes from the option, else the environment, else the manifest."""
    server = manifest.server
    url = server_url or os.environ.get("IQ_SERVER_URL") or (server.url if server else None)
    if not url:
        raise UsageError("no server URL: give --server-url, set IQ_SERVER_URL, or set server.url")
    user = username or os.environ.get("IQ_USERNAME") or (server.username if server else None)
    password = os.environ.get("IQ_PASSWORD") or (server.password if server else None)
    if not user or not password:
        raise UsageError(
            "no credentials: set IQ_USERNAME and IQ_PASSWORD (a user token pair works too)"
        )
    SCRUBBER.add(password)
    try:
        return ClientSettings(
            base_url=url,
            credentials=Credentials(user, password),
            verify_tls=server.verify_tls if server else True,
            ca_bundle=server.ca_bundle if server else None,
            request_timeout=server.timeout_seconds if server else 60.0,
        )
    except ValueError as exc:
        raise UsageError(f"server URL: {exc}") from exc


def _simulator_config(manifest: Manifest) -> SimulatorConfig:
    """Seed the simulator with every application and organization the manifest names."""
    apps: dict[str, str | None] = {}
    organizations: list[str] = []
    for entry in manifest.promotions:
        for public_id in entry.applications or ():
            apps.setdefault(public_id, None)
        if entry.organization:
            organizations.append(entry.organization)
    return SimulatorConfig(
        apps=24,
        organizations=4,
        workers=8,
        eval_time=0.4,
        extra_applications=tuple(apps.items()),
        extra_organizations=tuple(dict.fromkeys(organizations)),
    )


@main.command("run")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option("--server-url", help="IQ Server URL (else IQ_SERVER_URL, else the manifest).")
@click.option("--username", help="IQ user (else IQ_USERNAME); the password comes from IQ_PASSWORD.")
@click.option("--concurrency", type=ConcurrencyType(), help="Most evaluations outstanding at once.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
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
@with_log_options
def run_command(
    manifest_path: Path,
    server_url: str | None,
    username: str | None,
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
    log_format: LogFormat,
    log_level: str,
) -> None:
    """Promote or re-evaluate every application the MANIFEST names, and write a report."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        manifest = _read_manifest(manifest_path)
        report_file = report_path or Path("reports") / f"{manifest_path.stem}.json"
        bound = concurrency or manifest.concurrency or DEFAULT_CONCURRENCY
        control = RunControl()

        def config(settings: ClientSettings) -> RunConfig:
            return RunConfig(
                manifest=manifest,
                manifest_path=str(manifest_path),
                manifest_digest=manifest_digest(manifest_path.read_text(encoding="utf-8")),
                client=settings,
                concurrency="auto" if bound == "auto" else int(bound),
                promotion_timeout=promotion_timeout or manifest.promotion_timeout,
                state_dir=state_dir or report_file.parent / ".iq-promote-state",
                resume=resume,
                dry_run=dry_run,
                ensure_scan_retention=ensure_scan_retention,
                grace=grace,
                server_down_timeout=server_down_timeout,
            )

        async def execute() -> RunReport:
            if simulate:
                async with Simulator(_simulator_config(manifest), port=0) as sim:
                    log.info("simulator.started", url=sim.base_url)
                    settings = ClientSettings(sim.base_url, Credentials("admin", "admin123"))
                    return await run(config(settings), control=control)
            settings = _client_settings(manifest, server_url, username)
            return await run(config(settings), control=control)

        report = anyio.run(execute)
        with _signals_ignored():
            write_report(report, report_file)
        log.info("run.summary", report=str(report_file), **report.summary_fields())
        if control.fatal is not None:
            fail(control.fatal)
        if control.signal is not None:
            return 128 + control.signal
        return 0 if report.succeeded else 1

    guarded(body)


@main.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
def validate(manifest_path: Path) -> None:
    """Check MANIFEST without touching the network."""

    def body() -> int:
        manifest = _read_manifest(manifest_path)
        steps = sum(len(e.transitions) for e in manifest.promotions)
        click.echo(
            f"{manifest_path}: valid: {len(manifest.promotions)} entries, "
            f"{steps} transitions per application"
        )
        return 0

    guarded(body)


@main.command("plan")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option("--server-url")
@click.option("--username")
@click.option("--simulate", is_flag=True, help="Resolve against the embedded simulator.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@with_log_options
def plan_command(
    manifest_path: Path,
    server_url: str | None,
    username: str | None,
    simulate: bool,
    as_json: bool,
    log_format: LogFormat,
    log_level: str,
) -> None:
    """Resolve MANIFEST's applications and print what would run; sends no promotion."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        manifest = _read_manifest(manifest_path)

        async def resolve() -> Plan:
            if simulate:
                async with Simulator(_simulator_config(manifest), port=0) as sim:
                    creds = Credentials("admin", "admin123")
                    async with IqClient(ClientSettings(sim.base_url, creds)) as client:
                        return await resolve_plan(manifest, client)
            settings = _client_settings(manifest, server_url, username)
            async with IqClient(settings) as client:
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
