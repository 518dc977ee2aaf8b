"""Webhook hints: the backstop policy as a value, the board that matches events to
promotions, and ``follow`` woken by a hint, against the simulator's status URLs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.iq.client import IqClient
from orchestrator.iq.models import EvaluationState, PromoteScanRequest
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.promote.hints import START, HintBoard, ListingSweep, Spacing, WebhookBackstop
from orchestrator.promote.learned_polling import LearnedSchedule
from orchestrator.promote.polling import BackoffSchedule, InFlight, follow
from orchestrator.promote.webhooks import EvaluationEvent
from orchestrator.report.results import Detection
from orchestrator.simulator import FaultConfig, Simulator

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
NOW = datetime(2025, 3, 1, 2, 30, tzinfo=UTC)
LATE_POLLS = BackoffSchedule(initial=600.0, factor=1.0, cap=600.0, jitter=0.0)
"""Polls so late that only a hint can end a follow in a test."""
QUICK_POLLS = BackoffSchedule(initial=0.02, factor=1.5, cap=0.1)
LIMIT = 20


def event(
    application_id: str = "app-1", stage: str = "release", at: datetime = NOW
) -> EvaluationEvent:
    return EvaluationEvent(application_id=application_id, stage=stage, evaluation_date=at)


# --- the policy ----------------------------------------------------------------------------


def test_without_webhooks_polls_come_as_the_strategy_plans_them() -> None:
    policy = WebhookBackstop(spread=1.0, max_gap=30.0)
    spacing = START
    for planned in (1.0, 2.5, 4.0, 10.0):
        spacing = policy.spaced(spacing, planned, lost=None)
        assert spacing == Spacing(planned, planned)


def test_while_webhooks_arrive_gaps_are_stretched_up_to_the_ceiling() -> None:
    policy = WebhookBackstop(spread=1.0, max_stretch=10.0, max_gap=30.0)
    spacing = START
    sent = []
    for planned in (1.0, 2.0, 4.0, 14.0, 24.0):
        spacing = policy.spaced(spacing, planned, lost=1 / 16)
        sent.append(spacing.at)
    assert sent == [4.0, 8.0, 16.0, 46.0, 76.0], "four times apart, at most 30 s"


def test_the_fewer_deliveries_are_lost_the_further_apart_polls_come() -> None:
    policy = WebhookBackstop(spread=0.8, max_stretch=10.0)
    assert policy.stretch(0.1) == pytest.approx(0.8 / math.sqrt(0.1))
    assert policy.stretch(0.01) == pytest.approx(8.0)
    assert policy.stretch(0.01) > policy.stretch(0.1) > policy.stretch(0.3)
    assert policy.stretch(1.0) == 1.0, "with every delivery lost, polls come as planned"
    assert policy.stretch(1e-6) == 10.0, "a few lucky deliveries earn no more than the ceiling"
    assert WebhookBackstop(spread=2.0, max_stretch=4.0).stretch(0.5) == pytest.approx(
        2 / math.sqrt(0.5)
    )


def test_the_share_lost_starts_from_the_prior_and_follows_what_is_seen() -> None:
    policy = WebhookBackstop(prior_loss=0.2, prior_weight=5.0)
    assert policy.lost(0, 0) == pytest.approx(0.2)
    assert policy.lost(95, 0) == pytest.approx(1 / 100), "none lost: the prior's one in 100"
    assert policy.lost(90, 10) == pytest.approx(11 / 105)
    assert policy.lost(0, 100) == pytest.approx(101 / 105), "none arrive: nearly all lost"


def test_when_webhooks_stop_the_next_poll_is_the_plan_itself() -> None:
    policy = WebhookBackstop(spread=2.0, max_stretch=4.0, max_gap=30.0)
    stretched = policy.spaced(policy.spaced(START, 5.0, lost=0.25), 10.0, lost=0.25)
    assert stretched.at == 40.0
    assert policy.spaced(stretched, 12.0, lost=None) == Spacing(12.0, 12.0)


@given(
    gaps=st.lists(st.floats(min_value=0.001, max_value=500.0), min_size=1, max_size=40),
    spread=st.floats(min_value=0.1, max_value=10.0),
    lost=st.floats(min_value=1e-4, max_value=1.0),
    max_gap=st.floats(min_value=0.01, max_value=600.0),
)
def test_a_poll_is_never_earlier_than_planned_and_never_more_than_the_ceiling_apart(
    gaps: list[float], spread: float, lost: float, max_gap: float
) -> None:
    policy = WebhookBackstop(spread=spread, max_gap=max_gap)
    stretch = policy.stretch(lost)
    assert 1.0 <= stretch <= policy.max_stretch
    planned = list(itertools.accumulate(gaps))
    spacing = START
    for offset in planned:
        previous = spacing
        spacing = policy.spaced(previous, offset, lost=lost)
        assert spacing.planned == offset
        assert spacing.at >= offset
        gap = spacing.at - previous.at
        # Farther apart than the ceiling only where the plan itself is.
        assert gap <= max(max_gap, offset - previous.at) * (1 + 1e-9)
        assert gap >= min((offset - previous.planned) * stretch, max_gap) * (1 - 1e-9) or (
            math.isclose(spacing.at, offset)
        )


def test_webhooks_count_as_arriving_for_a_while_after_the_last_confirmed_one() -> None:
    policy = WebhookBackstop(fresh_for=300.0)
    assert not policy.live(None, 1000.0), "before the first, polling is as planned"
    assert policy.live(900.0, 1000.0)
    assert policy.live(700.0, 1000.0)
    assert not policy.live(699.0, 1000.0)


@pytest.mark.parametrize(
    "params",
    [
        {"spread": 0.0},
        {"max_stretch": 0.5},
        {"max_gap": 0.0},
        {"fresh_for": 0.0},
        {"window": 0},
        {"prior_loss": 0.0},
        {"prior_loss": 1.5},
        {"prior_weight": 0.0},
        {"clock_tolerance": -1.0},
    ],
)
def test_a_backstop_that_cannot_work_is_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"webhook backstop|clock_tolerance"):
        WebhookBackstop(**params)


def test_while_sweeps_work_polls_come_the_swept_stretch_apart() -> None:
    policy = WebhookBackstop(spread=1.0, max_stretch=2.0, swept_stretch=8.0, max_gap=30.0)
    swept = policy.spaced(START, 1.0, lost=0.25, swept=True)
    assert swept == Spacing(1.0, 8.0)
    assert policy.spaced(swept, 2.0, lost=0.25, swept=True) == Spacing(2.0, 16.0)
    assert policy.spaced(START, 1.0, lost=0.25) == Spacing(1.0, 2.0), "unswept: the loss rule"
    assert policy.spaced(START, 1.0, lost=None, swept=True) == Spacing(1.0, 1.0), (
        "webhooks not arriving: the plan itself"
    )


def test_sweeps_come_at_a_share_of_the_typical_evaluation_and_slower_for_large_listings() -> None:
    sweep = ListingSweep(
        share=0.25, first=1.0, min_interval=0.25, max_interval=60.0, rows_per_second=2000
    )
    assert sweep.interval(None, 0) == 1.0, "before any evaluation is seen"
    assert sweep.interval(8.0, 400) == 2.0
    assert sweep.interval(0.1, 400) == 0.25, "never more often than min_interval"
    assert sweep.interval(8.0, 20_000) == 10.0, "20,000 rows: 2,000 a second at most"
    assert sweep.interval(8.0, 10_000_000) == 60.0, "never less often than max_interval"


@pytest.mark.parametrize(
    "params",
    [
        {"share": 0},
        {"first": -1},
        {"min_interval": 0},
        {"rows_per_second": 0},
        {"max_interval": 0.1},
        {"max_bytes": 0},
    ],
)
def test_a_sweep_that_cannot_work_is_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="listing sweep"):
        ListingSweep(**params)


# --- the board -----------------------------------------------------------------------------


def test_a_sweep_hints_at_each_listed_evaluation_twice_and_a_delivery_is_said_first() -> None:
    async def check() -> None:
        board = HintBoard(WebhookBackstop(clock_tolerance=2.0))
        with board.watching("app-1", "release", NOW) as watch:
            assert board.watched("app-1", "release")
            assert not board.watched("app-1", "build")
            listed = event(at=NOW + timedelta(seconds=5))
            assert board.offer(listed, Detection.LISTING)
            assert watch.take() is Detection.LISTING
            assert board.offer(listed, Detection.LISTING), "once more: its status may lag"
            assert watch.take() is Detection.LISTING
            assert not board.offer(listed, Detection.LISTING), "listed a third time: no hint"
            assert not board.offer(event(at=NOW), Detection.LISTING), "an older one either"
            assert board.offer(event(at=NOW + timedelta(seconds=9)), Detection.LISTING)
            assert board.offer(event(at=NOW + timedelta(seconds=9)))
            assert watch.take() is Detection.WEBHOOK, "the delivery's word stands"
            assert board.offer(event(at=NOW + timedelta(seconds=9))), "deliveries: each one"
            board.offer(event(at=NOW + timedelta(seconds=10)), Detection.LISTING)
            assert watch.take() is Detection.WEBHOOK, "nor does a sweep's displace it"
        assert not board.watched("app-1", "release")

    anyio.run(check)


def test_a_delivery_that_comes_after_a_sweep_found_its_evaluation_is_late_not_lost() -> None:
    now = [100.0]
    board = HintBoard(WebhookBackstop(fresh_for=60.0), clock=lambda: now[0])
    with board.watching("app-1", "release", NOW) as watch:
        watch.completed(heard=False, seconds=3.0, swept=True)
    assert not board.live()
    assert not board.offer(event(at=NOW - timedelta(minutes=5))), "an earlier evaluation"
    now[0] = 101.0
    assert board.offer(event(at=NOW + timedelta(seconds=3)))
    assert board.last_confirmed == 101.0, "webhooks arrive: late, as the sweep was first"
    assert board.live()
    assert not board.offer(event(at=NOW + timedelta(seconds=3))), "once"
    with board.watching("app-2", "release", NOW) as polled:
        polled.completed(heard=False, seconds=3.0)
    now[0] = 102.0
    assert not board.offer(event("app-2", at=NOW + timedelta(seconds=3))), "a poll's: unknown"
    assert board.last_confirmed == 101.0


def test_a_delivery_while_a_sweeps_hint_is_asked_counts_as_heard_unless_refuted() -> None:
    async def check() -> None:
        board = HintBoard(last_confirmed=0.0, clock=lambda: 1.0)
        with board.watching("app-1", "release", NOW) as watch:
            board.offer(event(at=NOW + timedelta(seconds=5)), Detection.LISTING)
            assert watch.take() is Detection.LISTING
            board.offer(event(at=NOW + timedelta(seconds=5)))
            watch.completed(heard=False, seconds=5.0, swept=True)
        assert board.lost() == pytest.approx(board.policy.lost(1, 0))
        board = HintBoard(last_confirmed=0.0, clock=lambda: 1.0)
        with board.watching("app-1", "release", NOW) as watch:
            board.offer(event(at=NOW + timedelta(seconds=5)))
            assert watch.take() is Detection.WEBHOOK
            watch.refuted()
            watch.completed(heard=False, seconds=5.0)
        assert board.lost() == pytest.approx(board.policy.lost(0, 1)), "a CI scan's delivery"

    anyio.run(check)


def test_sweeps_count_as_working_only_until_the_next_is_overdue() -> None:
    now = [10.0]
    board = HintBoard(clock=lambda: now[0])
    assert not board.sweeping
    board.swept_until = 12.0
    assert board.sweeping
    now[0] = 12.5
    assert not board.sweeping, "a listing request retried for long is no working sweep"


def test_the_board_knows_the_typical_time_to_completion() -> None:
    async def check() -> None:
        board = HintBoard()
        assert board.typical() is None
        for seconds in (1.0, 3.0, 2.0):
            with board.watching("app", "build", NOW) as watch:
                watch.completed(heard=True, seconds=seconds)
        assert board.typical() == 2.0

    anyio.run(check)


@pytest.mark.anyio
async def test_an_event_wakes_the_promotion_of_its_application_and_stage_if_dated_after() -> None:
    board = HintBoard(WebhookBackstop(clock_tolerance=2.0))
    with (
        board.watching("app-1", "release", NOW) as watch,
        board.watching("app-2", "release", NOW) as other,
    ):
        assert board.outstanding == 2
        assert not board.offer(event(stage="build")), "another stage"
        assert not board.offer(event(application_id="app-9")), "another application"
        assert not board.offer(event(at=NOW - timedelta(minutes=5))), "an earlier evaluation"
        assert not watch.take()
        assert board.offer(event(at=NOW - timedelta(seconds=1))), "within the clock tolerance"
        assert watch.take()
        assert not watch.take(), "a hint is taken once"
        assert board.offer(event(at=NOW + timedelta(seconds=30)))
        assert not other.take()
        with anyio.fail_after(LIMIT):
            await watch.hinted()
    assert board.outstanding == 0
    assert not board.offer(event()), "a promotion no longer outstanding is not woken"


def test_a_confirmed_hint_makes_webhooks_live_for_the_board() -> None:
    async def check() -> None:
        board = HintBoard()
        assert not board.live()
        assert board.lost() is None
        with board.watching("app-1", "build", NOW) as watch:
            watch.completed(heard=True)
        assert board.live()
        assert board.lost() == pytest.approx(board.policy.lost(1, 0))

    anyio.run(check)


def complete(board: HintBoard, *, heard: bool) -> None:
    """A promotion watched, completed and over."""
    with board.watching("app", "build", NOW) as watch:
        watch.completed(heard=heard)


def test_the_board_counts_completions_in_the_order_promotions_were_sent() -> None:
    """A lost delivery is learned of late, when a poll finds the evaluation: a completion
    is counted only once every promotion sent before it is over, so the ones heard at once
    do not outnumber the lost ones found later."""
    now = [0.0]
    board = HintBoard(WebhookBackstop(window=10, fresh_for=60.0), clock=lambda: now[0])
    complete(board, heard=False)
    assert board.lost() is None, "found by a poll before any delivery: not counted"
    with board.watching("app-1", "build", NOW) as first:
        with board.watching("app-2", "build", NOW) as second:
            second.completed(heard=True)
        assert board.lost() == pytest.approx(board.policy.lost(0, 0)), "waits for the first"
        first.completed(heard=False)
    assert board.lost() == pytest.approx(board.policy.lost(1, 1))
    for _ in range(12):
        complete(board, heard=True)
    assert board.lost() == pytest.approx(board.policy.lost(10, 0)), "only the latest ten"
    now[0] = 61.0
    assert board.lost() is None, "no delivery confirmed for too long: polling as planned"
    complete(board, heard=False)
    now[0] = 62.0
    complete(board, heard=True)
    assert board.lost() == pytest.approx(board.policy.lost(10, 0)), "while stale, not counted"


# --- follow, woken by a hint ---------------------------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    """Wait for something the simulator or the follower does (the test's deadline bounds it)."""
    while not condition():  # noqa: ASYNC110 - what is awaited sets no event
        await anyio.sleep(0.005)


def settings_for(base_url: str) -> ClientSettings:
    return ClientSettings(
        base_url,
        Credentials("admin", "admin123"),
        retry=RetryPolicy(backoff_base=0.01, backoff_cap=0.05),
    )


async def submit(client: IqClient, sim: Simulator) -> tuple[str, InFlight]:
    app = sim.portfolio.applications[0]
    request = PromoteScanRequest(source_stage_id="build", target_stage_id="release")
    submission = await client.promote_scan(app.id, request)
    return app.id, InFlight(submission.status_url, anyio.current_time())


@pytest.mark.anyio
async def test_a_hint_of_a_finished_evaluation_ends_follow_with_one_status_request(
    simulator: Simulator,
) -> None:
    board = HintBoard()
    async with IqClient(settings_for(simulator.base_url)) as client:
        with (
            anyio.fail_after(LIMIT),
            board.watching(
                simulator.portfolio.applications[0].id, "release", datetime.now(UTC)
            ) as watch,
        ):
            app_id, in_flight = await submit(client, simulator)
            await until(lambda: simulator.stats.evaluations_completed > 0)
            assert board.offer(event(app_id, "release", datetime.now(UTC)))
            status = await follow(client, in_flight, LATE_POLLS, "app", watch)
    assert status.state is EvaluationState.COMPLETED
    assert status.report_html_url
    assert in_flight.polls == 1
    assert in_flight.detected_by is Detection.WEBHOOK
    assert in_flight.evaluation_seconds == in_flight.final_at, "it ended just before the hint"
    assert board.live(), "a confirmed hint says webhooks arrive"
    assert board.lost() == pytest.approx(board.policy.lost(1, 0))


@pytest.mark.anyio
async def test_a_learned_schedule_takes_a_confirmed_hint_as_the_end_of_the_evaluation(
    simulator: Simulator,
) -> None:
    board = HintBoard()
    schedule = LearnedSchedule(initial=600.0)
    async with IqClient(settings_for(simulator.base_url)) as client:
        app_id, in_flight = await submit(client, simulator)
        with anyio.fail_after(LIMIT), board.watching(app_id, "release", NOW) as watch:
            await until(lambda: simulator.stats.evaluations_completed > 0)
            assert board.offer(event(app_id, "release", datetime.now(UTC)))
            await follow(client, in_flight, schedule, "app", watch)
    assert in_flight.final_at is not None
    assert in_flight.estimate == in_flight.final_at, "not halfway from the submission"


@pytest.mark.anyio
async def test_a_completion_a_poll_finds_first_counts_as_a_lost_delivery(
    simulator: Simulator,
) -> None:
    board = HintBoard(last_confirmed=anyio.current_time())
    async with IqClient(settings_for(simulator.base_url)) as client:
        app_id, in_flight = await submit(client, simulator)
        with anyio.fail_after(LIMIT), board.watching(app_id, "release", NOW) as watch:
            status = await follow(client, in_flight, QUICK_POLLS, "app", watch)
    assert status.state is EvaluationState.COMPLETED
    assert in_flight.detected_by is Detection.POLL
    assert board.lost() == pytest.approx(board.policy.lost(0, 1))


@pytest.mark.anyio
async def test_a_failed_evaluation_says_nothing_of_the_deliveries(
    simulator_factory: SimulatorFactory,
) -> None:
    """IQ sends its event for completed evaluations only: a FAILED one found by a poll is
    no lost delivery."""
    board = HintBoard(last_confirmed=anyio.current_time())
    async with (
        simulator_factory(faults=FaultConfig(failing_rate=1.0)) as sim,
        IqClient(settings_for(sim.base_url)) as client,
    ):
        app_id, in_flight = await submit(client, sim)
        with anyio.fail_after(LIMIT), board.watching(app_id, "release", NOW) as watch:
            status = await follow(client, in_flight, QUICK_POLLS, "app", watch)
    assert status.state is EvaluationState.FAILED
    assert board.lost() == pytest.approx(board.policy.lost(0, 0))


@pytest.mark.anyio
async def test_a_delivery_the_status_refuted_does_not_count_as_the_promotions_own(
    simulator_factory: SimulatorFactory,
) -> None:
    """A CI scan's delivery woke the follower while its evaluation ran; the poll that later
    finds the evaluation done counts it as a lost delivery, not a heard one."""
    board = HintBoard(last_confirmed=anyio.current_time())
    async with (
        simulator_factory(eval_time=0.5, eval_sigma=0.0) as sim,
        IqClient(settings_for(sim.base_url)) as client,
    ):
        app_id = sim.portfolio.applications[0].id
        with anyio.fail_after(LIMIT), board.watching(app_id, "release", NOW) as watch:
            _, in_flight = await submit(client, sim)
            assert board.offer(event(app_id, "release", datetime.now(UTC)))
            await follow(client, in_flight, QUICK_POLLS, "app", watch)
    assert in_flight.polls >= 2, "the refuted hint, then the poll that found it done"
    assert in_flight.detected_by is Detection.POLL
    assert board.lost() == pytest.approx(board.policy.lost(0, 1))


@pytest.mark.anyio
async def test_a_hint_the_status_refutes_does_not_end_follow(
    simulator_factory: SimulatorFactory,
) -> None:
    board = HintBoard()
    async with (
        simulator_factory(eval_time=60.0, eval_sigma=0.0) as sim,
        IqClient(settings_for(sim.base_url)) as client,
    ):
        app_id = sim.portfolio.applications[0].id
        with board.watching(app_id, "release", datetime.now(UTC)) as watch:
            _, in_flight = await submit(client, sim)
            ended = False

            async def following() -> None:
                nonlocal ended
                await follow(client, in_flight, LATE_POLLS, "app", watch)
                ended = True

            async with anyio.create_task_group() as tg:
                tg.start_soon(following)
                assert board.offer(event(app_id, "release", datetime.now(UTC)))
                with anyio.fail_after(LIMIT):
                    await until(lambda: in_flight.polls == 1)
                    assert board.offer(event(app_id, "release", datetime.now(UTC)))
                    await until(lambda: in_flight.polls == 2)
                assert not ended, "PENDING twice: the follower waits on"
                tg.cancel_scope.cancel()
    assert in_flight.polls == 2
    assert in_flight.final_at is None
    assert in_flight.detected_by is None
    assert not board.live(), "a refuted hint is no sign that webhooks arrive"
