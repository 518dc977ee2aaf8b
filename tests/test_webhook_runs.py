"""Whole runs with IQ's webhook: the simulator delivers to the run's own listener on
127.0.0.1, and the report says how each promotion was detected.

Correctness only, no timings: polls so late that only a delivery can end a promotion in a
test's time show that a hint frees the slot; lost, foreign, replayed and badly signed
deliveries show that only a status answer ever ends one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
import pytest
from receivers import SECRET, Replayer, free_port
from structlog.testing import capture_logs
from test_runner import config_for, entry, manifest

from orchestrator.errors import AuthError
from orchestrator.iq.models import Stage
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.hints import ListingSweep, WebhookBackstop, WebhookSettings
from orchestrator.promote.polling import BackoffSchedule
from orchestrator.render.html import render_html
from orchestrator.render.markdown import render_markdown
from orchestrator.render.metrics import render_metrics
from orchestrator.report.results import Detection, Outcome
from orchestrator.report.run_report import RunReport
from orchestrator.runner.run import run
from orchestrator.simulator import FaultConfig, Simulator

pytestmark = pytest.mark.anyio
SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]

LIMIT = 25
LATE_POLLS = BackoffSchedule(initial=600.0, factor=1.0, cap=600.0, jitter=0.0)
"""Polls that never come within a test: only a delivery can end a promotion in time."""
QUICK_POLLS = BackoffSchedule(initial=0.05, factor=1.5, cap=0.3)
QUICK_BACKSTOP = WebhookBackstop(spread=1.0, max_gap=0.5)
QUICK_SWEEP = ListingSweep(first=0.05, share=0.25, min_interval=0.05)
PROMOTE = "{from: build, to: stage-release}"


@asynccontextmanager
async def delivering(
    simulator_factory: SimulatorFactory, **overrides: Any
) -> AsyncIterator[tuple[Simulator, int]]:
    """A simulator that delivers to a port a run will listen on, and that port."""
    port = free_port()
    settings = {"webhook_url": f"http://127.0.0.1:{port}/", "webhook_secret": SECRET}
    async with simulator_factory(**(settings | overrides)) as sim:
        yield sim, port


def listening_on(
    port: int,
    secret: str | None = SECRET,
    backstop: WebhookBackstop | None = None,
    sweep: ListingSweep | None = None,
) -> WebhookSettings:
    """Settings for a run's listener; without a ``sweep``, only deliveries and polls end
    promotions, so that a test counts their requests alone."""
    return WebhookSettings(
        ListenAddress("127.0.0.1", port),
        secret,
        backstop=backstop or WebhookBackstop(),
        sweep=sweep,
    )


async def run_with_webhook(
    sim: Simulator,
    port: int,
    count: int,
    *,
    concurrency: int = 4,
    strategy: BackoffSchedule = LATE_POLLS,
    **webhook: Any,
) -> RunReport:
    apps = [a.public_id for a in sim.portfolio.applications[:count]]
    text = manifest(entry(apps, PROMOTE), concurrency=concurrency)
    config = config_for(
        sim,
        text,
        concurrency=concurrency,
        strategy=strategy,
        webhook=listening_on(port, **webhook),
    )
    with anyio.fail_after(LIMIT):
        return await run(config)


def status_requests(sim: Simulator) -> int:
    return sim.stats.requests_to("promotion-status", "GET")


async def test_a_delivery_frees_the_slot_after_one_status_request(
    simulator_factory: SimulatorFactory,
) -> None:
    async with delivering(simulator_factory) as (sim, port):
        report = await run_with_webhook(sim, port, 4, concurrency=1)
        latest = {
            app.public_id: sim.portfolio.latest(app.id, Stage.STAGE_RELEASE)
            for app in sim.portfolio.applications[:4]
        }
    assert report.succeeded
    for result in report.results:
        assert result.detected_by is Detection.WEBHOOK
        assert result.polls == 1, "one status request confirms the hint"
        own = latest[result.public_id or ""]
        assert own is not None
        assert result.report_html_url is not None
        assert result.report_html_url.endswith(f"/report/{own.report_id}")
    assert status_requests(sim) == 4
    assert report.webhook is not None
    assert (report.webhook.accepted, report.webhook.matched, report.webhook.ignored) == (4, 4, 0)
    assert report.webhook.listen == f"127.0.0.1:{port}"
    # Every rendering says so too.
    said = f"Webhook at 127.0.0.1:{port}: 4 received, 4 accepted, 0 rejected, 4 matched"
    assert said in render_markdown(report)
    assert said in render_html(report)
    metrics = render_metrics(report)
    assert 'iq_promote_promotions_detected{manifest="test",by="webhook"} 4' in metrics
    assert 'iq_promote_webhook_deliveries{manifest="test",outcome="matched"} 4' in metrics


async def test_lost_deliveries_cost_polls_never_correctness(
    simulator_factory: SimulatorFactory,
) -> None:
    async with delivering(simulator_factory, webhook_loss=0.5, seed=1) as (sim, port):
        report = await run_with_webhook(sim, port, 8, strategy=QUICK_POLLS, backstop=QUICK_BACKSTOP)
    assert report.succeeded
    lost = {d.application_id for d in sim.stats.webhook_deliveries if d.error == "lost"}
    assert 0 < len(lost) < 8
    by_id = {r.application_id: r for r in report.results}
    for application_id in lost:
        assert by_id[application_id].detected_by is Detection.POLL
    assert all(r.detected_by in (Detection.POLL, Detection.WEBHOOK) for r in report.results)
    assert report.webhook is not None
    assert report.webhook.accepted == 8 - len(lost)


async def test_a_sweep_of_the_listing_finds_the_evaluations_whose_delivery_was_lost(
    simulator_factory: SimulatorFactory,
) -> None:
    """Polls never come in the test's time: each promotion whose delivery was lost is found by
    a sweep, and confirmed by one status request."""
    async with delivering(simulator_factory, webhook_loss=0.5, seed=1) as (sim, port):
        with capture_logs() as events:
            report = await run_with_webhook(sim, port, 8, sweep=QUICK_SWEEP)
    assert report.succeeded
    lost = {d.application_id for d in sim.stats.webhook_deliveries if d.error == "lost"}
    assert 0 < len(lost) < 8
    for result in report.results:
        if result.application_id in lost:
            assert result.detected_by is Detection.LISTING
        else:
            # A sweep may list an evaluation before its delivery comes: whichever is first.
            assert result.detected_by in (Detection.WEBHOOK, Detection.LISTING)
        assert result.polls == 1
    assert sim.stats.requests_to("all-reports", "GET") >= 1
    assert not [e for e in events if e["event"] == "webhook.sweep_stopped"]
    listed = sum(r.detected_by is Detection.LISTING for r in report.results)
    metrics = render_metrics(report)
    assert f'iq_promote_promotions_detected{{manifest="test",by="listing"}} {listed}' in metrics


async def test_a_foreign_evaluation_the_listing_shows_never_ends_a_promotion(
    simulator_factory: SimulatorFactory,
) -> None:
    """While the second promotion runs, a CI scan of its application is evaluated at its
    stage: the sweeps' hints of it (two at most) are refuted by the status, and the
    promotion's own evaluation, delivered or swept, ends it, with its own report."""
    async with delivering(simulator_factory, eval_time=1.0, eval_sigma=0.0, eval_noise=0.0) as (
        sim,
        port,
    ):
        second = sim.portfolio.applications[1]

        async def ci_scan_while_the_second_runs() -> None:
            stats = sim.stats
            while not (stats.evaluations_completed == 1 and stats.running == 1):  # noqa: ASYNC110 - sets no event
                await anyio.sleep(0.01)
            sim.portfolio.add_report(second.id, Stage.STAGE_RELEASE, reevaluation=False)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ci_scan_while_the_second_runs)
            report = await run_with_webhook(sim, port, 3, concurrency=1, sweep=QUICK_SWEEP)
        own = sim.portfolio.latest(second.id, Stage.STAGE_RELEASE)
    assert report.succeeded
    result = report.results[1]
    assert result.application_id == second.id
    assert result.detected_by in (Detection.WEBHOOK, Detection.LISTING)
    assert result.polls in (2, 3), "one or two refuted hints, then its own"
    assert own is not None
    assert result.report_html_url is not None
    assert result.report_html_url.endswith(f"/report/{own.report_id}")
    assert [r.polls for r in (report.results[0], report.results[2])] == [1, 1]


async def test_a_listing_too_large_to_read_stops_the_sweeps_and_polls_find_the_rest(
    simulator_factory: SimulatorFactory,
) -> None:
    too_small = replace(QUICK_SWEEP, max_bytes=64)
    async with delivering(simulator_factory, webhook_loss=0.5, seed=1) as (sim, port):
        with capture_logs() as events:
            report = await run_with_webhook(
                sim, port, 8, strategy=QUICK_POLLS, backstop=QUICK_BACKSTOP, sweep=too_small
            )
    assert report.succeeded
    lost = {d.application_id for d in sim.stats.webhook_deliveries if d.error == "lost"}
    assert lost
    by_id = {r.application_id: r for r in report.results}
    assert all(by_id[a].detected_by is Detection.POLL for a in lost)
    [stopped] = [e for e in events if e["event"] == "webhook.sweep_stopped"]
    assert "larger than" in stopped["reason"]
    assert sim.stats.requests_to("all-reports", "GET") == 1, "one try, then no more"


async def test_foreign_evaluations_never_end_a_promotion(
    simulator_factory: SimulatorFactory,
) -> None:
    """Each promotion comes with a CI scan at another stage, one at its stage that ended a
    minute before it was sent, and one at its stage while it runs: the first two are
    ignored, the third wakes the follower, whose status request finds it still PENDING."""
    async with delivering(
        simulator_factory, webhook_foreign=1.0, eval_time=1.0, eval_sigma=0.0, eval_noise=0.0
    ) as (sim, port):
        report = await run_with_webhook(sim, port, 3)
    assert report.succeeded
    for result in report.results:
        assert result.detected_by is Detection.WEBHOOK
        assert result.polls == 2, "a refuted hint, then the promotion's own"
    assert report.webhook is not None
    assert (report.webhook.matched, report.webhook.ignored) == (6, 6)
    kinds = Counter(d.kind for d in sim.stats.webhook_deliveries if d.status == 204)
    assert kinds == Counter(
        {"promotion": 3, "foreign-other-stage": 3, "foreign-before": 3, "foreign-during": 3}
    )


async def test_a_replayed_delivery_is_ignored(simulator_factory: SimulatorFactory) -> None:
    listener_port = free_port()
    async with delivering(simulator_factory) as (sim, port):
        replayer = Replayer(f"http://127.0.0.1:{listener_port}/")
        async with replayer.serving(port):
            report = await run_with_webhook(sim, listener_port, 3)
    assert report.succeeded
    assert [r.polls for r in report.results] == [1, 1, 1]
    assert report.webhook is not None
    assert (report.webhook.matched, report.webhook.duplicates) == (3, 3)
    assert replayer.answers == [204] * 6


async def test_badly_signed_deliveries_are_refused_and_polling_completes_the_run(
    simulator_factory: SimulatorFactory,
) -> None:
    async with delivering(simulator_factory, webhook_secret="not-the-secret") as (sim, port):
        report = await run_with_webhook(sim, port, 3, strategy=QUICK_POLLS)
    assert report.succeeded
    assert all(r.detected_by is Detection.POLL for r in report.results)
    assert report.webhook is not None
    assert report.webhook.rejected["badSignature"] == 3
    assert report.webhook.accepted == 0
    assert sim.stats.webhook_answers == Counter({401: 3})


async def test_unsigned_deliveries_are_refused_unless_insecure(
    simulator_factory: SimulatorFactory,
) -> None:
    async with delivering(simulator_factory, webhook_secret=None) as (sim, port):
        refused = await run_with_webhook(sim, port, 2, strategy=QUICK_POLLS)
        taken = await run_with_webhook(sim, port, 2, secret=None)
    assert refused.webhook is not None
    assert refused.webhook.rejected["unsigned"] == 2
    assert all(r.detected_by is Detection.POLL for r in refused.results)
    assert taken.succeeded
    assert all(r.detected_by is Detection.WEBHOOK for r in taken.results)


async def test_the_older_payload_is_a_hint_too(simulator_factory: SimulatorFactory) -> None:
    async with delivering(simulator_factory, webhook_format="legacy") as (sim, port):
        report = await run_with_webhook(sim, port, 2)
    assert report.succeeded
    assert all(r.detected_by is Detection.WEBHOOK and r.polls == 1 for r in report.results)


async def test_the_listener_is_closed_when_the_run_ends(
    simulator_factory: SimulatorFactory,
) -> None:
    async with delivering(simulator_factory) as (sim, port):
        report = await run_with_webhook(sim, port, 1)
        assert report.succeeded
        with pytest.raises(OSError, match="connection attempts failed"):
            await anyio.connect_tcp("127.0.0.1", port)
        text = manifest(entry([sim.portfolio.applications[0].public_id], PROMOTE))
        refused = config_for(sim, text, password="wrong", webhook=listening_on(port))
        with anyio.fail_after(LIMIT), pytest.raises(AuthError):
            await run(refused)
        with pytest.raises(OSError, match="connection attempts failed"):
            await anyio.connect_tcp("127.0.0.1", port)


async def test_the_secret_is_in_no_log_event_and_no_report(
    simulator_factory: SimulatorFactory,
) -> None:
    async with delivering(simulator_factory) as (sim, port):
        with capture_logs() as events:
            report = await run_with_webhook(sim, port, 2)
    assert report.succeeded
    assert SECRET not in report.to_json()
    assert not any(SECRET in str(event) for event in events)
    listening = [e for e in events if e["event"] == "webhook.listening"]
    assert [(e["address"], e["signed"]) for e in listening] == [(f"127.0.0.1:{port}", True)]
    [summary] = [e for e in events if e["event"] == "run.summary"]
    assert summary["webhook"]["matched"] == 2
    assert summary["webhook"]["rejected"]["badSignature"] == 0


async def test_a_failed_evaluation_is_found_by_polling(
    simulator_factory: SimulatorFactory,
) -> None:
    """IQ's event is for completed evaluations; one that fails is the backstop's to find."""
    async with delivering(simulator_factory, faults=FaultConfig(failing_rate=1.0)) as (sim, port):
        report = await run_with_webhook(sim, port, 2, strategy=QUICK_POLLS)
    assert [r.status for r in report.results] == [Outcome.FAILED, Outcome.FAILED]
    assert all(r.detected_by is Detection.POLL for r in report.results)
    assert report.webhook is not None
    assert report.webhook.received == 0
