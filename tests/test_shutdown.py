"""Signals: the first stops submissions and cancels after the grace, a second cancels at once.

The signals are real: the test sends them to its own process while ``watch_signals`` has
them routed to the event loop (it waits for that first, so a signal never reaches pytest).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest
from test_runner import config_for, entry, manifest

from orchestrator.promote.control import RunControl
from orchestrator.promote.signals import watch_signals
from orchestrator.report.results import Outcome
from orchestrator.runner.run import run
from orchestrator.simulator import FaultConfig, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
LIMIT = 20


async def until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - what is awaited sets no event
        await anyio.sleep(0.005)


async def signals_routed(*signums: int) -> None:
    """Wait until the event loop, not Python's default handling, receives these signals."""
    defaults = (signal.SIG_DFL, signal.default_int_handler)
    await until(lambda: all(signal.getsignal(s) not in defaults for s in signums))


async def in_scope(control: RunControl, cancelled: list[float]) -> None:
    """Stand-in for the scheduler: it runs under the control's scope until cancelled."""
    with control.scope:
        await anyio.sleep(LIMIT)
    cancelled.append(anyio.current_time())


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"]
)
async def test_the_first_signal_stops_submitting_and_cancels_after_the_grace(
    signum: int,
) -> None:
    control = RunControl()
    cancelled: list[float] = []
    grace = 0.5
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_signals, control, grace)
            tg.start_soon(in_scope, control, cancelled)
            await signals_routed(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            assert not control.stopping
            os.kill(os.getpid(), signum)
            await until(lambda: control.signal is not None)
            sent = anyio.current_time()
            assert control.signal == signum
            assert control.stopping
            assert control.stop_reason == f"stopped by {signal.Signals(signum).name}"
            assert control.stop_outcome is Outcome.CANCELLED
            assert not control.scope.cancel_called  # in-flight work keeps its grace
            await until(lambda: bool(cancelled))
            tg.cancel_scope.cancel()  # the runner cancels the watcher when the run is over
    assert cancelled[0] - sent >= grace * 0.9  # not before the grace (clock granularity aside)


async def test_a_second_signal_cancels_at_once() -> None:
    control = RunControl()
    cancelled: list[float] = []
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_signals, control, 3600.0)  # a grace no test would wait out
            tg.start_soon(in_scope, control, cancelled)
            await signals_routed(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: control.signal is not None)
            assert not control.scope.cancel_called
            os.kill(os.getpid(), signal.SIGINT)
            # Both the work and the watcher end by themselves: the task group just returns.
    assert control.scope.cancel_called
    assert cancelled
    assert control.signal == signal.SIGTERM  # the first signal is the one reported


async def test_a_signal_mid_run_cancels_what_is_in_flight_and_sends_nothing_new(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    """The runner's own watcher: after SIGTERM no POST goes out; with no grace the promotions
    in flight are CANCELLED with their status URL; the never started are CANCELLED without."""
    async with simulator_factory(apps=24, workers=2, eval_time=0.3, eval_sigma=0.0) as sim:
        apps = [a.public_id for a in sim.portfolio.applications]
        text = manifest(entry(apps, "{from: build, to: build}"))
        config = config_for(sim, text, handle_signals=True, grace=0.0, state_dir=tmp_path)
        control = RunControl()
        reports = []
        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:

                async def go() -> None:
                    reports.append(await run(config, control=control))

                tg.start_soon(go)
                await until(lambda: sim.stats.evaluations_completed >= 4)
                await signals_routed(signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
        accepted = sum(sim.stats.promotions_accepted.values())
        evaluated = sim.stats.evaluations_completed

    (report,) = reports
    assert control.signal == signal.SIGTERM
    assert len(report.results) == len(apps)
    by_status = report.summary.by_status
    assert 0 < by_status[Outcome.COMPLETED] <= evaluated
    assert by_status[Outcome.CANCELLED] > 0
    assert by_status[Outcome.COMPLETED] + by_status[Outcome.CANCELLED] == len(apps)
    submitted = [r for r in report.results if r.status_url is not None]
    assert len(submitted) == accepted  # every POST the server took is in the report
    for result in report.results:
        if result.status is Outcome.CANCELLED:
            assert result.reason == "stopped by SIGTERM"
            # In flight: resumable by its URL. Never submitted: never sent.
            assert (result.status_url is None) == (result.attempts == 0)
    in_flight = [r for r in report.results if r.status is Outcome.CANCELLED and r.status_url]
    assert 0 < len(in_flight) <= 4  # the concurrency


async def test_the_end_of_the_grace_stops_a_run_still_resolving_its_plan(
    simulator_factory: SimulatorFactory,
) -> None:
    """Resolving the plan can be slow (a server that answers slowly or goes away after the
    first look-up); a cancelled run must not wait for it, and has sent nothing."""
    async with simulator_factory(faults=FaultConfig(latency=5.0, latency_jitter=0.0)) as sim:
        pid = sim.portfolio.applications[0].public_id
        control = RunControl()
        config = config_for(sim, manifest(entry([pid], "{from: build, to: build}")))
        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:

                async def stop_soon() -> None:
                    await anyio.sleep(0.3)
                    control.stop_submitting("stopped by SIGTERM")
                    control.cancel()

                tg.start_soon(stop_soon)
                report = await run(config, control=control)
        promotions = sim.stats.requests_to("promote-scan")
    # Had the look-up been waited for, the plan's one step would be here, CANCELLED.
    assert report.results == []
    assert promotions == 0
