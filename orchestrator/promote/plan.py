"""From a manifest and the server's applications to ordered chains of promotions.

This is the only step that looks applications up, and it does so in bulk: one listing of
organizations, and either one listing of all applications (when the manifest selects by
organization or ``all``, or names many) or batched public id look-ups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog

from orchestrator.iq.client import IqClient
from orchestrator.iq.models import Application, Organization
from orchestrator.manifest.model import Manifest, PromotionEntry, Transition
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
    """A step that cannot run because its application or organization is unknown."""

    step: Step
    public_id: str | None
    organization: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run will do, in manifest order."""

    work: tuple[ApplicationWork, ...]
    unresolved: tuple[Unresolved, ...]
    total: int

    @property
    def uses_scan_ids(self) -> bool:
        return any(step.transition.scan_id for w in self.work for step in w.steps)


async def resolve_plan(manifest: Manifest, client: IqClient) -> Plan:
    """Look the manifest's applications up on the server and lay out the chains."""
    organizations = await client.organizations()
    named = [pid for entry in manifest.promotions for pid in entry.applications or ()]
    needs_all = any(e.organization or e.all for e in manifest.promotions)
    if needs_all or len(set(named)) > LIST_ALL_ABOVE:
        applications = await client.applications()
    else:
        applications = await client.applications_by_public_id(named)
    log.info(
        "plan.resolved",
        applications=len(applications),
        organizations=len(organizations),
    )
    return build_plan(manifest, applications, organizations)


def build_plan(
    manifest: Manifest,
    applications: Sequence[Application],
    organizations: Sequence[Organization],
) -> Plan:
    """Lay out the chains from what the server answered; no I/O, so it is tested directly."""
    by_public_id = {app.public_id: app for app in applications}
    org_names = {org.id: org.name for org in organizations}
    builder = _PlanBuilder()
    for entry_index, entry in enumerate(manifest.promotions):
        selected, problem = _select(entry, applications, organizations)
        if problem is not None:
            builder.unresolved_entry(entry_index, entry, problem, organization=entry.organization)
            continue
        excluded = set(entry.exclude or ())
        for public_id in selected:
            if public_id in excluded:
                continue
            app = by_public_id.get(public_id)
            if app is None:
                builder.unresolved_entry(
                    entry_index,
                    entry,
                    f"application '{public_id}' is not known to the server",
                    public_id=public_id,
                )
                continue
            organization = org_names.get(app.organization_id or "")
            target = Target(app.public_id, app.id, organization)
            builder.chain(target, entry_index, entry.transitions)
    return builder.build()


def _select(
    entry: PromotionEntry,
    applications: Sequence[Application],
    organizations: Sequence[Organization],
) -> tuple[list[str], str | None]:
    """The public ids an entry selects, in order; or a reason it selects nothing."""
    if entry.applications is not None:
        return list(entry.applications), None
    if entry.organization is not None:
        org = _find_organization(entry.organization, organizations)
        if org is None:
            return [], f"organization '{entry.organization}' is not known to the server"
        return sorted(a.public_id for a in applications if a.organization_id == org.id), None
    return sorted(a.public_id for a in applications), None


def _find_organization(
    name_or_id: str, organizations: Sequence[Organization]
) -> Organization | None:
    for org in organizations:
        if name_or_id in (org.id, org.name):
            return org
    folded = [o for o in organizations if o.name.casefold() == name_or_id.casefold()]
    return folded[0] if len(folded) == 1 else None


class _PlanBuilder:
    """Numbers the steps in manifest order and groups chains by application."""

    def __init__(self) -> None:
        self._position = 0
        self._chains: dict[str, tuple[Target, list[Chain]]] = {}
        self._unresolved: list[Unresolved] = []

    def _steps(self, entry_index: int, transitions: Sequence[Transition]) -> tuple[Step, ...]:
        steps = tuple(
            Step(self._position + i, entry_index, i, t) for i, t in enumerate(transitions)
        )
        self._position += len(steps)
        return steps

    def chain(self, target: Target, entry_index: int, transitions: Sequence[Transition]) -> None:
        chain = Chain(self._steps(entry_index, transitions))
        self._chains.setdefault(target.public_id, (target, []))[1].append(chain)

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
        return Plan(work=work, unresolved=tuple(self._unresolved), total=self._position)
