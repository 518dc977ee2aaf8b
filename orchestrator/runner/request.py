"""What a run is asked to do, as a value, and its resolution into a :class:`RunConfig`.

``iq-promote run`` builds a :class:`RunRequest` from its options; a Python caller builds one
directly. :func:`resolve` then finds, before anything is sent, every problem that can be known
without the server: the manifest, the credentials' form, the output paths, the baseline.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from orchestrator import defaults
from orchestrator.errors import UsageError
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings
from orchestrator.manifest.model import Manifest, load_manifest
from orchestrator.manifest.webhook import listen_address
from orchestrator.promote.hints import ListingSweep, WebhookSettings
from orchestrator.promote.polling import PollStrategy
from orchestrator.promote.progress import ProgressTracker
from orchestrator.render import RenderOutputs, check_output_paths
from orchestrator.report.gate import Threshold
from orchestrator.report.run_report import load_report
from orchestrator.runner.config import RunConfig
from orchestrator.runner.connection import client_settings
from orchestrator.runner.state_dir import Baseline, StateDir, default_state_dir
from orchestrator.secrets import MIN_SECRET, SCRUBBER

log = structlog.get_logger("orchestrator.runner")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """The options of ``iq-promote run``, as values; each None means "the default"."""

    manifest: Path
    server_url: str | None = None
    username: str | None = None
    """The password is never an option: it comes from IQ_PASSWORD (or the manifest's
    reference to another variable), since a command line is visible to every user."""
    ca_bundle: Path | None = None
    proxy: str | None = None
    simulate: bool = False
    """Run against the embedded simulator, seeded with what the manifest names."""
    concurrency: int | Literal["auto"] | None = None
    promotion_timeout: float | None = None
    server_down_timeout: float = defaults.SERVER_DOWN_TIMEOUT
    grace: float = defaults.GRACE
    report: Path | None = None
    """Where to write the JSON report [default: reports/<manifest name>.json]."""
    outputs: RenderOutputs = field(default_factory=RenderOutputs)
    state_dir: Path | None = None
    resume: bool = False
    dry_run: bool = False
    ensure_scan_retention: bool = False
    fetch_results: bool | None = None
    fail_on: Threshold | None = None
    baseline: Path | None = None
    """The report to compare with [default: the kept report of the last complete run]."""
    no_baseline: bool = False
    handle_signals: bool = True
    """Stop gracefully on SIGINT and SIGTERM (only where signals can be received)."""
    env: Mapping[str, str] | None = None
    """The environment to read IQ_* and ${VAR} from; None: the process environment."""
    retry: RetryPolicy | None = None
    strategy: PollStrategy | None = None
    progress: ProgressTracker | None = None
    webhook_listen: str | None = None
    """HOST:PORT to listen on for IQ's Application Evaluation webhook [default: the
    manifest's webhook.listen, else none]; the secret comes from IQ_WEBHOOK_SECRET."""
    webhook_insecure: bool = False
    """Take unsigned deliveries when IQ_WEBHOOK_SECRET is unset."""
    no_webhook_sweep: bool = False
    """Find lost deliveries by polls alone, whatever the manifest's webhook.sweep says."""


OLD_STATE_DIR = ".iq-promote-state"
"""Where earlier versions kept a manifest's state by default: beside its report."""


def _say_if_state_was_left_behind(report_path: Path, state: Path) -> None:
    """Earlier versions kept the state beside the report; a run that finds it there and none
    in the new place says how to move it, rather than quietly starting without its journal
    and baseline."""
    old = report_path.parent / OLD_STATE_DIR
    if old.is_dir() and not state.exists():
        log.warning(
            "state.left_behind",
            old=str(old),
            new=str(state),
            message=f"an earlier version kept this run's journal and baseline in {old}; "
            f"move it to keep them (mv {old} {state}), or give --state-dir {old}",
        )


def resolve(request: RunRequest) -> RunConfig:
    """The run's configuration; raises ManifestError or UsageError (exit 2) for anything wrong
    that can be known before the first request, so that nothing is sent: the manifest, the
    credentials' form, the state directory, and every output path."""
    env = os.environ if request.env is None else request.env
    manifest = load_manifest(request.manifest, env=env)
    report_path = request.report or Path("reports") / f"{request.manifest.stem}.json"
    state = StateDir(
        # Known by the real file's name, as the default folder is: a symlink shares the state.
        request.state_dir or default_state_dir(request.manifest, env),
        request.manifest.resolve().stem,
    )
    inputs = {"the manifest": request.manifest} | (
        {"--baseline": request.baseline} if request.baseline else {}
    )
    inputs |= _tls_files(request, manifest)
    check_output_paths(
        request.outputs,
        inputs,
        also={"--report": report_path},
        protected={"the state directory": state.path},
    )
    if request.state_dir is None:
        _say_if_state_was_left_behind(report_path, state.path)
    if not request.dry_run:
        state.prepare()
    baseline = None
    if not request.no_baseline:
        baseline = (
            Baseline(load_report(request.baseline), str(request.baseline))
            if request.baseline is not None
            else state.kept_baseline()
        )
    concurrency = request.concurrency or manifest.concurrency or defaults.CONCURRENCY
    return RunConfig(
        manifest=manifest,
        manifest_path=str(request.manifest),
        manifest_id=str(request.manifest.resolve()),
        client=None if request.simulate else _settings(request, manifest, env),
        concurrency=concurrency,
        promotion_timeout=request.promotion_timeout or manifest.promotion_timeout,
        server_down_timeout=request.server_down_timeout,
        grace=request.grace,
        state_dir=state.path,
        state_name=state.name,
        resume=request.resume,
        dry_run=request.dry_run,
        ensure_scan_retention=request.ensure_scan_retention,
        fetch_results=request.fetch_results,
        fail_on=request.fail_on,
        baseline=baseline,
        report_path=report_path,
        outputs=request.outputs,
        handle_signals=request.handle_signals,
        strategy=request.strategy,
        progress=request.progress,
        webhook=_webhook(request, manifest, env),
    )


def _tls_files(request: RunRequest, manifest: Manifest) -> dict[str, Path]:
    """The certificate files the run reads, as inputs no output may overwrite: a report
    written over the CA bundle or the client key would break every later night's TLS."""
    server = manifest.server
    named = {
        "--ca-bundle": request.ca_bundle,
        "server.caBundle": server.ca_bundle if server else None,
        "server.clientCert": server.client_cert if server else None,
        "server.clientKey": server.client_key if server else None,
    }
    return {name: Path(path) for name, path in named.items() if path is not None}


WEBHOOK_SECRET_VARIABLE = "IQ_WEBHOOK_SECRET"  # noqa: S105 - the name, not the secret


def _webhook(
    request: RunRequest, manifest: Manifest, env: Mapping[str, str]
) -> WebhookSettings | None:
    """Where to listen for IQ's webhook and with which secret; the option wins over the
    manifest. The secret is registered with the log scrubber before anything is logged."""
    section = manifest.webhook
    text = request.webhook_listen or (section.listen if section else None)
    if text is None:
        for given, option in (
            (request.webhook_insecure, "--webhook-insecure"),
            (request.no_webhook_sweep, "--no-webhook-sweep"),
        ):
            if given:
                raise UsageError(
                    f"{option} without a listener: give --webhook-listen HOST:PORT "
                    "(or webhook.listen in the manifest)"
                )
        return None
    try:
        listen = listen_address(text)
    except ValueError as exc:
        raise UsageError(f"--webhook-listen: {exc}") from None
    secret = env.get(WEBHOOK_SECRET_VARIABLE) or None
    if secret is None and not request.webhook_insecure:
        raise UsageError(
            f"no webhook secret: set {WEBHOOK_SECRET_VARIABLE} to the secret of IQ's webhook "
            "(System Preferences > Webhooks), or give --webhook-insecure to take unsigned "
            "deliveries"
        )
    if secret is not None:
        if len(secret) < MIN_SECRET:
            raise UsageError(
                f"{WEBHOOK_SECRET_VARIABLE} has fewer than {MIN_SECRET} characters: too short "
                "to sign deliveries safely, or to keep out of logs and reports; give IQ's "
                "webhook a longer secret"
            )
        SCRUBBER.add(secret)
    swept = not request.no_webhook_sweep and (section is None or section.sweep)
    return WebhookSettings(listen, secret, sweep=ListingSweep() if swept else None)


def _settings(request: RunRequest, manifest: Manifest, env: Mapping[str, str]) -> ClientSettings:
    settings = client_settings(
        request.server_url,
        request.username,
        ca_bundle=request.ca_bundle,
        proxy=request.proxy,
        server=manifest.server,
        env=env,
    )
    if request.retry is not None:
        settings = dataclasses.replace(settings, retry=request.retry)
    return settings
