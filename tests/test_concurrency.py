"""``concurrency: auto``: AIMD over the evaluations in flight, and a run that finds its level
against a server that throttles."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio
import pytest
from structlog.testing import capture_logs
from test_runner import config_for, entry, manifest

from orchestrator.defaults import AUTO_CONCURRENCY_START
from orchestrator.promote.adaptive_concurrency import AdaptiveLimit
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.runner.run import run
from orchestrator.simulator import FaultConfig, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]


def adaptive(start: int = 10, **options: int) -> AdaptiveLimit:
    return AdaptiveLimit(anyio.CapacityLimiter(start), **options)


async def test_throttling_decreases_the_limit_multiplicatively_down_to_the_minimum() -> None:
    limit = adaptive(20, minimum=2)
    seen = []
    for _ in range(8):
        limit.on_throttled()
        seen.append(limit.limit)
    assert seen == [14, 9, 6, 4, 2, 2, 2, 2]
    assert limit.limiter.total_tokens == 2  # the limiter the scheduler waits on moved too


async def test_healthy_completions_increase_the_limit_by_one_per_window_of_the_limit() -> None:
    limit = adaptive(8)
    for _ in range(7):
        limit.on_completed(0.5)
    assert limit.limit == 8
    limit.on_completed(0.5)
    assert limit.limit == 9  # one more after as many completions as the limit
    for _ in range(9):
        limit.on_completed(0.5)
    assert limit.limit == 10


@pytest.mark.parametrize("start", [6, 7, 10, 13, 29])
async def test_exactly_limit_completions_raise_the_limit(start: int) -> None:
    limit = adaptive(start)
    for _ in range(start - 1):
        limit.on_completed(0.5)
    assert limit.limit == start
    limit.on_completed(0.5)
    assert limit.limit == start + 1


async def test_the_limit_never_exceeds_its_maximum() -> None:
    limit = adaptive(4, maximum=6)
    for _ in range(200):
        limit.on_completed(0.1)
    assert limit.limit == 6


async def test_a_throttle_forfeits_the_credit_toward_the_next_increase() -> None:
    limit = adaptive(10)
    for _ in range(9):
        limit.on_completed(0.5)
    limit.on_throttled()
    assert limit.limit == 7
    for _ in range(6):
        limit.on_completed(0.5)
    assert limit.limit == 7  # the nine earlier completions no longer count
    limit.on_completed(0.5)
    assert limit.limit == 8


async def test_rising_latency_backs_off_before_the_server_throttles() -> None:
    limit = adaptive(10, maximum=10, window=5)
    for _ in range(5):
        limit.on_completed(1.0)  # the best window: median 1 s
    assert limit.limit == 10
    for _ in range(4):
        limit.on_completed(1.9)  # slower, but within twice the best
    assert limit.limit == 10
    for _ in range(5):
        limit.on_completed(3.0)  # the queue is filling: median 3 s > 2 x 1 s
    assert limit.limit == 7


async def test_only_completed_promotions_with_a_duration_teach_it() -> None:
    limit = adaptive(1)

    def finished(status: Outcome, seconds: float | None) -> PromotionResult:
        return PromotionResult(
            public_id="app",
            entry_index=0,
            transition_index=0,
            target_stage_id="build",
            status=status,
            duration_seconds=seconds,
        )

    await limit.intent((0, 0, "app"))
    limit.submitted((0, 0, "app"), "status/1", 1)
    limit.finished((0, 0, "app"), finished(Outcome.FAILED, 0.2))
    limit.finished((0, 0, "app"), finished(Outcome.COMPLETED, None))
    assert limit.limit == 1
    limit.finished((0, 0, "app"), finished(Outcome.COMPLETED, 0.2))
    assert limit.limit == 2


async def test_an_auto_run_against_a_throttling_server_completes_everything(
    simulator_factory: SimulatorFactory,
) -> None:
    """Two workers and 429 while two evaluations wait: the starting limit (8) is too many, the
    run learns it from the 429s, and every promotion still completes."""
    faults = FaultConfig(throttle_queue_depth=2, retry_after=0.0)
    async with simulator_factory(
        apps=34, workers=2, eval_time=0.04, eval_sigma=0.2, faults=faults, seed=3
    ) as sim:
        apps = [a.public_id for a in sim.portfolio.applications[:30]]  # those with a build scan
        text = manifest(entry(apps, "{from: build, to: build}"), concurrency=4)
        with capture_logs() as events, anyio.fail_after(60):
            report = await run(config_for(sim, text, concurrency="auto"))
        throttled = sim.stats.faults["429"]
        accepted = dict(sim.stats.promotions_accepted)
        max_queue = sim.stats.max_queue_depth

    assert [r.status for r in report.results] == [Outcome.COMPLETED] * len(apps)
    assert throttled > 0  # the server did push back
    assert sorted(accepted.values()) == [1] * len(apps)  # a 429 is not an evaluation
    assert max_queue <= 2
    adjustments = [e for e in events if e["event"] == "concurrency.adjusted"]
    lowered = [e for e in adjustments if e["why"] == "throttled"]
    assert lowered
    assert (
        lowered[0]["previous"] >= AUTO_CONCURRENCY_START
    )  # it started at 8 (and may have risen first)
    assert all(1 <= e["limit"] < e["previous"] for e in lowered)
    print(f"429 answers: {throttled}; limits: {[e['limit'] for e in adjustments]}")
