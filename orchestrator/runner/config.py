"""A run's configuration, resolved: every choice made, every input read and checked.

:func:`orchestrator.runner.request.resolve` makes one from a
:class:`~orchestrator.runner.request.RunRequest` (what ``iq-promote run`` does); a program that
already holds a parsed manifest may make one directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from orchestrator import defaults
from orchestrator.iq.transport import ClientSettings
from orchestrator.manifest.model import Manifest
from orchestrator.promote.hints import WebhookSettings
from orchestrator.promote.polling import PollStrategy
from orchestrator.promote.progress import ProgressTracker
from orchestrator.render import RenderOutputs
from orchestrator.report.gate import Threshold
from orchestrator.runner.state_dir import Baseline


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything a run needs, already resolved from options, environment and manifest."""

    manifest: Manifest
    manifest_path: str
    """The manifest as the report names it."""
    manifest_id: str | None = None
    """What the journal knows the manifest by (its real path, however it was written);
    ``manifest_path`` by default."""
    client: ClientSettings | None = None
    """Where the server is and how to talk to it; None runs against the embedded simulator,
    seeded with what the manifest names."""
    concurrency: int | Literal["auto"] = defaults.CONCURRENCY
    promotion_timeout: float = defaults.PROMOTION_TIMEOUT
    server_down_timeout: float = defaults.SERVER_DOWN_TIMEOUT
    grace: float = defaults.GRACE
    state_dir: Path | None = None
    """Journal, lock and kept report; None keeps no state (nothing to resume, no history)."""
    state_name: str | None = None
    """The kept report's name in the state directory; by default the manifest's stem."""
    resume: bool = False
    dry_run: bool = False
    ensure_scan_retention: bool = False
    fetch_results: bool | None = None
    """Read each completed promotion's report data and count its violations; None: only for
    re-evaluations (same stage), where the new verdict is the point of the run."""
    fail_on: Threshold | None = None
    """Exit 1 when a completed promotion's report has a violation this severe or worse."""
    baseline: Baseline | None = None
    """The earlier report to compare with, already read."""
    report_path: Path | None = None
    """Where to write the JSON report; None keeps it in memory only."""
    outputs: RenderOutputs = field(default_factory=RenderOutputs)
    handle_signals: bool = True
    strategy: PollStrategy | None = None
    """When to poll; by default a
    :class:`~orchestrator.promote.learned_polling.LearnedSchedule` that learns from this run
    and from the evaluation times the journal kept of earlier ones."""
    progress: ProgressTracker | None = None
    """Told of every state change, for a progress display."""
    webhook: WebhookSettings | None = None
    """Listen for IQ's Application Evaluation webhook while promotions run; None: poll only."""

    @property
    def journal_id(self) -> str:
        return self.manifest_id or self.manifest_path

    @property
    def wants_results(self) -> bool | None:
        """Whether to read report data: asked, else always under a gate, else by transition."""
        if self.fetch_results is None and self.fail_on is not None:
            return True
        return self.fetch_results
