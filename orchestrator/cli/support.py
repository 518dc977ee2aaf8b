"""What every ``iq-promote`` command shares: the mapping of errors to exit codes, and the
logging and connection options.

Each command module builds on this, so an option means the same thing and an error exits the
same way whichever command the user ran.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import structlog
from rich.console import Console, RenderableType

from orchestrator.errors import ExitCode, IqPromoteError
from orchestrator.secrets import SCRUBBER

log = structlog.get_logger("orchestrator.cli")

F = TypeVar("F", bound=Callable[..., Any])


def say_error(message: str) -> None:
    """An error the user can act on, on stderr, scrubbed of every secret."""
    click.echo(f"iq-promote: error: {SCRUBBER.scrub(message)}", err=True)


def fail(exc: IqPromoteError) -> NoReturn:
    """Print an error the user can act on and exit with its code."""
    say_error(str(exc))
    sys.exit(exc.exit_code)


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions a (nested) group holds, in order."""
    found: list[BaseException] = []
    for inner in group.exceptions:
        found.extend(leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return found


def guarded(action: Callable[[], int]) -> NoReturn:
    """Run a command body; known errors become their exit codes, anything else code 70.

    Errors that come out of a task group arrive as a group: when every one of them is ours,
    each is said and the first one's code is the exit code, as if it had come alone."""
    try:
        code = action()
    except IqPromoteError as exc:
        fail(exc)
    except Exception as exc:
        errors = leaves(exc) if isinstance(exc, ExceptionGroup) else [exc]
        if all(isinstance(e, IqPromoteError) for e in errors):
            for error in errors:
                say_error(str(error))
            first = errors[0]
            assert isinstance(first, IqPromoteError)
            sys.exit(first.exit_code)
        # Not repr(exc): it escapes a quote in the message, and a secret so escaped is a form
        # the scrubber does not know.
        log.exception("internal.error", error=SCRUBBER.scrub(f"{type(exc).__name__}: {exc}"))
        click.echo("iq-promote: internal error (a bug): see the log above", err=True)
        sys.exit(ExitCode.INTERNAL)
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
        help="The least severe events logged [default: warning on a terminal, else info].",
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
        help="PEM file of the CA that signed the server's certificate "
        "[default: server.caBundle, else REQUESTS_CA_BUNDLE or SSL_CERT_FILE].",
    ),
    click.option(
        "--proxy",
        metavar="URL",
        help="HTTP proxy for every request [default: server.proxy, else HTTPS_PROXY/NO_PROXY].",
    ),
]


def log_options(func: F) -> F:
    """``--log-format`` and ``--log-level``."""
    return _apply(_LOG_OPTIONS, func)


def server_options(func: F) -> F:
    """``--server-url``, ``--username``, ``--ca-bundle`` and ``--proxy``; the password never
    has an option, since a command line is visible to every user of the machine."""
    return _apply(_SERVER_OPTIONS, func)


def show_listing(
    as_json: bool, document: Callable[[], object], table: Callable[[], RenderableType]
) -> None:
    """A listing as JSON when asked or off a terminal (a pipe, a file: what scripts read), else
    as a table for people."""
    if as_json or not sys.stdout.isatty():
        click.echo(json.dumps(document(), indent=2))
    else:
        Console().print(table())
