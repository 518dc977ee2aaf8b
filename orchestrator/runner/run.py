"""One promotion run from start to report: lock, journal, client, plan, scheduler, signals.

The CLI turns options into a :class:`RunConfig` and hands it here; everything after that,
up to the finished :class:`~orchestrator.report.run_report.RunReport`, happens in this module.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import anyio
import structlog

from orchestrator import defaults
from orchestrator.errors import (
    IqPromoteError,
    NotFoundError,
    ServerError,
    UnreachableError,
    sole_error,
)
from orchestrator.firewall.summary import summarize
from orchestrator.iq.breaker import CircuitBreaker, RequestGate, RetryBudget
from orchestrator.iq.client import ClientSettings, IqClient
from orchestrator.iq.models import PurgeScanFiles
from orchestrator.manifest.model import Manifest
from orchestrator.promote.adaptive_concurrency import AdaptiveLimit
from orchestrator.promote.control import RunControl
from orchestrator.promote.events import Listener
from orchestrator.promote.journal import Journal, ResumePoint
from orchestrator.promote.learned_polling import LearnedSchedule, longest_first
from orchestrator.promote.lock import StateLock
from orchestrator.promote.plan import Plan, Step, resolve_plan
from orchestrator.promote.polling import PollStrategy
from orchestrator.promote.progress import ProgressTracker
from orchestrator.promote.scheduler import RunOptions, Scheduler, step_result, unresolved_result
from orchestrator.promote.signals import watch_signals
from orchestrator.report.firewall import FirewallSummary
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.report.run_report import RunReport, Summary
from orchestrator.report.violations import count_violations

log = structlog.get_logger("orchestrator.runner.run")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs, already resolved from options, environment and manifest."""

    manifest: Manifest
    manifest_path: str
    manifest_digest: str
    client: ClientSettings
    concurrency: int | Literal["auto"] = defaults.CONCURRENCY
    promotion_timeout: float = defaults.PROMOTION_TIMEOUT
    state_dir: Path | None = None
    resume: bool = False
    dry_run: bool = False
    ensure_scan_retention: bool = False
    grace: float = defaults.GRACE
    server_down_timeout: float = defaults.SERVER_DOWN_TIMEOUT
    handle_signals: bool = True
    strategy: PollStrategy | None = None
    """When to poll; by default a
    :class:`~orchestrator.promote.learned_polling.LearnedSchedule` that learns from this run
    and from the evaluation times the journal kept of earlier ones."""
    fetch_results: bool | None = None
    """Read each completed promotion's report data and count its violations; None: only for
    re-evaluations (same stage), where the new verdict is the point of the run."""
    progress: ProgressTracker | None = None
    """Told of every state change, for a progress display."""


@dataclass(slots=True)
class _Executed:
    results: list[PromotionResult]
    server_url: str
    firewall: FirewallSummary | None = None
    firewall_error: str | None = None


async def run(config: RunConfig, *, control: RunControl | None = None) -> RunReport:
    """Run the manifest once (or resume it) and return the report of the whole run."""
    control = control or RunControl()
    with ExitStack() as stack:
        journal: Journal | None = None
        resume: ResumePoint | None = None
        if config.state_dir is not None and not config.dry_run:
            stack.enter_context(StateLock(config.state_dir))
            journal = stack.enter_context(Journal(config.state_dir))
            if config.resume:
                resume = journal.resume_point(config.manifest_path, config.manifest_digest)
                if resume is None:
                    log.info("run.nothing_to_resume", manifest=config.manifest_path)
        started = resume.started_at if resume else datetime.now(UTC)
        if journal is not None and resume is None:
            journal.begin(config.manifest_path, config.manifest_digest, started)
        clock = time.monotonic()
        try:
            async with anyio.create_task_group() as tg:
                if config.handle_signals:
                    tg.start_soon(watch_signals, control, config.grace)
                executed = await _execute(config, control, journal, resume)
                tg.cancel_scope.cancel()
        except ExceptionGroup as group:
            raise sole_error(group) from None
        if journal is not None:
            journal.end(executed.results)
    elapsed = time.monotonic() - clock
    if resume is not None:
        elapsed = (datetime.now(UTC) - started).total_seconds()
    return RunReport(
        started_at=started,
        finished_at=datetime.now(UTC),
        duration_seconds=round(elapsed, 3),
        server_url=executed.server_url,
        manifest=config.manifest_path,
        dry_run=config.dry_run,
        summary=Summary.of(executed.results),
        results=executed.results,
        firewall=executed.firewall,
        firewall_error=executed.firewall_error,
    )


async def _execute(
    config: RunConfig,
    control: RunControl,
    journal: Journal | None,
    resume: ResumePoint | None,
) -> _Executed:
    auto = config.concurrency == "auto"
    start = defaults.AUTO_CONCURRENCY_START if auto else int(config.concurrency)
    limiter = anyio.CapacityLimiter(start)
    adaptive = AdaptiveLimit(limiter) if auto else None
    gate = RequestGate(
        budget=RetryBudget(),
        breaker=CircuitBreaker(down_timeout=config.server_down_timeout),
        on_throttled=adaptive.on_throttled if adaptive else None,
    )
    async with IqClient(config.client, gate=gate) as client:
        server_url = str(client.base_url)
        with control.cancellable() as planning:
            plan = await resolve_plan(config.manifest, client)
        if planning.cancelled_caught:
            log.warning("run.stopped_before_plan", reason=control.stop_reason, sent=0)
            return _Executed([], server_url)
        log.info("run.planned", promotions=plan.total, applications=len(plan.work))
        if config.progress is not None:
            prior = resume.prior.values() if resume else ()
            decided = Counter(p.result.status for p in prior if p.result)
            if plan.unresolved:
                decided[Outcome.ERROR] += len(plan.unresolved)
            config.progress.planned(plan.total, decided)
        if config.dry_run:
            return _Executed(_dry_run(plan), server_url)
        retention = await _check_retention(client, plan, config.ensure_scan_retention)
        strategy = config.strategy or _learned_schedule(config.manifest, journal)
        order = None
        if isinstance(strategy, LearnedSchedule):
            order = longest_first(plan.work, strategy)
        listeners: list[Listener] = [journal] if journal is not None else []
        if adaptive is not None:
            listeners.append(adaptive)
        if config.progress is not None:
            listeners.append(config.progress)
        scheduler = Scheduler(
            plan,
            client,
            strategy,
            options=RunOptions(
                concurrency=int(limiter.total_tokens),
                promotion_timeout=config.promotion_timeout,
                scan_retention=retention,
            ),
            control=control,
            listeners=listeners,
            prior=resume.prior if resume else None,
            limiter=limiter,
            after_completion=_ViolationReader(client, config.fetch_results),
        )
        executed = _Executed(await scheduler.run(order), server_url)
        section = config.manifest.repository_results
        if section is not None and not control.stopping:
            try:
                executed.firewall = await summarize(client, section)
            except IqPromoteError as exc:
                log.warning("repository_results.unavailable", error=str(exc))
                executed.firewall_error = str(exc)
        return executed


@dataclass(frozen=True, slots=True)
class _ViolationReader:
    """Counts the violations of a completed promotion's new report, by threat band.

    A report that cannot be read leaves the promotion COMPLETED without counts: the
    promotion itself succeeded, and the report says which counts are missing.
    """

    client: IqClient
    always: bool | None

    async def __call__(self, step: Step, result: PromotionResult) -> PromotionResult:
        transition = step.transition
        wanted = self.always
        if wanted is None:
            wanted = transition.source_stage == transition.target_stage
        if not wanted or result.report_data_url is None:
            return result
        try:
            data = await self.client.report_data(result.report_data_url)
        except (ServerError, NotFoundError, UnreachableError) as exc:
            log.warning("report_data.unavailable", publicId=result.public_id, error=str(exc))
            return result
        return result.model_copy(update={"violations": count_violations(data)})


def _learned_schedule(manifest: Manifest, journal: Journal | None) -> LearnedSchedule:
    """Polling that starts from the manifest's intervals and improves on them with what
    this run and earlier ones (if the state directory has any) tell of evaluation times."""
    polling = manifest.polling
    return LearnedSchedule(
        history=journal.evaluation_history() if journal is not None else {},
        initial=polling.initial_interval,
        cap=polling.max_interval,
    )


async def _check_retention(client: IqClient, plan: Plan, ensure: bool) -> PurgeScanFiles | None:
    """Promoting by scanId needs the scan file; under the default only each stage's latest
    scan keeps one, so say so before the run rather than after it."""
    if not plan.uses_scan_ids:
        return None
    retention = await client.scan_retention()
    if retention is PurgeScanFiles.DEFAULT and ensure:
        await client.set_scan_retention(PurgeScanFiles.WITH_REPORTS)
        log.info("config.scan_retention_set", purgeScanFiles=str(PurgeScanFiles.WITH_REPORTS))
        return PurgeScanFiles.WITH_REPORTS
    if retention is PurgeScanFiles.DEFAULT:
        log.warning(
            "config.scan_retention_default",
            message="purgeScanFiles is 'default': only each stage's latest scan can be "
            "promoted by scanId; older scans will fail. --ensure-scan-retention sets "
            "'withReports' (needs the System Administrator role).",
        )
    return retention


def _dry_run(plan: Plan) -> list[PromotionResult]:
    """Every step as the plan has it, SKIPPED (or ERROR if unresolvable); nothing is sent."""
    results = {u.step.position: unresolved_result(u) for u in plan.unresolved}
    for work in plan.work:
        for step in work.steps:
            results[step.position] = step_result(
                step, target=work.target, status=Outcome.SKIPPED, reason="dry run: nothing sent"
            )
    return [results[i] for i in range(plan.total)]
