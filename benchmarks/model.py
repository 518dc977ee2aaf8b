"""A discrete-event model of a promotion run, to see what polling can and cannot win.

The real benchmark takes minutes and varies from run to run; this model replays the standard
workload in milliseconds with the real poll strategies, over many seeds. It answers what no
single measurement can: how close to the lower bound a run could get with perfect detection
(in manifest order, and longest first), and where the learned schedule sits between that and
fixed-interval polling. Network latency is a constant; the server has as many workers as the
client's bound, as in the standard workload.

The portfolios are random ones of the standard workload's shape, or (``--portfolio
standard``) the very one the harness measures, each seed another pair of nights: the harness's
figures are then expected within the spread of its own repetitions.

``python -m benchmarks.model [--seeds N] [--noise X] [--portfolio random|standard]``
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from benchmarks.clients import write_manifest
from benchmarks.workloads import WORKLOADS, Workload, public_ids
from orchestrator.manifest.model import load_manifest
from orchestrator.promote.learned_polling import LearnedSchedule
from orchestrator.promote.polling import BackoffSchedule, PollStrategy
from orchestrator.simulator.config import SimulatorConfig
from orchestrator.simulator.engine import Engine
from orchestrator.simulator.portfolio import seed_portfolio
from orchestrator.simulator.seeding import seeded_from
from orchestrator.simulator.stats import SimulatorStats

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


def random_portfolio(seed: int, apps: int = 200) -> dict[str, float]:
    """Typical evaluation times of the standard workload's shape: lognormal, median 2 s,
    sigma 0.5."""
    rng = random.Random(seed)
    return {f"app-{i}": 2.0 * math.exp(0.5 * rng.gauss(0, 1)) for i in range(apps)}


def harness_portfolio(workload: Workload) -> dict[str, float]:
    """The typical evaluation times the harness's simulator gives ``workload``'s applications,
    in manifest order: the simulator's own portfolio, seeded as the harness seeds it."""
    ids = public_ids(workload)
    with tempfile.TemporaryDirectory(prefix="iq-promote-model-") as scratch:
        manifest = load_manifest(write_manifest(Path(scratch) / "nightly.yaml", workload, ids))
    config = seeded_from(
        manifest,
        SimulatorConfig(
            apps=0,
            seed=workload.seed,
            workers=workload.workers,
            eval_time=workload.eval_time,
            eval_sigma=workload.eval_sigma,
            eval_noise=workload.eval_noise,
        ),
    )
    portfolio = seed_portfolio(config)
    engine = Engine(config, portfolio, SimulatorStats())
    times = {a.public_id: engine.typical_time(a) for a in portfolio.applications}
    return {p: times[p] for p in ids}


def compare(
    seeds: int,
    workers: int = 20,
    noise: float = 0.15,
    portfolio: Callable[[int], dict[str, float]] = random_portfolio,
) -> dict[str, list[Night]]:
    """Each variant over ``seeds`` pairs of nights, each on ``portfolio(seed)``."""
    variants: dict[str, list[Night]] = {}

    def add(name: str, night: Night) -> None:
        variants.setdefault(name, []).append(night)

    for seed in range(seeds):
        typical = portfolio(seed)
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
@click.option(
    "--portfolio",
    type=click.Choice(["random", "standard"]),
    default="random",
    show_default=True,
    help="A new random portfolio per seed, or the one the standard benchmark measures.",
)
def main(seeds: int, noise: float, portfolio: str) -> None:
    """Print the model's means over SEEDS pairs of nights."""
    standard = harness_portfolio(WORKLOADS["standard"]) if portfolio == "standard" else None

    def portfolios(seed: int) -> dict[str, float]:
        return standard if standard is not None else random_portfolio(seed)

    click.echo("| variant | makespan / lower bound | requests per promotion | mean delay (s) |")
    click.echo("|---|---|---|---|")
    for name, nights in compare(seeds, noise=noise, portfolio=portfolios).items():
        click.echo(
            f"| {name} | {_mean(nights, lambda n: n.ratio):.3f} "
            f"| {_mean(nights, lambda n: n.requests_per_promotion):.2f} "
            f"| {_mean(nights, lambda n: n.mean_delay):.3f} |"
        )


if __name__ == "__main__":
    main()
