"""Progress of a run: the tracker's counts, the snapshot's fields and line, the ``run.progress``
events off a terminal and the live bar on one."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import anyio
import pytest
from rich.console import Console
from sample_reports import result
from structlog.testing import capture_logs

from orchestrator.cli.progress import show_progress
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import parse_manifest
from orchestrator.promote.events import StepKey
from orchestrator.promote.polling import BackoffSchedule
from orchestrator.promote.progress import ProgressSnapshot, ProgressTracker, log_progress
from orchestrator.report.results import Outcome
from orchestrator.runner.config import RunConfig
from orchestrator.runner.run import run
from orchestrator.simulator import Simulator


def key(n: int) -> StepKey:
    return (0, 0, f"app-{n}")


def finish(tracker: ProgressTracker, n: int, status: Outcome) -> None:
    tracker.finished(key(n), result(f"app-{n}", status))


def test_a_new_tracker_knows_nothing() -> None:
    snap = ProgressTracker().snapshot()
    assert (snap.total, snap.finished, snap.in_flight, snap.by_status) == (0, 0, 0, {})
    assert snap.rate is None
    assert snap.eta is None


def test_planned_sets_the_total_and_counts_what_an_earlier_run_finished() -> None:
    tracker = ProgressTracker()
    tracker.planned(10, Counter({Outcome.COMPLETED: 3, Outcome.FAILED: 1}))
    snap = tracker.snapshot()
    assert snap.total == 10
    assert snap.finished == 4
    assert snap.by_status == {Outcome.COMPLETED: 3, Outcome.FAILED: 1}
    assert tracker.carried == 4
    assert snap.rate is None  # nothing finished by this process yet
    assert snap.eta is None


def test_planned_without_carried_results() -> None:
    tracker = ProgressTracker()
    tracker.planned(5)
    assert tracker.carried == 0
    assert tracker.snapshot().finished == 0


def test_submitted_is_in_flight_until_finished() -> None:
    tracker = ProgressTracker()
    tracker.planned(3)
    anyio.run(tracker.intent, key(1))
    assert tracker.snapshot().in_flight == 0  # not yet accepted by the server
    tracker.submitted(key(1), "status/1", 1)
    tracker.submitted(key(2), "status/2", 2)
    tracker.submitted(key(2), "status/2", 2)  # told twice, counted once
    assert tracker.snapshot().in_flight == 2
    finish(tracker, 1, Outcome.COMPLETED)
    snap = tracker.snapshot()
    assert snap.in_flight == 1
    assert snap.finished == 1


def test_finished_counts_by_status_with_the_carried_ones() -> None:
    tracker = ProgressTracker()
    tracker.planned(8, Counter({Outcome.COMPLETED: 2}))
    for n, status in enumerate(
        [Outcome.COMPLETED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED, Outcome.COMPLETED]
    ):
        tracker.submitted(key(n), f"status/{n}", 1)
        finish(tracker, n, status)
    snap = tracker.snapshot()
    assert snap.by_status == {
        Outcome.COMPLETED: 4,
        Outcome.FAILED: 1,
        Outcome.ERROR: 1,
        Outcome.SKIPPED: 1,
    }
    assert snap.finished == 7
    assert snap.in_flight == 0
    assert snap.rate is not None
    assert snap.rate > 0
    assert snap.eta == pytest.approx(1 / snap.rate)  # one left, at the rate of this process


def test_a_finished_step_never_submitted_still_counts() -> None:
    """A SKIPPED step (its chain broke) or an unresolved application is never in flight."""
    tracker = ProgressTracker()
    tracker.planned(2)
    finish(tracker, 1, Outcome.SKIPPED)
    snap = tracker.snapshot()
    assert (snap.finished, snap.in_flight) == (1, 0)


def test_eta_is_zero_when_everything_finished() -> None:
    tracker = ProgressTracker()
    tracker.planned(2)
    finish(tracker, 1, Outcome.COMPLETED)
    finish(tracker, 2, Outcome.COMPLETED)
    assert tracker.snapshot().eta == 0


SNAPSHOT = ProgressSnapshot(
    total=120,
    finished=45,
    by_status={Outcome.FAILED: 2, Outcome.COMPLETED: 40, Outcome.ERROR: 3},
    in_flight=12,
    elapsed=93.456,
    rate=0.5123,
    eta=146.38,
)


def test_snapshot_fields_are_the_progress_event() -> None:
    assert SNAPSHOT.fields() == {
        "total": 120,
        "finished": 45,
        "inFlight": 12,
        "byStatus": {"COMPLETED": 40, "ERROR": 3, "FAILED": 2},
        "elapsedSeconds": 93.5,
        "perMinute": 30.7,
        "etaSeconds": 146,
    }
    assert list(SNAPSHOT.fields()["byStatus"]) == ["COMPLETED", "ERROR", "FAILED"]


def test_snapshot_fields_without_a_rate() -> None:
    snap = ProgressSnapshot(
        total=3, finished=0, by_status={}, in_flight=0, elapsed=0.04, rate=None, eta=None
    )
    fields = snap.fields()
    assert fields["perMinute"] is None
    assert fields["etaSeconds"] is None
    assert fields["byStatus"] == {}
    assert fields["elapsedSeconds"] == 0.0


def test_describe_is_one_line_of_counts() -> None:
    assert SNAPSHOT.describe() == "12 in flight, 40 completed, 3 error, 2 failed"
    empty = ProgressSnapshot(
        total=3, finished=0, by_status={}, in_flight=2, elapsed=1.0, rate=None, eta=None
    )
    assert empty.describe() == "2 in flight"


async def _until(predicate: Any) -> None:
    with anyio.fail_after(10):
        while not predicate():  # noqa: ASYNC110 - what is awaited sets no event
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_log_progress_emits_run_progress_events_once_planned() -> None:
    tracker = ProgressTracker()
    with capture_logs() as events:
        async with anyio.create_task_group() as tg:
            tg.start_soon(log_progress, tracker, 0.01)
            await anyio.sleep(0.05)
            assert events == []  # no plan yet: nothing to say
            tracker.planned(4, Counter({Outcome.COMPLETED: 1}))
            tracker.submitted(key(2), "status/2", 1)
            await _until(lambda: len(events) >= 2)
            tg.cancel_scope.cancel()
    assert {e["event"] for e in events} == {"run.progress"}
    first = events[0]
    assert first["log_level"] == "info"
    assert first["total"] == 4
    assert first["finished"] == 1
    assert first["inFlight"] == 1
    assert first["byStatus"] == {"COMPLETED": 1}
    assert set(first) == {"event", "log_level", *SNAPSHOT.fields()}


@pytest.mark.anyio
async def test_show_progress_draws_a_bar_and_its_final_state() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    tracker = ProgressTracker()
    tracker.planned(4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(show_progress, tracker, console)
        await _until(lambda: "promotions" in out.getvalue())
        finish(tracker, 1, Outcome.COMPLETED)
        finish(tracker, 2, Outcome.COMPLETED)
        finish(tracker, 3, Outcome.FAILED)
        tracker.submitted(key(4), "status/4", 1)
        tg.cancel_scope.cancel()
    text = out.getvalue()
    assert "\x1b[" in text  # drawn for a terminal
    assert "promotions" in text
    assert "3/4" in text  # the final state is drawn when the display stops
    assert "1 in flight, 2 completed, 1 failed" in text


def _config(sim: Simulator, public_ids: list[str], tracker: ProgressTracker) -> RunConfig:
    text = (
        "version: 1\npromotions:\n"
        f"  - applications: [{', '.join(public_ids)}]\n"
        "    transitions: [{from: build, to: stage-release}, {from: stage-release, to: release}]\n"
    )
    return RunConfig(
        manifest=parse_manifest(text, source="progress.yaml", env={}),
        manifest_path="progress.yaml",
        client=ClientSettings(sim.base_url, Credentials("admin", "admin123")),
        concurrency=2,
        handle_signals=False,
        strategy=BackoffSchedule(initial=0.02, factor=1.5, cap=0.2),
        progress=tracker,
    )


@pytest.mark.anyio
async def test_the_tracker_follows_a_real_run(simulator: Simulator) -> None:
    pids = [a.public_id for a in simulator.portfolio.applications[:4]]
    tracker = ProgressTracker()
    with anyio.fail_after(30):
        report = await run(_config(simulator, pids, tracker))
    snap = tracker.snapshot()
    assert snap.total == 8
    assert snap.finished == 8
    assert snap.in_flight == 0
    assert snap.by_status == {s: n for s, n in report.summary.by_status.items() if n}


@pytest.mark.anyio
async def test_the_tracker_counts_unknown_applications_as_finished(simulator: Simulator) -> None:
    known = simulator.portfolio.applications[0].public_id
    tracker = ProgressTracker()
    with anyio.fail_after(30):
        report = await run(_config(simulator, [known, "no-such-app"], tracker))
    assert report.summary.by_status[Outcome.ERROR] == 2
    snap = tracker.snapshot()
    assert snap.total == 4
    assert snap.finished == 4
