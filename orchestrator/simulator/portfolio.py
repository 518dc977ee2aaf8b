"""The seeded state of a simulated server: organizations, applications and their reports.

Everything here is derived from the seed, so the same seed gives the same portfolio; new
reports made by evaluations take their ids from a seeded generator too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.iq.models import (
    Application,
    Organization,
    PurgeScanFiles,
    ReportInfo,
    Stage,
)
from orchestrator.simulator.config import SimulatorConfig

ROOT_ORGANIZATION_ID = "ROOT_ORGANIZATION_ID"
SEEDED_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
"""Seeded reports are dated before this instant, so they do not depend on the clock."""

STAGES = tuple(Stage)
STAGE_SHARE = {Stage.STAGE_RELEASE: 0.75, Stage.RELEASE: 0.6, Stage.OPERATE: 0.25}
"""The leading share of seeded applications that has a scan at each stage past build."""
NEVER_SCANNED_SHARE = 10
"""One application in this many (the newest) has no scan at any stage yet."""

_ORGANIZATION_NAMES = (
    "Payments", "Platform", "Retail", "Data Science", "Mobile", "Identity", "Logistics",
    "Risk", "Marketing", "Infrastructure", "Customer Care", "Billing",
)  # fmt: skip
_DOMAINS = (
    "payments", "ledger", "checkout", "catalog", "search", "identity", "billing", "orders",
    "inventory", "pricing", "shipping", "loyalty", "notifications", "reporting", "accounts",
    "onboarding", "fraud", "analytics", "gateway", "profile",
)  # fmt: skip
_KINDS = ("api", "service", "web", "worker", "batch", "ui", "connector", "engine")


def new_id(rng: random.Random) -> str:
    """A 32-hex-digit id, the shape IQ gives internal ids."""
    return f"{rng.getrandbits(128):032x}"


@dataclass(slots=True)
class Report:
    """One evaluation's report. Its id is also its scan id, as in IQ ("scanId (reportId)")."""

    application_id: str
    stage: Stage
    report_id: str
    evaluation_date: datetime
    is_reevaluation: bool = False
    scan_file_kept: bool = True

    @property
    def scan_id(self) -> str:
        return self.report_id

    def links(self) -> dict[str, str]:
        """The four report links, relative to the server's base URL, as IQ gives them."""
        html = f"ui/links/application/{self.application_id}/report/{self.report_id}"
        data = f"api/v2/applications/{self.application_id}/reports/{self.report_id}"
        return {
            "report_html_url": html,
            "embeddable_report_html_url": f"{html}/embeddable",
            "report_pdf_url": f"{html}/pdf",
            "report_data_url": data,
        }

    def info(self, public_id: str) -> ReportInfo:
        return ReportInfo(
            application_id=self.application_id,
            stage=self.stage,
            scan_id=self.scan_id,
            evaluation_date=self.evaluation_date,
            latest_report_html_url=f"ui/links/application/{public_id}/latestReport/{self.stage}",
            is_reevaluation=self.is_reevaluation,
            is_for_monitoring=False,
            policy_evaluation_id=self.report_id,
            scan_trigger_type="RE_EVALUATE" if self.is_reevaluation else "CLI",
            **self.links(),
        )


@dataclass(slots=True)
class Portfolio:
    """The organizations, applications and report history of the simulated server."""

    organizations: list[Organization]
    applications: list[Application]
    reports: dict[str, dict[Stage, list[Report]]]
    """Per application id and stage, oldest first."""
    id_source: random.Random = field(repr=False)
    retention: PurgeScanFiles = PurgeScanFiles.DEFAULT
    """The ``purgeScanFiles`` setting: whether superseded scan files are kept."""

    _by_id: dict[str, Application] = field(default_factory=dict, init=False, repr=False)
    _by_public_id: dict[str, Application] = field(default_factory=dict, init=False, repr=False)
    _indexed: int = field(default=0, init=False, repr=False)
    """How many applications the indexes cover: every request looks one up, and a scan of
    the list made a run over thousands of applications quadratic."""

    def _index(self) -> None:
        if self._indexed != len(self.applications):
            self._by_id, self._by_public_id = {}, {}
            for app in self.applications:
                self._by_id.setdefault(app.id, app)
                self._by_public_id.setdefault(app.public_id, app)
            self._indexed = len(self.applications)

    def application(self, application_id: str) -> Application | None:
        self._index()
        return self._by_id.get(application_id)

    def by_public_id(self, public_id: str) -> Application | None:
        self._index()
        return self._by_public_id.get(public_id)

    def organization(self, organization_id: str) -> Organization | None:
        return next((o for o in self.organizations if o.id == organization_id), None)

    def latest(self, application_id: str, stage: Stage) -> Report | None:
        history = self.reports.get(application_id, {}).get(stage, [])
        return history[-1] if history else None

    def history(self, application_id: str, stage: Stage | None = None) -> list[Report]:
        """Reports of one application (and stage), newest first."""
        stages = STAGES if stage is None else (stage,)
        by_stage = self.reports.get(application_id, {})
        found = [r for s in stages for r in by_stage.get(s, [])]
        return sorted(found, key=lambda r: r.evaluation_date, reverse=True)

    def report(self, application_id: str, report_id: str) -> Report | None:
        return next((r for r in self.history(application_id) if r.report_id == report_id), None)

    def add_report(self, application_id: str, stage: Stage, *, reevaluation: bool) -> Report:
        """Record a new evaluation's report as the stage's latest.

        Under the default retention the stage's previous scan file is purged now, at the time
        of the next scan, as IQ does.
        """
        history = self.reports.setdefault(application_id, {}).setdefault(stage, [])
        if history and self.retention is PurgeScanFiles.DEFAULT:
            history[-1].scan_file_kept = False
        newest = max((r.evaluation_date for r in history), default=SEEDED_EPOCH)
        when = max(datetime.now(UTC), newest + timedelta(milliseconds=1))
        report = Report(application_id, stage, new_id(self.id_source), when, reevaluation)
        history.append(report)
        return report


def seed_portfolio(config: SimulatorConfig) -> Portfolio:
    """Build the portfolio the config describes; see docs/simulator.md for the stage rules."""
    rng = random.Random(f"portfolio:{config.seed}")
    root = Organization(id=ROOT_ORGANIZATION_ID, name="Root Organization")
    organizations = [root]
    for index in range(config.organizations):
        name = _ORGANIZATION_NAMES[index % len(_ORGANIZATION_NAMES)]
        if index >= len(_ORGANIZATION_NAMES):
            name = f"{name} {index // len(_ORGANIZATION_NAMES) + 1}"
        organizations.append(
            Organization(id=new_id(rng), name=name, parent_organization_id=ROOT_ORGANIZATION_ID)
        )
    seeded_orgs = organizations[1:] or [root]
    rng.shuffle(seeded_orgs)

    def organization_named(name: str) -> Organization:
        found = next((o for o in organizations if o.name == name), None)
        if found is None:
            found = Organization(
                id=new_id(random.Random(f"organization:{config.seed}:{name}")),
                name=name,
                parent_organization_id=ROOT_ORGANIZATION_ID,
            )
            organizations.append(found)
        return found

    for name in config.extra_organizations:
        organization_named(name)

    reserved = {public_id for public_id, _ in config.extra_applications}
    applications: list[Application] = []
    reports: dict[str, dict[Stage, list[Report]]] = {}
    public_ids = _public_ids(rng, config.apps, reserved)
    never_scanned = config.apps // NEVER_SCANNED_SHARE
    for index, public_id in enumerate(public_ids):
        app = Application(
            id=new_id(rng),
            public_id=public_id,
            name=public_id.replace("-", " ").title().replace("Api", "API").replace("Ui", "UI"),
            organization_id=rng.choice(seeded_orgs).id,
        )
        applications.append(app)
        stages: list[Stage] = []
        if index < config.apps - never_scanned:
            stages.append(Stage.BUILD)
            reached = (s for s, share in STAGE_SHARE.items() if index < round(share * config.apps))
            stages.extend(reached)
        reports[app.id] = _seed_reports(rng, app.id, stages)

    known = {a.public_id for a in applications}
    for public_id, organization_name in config.extra_applications:
        if public_id in known:
            continue
        known.add(public_id)
        extra_rng = random.Random(f"application:{config.seed}:{public_id}")
        owner = organization_named(organization_name) if organization_name else seeded_orgs[0]
        app = Application(
            id=new_id(extra_rng), public_id=public_id, name=public_id, organization_id=owner.id
        )
        applications.append(app)
        reports[app.id] = _seed_reports(extra_rng, app.id, list(STAGES))

    keep_old = config.purge_scan_files is PurgeScanFiles.WITH_REPORTS
    for by_stage in reports.values():
        for history in by_stage.values():
            for report in history[:-1]:
                report.scan_file_kept = keep_old
    return Portfolio(
        organizations,
        applications,
        reports,
        random.Random(f"reports:{config.seed}"),
        config.purge_scan_files,
    )


def _public_ids(rng: random.Random, count: int, reserved: set[str]) -> list[str]:
    taken = set(reserved)
    found: list[str] = []
    while len(found) < count:
        candidate = f"{rng.choice(_DOMAINS)}-{rng.choice(_KINDS)}"
        suffix = 2
        unique = candidate
        while unique in taken:
            unique = f"{candidate}-{suffix}"
            suffix += 1
        taken.add(unique)
        found.append(unique)
    return found


def _seed_reports(
    rng: random.Random, application_id: str, stages: list[Stage]
) -> dict[Stage, list[Report]]:
    """A short, dated history per stage: later stages were scanned more recently."""
    by_stage: dict[Stage, list[Report]] = {}
    for position, stage in enumerate(stages):
        count = rng.randint(2, 4) if stage is Stage.BUILD else rng.randint(1, 2)
        dates = sorted(
            SEEDED_EPOCH - timedelta(days=rng.uniform(1, 60) / (position + 1), minutes=index)
            for index in range(count)
        )
        promoted = stage is not Stage.BUILD
        by_stage[stage] = [
            Report(application_id, stage, new_id(rng), when, is_reevaluation=promoted)
            for when in dates
        ]
    return by_stage
