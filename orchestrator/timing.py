"""Polling that learns when evaluations finish, so slots are freed soon after they do.

A status poll costs the server a request; a late poll holds a concurrency slot idle. Both
strategies here place polls where completions are likely, and fall back to plain backoff
past what they know, so missing or wrong knowledge costs requests, never correctness:

- :class:`LearnedSchedule` learns the run's distribution of evaluation times as it goes
  and polls at its quantiles (the first night);
- with ``history`` (evaluation times from earlier runs, kept in the state directory) it
  polls close around each application's own expected time (later nights), and
  :func:`longest_first` starts the longest-expected work first.
"""

from __future__ import annotations

import bisect
import random
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.plan import ApplicationWork
from orchestrator.poller import BackoffSchedule

QUANTILES = (0.12, 0.3, 0.48, 0.65, 0.8, 0.92, 0.98)
"""Where, in the learned distribution, to poll: denser where most completions fall."""

AROUND_EXPECTED = (0.86, 0.97, 1.08, 1.2, 1.35, 1.55)
"""Multiples of an application's expected time to poll at, given history."""


@dataclass(slots=True)
class LearnedSchedule:
    """Quantile polling from the evaluation times seen so far (and history, if any).

    Until ``warmup`` evaluations have been seen, it polls like ``fallback``; after the
    planned offsets it continues with ``fallback``'s growing intervals.
    """

    history: Mapping[str, Sequence[float]] = field(default_factory=dict)
    fallback: BackoffSchedule = field(
        default_factory=lambda: BackoffSchedule(initial=0.5, factor=1.5, cap=15.0)
    )
    warmup: int = 8
    min_gap: float = 0.05
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _seen: list[float] = field(default_factory=list, repr=False)
    _expected: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for public_id, times in self.history.items():
            if times:
                self._expected[public_id] = statistics.median(times)

    def expected(self, public_id: str) -> float | None:
        """The application's expected evaluation time, from history, if known."""
        return self._expected.get(public_id)

    def offsets(self, public_id: str) -> Iterator[float]:
        planned = self._planned(public_id)
        last = 0.0
        for offset in planned:
            if offset >= last + self.min_gap:
                last = offset
                yield offset
        if not planned:
            yield from self.fallback.offsets(public_id)
            return
        interval = max(self.min_gap, last - (planned[-2] if len(planned) > 1 else 0.0))
        while True:
            interval = min(interval * self.fallback.factor, self.fallback.cap)
            last += interval * self.rng.uniform(0.9, 1.1)
            yield last

    def _planned(self, public_id: str) -> list[float]:
        expected = self._expected.get(public_id)
        if expected is not None:
            return [expected * m for m in AROUND_EXPECTED]
        if len(self._seen) < self.warmup:
            return []
        seen = self._seen
        return [seen[min(len(seen) - 1, int(q * len(seen)))] for q in QUANTILES]

    def observe(self, public_id: str, lower: float, upper: float) -> None:
        estimate = (lower + upper) / 2
        bisect.insort(self._seen, estimate)
        previous = self._expected.get(public_id)
        if previous is not None and not 0.5 < estimate / previous < 2:
            # History was wrong for this application: trust what we see tonight.
            self._expected[public_id] = estimate


def longest_first(
    work: Sequence[ApplicationWork], schedule: LearnedSchedule
) -> list[ApplicationWork]:
    """Order applications by expected total evaluation time, longest first (LPT), so the
    run does not end waiting on one long evaluation started last. Unknown ones count as the
    median of the known ones; the order is stable otherwise."""
    known = [e for w in work if (e := schedule.expected(w.target.public_id)) is not None]
    if not known:
        return list(work)
    typical = statistics.median(known)

    def expected_total(item: ApplicationWork) -> float:
        per_step = schedule.expected(item.target.public_id) or typical
        return per_step * sum(1 for _ in item.steps)

    return sorted(work, key=expected_total, reverse=True)
