"""The backoff schedule as a value, and ``follow`` against real simulator status URLs."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import anyio
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from orchestrator.iq.client import IqClient
from orchestrator.iq.models import EvaluationState, PromoteScanRequest
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.promote.polling import BackoffSchedule, InFlight, PollStrategy, follow
from orchestrator.simulator import Simulator

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
FAST_POLLS = BackoffSchedule(initial=0.01, factor=1.5, cap=0.05)
LIMIT = 20


# --- BackoffSchedule -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(min_value=0.001, max_value=100.0),
    factor=st.floats(min_value=1.0, max_value=5.0),
    cap=st.floats(min_value=0.001, max_value=100.0),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    seed=st.integers(),
)
def test_backoff_offsets_increase_with_capped_jittered_intervals(
    initial: float, factor: float, cap: float, jitter: float, seed: int
) -> None:
    schedule = BackoffSchedule(initial, factor, cap, jitter, rng=random.Random(seed))
    offsets = list(itertools.islice(schedule.offsets("app"), 60))
    assert len(offsets) == 60
    for k, (before, after) in enumerate(itertools.pairwise([0.0, *offsets])):
        interval = after - before
        nominal = min(initial * factor**k, cap)
        slack = 1e-9 * after
        assert interval > 0
        assert interval >= nominal * (1 - jitter) - slack
        assert interval <= nominal * (1 + jitter) + slack
        assert interval <= cap * (1 + jitter) + slack


def test_backoff_without_jitter_is_exact() -> None:
    schedule = BackoffSchedule(initial=1.0, factor=2.0, cap=5.0, jitter=0.0)
    assert list(itertools.islice(schedule.offsets("app"), 6)) == [1, 3, 7, 12, 17, 22]


def test_jitter_spreads_schedules_apart() -> None:
    first = BackoffSchedule(rng=random.Random(1)).offsets("app")
    second = BackoffSchedule(rng=random.Random(2)).offsets("app")
    assert list(itertools.islice(first, 5)) != list(itertools.islice(second, 5))


@pytest.mark.parametrize(
    "params",
    [
        {"initial": 0.0},
        {"initial": -1.0},
        {"cap": 0.0},
        {"factor": 0.9},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_backoff_rejects_a_schedule_that_cannot_work(params: dict[str, float]) -> None:
    values = {"initial": 1.0, "factor": 1.5, "cap": 15.0, "jitter": 0.1, **params}
    with pytest.raises(ValueError, match="poll schedule"):
        BackoffSchedule(values["initial"], values["factor"], values["cap"], values["jitter"])


# --- InFlight ------------------------------------------------------------------------------


def test_evaluation_seconds_is_the_midpoint_of_what_the_polls_bracket() -> None:
    in_flight = InFlight("http://iq/status/1", submitted_at=100.0)
    assert in_flight.evaluation_seconds is None
    in_flight.pending_until = 2.0
    assert in_flight.evaluation_seconds is None  # still pending
    in_flight.final_at = 3.0
    assert in_flight.evaluation_seconds == 2.5
    first_poll_final = InFlight("http://iq/status/2", submitted_at=0.0, final_at=0.4)
    assert first_poll_final.evaluation_seconds == 0.2


# --- follow, against the simulator -----------------------------------------------------------


@dataclass
class Counting:
    """A strategy that counts the offsets ``follow`` draws and what it observes."""

    inner: PollStrategy
    drawn: int = 0
    observed: list[tuple[str, float, float]] = field(default_factory=list)

    def offsets(self, public_id: str) -> Iterator[float]:
        for offset in self.inner.offsets(public_id):
            self.drawn += 1
            yield offset

    def observe(self, public_id: str, lower: float, upper: float) -> None:
        self.observed.append((public_id, lower, upper))


def settings_for(base_url: str, retry: RetryPolicy | None = None) -> ClientSettings:
    return ClientSettings(
        base_url,
        Credentials("admin", "admin123"),
        retry=retry or RetryPolicy(backoff_base=0.01, backoff_cap=0.05),
    )


async def submit(client: IqClient, sim: Simulator, public_id: str) -> InFlight:
    app = sim.portfolio.by_public_id(public_id)
    assert app is not None
    request = PromoteScanRequest(source_stage_id="build", target_stage_id="build")
    submission = await client.promote_scan(app.id, request)
    return InFlight(submission.status_url, anyio.current_time())


def status_requests(sim: Simulator) -> int:
    return sim.stats.requests_to("promotion-status", "GET")


@pytest.mark.anyio
async def test_follow_stops_at_completed_and_polls_no_more(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(eval_time=0.3, eval_sigma=0.0, eval_noise=0.0) as sim:
        pid = sim.portfolio.applications[0].public_id
        strategy = Counting(FAST_POLLS)
        async with IqClient(settings_for(sim.base_url)) as client:
            in_flight = await submit(client, sim, pid)
            with anyio.fail_after(LIMIT):
                status = await follow(client, in_flight, strategy, pid)
    assert status.state is EvaluationState.COMPLETED
    assert status.report_html_url
    assert in_flight.polls >= 2, "the first polls found it PENDING"
    assert status_requests(sim) == in_flight.polls == strategy.drawn
    assert in_flight.final_at is not None
    assert 0 < in_flight.pending_until < in_flight.final_at
    assert strategy.observed == [(pid, in_flight.pending_until, in_flight.final_at)]
    evaluation = in_flight.evaluation_seconds
    assert evaluation is not None
    assert in_flight.pending_until <= evaluation <= in_flight.final_at


@pytest.mark.anyio
async def test_follow_stops_at_failed_and_polls_no_more(
    doomed_simulator: Simulator,
) -> None:
    sim = doomed_simulator
    strategy = Counting(FAST_POLLS)
    async with IqClient(settings_for(sim.base_url)) as client:
        in_flight = await submit(client, sim, "doomed-app")
        with anyio.fail_after(LIMIT):
            status = await follow(client, in_flight, strategy, "doomed-app")
    assert status.state is EvaluationState.FAILED
    assert status.reason
    assert status_requests(sim) == in_flight.polls == strategy.drawn >= 1
    assert len(strategy.observed) == 1


@pytest.mark.anyio
async def test_follow_cancelled_at_a_deadline_keeps_what_it_knows(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(eval_time=30.0) as sim:
        pid = sim.portfolio.applications[0].public_id
        strategy = Counting(FAST_POLLS)
        async with IqClient(settings_for(sim.base_url)) as client:
            in_flight = await submit(client, sim, pid)
            with anyio.move_on_after(0.4) as deadline:
                await follow(client, in_flight, strategy, pid)
        sent = status_requests(sim)
    assert deadline.cancelled_caught, "a promotion still PENDING is followed until cancelled"
    assert in_flight.polls >= 1
    assert in_flight.polls <= sent <= in_flight.polls + 1  # one may have been cut short
    assert in_flight.final_at is None
    assert in_flight.evaluation_seconds is None
    assert in_flight.pending_until > 0
    assert strategy.observed == [], "nothing is learned from an evaluation that did not end"


# A status URL that answers 429 with Retry-After: the simulator throttles only promoteScan, so
# a small proxy in front of it throttles the first status poll.


@dataclass
class ThrottlingProxy:
    upstream: str
    retry_after: int = 1
    throttle: int = 1
    status_times: list[float] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if "/status/" in request.path:
            self.status_times.append(anyio.current_time())
            if self.throttle > 0:
                self.throttle -= 1
                return web.Response(
                    status=429,
                    text="Too many requests",
                    headers={"Retry-After": str(self.retry_after)},
                )
        headers = {"Authorization": request.headers.get("Authorization", "")}
        if request.content_type == "application/json":
            headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                self.upstream + request.path_qs.lstrip("/"),
                headers=headers,
                data=await request.read(),
            ) as answer,
        ):
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )


@asynccontextmanager
async def throttling_proxy(upstream: str) -> AsyncIterator[ThrottlingProxy]:
    proxy = ThrottlingProxy(upstream)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        proxy.url = f"http://127.0.0.1:{site.port}/"
        yield proxy
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_follow_honours_retry_after_on_a_status_url(simulator: Simulator) -> None:
    pid = simulator.portfolio.applications[0].public_id
    # Without Retry-After, a retry would wait at most 1 ms.
    retry = RetryPolicy(backoff_base=0.001, backoff_cap=0.001)
    strategy = Counting(FAST_POLLS)
    async with (
        throttling_proxy(simulator.base_url) as proxy,
        IqClient(settings_for(proxy.url, retry)) as client,
    ):
        in_flight = await submit(client, simulator, pid)
        assert in_flight.status_url.startswith(proxy.url)
        with capture_logs() as events, anyio.fail_after(LIMIT):
            status = await follow(client, in_flight, strategy, pid)
    assert status.state is EvaluationState.COMPLETED
    retries = [e for e in events if e["event"] == "http.retry"]
    assert [e["status"] for e in retries] == [429]
    assert retries[0]["delay"] >= 1.0
    first, second = proxy.status_times[:2]
    assert second - first >= 0.99, "the retry waited as Retry-After asked"
    assert client.stats.by_kind["status"] == in_flight.polls + 1
    assert len(proxy.status_times) == in_flight.polls + 1
