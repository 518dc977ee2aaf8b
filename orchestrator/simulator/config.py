"""What a simulator run looks like: portfolio size, timing, credentials, release and faults.

Both are frozen values, so a test or the CLI builds one, hands it over, and nothing changes it
behind the simulator's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from orchestrator.iq.models import PurgeScanFiles

CURRENT_RESULTS_API_RELEASE = 175
"""From this IQ release on, Repository Results has the owner-typed endpoint; before it, the
per-repository one."""


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """The misbehaviour to inject into the API routes; every fault is off by default.

    Rates are fractions of API requests (0..1). ``throttle_queue_depth`` turns on 429 answers to
    promoteScan while that many evaluations wait in the queue. ``outage_after``/``outage_for``
    take the server away once, ``outage_after`` seconds after start, for ``outage_for`` seconds.
    """

    fail_rate: float = 0.0
    throttle_queue_depth: int | None = None
    retry_after: float = 1.0
    drop_rate: float = 0.0
    latency: float = 0.0
    latency_jitter: float = 0.5
    failing_apps: tuple[str, ...] = ()
    failing_rate: float = 0.0
    outage_after: float | None = None
    outage_for: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fail_rate", "drop_rate", "failing_rate", "latency_jitter"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.latency < 0 or self.retry_after < 0 or self.outage_for < 0:
            raise ValueError("latency, retry_after and outage_for cannot be negative")
        if self.throttle_queue_depth is not None and self.throttle_queue_depth < 0:
            raise ValueError("throttle_queue_depth cannot be negative")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """One simulated IQ Server. The same seed always gives the same portfolio.

    ``eval_time`` is the median evaluation time in seconds; applications spread lognormally
    around it (``eval_sigma``) and two runs of one application differ by about ``eval_noise``.
    ``extra_applications`` are (publicId, organization name or None) pairs added to the seeded
    ones, with a scan at every stage; ``extra_organizations`` are organization names to create;
    ``extra_categories`` are application categories to create, each carried by a seeded share
    of the applications. ``recent_reports`` is the share of seeded applications whose latest
    reports were made in the last hours before the portfolio was seeded (so by the clock);
    the rest, and every report while it is 0, are dated before a fixed instant.

    The rest model how real servers differ (docs/simulator.md cites the evidence for each):
    ``report_links`` "current" gives report links with the public id and ``/raw`` as current
    releases do, "legacy" the internal id and the bare path of older ones; ``policy_paging``
    False ignores ``page``/``pageSize`` on policy data, as releases before paging did;
    ``no_evaluate`` names applications the user may see but not evaluate (403);
    ``forget_statuses_after`` forgets promotion statuses that many seconds after submission,
    as releases that keep them in memory do after a restart or hours later; ``csrf`` demands
    the CSRF header and cookie on every non-GET request, as behind reverse-proxy
    authentication; ``admin`` False refuses the configuration API (403).

    ``webhook_url`` receives IQ's Application Evaluation webhook for every completed
    evaluation, signed with ``webhook_secret`` if set, never retried; a seeded share
    ``webhook_loss`` of deliveries is never sent. ``webhook_foreign`` is the share of accepted
    promotions that come with foreign evaluations of the same application (CI scans: one at
    another stage, one at the target stage finished before the promotion was accepted, one
    while it runs), each delivered too. ``webhook_format`` "legacy" sends the older payload
    (``ownerId`` only, no ``application`` nor ``reportId``).
    """

    apps: int = 20
    organizations: int = 3
    seed: int = 1
    workers: int = 4
    eval_time: float = 0.05
    context_path: str = ""
    release: int = 190
    username: str = "admin"
    password: str = "admin123"  # noqa: S105 - IQ Server's well-known default, for a local fake
    faults: FaultConfig = field(default_factory=FaultConfig)
    extra_applications: tuple[tuple[str, str | None], ...] = ()
    extra_organizations: tuple[str, ...] = ()
    extra_categories: tuple[str, ...] = ()
    recent_reports: float = 0.0
    eval_noise: float = 0.15
    eval_sigma: float = 0.5
    purge_scan_files: PurgeScanFiles | None = None
    """None: the property is unset, IQ's default (only each stage's latest scan file kept)."""
    report_links: Literal["current", "legacy"] = "current"
    policy_paging: bool = True
    no_evaluate: tuple[str, ...] = ()
    forget_statuses_after: float | None = None
    csrf: bool = False
    admin: bool = True
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_loss: float = 0.0
    webhook_foreign: float = 0.0
    webhook_format: Literal["current", "legacy"] = "current"

    def __post_init__(self) -> None:
        if self.purge_scan_files is not None:
            # A plain string ("withReports") is accepted and kept as the enum.
            object.__setattr__(self, "purge_scan_files", PurgeScanFiles(self.purge_scan_files))
        if self.report_links not in ("current", "legacy"):
            raise ValueError(
                f"report_links must be 'current' or 'legacy', not {self.report_links!r}"
            )
        if self.forget_statuses_after is not None and self.forget_statuses_after < 0:
            raise ValueError("forget_statuses_after cannot be negative")
        if not 0.0 <= self.recent_reports <= 1.0:
            raise ValueError(f"recent_reports must be between 0 and 1, not {self.recent_reports}")
        if self.apps < 0 or self.organizations < 0:
            raise ValueError("apps and organizations cannot be negative")
        if self.workers < 1:
            raise ValueError("at least one evaluation worker is needed")
        if self.eval_time < 0 or self.eval_noise < 0 or self.eval_sigma < 0:
            raise ValueError("eval_time, eval_noise and eval_sigma cannot be negative")
        if not 0.0 <= self.webhook_loss <= 1.0 or not 0.0 <= self.webhook_foreign <= 1.0:
            raise ValueError("webhook_loss and webhook_foreign must be between 0 and 1")
        url = self.webhook_url
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be an http:// or https:// URL: {url!r}")
        if self.webhook_format not in ("current", "legacy"):
            raise ValueError(
                f"webhook_format must be 'current' or 'legacy', not {self.webhook_format!r}"
            )
        if self.context_path and not self.context_path.startswith("/"):
            raise ValueError(f"context_path must start with '/': {self.context_path!r}")

    @property
    def prefix(self) -> str:
        """The context path without a trailing slash: '' or e.g. '/iq'."""
        return self.context_path.rstrip("/")

    @property
    def current_results_api(self) -> bool:
        """Whether this release serves the owner-typed Repository Results endpoint."""
        return self.release >= CURRENT_RESULTS_API_RELEASE
