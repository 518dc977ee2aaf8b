"""Each injected fault, seen from a client over loopback, and never on ``__simulator``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import anyio
import pytest

from orchestrator.simulator import FaultConfig, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
HEADERS = {"Authorization": aiohttp.encode_basic_auth("admin", "admin123")}
LIMIT = 20
BUILD_TO_BUILD = {"sourceStageId": "build", "targetStageId": "build"}


async def status_of(http: aiohttp.ClientSession, url: str) -> int:
    """The status of a GET, or 0 when the connection failed or was dropped."""
    try:
        async with http.get(url, headers=HEADERS) as response:
            await response.read()
            return response.status
    except aiohttp.ClientError:
        return 0


async def statuses(sim: Simulator, count: int, path: str = "api/v2/applications") -> list[int]:
    async with aiohttp.ClientSession() as http:
        return [await status_of(http, sim.base_url + path) for _ in range(count)]


async def test_a_fail_rate_answers_some_requests_5xx_in_plain_text(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(faults=FaultConfig(fail_rate=0.5)) as sim:
        with anyio.fail_after(LIMIT):
            seen = await statuses(sim, 60)
            stats = await statuses(sim, 5, "__simulator/stats")
            async with (
                aiohttp.ClientSession() as http,
                http.get(sim.base_url + "api/v2/organizations", headers=HEADERS) as response,
            ):
                body = await response.text()
                kind = response.headers["Content-Type"]
        errors = [s for s in seen if s != 200]
        assert 10 <= len(errors) <= 50
        assert set(errors) <= {500, 502, 503}
        assert len(set(errors)) > 1
        assert stats == [200] * 5  # the simulator's own endpoints are never faulted
        assert sum(sim.stats.faults.values()) == len(errors) + (response.status != 200)
        if response.status != 200:
            assert kind.startswith("text/plain")
            assert "simulated" in body


async def test_faults_are_reproducible_with_the_same_seed(
    simulator_factory: SimulatorFactory,
) -> None:
    faults = FaultConfig(fail_rate=0.3, drop_rate=0.2)
    runs: list[list[int]] = []
    for seed in (5, 5, 6):
        async with simulator_factory(seed=seed, faults=faults) as sim:
            with anyio.fail_after(LIMIT):
                runs.append(await statuses(sim, 30))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert set(runs[0]) > {200}


async def test_dropped_connections_get_no_answer(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(faults=FaultConfig(drop_rate=1.0)) as sim:
        with anyio.fail_after(LIMIT):
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(sim.base_url + "api/v2/applications", headers=HEADERS):
                        pass
            assert await statuses(sim, 3, "__simulator/stats") == [200] * 3
        assert sim.stats.faults["drop"] >= 1  # the client may retry a dropped GET once
        assert sim.stats.requests_to("applications", "GET") == sim.stats.faults["drop"]


async def test_a_deep_queue_answers_promote_scan_429_with_retry_after(
    simulator_factory: SimulatorFactory,
) -> None:
    faults = FaultConfig(throttle_queue_depth=2, retry_after=3.0)
    async with simulator_factory(workers=1, eval_time=30.0, eval_sigma=0.0, faults=faults) as sim:
        answers: list[tuple[int, str | None]] = []
        with anyio.fail_after(LIMIT):
            async with aiohttp.ClientSession() as http:
                for app in sim.portfolio.applications[:8]:
                    url = f"{sim.base_url}api/v2/evaluation/applications/{app.id}/promoteScan"
                    async with http.post(url, json=BUILD_TO_BUILD, headers=HEADERS) as response:
                        answers.append((response.status, response.headers.get("Retry-After")))
                # Reads are not throttled, only new evaluations.
                assert await status_of(http, sim.base_url + "api/v2/applications") == 200
        assert (429, "3") in answers
        assert {status for status, _ in answers} == {200, 429}
        assert sim.stats.max_queue_depth <= 2
        assert sim.stats.faults["429"] == sum(s == 429 for s, _ in answers)
        assert sum(sim.stats.promotions_accepted.values()) == sum(s == 200 for s, _ in answers)


async def test_latency_delays_api_answers(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(faults=FaultConfig(latency=2.0, latency_jitter=0.0)) as sim:
        with anyio.fail_after(LIMIT):
            timeout = aiohttp.ClientTimeout(total=0.2)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                with pytest.raises(TimeoutError):
                    async with http.get(sim.base_url + "api/v2/applications", headers=HEADERS):
                        pass
                async with http.get(sim.base_url + "__simulator/stats") as response:
                    assert response.status == 200


@pytest.mark.parametrize("by_rate", [False, True])
async def test_failing_applications_end_failed_with_a_reason(
    simulator_factory: SimulatorFactory, by_rate: bool
) -> None:
    doomed = "doomed-app"
    faults = FaultConfig(failing_rate=1.0) if by_rate else FaultConfig(failing_apps=(doomed,))
    async with simulator_factory(faults=faults, extra_applications=((doomed, None),)) as sim:
        healthy = sim.portfolio.applications[0]
        target = sim.portfolio.by_public_id(doomed)
        assert target is not None
        outcomes: dict[str, dict[str, str]] = {}
        with anyio.fail_after(LIMIT):
            async with aiohttp.ClientSession() as http:
                for app in (target, healthy):
                    url = f"{sim.base_url}api/v2/evaluation/applications/{app.id}/promoteScan"
                    async with http.post(url, json=BUILD_TO_BUILD, headers=HEADERS) as response:
                        status_url = sim.base_url + (await response.json())["statusUrl"]
                    while True:
                        async with http.get(status_url, headers=HEADERS) as response:
                            answer: dict[str, str] = await response.json()
                        if answer["status"] != "PENDING":
                            outcomes[app.public_id] = answer
                            break
                        await anyio.sleep(0.01)
        assert outcomes[doomed]["status"] == "FAILED"
        assert outcomes[doomed]["reason"]
        assert "reportDataUrl" not in outcomes[doomed]
        expected = "FAILED" if by_rate else "COMPLETED"
        assert outcomes[healthy.public_id]["status"] == expected


async def wait_for(sim: Simulator, up: bool) -> None:
    """Poll until the server answers (up) or stops answering (down)."""
    async with aiohttp.ClientSession() as http:
        while True:
            if (await status_of(http, sim.base_url + "api/v2/applications") == 200) == up:
                return
            await anyio.sleep(0.02)


async def test_an_outage_refuses_then_recovers(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        async with aiohttp.ClientSession() as kept_alive:
            url = simulator.base_url + "api/v2/applications"
            assert await status_of(kept_alive, url) == 200
            async with anyio.create_task_group() as tg:
                tg.start_soon(simulator.outage, 0.5)
                await wait_for(simulator, up=False)
                assert await status_of(kept_alive, url) == 0  # open connections are dropped too
            assert await status_of(kept_alive, url) == 200
        await wait_for(simulator, up=True)
    assert simulator.stats.faults["outage"] >= 1


async def test_a_scheduled_outage_comes_and_goes(simulator_factory: SimulatorFactory) -> None:
    faults = FaultConfig(outage_after=0.2, outage_for=0.5)
    async with simulator_factory(faults=faults) as sim:
        with anyio.fail_after(LIMIT):
            await wait_for(sim, up=False)
            await wait_for(sim, up=True)
