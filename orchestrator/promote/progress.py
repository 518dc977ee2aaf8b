"""How far a run has got, for people (a live display on a terminal) and for cron (a
``run.progress`` log event every so often).

:class:`ProgressTracker` listens to the scheduler like the journal does and keeps counts;
:func:`log_progress` and :func:`show_progress` only read it, so neither slows the run down.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from orchestrator.promote.events import StepKey
from orchestrator.report.results import Outcome, PromotionResult

log = structlog.get_logger("orchestrator.promote")


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """The state of a run at one instant."""

    total: int
    finished: int
    by_status: dict[Outcome, int]
    in_flight: int
    elapsed: float
    rate: float | None
    """Promotions finished per second by this process (results carried over excluded)."""
    eta: float | None
    """Seconds until every promotion is finished, at the rate so far."""

    def fields(self) -> dict[str, Any]:
        """The ``run.progress`` event's fields."""
        return {
            "total": self.total,
            "finished": self.finished,
            "inFlight": self.in_flight,
            "byStatus": {str(k): v for k, v in sorted(self.by_status.items())},
            "elapsedSeconds": round(self.elapsed, 1),
            "perMinute": round(self.rate * 60, 1) if self.rate is not None else None,
            "etaSeconds": round(self.eta) if self.eta is not None else None,
        }

    def describe(self) -> str:
        """One line for the terminal: counts by status and what is in flight."""
        counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(self.by_status.items()))
        return f"{self.in_flight} in flight" + (f", {counts}" if counts else "")


@dataclass(slots=True)
class ProgressTracker:
    """A scheduler listener that counts; safe to read from other tasks at any time."""

    total: int = 0
    carried: int = 0
    """Results an earlier, interrupted run of the same manifest already had."""
    by_status: Counter[Outcome] = field(default_factory=Counter)
    _in_flight: set[StepKey] = field(default_factory=set)
    _started: float = field(default_factory=time.monotonic)

    def planned(self, total: int, carried: Counter[Outcome] | None = None) -> None:
        """The plan is known: ``total`` steps, ``carried`` of them decided before any was
        sent (finished by an earlier run, or unresolvable)."""
        self.total = total
        if carried:
            self.by_status.update(carried)
            self.carried = sum(carried.values())
        self._started = time.monotonic()

    async def intent(self, key: StepKey) -> None:
        """Nothing to count until the server accepts the promotion."""

    def submitted(self, key: StepKey, status_url: str, attempts: int) -> None:
        self._in_flight.add(key)

    def finished(self, key: StepKey, result: PromotionResult) -> None:
        self._in_flight.discard(key)
        self.by_status[result.status] += 1

    def snapshot(self) -> ProgressSnapshot:
        finished = sum(self.by_status.values())
        elapsed = time.monotonic() - self._started
        done_here = finished - self.carried
        rate = done_here / elapsed if done_here > 0 and elapsed > 0 else None
        eta = (self.total - finished) / rate if rate else None
        return ProgressSnapshot(
            total=self.total,
            finished=finished,
            by_status=dict(self.by_status),
            in_flight=len(self._in_flight),
            elapsed=elapsed,
            rate=rate,
            eta=eta,
        )


async def log_progress(tracker: ProgressTracker, interval: float) -> None:
    """Emit ``run.progress`` every ``interval`` seconds until cancelled: a cron log shows
    that a long run is alive and how far it is, without one line per promotion to read."""
    while True:
        await anyio.sleep(interval)
        if tracker.total:
            log.info("run.progress", **tracker.snapshot().fields())
