"""Walking every page of a Repository Results search, on either endpoint generation.

Release 175 replaced the per-repository endpoint (a bare list, no ``hasNextPage``) with one
that takes an owner type and answers pages with ``hasNextPage``. Servers before 175 answer the
new path with 404, so ``auto`` tries the new endpoint first and falls back to the old one; on
the old one a short page is the last, and a manager or the container is read repository by
repository through the Firewall listings.

Pages are yielded as they arrive, so a caller that writes them out never holds more than one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import structlog

from orchestrator.errors import NotFoundError, ServerError, UnknownIdError
from orchestrator.firewall.query import Owner
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import (
    ApiChoice,
    FilterableField,
    Generation,
    OwnerType,
    RepositoryResult,
    RepositoryResultsQuery,
    SearchFilter,
)

log = structlog.get_logger("orchestrator.firewall")


MAX_PAGES = 100_000
"""Pages of one search (one repository, on the legacy endpoint) before the server is taken
for one that never ends: ten million rows at the default page size."""


@dataclass(frozen=True, slots=True)
class ResultsRequest:
    """A whole search: whose results, which filters (page 1), which endpoint."""

    owner: Owner
    query: RepositoryResultsQuery
    api: ApiChoice = ApiChoice.AUTO
    max_pages: int = MAX_PAGES


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """One answered request; ``repository_id`` says which repository a legacy page read."""

    rows: list[RepositoryResult]
    number: int
    generation: Generation
    repository_id: str | None = None


@dataclass(frozen=True, slots=True)
class LegacyTarget:
    """One repository the legacy endpoint is asked about, and its manager when known."""

    repository_id: str
    repository_manager_id: str | None = None


def _unknown(what: str, error: NotFoundError, more: str = "") -> UnknownIdError:
    """A 404 for an id the user named: the input is wrong, so a usage error naming it."""
    where = f" at {error.url}" if error.url else ""
    return UnknownIdError(
        f"IQ Server knows no {what} (HTTP 404{where}): check the id; "
        f"`iq-promote repositories` lists the ones it has{more}"
    )


async def walk_pages(
    client: IqClient, request: ResultsRequest
) -> AsyncGenerator[ResultsPage, None]:
    """Every page of the search in order, ending when the server says there is no more."""
    if request.api is not ApiChoice.LEGACY:
        owner, query = request.owner, request.query
        try:
            first = await client.repository_results(owner.type, owner.id, query)
        except NotFoundError as exc:
            if request.api is ApiChoice.CURRENT and owner.type is OwnerType.REPOSITORY_CONTAINER:
                raise NotFoundError(
                    f"this IQ Server has no current Repository Results API ({exc}): "
                    "--api auto falls back to the legacy one",
                    url=exc.url,
                ) from exc
            if request.api is ApiChoice.CURRENT:
                raise _unknown(str(owner), exc, "; --api auto also tries the legacy API") from exc
            log.info("repository_results.legacy_fallback", owner_type=owner.type, owner_id=owner.id)
        else:
            number = 1
            page = first
            guard = _EndlessGuard(request.max_pages, str(owner))
            while True:
                guard.check(number, page.repository_results_details)
                yield ResultsPage(page.repository_results_details, number, Generation.CURRENT)
                if not page.has_next_page:
                    return
                if not page.repository_results_details:
                    # A server that keeps saying "more" with nothing in hand would loop forever.
                    log.warning("repository_results.empty_page_with_next", page=number)
                    return
                number += 1
                page = await client.repository_results(
                    owner.type, owner.id, query.model_copy(update={"page": number})
                )
    async for legacy_page in _legacy_pages(client, request):
        yield legacy_page


async def _legacy_pages(
    client: IqClient, request: ResultsRequest
) -> AsyncGenerator[ResultsPage, None]:
    query = request.query
    if query.aggregate:
        log.warning("repository_results.aggregate_ignored", reason="legacy endpoint")
    body = legacy_body(query)
    threat = query.threat_level_filters
    for target in await legacy_targets(client, request.owner, query.search_filters):
        number = 1
        guard = _EndlessGuard(request.max_pages, f"repository {target.repository_id}")
        while True:
            try:
                raw = await client.legacy_repository_results(
                    target.repository_id, {**body, "page": number}
                )
            except NotFoundError as exc:
                raise _unknown(f"repository {target.repository_id}", exc) from exc
            guard.check(number, raw)
            rows = [
                _placed(row, target)
                for row in raw
                if threat is None or threat[0] <= row.threat_level <= threat[-1]
            ]
            yield ResultsPage(rows, number, Generation.LEGACY, target.repository_id)
            if len(raw) < query.page_size:
                break
            number += 1


class _EndlessGuard:
    """Ends a walk that would never end: a page the same as the one before it (a server
    that ignores the page number), or more pages than :data:`MAX_PAGES`."""

    def __init__(self, max_pages: int, whose: str) -> None:
        self._max = max_pages
        self._whose = whose
        self._previous: tuple[object, ...] | None = None

    def check(self, number: int, rows: Sequence[RepositoryResult]) -> None:
        if number > self._max:
            raise ServerError(
                f"the repository results of {self._whose} go on past {self._max} pages; "
                "stopped there: narrow the search (--search, --violation-state) or check the "
                "server"
            )
        # A page is known by its size and its first and last rows: two pages of one listing
        # never share those, and reading every row twice would cost as much as the walk.
        digest = (len(rows), _identity(rows[0]), _identity(rows[-1])) if rows else None
        if digest is not None and digest == self._previous:
            raise ServerError(
                f"the server answered page {number} of the repository results of "
                f"{self._whose} with the rows of page {number - 1}: it ignores the page "
                "number, and the walk would never end; stopped"
            )
        self._previous = digest


def _identity(row: RepositoryResult) -> tuple[object, ...]:
    return (row.repository_id, row.hash, row.pathname, row.policy_name, row.threat_level)


_PLACE_FIELDS = (FilterableField.REPOSITORY_ID, FilterableField.REPOSITORY_MANAGER_ID)


def legacy_body(query: RepositoryResultsQuery) -> dict[str, object]:
    """The old endpoint's body: no aggregate and no threat levels (applied here instead), and
    no repository filters (they choose which repositories are walked instead)."""
    body = query.to_wire()
    body.pop("aggregate", None)
    body.pop("threatLevelFilters", None)
    body["searchFilters"] = [
        f.to_wire() for f in query.search_filters if f.filterable_field not in _PLACE_FIELDS
    ]
    return body


async def legacy_targets(
    client: IqClient, owner: Owner, filters: Sequence[SearchFilter] = ()
) -> list[LegacyTarget]:
    """The repositories an owner covers, narrowed by REPOSITORY_ID / REPOSITORY_MANAGER_ID
    filters (several values of one field are alternatives)."""
    if owner.type is OwnerType.REPOSITORY:
        targets = [LegacyTarget(owner.id)]
    else:
        if owner.type is OwnerType.REPOSITORY_MANAGER:
            manager_ids = [owner.id]
        else:
            manager_ids = [m.id for m in await client.repository_managers()]
        targets = []
        for manager_id in manager_ids:
            try:
                repositories = await client.repositories(manager_id)
            except NotFoundError as exc:
                raise _unknown(f"repository manager {manager_id}", exc) from exc
            targets.extend(LegacyTarget(r.repository_id, manager_id) for r in repositories)
    wanted_repos = _values(filters, FilterableField.REPOSITORY_ID)
    wanted_managers = _values(filters, FilterableField.REPOSITORY_MANAGER_ID)
    return [
        t
        for t in targets
        if (not wanted_repos or t.repository_id in wanted_repos)
        and (
            not wanted_managers
            or t.repository_manager_id is None
            or t.repository_manager_id in wanted_managers
        )
    ]


def _values(filters: Sequence[SearchFilter], field: FilterableField) -> set[str]:
    return {f.value for f in filters if f.filterable_field is field}


def _placed(row: RepositoryResult, target: LegacyTarget) -> RepositoryResult:
    """Legacy rows do not say where they live; the walk knows, so the row says it too."""
    update: dict[str, str] = {}
    if row.repository_id is None:
        update["repository_id"] = target.repository_id
    if row.repository_manager_id is None and target.repository_manager_id is not None:
        update["repository_manager_id"] = target.repository_manager_id
    return row.model_copy(update=update) if update else row
