"""The seeded state of a simulated server: an organization tree, application categories,
applications and their reports.

Everything here is derived from the seed, so the same seed gives the same portfolio; new
reports made by evaluations take their ids from a seeded generator too. Categories, and which
applications were evaluated lately, are drawn from generators of their own, so adding them
changed no seed's applications.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.iq.models import (
    ROOT_ORGANIZATION_ID,
    Application,
    ApplicationCategory,
    ApplicationTag,
    Organization,
    PurgeScanFiles,
    Stage,
)
from orchestrator.iq.report_models import LatestReport, ReportInfo
from orchestrator.simulator.config import SimulatorConfig

SEEDED_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
"""Seeded reports are dated before this instant, so they do not depend on the clock."""

STAGES = tuple(Stage)
STAGE_SHARE = {Stage.STAGE_RELEASE: 0.75, Stage.RELEASE: 0.6, Stage.OPERATE: 0.25}
"""The leading share of seeded applications that has a scan at each stage past build."""
NEVER_SCANNED_SHARE = 10
"""One application in this many (the newest) has no scan at any stage yet."""

TOP_LEVEL_SHARE = 0.6
"""The share of seeded organizations directly under the root; the rest sit below them, every
third of those one level deeper still."""

CATEGORIES: tuple[tuple[str, str, float], ...] = (
    ("Tier-1", "dark-red", 0.3),
    ("Internal", "light-blue", 0.4),
    ("PCI", "orange", 0.15),
    ("Customer-Facing", "dark-green", 0.3),
)
"""Application categories the root organization owns: name, colour, share of applications."""
EXTRA_CATEGORY_SHARE = 0.3
"""The share of seeded applications that carries each of ``extra_categories``."""
EXTRA_CATEGORY_COLOUR = "light-purple"

RECENT_WITHIN = timedelta(hours=12)
"""A recently evaluated application's latest reports were made this long before seeding, or
less: inside a ``skipIfEvaluatedWithin`` of a day, outside one of a few minutes."""
RECENT_AT_LEAST = timedelta(minutes=30)

_ORGANIZATION_NAMES = (
    "Payments", "Platform", "Retail", "Data Science", "Mobile", "Identity", "Logistics",
    "Risk", "Marketing", "Infrastructure", "Customer Care", "Billing",
)  # fmt: skip
_TEAMS = ("Core", "Cards", "Web", "APIs", "Data", "Partners")
"""Names of sub-organizations, after their parent's: "Payments Cards"."""
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

    def links(self, public_id: str, *, legacy: bool = False) -> dict[str, str]:
        """The four report links, relative to the server's base URL, as IQ gives them: with
        the public id and ``/raw`` (current releases), or the internal id and the bare data
        path (``legacy``, as the Promote Scan page's older example shows)."""
        app = self.application_id if legacy else public_id
        html = f"ui/links/application/{app}/report/{self.report_id}"
        data = f"api/v2/applications/{app}/reports/{self.report_id}"
        return {
            "report_html_url": html,
            "embeddable_report_html_url": f"{html}/embeddable",
            "report_pdf_url": f"{html}/pdf",
            "report_data_url": data if legacy else f"{data}/raw",
        }

    def latest(self, public_id: str, *, legacy: bool = False) -> LatestReport:
        """The report as the latest-reports listings give it (no scan id of its own)."""
        return LatestReport(
            application_id=self.application_id,
            stage=self.stage,
            evaluation_date=self.evaluation_date,
            latest_report_html_url=f"ui/links/application/{public_id}/latestReport/{self.stage}",
            **self.links(public_id, legacy=legacy),
        )

    def info(self, public_id: str, *, legacy: bool = False) -> ReportInfo:
        """The report as an application's history gives it."""
        return ReportInfo(
            **self.latest(public_id, legacy=legacy).model_dump(),
            scan_id_field=self.scan_id,
            is_reevaluation=self.is_reevaluation,
            is_for_monitoring=False,
            policy_evaluation_id=self.report_id,
            scan_trigger_type="RE_EVALUATE" if self.is_reevaluation else "CLI",
        )


@dataclass(slots=True)
class Portfolio:
    """The organizations, categories, applications and report history of the server."""

    organizations: list[Organization]
    applications: list[Application]
    reports: dict[str, dict[Stage, list[Report]]]
    """Per application id and stage, oldest first."""
    id_source: random.Random = field(repr=False)
    retention: PurgeScanFiles | None = None
    """The ``purgeScanFiles`` setting; None (unset, IQ's default) purges superseded scan files."""
    categories: list[ApplicationCategory] = field(default_factory=list)

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

    def resolve(self, public_or_internal_id: str) -> Application | None:
        """The application a report data path names: by public id, as current releases put
        it in their links, else by internal id, as older ones did."""
        return self.by_public_id(public_or_internal_id) or self.application(public_or_internal_id)

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
        if history and self.retention is None:
            history[-1].scan_file_kept = False
        newest = max((r.evaluation_date for r in history), default=SEEDED_EPOCH)
        when = max(datetime.now(UTC), newest + timedelta(milliseconds=1))
        report = Report(application_id, stage, new_id(self.id_source), when, reevaluation)
        history.append(report)
        return report


class _Tree:
    """Builds the organization tree; a name may be a ``Parent/Child`` path."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.root = Organization(id=ROOT_ORGANIZATION_ID, name="Root Organization")
        self.organizations = [self.root]

    def add(self, name: str, parent: Organization, rng: random.Random) -> Organization:
        found = Organization(id=new_id(rng), name=name, parent_organization_id=parent.id)
        self.organizations.append(found)
        return found

    def path(self, path: str) -> Organization:
        """The organization at ``path`` (names separated by '/'), made where missing."""
        parent = self.root
        for name in path.split("/"):
            children = [o for o in self.organizations if o.parent_organization_id == parent.id]
            found = next((o for o in children if o.name == name), None)
            if found is None:
                rng = random.Random(f"organization:{self.seed}:{path}:{name}")
                found = self.add(name, parent, rng)
            parent = found
        return parent

    def named(self, name: str) -> Organization:
        """An organization of that name anywhere in the tree, else one made under the root;
        a path names one exactly."""
        if "/" in name:
            return self.path(name)
        found = next((o for o in self.organizations if o.name == name), None)
        return found or self.path(name)


def _seed_organizations(tree: _Tree, rng: random.Random, count: int) -> None:
    """``count`` organizations: the first :data:`TOP_LEVEL_SHARE` under the root, each of the
    rest under a top-level one ("Payments Cards"), every third of those a level deeper."""
    top = max(1, round(count * TOP_LEVEL_SHARE)) if count else 0
    firsts: list[Organization] = []
    for index in range(top):
        name = _ORGANIZATION_NAMES[index % len(_ORGANIZATION_NAMES)]
        if index >= len(_ORGANIZATION_NAMES):
            name = f"{name} {index // len(_ORGANIZATION_NAMES) + 1}"
        firsts.append(tree.add(name, tree.root, rng))
    children: list[Organization] = []
    for index in range(count - top):
        deeper = index % 3 == 2 and children
        parent = children[-1] if deeper else firsts[index % top]
        team = _TEAMS[index % len(_TEAMS)]
        children.append(tree.add(f"{parent.name} {team}", parent, rng))


def seed_portfolio(config: SimulatorConfig) -> Portfolio:
    """Build the portfolio the config describes; see docs/simulator.md for the stage rules."""
    rng = random.Random(f"portfolio:{config.seed}")
    tree = _Tree(config.seed)
    _seed_organizations(tree, rng, config.organizations)
    seeded_orgs = tree.organizations[1:] or [tree.root]
    rng.shuffle(seeded_orgs)
    for name in config.extra_organizations:
        tree.named(name)

    categories = _categories(config.seed, config.extra_categories)
    tagging = random.Random(f"categories:{config.seed}")
    reserved = {public_id for public_id, _ in config.extra_applications}
    applications: list[Application] = []
    reports: dict[str, dict[Stage, list[Report]]] = {}
    public_ids = _public_ids(rng, config.apps, reserved)
    never_scanned = config.apps // NEVER_SCANNED_SHARE
    for index, public_id in enumerate(public_ids):
        app_id = new_id(rng)
        app = Application(
            id=app_id,
            public_id=public_id,
            name=public_id.replace("-", " ").title().replace("Api", "API").replace("Ui", "UI"),
            organization_id=rng.choice(seeded_orgs).id,
            application_tags=[
                *_tags(tagging, app_id, categories),
                *_extra_tags(config.seed, app_id, categories[len(CATEGORIES) :]),
            ],
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
        owner = tree.named(organization_name) if organization_name else seeded_orgs[0]
        app_id = new_id(extra_rng)
        app = Application(
            id=app_id,
            public_id=public_id,
            name=public_id,
            organization_id=owner.id,
            application_tags=[],
        )
        applications.append(app)
        reports[app.id] = _seed_reports(extra_rng, app.id, list(STAGES))

    if config.recent_reports:
        _date_recently(reports, applications[: config.apps], config)
    keep_old = config.purge_scan_files is PurgeScanFiles.WITH_REPORTS
    for by_stage in reports.values():
        for history in by_stage.values():
            for report in history[:-1]:
                report.scan_file_kept = keep_old
    return Portfolio(
        tree.organizations,
        applications,
        reports,
        random.Random(f"reports:{config.seed}"),
        config.purge_scan_files,
        categories,
    )


def _categories(seed: int, extra: tuple[str, ...]) -> list[ApplicationCategory]:
    rng = random.Random(f"category-ids:{seed}")
    seeded = [
        ApplicationCategory(
            id=new_id(rng),
            name=name,
            description=f"{name} applications",
            color=colour,
            organization_id=ROOT_ORGANIZATION_ID,
        )
        for name, colour, _ in CATEGORIES
    ]
    known = {c.name.casefold() for c in seeded}
    for name in dict.fromkeys(extra):
        if name.casefold() in known:
            continue
        known.add(name.casefold())
        seeded.append(
            ApplicationCategory(
                id=new_id(random.Random(f"category-id:{seed}:{name}")),
                name=name,
                description=f"{name} applications",
                color=EXTRA_CATEGORY_COLOUR,
                organization_id=ROOT_ORGANIZATION_ID,
            )
        )
    return seeded


def _tags(
    rng: random.Random, application_id: str, categories: list[ApplicationCategory]
) -> list[ApplicationTag]:
    shares = {name: share for name, _, share in CATEGORIES}
    return [
        ApplicationTag(id=new_id(rng), tag_id=c.id, application_id=application_id)
        for c in categories
        if c.name in shares and rng.random() < shares[c.name]
    ]


def _extra_tags(
    seed: int, application_id: str, extra: list[ApplicationCategory]
) -> list[ApplicationTag]:
    """The extra categories an application carries, each drawn by a generator of its own, so
    that naming one more category in a manifest changes no other application's."""
    tags = []
    for category in extra:
        rng = random.Random(f"extra-category:{seed}:{category.name}:{application_id}")
        if rng.random() < EXTRA_CATEGORY_SHARE:
            tags.append(
                ApplicationTag(id=new_id(rng), tag_id=category.id, application_id=application_id)
            )
    return tags


def _date_recently(
    reports: dict[str, dict[Stage, list[Report]]],
    applications: list[Application],
    config: SimulatorConfig,
) -> None:
    """Date the latest reports of a seeded share of the applications within the last
    :data:`RECENT_WITHIN` by the clock, later stages more recently, as a team that just ran
    its pipeline would have them; the rest keep their fixed dates."""
    rng = random.Random(f"recent:{config.seed}")
    now = datetime.now(UTC)
    span = (RECENT_WITHIN - RECENT_AT_LEAST).total_seconds()
    for app in applications:
        if rng.random() >= config.recent_reports:
            continue
        by_stage = reports.get(app.id, {})
        latest = [history[-1] for stage in STAGES if (history := by_stage.get(stage))]
        ages = sorted((rng.uniform(0, span) for _ in latest), reverse=True)
        for report, age in zip(latest, ages, strict=True):
            report.evaluation_date = now - RECENT_AT_LEAST - timedelta(seconds=age)


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
