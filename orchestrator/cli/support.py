"""What every ``iq-promote`` command shares: the mapping of errors to exit codes, the logging
and connection options, and where connection settings come from.

Each command module (``cli``, ``render.command``, ``firewall.command``) builds on this, so an
option means the same thing and an error exits the same way whichever command the user ran.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import structlog

from orchestrator.errors import IqPromoteError, UsageError
from orchestrator.iq.client import ClientSettings, Credentials
from orchestrator.logs import SCRUBBER

if TYPE_CHECKING:
    from orchestrator.manifest.model import ServerSettings

log = structlog.get_logger("orchestrator.cli.main")

EXIT_INTERNAL = 70
"""An error iq-promote did not expect: a bug, to be reported."""

F = TypeVar("F", bound=Callable[..., Any])


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


def _apply(options: list[Callable[[F], F]], func: F) -> F:
    for option in reversed(options):
        func = option(func)
    return func


_LOG_OPTIONS: list[Callable[[Any], Any]] = [
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

_SERVER_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--server-url", help="IQ Server URL (else IQ_SERVER_URL, else the manifest)."),
    click.option(
        "--username", help="IQ user (else IQ_USERNAME); the password comes from IQ_PASSWORD."
    ),
    click.option(
        "--ca-bundle",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="PEM file of the CA that signed the server's certificate.",
    ),
]


def log_options(func: F) -> F:
    """``--log-format`` and ``--log-level``."""
    return _apply(_LOG_OPTIONS, func)


def server_options(func: F) -> F:
    """``--server-url``, ``--username`` and ``--ca-bundle``; the password never has an option,
    since a command line is visible to every user of the machine."""
    return _apply(_SERVER_OPTIONS, func)


def client_settings(
    server_url: str | None,
    username: str | None,
    *,
    ca_bundle: Path | None = None,
    server: ServerSettings | None = None,
) -> ClientSettings:
    """A value comes from the option, else the environment, else the manifest's ``server``;
    the password only from the environment (IQ_PASSWORD) or the manifest's reference to it."""
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
    bundle = str(ca_bundle) if ca_bundle else (server.ca_bundle if server else None)
    try:
        return ClientSettings(
            base_url=url,
            credentials=Credentials(user, password),
            verify_tls=server.verify_tls if server else True,
            ca_bundle=bundle,
            request_timeout=server.timeout_seconds if server else 60.0,
        )
    except ValueError as exc:
        raise UsageError(f"server URL: {exc}") from exc
