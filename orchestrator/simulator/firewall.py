"""Firewall data (repository managers, repositories, component results) and the Repository
Results search over it.

A row's violation state is not on the wire; the simulator derives it as docs/simulator.md says:
waived wins, then quarantined, then a row without a policy is not violating, else open.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.iq.firewall_models import (
    REPOSITORY_CONTAINER_ID,
    FilterableField,
    MatchState,
    OwnerType,
    Repository,
    RepositoryContainer,
    RepositoryManager,
    RepositoryResult,
    RepositoryResultsQuery,
    SortableField,
    ViolationState,
)
from orchestrator.iq.models import ROOT_ORGANIZATION_ID
from orchestrator.simulator.catalogue import POLICIES, components
from orchestrator.simulator.portfolio import new_id

QUARANTINE_EPOCH_MS = 1_704_067_200_000
"""2024-01-01T00:00Z: seeded quarantine times fall in the year after it."""
_YEAR_MS = 366 * 24 * 3600 * 1000
_LAYOUT = (
    ("nexus-prod", "3.68.1-02", (("maven-central", "maven", True), ("npm-proxy", "npm", True),
                                 ("pypi-proxy", "pypi", False))),
    ("nexus-dr", "3.61.0-02", (("maven-proxy", "maven", True), ("npmjs-org", "npm", False),
                               ("pypi-mirror", "pypi", True))),
)  # fmt: skip


class QueryError(ValueError):
    """A search body the server refuses (400); the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class FirewallData:
    """The seeded firewall: one container, its managers and repositories, and every result."""

    container: RepositoryContainer
    managers: list[RepositoryManager]
    repositories: dict[str, list[Repository]]
    rows: list[RepositoryResult]

    def owner_rows(self, owner_type: OwnerType, owner_id: str) -> list[RepositoryResult] | None:
        """The rows an owner covers; None when the owner is unknown."""
        if owner_type is OwnerType.REPOSITORY_CONTAINER:
            known = owner_id in (REPOSITORY_CONTAINER_ID, self.container.id)
            return list(self.rows) if known else None
        if owner_type is OwnerType.REPOSITORY_MANAGER:
            if owner_id not in self.repositories:
                return None
            return [r for r in self.rows if r.repository_manager_id == owner_id]
        if not any(owner_id == r.repository_id for rs in self.repositories.values() for r in rs):
            return None
        return [r for r in self.rows if r.repository_id == owner_id]


def seed_firewall(seed: int) -> FirewallData:
    """A couple of managers, six repositories and a few hundred results, all from the seed."""
    rng = random.Random(f"firewall:{seed}")
    container = RepositoryContainer(
        id=new_id(rng), name="Repositories", related_organization_id=ROOT_ORGANIZATION_ID
    )
    managers: list[RepositoryManager] = []
    repositories: dict[str, list[Repository]] = {}
    rows: list[RepositoryResult] = []
    for name, version, repos in _LAYOUT:
        manager = RepositoryManager(
            id=new_id(rng),
            name=name,
            instance_id=new_id(rng),
            manager_type="traditional",
            product_name="Nexus Repository Manager",
            product_version=version,
        )
        managers.append(manager)
        repositories[manager.id] = []
        for public_id, fmt, quarantine in repos:
            repository = Repository(
                repository_id=new_id(rng),
                public_id=public_id,
                format=fmt,
                quarantine_enabled=quarantine,
            )
            repositories[manager.id].append(repository)
            rows.extend(_results(rng, manager.id, repository))
    return FirewallData(container, managers, repositories, rows)


def _results(rng: random.Random, manager_id: str, repository: Repository) -> list[RepositoryResult]:
    pool = components(repository.format)
    found: list[RepositoryResult] = []
    for component in rng.sample(pool, round(len(pool) * 0.8)):
        count = rng.choices((0, 1, 2, 3), weights=(20, 35, 30, 15))[0]
        policies = sorted(rng.sample(POLICIES, count), key=lambda p: -p.threat_level)
        quarantined = repository.quarantine_enabled and any(p.threat_level >= 9 for p in policies)
        when = QUARANTINE_EPOCH_MS + rng.randrange(_YEAR_MS) if quarantined else None
        match = "unknown" if rng.random() < 0.05 else "exact"
        common: dict[str, Any] = {
            "repository_manager_id": manager_id,
            "repository_id": repository.repository_id,
            "component_display_text": component.display_text,
            "pathname": component.pathname,
            "component_identifier": component.identifier,
            "hash": component.hash,
            "match_state_id": match,
        }
        if not policies:
            found.append(RepositoryResult(threat_level=0, policy_name=None, **common))
        found.extend(
            RepositoryResult(
                threat_level=policy.threat_level,
                policy_name=policy.name,
                quarantine_time=when,
                waived=rng.random() < 0.08,
                **common,
            )
            for policy in policies
        )
    return found


# --- the search ----------------------------------------------------------------------------


def violation_state(row: RepositoryResult) -> ViolationState:
    if row.waived:
        return ViolationState.WAIVED
    if row.quarantine_time is not None:
        return ViolationState.QUARANTINED
    if row.policy_name is None or row.threat_level == 0:
        return ViolationState.NOT_VIOLATING
    return ViolationState.OPEN


def parse_query(body: object) -> RepositoryResultsQuery:
    """Validate a search body; unknown field or state names and bad ranges are a QueryError."""
    if not isinstance(body, dict):
        raise QueryError("The request body must be a JSON object of search parameters")
    try:
        query = RepositoryResultsQuery.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise QueryError(f"Invalid search parameters: {problems}") from exc
    return query


def _threat_range(query: RepositoryResultsQuery) -> tuple[int, int]:
    levels = query.threat_level_filters
    if levels is None or levels == []:
        return 0, 10
    if len(levels) != 2 or not 0 <= levels[0] <= levels[1] <= 10:
        raise QueryError(f"threatLevelFilters must be [lowest, highest] within 0..10: {levels}")
    return levels[0], levels[1]


def _matcher(field: FilterableField, value: str) -> Callable[[RepositoryResult], bool]:
    needle = value.lower()
    if field is FilterableField.QUARANTINE_TIME:
        try:
            since = int(value)
        except ValueError:
            raise QueryError(f"QUARANTINE_TIME needs epoch milliseconds, not {value!r}") from None
        return lambda r: r.quarantine_time is not None and r.quarantine_time >= since
    if field is FilterableField.POLICY_NAME:
        return lambda r: needle in (r.policy_name or "").lower()
    if field is FilterableField.REPOSITORY_MANAGER_ID:
        return lambda r: needle in (r.repository_manager_id or "").lower()
    if field is FilterableField.REPOSITORY_ID:
        return lambda r: needle in (r.repository_id or "").lower()
    return lambda r: (
        needle in r.component_display_text.lower()
        or any(needle in c.lower() for c in r.component_identifier.coordinates.values())
    )


_SORT_KEYS: dict[SortableField, Callable[[RepositoryResult], Any]] = {
    SortableField.POLICY_THREAT_LEVEL: lambda r: r.threat_level,
    SortableField.POLICY_NAME: lambda r: r.policy_name or "",
    SortableField.COMPONENT_COORDINATES: lambda r: r.component_display_text,
    SortableField.QUARANTINE_TIME: lambda r: r.quarantine_time or 0,
}


def search(
    rows: list[RepositoryResult], query: RepositoryResultsQuery, *, legacy: bool
) -> list[RepositoryResult]:
    """Filter, aggregate and sort rows as a search body says (before paging).

    The legacy endpoint knew neither threat-level filters nor aggregation, so it ignores them.
    """
    low, high = (0, 10) if legacy else _threat_range(query)
    tests = [_matcher(f.filterable_field, f.value) for f in query.search_filters]
    matches = set(query.match_state_filters)
    match_all = not matches or MatchState.ALL in matches
    states = set(query.violation_state_filters)
    state_all = not states or ViolationState.ALL in states
    selected = [
        row
        for row in rows
        if low <= row.threat_level <= high
        and (match_all or MatchState(f"MATCH_STATE_{row.match_state_id.upper()}") in matches)
        and (state_all or violation_state(row) in states)
        and all(test(row) for test in tests)
    ]
    if query.aggregate and not legacy:
        highest: dict[tuple[str | None, str], RepositoryResult] = {}
        for row in selected:
            key = (row.repository_id, row.hash)
            if key not in highest or row.threat_level > highest[key].threat_level:
                highest[key] = row
        selected = [row for row in selected if highest[(row.repository_id, row.hash)] is row]
    # Stable sorts from the least significant field up; equal priorities keep the body's order.
    ordered = sorted(enumerate(query.sort_fields), key=lambda p: (p[1].sort_priority, p[0]))
    for _, sort in reversed(ordered):
        selected.sort(key=_SORT_KEYS[sort.sortable_field], reverse=not sort.asc)
    return selected


def page_of(
    rows: list[RepositoryResult], query: RepositoryResultsQuery
) -> tuple[list[RepositoryResult], bool]:
    """One page of rows and whether another follows."""
    start = (query.page - 1) * query.page_size
    end = start + query.page_size
    return rows[start:end], len(rows) > end


def wire_row(row: RepositoryResult, *, legacy: bool) -> dict[str, object]:
    """A row as the endpoint sends it: nulls kept; the legacy one has no owner ids."""
    data = row.model_dump(mode="json", by_alias=True)
    if legacy:
        data.pop("repositoryManagerId", None)
        data.pop("repositoryId", None)
    return data
