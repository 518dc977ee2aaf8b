"""From a manifest and the server's listings to ordered chains of promotions.

This is the only step that looks applications up, and it does so in bulk, whatever the
portfolio's size: one listing of organizations; one of every application (with their
categories when an entry selects by category), or batched public id look-ups when only a few
are named; the categories in use when an entry names some; and the latest report of every
application and stage when an entry selects, or skips what was evaluated lately.
:func:`build_plan` lays the chains out from those answers alone, so it is tested directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from orchestrator.errors import ManifestError, ManifestProblem
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import Application, ApplicationCategory, Organization
from orchestrator.iq.report_models import LatestReport
from orchestrator.manifest.model import Manifest, PromotionEntry, Transition
from orchestrator.promote.applicable import Applicability, LatestEvaluations, Skip
from orchestrator.promote.selection import Chooser, OrganizationTree, SelectionWarning
from orchestrator.report.results import transition_label

log = structlog.get_logger("orchestrator.promote")

LIST_ALL_ABOVE = 200
"""Above this many named public ids, one full listing is cheaper than batched look-ups."""


@dataclass(frozen=True, slots=True)
class Target:
    """An application the server knows."""

    public_id: str
    application_id: str
    organization: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """One transition of one application, at its place in the report (``position``)."""

    position: int
    entry_index: int
    transition_index: int
    transition: Transition

    @property
    def label(self) -> str:
        t = self.transition
        return transition_label(t.source_stage, t.scan_id, t.target_stage)


@dataclass(frozen=True, slots=True)
class Chain:
    """The transitions one manifest entry asks of one application, run in order."""

    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class ApplicationWork:
    """Everything the manifest asks of one application: its chains, one after another."""

    target: Target
    chains: tuple[Chain, ...]

    @property
    def steps(self) -> Iterable[Step]:
        for chain in self.chains:
            yield from chain.steps


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A step that cannot run because its application, organization or category is unknown."""

    step: Step
    public_id: str | None
    organization: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A step that will not run because its chain does not apply to the application."""

    step: Step
    target: Target
    skip: Skip


@dataclass(frozen=True, slots=True)
class EntrySummary:
    """What one manifest entry came to: how many applications, and why some will not run."""

    index: int
    name: str | None
    selected: int
    """Applications the entry chose (or named and the server knows), after exclusions."""
    excluded: int
    skipped: Mapping[str, int]
    """Applications skipped, by why (``no operate scan``)."""
    unresolved: int
    """Public ids, organizations and categories the server does not know."""

    @property
    def to_run(self) -> int:
        return self.selected - sum(self.skipped.values())


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run will do, in manifest order."""

    work: tuple[ApplicationWork, ...]
    unresolved: tuple[Unresolved, ...]
    total: int
    skipped: tuple[Skipped, ...] = ()
    entries: tuple[EntrySummary, ...] = ()
    warnings: tuple[SelectionWarning, ...] = ()
    """Values that select nothing, most likely typos."""

    @property
    def uses_scan_ids(self) -> bool:
        return any(step.transition.scan_id for w in self.work for step in w.steps)


@dataclass(frozen=True, slots=True)
class Listings:
    """What the server answered to the plan's look-ups; :func:`build_plan` needs nothing more."""

    applications: Sequence[Application]
    organizations: Sequence[Organization]
    categories: Sequence[ApplicationCategory] = ()
    """The categories in use, when an entry selects by category."""
    latest_reports: Sequence[LatestReport] | None = None
    """Every application's latest report per stage; None when not asked, and then nothing is
    checked against stages or ages."""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the listings were read: ages are counted to it."""


def wants_reports(manifest: Manifest) -> bool:
    """Whether the plan needs the latest reports: an entry selects (an application without a
    scan at the source stage is then skipped), or skips what was evaluated lately."""
    return any(e.selects or manifest.skip_window(e) for e in manifest.promotions)


async def resolve_plan(manifest: Manifest, client: IqClient) -> Plan:
    """Look the manifest's applications up on the server and lay out the chains.

    Raises ManifestError when an entry names an organization two organizations share."""
    organizations = await client.organizations()
    named = [pid for entry in manifest.promotions for pid in entry.applications or ()]
    by_category = any(e.categories for e in manifest.promotions)
    if any(e.selects for e in manifest.promotions) or len(set(named)) > LIST_ALL_ABOVE:
        applications = await client.applications(include_categories=by_category)
    else:
        applications = await client.applications_by_public_id(named)
    categories = await client.categories_in_use() if by_category else []
    now = datetime.now(UTC)
    latest = await client.latest_reports() if wants_reports(manifest) else None
    log.info(
        "plan.resolved",
        applications=len(applications),
        organizations=len(organizations),
        categories=len(categories) if by_category else None,
        latestReports=len(latest) if latest is not None else None,
    )
    plan = build_plan(manifest, Listings(applications, organizations, categories, latest, now=now))
    for warning in plan.warnings:
        entry = manifest.promotions[warning.entry_index]
        log.warning(
            "plan.selects_nothing",
            entry=f"promotions[{warning.entry_index}]",
            name=warning.entry_name,
            field=warning.field,
            value=warning.value,
            line=entry.line,
            message=warning.message,
        )
    return plan


def build_plan(manifest: Manifest, listings: Listings) -> Plan:
    """Lay out the chains from what the server answered; no I/O, so it is tested directly.

    Raises ManifestError, naming every entry's problem, when an organization name is shared."""
    tree = OrganizationTree(listings.organizations)
    chooser = Chooser(manifest, listings.applications, tree, listings.categories)
    applicable = None
    if listings.latest_reports is not None:
        applicable = Applicability(LatestEvaluations(listings.latest_reports), listings.now)
    by_public_id = {app.public_id: app for app in listings.applications}
    builder = _PlanBuilder()
    problems: list[ManifestProblem] = []
    for entry_index, entry in enumerate(manifest.promotions):
        counts = _EntryCounts()
        if entry.applications is not None:
            chosen: list[str] = list(entry.applications)
        else:
            selection = chooser.choose(entry_index, entry)
            problems += selection.problems
            builder.warnings += selection.warnings
            counts.excluded = selection.excluded
            for unknown in selection.unknown:
                counts.unresolved += 1
                builder.unresolved_entry(
                    entry_index, entry, unknown.reason, organization=unknown.organization
                )
            chosen = selection.public_ids
        window = manifest.skip_window(entry)
        for public_id in chosen:
            app = by_public_id.get(public_id)
            if app is None:
                counts.unresolved += 1
                builder.unresolved_entry(
                    entry_index,
                    entry,
                    f"application '{public_id}' is not known to the server",
                    public_id=public_id,
                )
                continue
            counts.selected += 1
            target = Target(app.public_id, app.id, tree.name_of(app.organization_id))
            skip = None
            if applicable is not None:
                first = entry.transitions[0]
                skip = applicable.skip(app.id, first, selected=entry.selects, window=window)
            if skip is None:
                builder.chain(target, entry_index, entry.transitions)
            else:
                counts.skipped[skip.summary] += 1
                builder.skipped_chain(target, entry_index, entry.transitions, skip)
        builder.entries.append(counts.summary(entry_index, entry))
    if problems:
        raise ManifestError(problems)
    return builder.build()


@dataclass(slots=True)
class _EntryCounts:
    selected: int = 0
    excluded: int = 0
    unresolved: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self, index: int, entry: PromotionEntry) -> EntrySummary:
        return EntrySummary(
            index, entry.name, self.selected, self.excluded, dict(self.skipped), self.unresolved
        )


class _PlanBuilder:
    """Numbers the steps in manifest order and groups chains by application."""

    def __init__(self) -> None:
        self._position = 0
        self._chains: dict[str, tuple[Target, list[Chain]]] = {}
        self._unresolved: list[Unresolved] = []
        self._skipped: list[Skipped] = []
        self.entries: list[EntrySummary] = []
        self.warnings: list[SelectionWarning] = []

    def _steps(self, entry_index: int, transitions: Sequence[Transition]) -> tuple[Step, ...]:
        steps = tuple(
            Step(self._position + i, entry_index, i, t) for i, t in enumerate(transitions)
        )
        self._position += len(steps)
        return steps

    def chain(self, target: Target, entry_index: int, transitions: Sequence[Transition]) -> None:
        chain = Chain(self._steps(entry_index, transitions))
        self._chains.setdefault(target.public_id, (target, []))[1].append(chain)

    def skipped_chain(
        self, target: Target, entry_index: int, transitions: Sequence[Transition], skip: Skip
    ) -> None:
        for step in self._steps(entry_index, transitions):
            self._skipped.append(Skipped(step, target, skip))

    def unresolved_entry(
        self,
        entry_index: int,
        entry: PromotionEntry,
        reason: str,
        *,
        public_id: str | None = None,
        organization: str | None = None,
    ) -> None:
        for step in self._steps(entry_index, entry.transitions):
            self._unresolved.append(Unresolved(step, public_id, organization, reason))

    def build(self) -> Plan:
        work = tuple(ApplicationWork(t, tuple(c)) for t, c in self._chains.values())
        return Plan(
            work=work,
            unresolved=tuple(self._unresolved),
            total=self._position,
            skipped=tuple(self._skipped),
            entries=tuple(self.entries),
            warnings=tuple(self.warnings),
        )
