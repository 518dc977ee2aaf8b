"""``iq-promote simulate``: run the simulator as a standalone server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import click

from orchestrator.cli.support import fail
from orchestrator.errors import IqPromoteError, UsageError
from orchestrator.iq.models import PurgeScanFiles
from orchestrator.manifest.model import load_manifest
from orchestrator.simulator.config import FaultConfig, SimulatorConfig
from orchestrator.simulator.seeding import seeded_from
from orchestrator.simulator.server import Simulator

Rate = click.FloatRange(0.0, 1.0)
Seconds = click.FloatRange(min=0.0)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8070,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--apps",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Applications in the seeded portfolio.",
)
@click.option(
    "--organizations",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Organizations the applications are spread over.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same portfolio.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Evaluations the server runs at once; more wait in its queue.",
)
@click.option(
    "--eval-time", type=Seconds, default=5.0, show_default=True, help="Median evaluation seconds."
)
@click.option(
    "--eval-sigma",
    type=Seconds,
    default=0.5,
    show_default=True,
    help="Spread of evaluation times (sigma of the lognormal).",
)
@click.option(
    "--eval-noise",
    type=Seconds,
    default=0.15,
    show_default=True,
    help="How much two runs of one application differ (relative deviation).",
)
@click.option(
    "--recent-reports",
    type=Rate,
    default=0.0,
    show_default=True,
    help="Share of applications whose latest reports were made in the last hours.",
)
@click.option("--context-path", default="", help="e.g. /iq, as behind a reverse proxy.")
@click.option("--release", type=int, default=190, show_default=True, help="IQ release number.")
@click.option(
    "--username",
    envvar="IQ_SIM_USERNAME",
    default="admin",
    show_default=True,
    help="The one user the server accepts (also IQ_SIM_USERNAME).",
)
@click.option(
    "--password",
    envvar="IQ_SIM_PASSWORD",
    default="admin123",
    show_default=True,
    help="Its password (also IQ_SIM_PASSWORD).",
)
@click.option(
    "--purge-scan-files",
    type=click.Choice([p.value for p in PurgeScanFiles]),
    help="Start with purgeScanFiles set [default: unset, IQ's default].",
)
@click.option(
    "--report-links",
    type=click.Choice(["current", "legacy"]),
    default="current",
    show_default=True,
    help="current: public id and /raw in report links; legacy: internal id, bare data path.",
)
@click.option(
    "--no-policy-paging",
    "policy_paging",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Ignore page/pageSize on policy data, as releases before paging did.",
)
@click.option(
    "--no-evaluate",
    default="",
    metavar="APP,...",
    help="Public ids the user may see but not evaluate (403 on promote and status).",
)
@click.option(
    "--forget-statuses-after",
    type=Seconds,
    help="Forget promotion statuses this many seconds after submission.",
)
@click.option("--csrf", is_flag=True, help="Demand the CSRF header and cookie on non-GETs.")
@click.option(
    "--no-admin",
    "admin",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Refuse the configuration API (403), as for a user who is no administrator.",
)
@click.option(
    "--webhook-url",
    metavar="URL",
    help="Send IQ's Application Evaluation webhook here for every completed evaluation.",
)
@click.option(
    "--webhook-secret",
    envvar="IQ_SIM_WEBHOOK_SECRET",
    help="Sign deliveries with this secret (HmacSHA1) [default: unsigned].",
)
@click.option(
    "--webhook-loss", type=Rate, default=0.0, help="Share of deliveries never sent (seeded)."
)
@click.option(
    "--webhook-foreign",
    type=Rate,
    default=0.0,
    help="Share of promotions that come with foreign evaluations of the same application "
    "(CI scans), delivered too.",
)
@click.option(
    "--webhook-format",
    type=click.Choice(["current", "legacy"]),
    default="current",
    show_default=True,
    help="current: application and reportId in the payload; legacy: ownerId only.",
)
@click.option("--fail-rate", type=Rate, default=0.0, help="Share of API requests answered 5xx.")
@click.option("--drop-rate", type=Rate, default=0.0, help="Share of API requests dropped.")
@click.option("--latency", type=Seconds, default=0.0, help="Seconds added to every API request.")
@click.option(
    "--latency-jitter",
    type=Rate,
    default=0.5,
    show_default=True,
    help="Share by which --latency varies, at random, from request to request.",
)
@click.option(
    "--throttle-queue-depth",
    type=click.IntRange(min=0),
    help="Answer promoteScan 429 while this many evaluations are queued.",
)
@click.option(
    "--retry-after",
    type=Seconds,
    default=1.0,
    show_default=True,
    help="Seconds a 429 answer asks the client to wait (Retry-After).",
)
@click.option("--failing-apps", default="", help="Comma-separated publicIds that always fail.")
@click.option("--failing-rate", type=Rate, default=0.0, help="Share of apps that always fail.")
@click.option("--outage-after", type=Seconds, help="Seconds after start the server goes away.")
@click.option("--outage-for", type=Seconds, default=0.0, help="Seconds the outage lasts.")
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also serve every application and organization this manifest names.",
)
def simulate(
    host: str,
    port: int,
    username: str,
    password: str,
    failing_apps: str,
    no_evaluate: str,
    purge_scan_files: str | None,
    manifest_path: Path | None,
    **options: object,
) -> None:
    """Serve a simulated IQ Server (seeded applications, evaluations, firewall) until stopped."""
    fault_names = set(FaultConfig.__dataclass_fields__) - {"failing_apps"}
    faults = FaultConfig(
        failing_apps=_ids(failing_apps),
        **{k: v for k, v in options.items() if k in fault_names},  # type: ignore[arg-type]
    )
    config = SimulatorConfig(
        username=username,
        password=password,
        faults=faults,
        purge_scan_files=PurgeScanFiles(purge_scan_files) if purge_scan_files else None,
        no_evaluate=_ids(no_evaluate),
        **{k: v for k, v in options.items() if k not in fault_names},  # type: ignore[arg-type]
    )
    if manifest_path is not None:
        try:
            config = seeded_from(load_manifest(manifest_path), config)
        except IqPromoteError as exc:
            fail(exc)
    try:
        anyio.run(serve, config, host, port)
    except OSError as exc:
        # A busy port, an address this machine does not have: say it, not a traceback.
        fail(UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"))


def _ids(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with Simulator(config, host=host, port=port) as sim:
            click.echo(
                f"IQ Server simulator at {sim.base_url} "
                f"(user {config.username!r}; password from --password or IQ_SIM_PASSWORD); "
                "Ctrl-C stops it",
                err=True,
            )
            async for _ in signals:
                break
