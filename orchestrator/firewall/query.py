"""Turning what a user types into a :class:`RepositoryResultsQuery`, or a clear error.

IQ Server answers a misspelt field name (the reference page's own example has
``REPOSIOTRY_MANAGER_ID``) with a bare 400 or, worse, silently ignores it; so every name is
checked here, before anything is sent, and a near miss gets the closest valid name suggested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.errors import UsageError
from orchestrator.iq.firewall_models import (
    REPOSITORY_CONTAINER_ID,
    FilterableField,
    MatchState,
    OwnerType,
    RepositoryResultsQuery,
    SearchFilter,
    SortableField,
    SortField,
    ViolationState,
)
from orchestrator.iq.names import (
    parse_match_state,
    parse_threat_levels,
    parse_violation_state,
    resolve_name,
)

DEFAULT_PAGE_SIZE = 100
"""Rows per request: ten times the server's default, still a small answer for the server."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose results to read: the repository container, one manager, or one repository."""

    type: OwnerType
    id: str

    def __str__(self) -> str:
        return f"{self.type.value} {self.id}"


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The search parameters as typed on the command line (or written in a manifest)."""

    search: Sequence[str] = ()
    sort: Sequence[str] = ()
    match_states: Sequence[str] = ()
    violation_states: Sequence[str] = ()
    threat_levels: str | None = None
    aggregate: bool | None = None
    page_size: int = DEFAULT_PAGE_SIZE


def resolve_owner(owner_type: str | OwnerType, owner_id: str | None) -> Owner:
    """The owner to query; the container's id defaults to the global REPOSITORY_CONTAINER_ID."""
    kind = resolve_name(OwnerType, str(owner_type), what="owner type")
    if owner_id is not None and not owner_id.strip():
        raise UsageError("--owner-id is empty")
    if owner_id is None:
        if kind is not OwnerType.REPOSITORY_CONTAINER:
            raise UsageError(
                f"--owner-id is required for owner type {kind.value}: "
                "'iq-promote repositories' lists the ids"
            )
        owner_id = REPOSITORY_CONTAINER_ID
    return Owner(kind, owner_id.strip())


def build_query(options: QueryOptions) -> RepositoryResultsQuery:
    """The first page's request body; every name and range is checked, none is sent yet."""
    if options.page_size < 1:
        raise UsageError(f"page size must be at least 1, not {options.page_size}")
    threat = parse_threat_levels(options.threat_levels) if options.threat_levels else None
    return RepositoryResultsQuery(
        page=1,
        page_size=options.page_size,
        search_filters=[parse_search(text) for text in options.search],
        sort_fields=parse_sorts(options.sort),
        match_state_filters=[parse_match_state(s) for s in options.match_states]
        or [MatchState.ALL],
        violation_state_filters=[parse_violation_state(s) for s in options.violation_states]
        or [ViolationState.ALL],
        threat_level_filters=list(threat) if threat else None,
        aggregate=options.aggregate,
    )


def parse_search(text: str) -> SearchFilter:
    """``FIELD=VALUE``, e.g. ``POLICY_NAME=Security-High``; the value may itself hold '='."""
    field, sep, value = text.partition("=")
    if not sep:
        raise UsageError(
            f"search filter {text!r} is not FIELD=VALUE, e.g. POLICY_NAME=Security-High"
        )
    if not value.strip():
        raise UsageError(f"search filter {text!r} has no value after '='")
    return SearchFilter(
        filterable_field=resolve_name(FilterableField, field, what="search field"),
        value=value.strip(),
    )


def parse_sorts(texts: Iterable[str]) -> list[SortField]:
    """``FIELD[:asc|:desc]`` each; the first given sorts first (sortPriority 1)."""
    fields = [parse_sort(text, priority) for priority, text in enumerate(texts, start=1)]
    seen: set[SortableField] = set()
    for field in fields:
        if field.sortable_field in seen:
            raise UsageError(f"sort field {field.sortable_field.value} is given twice")
        seen.add(field.sortable_field)
    return fields


def parse_sort(text: str, priority: int = 1) -> SortField:
    name, sep, direction = text.partition(":")
    order = direction.strip().lower() if sep else "asc"
    if order not in ("asc", "desc"):
        raise UsageError(f"sort {text!r}: the direction is 'asc' or 'desc', not {direction!r}")
    return SortField(
        sortable_field=resolve_name(SortableField, name, what="sort field"),
        asc=order == "asc",
        sort_priority=priority,
    )
