"""Polling that learns when evaluations finish, so slots are freed soon after they do.

A status poll costs the server a request; a late poll holds a concurrency slot idle. The
schedule here places each poll where it saves as much waiting as every other poll does
(``patience``), judged from the evaluation times seen so far:

- without history it learns the run's distribution of evaluation times as it goes (the
  first night);
- with ``history`` (evaluation times from earlier runs, kept in the state directory) it
  learns instead how tonight's times compare with each application's expected one, and polls
  close around that (later nights); :func:`longest_first` starts the longest-expected work
  first. Before any of tonight's times is known, a prior (tonight about as long as expected,
  within :data:`PRIOR_SPREAD`) stands in for them, so even the first, longest evaluations are
  polled by the same rule as the rest.

What is learned from a finished evaluation is where in its bracket (last PENDING, first
final answer) it most likely ended, by a lognormal fitted to the others: sharper than the
bracket's midpoint, so later polls, and later nights, can aim closer.

Each next poll is planned after the previous answer, from what is known by then. Past what
is known (too few observations, or an evaluation slower than any seen) it falls back to
growing intervals, so missing or wrong knowledge costs requests, never correctness.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import statistics
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from orchestrator import defaults
from orchestrator.promote.plan import ApplicationWork

PRIOR_SPREAD = 0.15
"""Before tonight's times are known, how far (in log units) they are assumed to stray from the
expected ones: about as far as two nights of one application differ."""
PRIOR_WEIGHT = 20
"""How many of tonight's evaluations the prior counts as; tonight's outweigh it as they come,
and push it out of the window in the end."""

FIT_AFTER = 10
"""Observations before their lognormal fit places an evaluation inside its bracket."""
MAX_FIT_SIGMA = 3.0
"""A fit spread wider than this (in log units) says nothing about where in a bracket."""

_STANDARD = NormalDist()
_BLOCK = 32
"""Observations a block holds, give or take half: a planned poll adds up at most twice
this many."""


class _Sample:
    """The latest ``size`` observations, kept sorted in blocks, each with its sum, for the
    polling rule.

    An observation changes one block (of at most twice :data:`_BLOCK`) and its sum; a
    planned poll searches the sums before each block, then one block. Sums over the whole
    window, rebuilt after each observation, were 5% of the client's CPU; fixed chunks of the
    window, summed again from the observation's place on, still 2% at 100,000 applications.
    """

    def __init__(self, size: int) -> None:
        self._recent: deque[float] = deque()
        self._blocks: list[list[float]] = []
        """The observations in order, in blocks of 1 to ``2 * _BLOCK``."""
        self._maxes: list[float] = []
        """The last (largest) observation of each block."""
        self._sums: list[float] = []
        """The sum of each block."""
        self._starts: list[int] = [0]
        """The position of each block's first observation, and the count at the end."""
        self._before: list[float] = [0.0]
        """The sum of the observations before each block, and of all of them at the end."""
        self._fresh = True
        """Whether ``_starts`` and ``_before`` hold since the latest observation."""
        self._size = size
        self._logs = 0.0
        self._log_squares = 0.0

    def __len__(self) -> int:
        return len(self._recent)

    def add(self, value: float) -> None:
        value = max(value, 1e-6)
        if len(self._recent) == self._size:
            oldest = self._recent.popleft()
            self._remove(oldest)
            self._logs -= math.log(oldest)
            self._log_squares -= math.log(oldest) ** 2
        self._recent.append(value)
        self._insert(value)
        self._logs += math.log(value)
        self._log_squares += math.log(value) ** 2
        self._fresh = False

    def _insert(self, value: float) -> None:
        """Into the first block whose largest is above ``value``, after its equals."""
        if not self._blocks:
            self._blocks, self._maxes, self._sums = [[value]], [value], [value]
            return
        k = min(bisect.bisect_right(self._maxes, value), len(self._blocks) - 1)
        block = self._blocks[k]
        bisect.insort_right(block, value)
        self._maxes[k] = block[-1]
        self._sums[k] = sum(block)
        if len(block) > 2 * _BLOCK:
            self._replace(k, 1, block)

    def _remove(self, value: float) -> None:
        k = bisect.bisect_left(self._maxes, value)
        block = self._blocks[k]
        del block[bisect.bisect_left(block, value)]
        if len(block) >= _BLOCK // 2 or len(self._blocks) == 1:
            if block:
                self._maxes[k], self._sums[k] = block[-1], sum(block)
            else:
                del self._blocks[k], self._maxes[k], self._sums[k]
            return
        # Too small: joined to a neighbour (and split again if that makes one too large).
        k = k - 1 if k == len(self._blocks) - 1 else k
        self._replace(k, 2, self._blocks[k] + self._blocks[k + 1])

    def _replace(self, k: int, count: int, joined: list[float]) -> None:
        """Put ``joined`` in place of the ``count`` blocks from ``k``, in halves if large."""
        parts = [joined[: len(joined) // 2], joined[len(joined) // 2 :]]
        if len(joined) <= 2 * _BLOCK:
            parts = [joined]
        self._blocks[k : k + count] = parts
        self._maxes[k : k + count] = [part[-1] for part in parts]
        self._sums[k : k + count] = [sum(part) for part in parts]

    def _at(self, position: int) -> tuple[int, int]:
        """The block holding ``position`` (with the sums fresh), and its place in that block."""
        k = bisect.bisect_right(self._starts, position) - 1
        return k, position - self._starts[k]

    def median(self) -> float:
        self._refresh()
        k, offset = self._at(len(self._recent) // 2)
        return self._blocks[k][offset]

    def within(self, lower: float, upper: float) -> float | None:
        """Where in (lower, upper] an evaluation most likely ended: its mean there under a
        lognormal fitted to the observations. A bracket's midpoint is a poor guess when the
        bracket is wide, above all (0, first poll]: most evaluations end near its top. None
        until :data:`FIT_AFTER` observations, or when the fit puts nothing in the bracket."""
        count = len(self._recent)
        if count < FIT_AFTER or upper <= lower:
            return None
        mu = self._logs / count
        sigma = math.sqrt(max(self._log_squares / count - mu * mu, 1e-6))

        def below(bound: float, shift: float) -> float:
            return 0.0 if bound <= 0 else _STANDARD.cdf((math.log(bound) - mu) / sigma - shift)

        mass = below(upper, 0.0) - below(lower, 0.0)
        shifted = below(upper, sigma) - below(lower, sigma)
        if mass < 1e-9 or shifted <= 0 or sigma > MAX_FIT_SIGMA:
            return None
        mean = math.exp(mu + sigma * sigma / 2 + math.log(shifted) - math.log(mass))
        return min(upper, max(lower, mean)) if mean > 0 else None

    def next_poll(self, after: float, budget: float) -> float | None:
        """The earliest time by which the evaluations that were still running at ``after``
        and have since finished have waited ``budget`` in all, per evaluation still running
        at ``after``: each poll then saves about as much waiting as every other. None when no
        observation is above ``after``."""
        self._refresh()
        count, starts = len(self._recent), self._starts
        k = bisect.bisect_right(self._maxes, after)
        if k == len(self._blocks):
            return None
        below = starts[k] + bisect.bisect_right(self._blocks[k], after)
        before = self._sum_before(below)
        target = budget * (count - below)

        def waited(j: int, value: float, sum_before_j: float) -> float:
            """The total wait, at time ``value`` (the ``j``-th observation), of the
            observations before it (and above ``after``); it grows with ``j``."""
            return (j - below) * value - (sum_before_j - before)

        # The first position past ``below`` whose wait reaches the target (else the end):
        # first the block it is in, by the waits at block starts, then its place there.
        low, high = bisect.bisect_left(starts, below + 1), len(self._blocks)
        while low < high:
            middle = (low + high) // 2
            at = starts[middle]
            if waited(at, self._blocks[middle][0], self._before[middle]) >= target:
                high = middle
            else:
                low = middle + 1
        start = max(below + 1, starts[low - 1])
        end = starts[low] if low < len(self._blocks) else count
        values: list[float] = []
        if start < end:
            k, offset = self._at(start)
            values = self._blocks[k][offset : offset + end - start]
        sums = list(itertools.accumulate(values, initial=self._sum_before(start)))
        low, high = start, end
        while low < high:
            middle = (low + high) // 2
            if waited(middle, values[middle - start], sums[middle - start]) >= target:
                high = middle
            else:
                low = middle + 1
        return (target + sums[low - start] - before) / (low - below)

    def _refresh(self) -> None:
        """The block starts and the sums before each block, after an observation."""
        if not self._fresh:
            self._starts = [0, *itertools.accumulate(map(len, self._blocks))]
            self._before = [0.0, *itertools.accumulate(self._sums)]
            self._fresh = True

    def _sum_before(self, position: int) -> float:
        """The sum of the observations before ``position`` (with the sums fresh)."""
        if position >= len(self._recent):
            return self._before[-1]
        k, offset = self._at(position)
        return self._before[k] + sum(self._blocks[k][:offset])


@dataclass(slots=True)
class LearnedSchedule:
    """Polls placed by the evaluation times seen so far (and, if given, by history).

    Without history, until ``warmup`` evaluations have been seen, it polls at growing
    intervals from ``initial``; with history, the prior (:data:`PRIOR_SPREAD`) places the polls
    until tonight's times do. Past the slowest evaluation it knows of, it polls at growing
    intervals again.
    """

    history: Mapping[str, Sequence[float]] = field(default_factory=dict)
    initial: float = defaults.POLL_INITIAL
    """Seconds before the first poll while nothing is known."""
    cap: float = defaults.POLL_MAX
    """The longest wait between two polls."""
    growth: float = 1.3
    """While nothing is known, or past what is known, each poll waits this many times longer
    since submission than the one before (up to ``cap`` between polls)."""
    warmup: int = 10
    """Evaluations to see before their times are trusted, when there is no history."""
    patience: float = 0.06
    """How much waiting, as a share of the run's median evaluation time, each poll is meant
    to save; smaller polls more often. About ``patience`` times the median is then lost per
    poll, so waiting and requests stay in proportion."""
    patience_with_history: float = 0.023
    """The same for applications with history, as a share of the median expected time
    (scaled by tonight's median ratio to it). Tuned, like ``patience``, on the standard
    benchmark workload (docs/performance.md)."""
    tail_share: float = 0.2
    """Once an evaluation runs past its expected time (from history, else the run's median),
    the longest wait between two polls, as a share of that time."""
    tail_from: float = 2.0
    """Past this many times its expected time, the longest wait is ``tail_share`` of the time
    the evaluation has run divided by ``tail_from``: one that long seldom ends in the next
    moment, and in a heavy tail, polled at a fixed pace, the long ones took most requests."""
    min_gap: float = 0.05
    window: int = 2000
    """How many of the latest observations the distributions keep."""
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _times: _Sample = field(init=False, repr=False)
    _ratios: _Sample = field(init=False, repr=False)
    _expected: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _typical_expected: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.patience, self.patience_with_history, self.tail_share, self.tail_from) <= 0:
            raise ValueError("patience, tail_share and tail_from must be above 0")
        if self.initial <= 0 or self.cap <= 0 or self.growth <= 1:
            raise ValueError("polling needs initial > 0, cap > 0 and growth > 1")
        self._times = _Sample(self.window)
        self._ratios = _Sample(self.window)
        for public_id, times in self.history.items():
            if expected := _expected_time(times):
                self._expected[public_id] = expected
        if self._expected:
            self._typical_expected = statistics.median(self._expected.values())
            for n in range(PRIOR_WEIGHT):
                z = _STANDARD.inv_cdf((n + 0.5) / PRIOR_WEIGHT)
                self._ratios.add(math.exp(PRIOR_SPREAD * z))

    def expected(self, public_id: str) -> float | None:
        """The application's expected evaluation time, from history, if known."""
        return self._expected.get(public_id)

    def offsets(self, public_id: str) -> Iterator[float]:
        """Each offset is chosen after the previous poll was answered PENDING."""
        expected = self._expected.get(public_id)
        last = 0.0
        while True:
            planned = self._next(expected, last)
            if planned is None:
                planned = self._beyond(last)
            last = min(max(planned, last + self.min_gap), last + self._longest_gap(expected, last))
            yield last

    def _beyond(self, last: float) -> float:
        """Growing intervals, for polls that nothing observed can place, jittered so that
        evaluations submitted together do not all ask together."""
        if last == 0.0:
            return self.initial
        interval = min(last * (self.growth - 1), self.cap)
        return last + interval * self.rng.uniform(0.9, 1.1)

    def _longest_gap(self, expected: float | None, last: float) -> float:
        """``cap``, or less once an evaluation runs past its typical time (its own, from
        history, else the run's median): a late poll of a long evaluation is what most often
        delays the end of a run. Far past it, the wait grows with the time run
        (``tail_from``)."""
        if expected is None:
            if not self._warm():
                return self.cap
            expected = self._times.median()
        if last < expected:
            return self.cap
        scale = max(expected, last / self.tail_from)
        return min(self.cap, max(self.min_gap, self.tail_share * scale))

    def _warm(self) -> bool:
        """Whether enough evaluations were seen to trust what their times say."""
        return len(self._times) >= max(1, self.warmup)

    def _next(self, expected: float | None, after: float) -> float | None:
        """The next poll the observations (and, with history, the prior) can place."""
        if expected is None:
            if not self._warm():
                return None
            return self._times.next_poll(after, self.patience * self._times.median())
        typical = self._typical_expected * self._ratios.median()
        budget = self.patience_with_history * typical
        ratio = self._ratios.next_poll(after / expected, budget / expected)
        return None if ratio is None else ratio * expected

    def observe(self, public_id: str, lower: float, upper: float) -> float:
        """Learn where in the bracket the evaluation most likely ended (by what was seen of
        the others, else its midpoint), and answer that, for the history: sharper
        estimates make tighter polls, tonight and on later nights."""
        midpoint = (lower + upper) / 2
        expected = self._expected.get(public_id)
        if expected is None:
            estimate = self._times.within(lower, upper) or midpoint
        else:
            ratio = self._ratios.within(lower / expected, upper / expected)
            estimate = midpoint if ratio is None else ratio * expected
            self._ratios.add(estimate / expected)
            if estimate > 0 and not 0.5 < estimate / expected < 2:
                # History was wrong for this application: trust what we see tonight.
                self._expected[public_id] = estimate
        self._times.add(estimate)
        return estimate


def _expected_time(times: Sequence[float]) -> float | None:
    """The median of an application's recent times (newest first), or the newest alone when
    it is far from them: the application changed, and the old times no longer say much."""
    usable = [t for t in times if t > 0]
    if not usable:
        return None
    typical = statistics.median(usable)
    latest = usable[0]
    return typical if 0.5 < latest / typical < 2 else latest


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
        expected = schedule.expected(item.target.public_id)
        per_step = typical if expected is None else expected
        return per_step * sum(1 for _ in item.steps)

    return sorted(work, key=expected_total, reverse=True)
