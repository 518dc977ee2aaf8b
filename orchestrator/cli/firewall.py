"""The ``repository-results`` and ``repositories`` commands: export the firewall's results,
and list the owners whose results can be exported.

Arguments are checked before a connection is opened, so a typo costs no request; errors map
to exit codes through their classes (``IqPromoteError.exit_code``), as everywhere else.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import click
import structlog
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from orchestrator.cli.support import guarded, log_options, server_options, show_listing
from orchestrator.firewall.inventory import FirewallInventory, read_inventory
from orchestrator.firewall.pages import ResultsPage, ResultsRequest, walk_pages
from orchestrator.firewall.query import (
    DEFAULT_PAGE_SIZE,
    QueryOptions,
    build_query,
    resolve_owner,
)
from orchestrator.firewall.writers import OutputFormat, open_rows
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import ApiChoice, Generation, OwnerType
from orchestrator.logs import LogFormat, configure_logging
from orchestrator.runner.connection import client_settings
from orchestrator.secrets import SCRUBBER

log = structlog.get_logger("orchestrator.firewall")

# --- repository-results ----------------------------------------------------------------------


@dataclass(slots=True)
class ExportTally:
    """What an export has read so far: the progress display and the closing log event."""

    rows: int = 0
    pages: int = 0
    repositories: int = 0
    generation: Generation | None = None
    _last_repository: str | None = None

    def add(self, page: ResultsPage) -> None:
        self.rows += len(page.rows)
        self.pages += 1
        self.generation = page.generation
        if page.repository_id is not None and page.repository_id != self._last_repository:
            self.repositories += 1
            self._last_repository = page.repository_id


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[ExportTally], None]]:
    """A live 'rows, pages' line on stderr while the export runs; a no-op off a terminal."""
    if not enabled:
        yield lambda tally: None
        return
    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        # The rows go to stdout: rich must not wrap it, nor stderr, which the logs hold.
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with display:
        task = display.add_task("repository results: 0 rows, 0 pages", total=None)

        def update(tally: ExportTally) -> None:
            display.update(
                task, description=f"repository results: {tally.rows} rows, {tally.pages} pages"
            )

        yield update


async def export_results(
    client: IqClient,
    request: ResultsRequest,
    fmt: OutputFormat,
    output: Path | None,
    *,
    on_page: Callable[[ExportTally], None] = lambda tally: None,
) -> ExportTally:
    """Write every row of the search to ``output`` (stdout when None) as the pages arrive."""
    tally = ExportTally()
    with open_rows(fmt, output) as writer:
        async with aclosing(walk_pages(client, request)) as pages:
            async for page in pages:
                for row in page.rows:
                    writer.write(row)
                tally.add(page)
                on_page(tally)
    return tally


@click.command("repository-results")
@click.option(
    "--owner-type",
    type=click.Choice([t.value for t in OwnerType], case_sensitive=False),
    default=OwnerType.REPOSITORY_CONTAINER.value,
    show_default=True,
    help="Whose results: the whole container, one repository manager, or one repository.",
)
@click.option(
    "--owner-id",
    help="The manager or repository id ('iq-promote repositories' lists them); "
    "REPOSITORY_CONTAINER_ID for the container.",
)
@click.option(
    "--search",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Filter (repeatable): POLICY_NAME, QUARANTINE_TIME, COMPONENT_COORDINATES, "
    "REPOSITORY_MANAGER_ID or REPOSITORY_ID.",
)
@click.option(
    "--sort",
    multiple=True,
    metavar="FIELD[:asc|:desc]",
    help="Sort (repeatable, first given sorts first): POLICY_THREAT_LEVEL, POLICY_NAME, "
    "COMPONENT_COORDINATES, QUARANTINE_TIME.",
)
@click.option(
    "--match-state",
    multiple=True,
    metavar="STATE",
    help="all, exact or unknown (or MATCH_STATE_*); repeatable [default: all].",
)
@click.option(
    "--violation-state",
    multiple=True,
    metavar="STATE",
    help="all, not_violating, open, quarantined or waived (or VIOLATION_STATE_*); "
    "repeatable [default: all].",
)
@click.option("--threat-levels", metavar="LO-HI", help="Threat level range, e.g. 7-10.")
@click.option(
    "--aggregate/--no-aggregate",
    default=None,
    help="List each component once with its worst violation (current endpoint only).",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_PAGE_SIZE,
    show_default=True,
    help="Rows per request.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in OutputFormat]),
    default=OutputFormat.NDJSON.value,
    show_default=True,
    help="NDJSON (a row a line, streamed), one JSON document, or CSV.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="File to write (replaced only once complete) [default: stdout].",
)
@click.option(
    "--api",
    type=click.Choice([a.value for a in ApiChoice]),
    default=ApiChoice.AUTO.value,
    show_default=True,
    help="Endpoint generation: current (175+), legacy (before 175), or auto-detect.",
)
@server_options
@log_options
def repository_results(
    owner_type: str,
    owner_id: str | None,
    search: tuple[str, ...],
    sort: tuple[str, ...],
    match_state: tuple[str, ...],
    violation_state: tuple[str, ...],
    threat_levels: str | None,
    aggregate: bool | None,
    page_size: int,
    fmt: str,
    output: Path | None,
    api: str,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
    proxy: str | None,
    log_format: LogFormat,
    log_level: str | None,
) -> None:
    """Export the firewall's Repository Results, every page, as NDJSON, JSON or CSV."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        request = ResultsRequest(
            owner=resolve_owner(owner_type.lower(), owner_id),
            query=build_query(
                QueryOptions(
                    search=search,
                    sort=sort,
                    match_states=match_state,
                    violation_states=violation_state,
                    threat_levels=threat_levels,
                    aggregate=aggregate,
                    page_size=page_size,
                )
            ),
            api=ApiChoice(api),
        )
        settings = client_settings(server_url, username, ca_bundle=ca_bundle, proxy=proxy)
        target = None if output is None or str(output) == "-" else output
        show = sys.stderr.isatty() and (target is not None or not sys.stdout.isatty())
        started = time.monotonic()

        async def export() -> ExportTally:
            async with IqClient(settings) as client:
                with _progress(show) as on_page:
                    return await export_results(
                        client, request, OutputFormat(fmt), target, on_page=on_page
                    )

        try:
            tally = anyio.run(export)
        except BrokenPipeError:
            # The reader (``| head``) has all it wanted; that is not an error.
            _silence_stdout()
            return 0
        log.info(
            "repository_results.done",
            owner_type=request.owner.type,
            owner_id=request.owner.id,
            api=tally.generation,
            rows=tally.rows,
            pages=tally.pages,
            repositories=tally.repositories or None,
            format=fmt,
            output=str(target) if target else "-",
            seconds=round(time.monotonic() - started, 3),
        )
        return 0

    guarded(body)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the flush at exit does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file descriptor (a test runner's buffer): nothing to silence
    finally:
        os.close(devnull)


# --- repositories ----------------------------------------------------------------------------


@click.command("repositories")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default off a terminal).")
@server_options
@log_options
def repositories(
    as_json: bool,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
    proxy: str | None,
    log_format: LogFormat,
    log_level: str | None,
) -> None:
    """List the Firewall's repository container, repository managers and repositories."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        settings = client_settings(server_url, username, ca_bundle=ca_bundle, proxy=proxy)

        async def read() -> FirewallInventory:
            async with IqClient(settings) as client:
                return await read_inventory(client)

        # Printed, and often kept in a file: no secret a server echoed in a name reaches it.
        inventory = SCRUBBER.scrub_model(anyio.run(read))
        show_listing(as_json, inventory.to_document, lambda: inventory_table(inventory))
        return 0

    guarded(body)


def inventory_table(inventory: FirewallInventory) -> Table:
    """One row per owner; the first two columns are what ``repository-results`` takes as
    ``--owner-type`` and ``--owner-id``. Names from the server are plain text, never markup."""
    table = Table(title="Firewall repositories", title_justify="left")
    for column in ("owner type", "owner id", "name", "format", "type", "quarantine"):
        table.add_column(column)
    container = inventory.repository_container
    if container is not None:
        table.add_row("repository_container", "REPOSITORY_CONTAINER_ID", Text(container.name))
    for entry in inventory.repository_managers:
        manager = entry.manager
        product = " ".join(p for p in (manager.product_name, manager.product_version) if p)
        table.add_row("repository_manager", Text(manager.id), Text(manager.name), "", Text(product))
        for repo in entry.repositories:
            table.add_row(
                "repository",
                Text(repo.repository_id),
                Text(f"  {repo.public_id}"),
                Text(repo.format),
                Text(repo.type),
                "on" if repo.quarantine_enabled else "off",
            )
    return table
