"""The benchmark's arithmetic and its model: what the README's figures are computed with.

The benchmarks themselves take minutes and measure speed, so they are not run here; these
tests check that what they compute from their measurements is right.
"""

from __future__ import annotations

import math
import statistics

import pytest

from benchmarks.clients import ClientRun
from benchmarks.measure import Results, measure
from benchmarks.model import _Oracle, harness_portfolio, simulate_night
from benchmarks.simulator import Evaluation, ServerView
from benchmarks.workloads import WORKLOADS, public_ids
from orchestrator.promote.polling import BackoffSchedule


def server(seconds: list[float], *, requests: int, polls: int) -> ServerView:
    return ServerView(
        total_requests=requests,
        requests={"promotion-status": {"GET": polls}},
        evaluations=[
            Evaluation(status_id=f"s{n}", seconds=s, finished_wall=100.0 + n)
            for n, s in enumerate(seconds)
        ],
        max_running=2,
    )


def test_the_lower_bound_is_the_work_spread_over_the_workers_or_the_longest_evaluation() -> None:
    client = ClientRun(makespan=12.0, cpu_seconds=0.5, peak_rss_mib=60.0, detected={}, exit_code=0)
    spread = measure("night-1", 4, 2, client, server([3.0, 3.0, 3.0, 3.0], requests=20, polls=12))
    assert spread.lower_bound == pytest.approx(6.0)
    assert spread.ratio == pytest.approx(2.0)
    longest = measure("night-1", 4, 2, client, server([10.0, 1.0, 0.5, 0.5], requests=20, polls=12))
    assert longest.lower_bound == pytest.approx(10.0)


def test_requests_polls_delays_and_cpu_are_per_promotion() -> None:
    detected = {"s0": 100.25, "s1": 101.5, "s2": 102.0, "s3": 104.0}
    client = ClientRun(12.0, 2.0, 60.0, detected, 0)
    m = measure("night-1", 4, 2, client, server([3.0] * 4, requests=22, polls=14))
    assert m.requests_per_promotion == pytest.approx(5.5)
    assert m.polls_per_promotion == pytest.approx(3.5)
    assert m.detection_delay_median == pytest.approx(0.375)
    assert m.detection_delay_p95 == pytest.approx(1.0)
    assert m.cpu_ms_per_promotion == pytest.approx(500.0)
    assert m.completed == m.evaluations == 4


def test_results_take_the_median_of_each_variant() -> None:
    workload = WORKLOADS["quick"]
    runs = [
        measure(
            v, 2, 1, ClientRun(t, 1.0, 60.0, {"s0": 100.5}, 0), server([5.0], requests=6, polls=4)
        )
        for v in workload.variants
        for t in (10.0, 12.0, 20.0)
    ]
    results = Results(workload, "today", "here", runs)
    assert results.medians("night-1")["ratio"] == pytest.approx(12.0 / 5.0)
    assert results.medians("night-1")["detection_delay_median"] == pytest.approx(0.5)
    assert results.markdown().count("| 2.400 | 3.00 | 2.00 | 0.500 / 0.500 |") == len(runs) // 3
    document = results.to_json()
    assert list(document["medians"]) == list(workload.variants)  # type: ignore[call-overload]
    assert len(document["runs"]) == len(runs)  # type: ignore[arg-type]


def test_the_model_with_perfect_detection_on_one_worker_meets_the_lower_bound() -> None:
    times = {f"app-{n}": 1.0 + n / 10 for n in range(10)}
    night = simulate_night(times, list(times), _Oracle(times), workers=1)
    assert night.ratio == pytest.approx(1.0, abs=0.01)
    assert night.requests_per_promotion == pytest.approx(2.0)
    assert night.mean_delay == pytest.approx(0.0, abs=1e-6)


def test_the_model_detects_at_the_first_poll_past_each_evaluation() -> None:
    times = {"a": 1.2, "b": 0.7}
    night = simulate_night(
        times, list(times), BackoffSchedule(initial=0.5, factor=1.0, cap=0.5, jitter=0.0), workers=2
    )
    # a: polls at 0.5, 1.0, 1.5 (found); b: 0.5, 1.0 (found).
    assert night.requests_per_promotion == pytest.approx(1 + 5 / 2)
    assert night.mean_delay == pytest.approx(((1.5 - 1.2) + (1.0 - 0.7)) / 2)
    assert math.isclose(night.estimates["a"], 1.25)
    assert math.isclose(night.estimates["b"], 0.75)


def test_the_model_replays_the_harness_portfolio_in_manifest_order() -> None:
    workload = WORKLOADS["standard"]
    times = harness_portfolio(workload)
    assert list(times) == public_ids(workload)
    assert times == harness_portfolio(workload), "seeded as the harness seeds the simulator"
    assert 1.6 < statistics.median(times.values()) < 2.5, "lognormal around a median of 2 s"
