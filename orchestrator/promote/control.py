"""How the outside stops a run: first stop submitting, then (after a grace) cancel.

Signals, a server that stays away and refused credentials all stop a run through one
:class:`RunControl`, so the scheduler has one way to learn that it should stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import structlog

from orchestrator.errors import IqPromoteError
from orchestrator.report.results import Outcome

log = structlog.get_logger("orchestrator.promote")


@dataclass(slots=True)
class RunControl:
    """How the outside stops a run: first stop submitting, then (after a grace) cancel."""

    stop_reason: str | None = None
    stop_outcome: Outcome = Outcome.CANCELLED
    fatal: IqPromoteError | None = None
    signal: int | None = None
    """The signal that stopped the run, if one did."""
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    """The scheduler's; :meth:`cancellable` makes others for the work before it."""
    _others: list[anyio.CancelScope] = field(default_factory=list)

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    @contextmanager
    def cancellable(self) -> Iterator[anyio.CancelScope]:
        """A scope that :meth:`cancel` cancels too, for work done before the scheduler runs
        (resolving the plan), so that a second signal or the end of the grace stops it."""
        scope = anyio.CancelScope()
        if self.scope.cancel_called:
            scope.cancel()
        self._others.append(scope)
        try:
            with scope:
                yield scope
        finally:
            self._others.remove(scope)

    def stop_submitting(self, reason: str, *, outcome: Outcome = Outcome.CANCELLED) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_outcome = reason, outcome
            log.warning("run.stopping", reason=reason)

    def cancel(self) -> None:
        self.scope.cancel()
        for scope in self._others:
            scope.cancel()
