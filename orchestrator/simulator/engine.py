"""The evaluation engine: a fixed pool of workers behind a FIFO queue, as on a real server.

Submitting never blocks: over-submission waits in the queue. Each application has its own
evaluation time (lognormal around the median), varied a little from run to run.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
from aiohttp import web
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.iq.models import Application, EvaluationState, PromotionStatus, Stage
from orchestrator.simulator.config import SimulatorConfig
from orchestrator.simulator.portfolio import Portfolio, Report, new_id
from orchestrator.simulator.stats import EvaluationRecord, SimulatorStats
from orchestrator.simulator.webhooks import WebhookSender


@dataclass(slots=True)
class Promotion:
    """What a status URL reports: PENDING until a worker finishes the evaluation."""

    application_id: str
    public_id: str
    status_id: str
    submitted_at: float
    """``SimulatorStats.now()`` when it was accepted."""
    legacy_links: bool = False
    state: EvaluationState = EvaluationState.PENDING
    reason: str | None = None
    report: Report | None = None

    @property
    def status_url(self) -> str:
        return f"api/v2/evaluation/applications/{self.application_id}/status/{self.status_id}"

    def status(self) -> PromotionStatus:
        links = {}
        if self.report is not None:
            links = self.report.links(self.public_id, legacy=self.legacy_links)
        return PromotionStatus(status=self.state, reason=self.reason, **links)


@dataclass(frozen=True, slots=True)
class Job:
    """One queued evaluation."""

    promotion: Promotion
    application: Application
    source: Report
    target: Stage
    enqueued_at: float


class Engine:
    """Runs evaluations on ``config.workers`` workers, first come first served; tells
    ``webhooks`` (if given) of every promotion accepted and every evaluation completed."""

    def __init__(
        self,
        config: SimulatorConfig,
        portfolio: Portfolio,
        stats: SimulatorStats,
        webhooks: WebhookSender | None = None,
    ):
        self.config = config
        self.portfolio = portfolio
        self.stats = stats
        self.webhooks = webhooks
        self._send: MemoryObjectSendStream[Job] | None = None
        self._receive: MemoryObjectReceiveStream[Job] | None = None
        self._promotions: dict[tuple[str, str], Promotion] = {}
        self._noise = random.Random(f"noise:{config.seed}")
        self._ids = random.Random(f"status:{config.seed}")
        self._scope: anyio.CancelScope | None = None

    # --- submitting and reading ------------------------------------------------------------

    def submit(self, application: Application, source: Report, target: Stage) -> Promotion:
        """Queue an evaluation and answer its status record at once (PENDING)."""
        if self._send is None:
            raise RuntimeError("the engine is not running")
        promotion = Promotion(
            application.id,
            application.public_id,
            new_id(self._ids),
            self.stats.now(),
            legacy_links=self.config.report_links == "legacy",
        )
        self._promotions[(application.id, promotion.status_id)] = promotion
        job = Job(promotion, application, source, target, self.stats.now())
        self._send.send_nowait(job)
        self.stats.promotions_accepted[application.id] += 1
        self.stats.queue_depth += 1
        self.stats.max_queue_depth = max(self.stats.max_queue_depth, self.stats.queue_depth)
        if self.webhooks is not None:
            self.webhooks.accepted(application, target)
        return promotion

    def promotion(self, application_id: str, status_id: str) -> Promotion | None:
        """The promotion a status URL names, unless the server has forgotten it: statuses
        kept in memory are lost some time after submission, or at a restart."""
        found = self._promotions.get((application_id, status_id))
        forget = self.config.forget_statuses_after
        if found is None or forget is None:
            return found
        return None if self.stats.now() - found.submitted_at >= forget else found

    def forget_statuses(self) -> int:
        """Forget every status, as a restart does; evaluations under way still finish and
        leave their reports. Returns how many were forgotten."""
        forgotten = len(self._promotions)
        self._promotions.clear()
        return forgotten

    def is_failing(self, application: Application) -> bool:
        """Whether this application's evaluations always fail (a stable, seeded choice)."""
        faults = self.config.faults
        if application.public_id in faults.failing_apps:
            return True
        draw = random.Random(f"failing:{self.config.seed}:{application.id}").random()
        return draw < faults.failing_rate

    def typical_time(self, application: Application) -> float:
        """This application's own median evaluation time, lognormal around the config's."""
        draw = random.Random(f"eval:{self.config.seed}:{application.id}").gauss(0.0, 1.0)
        return self.config.eval_time * math.exp(self.config.eval_sigma * draw)

    def _duration(self, application: Application) -> float:
        """Each run draws its own factor; with deviation ``eval_noise / sqrt 2`` per run, two
        runs of an application differ by about ``eval_noise``: the night-to-night noise."""
        factor = self._noise.gauss(1.0, self.config.eval_noise / math.sqrt(2))
        return self.typical_time(application) * max(0.05, factor)

    # --- running -----------------------------------------------------------------------------

    def lifecycle(self, tg: TaskGroup) -> Callable[[web.Application], AsyncIterator[None]]:
        """An aiohttp cleanup context: workers start with the app and are cancelled with it.

        The workers run in the caller's task group, so they never outlive the simulator.
        """

        async def context(_app: web.Application) -> AsyncIterator[None]:
            await tg.start(self._run)
            yield
            self.stop()

        return context

    def stop(self) -> None:
        """Cancel the workers; queued evaluations stay PENDING, as on a server shut down."""
        if self._scope is not None:
            self._scope.cancel()
        for stream in (self._send, self._receive):
            if stream is not None:
                stream.close()

    async def _run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        # The queue exists only while the engine runs, so it is always closed again.
        self._send, self._receive = anyio.create_memory_object_stream[Job](math.inf)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as workers:
                for _ in range(self.config.workers):
                    workers.start_soon(self._worker, self._receive.clone())
                task_status.started()

    async def _worker(self, receive: MemoryObjectReceiveStream[Job]) -> None:
        async with receive:
            async for job in receive:
                await self._evaluate(job)

    async def _evaluate(self, job: Job) -> None:
        stats = self.stats
        stats.queue_depth -= 1
        started = stats.now()
        stats.evaluations_started += 1
        stats.running += 1
        stats.max_running = max(stats.max_running, stats.running)
        try:
            reason = None
            await anyio.sleep(self._duration(job.application))
            if self.is_failing(job.application):
                scan = job.source.scan_id
                reason = f"Evaluation of scan {scan} failed: the scan could not be processed"
        finally:
            stats.running -= 1
        promotion = job.promotion
        if reason is not None:
            promotion.state, promotion.reason = EvaluationState.FAILED, reason
            stats.evaluations_failed += 1
        else:
            promotion.report = self.portfolio.add_report(
                job.application.id, job.target, reevaluation=True
            )
            promotion.state = EvaluationState.COMPLETED
            stats.evaluations_completed += 1
            if self.webhooks is not None:
                # Sent once the status says COMPLETED, so a status asked on it confirms it.
                self.webhooks.evaluated(job.application, promotion.report)
        stats.evaluations.append(
            EvaluationRecord(
                application_id=job.application.id,
                status_id=promotion.status_id,
                enqueued_at=job.enqueued_at,
                started_at=started,
                finished_at=stats.now(),
                outcome=promotion.state.value,
            )
        )
