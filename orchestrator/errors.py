"""The errors iq-promote raises, each saying what to do about it.

::

    IqPromoteError
    ├── ManifestError          the manifest is wrong (file, line, field); exit 2
    ├── UsageError             an option or input is wrong; exit 2
    ├── ServerError            the server refused or failed a request
    │   ├── AuthError          credentials refused (401); exit 3
    │   ├── ForbiddenError     the user may not do this (403); ends that promotion
    │   ├── NotFoundError      the server does not know the thing asked for (404)
    │   ├── ForeignUrlError    the server answered a link to another host; nothing sent there
    │   └── UnreachableError   the server cannot be reached or stays unavailable; exit 3
    └── LockedError            another run holds the state directory; exit 75

Each class carries its exit code (:class:`ExitCode`); the CLI maps an error to it in one
place (``orchestrator.cli.support``), and a run's own outcome is mapped once, into its report
(``RunReport.exit_code``, decided by ``orchestrator.runner.run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What ``iq-promote`` exits with; the README's table lists the same."""

    OK = 0
    """Every promotion COMPLETED or did not apply (none crossed --fail-on); a dry run: every
    step resolved."""
    NOT_COMPLETED = 1
    """Some promotion did not complete, or crossed --fail-on."""
    USAGE = 2
    """A usage or manifest error; nothing was sent."""
    SERVER = 3
    """The server is unreachable or refused the credentials."""
    INTERNAL = 70
    """An error iq-promote did not expect: a bug, to be reported."""
    UNWRITTEN = 74
    """The run passed, but a file it should write could not be written (sysexits' EX_IOERR);
    a run that did not pass keeps its own code, and says what is missing too."""
    LOCKED = 75
    """Another run holds the state directory."""
    SIGNAL_BASE = 128
    """Stopped by a signal: 128 plus its number (130 for SIGINT, 143 for SIGTERM)."""


class IqPromoteError(Exception):
    """Base class of every error iq-promote raises on purpose."""

    exit_code: int = ExitCode.NOT_COMPLETED


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """One thing wrong with a manifest, located well enough to fix it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ManifestError(IqPromoteError):
    """The manifest cannot be used as written; fix the lines named and run again."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[ManifestProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(IqPromoteError):
    """An option or an input file is wrong; the message says which and how."""

    exit_code = ExitCode.USAGE


class UnknownIdError(UsageError):
    """An id given on the command line or in the manifest (a repository, a repository
    manager, an owner) that the server does not know: the input is wrong, not the server."""


class UnwrittenError(IqPromoteError):
    """The run is over, but one of its files could not be written (a full disk, a folder gone):
    the message names each and where the report was saved instead."""

    exit_code: int = ExitCode.UNWRITTEN


class ServerError(IqPromoteError):
    """IQ Server refused or failed a request after every retry allowed."""

    exit_code = ExitCode.SERVER

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AuthError(ServerError):
    """Credentials were refused; check IQ_USERNAME/IQ_PASSWORD (or the user token)."""


class ForbiddenError(ServerError):
    """The user may not do this (403), typically evaluate one application; grant the role or
    leave the application out. It ends the promotion it concerns; at the run's first look-ups
    it ends the run (exit 3), since nothing could be planned."""


class NotFoundError(ServerError):
    """The server does not know the application, status or scan asked for."""

    def __init__(self, message: str, *, status: int | None = 404, url: str | None = None) -> None:
        self.url = url
        super().__init__(message, status=status)


class ForeignUrlError(ServerError):
    """The server (or a tampered journal) gave a URL outside the configured server's origin
    and context path; it is not followed, and credentials never go there."""


class UnreachableError(ServerError):
    """The server could not be reached, or stayed unavailable past the allowed time."""


class LockedError(IqPromoteError):
    """Another run holds the state directory; wait for it, or use another --state-dir."""

    exit_code = ExitCode.LOCKED


def sole_error(group: ExceptionGroup[Exception]) -> Exception:
    """The one error inside ``group`` when there is only one, so that callers see the
    :class:`~orchestrator.errors.IqPromoteError` (and its exit code) rather than a group."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, ExceptionGroup):
            return inner
        group = inner
    return group
