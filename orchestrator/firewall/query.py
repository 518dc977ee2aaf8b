"""Turning what a user types into a :class:`RepositoryResultsQuery`, or a clear error.

IQ Server answers a misspelt field name (the reference page's own example has
``REPOSIOTRY_MANAGER_ID``) with a bare 400 or, worse, silently ignores it; so every name is
checked here, before anything is sent, and a near miss gets the closest valid name suggested.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from orchestrator.errors import UsageError
from orchestrator.iq.models import (
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

EnumT = TypeVar("EnumT", bound=StrEnum)

MIN_THREAT_LEVEL = 0
MAX_THREAT_LEVEL = 10
DEFAULT_PAGE_SIZE = 100
"""Rows per request: ten times the server's default, still a small answer for the server."""

_PREFIXES: dict[type[StrEnum], str] = {
    MatchState: "MATCH_STATE_",
    ViolationState: "VIOLATION_STATE_",
}


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


def parse_match_state(text: str) -> MatchState:
    """``MATCH_STATE_EXACT`` or just ``exact`` (any case)."""
    return resolve_name(MatchState, text, what="match state")


def parse_violation_state(text: str) -> ViolationState:
    """``VIOLATION_STATE_OPEN`` or just ``open`` (any case; ``not-violating`` too)."""
    return resolve_name(ViolationState, text, what="violation state")


def parse_threat_levels(text: str) -> tuple[int, int]:
    """``LO-HI`` (``7-10``), or one level ``N`` meaning ``N-N``; both within 0..10."""
    lo_text, sep, hi_text = text.strip().partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        raise UsageError(
            f"threat levels {text!r} are not LO-HI, e.g. 7-10 (whole numbers 0 to 10)"
        ) from None
    return check_threat_levels(lo, hi)


def check_threat_levels(lo: int, hi: int) -> tuple[int, int]:
    if not MIN_THREAT_LEVEL <= lo <= hi <= MAX_THREAT_LEVEL:
        raise UsageError(
            f"threat levels {lo}-{hi} must satisfy "
            f"{MIN_THREAT_LEVEL} <= LO <= HI <= {MAX_THREAT_LEVEL}"
        )
    return lo, hi


def resolve_name(enum: type[EnumT], text: str, *, what: str) -> EnumT:
    """The member ``text`` names, case-insensitively and with or without the enum's prefix
    (``open`` for ``VIOLATION_STATE_OPEN``); a near miss gets the closest name suggested."""
    names = _accepted_names(enum)
    key = _normalise(text)
    if key in names:
        return names[key]
    valid = ", ".join(member.value for member in enum)
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    hint = f"; did you mean {names[close[0]].value}?" if close else ""
    raise UsageError(f"unknown {what} {text!r}{hint} (valid: {valid})")


def _accepted_names(enum: type[EnumT]) -> dict[str, EnumT]:
    prefix = _PREFIXES.get(enum)
    names: dict[str, EnumT] = {}
    for member in enum:
        names[_normalise(member.value)] = member
        if prefix and member.value.startswith(prefix):
            names[_normalise(member.value.removeprefix(prefix))] = member
    return names


def _normalise(text: str) -> str:
    return text.strip().upper().replace("-", "_").replace(" ", "_")
