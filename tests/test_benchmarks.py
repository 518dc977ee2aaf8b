"""The benchmark's arithmetic and its model: what the README's figures are computed with.

The benchmarks themselves take minutes and measure speed, so they are not run here; these
tests check that what they compute from their measurements is right.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import seed_runs
from benchmarks.clients import ClientRun, write_manifest
from benchmarks.measure import Results, Setting, measure, zero_delay_makespan
from benchmarks.model import Webhooks, harness_portfolio, simulate_night
from benchmarks.simulator import Evaluation, ServerView
from benchmarks.workloads import HELD_OUT_SEEDS, TUNING_SEEDS, WORKLOADS, Workload, public_ids
from orchestrator.promote.hints import ListingSweep
from orchestrator.promote.polling import BackoffSchedule

TWO = Workload("two", apps=4, workers=2, concurrency=2, eval_time=1.0)


def server(seconds: list[float], *, requests: int, polls: int) -> ServerView:
    return ServerView(
        total_requests=requests,
        requests={"promotion-status": {"GET": polls}},
        evaluations=[
            Evaluation(
                status_id=f"s{n}",
                seconds=s,
                finished_wall=100.0 + n,
                enqueued_wall=10.0 + n,
            )
            for n, s in enumerate(seconds)
        ],
        max_running=2,
    )


def client(makespan: float = 12.0, **fields: Any) -> ClientRun:
    run = ClientRun(
        makespan=makespan,
        cpu_seconds=0.5,
        peak_rss_mib=60.0,
        detected={},
        exit_code=0,
        started_wall=9.5,
    )
    return replace(run, **fields)


def test_the_lower_bound_is_the_work_spread_over_the_workers_or_the_longest_evaluation() -> None:
    spread = measure(
        Setting("night-1", 1, TWO), 4, client(), server([3.0] * 4, requests=20, polls=12)
    )
    assert spread.lower_bound == pytest.approx(6.0)
    assert spread.ratio == pytest.approx(2.0)
    longest = measure(
        Setting("night-1", 1, TWO),
        4,
        client(),
        server([10.0, 1.0, 0.5, 0.5], requests=20, polls=12),
    )
    assert longest.lower_bound == pytest.approx(10.0)


def test_zero_delay_is_list_scheduling_in_the_given_order() -> None:
    assert zero_delay_makespan([3.0, 1.0, 1.0, 1.0, 3.0], 2) == pytest.approx(6.0)
    assert zero_delay_makespan([3.0, 3.0, 1.0, 1.0, 1.0], 2) == pytest.approx(5.0), "longest first"
    assert zero_delay_makespan([2.0, 2.0], 5) == pytest.approx(2.0)


def test_zero_delay_follows_the_order_of_submission_from_the_first_one() -> None:
    """The run's own order is the order the server accepted its promotions; the client's
    time before the first (its look-ups) counts, as it would for any client."""
    view = server([1.0, 1.0, 1.0, 3.0], requests=20, polls=12)
    reordered = replace(view, evaluations=list(reversed(view.evaluations)))
    m = measure(Setting("night-1", 1, TWO), 4, client(makespan=6.0), reordered)
    assert m.lead == pytest.approx(0.5)
    assert m.zero_delay == pytest.approx(0.5 + 4.0)
    assert m.zero_delay_ratio == pytest.approx(6.0 / 4.5)
    queued = replace(TWO, workers=1, concurrency=4)
    assert measure(Setting("night-1", 1, queued), 4, client(), view).zero_delay == pytest.approx(
        6.5
    ), "with fewer workers than the bound, the workers are the machines"


def test_requests_polls_delays_and_cpu_are_per_promotion() -> None:
    detected = {"s0": 100.25, "s1": 101.5, "s2": 102.0, "s3": 104.0}
    run = client(
        cpu_seconds=2.0, detected=detected, detected_by={"webhook": 2, "listing": 1, "poll": 1}
    )
    m = measure(Setting("night-1", 1, TWO), 4, run, server([3.0] * 4, requests=22, polls=14))
    assert m.requests_per_promotion == pytest.approx(5.5)
    assert m.polls_per_promotion == pytest.approx(3.5)
    assert m.detection_delay_median == pytest.approx(0.375)
    assert m.detection_delay_p95 == pytest.approx(1.0)
    assert m.cpu_ms_per_promotion == pytest.approx(500.0)
    assert m.detected_by_webhook == pytest.approx(0.5)
    assert m.detected_by_listing == pytest.approx(0.25)
    assert m.completed == m.evaluations == 4


def test_results_take_each_seeds_median_then_the_median_over_seeds() -> None:
    workload = WORKLOADS["standard"]
    runs = [
        measure(
            Setting(v, seed, workload),
            2,
            client(makespan=t, detected={"s0": 100.5}),
            server([5.0], requests=6, polls=4),
        )
        for v in workload.variants
        for seed, times in ((211, (10.0, 12.0, 20.0)), (212, (5.0, 5.0, 5.0)), (213, (30.0,)))
        for t in times
    ]
    results = Results(workload, "today", "here", "python -m benchmarks", runs)
    assert results.per_seed("night-1", 211)["ratio"] == pytest.approx(12.0 / 5.0)
    assert results.medians("night-1")["ratio"] == pytest.approx(12.0 / 5.0)
    assert results.medians("night-1")["detection_delay_median"] == pytest.approx(0.5)
    document = results.to_json()
    assert list(document["medians"]) == list(workload.variants)  # type: ignore[call-overload]
    assert document["seeds"]["heldOut"] == [211, 212, 213]  # type: ignore[index]
    assert len(document["runs"]) == len(runs)  # type: ignore[arg-type]
    table = results.markdown()
    assert "| 211 | 2.400 at 3.00 |" in table
    assert "**not met**" in table, "2.4 times the lower bound misses every target"


def test_tuning_and_held_out_seeds_never_meet() -> None:
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    assert len(HELD_OUT_SEEDS) >= 5
    for workload in WORKLOADS.values():
        if workload.name != "quick":
            assert set(workload.seeds) <= set(HELD_OUT_SEEDS), workload.name


def test_the_model_with_perfect_detection_on_one_worker_meets_the_lower_bound() -> None:
    times = {f"app-{n}": 1.0 + n / 10 for n in range(10)}
    exact = BackoffSchedule(initial=1e-3, factor=1.0, cap=1e-3, jitter=0.0)
    night = simulate_night(times, list(times), exact, workers=1)
    assert night.ratio == pytest.approx(1.0, abs=0.02)
    assert night.zero_delay_ratio == pytest.approx(1.0, abs=0.02)
    assert night.mean_delay == pytest.approx(0.0, abs=2e-3)


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


def test_the_model_queues_on_the_server_beyond_its_workers() -> None:
    times = {"a": 1.0, "b": 1.0}
    polls = BackoffSchedule(initial=0.25, factor=1.0, cap=0.25, jitter=0.0)
    night = simulate_night(times, list(times), polls, workers=1, concurrency=2)
    # b waits for a's worker: done at 2 s, found at its eighth poll.
    assert night.requests_per_promotion == pytest.approx(1 + (4 + 8) / 2)
    assert night.zero_delay_ratio == pytest.approx(1.0, abs=0.01)


def test_in_the_model_a_delivery_ends_a_promotion_with_one_status_request() -> None:
    times = {f"app-{n}": 1.0 for n in range(4)}
    late = BackoffSchedule(initial=100.0, factor=1.0, cap=100.0, jitter=0.0)
    unswept = Webhooks(0.0, "s", sweep=None)
    heard = simulate_night(times, list(times), late, workers=2, webhooks=unswept)
    assert heard.requests_per_promotion == pytest.approx(2.0)
    assert heard.zero_delay_ratio == pytest.approx(1.0, abs=0.03)
    lost = simulate_night(times, list(times), late, workers=2, webhooks=Webhooks(1.0, "s"))
    assert lost.mean_delay == pytest.approx(99.0), "every delivery lost: the poll finds it"


def test_in_the_model_a_sweep_finds_the_lost_deliveries_polls_would_find_late() -> None:
    times = {f"app-{n}": 1.0 for n in range(40)}
    late = BackoffSchedule(initial=100.0, factor=1.0, cap=100.0, jitter=0.0)
    sweep = ListingSweep(first=0.5, share=0.5, min_interval=0.5)
    swept = Webhooks(0.3, "s", sweep=sweep)
    night = simulate_night(times, list(times), late, workers=4, webhooks=swept)
    unswept = simulate_night(
        times, list(times), late, workers=4, webhooks=Webhooks(0.3, "s", sweep=None)
    )
    assert unswept.mean_delay > 20, "without sweeps, a lost delivery waits for its poll"
    assert night.mean_delay < 0.5 * 0.3, "with them, at most a sweep's interval"
    # A sweep every half second over the ten seconds: about 20 requests for the 40.
    assert 2.0 < night.requests_per_promotion < 2.0 + 22 / 40


def test_the_model_replays_the_harness_portfolio_in_manifest_order() -> None:
    workload = WORKLOADS["standard"]
    times = harness_portfolio(workload, 7)
    assert list(times) == public_ids(workload.apps)
    assert times == harness_portfolio(workload, 7), "seeded as the harness seeds the simulator"
    assert times != harness_portfolio(workload, 8), "each seed another portfolio"
    assert 1.6 < statistics.median(times.values()) < 2.5, "lognormal around a median of 2 s"


def test_a_tiny_workload_runs_every_kind_of_variant_end_to_end(tmp_path: Path) -> None:
    """The harness itself, in a few seconds: a script, iq-promote's two nights and the
    webhook, each against the simulator in its own process, every promotion completed and
    measured. No timing is asserted: only that what is measured adds up."""
    tiny = Workload(
        "tiny",
        apps=6,
        workers=3,
        concurrency=3,
        eval_time=0.05,
        seeds=(1,),
        variants=("fixed-0.5s", "night-1", "night-2", "webhook-10"),
    )
    ids = public_ids(tiny.apps)
    manifest = write_manifest(tmp_path / "nightly.yaml", tiny, ids)
    runs = list(seed_runs(tiny, 1, manifest, ids, tmp_path / "seed-1", repeats=1))
    assert [m.variant for m in runs] == ["night-1", "night-2", "fixed-0.5s", "webhook-10"]
    for m in runs:
        assert m.completed == m.evaluations == m.promotions == tiny.apps, m.variant
        assert m.makespan >= m.lower_bound > 0, m.variant
        assert m.zero_delay >= m.lower_bound, m.variant
        assert m.requests_per_promotion >= 2.0, m.variant
    assert runs[-1].detected_by_webhook > 0, "deliveries reached the run's listener"
