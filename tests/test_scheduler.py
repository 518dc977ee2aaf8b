"""The scheduler against the real simulator: bounds, chains, timeouts, stops and resumes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from orchestrator.iq.client import IqClient
from orchestrator.iq.models import PromoteScanRequest, Stage
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import parse_manifest
from orchestrator.promote.control import RunControl
from orchestrator.promote.events import Prior, StepKey, step_key
from orchestrator.promote.plan import ApplicationWork, Plan, Step, resolve_plan
from orchestrator.promote.polling import BackoffSchedule
from orchestrator.promote.scheduler import ADMISSION_SLACK, Schedule, Scheduler
from orchestrator.promote.step_results import Attempted, step_result
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.simulator import EvaluationRecord, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
FAST_POLLS = BackoffSchedule(initial=0.02, factor=1.5, cap=0.1)
LIMIT = 30
BUILD = "{from: build, to: build}"
TO_RELEASE = "{from: build, to: release}"
RELEASE = "{from: release, to: release}"


def manifest_text(*entries: tuple[Sequence[str], Sequence[str]]) -> str:
    text = "version: 1\npromotions:\n"
    for public_ids, transitions in entries:
        text += f"  - applications: [{', '.join(public_ids)}]\n    transitions:\n"
        text += "".join(f"      - {t}\n" for t in transitions)
    return text


@dataclass
class Recorder:
    """A listener that keeps every call, in order."""

    events: list[tuple[str, StepKey, Any]] = field(default_factory=list)
    on_submitted: Callable[[StepKey], None] | None = None

    async def intent(self, key: StepKey) -> None:
        self.events.append(("intent", key, None))

    def submitted(self, key: StepKey, status_url: str, attempts: int) -> None:
        self.events.append(("submitted", key, (status_url, attempts)))
        if self.on_submitted is not None:
            self.on_submitted(key)

    def finished(self, key: StepKey, result: PromotionResult) -> None:
        self.events.append(("finished", key, result))

    def kinds(self, key: StepKey) -> list[str]:
        return [kind for kind, k, _ in self.events if k == key]

    def intents(self) -> list[StepKey]:
        return [k for kind, k, _ in self.events if kind == "intent"]


@dataclass
class Session:
    sim: Simulator
    client: IqClient
    plan: Plan

    def scheduler(self, *, control: RunControl | None = None, **changes: Any) -> Scheduler:
        """A scheduler of the plan: concurrency 4, fast polls, unless ``changes`` say otherwise."""
        schedule = Schedule(strategy=FAST_POLLS, concurrency=4, promotion_timeout=LIMIT)
        if "listeners" in changes:
            changes["listeners"] = tuple(changes["listeners"])
        return Scheduler(self.plan, self.client, replace(schedule, **changes), control)

    def keys(self) -> dict[int, StepKey]:
        """Each planned step's key, by position."""
        return {
            s.position: step_key(s, w.target.public_id) for w in self.plan.work for s in w.steps
        }


@asynccontextmanager
async def session(sim: Simulator, text: str) -> AsyncIterator[Session]:
    settings = ClientSettings(
        sim.base_url,
        Credentials("admin", "admin123"),
        retry=RetryPolicy(backoff_base=0.02, backoff_cap=0.2),
    )
    async with IqClient(settings) as client:
        plan = await resolve_plan(parse_manifest(text, env={}), client)
        yield Session(sim, client, plan)


async def run(
    scheduler: Scheduler, order: Sequence[ApplicationWork] | None = None
) -> list[PromotionResult]:
    with anyio.fail_after(LIMIT):
        return await scheduler.run(order)


def peak_outstanding(records: Sequence[EvaluationRecord]) -> int:
    """Most evaluations queued or running on the server at one instant."""
    events = sorted([(r.finished_at, -1) for r in records] + [(r.enqueued_at, 1) for r in records])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def app_ids(sim: Simulator, public_ids: Sequence[str]) -> dict[str, str]:
    found = {}
    for pid in public_ids:
        app = sim.portfolio.by_public_id(pid)
        assert app is not None
        found[app.id] = pid
    return found


# --- the bound and one application at a time ----------------------------------------------


async def test_no_more_evaluations_outstanding_than_the_concurrency(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(workers=16, eval_time=0.05) as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:12]]
        text = manifest_text((pids, [BUILD]), (pids[:4], [RELEASE]))
        async with session(sim, text) as s:
            results = await run(s.scheduler(concurrency=3, promotion_timeout=LIMIT))
        records = list(sim.stats.evaluations)
    assert [r.status for r in results] == [Outcome.COMPLETED] * 16
    assert len(records) == 16
    assert peak_outstanding(records) <= 3
    assert sim.stats.max_running <= 3
    assert peak_outstanding(records) >= 2, "applications do run concurrently"


async def test_one_application_never_has_two_promotions_at_once(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(workers=16, eval_time=0.05) as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:4]]
        busy = pids[0]
        text = manifest_text(
            ([busy, *pids[1:]], [BUILD, TO_RELEASE]),
            (pids[1:], [RELEASE]),
            ([busy], [RELEASE, BUILD]),
        )
        recorder = Recorder()
        async with session(sim, text) as s:
            results = await run(
                s.scheduler(
                    concurrency=8,
                    promotion_timeout=LIMIT,
                    listeners=[recorder],
                )
            )
        records = list(sim.stats.evaluations)
    assert {r.status for r in results} == {Outcome.COMPLETED}
    by_app: dict[str, list[EvaluationRecord]] = {}
    for record in records:
        by_app.setdefault(record.application_id, []).append(record)
    (busy_id,) = app_ids(sim, [busy])
    assert len(by_app[busy_id]) == 4
    for spans in by_app.values():
        spans.sort(key=lambda r: r.enqueued_at)
        for earlier, later in itertools.pairwise(spans):
            assert later.enqueued_at >= earlier.finished_at
    busy_order = [(e, t) for e, t, pid in recorder.intents() if pid == busy]
    assert busy_order == [(0, 0), (0, 1), (2, 0), (2, 1)], "its chains run in manifest order"
    assert peak_outstanding(records) >= 2


# --- chains, failures and timeouts ---------------------------------------------------------


async def test_a_failure_skips_the_rest_of_its_chain_only(simulator: Simulator) -> None:
    portfolio = simulator.portfolio
    # An application with a build scan but none at release: IQ refuses to promote "release".
    unreleased = next(
        a.public_id
        for a in portfolio.applications
        if portfolio.latest(a.id, Stage.BUILD) and not portfolio.latest(a.id, Stage.RELEASE)
    )
    healthy = portfolio.applications[0].public_id
    text = manifest_text(
        ([unreleased, healthy], [RELEASE, TO_RELEASE, BUILD]),
        ([unreleased], [BUILD]),
    )
    async with session(simulator, text) as s:
        results = await run(s.scheduler())
    assert [(r.public_id, r.transition_index, r.status) for r in results] == [
        (unreleased, 0, Outcome.ERROR),
        (unreleased, 1, Outcome.SKIPPED),
        (unreleased, 2, Outcome.SKIPPED),
        (healthy, 0, Outcome.COMPLETED),
        (healthy, 1, Outcome.COMPLETED),
        (healthy, 2, Outcome.COMPLETED),
        (unreleased, 0, Outcome.COMPLETED),  # its next chain still runs
    ]
    failed, skipped = results[0], results[1]
    assert failed.reason
    assert "release" in failed.reason
    assert skipped.reason
    assert "ERROR" in skipped.reason
    assert skipped.attempts == 0
    assert skipped.status_url is None
    unreleased_id = next(iter(app_ids(simulator, [unreleased])))
    # The refused promotion was never accepted; the chain of the second entry still ran.
    assert simulator.stats.promotions_accepted[unreleased_id] == 1


async def test_a_promotion_past_its_timeout_is_timed_out_with_its_status_url(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(eval_time=30.0, eval_sigma=0.0, workers=2) as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:1]]
        text = manifest_text((pids, [BUILD, RELEASE]))
        recorder = Recorder()
        async with session(sim, text) as s:
            results = await run(
                s.scheduler(
                    concurrency=2,
                    promotion_timeout=0.3,
                    listeners=[recorder],
                )
            )
    timed_out, skipped = results
    assert timed_out.status is Outcome.TIMED_OUT
    assert timed_out.reason
    assert "0.3 s" in timed_out.reason
    ((_, _, (status_url, attempts)),) = [e for e in recorder.events if e[0] == "submitted"]
    assert timed_out.status_url == status_url
    assert timed_out.attempts == attempts == 1
    assert timed_out.polls >= 1
    assert timed_out.evaluation_seconds is None
    assert skipped.status is Outcome.SKIPPED
    assert skipped.reason
    assert "TIMED_OUT" in skipped.reason


async def test_unresolved_steps_are_errors_in_their_place(simulator: Simulator) -> None:
    pid = simulator.portfolio.applications[0].public_id
    text = manifest_text((["ghost", pid], [BUILD]))
    async with session(simulator, text) as s:
        results = await run(s.scheduler())
    assert [(r.public_id, r.status) for r in results] == [
        ("ghost", Outcome.ERROR),
        (pid, Outcome.COMPLETED),
    ]
    assert results[0].reason
    assert "not known" in results[0].reason


# --- listeners -----------------------------------------------------------------------------


async def test_listeners_hear_intent_then_submitted_then_finished(
    doomed_simulator: Simulator,
) -> None:
    sim = doomed_simulator
    pids = [a.public_id for a in sim.portfolio.applications[:3]]
    text = manifest_text((["doomed-app", *pids], [BUILD, TO_RELEASE]))
    recorder = Recorder()
    async with session(sim, text) as s:
        results = await run(s.scheduler(listeners=[recorder]))
        keys = s.keys()
    assert len(keys) == len(results) == 8
    for position, key in keys.items():
        result = results[position]
        finished = [r for kind, k, r in recorder.events if kind == "finished" and k == key]
        assert finished == [result]
        if result.status is Outcome.SKIPPED:
            assert recorder.kinds(key) == ["finished"]
            continue
        assert recorder.kinds(key) == ["intent", "submitted", "finished"]
        ((status_url, attempts),) = [
            extra for kind, k, extra in recorder.events if kind == "submitted" and k == key
        ]
        assert result.status_url == status_url
        assert result.attempts == attempts
    statuses = {r.status for r in results}
    assert statuses == {Outcome.COMPLETED, Outcome.FAILED, Outcome.SKIPPED}


# --- stopping ------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [Outcome.CANCELLED, Outcome.ERROR])
async def test_stop_submitting_lets_in_flight_finish_and_sends_nothing_more(
    simulator: Simulator, outcome: Outcome
) -> None:
    pids = [a.public_id for a in simulator.portfolio.applications[:5]]
    text = manifest_text((pids, [BUILD, TO_RELEASE]))
    control = RunControl()
    recorder = Recorder(
        on_submitted=lambda _key: control.stop_submitting("maintenance window", outcome=outcome)
    )
    async with session(simulator, text) as s:
        results = await run(
            s.scheduler(
                concurrency=1,
                promotion_timeout=LIMIT,
                control=control,
                listeners=[recorder],
            )
        )
    first, *rest = results
    assert first.status is Outcome.COMPLETED, "the promotion in flight finished"
    assert first.status_url
    for result in rest:
        assert result.status is outcome
        assert result.reason == "maintenance window"
        assert result.status_url is None
        assert result.attempts == 0
    assert sum(simulator.stats.promotions_accepted.values()) == 1
    assert simulator.stats.requests_to("promote-scan", "POST") == 1
    assert len(recorder.intents()) == 1


async def test_a_stopped_scheduler_sends_nothing(simulator: Simulator) -> None:
    pids = [a.public_id for a in simulator.portfolio.applications[:3]]
    control = RunControl()
    control.stop_submitting("stopped before the start")
    async with session(simulator, manifest_text((pids, [BUILD]))) as s:
        results = await run(s.scheduler(control=control))
    assert {r.status for r in results} == {Outcome.CANCELLED}
    assert simulator.stats.requests_to("promote-scan") == 0


# --- order ---------------------------------------------------------------------------------


async def test_submissions_follow_the_order_given(simulator: Simulator) -> None:
    pids = [a.public_id for a in simulator.portfolio.applications[:6]]
    recorder = Recorder()
    async with session(simulator, manifest_text((pids, [BUILD]))) as s:
        order = [s.plan.work[i] for i in (4, 1, 5, 0, 3, 2)]
        results = await run(
            s.scheduler(
                concurrency=1,
                promotion_timeout=LIMIT,
                listeners=[recorder],
            ),
            order,
        )
    wanted = [w.target.public_id for w in order]
    assert [pid for _, _, pid in recorder.intents()] == wanted
    by_app = app_ids(simulator, pids)
    records = sorted(simulator.stats.evaluations, key=lambda r: r.enqueued_at)
    assert [by_app[r.application_id] for r in records] == wanted
    assert [r.public_id for r in results] == pids, "results stay in manifest order"


async def test_the_first_submissions_are_the_first_of_the_order(simulator: Simulator) -> None:
    pids = [a.public_id for a in simulator.portfolio.applications[:8]]
    recorder = Recorder()
    async with session(simulator, manifest_text((pids, [BUILD]))) as s:
        order = list(reversed(s.plan.work))
        await run(
            s.scheduler(
                concurrency=3,
                promotion_timeout=LIMIT,
                listeners=[recorder],
            ),
            order,
        )
    first = {pid for _, _, pid in recorder.intents()[:3]}
    assert first == {w.target.public_id for w in order[:3]}


# --- resuming ------------------------------------------------------------------------------


async def test_prior_results_are_kept_and_accepted_promotions_are_followed(
    simulator: Simulator,
) -> None:
    done, accepted, fresh = (a.public_id for a in simulator.portfolio.applications[:3])
    ids = {pid: app_id for app_id, pid in app_ids(simulator, [done, accepted, fresh]).items()}
    text = manifest_text(([done, accepted, fresh], [BUILD, TO_RELEASE]))
    recorder = Recorder()
    async with session(simulator, text) as s:
        # An earlier run: `accepted`'s first promotion was sent and never followed to its end.
        submission = await s.client.promote_scan(
            ids[accepted], PromoteScanRequest(source_stage_id="build", target_stage_id="build")
        )
        keys = s.keys()
        done_step: Step = next(st for w in s.plan.work for st in w.steps if st.position == 0)
        kept = step_result(
            done_step,
            status=Outcome.COMPLETED,
            reason=None,
            public_id=done,
            attempted=Attempted(status_url="http://earlier/status/1", attempts=1, polls=4),
        )
        submitted_at = datetime(2026, 1, 1, tzinfo=UTC)
        prior = {
            keys[0]: Prior(result=kept),
            keys[2]: Prior(
                status_url=submission.status_url, attempts=2, polls=3, submitted_at=submitted_at
            ),
        }
        simulator.stats.reset()
        results = await run(s.scheduler(prior=prior, listeners=[recorder]))
    assert results[0] == kept
    assert recorder.kinds(keys[0]) == []
    assert [r.status for r in results] == [Outcome.COMPLETED] * 6
    resumed = results[2]
    assert resumed.status_url == submission.status_url
    assert resumed.attempts == 2
    assert resumed.polls >= 4, "polls of the earlier run are counted on"
    assert resumed.submitted_at == submitted_at
    assert recorder.kinds(keys[2]) == ["submitted", "finished"], "no intent: nothing is sent"
    # One POST for every step but the kept one and the resumed one.
    assert simulator.stats.requests_to("promote-scan", "POST") == 4
    assert simulator.stats.promotions_accepted[ids[done]] == 1  # its second step only
    assert simulator.stats.promotions_accepted[ids[accepted]] == 1  # its second step only


async def test_a_prior_failure_still_skips_the_rest_of_its_chain(simulator: Simulator) -> None:
    pid = simulator.portfolio.applications[0].public_id
    async with session(simulator, manifest_text(([pid], [BUILD, TO_RELEASE]))) as s:
        first = s.plan.work[0].chains[0].steps[0]
        failed = step_result(first, status=Outcome.FAILED, reason="no", public_id=pid)
        results = await run(s.scheduler(prior={s.keys()[0]: Prior(result=failed)}))
    assert [r.status for r in results] == [Outcome.FAILED, Outcome.SKIPPED]
    assert simulator.stats.requests_to("promote-scan") == 0


# --- after_completion ----------------------------------------------------------------------


async def test_the_completion_hook_replaces_the_result(
    doomed_simulator: Simulator,
) -> None:
    sim = doomed_simulator
    pids = [a.public_id for a in sim.portfolio.applications[:2]]
    seen: list[tuple[int, Outcome]] = []

    async def hook(step: Step, result: PromotionResult) -> PromotionResult:
        seen.append((step.position, result.status))
        await anyio.lowlevel.checkpoint()
        return result.model_copy(update={"reason": f"checked {result.public_id}"})

    recorder = Recorder()
    async with session(sim, manifest_text(([*pids, "doomed-app"], [BUILD]))) as s:
        results = await run(s.scheduler(after_completion=hook, listeners=[recorder]))
    assert sorted(seen) == [(0, Outcome.COMPLETED), (1, Outcome.COMPLETED)]
    assert [r.reason for r in results[:2]] == [f"checked {pid}" for pid in pids]
    assert results[2].status is Outcome.FAILED
    assert results[2].reason
    assert not results[2].reason.startswith("checked")
    finished = [r for kind, _, r in recorder.events if kind == "finished"]
    assert sorted(r.reason or "" for r in finished if r.status is Outcome.COMPLETED) == sorted(
        f"checked {pid}" for pid in pids
    )


# --- admission -----------------------------------------------------------------------------


async def test_application_tasks_start_as_slots_come_near_not_all_at_once(
    simulator_factory: SimulatorFactory,
) -> None:
    """A portfolio of thousands would otherwise hold a waiting task per application; and a
    task done with one application goes on to the next, rather than one being made for each."""
    apps = [f"admitted-{n:03d}" for n in range(120)]
    async with (
        simulator_factory(extra_applications=tuple((p, None) for p in apps), apps=0) as sim,
        session(sim, manifest_text((apps, [BUILD]))) as s,
    ):
        tasks: list[int] = []
        sending: set[int] = set()

        def submitted(_: StepKey) -> None:
            tasks.append(len(asyncio.all_tasks()))
            sending.add(id(asyncio.current_task()))

        recorder = Recorder(on_submitted=submitted)
        results = await run(s.scheduler(concurrency=2, listeners=[recorder]))
    assert [r.status for r in results] == [Outcome.COMPLETED] * len(apps)
    assert len(tasks) == len(apps)
    # 2 x 2 + ADMISSION_SLACK application tasks at most, beside the simulator's and the
    # client's own; the whole portfolio at once would be over 120.
    assert max(tasks) < 2 * 2 + ADMISSION_SLACK + 40
    assert len(sending) <= 2 * 2 + ADMISSION_SLACK


async def test_a_bound_that_grows_mid_run_gets_the_tasks_to_fill_it(
    simulator_factory: SimulatorFactory,
) -> None:
    """``concurrency: auto`` raises the bound as the server keeps up: more application tasks
    start, so more promotions are out at once than the first bound allowed tasks for."""
    apps = [f"growing-{n:03d}" for n in range(80)]
    limiter = anyio.CapacityLimiter(1)

    def grow(_: StepKey) -> None:
        limiter.total_tokens = 30

    async with (
        simulator_factory(
            extra_applications=tuple((p, None) for p in apps), apps=0, workers=64, eval_time=0.5
        ) as sim,
        session(sim, manifest_text((apps, [BUILD]))) as s,
    ):
        recorder = Recorder(on_submitted=grow)
        results = await run(s.scheduler(limiter=limiter, listeners=[recorder]))
    assert [r.status for r in results] == [Outcome.COMPLETED] * len(apps)
    out, most = 0, 0
    for kind, _, _ in recorder.events:
        out += {"submitted": 1, "finished": -1}.get(kind, 0)
        most = max(most, out)
    assert most > 2 * 1 + ADMISSION_SLACK


async def test_a_post_sent_but_never_answered_is_sent_again_with_a_warning(
    simulator: Simulator,
) -> None:
    """The earlier run died between sending a POST and recording its answer: the server may
    have accepted it. The resume sends it once more and says so."""
    pid = simulator.portfolio.applications[0].public_id
    sent_at = datetime(2026, 1, 1, 2, 30, tzinfo=UTC)
    async with session(simulator, manifest_text(([pid], [BUILD]))) as s:
        prior = {s.keys()[0]: Prior(sent_unanswered_at=sent_at)}
        with capture_logs() as events:
            results = await run(s.scheduler(prior=prior))
    assert [r.status for r in results] == [Outcome.COMPLETED]
    assert simulator.stats.requests_to("promote-scan", "POST") == 1
    [resent] = [e for e in events if e["event"] == "promotion.resent"]
    assert resent["publicId"] == pid
    assert resent["sentAt"] == sent_at.isoformat()
    assert resent["log_level"] == "warning"


async def test_a_resumed_promotion_whose_status_was_forgotten_is_found_not_resent(
    simulator: Simulator,
) -> None:
    """The next morning the server answers 404 for last night's status URL: the report it
    made is found in the history, and nothing is sent again."""
    pid = simulator.portfolio.applications[0].public_id
    async with session(simulator, manifest_text(([pid], [BUILD]))) as s:
        before = datetime.now(UTC)
        app_id = s.plan.work[0].target.application_id
        submission = await s.client.promote_scan(
            app_id, PromoteScanRequest(source_stage_id="build", target_stage_id="build")
        )
        while not (await s.client.promotion_status(submission.status_url)).final:  # noqa: ASYNC110 - polling is what is tested around
            await anyio.sleep(0.01)
        assert simulator.forget_statuses() == 1
        simulator.stats.reset()
        prior = {
            s.keys()[0]: Prior(status_url=submission.status_url, attempts=1, submitted_at=before)
        }
        with capture_logs() as events:
            results = await run(s.scheduler(prior=prior))
    [result] = results
    assert result.status is Outcome.COMPLETED
    assert simulator.stats.requests_to("promote-scan") == 0
    newest = simulator.portfolio.latest(app_id, Stage.BUILD)
    assert newest is not None
    assert result.report_data_url is not None
    assert newest.report_id in result.report_data_url
    assert [e["found"] for e in events if e["event"] == "promotion.status_lost"] == ["its report"]
