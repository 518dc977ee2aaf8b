"""Executing a run once connected: resolve the plan, check scan retention, schedule the
promotions, read the new reports' violations, and summarise the firewall.

Everything around it (the state directory, signals, the baseline, the gate, what is written)
is :mod:`orchestrator.runner.run`'s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import anyio
import structlog

from orchestrator import defaults
from orchestrator.errors import AuthError, IqPromoteError, ServerError, UnreachableError
from orchestrator.firewall.summary import summarize
from orchestrator.iq.breaker import CircuitBreaker, RequestGate, RetryBudget
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import PurgeScanFiles
from orchestrator.iq.transport import ClientSettings
from orchestrator.manifest.model import Manifest
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.promote.adaptive_concurrency import AdaptiveLimit
from orchestrator.promote.control import RunControl
from orchestrator.promote.events import Listener, step_key
from orchestrator.promote.hints import HintBoard
from orchestrator.promote.journal import Journal, ResumePoint
from orchestrator.promote.learned_polling import LearnedSchedule, longest_first
from orchestrator.promote.plan import Plan, Step, resolve_plan
from orchestrator.promote.scheduler import Schedule, Scheduler
from orchestrator.promote.step_results import skipped_result, step_result, unresolved_result
from orchestrator.report.firewall import FirewallSummary
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.report.run_report import WebhookSummary
from orchestrator.report.violations import count_violations
from orchestrator.runner.config import RunConfig

log = structlog.get_logger("orchestrator.runner")


@dataclass(slots=True)
class Executed:
    """What executing the run produced, for the report."""

    results: list[PromotionResult]
    server_url: str
    firewall: FirewallSummary | None = None
    firewall_error: str | None = None
    webhook: WebhookSummary | None = None
    planned: bool = True
    """False when the run was stopped before its plan was made: it decided nothing."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """What the run around the execution holds for it: how it is stopped, the journal and
    where a resume starts (when there is a state directory), and the board webhook
    deliveries wake promotions on (when a listener runs)."""

    control: RunControl
    journal: Journal | None = None
    resume: ResumePoint | None = None
    hints: HintBoard | None = None


async def execute(config: RunConfig, settings: ClientSettings, context: RunContext) -> Executed:
    """Plan and promote (or, for a dry run, only plan) with one client for the whole run."""
    control, journal, resume = context.control, context.journal, context.resume
    auto = config.concurrency == "auto"
    start = defaults.AUTO_CONCURRENCY_START if auto else int(config.concurrency)
    limiter = anyio.CapacityLimiter(start)
    adaptive = AdaptiveLimit(limiter) if auto else None
    gate = RequestGate(
        budget=RetryBudget(),
        breaker=CircuitBreaker(down_timeout=config.server_down_timeout),
        on_throttled=adaptive.on_throttled if adaptive else None,
    )
    async with IqClient(settings, gate=gate) as client:
        server_url = str(client.base_url)
        with control.cancellable() as planning:
            plan = await resolve_plan(config.manifest, client)
        if planning.cancelled_caught:
            log.warning("run.stopped_before_plan", reason=control.stop_reason, sent=0)
            return Executed([], server_url, planned=False)
        log.info(
            "run.planned",
            promotions=plan.total,
            applications=len(plan.work),
            skipped=len(plan.skipped),
        )
        if config.progress is not None:
            known = resume.prior if resume else {}
            decided = Counter(p.result.status for p in known.values() if p.result)
            if plan.unresolved:
                decided[Outcome.ERROR] += len(plan.unresolved)
            # A skipped step an earlier run finished is counted once, by its result.
            fresh = [
                s
                for s in plan.skipped
                if (p := known.get(step_key(s.step, s.target.public_id))) is None or not p.result
            ]
            if fresh:
                decided[Outcome.SKIPPED] += len(fresh)
            config.progress.planned(plan.total, decided)
        if config.dry_run:
            return Executed(_dry_run(plan), server_url)
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
        schedule = Schedule(
            strategy=strategy,
            limiter=limiter,
            promotion_timeout=config.promotion_timeout,
            scan_files_kept=retention,
            listeners=tuple(listeners),
            prior=resume.prior if resume else {},
            after_completion=_ViolationReader(
                client, config.wants_results, config.promotion_timeout
            ),
            hints=context.hints,
            sweep=config.webhook.sweep if config.webhook is not None else None,
        )
        scheduler = Scheduler(plan, client, schedule, control)
        executed = Executed(await scheduler.run(order), server_url)
        section = config.manifest.repository_results
        if section is not None and not control.stopping:
            executed.firewall, executed.firewall_error = await _firewall(
                client, section, config.promotion_timeout
            )
        return executed


async def _firewall(
    client: IqClient, section: RepositoryResultsSection, seconds: float
) -> tuple[FirewallSummary | None, str | None]:
    """The firewall's summary, or why there is none. Its pages are bounded by the promotion
    timeout as a report's policy data is: a server that answers each page in time but never
    runs out of them must not hold the run's end (and its report) for the night."""
    error: str | None = None
    with anyio.move_on_after(seconds) as bound:
        try:
            return await summarize(client, section), None
        except IqPromoteError as exc:
            error = str(exc)
    if bound.cancelled_caught:
        error = f"the firewall's Repository Results were not read within {seconds:g} s"
    log.warning("repository_results.unavailable", error=error)
    return None, error


@dataclass(frozen=True, slots=True)
class _ViolationReader:
    """Counts the open violations of a completed promotion's new report, by threat band, from
    its policy data (the raw data the status links to has none).

    A report that cannot be read leaves the promotion COMPLETED, its violations unchecked
    with the reason: the promotion itself succeeded, and unknown is never counted as zero.
    """

    client: IqClient
    always: bool | None
    timeout: float = defaults.PROMOTION_TIMEOUT
    """Seconds the reading may take: a server whose policy data pages on and on (each page
    within every bound a request has) must not hold the run's end."""

    async def __call__(self, step: Step, result: PromotionResult) -> PromotionResult:
        transition = step.transition
        wanted = self.always
        if wanted is None:
            wanted = transition.source_stage == transition.target_stage
        if not wanted:
            return result
        if result.report_data_url is None:
            return result.model_copy(
                update={"violations_unchecked": "the server gave no report data link"}
            )
        try:
            with anyio.move_on_after(self.timeout):
                data = await self.client.policy_report(result.report_data_url)
                return result.model_copy(update={"violations": count_violations(data)})
        except ServerError as exc:
            log.warning("report_policy.unavailable", publicId=result.public_id, error=str(exc))
            return result.model_copy(update={"violations_unchecked": str(exc)})
        unread = f"the report's policy data was not read within {self.timeout:g} s"
        log.warning("report_policy.unavailable", publicId=result.public_id, error=unread)
        return result.model_copy(update={"violations_unchecked": unread})


def _learned_schedule(manifest: Manifest, journal: Journal | None) -> LearnedSchedule:
    """Polling that starts from the manifest's intervals and improves on them with what
    this run and earlier ones (if the state directory has any) tell of evaluation times."""
    polling = manifest.polling
    return LearnedSchedule(
        history=journal.evaluation_history() if journal is not None else {},
        initial=polling.initial_interval,
        cap=polling.max_interval,
    )


async def _check_retention(client: IqClient, plan: Plan, ensure: bool) -> bool | None:
    """Whether scan files are kept (purgeScanFiles=withReports), when the plan promotes by
    scanId; None when that cannot be known. Advisory only: under IQ's default only each
    stage's latest scan file is kept, which the run says before it starts, and a user
    without administrator rights (who may not read the setting) still runs."""
    if not plan.uses_scan_ids:
        return None
    try:
        retention = await client.scan_retention()
        if retention is None and ensure:
            await client.set_scan_retention()
            log.info("config.scan_retention_set", purgeScanFiles=PurgeScanFiles.WITH_REPORTS.value)
            return True
    except (AuthError, UnreachableError):
        raise  # the server itself is refused or away: that is the run's end, not advice
    except ServerError as exc:
        log.warning(
            "config.scan_retention_unknown",
            error=str(exc),
            message="purgeScanFiles could not be read or set; promoting by scanId goes on, "
            "and a scan whose file was purged is refused by the server",
        )
        return None
    if retention is None:
        log.warning(
            "config.scan_retention_default",
            message="purgeScanFiles is unset (IQ's default): only each stage's latest scan "
            "can be promoted by scanId; older scans will be refused. --ensure-scan-retention "
            "sets it to 'withReports' (needs the System Administrator role).",
        )
    return retention == PurgeScanFiles.WITH_REPORTS.value


def _dry_run(plan: Plan) -> list[PromotionResult]:
    """Every step as the plan has it, SKIPPED (or ERROR if unresolvable); nothing is sent."""
    results = {u.step.position: unresolved_result(u) for u in plan.unresolved}
    results |= {s.step.position: skipped_result(s) for s in plan.skipped}
    for work in plan.work:
        for step in work.steps:
            results[step.position] = step_result(
                step, target=work.target, status=Outcome.SKIPPED, reason="dry run: nothing sent"
            )
    return [results[i] for i in range(plan.total)]
