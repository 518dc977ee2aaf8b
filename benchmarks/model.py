"""A discrete-event model of a promotion run, to see what polling can and cannot win.

The real benchmark takes minutes and varies from run to run; this model replays the standard
workload in milliseconds with the real poll strategies, over many seeds. It answers what no
single measurement can: how close to the lower bound a run could get with perfect detection
(in manifest order, and longest first), and where the learned schedule sits between that and
fixed-interval polling. Network latency is a constant; the server has as many workers as the
client's bound, as in the standard workload.

``python -m benchmarks.model [--seeds N]``
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import click

from orchestrator.poller import BackoffSchedule, PollStrategy
from orchestrator.timing import LearnedSchedule

LATENCY = 0.004
"""Seconds for a request on loopback, each way included."""


@dataclass(frozen=True, slots=True)
class Night:
    """What one modelled night came to; ``estimates`` is what the journal would keep."""

    ratio: float
    requests_per_promotion: float
    mean_delay: float
    estimates: dict[str, float]


class _Oracle:
    """Polls exactly when each evaluation finishes: the floor that no polling can beat."""

    def __init__(self, times: Mapping[str, float]) -> None:
        self.times = times

    def offsets(self, public_id: str) -> Iterator[float]:
        yield self.times[public_id] + 1e-9
        while True:
            yield math.inf

    def observe(self, public_id: str, lower: float, upper: float) -> None:
        """Knows already."""


def simulate_night(
    times: Mapping[str, float],
    order: Sequence[str],
    strategy: PollStrategy,
    workers: int,
) -> Night:
    """Run every application once with ``workers`` evaluations outstanding at most."""
    queue = list(reversed(order))
    events: list[tuple[float, int, str, Iterator[float], float, float]] = []
    sequence = polls = 0
    delays: list[float] = []
    estimates: dict[str, float] = {}
    end = 0.0

    def submit(now: float) -> None:
        nonlocal sequence
        if queue:
            public_id = queue.pop()
            offsets = strategy.offsets(public_id)
            submitted = now + LATENCY
            event = (submitted + next(offsets), sequence, public_id, offsets, submitted, 0.0)
            heapq.heappush(events, event)
            sequence += 1

    for _ in range(workers):
        submit(0.0)
    while events:
        at, _, public_id, offsets, submitted, pending = heapq.heappop(events)
        polls += 1
        elapsed = at - submitted
        if elapsed >= times[public_id]:
            estimate = strategy.observe(public_id, pending, elapsed)
            estimates[public_id] = estimate if estimate is not None else (pending + elapsed) / 2
            delays.append(elapsed - times[public_id])
            end = at
            submit(at + LATENCY)
        else:
            following = max(next(offsets), elapsed + 1e-3)
            heapq.heappush(
                events, (submitted + following, sequence, public_id, offsets, submitted, elapsed)
            )
            sequence += 1
    lower_bound = max(sum(times.values()) / workers, max(times.values()))
    return Night(
        ratio=end / lower_bound,
        requests_per_promotion=1 + polls / len(times),
        mean_delay=statistics.fmean(delays),
        estimates=estimates,
    )


def _night(typical: Mapping[str, float], seed: str, noise: float) -> dict[str, float]:
    """Tonight's evaluation times: each application's own, varied as the simulator varies
    them, so that two nights differ by about ``noise``."""
    draw = random.Random(seed)
    spread = noise / math.sqrt(2)
    return {p: t * max(0.05, draw.gauss(1, spread)) for p, t in typical.items()}


def _longest_first(order: Sequence[str], expected: Mapping[str, float]) -> list[str]:
    return sorted(order, key=lambda p: expected[p], reverse=True)


def compare(
    seeds: int, apps: int = 200, workers: int = 20, noise: float = 0.15
) -> dict[str, list[Night]]:
    """Each variant over ``seeds`` portfolios of the standard workload's shape."""
    variants: dict[str, list[Night]] = {}

    def add(name: str, night: Night) -> None:
        variants.setdefault(name, []).append(night)

    for seed in range(seeds):
        rng = random.Random(seed)
        typical = {f"app-{i}": 2.0 * math.exp(0.5 * rng.gauss(0, 1)) for i in range(apps)}
        order = list(typical)

        first, second = _night(typical, f"{seed}:1", noise), _night(typical, f"{seed}:2", noise)
        perfect = simulate_night(first, order, _Oracle(first), workers)
        add("perfect detection, manifest order", perfect)
        add(
            "perfect detection, longest first",
            simulate_night(first, _longest_first(order, first), _Oracle(first), workers),
        )
        for interval in (0.5, 2.0):
            script = BackoffSchedule(initial=interval, factor=1.0, cap=interval, jitter=0.0)
            fixed = simulate_night(first, order, script, workers)
            add(f"script, poll every {interval:g} s", fixed)
        learned = simulate_night(first, order, LearnedSchedule(rng=random.Random(seed)), workers)
        add("iq-promote, first night", learned)
        by_estimates = _longest_first(order, learned.estimates)
        add(
            "perfect detection, longest first by the first night's estimates",
            simulate_night(second, by_estimates, _Oracle(second), workers),
        )
        history = {p: [e] for p, e in learned.estimates.items()}
        schedule = LearnedSchedule(history=history, rng=random.Random(seed))
        add("iq-promote, second night", simulate_night(second, by_estimates, schedule, workers))
    return variants


def _mean(nights: list[Night], value: Callable[[Night], float]) -> float:
    return statistics.fmean(value(n) for n in nights)


@click.command()
@click.option("--seeds", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--noise",
    type=click.FloatRange(min=0.0),
    default=0.15,
    show_default=True,
    help="How much two nights of one application differ (relative deviation).",
)
def main(seeds: int, noise: float) -> None:
    """Print the model's means over SEEDS portfolios."""
    click.echo("| variant | makespan / lower bound | requests per promotion | mean delay (s) |")
    click.echo("|---|---|---|---|")
    for name, nights in compare(seeds, noise=noise).items():
        click.echo(
            f"| {name} | {_mean(nights, lambda n: n.ratio):.3f} "
            f"| {_mean(nights, lambda n: n.requests_per_promotion):.2f} "
            f"| {_mean(nights, lambda n: n.mean_delay):.3f} |"
        )


if __name__ == "__main__":
    main()
