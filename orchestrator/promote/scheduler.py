"""Running a plan: chains of promotions under a bound on outstanding evaluations.

Each application is worked on by one task at a time, which walks its chains in manifest
order, so one application never has two promotions at once; a :class:`anyio.CapacityLimiter`
bounds the evaluations in flight across applications, held from the POST until the final
status. Tasks start as slots come near, not all at once, and each goes on to the next
application waiting, in the run's order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import structlog

from orchestrator import defaults
from orchestrator.errors import (
    AuthError,
    NotFoundError,
    ServerError,
    UnreachableError,
)
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import (
    EvaluationState,
    PromoteScanRequest,
    PromotionStatus,
)
from orchestrator.promote.control import RunControl
from orchestrator.promote.events import Listener, Prior, StepKey, step_key
from orchestrator.promote.hints import HintBoard, ListingSweep, Watch
from orchestrator.promote.plan import ApplicationWork, Plan, Step, Target
from orchestrator.promote.polling import InFlight, PollStrategy, follow
from orchestrator.promote.recovery import evaluated_since
from orchestrator.promote.step_results import (
    Attempted,
    skipped_result,
    step_result,
    unresolved_result,
)
from orchestrator.promote.sweeps import sweep_listing
from orchestrator.report.results import Detection, Outcome, PromotionResult

log = structlog.get_logger("orchestrator.promote")

BoundLogger = structlog.typing.FilteringBoundLogger

ADMISSION_SLACK = 8
"""Applications started beyond twice the bound, so that chains between steps never starve it."""


Completion = Callable[[Step, PromotionResult], Awaitable[PromotionResult]]
"""Work on a COMPLETED result before it is final, such as reading the new report's data."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """How to run a plan: when to poll, how many at once, how long each may take, who is told
    of each change, and what an earlier, interrupted run of the manifest already did."""

    strategy: PollStrategy
    concurrency: int = defaults.CONCURRENCY
    limiter: anyio.CapacityLimiter | None = None
    """The bound on outstanding evaluations, when someone else moves it too (``concurrency:
    auto``); else one of ``concurrency`` tokens."""
    promotion_timeout: float = defaults.PROMOTION_TIMEOUT
    """Seconds from the accepted POST to a final status before a promotion is TIMED_OUT."""
    scan_files_kept: bool | None = None
    """Whether the server keeps older scan files (purgeScanFiles=withReports), when the plan
    promotes by scanId and that could be read."""
    listeners: tuple[Listener, ...] = ()
    prior: Mapping[StepKey, Prior] = field(default_factory=dict)
    after_completion: Completion | None = None
    hints: HintBoard | None = None
    """Where webhook deliveries wake the promotions they may concern; None: polling only."""
    sweep: ListingSweep | None = None
    """With ``hints``: how to sweep the latest-reports listing for lost deliveries."""


@dataclass(slots=True)
class _Tracked:
    """What is known of a step while it runs, for the report if it is cancelled."""

    target: Target
    step: Step
    attempts: int = 0
    in_flight: InFlight | None = None
    submitted_at: datetime | None = None
    watch: Watch | None = None
    detected_by: Detection | None = None


class Scheduler:
    """Executes one plan once; :meth:`run` returns a result for every step, in order."""

    def __init__(
        self, plan: Plan, client: IqClient, schedule: Schedule, control: RunControl | None = None
    ) -> None:
        self.plan = plan
        self.client = client
        self.schedule = schedule
        self.strategy = schedule.strategy
        self.control = control or RunControl()
        self.listeners = schedule.listeners
        self.prior = schedule.prior
        self.limiter = schedule.limiter or anyio.CapacityLimiter(schedule.concurrency)
        self.after_completion = schedule.after_completion
        self._results: list[PromotionResult | None] = [None] * plan.total
        self._tracked: dict[int, _Tracked] = {}
        self._active = 0
        self._vacancy: anyio.Event | None = None
        self._log: BoundLogger = log.bind()
        """The run's logger, resolved once: the module's, resolved at each use (so that logging
        can be configured after import), costs a new logger for each event."""

    async def run(self, order: Sequence[ApplicationWork] | None = None) -> list[PromotionResult]:
        for unresolved in self.plan.unresolved:
            result = unresolved_result(unresolved)
            self._results[unresolved.step.position] = result
            # Said as a warning, so that a quiet cron run still mails what could not run.
            log.warning(
                "promotion.error",
                publicId=unresolved.public_id,
                organization=unresolved.organization,
                transition=unresolved.step.label,
                reason=unresolved.reason,
            )
        for skipped in self.plan.skipped:
            # What an interrupted run of the manifest did stands: its own evaluation may be
            # what makes the step look recently evaluated now.
            prior = self.prior.get(step_key(skipped.step, skipped.target.public_id))
            kept = prior.result if prior is not None else None
            self._results[skipped.step.position] = kept or skipped_result(skipped)
        board, sweep = self.schedule.hints, self.schedule.sweep
        with self.control.scope:
            async with anyio.create_task_group() as beside:
                if board is not None and sweep is not None:
                    beside.start_soon(sweep_listing, self.client, board, sweep)
                async with anyio.create_task_group() as tg:
                    waiting = iter(order if order is not None else self.plan.work)
                    while True:
                        await self._admission()
                        if (work := next(waiting, None)) is None:
                            break
                        self._active += 1
                        tg.start_soon(self._admitted, work, waiting, name=work.target.public_id)
                beside.cancel_scope.cancel()
        return self._fill_unfinished()

    def _tasks_allowed(self) -> float:
        """Tens of thousands of tasks waiting on the limiter would hold memory for nothing;
        twice the bound (it may grow, with ``concurrency: auto``) keeps a slot that frees from
        waiting for a task."""
        return 2 * self.limiter.total_tokens + ADMISSION_SLACK

    async def _admission(self) -> None:
        """Wait until another task may start: the next application could soon get a slot."""
        while self._active >= self._tasks_allowed():
            self._vacancy = anyio.Event()
            await self._vacancy.wait()

    async def _admitted(self, work: ApplicationWork, waiting: Iterator[ApplicationWork]) -> None:
        """Work on ``work``, then on the next application waiting, while no more tasks run
        than are allowed: a task for each of 100,000 applications was 2% of the client's
        CPU. Each application done lets admission look again, since the bound may have
        grown."""
        try:
            following: ApplicationWork | None = work
            while following is not None:
                await self._application(following)
                if self._vacancy is not None:
                    self._vacancy.set()
                if self._active > self._tasks_allowed():
                    return
                following = next(waiting, None)
        finally:
            self._active -= 1
            if self._vacancy is not None:
                self._vacancy.set()

    async def _application(self, work: ApplicationWork) -> None:
        for chain in work.chains:
            broken: str | None = None
            for step in chain.steps:
                if broken is not None and not self.control.stopping:
                    self._finish(
                        work.target,
                        step,
                        step_result(
                            step, target=work.target, status=Outcome.SKIPPED, reason=broken
                        ),
                    )
                    continue
                result = await self._promote(work.target, step)
                if result.status is not Outcome.COMPLETED:
                    broken = f"earlier transition {step.label} ended {result.status}"

    async def _promote(self, target: Target, step: Step) -> PromotionResult:
        key = step_key(step, target.public_id)
        prior = self.prior.get(key)
        if prior is not None and prior.result is not None:
            self._results[step.position] = prior.result
            return prior.result
        tracked = self._tracked[step.position] = _Tracked(target, step)
        if self.control.stopping:
            return self._stopped(tracked)
        bound = self._log.bind(publicId=target.public_id, transition=step.label)
        async with self.limiter:
            if self.control.stopping:
                return self._stopped(tracked)
            try:
                status = await self._carried_out(tracked, key, prior, bound)
                if status is None:
                    return self._finish(
                        target,
                        step,
                        self._from(
                            tracked,
                            Outcome.TIMED_OUT,
                            f"no final status after {self.schedule.promotion_timeout:g} s",
                        ),
                    )
                result = self._final(tracked, status)
            except AuthError as exc:
                # Credentials refused mid-run (a rotated password, an expired token): the run
                # ends as a server failure (exit 3), and nothing it did is lost. An accepted
                # promotion stays resumable by its status URL; one the server refused to take
                # is sent again by the resume.
                if self.control.fatal is None:
                    self.control.fatal = exc
                self.control.stop_submitting(str(exc))
                outcome = Outcome.ERROR if tracked.in_flight is None else Outcome.CANCELLED
                return self._finish(
                    target, step, self._from(tracked, outcome, str(exc), resumable=True)
                )
            except UnreachableError as exc:
                if self.control.fatal is None:
                    # The server went away for good: the run ends as a server failure (exit 3).
                    self.control.fatal = exc
                self.control.stop_submitting("server unavailable", outcome=Outcome.ERROR)
                # Accepted promotions stay resumable: their status URL is in the journal.
                outcome = Outcome.ERROR if tracked.in_flight is None else Outcome.CANCELLED
                reason = f"server unavailable: {exc}"
                return self._finish(
                    target, step, self._from(tracked, outcome, reason, resumable=True)
                )
            except ServerError as exc:
                reason = self._refusal_reason(tracked, exc)
                return self._finish(target, step, self._from(tracked, Outcome.ERROR, reason))
        if self.after_completion is not None and result.status is Outcome.COMPLETED:
            # Outside the limiter: the evaluation is over, its slot belongs to the next one.
            result = await self.after_completion(step, result)
        return self._finish(target, step, result)

    async def _carried_out(
        self, tracked: _Tracked, key: StepKey, prior: Prior | None, bound: BoundLogger
    ) -> PromotionStatus | None:
        """Send the promotion (or pick up the earlier run's) and follow it to its final
        status; None when the promotion timeout ran out first."""
        with self._watching(tracked, prior):
            return await self._sent_and_followed(tracked, key, prior, bound)

    @contextmanager
    def _watching(self, tracked: _Tracked, prior: Prior | None) -> Iterator[None]:
        """Let webhook hints wake this promotion while it is outstanding, from before it is
        sent (or, picked up, from when the earlier run sent it)."""
        board = self.schedule.hints
        if board is None:
            yield
            return
        since = None
        if prior is not None:
            since = prior.sent_unanswered_at or prior.submitted_at
        with board.watching(
            tracked.target.application_id,
            tracked.step.transition.target_stage.value,
            since or datetime.now(UTC),
        ) as tracked.watch:
            yield

    async def _sent_and_followed(
        self, tracked: _Tracked, key: StepKey, prior: Prior | None, bound: BoundLogger
    ) -> PromotionStatus | None:
        if prior is not None and prior.status_url is not None:
            self._pick_up(tracked, key, prior, bound)
        else:
            if prior is not None and prior.sent_unanswered_at is not None:
                done = await self._done_since(tracked, prior.sent_unanswered_at)
                if done is not None:
                    bound.info("promotion.found_done", sentAt=prior.sent_unanswered_at.isoformat())
                    tracked.detected_by = Detection.HISTORY
                    return done
                bound.warning(
                    "promotion.resent",
                    sentAt=prior.sent_unanswered_at.isoformat(),
                    reason="the earlier run sent this promotion and died before recording the "
                    "answer, and no report of it is there yet: IQ Server may still be "
                    "evaluating it, and then evaluates this scan once more",
                )
            await self._submit(tracked, key, bound)
        with anyio.move_on_after(self.schedule.promotion_timeout):
            return await self._followed(tracked, key, bound)
        return None

    def _pick_up(self, tracked: _Tracked, key: StepKey, prior: Prior, bound: BoundLogger) -> None:
        assert prior.status_url is not None
        tracked.attempts = prior.attempts
        tracked.submitted_at = prior.submitted_at
        tracked.in_flight = InFlight(
            self.client.absolute(prior.status_url),
            anyio.current_time(),
            prior.polls,
            picked_up=True,
        )
        for listener in self.listeners:
            listener.submitted(key, prior.status_url, prior.attempts)
        bound.info("promotion.resumed", statusUrl=prior.status_url)

    async def _followed(
        self, tracked: _Tracked, key: StepKey, bound: BoundLogger
    ) -> PromotionStatus:
        """Poll until a final status. A status the server forgot (404) is looked for in the
        report history; when no report is there the promotion is sent once more, and should
        that status be forgotten too, the report history is watched instead."""
        first_sent = tracked.submitted_at
        resent = False
        while True:
            assert tracked.in_flight is not None
            try:
                status = await follow(
                    self.client,
                    tracked.in_flight,
                    self.strategy,
                    tracked.target.public_id,
                    tracked.watch,
                )
            except NotFoundError:
                if first_sent is not None:
                    done = await self._done_since(tracked, first_sent)
                    if done is not None:
                        bound.info("promotion.status_lost", found="its report")
                        tracked.detected_by = Detection.HISTORY
                        return done
                if resent and first_sent is not None:
                    bound.warning(
                        "promotion.status_lost",
                        action="lost again: watching the report history for its report",
                    )
                    return await self._watch_history(tracked, first_sent)
                if resent:
                    raise
                bound.warning(
                    "promotion.status_lost",
                    statusUrl=tracked.in_flight.status_url,
                    action="no report of it yet: sending it once more",
                )
                resent = True
                await self._submit(tracked, key, bound)
                first_sent = first_sent or tracked.submitted_at
            else:
                tracked.detected_by = tracked.in_flight.detected_by
                return status

    async def _watch_history(self, tracked: _Tracked, since: datetime) -> PromotionStatus:
        """Ask the report history, at the poll strategy's offsets, until a report at the target
        stage newer than ``since`` is there (the promotion's timeout bounds the wait)."""
        assert tracked.in_flight is not None
        in_flight = tracked.in_flight
        for offset in self.strategy.offsets(tracked.target.public_id):
            await anyio.sleep(max(0.0, in_flight.submitted_at + offset - anyio.current_time()))
            in_flight.polls += 1
            done = await self._done_since(tracked, since)
            if done is not None:
                tracked.detected_by = Detection.HISTORY
                return done
        raise AssertionError("poll strategies yield without end")  # pragma: no cover

    async def _done_since(self, tracked: _Tracked, since: datetime) -> PromotionStatus | None:
        stage = tracked.step.transition.target_stage
        return await evaluated_since(self.client, tracked.target.application_id, stage, since)

    async def _submit(self, tracked: _Tracked, key: StepKey, bound: BoundLogger) -> None:
        transition = tracked.step.transition
        request = PromoteScanRequest(
            scan_id=transition.scan_id,
            source_stage_id=transition.source_stage,
            target_stage_id=transition.target_stage,
        )
        for listener in self.listeners:
            await listener.intent(key)
        # Taken before the POST: a report the history holds is this promotion's only when it
        # was evaluated after the request went out.
        sent_at = datetime.now(UTC)
        submission = await self.client.promote_scan(tracked.target.application_id, request)
        tracked.attempts = submission.attempts
        tracked.submitted_at = sent_at
        tracked.in_flight = InFlight(submission.status_url, anyio.current_time())
        for listener in self.listeners:
            listener.submitted(key, submission.status_url, submission.attempts)
        bound.info(
            "promotion.submitted", attempt=submission.attempts, statusUrl=submission.status_url
        )

    def _refusal_reason(self, tracked: _Tracked, exc: ServerError) -> str:
        """Why the promotion ended ERROR: the server's own words, and for a scan given by id
        that the server refused (400, or 404 on older releases), what keeps scans promotable."""
        scan_id = tracked.step.transition.scan_id
        refused_at_submission = tracked.in_flight is None and exc.status in (400, 404)
        if scan_id is None or not refused_at_submission:
            return str(exc)
        if self.schedule.scan_files_kept:
            return f"scan {scan_id} cannot be promoted: {exc}"
        return (
            f"scan {scan_id} cannot be promoted ({exc}); unless purgeScanFiles is withReports, "
            "IQ Server keeps only each stage's latest scan file: set it "
            "(--ensure-scan-retention) to promote older scans"
        )

    def _final(self, tracked: _Tracked, status: PromotionStatus) -> PromotionResult:
        if status.state is EvaluationState.COMPLETED:
            result = self._from(tracked, Outcome.COMPLETED, None)
            links = {
                "report_html_url": status.report_html_url,
                "embeddable_report_html_url": status.embeddable_report_html_url,
                "report_pdf_url": status.report_pdf_url,
                "report_data_url": status.report_data_url,
            }
            return result.model_copy(
                update={name: self.client.absolute(url) for name, url in links.items() if url}
            )
        return self._from(tracked, Outcome.FAILED, status.reason or "IQ Server gave no reason")

    def _from(
        self, tracked: _Tracked, status: Outcome, reason: str | None, resumable: bool = False
    ) -> PromotionResult:
        in_flight = tracked.in_flight
        attempted = Attempted(
            status_url=in_flight.status_url if in_flight else None,
            attempts=tracked.attempts,
            polls=in_flight.polls if in_flight else 0,
            submitted_at=tracked.submitted_at,
            finished_at=datetime.now(UTC),
            duration_seconds=(
                round(anyio.current_time() - in_flight.submitted_at, 3) if in_flight else None
            ),
            evaluation_seconds=(
                round(seconds, 3)
                if in_flight and (seconds := in_flight.evaluation_seconds) is not None
                else None
            ),
            detected_by=tracked.detected_by,
        )
        return step_result(
            tracked.step,
            target=tracked.target,
            status=status,
            reason=reason,
            resumable=resumable,
            attempted=attempted,
        )

    def _stopped(self, tracked: _Tracked) -> PromotionResult:
        reason = self.control.stop_reason or "run stopped"
        outcome = self.control.stop_outcome if tracked.in_flight is None else Outcome.CANCELLED
        result = self._from(tracked, outcome, reason, resumable=True)
        return self._finish(tracked.target, tracked.step, result)

    def _finish(self, target: Target, step: Step, result: PromotionResult) -> PromotionResult:
        self._results[step.position] = result
        self._tracked.pop(step.position, None)
        key = step_key(step, target.public_id)
        for listener in self.listeners:
            listener.finished(key, result)
        event = f"promotion.{result.status.lower()}"
        quiet = result.status in (Outcome.COMPLETED, Outcome.SKIPPED)
        emit = self._log.info if quiet else self._log.warning
        emit(
            event,
            publicId=target.public_id,
            transition=step.label,
            attempt=result.attempts,
            polls=result.polls,
            reason=result.reason,
            durationSeconds=result.duration_seconds,
        )
        return result

    def _fill_unfinished(self) -> list[PromotionResult]:
        """Steps a cancelled run never finished: CANCELLED, keeping a statusUrl to resume."""
        reason = self.control.stop_reason or "run cancelled"
        for position, tracked in list(self._tracked.items()):
            if self._results[position] is None:
                self._stopped(tracked)
        for work in self.plan.work:
            for step in work.steps:
                if self._results[step.position] is None:
                    outcome = self.control.stop_outcome
                    self._finish(
                        work.target,
                        step,
                        step_result(
                            step, target=work.target, status=outcome, reason=reason, resumable=True
                        ),
                    )
        results = [r for r in self._results if r is not None]
        assert len(results) == self.plan.total, "every step has a result"
        return results
