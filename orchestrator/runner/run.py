"""One run from request to written report: what ``iq-promote run`` does, for any caller.

:func:`run` resolves the request, holds the state directory, watches for signals, executes
(:mod:`orchestrator.runner.execute`), compares with the baseline, applies the gate, decides the
exit code and writes the report, the renderers' outputs and the kept report. The CLI only
displays what happens and exits with ``report.exit_code``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from orchestrator.errors import ExitCode, sole_error
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.control import RunControl
from orchestrator.promote.journal import Journal, ResumePoint
from orchestrator.promote.signals import watch_signals
from orchestrator.render import write_outputs
from orchestrator.report.baseline import compare
from orchestrator.report.gate import gate
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport, Summary, write_report
from orchestrator.runner.config import RunConfig
from orchestrator.runner.connection import WebhookTarget, connected
from orchestrator.runner.execute import Executed, RunContext, execute
from orchestrator.runner.request import RunRequest, resolve
from orchestrator.runner.state_dir import StateDir

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
    report = _judged(await _executed(config, control), config, control)
    with _signals_ignored(config.handle_signals):
        _write(report, config)
    log.info("run.summary", report=str(config.report_path), **_summary_fields(report))
    return report


async def _executed(config: RunConfig, control: RunControl) -> RunReport:
    """Hold the state directory and run, with signals watched; the report of what was done."""
    state = _state(config)
    with ExitStack() as stack:
        journal: Journal | None = None
        resume: ResumePoint | None = None
        if state is not None:
            journal = stack.enter_context(state.held())
            if config.resume:
                resume = journal.resume_point(config.manifest_path, config.manifest_digest)
                if resume is None:
                    log.info("run.nothing_to_resume", manifest=config.manifest_path)
        started = resume.started_at if resume else datetime.now(UTC)
        if journal is not None and resume is None:
            journal.begin(config.manifest_path, config.manifest_digest, started)
        clock = time.monotonic()
        listener = _listener(config)
        try:
            async with anyio.create_task_group() as tg:
                if config.handle_signals:
                    tg.start_soon(watch_signals, control, config.grace)
                if listener is not None:
                    await tg.start(listener.serve)
                async with connected(
                    config.client, config.manifest, _deliveries(listener)
                ) as settings:
                    hints = listener.board if listener is not None else None
                    context = RunContext(control, journal, resume, hints)
                    executed = await execute(config, settings, context)
                tg.cancel_scope.cancel()
        except ExceptionGroup as group:
            raise sole_error(group) from None
        if listener is not None:
            executed.webhook = listener.summary()
        if journal is not None:
            journal.end(executed.results)
    elapsed = time.monotonic() - clock
    if resume is not None:
        elapsed = (datetime.now(UTC) - started).total_seconds()
    return _report(config, executed, started, elapsed)


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
    return judged.model_copy(update={"exit_code": exit_code(judged, control)})


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


def _write(report: RunReport, config: RunConfig) -> None:
    """The report, the renderers' outputs, and the kept report for the next night."""
    if config.report_path is not None:
        write_report(report, config.report_path)
    write_outputs(report, config.outputs)
    state = _state(config)
    if state is not None:
        state.keep(report)


@contextmanager
def _signals_ignored(enabled: bool) -> Iterator[None]:
    """The report is written after the run; a late Ctrl-C must not lose it. Signal handlers
    can only be set in the main thread; elsewhere nobody delivers them to us anyway."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
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
    if report.firewall_error is not None:
        fields["firewallError"] = report.firewall_error
    if report.webhook is not None:
        fields["webhook"] = report.webhook.model_dump(mode="json", by_alias=True)
    fields["exitCode"] = report.exit_code
    return fields
