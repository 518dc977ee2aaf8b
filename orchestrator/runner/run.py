"""One run from request to written report: what ``iq-promote run`` does, for any caller.

:func:`run` resolves the request, holds the state directory, watches for signals, executes
(:mod:`orchestrator.runner.execute`), compares with the baseline, applies the gate, decides the
exit code and writes the report, the renderers' outputs and the kept report. The CLI only
displays what happens and exits with ``report.exit_code``.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from orchestrator import defaults
from orchestrator.errors import (
    ExitCode,
    IqPromoteError,
    ServerError,
    UnwrittenError,
    sole_error,
)
from orchestrator.manifest.model import manifest_digest
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.control import RunControl
from orchestrator.promote.journal import Journal, ResumePoint
from orchestrator.promote.signals import STOPPING, watch_signals
from orchestrator.render import RenderOutputs, write_outputs
from orchestrator.report.baseline import compare
from orchestrator.report.gate import gate
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport, Summary, write_report
from orchestrator.runner.config import RunConfig
from orchestrator.runner.connection import WebhookTarget, connected
from orchestrator.runner.execute import Executed, RunContext, execute
from orchestrator.runner.request import RunRequest, resolve
from orchestrator.runner.state_dir import StateDir
from orchestrator.secrets import SCRUBBER

if TYPE_CHECKING:
    from orchestrator.promote.webhook_listener import WebhookListener

log = structlog.get_logger("orchestrator.runner")


async def run(what: RunRequest | RunConfig, *, control: RunControl | None = None) -> RunReport:
    """Run the manifest once (or resume it), write what the request asks for, and return the
    final report: the same report ``iq-promote run`` writes, with its ``exit_code``.

    Raises ManifestError or UsageError before anything is sent, and AuthError or
    UnreachableError when the server refuses or cannot be reached before the first promotion.
    """
    config = what if isinstance(what, RunConfig) else resolve(what)
    control = control or RunControl()
    started = datetime.now(UTC)
    with _collector_paced():
        try:
            executed = await _executed(config, control)
        except ServerError as exc:
            # Refused or unreachable before the first promotion: the night still leaves its
            # report and metrics, so a dashboard shows it failed rather than last night's
            # numbers.
            _written(_refused(config, exc, started), config)
            raise
        return _written(_judged(executed, config, control), config)


_paced_runs: list[tuple[int, ...]] = []
"""The collector's thresholds as each run under way in this process found them; the first,
the caller's, is the last one taken off."""


@contextmanager
def _collector_paced() -> Iterator[None]:
    """The collector at the run's pace (:data:`~orchestrator.defaults.COLLECTOR_THRESHOLDS`),
    and back at the caller's when the last run under way ends, in whatever order runs a
    Python caller started side by side end: the caller's process is its own."""
    _paced_runs.append(gc.get_threshold())
    gc.set_threshold(*defaults.COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        callers = _paced_runs.pop()
        if not _paced_runs:
            gc.set_threshold(*callers)


def _written(report: RunReport, config: RunConfig) -> RunReport:
    emit = log.info if report.passed else log.warning
    try:
        with _signals_ignored(config.handle_signals):
            write_all(report, config)
    except UnwrittenError as error:
        emit("run.summary", report=str(config.report_path), **_summary_fields(report))
        if report.exit_code:
            # The night's own outcome (gated, failed, server away, a signal) comes first.
            error.exit_code = report.exit_code
        raise
    emit("run.summary", report=str(config.report_path), **_summary_fields(report))
    return report


def _refused(config: RunConfig, error: ServerError, started: datetime) -> RunReport:
    """The report of a run the server refused before anything was sent: no promotions, the
    error, and its exit code."""
    finished = datetime.now(UTC)
    report = RunReport(
        started_at=started,
        finished_at=finished,
        duration_seconds=round((finished - started).total_seconds(), 3),
        server_url=config.client.base_url if config.client is not None else "",
        manifest=config.manifest_path,
        dry_run=config.dry_run,
        summary=Summary.of([]),
        results=[],
        error=str(error),
        exit_code=int(error.exit_code),
    )
    return SCRUBBER.scrub_model(report)


async def _executed(config: RunConfig, control: RunControl) -> RunReport:
    """Hold the state directory and run, with signals watched; the report of what was done."""
    state = _state(config)
    with ExitStack() as stack:
        journal: Journal | None = None
        resume: ResumePoint | None = None
        if state is not None:
            journal = stack.enter_context(state.held())
            resume = _resume_point(journal, config)
        started = resume.started_at if resume else datetime.now(UTC)
        if journal is not None and resume is None:
            journal.begin(config.journal_id, manifest_digest(config.manifest), started)
        clock = time.monotonic()
        try:
            executed = await _connected(config, control, journal, resume)
        except IqPromoteError:
            # Raised only before the first promotion (a refusal, a busy webhook port); an
            # error later ends the run through its control. Nothing was sent: nothing to resume.
            if journal is not None and resume is None:
                journal.end([])
            raise
        if journal is not None and (executed.planned or resume is None):
            # A resumed run stopped before its plan decided nothing: the run it resumes is
            # still as unfinished as it was, and the next --resume takes it up again.
            journal.end(executed.results)
    elapsed = time.monotonic() - clock
    if resume is not None:
        elapsed = (datetime.now(UTC) - started).total_seconds()
    return _report(config, executed, started, elapsed)


async def _connected(
    config: RunConfig, control: RunControl, journal: Journal | None, resume: ResumePoint | None
) -> Executed:
    """Execute with the server connected, signals watched, the journal kept committed and,
    when asked, IQ's webhook listened for; a task's error is raised as itself."""
    listener = _listener(config)
    try:
        async with anyio.create_task_group() as tg:
            if config.handle_signals:
                tg.start_soon(watch_signals, control, config.grace)
            if journal is not None:
                tg.start_soon(journal.keep_committed)
            if listener is not None:
                await tg.start(listener.serve)
            async with connected(config.client, config.manifest, _deliveries(listener)) as settings:
                hints = listener.board if listener is not None else None
                context = RunContext(control, journal, resume, hints)
                executed = await execute(config, settings, context)
            tg.cancel_scope.cancel()
    except ExceptionGroup as group:
        raise sole_error(group) from None
    if listener is not None:
        executed.webhook = listener.summary()
    return executed


def _resume_point(journal: Journal, config: RunConfig) -> ResumePoint | None:
    """Where to resume, if asked and possible. A resume after an edit that changed what the
    manifest means starts afresh, saying what it abandoned, rather than failing every night;
    a run without --resume that finds an unfinished one says how to continue it."""
    unfinished = journal.unfinished(config.journal_id)
    if unfinished is None:
        if config.resume:
            log.info("run.nothing_to_resume", manifest=config.manifest_path)
        return None
    started = unfinished.started_at.isoformat()
    if not config.resume:
        log.warning(
            "run.unfinished_found",
            startedAt=started,
            undecided=unfinished.undecided,
            message="an interrupted run of this manifest has undecided steps; this run starts "
            "afresh and sends them again. --resume continues the interrupted run instead",
        )
        return None
    if unfinished.digest != manifest_digest(config.manifest):
        log.warning(
            "run.resume_abandoned",
            startedAt=started,
            undecided=unfinished.undecided,
            message="the manifest's entries or transitions changed since the interrupted run, "
            "so its steps may mean other things now: starting afresh instead of resuming",
        )
        journal.abandon(unfinished)
        return None
    return journal.resume(unfinished)


def _listener(config: RunConfig) -> WebhookListener | None:
    """The listener for IQ's webhook, when one is asked for and something will be sent.
    Imported only here, so that a run that does not listen loads no web server."""
    if config.webhook is None or config.dry_run:
        return None
    from orchestrator.promote.webhook_listener import WebhookListener

    return WebhookListener(config.webhook)


def _deliveries(listener: WebhookListener | None) -> WebhookTarget | None:
    """Where an embedded simulator sends its deliveries: to the run's own listener."""
    if listener is None:
        return None
    host = listener.bound.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere; reached on loopback
        host = "127.0.0.1"
    url = f"http://{ListenAddress(host, listener.bound.port)}/"
    return WebhookTarget(url, listener.settings.secret)


def _state(config: RunConfig) -> StateDir | None:
    """The state directory, unless the run keeps none (a dry run sends nothing to journal)."""
    if config.state_dir is None or config.dry_run:
        return None
    return StateDir(config.state_dir, config.state_name or _stem(config.manifest_path))


def _stem(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _report(config: RunConfig, executed: Executed, started: datetime, elapsed: float) -> RunReport:
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
        webhook=executed.webhook,
    )


def _judged(report: RunReport, config: RunConfig, control: RunControl) -> RunReport:
    """The report with the baseline compared, the gate applied and the exit code decided."""
    update: dict[str, Any] = {}
    if config.baseline is not None:
        update["baseline"] = compare(report, config.baseline.report, config.baseline.path)
    if config.fail_on is not None:
        update["policy_gate"] = gate(report.results, config.fail_on)
    if control.stopping:
        update["stopped"] = control.stop_reason
    if control.fatal is not None:
        update["error"] = str(control.fatal)
    judged = report.model_copy(update=update)
    judged = judged.model_copy(update={"exit_code": exit_code(judged, control)})
    # Server text (reasons, errors) may echo a request: no secret leaves in what is written.
    return SCRUBBER.scrub_model(judged)


def exit_code(report: RunReport, control: RunControl) -> int:
    """The run's exit code: the one place a run's outcome becomes a number."""
    if control.fatal is not None:
        return int(control.fatal.exit_code)
    if control.signal is not None:
        return int(ExitCode.SIGNAL_BASE) + control.signal
    if report.dry_run:
        # A dry run completes nothing by design: it fails only on steps that cannot resolve.
        errors = report.summary.by_status[Outcome.ERROR]
        return int(ExitCode.NOT_COMPLETED if errors else ExitCode.OK)
    passed = report.policy_gate is None or not report.policy_gate.failed
    return int(ExitCode.OK if report.succeeded and passed else ExitCode.NOT_COMPLETED)


def write_all(report: RunReport, config: RunConfig) -> None:
    """The report, the renderers' outputs, and the kept report for the next night.

    Every one is tried even when another fails (a disk that filled during the run): a report
    that cannot be written where asked is saved in the state directory instead, and the run
    then ends with an error naming both, so the work done is never lost unsaid."""
    failed: list[str] = []
    state = _state(config)
    if config.report_path is not None:
        try:
            write_report(report, config.report_path)
        except OSError as exc:
            failed.append(f"{config.report_path} ({exc.strerror or exc})")
            failed[-1] += _saved_elsewhere(report, state)
    for name, path in config.outputs.items():
        try:
            write_outputs(report, RenderOutputs(**{name: path}))
        except OSError as exc:
            failed.append(f"{path} ({exc.strerror or exc})")
    if state is not None:
        try:
            state.keep(report)
        except OSError as exc:
            failed.append(f"the kept report {state.kept_report} ({exc.strerror or exc})")
    if failed:
        log.error("report.unwritten", files=failed)
        raise UnwrittenError(
            "could not write " + "; ".join(failed) + ": the promotions themselves ran, only "
            "these files are missing; free space or choose other paths for the next run"
        )


def _saved_elsewhere(report: RunReport, state: StateDir | None) -> str:
    if state is None:
        return ""
    fallback = state.path / "reports" / f"unsaved-{report.started_at:%Y%m%dT%H%M%S}.json"
    try:
        write_report(report, fallback, private=True)
    except OSError:
        return ""
    return f"; saved instead to {fallback}"


@contextmanager
def _signals_ignored(enabled: bool) -> Iterator[None]:
    """The report is written after the run; a late Ctrl-C must not lose it. Signal handlers
    can only be set in the main thread; elsewhere nobody delivers them to us anyway."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOPPING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _summary_fields(report: RunReport) -> dict[str, Any]:
    """``run.summary``: the report's summary, with the gate and the changes since the baseline."""
    fields = report.summary_fields()
    if report.policy_gate is not None:
        fields["policyGate"] = report.policy_gate.model_dump(mode="json", by_alias=True)
    if report.baseline is not None:
        fields["baseline"] = report.baseline.counts.model_dump(mode="json", by_alias=True)
    if report.error is not None:
        fields["error"] = report.error
    if report.firewall_error is not None:
        fields["firewallError"] = report.firewall_error
    if report.webhook is not None:
        fields["webhook"] = report.webhook.model_dump(mode="json", by_alias=True)
    fields["exitCode"] = report.exit_code
    return fields
