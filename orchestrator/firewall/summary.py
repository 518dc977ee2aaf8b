"""A firewall summary for a run's report: the manifest's ``repositoryResults:`` section says
what to read, :func:`summarize` reads every page and counts.

Rows are counted as they stream past; only quarantined components are remembered (they are
listed, newest first, up to a limit), so the summary of a large firewall stays small.
"""

from __future__ import annotations

from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from orchestrator.firewall.pages import ResultsRequest, walk_pages
from orchestrator.firewall.query import Owner, resolve_owner
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import (
    ApiChoice,
    Generation,
    MatchState,
    RepositoryResult,
    RepositoryResultsQuery,
    SearchFilter,
    ViolationState,
)
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.report.firewall import FirewallSummary, QuarantinedComponent

log = structlog.get_logger("orchestrator.firewall")

NO_POLICY = "(no violation)"
"""The ``byPolicy`` key of rows without a policy violation."""


def section_owner(section: RepositoryResultsSection) -> Owner:
    """Whose results the section reads."""
    return resolve_owner(section.owner_type, section.owner_id)


def section_query(section: RepositoryResultsSection) -> RepositoryResultsQuery:
    """The first page's request body for the section."""
    return RepositoryResultsQuery(
        page=1,
        page_size=section.page_size,
        search_filters=[
            SearchFilter(filterable_field=f.filterable_field, value=f.value)
            for f in section.search_filters
        ],
        match_state_filters=list(section.match_states) or [MatchState.ALL],
        violation_state_filters=list(section.violation_states) or [ViolationState.ALL],
        threat_level_filters=list(section.threat_levels) if section.threat_levels else None,
        aggregate=section.aggregate,
    )


def violation_state(row: RepositoryResult) -> ViolationState:
    """The state a row is in, derived from its fields (the row does not carry it)."""
    if row.waived:
        return ViolationState.WAIVED
    if row.quarantine_time is not None:
        return ViolationState.QUARANTINED
    if row.policy_name is None:
        return ViolationState.NOT_VIOLATING
    return ViolationState.OPEN


@dataclass(slots=True)
class _Quarantined:
    row: RepositoryResult
    threat_level: int
    policies: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SummaryCounter:
    """Counts rows one by one; :meth:`summary` turns the counts into a :class:`FirewallSummary`."""

    quarantined_limit: int
    total: int = 0
    pages: int = 0
    by_policy: Counter[str] = field(default_factory=Counter)
    by_threat_level: Counter[int] = field(default_factory=Counter)
    by_state: Counter[ViolationState] = field(default_factory=Counter)
    quarantined: dict[tuple[str | None, str, str], _Quarantined] = field(default_factory=dict)

    def add(self, row: RepositoryResult) -> None:
        self.total += 1
        self.by_policy[row.policy_name or NO_POLICY] += 1
        self.by_threat_level[row.threat_level] += 1
        state = violation_state(row)
        self.by_state[state] += 1
        if state is ViolationState.QUARANTINED:
            key = (row.repository_id, row.hash, row.pathname)
            entry = self.quarantined.setdefault(key, _Quarantined(row, row.threat_level))
            entry.threat_level = max(entry.threat_level, row.threat_level)
            if row.policy_name and row.policy_name not in entry.policies:
                entry.policies.append(row.policy_name)

    def summary(self, owner: Owner, api: Generation) -> FirewallSummary:
        newest = sorted(
            self.quarantined.values(),
            key=lambda q: (-(q.row.quarantine_time or 0), q.row.component_display_text),
        )[: self.quarantined_limit]
        return FirewallSummary(
            owner_type=owner.type,
            owner_id=owner.id,
            api=api,
            total=self.total,
            pages=self.pages,
            by_policy=dict(sorted(self.by_policy.items(), key=lambda kv: (-kv[1], kv[0]))),
            by_threat_level=dict(sorted(self.by_threat_level.items(), reverse=True)),
            by_violation_state={
                s: self.by_state.get(s, 0) for s in ViolationState if s is not ViolationState.ALL
            },
            quarantined_total=len(self.quarantined),
            quarantined=[_component(q) for q in newest],
        )


def _component(entry: _Quarantined) -> QuarantinedComponent:
    row = entry.row
    millis = row.quarantine_time
    return QuarantinedComponent(
        component_display_text=row.component_display_text,
        format=row.component_identifier.format,
        coordinates=row.component_identifier.coordinates,
        repository_manager_id=row.repository_manager_id,
        repository_id=row.repository_id,
        pathname=row.pathname,
        hash=row.hash,
        quarantined_at=None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC),
        threat_level=entry.threat_level,
        policy_names=entry.policies,
    )


async def summarize(client: IqClient, section: RepositoryResultsSection) -> FirewallSummary:
    """Read every page the section asks for and count it; server errors propagate."""
    owner = section_owner(section)
    request = ResultsRequest(owner=owner, query=section_query(section), api=section.api)
    counter = SummaryCounter(quarantined_limit=section.quarantined_limit)
    generation = Generation.LEGACY if section.api is ApiChoice.LEGACY else Generation.CURRENT
    async with aclosing(walk_pages(client, request)) as pages:
        async for page in pages:
            generation = page.generation
            counter.pages += 1
            for row in page.rows:
                counter.add(row)
    summary = counter.summary(owner, generation)
    log.info(
        "repository_results.summary",
        owner_type=owner.type,
        owner_id=owner.id,
        api=generation,
        total=summary.total,
        pages=summary.pages,
        quarantined=summary.quarantined_total,
    )
    return summary
