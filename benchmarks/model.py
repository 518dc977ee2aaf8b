"""A discrete-event model of a promotion run, to see what polling and webhooks can and cannot
win, and to tune their constants.

The real benchmark takes minutes and varies from run to run; this model replays a workload in
milliseconds with the real poll strategies and the real webhook backstop, over many seeds. It
answers what no single measurement can: how close to the lower bound a run could get with
perfect detection (zero-delay list scheduling, in manifest order and longest first), and where
learned polling and webhooks sit between that and fixed-interval polling. Network latency is a
constant; the server runs its workers first come, first served, as the simulator does.

Each seed is the portfolio the harness's simulator draws with that seed (``--portfolio
harness``, the default), or a random one of the workload's shape; each is run over several
pairs of nights. The constants were tuned on the tuning seeds
(:data:`~benchmarks.workloads.TUNING_SEEDS`); the harness reports on others.

``python -m benchmarks.model [--workload standard|queue|heavy] [--first-seed K] [--seeds N]
[--nights M] [--noise X] [--portfolio harness|random]``
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click

from benchmarks.clients import write_manifest
from benchmarks.measure import zero_delay_makespan
from benchmarks.workloads import WORKLOADS, Workload, public_ids
from orchestrator.manifest.model import load_manifest
from orchestrator.promote.hints import (
    START,
    HintBoard,
    ListingSweep,
    Spacing,
    Watch,
    WebhookBackstop,
)
from orchestrator.promote.learned_polling import LearnedSchedule
from orchestrator.promote.polling import BackoffSchedule, PollStrategy
from orchestrator.report.results import Detection
from orchestrator.simulator.config import SimulatorConfig
from orchestrator.simulator.engine import Engine
from orchestrator.simulator.portfolio import seed_portfolio
from orchestrator.simulator.seeding import seeded_from
from orchestrator.simulator.stats import SimulatorStats

LATENCY = 0.004
"""Seconds for a request on loopback, each way included."""
DELIVERY_LATENCY = 0.005
"""Seconds from an evaluation's end to its webhook delivery reaching the run."""
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""When the model's promotions count as sent: no event is matched by date in the model."""
LISTING_ROWS_PER_APPLICATION = 2
"""Rows the latest-reports listing has for each application: about two stages evaluated."""


@dataclass(frozen=True, slots=True)
class Webhooks:
    """IQ's webhook in the model: a share ``loss`` of the deliveries lost (drawn from
    ``seed``), the rest arriving :data:`DELIVERY_LATENCY` after their evaluation ends; with
    ``sweep``, the latest-reports listing swept for the lost ones, as in a run."""

    loss: float
    seed: str
    backstop: WebhookBackstop = field(default_factory=WebhookBackstop)
    sweep: ListingSweep | None = field(default_factory=ListingSweep)


@dataclass(frozen=True, slots=True)
class Night:
    """What one modelled night came to; ``estimates`` is what the journal would keep."""

    ratio: float
    """Makespan over the lower bound."""
    zero_delay_ratio: float
    """Makespan over that of zero-delay list scheduling in the night's own order."""
    requests_per_promotion: float
    mean_delay: float
    estimates: dict[str, float]


@dataclass(slots=True, eq=False)
class _Follow:
    """One promotion being followed: what the server will do, and what the client knows."""

    public_id: str
    submitted: float
    done: float
    """When its evaluation ends (queueing included)."""
    hint: float | None
    """When its delivery arrives; None if lost, or without webhooks."""
    offsets: Iterator[float]
    watched: ExitStack
    """Holds its watch on the hint board open while it is followed."""
    watch: Watch | None = None
    pending: float = 0.0
    spacing: Spacing = START
    generation: int = 0
    """Bumped when a sweep's hint replaces the poll planned: older events are void."""
    swept: bool = False


def simulate_night(
    times: Mapping[str, float],
    order: Sequence[str],
    strategy: PollStrategy,
    workers: int,
    *,
    concurrency: int | None = None,
    webhooks: Webhooks | None = None,
) -> Night:
    """Run every application once, at most ``concurrency`` (default: ``workers``) evaluations
    outstanding, on a server with ``workers`` that queues the rest; with ``webhooks``, a hint
    has the status asked at once, the listing is swept, and the backstop spaces the polls as
    in a run. A sweep counts as one request."""
    bound = concurrency or workers
    queue = list(reversed(order))
    free = [0.0] * workers
    events: list[tuple[float, int, _Follow | None, Detection | None, int]] = []
    following: set[_Follow] = set()
    rows = LISTING_ROWS_PER_APPLICATION * len(times)
    sequence = itertools.count()
    now = 0.0
    board = None
    if webhooks is not None:
        board = HintBoard(webhooks.backstop, clock=lambda: now)
    lost = random.Random(webhooks.seed if webhooks is not None else 0)
    polls = 0
    delays: list[float] = []
    estimates: dict[str, float] = {}
    end = 0.0

    def plan(follow: _Follow) -> None:
        planned = next(follow.offsets)
        if board is None:
            follow.spacing = Spacing(planned, planned)
        else:
            follow.spacing = board.policy.spaced(
                follow.spacing, planned, lost=board.lost(), swept=board.sweeping
            )
        at = follow.submitted + max(follow.spacing.at, follow.pending + 1e-3)
        if follow.hint is not None and follow.hint < at:
            push(follow.hint, follow, Detection.WEBHOOK)
        else:
            push(at, follow, None)

    def push(when: float, follow: _Follow | None, source: Detection | None) -> None:
        generation = follow.generation if follow is not None else 0
        heapq.heappush(events, (when, next(sequence), follow, source, generation))

    def sweep() -> None:
        """Sweep the listing now: every evaluation ended whose delivery has not come is
        hinted, its status asked once the listing is answered."""
        nonlocal polls
        assert board is not None
        assert webhooks is not None
        assert webhooks.sweep is not None
        interval = webhooks.sweep.interval(board.typical(), rows)
        if board.outstanding and board.live():
            polls += 1
            board.swept_until = now + 2 * interval
            for follow in following:
                heard_by_then = follow.hint is not None and follow.hint <= now + LATENCY
                if follow.done <= now and not heard_by_then and not follow.swept:
                    follow.swept = True
                    follow.generation += 1
                    push(now + LATENCY, follow, Detection.LISTING)
        else:
            board.swept_until = None
        if following or queue:
            push(now + interval, None, None)

    def submit(at: float) -> None:
        if not queue:
            return
        public_id = queue.pop()
        submitted = at + LATENCY
        done = max(submitted, heapq.heappop(free)) + times[public_id]
        heapq.heappush(free, done)
        heard = webhooks is not None and lost.random() >= webhooks.loss
        hint = done + DELIVERY_LATENCY if heard else None
        follow = _Follow(public_id, submitted, done, hint, strategy.offsets(public_id), ExitStack())
        if board is not None:
            follow.watch = follow.watched.enter_context(board.watching(public_id, "", _EPOCH))
        following.add(follow)
        plan(follow)

    for _ in range(bound):
        submit(0.0)
    if board is not None and webhooks is not None and webhooks.sweep is not None:
        push(webhooks.sweep.interval(None, rows), None, None)
    while events:
        now, _, follow, source, generation = heapq.heappop(events)
        if follow is None:
            sweep()
            continue
        if generation != follow.generation:
            continue
        polls += 1
        elapsed = now - follow.submitted
        if now < follow.done:
            follow.pending = elapsed
            plan(follow)
            continue
        heard = source is Detection.WEBHOOK
        ended_after = elapsed if heard else follow.pending
        estimate = strategy.observe(follow.public_id, ended_after, elapsed)
        estimates[follow.public_id] = (
            estimate if estimate is not None else (ended_after + elapsed) / 2
        )
        if follow.watch is not None:
            follow.watch.completed(heard=heard, seconds=elapsed)
        follow.watched.close()
        following.discard(follow)
        delays.append(now - follow.done)
        end = now
        submit(now + LATENCY)
    return Night(
        ratio=end / lower_bound(times, workers),
        zero_delay_ratio=end / zero_delay_makespan([times[p] for p in order], min(bound, workers)),
        requests_per_promotion=1 + polls / len(times),
        mean_delay=statistics.fmean(delays),
        estimates=estimates,
    )


def lower_bound(times: Mapping[str, float], workers: int) -> float:
    """What no client can beat: the work spread over every worker, or the longest evaluation."""
    return max(sum(times.values()) / workers, max(times.values()))


def _night(typical: Mapping[str, float], seed: str, noise: float) -> dict[str, float]:
    """Tonight's evaluation times: each application's own, varied as the simulator varies
    them, so that two nights differ by about ``noise``."""
    draw = random.Random(seed)
    spread = noise / math.sqrt(2)
    return {p: t * max(0.05, draw.gauss(1, spread)) for p, t in typical.items()}


def _longest_first(order: Sequence[str], expected: Mapping[str, float]) -> list[str]:
    return sorted(order, key=lambda p: expected[p], reverse=True)


def random_portfolio(workload: Workload, seed: int) -> dict[str, float]:
    """Typical evaluation times of ``workload``'s shape: lognormal around its median."""
    rng = random.Random(seed)
    return {
        f"app-{i}": workload.eval_time * math.exp(workload.eval_sigma * rng.gauss(0, 1))
        for i in range(workload.apps)
    }


def harness_portfolio(workload: Workload, seed: int) -> dict[str, float]:
    """The typical evaluation times the harness's simulator gives ``workload``'s applications
    when seeded with ``seed``, in manifest order."""
    ids = public_ids(workload.apps)
    with tempfile.TemporaryDirectory(prefix="iq-promote-model-") as scratch:
        manifest = load_manifest(write_manifest(Path(scratch) / "nightly.yaml", workload, ids))
    config = seeded_from(
        manifest,
        SimulatorConfig(
            apps=0,
            seed=seed,
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
    workload: Workload,
    seeds: Sequence[int],
    nights: int = 2,
    noise: float | None = None,
    portfolio: Callable[[Workload, int], dict[str, float]] = harness_portfolio,
    schedule: Callable[..., LearnedSchedule] = LearnedSchedule,
) -> dict[str, list[Night]]:
    """Every variant over ``nights`` pairs of nights on each seed's portfolio; ``schedule``
    builds the learned schedule (the constants under study)."""
    noise = workload.eval_noise if noise is None else noise
    variants: dict[str, list[Night]] = {}

    def add(name: str, night: Night) -> None:
        variants.setdefault(name, []).append(night)

    for seed in seeds:
        typical = portfolio(workload, seed)
        order = list(typical)
        for pair in range(nights):
            first = _night(typical, f"{seed}:{pair}:1", noise)
            second = _night(typical, f"{seed}:{pair}:2", noise)
            nights_of = _Runner(workload, first, order)
            add("perfect detection, manifest order", nights_of.perfect(order))
            add("perfect detection, longest first", nights_of.perfect(_longest_first(order, first)))
            for interval in (0.5, 2.0):
                script = BackoffSchedule(initial=interval, factor=1.0, cap=interval, jitter=0.0)
                add(f"script, poll every {interval:g} s", nights_of.run(script))
            rng = random.Random(seed)
            learned = nights_of.run(schedule(rng=rng))
            add("iq-promote, first night", learned)
            for loss in (0.0, 0.1):
                hooks = Webhooks(loss, f"{seed}:{pair}:webhooks")
                add(
                    f"iq-promote, first night, webhooks ({loss:.0%} lost)",
                    nights_of.run(schedule(rng=random.Random(seed)), hooks),
                )
            by_estimates = _longest_first(order, learned.estimates)
            seconds = _Runner(workload, second, by_estimates)
            add(
                "perfect detection, longest first by the first night's estimates",
                seconds.perfect(by_estimates),
            )
            history = {p: [e] for p, e in learned.estimates.items()}
            add("iq-promote, second night", seconds.run(schedule(history=history, rng=rng)))
    return variants


@dataclass(frozen=True, slots=True)
class _Runner:
    """One night's evaluation times on one workload, in one order."""

    workload: Workload
    times: Mapping[str, float]
    order: Sequence[str]

    def run(self, strategy: PollStrategy, webhooks: Webhooks | None = None) -> Night:
        return simulate_night(
            self.times,
            self.order,
            strategy,
            self.workload.workers,
            concurrency=self.workload.concurrency,
            webhooks=webhooks,
        )

    def perfect(self, order: Sequence[str]) -> Night:
        """Zero-delay list scheduling in ``order``: what a client that learned of every
        completion at once would reach."""
        machines = min(self.workload.workers, self.workload.concurrency)
        makespan = zero_delay_makespan([self.times[p] for p in order], machines)
        own = zero_delay_makespan([self.times[p] for p in self.order], machines)
        return Night(
            ratio=makespan / lower_bound(self.times, self.workload.workers),
            zero_delay_ratio=makespan / own,
            requests_per_promotion=2.0,
            mean_delay=0.0,
            estimates=dict(self.times),
        )


def _median(nights: list[Night], value: Callable[[Night], float]) -> float:
    return statistics.median(value(n) for n in nights)


@click.command()
@click.option(
    "--workload",
    "name",
    type=click.Choice(["standard", "queue", "heavy"]),
    default="standard",
    show_default=True,
)
@click.option("--first-seed", type=int, default=1, show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--nights", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--noise",
    type=click.FloatRange(min=0.0),
    help="How much two nights of one application differ (relative deviation); "
    "default: the workload's.",
)
@click.option(
    "--portfolio",
    type=click.Choice(["harness", "random"]),
    default="harness",
    show_default=True,
    help="Each seed's portfolio as the harness's simulator draws it, or a random one.",
)
def main(
    name: str, first_seed: int, seeds: int, nights: int, noise: float | None, portfolio: str
) -> None:
    """Print the model's medians over SEEDS portfolios (from FIRST-SEED), NIGHTS pairs each."""
    workload = WORKLOADS[name]
    draw = harness_portfolio if portfolio == "harness" else random_portfolio
    chosen = range(first_seed, first_seed + seeds)
    click.echo(
        "| variant | makespan / lower bound | makespan / zero-delay | requests per promotion "
        "| mean delay (s) |"
    )
    click.echo("|---|---|---|---|---|")
    for variant, measured in compare(workload, chosen, nights, noise, draw).items():
        click.echo(
            f"| {variant} | {_median(measured, lambda n: n.ratio):.3f} "
            f"| {_median(measured, lambda n: n.zero_delay_ratio):.3f} "
            f"| {_median(measured, lambda n: n.requests_per_promotion):.2f} "
            f"| {_median(measured, lambda n: n.mean_delay):.3f} |"
        )


if __name__ == "__main__":
    main()
