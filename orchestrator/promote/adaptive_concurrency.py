"""``concurrency: auto``: find how many evaluations the server takes at once, and keep there.

Additive increase while evaluations come back as fast as they did; multiplicative decrease
on throttling (429/503) or when evaluation latency climbs well above its best (the server's
queue is filling). The limit moves a :class:`anyio.CapacityLimiter`'s ``total_tokens``.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

import anyio
import structlog

from orchestrator.promote.events import StepKey
from orchestrator.report.results import Outcome, PromotionResult

log = structlog.get_logger("orchestrator.promote")


@dataclass(slots=True)
class AdaptiveLimit:
    """AIMD over outstanding evaluations, with a latency gradient as the early signal."""

    limiter: anyio.CapacityLimiter
    minimum: int = 1
    maximum: int = 500
    decrease: float = 0.7
    window: int = 20
    tolerance: float = 2.0
    """Latency may grow to this multiple of its best window median before we back off."""
    _recent: deque[float] = field(init=False)
    _best: float | None = None
    _healthy: int = 0
    """Healthy completions toward the next increase: counted, not summed as fractions of the
    limit, so that exactly ``limit`` of them raise it (1/7 added seven times falls short of 1)."""

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.window)

    @property
    def limit(self) -> int:
        return int(self.limiter.total_tokens)

    def _set(self, value: int, why: str) -> None:
        value = max(self.minimum, min(self.maximum, value))
        if value != self.limit:
            log.info("concurrency.adjusted", limit=value, previous=self.limit, why=why)
            self.limiter.total_tokens = value

    def on_throttled(self) -> None:
        self._healthy = 0
        self._set(int(self.limit * self.decrease), "throttled")

    async def intent(self, key: StepKey) -> None:
        """Nothing to learn before an evaluation finishes."""

    def submitted(self, key: StepKey, status_url: str, attempts: int) -> None:
        """Nothing to learn before an evaluation finishes."""

    def finished(self, key: StepKey, result: PromotionResult) -> None:
        if result.status is Outcome.COMPLETED and result.duration_seconds is not None:
            self.on_completed(result.duration_seconds)

    def on_completed(self, seconds: float) -> None:
        self._recent.append(seconds)
        if len(self._recent) == self.window:
            median = statistics.median(self._recent)
            self._best = median if self._best is None else min(self._best, median)
            if median > self._best * self.tolerance:
                self._recent.clear()
                self._set(int(self.limit * self.decrease), "latency rising")
                return
        self._healthy += 1
        if self._healthy >= self.limit:
            self._healthy = 0
            self._set(self.limit + 1, "healthy")
