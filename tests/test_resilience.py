"""Whole runs against a simulator that misbehaves: 5xx, dropped connections, throttling, an
outage, a server that never comes back, and an application that always fails; and, through a
test proxy in front of it, a server that fails every request once the plan is resolved.

Every test is bounded twice: by the size of its portfolio and by ``anyio.fail_after``. The
bounds on requests are measured at the simulator or the proxy (what reached them) and, for
refused connections nobody sees, in the client's own ``http.retry`` log events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from frontends import Front
from structlog.testing import capture_logs
from test_runner import config_for, entry, manifest

from orchestrator.iq.breaker import RetryBudget
from orchestrator.render import RenderOutputs
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport
from orchestrator.runner.config import RunConfig
from orchestrator.runner.run import run
from orchestrator.simulator import FaultConfig, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]


def scanned(sim: Simulator, count: int) -> list[str]:
    """Public ids of ``count`` applications with a scan at build (the newest tenth has none)."""
    apps = sim.portfolio.applications
    usable = apps[: len(apps) - len(apps) // 10]
    assert len(usable) >= count
    return [a.public_id for a in usable[:count]]


def evaluations_per_app(sim: Simulator) -> Counter[str]:
    """How many evaluations the simulator ran for each application (by public id)."""
    counts: Counter[str] = Counter()
    for record in sim.stats.evaluations:
        app = sim.portfolio.application(record.application_id)
        assert app is not None
        counts[app.public_id] += 1
    return counts


def connection_errors(events: list[MutableMapping[str, Any]]) -> int:
    """Attempts the client saw fail without an answer (refused or dropped), as it logged them."""
    return sum(1 for e in events if e["event"] == "http.retry" and e["status"] is None)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on the simulator's counters (they set no event)."""
    while not condition():  # noqa: ASYNC110 - what is awaited sets no event
        await anyio.sleep(0.01)


def statuses(report: RunReport) -> Counter[Outcome]:
    return Counter(r.status for r in report.results)


async def test_5xx_drops_and_throttling_lose_nothing_and_duplicate_only_dropped_posts(
    simulator_factory: SimulatorFactory,
) -> None:
    faults = FaultConfig(fail_rate=0.1, drop_rate=0.03, throttle_queue_depth=3, retry_after=0.0)
    async with simulator_factory(apps=56, workers=4, eval_time=0.03, faults=faults, seed=11) as sim:
        apps = scanned(sim, 50)
        text = manifest(entry(apps, "{from: build, to: build}"), concurrency=8)
        with anyio.fail_after(90):
            report = await run(config_for(sim, text, concurrency=8))
        evaluations = evaluations_per_app(sim)
        injected = Counter(sim.stats.faults)
        accepted = sum(sim.stats.promotions_accepted.values())

    assert statuses(report) == {Outcome.COMPLETED: len(apps)}
    assert injected["drop"] > 0
    assert injected["500"] + injected["502"] + injected["503"] > 0
    assert injected["429"] > 0
    # Each POST attempt makes at most one evaluation, and every application got its own.
    attempts = {r.public_id: r.attempts for r in report.results}
    assert set(evaluations) == set(apps)
    assert all(evaluations[app] <= attempts[app] for app in apps)
    # A promotion is evaluated more than once only when the answer to its POST was lost: the
    # connection dropped after the server may have accepted the POST (a real IQ Server may
    # well have queued the evaluation), so the client cannot know and sends it again, which
    # is safe (one more report). 5xx and 429 answers are final: the server says it did not
    # take the evaluation, so their retries never duplicate. The simulator counts drops of
    # every route, so its count bounds the dropped POSTs from above.
    duplicates = sum(n - 1 for n in evaluations.values())
    assert duplicates <= injected["drop"]
    assert accepted == sum(evaluations.values())
    print(f"faults: {dict(injected)}; duplicate evaluations: {duplicates}")


async def test_a_short_outage_mid_run_is_waited_out_without_hammering_the_server(
    simulator_factory: SimulatorFactory,
) -> None:
    """The server goes away for 3 s, mid-run. The issue speaks of 10 s; 3 s keeps the suite
    quick and is already long enough for the breaker to open (five failures in well under a
    second at these retry delays) and to probe twice (after 1 s, then 2 s more), which is all a
    longer outage adds. Every promotion still completes, and the failed attempts stay near
    the breaker's threshold plus its probes, not retries x promotions."""
    outage = 3.0
    async with simulator_factory(apps=45, workers=4, eval_time=0.08, eval_sigma=0.2, seed=5) as sim:
        apps = scanned(sim, 40)
        text = manifest(entry(apps, "{from: build, to: build}"), concurrency=8)
        with capture_logs() as events, anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                reports: list[RunReport] = []

                async def go() -> None:
                    reports.append(await run(config_for(sim, text, concurrency=8)))

                tg.start_soon(go)
                await until(lambda: sim.stats.evaluations_completed >= 10)
                await sim.outage(outage)
                seen_during = dict(sim.stats.faults)
        evaluations = evaluations_per_app(sim)

    (report,) = reports
    assert statuses(report) == {Outcome.COMPLETED: len(apps)}
    assert sorted(evaluations.values()) == [1] * len(apps)
    names = [e["event"] for e in events]
    assert "server.unavailable" in names  # the breaker opened
    assert "server.back" in names  # and a probe found the server again
    failed, dropped = connection_errors(events), seen_during.get("outage", 0)
    print(f"{outage:g} s outage: {failed} failed attempts, {dropped} requests dropped")
    # Without the breaker, 8 promotions retrying every <= 0.2 s for 3 s would fail ~120 times.
    # With it: the five that open it, the attempts already past it (at most one per
    # promotion in flight), and one probe per interval (1 s, 2 s, ...).
    bound = 5 + 8 + outage
    assert failed <= bound
    # aiohttp itself repeats an idempotent request once when a kept-alive connection dies
    # under it, so the server may see up to two requests per failed attempt.
    assert dropped <= 2 * bound


async def test_a_ten_second_outage_is_survived_with_one_promotion_in_flight(
    simulator_factory: SimulatorFactory,
) -> None:
    """The issue's ten seconds, at concurrency 1 (as at the tail of any run, when a single
    promotion is left): the server's absence is the breaker's to judge, for up to the
    down timeout, not the retry policy's."""
    async with simulator_factory(apps=12, workers=1, eval_time=0.3, eval_sigma=0.0) as sim:
        apps = scanned(sim, 3)
        text = manifest(entry(apps, "{from: build, to: build}"), concurrency=1)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                reports: list[RunReport] = []

                async def go() -> None:
                    reports.append(await run(config_for(sim, text, concurrency=1)))
                    tg.cancel_scope.cancel()  # ended early (the bug): end the outage too

                tg.start_soon(go)
                await until(lambda: sim.stats.evaluations_completed >= 1)
                await sim.outage(10.0)

    assert statuses(reports[0]) == {Outcome.COMPLETED: len(apps)}


async def test_an_outage_past_the_down_timeout_ends_the_run_and_keeps_every_item(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    report_path, metrics = tmp_path / "report.json", tmp_path / "iq.prom"
    async with simulator_factory(apps=45, workers=2, eval_time=0.2, eval_sigma=0.0, seed=5) as sim:
        apps = scanned(sim, 40)
        text = manifest(entry(apps, "{from: build, to: build}"), concurrency=6)
        config = config_for(
            sim,
            text,
            concurrency=6,
            server_down_timeout=1.5,
            report_path=report_path,
            outputs=RenderOutputs(metrics=metrics),
        )
        with capture_logs() as events, anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                reports: list[RunReport] = []

                async def go() -> None:
                    reports.append(await run(config))
                    tg.cancel_scope.cancel()  # the run ended by itself: end the outage too

                tg.start_soon(go)
                await until(lambda: sim.stats.evaluations_completed >= 6)
                await sim.outage(50.0)  # far longer than the test may take
        accepted = {
            app.public_id
            for app_id in sim.stats.promotions_accepted
            if (app := sim.portfolio.application(app_id)) is not None
        }

    (report,) = reports
    # The server went away: exit 3 (not 1, an application's failure), and the night's report
    # and metrics are written all the same, every item in them.
    assert report.exit_code == 3
    assert report.error is not None
    assert "server unavailable" in report.error
    assert RunReport.model_validate_json(report_path.read_text()).results == report.results
    assert 'iq_promote_last_run_exit_code{manifest="test"} 3' in metrics.read_text()
    assert [r.public_id for r in report.results] == apps  # nothing lost, in manifest order
    by_status = statuses(report)
    assert by_status[Outcome.COMPLETED] >= 1
    assert by_status[Outcome.ERROR] >= 1
    assert set(by_status) <= {Outcome.COMPLETED, Outcome.ERROR, Outcome.CANCELLED}
    for result in report.results:
        if result.status is Outcome.COMPLETED:
            continue
        assert result.reason is not None
        assert "server unavailable" in result.reason
        if result.public_id in accepted:
            # Accepted before the server went: resumable by the status URL it kept.
            assert result.status is Outcome.CANCELLED
            assert result.status_url is not None
        else:
            assert result.status is Outcome.ERROR
            assert result.status_url is None
    print(f"outcomes: {dict(by_status)}")
    assert "admin123" not in report.to_json()
    assert "admin123" not in str(events)
    assert connection_errors(events) <= 5 + 6 + 3  # threshold, in flight, probes in 1.5 s


async def test_resuming_a_run_that_lost_the_server_sends_what_was_never_sent(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    async with simulator_factory(apps=25, workers=2, eval_time=0.2, eval_sigma=0.0, seed=5) as sim:
        apps = scanned(sim, 16)
        text = manifest(entry(apps, "{from: build, to: build}"))
        config = config_for(sim, text, server_down_timeout=1.0, state_dir=tmp_path)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                reports: list[RunReport] = []

                async def go() -> None:
                    reports.append(await run(config))
                    tg.cancel_scope.cancel()

                tg.start_soon(go)
                await until(lambda: sim.stats.evaluations_completed >= 3)
                await sim.outage(50.0)
            assert statuses(reports[0])[Outcome.ERROR] > 0  # some were never sent
            resumed = await run(replace(config, resume=True))
        evaluations = evaluations_per_app(sim)

    assert sorted(evaluations.values()) == [1] * len(apps)
    assert statuses(resumed) == {Outcome.COMPLETED: len(apps)}


async def test_an_application_whose_evaluations_always_fail_skips_only_its_chain(
    simulator_factory: SimulatorFactory,
) -> None:
    doomed = "doomed-app"
    async with simulator_factory(
        apps=12,
        workers=4,
        faults=FaultConfig(failing_apps=(doomed,), fail_rate=0.05),
        extra_applications=((doomed, None),),
        seed=2,
    ) as sim:
        healthy = scanned(sim, 8)
        text = manifest(
            entry(
                [doomed, *healthy],
                "{from: build, to: stage-release}",
                "{from: stage-release, to: release}",
                "{from: release, to: operate}",
            ),
            entry([doomed], "{from: operate, to: operate}"),  # its own, later chain
        )
        with anyio.fail_after(60):
            report = await run(config_for(sim, text))

    by_app: dict[str, list[tuple[int, Outcome]]] = {}
    for result in report.results:
        assert result.public_id is not None
        by_app.setdefault(result.public_id, []).append((result.entry_index, result.status))
    assert by_app.pop(doomed) == [
        (0, Outcome.FAILED),
        (0, Outcome.SKIPPED),
        (0, Outcome.SKIPPED),
        (1, Outcome.FAILED),  # a chain of its own is tried, not skipped
    ]
    assert by_app == {app: [(0, Outcome.COMPLETED)] * 3 for app in healthy}
    failed, skipped = report.results[0], report.results[1]
    assert failed.reason is not None
    assert "could not be processed" in failed.reason  # the server's own words
    assert failed.status_url is not None
    assert skipped.reason == "earlier transition build -> stage-release ended FAILED"
    assert skipped.attempts == 0
    assert skipped.status_url is None


@dataclass(slots=True)
class FailingProxy:
    """A reverse proxy in front of the simulator, as a load balancer in front of IQ Server.

    It forwards every request until the first promoteScan; from then on it answers the next
    requests itself with the statuses of ``script``, in turn, and after them with ``then``
    (forever), or forwards again when ``then`` is None. So a run resolves its plan against a
    healthy server and then meets a failing one. It counts what it failed, by method.
    """

    upstream: str
    script: list[int] = field(default_factory=list)
    then: int | None = None
    triggered: bool = False
    forwarded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    url: str = ""

    def _failure(self, request: web.Request) -> int | None:
        self.triggered = self.triggered or request.path.endswith("/promoteScan")
        if not self.triggered:
            return None
        return self.script.pop(0) if self.script else self.then

    async def handle(self, request: web.Request) -> web.StreamResponse:
        status = self._failure(request)
        if status is not None:
            self.failed[request.method] += 1
            headers = {"Retry-After": "0"} if status == 429 else None
            return web.Response(status=status, text="failing (test proxy)", headers=headers)
        self.forwarded += 1
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                self.upstream + request.path_qs.lstrip("/"),
                headers={k: v for k, v in request.headers.items() if k in FORWARDED},
                data=await request.read(),
            ) as answer,
        ):
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FailingProxy]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        try:
            yield self
        finally:
            await runner.cleanup()


def through(proxy: FailingProxy, config: RunConfig, **retry: Any) -> RunConfig:
    """``config`` with its client sent through ``proxy``, retrying as given."""
    assert config.client is not None
    policy = replace(config.client.retry, **retry)
    return replace(config, client=replace(config.client, base_url=proxy.url, retry=policy))


FORWARDED = ("Authorization", "Content-Type", "Accept")


async def test_a_server_failing_every_request_gets_a_bounded_number_of_retries(
    simulator_factory: SimulatorFactory,
) -> None:
    """Every promoteScan answered 500: each promotion ends ERROR after its attempts, the run
    ends by itself, and the retries stay within the budget (a fifth of the first attempts plus
    two a second, after a small initial allowance) instead of every promotion retrying at
    backoff speed. 500, unlike 502/503/504, is not a sign of an absent server, so this is the
    budget's work, not the circuit breaker's."""
    items, attempts = 10, 3
    async with simulator_factory(apps=25) as sim:
        apps = scanned(sim, items)
        async with FailingProxy(sim.base_url, then=500).serving() as proxy:
            text = manifest(entry(apps, "{from: build, to: build}"), concurrency=items)
            config = through(proxy, config_for(sim, text, concurrency=items), max_attempts=attempts)
            started = anyio.current_time()
            with capture_logs() as events, anyio.fail_after(60):
                report = await run(config)
            elapsed = anyio.current_time() - started
        accepted = sum(sim.stats.promotions_accepted.values())

    assert statuses(report) == {Outcome.ERROR: items}
    for result in report.results:
        assert result.reason is not None
        assert "HTTP 500" in result.reason
        assert f"after {attempts} attempts" in result.reason
    assert accepted == 0
    posts = proxy.failed["POST"]
    assert posts == items * attempts  # every promotion gave up after its attempts, no more
    retries = sum(1 for e in events if e["event"] == "http.retry")
    assert retries == items * (attempts - 1)
    first = proxy.forwarded + proxy.failed.total() - retries  # the plan's look-ups included
    budget = RetryBudget()
    allowance = budget.tokens + budget.ratio * first + budget.min_per_second * elapsed
    print(f"{retries} retries in {elapsed:.2f} s; the budget allows {allowance:.1f}")
    assert retries > budget.tokens + budget.ratio * first  # the budget had to slow them down
    assert retries <= allowance + 0.5


@pytest.mark.parametrize("answer", [500, 429])
async def test_a_probe_answered_with_an_error_ends_the_outage(
    simulator_factory: SimulatorFactory, answer: int
) -> None:
    """Five 503s open the breaker; its probe is answered ``answer``: the server is there again,
    busy or failing, and every request may go again (a 500 is retried under the budget, a 429
    after its Retry-After). The probe must not keep the next request waiting until the
    breaker gives up on a server that answers. One promotion at a time, so that the probe is
    the sixth request, always."""
    async with simulator_factory(apps=12) as sim:
        apps = scanned(sim, 2)
        async with FailingProxy(sim.base_url, script=[503] * 5 + [answer]).serving() as proxy:
            text = manifest(entry(apps, "{from: build, to: build}"), concurrency=1)
            # Give up after 4 s away: the probe goes at 1 s, a lost probe is given up at 16 s.
            config = config_for(sim, text, concurrency=1, server_down_timeout=4.0)
            with capture_logs() as events, anyio.fail_after(60):
                report = await run(through(proxy, config, max_attempts=20))

    breaker = [e["event"] for e in events if e["event"].startswith("server.")]
    assert breaker == ["server.unavailable", "server.back"]
    assert statuses(report) == {Outcome.COMPLETED: len(apps)}
    assert report.results[0].attempts == 7  # five 503s, the probe, the accepted POST
    assert proxy.failed["POST"] == 6


async def test_credentials_refused_mid_run_end_it_with_exit_3_and_lose_nothing(
    simulator_factory: SimulatorFactory,
) -> None:
    """The password is rotated in the night: every request is refused from some point on.
    The run ends as a server failure; accepted promotions stay resumable by their status URL
    and the rest are sent by the resume, none is a final ERROR."""
    async with simulator_factory(apps=12, workers=2, eval_time=0.5, eval_sigma=0.0, seed=3) as sim:
        apps = scanned(sim, 8)
        refused = False

        async def rotated(request: web.Request) -> web.StreamResponse | None:
            return web.Response(status=401, text="Unauthorized") if refused else None

        async with Front(sim.base_url, before=rotated).serving() as front:
            text = manifest(entry(apps, "{from: build, to: build}"), concurrency=4)
            config = config_for(sim, text, concurrency=4)
            assert config.client is not None
            config = replace(config, client=replace(config.client, base_url=front.url))
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    reports: list[RunReport] = []

                    async def go() -> None:
                        reports.append(await run(config))

                    tg.start_soon(go)
                    await until(lambda: len(sim.stats.promotions_accepted) >= 2)
                    refused = True
    (report,) = reports
    assert report.exit_code == 3
    assert report.error is not None
    assert "refused the credentials" in report.error
    accepted = set(sim.stats.promotions_accepted)
    for result in report.results:
        if result.status is Outcome.COMPLETED:
            continue
        assert result.resumable, result
        if result.application_id in accepted:
            assert result.status is Outcome.CANCELLED
            assert result.status_url is not None
