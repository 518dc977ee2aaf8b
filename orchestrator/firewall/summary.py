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
from typing import Annotated, Any, Self

import structlog
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from orchestrator.errors import UsageError
from orchestrator.firewall.query import (
    Owner,
    check_threat_levels,
    parse_match_state,
    parse_threat_levels,
    parse_violation_state,
    resolve_name,
    resolve_owner,
)
from orchestrator.firewall.results import ApiChoice, Generation, ResultsRequest, walk_pages
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import (
    FilterableField,
    MatchState,
    OwnerType,
    RepositoryResult,
    RepositoryResultsQuery,
    SearchFilter,
    ViolationState,
)

log = structlog.get_logger("orchestrator.firewall")

NO_POLICY = "(no violation)"
"""The ``byPolicy`` key of rows without a policy violation."""


class _CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
    )


def _usage_as_value_error(parse: Any, value: Any) -> Any:
    """The parsers raise UsageError; pydantic reports only ValueError as a field problem."""
    try:
        return parse(value)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


class SectionFilter(_CamelModel):
    """One search filter, as on the wire: ``{filterableField: POLICY_NAME, value: ...}``."""

    filterable_field: FilterableField = Field(
        description="POLICY_NAME, QUARANTINE_TIME, COMPONENT_COORDINATES, "
        "REPOSITORY_MANAGER_ID or REPOSITORY_ID."
    )
    value: Annotated[str, Field(min_length=1)] = Field(description="The value to match.")

    @field_validator("filterable_field", mode="before")
    @classmethod
    def _known_field(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return _usage_as_value_error(
            lambda v: resolve_name(FilterableField, v, what="search field"), value
        )


class RepositoryResultsSection(_CamelModel):
    """The manifest's optional ``repositoryResults:`` section; every field has a default, so
    ``repositoryResults: {}`` summarises the whole repository container."""

    owner_type: OwnerType = Field(
        default=OwnerType.REPOSITORY_CONTAINER,
        description="repository_container, repository_manager or repository.",
    )
    owner_id: str | None = Field(
        default=None,
        description="Required unless ownerType is repository_container "
        "(REPOSITORY_CONTAINER_ID then); 'iq-promote repositories' lists the ids.",
    )
    search_filters: list[SectionFilter] = Field(
        default_factory=list, description="Filters, all of which a row must match."
    )
    match_states: list[MatchState] = Field(
        default_factory=lambda: [MatchState.ALL],
        description="MATCH_STATE_* names or their short forms (all, exact, unknown).",
    )
    violation_states: list[ViolationState] = Field(
        default_factory=lambda: [ViolationState.ALL],
        description="VIOLATION_STATE_* names or short forms (open, quarantined, waived...).",
    )
    threat_levels: tuple[int, int] | None = Field(
        default=None, description="Lowest and highest threat level: '7-10' or [7, 10]."
    )
    aggregate: bool | None = Field(
        default=None, description="true: each component once, with its worst violation."
    )
    page_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=500, description="Rows per request."
    )
    quarantined_limit: Annotated[int, Field(ge=0)] = Field(
        default=100, description="Most quarantined components listed; all are counted."
    )
    api: ApiChoice = Field(default=ApiChoice.AUTO, description="auto, current or legacy.")

    @field_validator("match_states", mode="before")
    @classmethod
    def _match_states(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_usage_as_value_error(parse_match_state, v) for v in value]

    @field_validator("violation_states", mode="before")
    @classmethod
    def _violation_states(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_usage_as_value_error(parse_violation_state, v) for v in value]

    @field_validator("threat_levels", mode="before")
    @classmethod
    def _threat_levels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _usage_as_value_error(parse_threat_levels, value)
        if isinstance(value, list | tuple) and len(value) == 2:
            lo, hi = value
            if isinstance(lo, int) and isinstance(hi, int):
                return _usage_as_value_error(lambda pair: check_threat_levels(*pair), (lo, hi))
        return value

    @model_validator(mode="after")
    def _owner_id_when_needed(self) -> Self:
        if self.owner_type is not OwnerType.REPOSITORY_CONTAINER and not self.owner_id:
            raise ValueError(
                f"ownerId is required for ownerType {self.owner_type.value}: "
                "'iq-promote repositories' lists the ids"
            )
        _usage_as_value_error(lambda s: resolve_owner(s.owner_type, s.owner_id), self)
        return self

    def owner(self) -> Owner:
        return resolve_owner(self.owner_type, self.owner_id)

    def query(self) -> RepositoryResultsQuery:
        """The first page's request body."""
        return RepositoryResultsQuery(
            page=1,
            page_size=self.page_size,
            search_filters=[
                SearchFilter(filterable_field=f.filterable_field, value=f.value)
                for f in self.search_filters
            ],
            match_state_filters=self.match_states or [MatchState.ALL],
            violation_state_filters=self.violation_states or [ViolationState.ALL],
            threat_level_filters=list(self.threat_levels) if self.threat_levels else None,
            aggregate=self.aggregate,
        )


class QuarantinedComponent(_CamelModel):
    """A component the firewall holds in quarantine, with every policy that put it there."""

    component_display_text: str
    format: str
    coordinates: dict[str, str]
    repository_manager_id: str | None = None
    repository_id: str | None = None
    pathname: str
    hash: str
    quarantined_at: datetime | None
    threat_level: int = Field(description="The highest threat level among its violations.")
    policy_names: list[str]


class FirewallSummary(_CamelModel):
    """Counts of a Repository Results search, and the newest quarantined components."""

    owner_type: OwnerType
    owner_id: str
    api: Generation = Field(description="The endpoint generation that answered.")
    total: int = Field(description="Rows read: one per component and policy (unless aggregate).")
    pages: int
    by_policy: dict[str, int] = Field(description="Rows per policy, most frequent first.")
    by_threat_level: dict[int, int] = Field(description="Rows per threat level, highest first.")
    by_violation_state: dict[ViolationState, int] = Field(
        description="Rows per state (every state present): quarantined if quarantineTime is "
        "set, waived if waived, not violating without a policy, else open."
    )
    quarantined_total: int = Field(description="Distinct quarantined components, all counted.")
    quarantined: list[QuarantinedComponent] = Field(
        description="The newest quarantined components, at most quarantinedLimit."
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
    owner = section.owner()
    request = ResultsRequest(owner=owner, query=section.query(), api=section.api)
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
