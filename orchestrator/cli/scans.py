"""``iq-promote scans APP``: an application's scans, newest first, for a ``scanId:``
transition: a table on a terminal, JSON off one (or with ``--json``)."""

from __future__ import annotations

from pathlib import Path

import anyio
import click
from rich.table import Table
from rich.text import Text

from orchestrator.cli.support import guarded, log_options, server_options, show_listing
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import Stage
from orchestrator.logs import LogFormat, configure_logging
from orchestrator.promote.scans import ScanListing, list_scans
from orchestrator.runner.connection import client_settings


@click.command("scans")
@click.argument("public_id", metavar="APP")
@click.option(
    "--stage",
    type=click.Choice([s.value for s in Stage]),
    help="Only the reports of this stage [default: every stage].",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    metavar="N",
    help="Only the N most recent reports (IQ Server keeps at most 100) [default: all kept].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default off a terminal).")
@server_options
@log_options
def scans(
    public_id: str,
    stage: str | None,
    limit: int | None,
    as_json: bool,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
    proxy: str | None,
    log_format: LogFormat,
    log_level: str,
) -> None:
    """List the scans (reports) of application APP, a public id, newest first: scan id,
    stage, evaluation date, and whether each was a re-evaluation or Continuous Monitoring's."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        settings = client_settings(server_url, username, ca_bundle=ca_bundle, proxy=proxy)

        async def read() -> ScanListing:
            async with IqClient(settings) as client:
                wanted = Stage(stage) if stage else None
                return await list_scans(client, public_id, stage=wanted, limit=limit)

        listing = anyio.run(read)
        show_listing(as_json, listing.to_document, lambda: scans_table(listing))
        return 0

    guarded(body)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def scans_table(listing: ScanListing) -> Table:
    """One row per report; the first column is what a ``scanId:`` transition takes. Values
    from the server are plain text, never markup."""
    where = f" at {listing.stage}" if listing.stage else ""
    table = Table(
        title=Text(f"Scans of {listing.public_id}{where}, newest first"),
        title_justify="left",
        caption=None if listing.scans else "no reports",
    )
    for column in ("scan id", "stage", "evaluated", "re-evaluation", "monitoring", "trigger"):
        table.add_column(column)
    for scan in listing.scans:
        when = scan.evaluation_date.isoformat(timespec="seconds") if scan.evaluation_date else ""
        table.add_row(
            Text(scan.scan_id or ""),
            Text(scan.stage),
            when,
            _flag(scan.is_reevaluation),
            _flag(scan.is_for_monitoring),
            Text(scan.scan_trigger_type or ""),
        )
    return table
