"""The errors iq-promote raises, each saying what to do about it.

::

    IqPromoteError
    ├── ManifestError          the manifest is wrong (file, line, field); exit 2
    ├── UsageError             an option or input is wrong; exit 2
    ├── ServerError            the server refused or failed a request
    │   ├── AuthError          credentials refused (401); exit 3
    │   ├── ForbiddenError     the user may not do this (403); ends that promotion
    │   ├── NotFoundError      the server does not know the thing asked for (404)
    │   └── UnreachableError   the server cannot be reached or stays unavailable; exit 3
    └── LockedError            another run holds the state directory; exit 75

The CLI maps each to its exit code in one place (``orchestrator.cli.main``).
"""

from __future__ import annotations

from dataclasses import dataclass


class IqPromoteError(Exception):
    """Base class of every error iq-promote raises on purpose."""

    exit_code: int = 1


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

    exit_code = 2

    def __init__(self, problems: list[ManifestProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(IqPromoteError):
    """An option or an input file is wrong; the message says which and how."""

    exit_code = 2


class ServerError(IqPromoteError):
    """IQ Server refused or failed a request after every retry allowed."""

    exit_code = 3

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


class UnreachableError(ServerError):
    """The server could not be reached, or stayed unavailable past the allowed time."""


class LockedError(IqPromoteError):
    """Another run holds the state directory; wait for it, or use another --state-dir."""

    exit_code = 75


def sole_error(group: ExceptionGroup[Exception]) -> Exception:
    """The one error inside ``group`` when there is only one, so that callers see the
    :class:`~orchestrator.errors.IqPromoteError` (and its exit code) rather than a group."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, ExceptionGroup):
            return inner
        group = inner
    return group
