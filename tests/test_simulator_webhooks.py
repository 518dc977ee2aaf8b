"""The simulator's webhook deliveries, as a receiver sees them: IQ's headers, a signature of
the raw body, the current and the older payload, never a retry, a seeded share lost, and
foreign evaluations beside a promotion's own."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
import pytest
from receivers import SECRET, Recorder

from orchestrator.iq.models import Stage
from orchestrator.simulator import Simulator

pytestmark = pytest.mark.anyio
SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
LIMIT = 20
AUTH = {"Authorization": aiohttp.encode_basic_auth("admin", "admin123")}


async def promote(sim: Simulator, count: int, target: str = "stage-release") -> list[str]:
    """Promote the build scans of the first ``count`` applications; their ids."""
    ids = [app.id for app in sim.portfolio.applications[:count]]
    async with aiohttp.ClientSession() as http:
        for app_id in ids:
            path = f"api/v2/evaluation/applications/{app_id}/promoteScan"
            body = {"sourceStageId": "build", "targetStageId": target}
            async with http.post(sim.base_url + path, json=body, headers=AUTH) as answer:
                assert answer.status == 200
    return ids


async def until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - what is awaited sets no event
        await anyio.sleep(0.005)


def payload(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(body)
    return document


async def test_every_completed_evaluation_is_delivered_signed_as_iq_sends_it(
    simulator_factory: SimulatorFactory,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(LIMIT):
        async with (
            recorder.serving(),
            simulator_factory(webhook_url=recorder.url, webhook_secret=SECRET) as sim,
        ):
            ids = await promote(sim, 3)
            await until(lambda: len(recorder.received) == 3)
            reports = {i: sim.portfolio.latest(i, Stage.STAGE_RELEASE) for i in ids}
    delivered = {payload(r.body)["applicationEvaluation"]["ownerId"]: r for r in recorder.received}
    assert set(delivered) == set(ids)
    for app_id, received in delivered.items():
        headers = received.headers
        assert received.method == "POST"
        assert headers["X-Nexus-Webhook-Id"] == "iq:applicationEvaluation"
        assert uuid.UUID(headers["X-Nexus-Webhook-Delivery"]).version == 4
        assert headers["X-Nexus-Webhook-Signature-Algorithm"] == "HmacSHA1"
        expected = hmac.new(SECRET.encode(), received.body, hashlib.sha1).hexdigest()
        assert headers["X-Nexus-Webhook-Signature"] == expected
        assert headers["Content-Type"] == "application/json; charset=UTF-8"
        assert headers["User-Agent"].startswith("Sonatype_CLM_Server/")
        evaluation = payload(received.body)["applicationEvaluation"]
        report = reports[app_id]
        assert report is not None
        assert evaluation["application"]["id"] == app_id
        assert evaluation["application"]["publicId"]
        assert evaluation["stage"] == "stage-release"
        assert evaluation["reportId"] == report.report_id, "the new report is named"
        assert evaluation["evaluationDate"].endswith("+0000")
        assert evaluation["outcome"] in ("fail", "warn", "none")
        assert evaluation["affectedComponentCount"] >= evaluation["criticalComponentCount"]
    assert len({r.headers["X-Nexus-Webhook-Delivery"] for r in recorder.received}) == 3
    assert sim.stats.webhook_answers == Counter({204: 3})


async def test_without_a_secret_deliveries_are_unsigned(
    simulator_factory: SimulatorFactory,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(LIMIT):
        async with recorder.serving(), simulator_factory(webhook_url=recorder.url) as sim:
            await promote(sim, 1)
            await until(lambda: len(recorder.received) == 1)
    assert "X-Nexus-Webhook-Signature" not in recorder.received[0].headers


async def test_the_older_format_names_the_application_only_by_owner_id(
    simulator_factory: SimulatorFactory,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(LIMIT):
        async with (
            recorder.serving(),
            simulator_factory(webhook_url=recorder.url, webhook_format="legacy") as sim,
        ):
            [app_id] = await promote(sim, 1)
            await until(lambda: len(recorder.received) == 1)
    document = payload(recorder.received[0].body)
    assert set(document) == {"applicationEvaluation"}
    evaluation = document["applicationEvaluation"]
    assert evaluation["ownerId"] == app_id
    assert "application" not in evaluation
    assert "reportId" not in evaluation


async def test_a_refused_delivery_is_never_retried(simulator_factory: SimulatorFactory) -> None:
    recorder = Recorder(status=500)
    with anyio.fail_after(LIMIT):
        async with recorder.serving(), simulator_factory(webhook_url=recorder.url) as sim:
            await promote(sim, 2)
            await until(lambda: len(sim.stats.webhook_deliveries) == 2)
            await until(lambda: sim.stats.evaluations_completed == 2)
            await anyio.sleep(0.2)  # room for a retry, were there one
    assert len(recorder.received) == 2
    assert [d.status for d in sim.stats.webhook_deliveries] == [500, 500]


async def test_a_receiver_that_is_not_there_costs_the_delivery(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(webhook_url="http://127.0.0.1:1/") as sim:
        with anyio.fail_after(LIMIT):
            await promote(sim, 2)
            await until(lambda: sim.stats.webhooks_failed == 2)
    assert all(d.error for d in sim.stats.webhook_deliveries)


async def test_a_seeded_share_is_lost(simulator_factory: SimulatorFactory) -> None:
    recorder = Recorder()
    with anyio.fail_after(LIMIT):
        async with (
            recorder.serving(),
            simulator_factory(webhook_url=recorder.url, webhook_loss=0.5, seed=3) as sim,
        ):
            await promote(sim, 12)
            await until(lambda: len(sim.stats.webhook_deliveries) == 12)
    lost = sim.stats.webhooks_lost
    assert 0 < lost < 12
    assert len(recorder.received) == 12 - lost
    assert Counter(d.error for d in sim.stats.webhook_deliveries)["lost"] == lost


async def test_foreign_evaluations_come_beside_the_promotions_own(
    simulator_factory: SimulatorFactory,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(LIMIT):
        async with (
            recorder.serving(),
            simulator_factory(webhook_url=recorder.url, webhook_foreign=1.0) as sim,
        ):
            [app_id] = await promote(sim, 1, target="release")
            # The simulator counts a delivery once its answer is in, after the recorder has it.
            await until(lambda: len(recorder.received) == len(sim.stats.webhook_deliveries) == 4)
    kinds = Counter(d.kind for d in sim.stats.webhook_deliveries)
    assert kinds == Counter(
        {"promotion": 1, "foreign-other-stage": 1, "foreign-before": 1, "foreign-during": 1}
    )
    evaluations = [payload(r.body)["applicationEvaluation"] for r in recorder.received]
    assert {e["application"]["id"] for e in evaluations} == {app_id}
    assert sorted(e["stage"] for e in evaluations) == ["build", "release", "release", "release"]
    assert len({e["reportId"] for e in evaluations}) == 4
