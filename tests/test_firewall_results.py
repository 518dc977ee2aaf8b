"""Walking Repository Results against the simulator: filters, sorts, paging edges, both
endpoint generations, the errors, and the firewall summary.

The tests read what the simulator holds through the same API first (every row, the inventory)
and check each filter against that, so they do not depend on how the simulator is seeded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from orchestrator.errors import AuthError, NotFoundError, ServerError, UnknownIdError
from orchestrator.firewall.inventory import FirewallInventory, read_inventory
from orchestrator.firewall.pages import ResultsPage, ResultsRequest, walk_pages
from orchestrator.firewall.query import Owner, QueryOptions, build_query, resolve_owner
from orchestrator.firewall.summary import summarize, violation_state
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import (
    ApiChoice,
    Generation,
    OwnerType,
    RepositoryResult,
    RepositoryResultsQuery,
    ViolationState,
)
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

LEGACY_RELEASE = 170
"""A release before 175: the simulator then serves only the per-repository endpoint."""

TIME_LIMIT = 60


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def served(**overrides: Any) -> AsyncIterator[IqClient]:
    """A simulator on a free loopback port and a client logged in to it."""
    async with (
        Simulator(SimulatorConfig(**overrides), port=0) as sim,
        IqClient(ClientSettings(sim.base_url, Credentials("admin", "admin123"))) as client,
    ):
        yield client


async def read_all(
    client: IqClient, owner: Owner, options: QueryOptions, api: ApiChoice = ApiChoice.AUTO
) -> tuple[list[RepositoryResult], list[ResultsPage]]:
    request = ResultsRequest(owner=owner, query=build_query(options), api=api)
    pages = [page async for page in walk_pages(client, request)]
    return [row for page in pages for row in page.rows], pages


CONTAINER = resolve_owner("repository_container", None)
EVERYTHING = QueryOptions(page_size=1000)


def first_repository(inventory: FirewallInventory) -> tuple[str, str]:
    """(manager id, repository id) of a repository that has results."""
    for entry in inventory.repository_managers:
        for repository in entry.repositories:
            return entry.manager.id, repository.repository_id
    raise AssertionError("the simulator lists no repository")


async def test_the_container_walk_reads_every_row_once_whatever_the_page_size() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            everything, pages = await read_all(client, CONTAINER, EVERYTHING)
            assert everything, "the simulator holds no repository results"
            assert {p.generation for p in pages} == {Generation.CURRENT}
            for size in (1, 7, len(everything) - 1):
                rows, pages = await read_all(
                    client, CONTAINER, QueryOptions(page_size=max(size, 1))
                )
                assert sorted(r.hash + r.pathname + str(r.policy_name) for r in rows) == sorted(
                    r.hash + r.pathname + str(r.policy_name) for r in everything
                )
                assert [p.number for p in pages] == list(range(1, len(pages) + 1))


async def test_an_exact_multiple_of_the_page_size_needs_no_extra_request() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            everything, _ = await read_all(client, CONTAINER, EVERYTHING)
            before = client.stats.by_kind.get("repository-results", 0)
            rows, pages = await read_all(client, CONTAINER, QueryOptions(page_size=len(everything)))
            assert len(rows) == len(everything)
            assert len(pages) == 1
            assert client.stats.by_kind["repository-results"] - before == 1


async def test_an_empty_result_is_one_empty_page() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            options = QueryOptions(search=["COMPONENT_COORDINATES=no-such-component-anywhere"])
            rows, pages = await read_all(client, CONTAINER, options)
            assert rows == []
            assert len(pages) == 1


async def test_owner_types_narrow_to_a_manager_and_a_repository() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            manager_id, repository_id = first_repository(await read_inventory(client))
            everything, _ = await read_all(client, CONTAINER, EVERYTHING)
            of_manager, _ = await read_all(
                client, Owner(OwnerType.REPOSITORY_MANAGER, manager_id), EVERYTHING
            )
            of_repository, _ = await read_all(
                client, Owner(OwnerType.REPOSITORY, repository_id), EVERYTHING
            )
            assert {r.repository_manager_id for r in of_manager} == {manager_id}
            assert {r.repository_id for r in of_repository} <= {repository_id}
            assert len(of_repository) <= len(of_manager) <= len(everything)


@pytest.mark.parametrize(
    ("field", "pick", "holds"),
    [
        (
            "POLICY_NAME",
            lambda r: r.policy_name,
            lambda r, v: v.lower() in (r.policy_name or "").lower(),
        ),
        (
            "COMPONENT_COORDINATES",
            lambda r: (
                r.component_identifier.coordinates.get("artifactId")
                or next(iter(r.component_identifier.coordinates.values()))
            ),
            lambda r, v: (
                v.lower() in r.component_display_text.lower()
                or any(v.lower() in c.lower() for c in r.component_identifier.coordinates.values())
            ),
        ),
        (
            "REPOSITORY_MANAGER_ID",
            lambda r: r.repository_manager_id,
            lambda r, v: v == r.repository_manager_id,
        ),
        ("REPOSITORY_ID", lambda r: r.repository_id, lambda r, v: v == r.repository_id),
    ],
)
async def test_each_search_filter_narrows_the_rows(
    field: str,
    pick: Callable[[RepositoryResult], str | None],
    holds: Callable[[RepositoryResult, str], bool],
) -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            everything, _ = await read_all(client, CONTAINER, EVERYTHING)
            value = next(v for v in map(pick, everything) if v)
            rows, _ = await read_all(
                client, CONTAINER, QueryOptions(search=[f"{field}={value}"], page_size=1000)
            )
            assert rows
            assert all(holds(r, value) for r in rows)
            assert len(rows) == sum(holds(r, value) for r in everything)


async def test_the_quarantine_time_filter_is_sent_and_answered() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            everything, _ = await read_all(client, CONTAINER, EVERYTHING)
            when = next(r.quarantine_time for r in everything if r.quarantine_time is not None)
            rows, _ = await read_all(
                client, CONTAINER, QueryOptions(search=[f"QUARANTINE_TIME={when}"], page_size=1000)
            )
            assert len(rows) <= len(everything)


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("POLICY_THREAT_LEVEL", lambda r: r.threat_level),
        ("POLICY_NAME", lambda r: r.policy_name or ""),
        ("QUARANTINE_TIME", lambda r: r.quarantine_time or 0),
        ("COMPONENT_COORDINATES", lambda r: r.component_display_text),
    ],
)
@pytest.mark.parametrize("descending", [False, True])
async def test_each_sort_orders_the_rows_across_pages(
    sort: str, key: Callable[[RepositoryResult], Any], descending: bool
) -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            direction = "desc" if descending else "asc"
            rows, pages = await read_all(
                client, CONTAINER, QueryOptions(sort=[f"{sort}:{direction}"], page_size=5)
            )
            assert len(pages) > 1
            keys = [key(r) for r in rows]
            assert keys == sorted(keys, reverse=descending)


async def test_sort_priority_orders_ties_by_the_second_field() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            rows, _ = await read_all(
                client,
                CONTAINER,
                QueryOptions(sort=["POLICY_THREAT_LEVEL:desc", "POLICY_NAME:asc"], page_size=4),
            )
            keys = [(-r.threat_level, r.policy_name or "") for r in rows]
            assert keys == sorted(keys)


async def test_states_and_threat_levels_filter_the_rows() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            quarantined, _ = await read_all(
                client, CONTAINER, QueryOptions(violation_states=["quarantined"], page_size=1000)
            )
            assert quarantined
            assert {violation_state(r) for r in quarantined} == {ViolationState.QUARANTINED}
            severe, _ = await read_all(
                client, CONTAINER, QueryOptions(threat_levels="8-10", page_size=1000)
            )
            assert all(8 <= r.threat_level <= 10 for r in severe)
            exact, _ = await read_all(
                client, CONTAINER, QueryOptions(match_states=["exact"], page_size=1000)
            )
            assert {r.match_state_id for r in exact} <= {"exact"}


async def test_aggregate_lists_each_component_once() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            rows, _ = await read_all(
                client, CONTAINER, QueryOptions(aggregate=True, page_size=1000)
            )
            keys = [(r.repository_id, r.hash) for r in rows]
            assert len(keys) == len(set(keys))


async def test_a_server_before_175_is_detected_and_walked_repository_by_repository() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as current:
            expected, _ = await read_all(current, CONTAINER, EVERYTHING)
        async with served(release=LEGACY_RELEASE) as client:
            inventory = await read_inventory(client)
            rows, pages = await read_all(client, CONTAINER, QueryOptions(page_size=3))
            assert {p.generation for p in pages} == {Generation.LEGACY}
            walked = {p.repository_id for p in pages}
            listed = {
                r.repository_id for m in inventory.repository_managers for r in m.repositories
            }
            assert walked == listed
            assert all(r.repository_id and r.repository_manager_id for r in rows)
            assert len(rows) == len(expected)
            # A short page ends each repository: no page but the last of one is short.
            for repository in walked:
                sizes = [len(p.rows) for p in pages if p.repository_id == repository]
                assert all(size == 3 for size in sizes[:-1])
                assert sizes[-1] < 3


async def test_legacy_paging_asks_once_more_after_an_exact_multiple() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served(release=LEGACY_RELEASE) as client:
            _, repository_id = first_repository(await read_inventory(client))
            owner = Owner(OwnerType.REPOSITORY, repository_id)
            rows, _ = await read_all(client, owner, EVERYTHING, api=ApiChoice.LEGACY)
            assert rows
            before = client.stats.by_kind.get("repository-results", 0)
            again, pages = await read_all(
                client, owner, QueryOptions(page_size=len(rows)), api=ApiChoice.LEGACY
            )
            assert len(again) == len(rows)
            assert [len(p.rows) for p in pages] == [len(rows), 0]
            assert client.stats.by_kind["repository-results"] - before == 2


async def test_legacy_applies_threat_levels_and_repository_filters_itself() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served(release=LEGACY_RELEASE) as client:
            manager_id, repository_id = first_repository(await read_inventory(client))
            options = QueryOptions(
                search=[f"REPOSITORY_ID={repository_id}"], threat_levels="5-10", page_size=1000
            )
            rows, pages = await read_all(
                client, Owner(OwnerType.REPOSITORY_MANAGER, manager_id), options, ApiChoice.LEGACY
            )
            assert {p.repository_id for p in pages} == {repository_id}
            assert all(5 <= r.threat_level <= 10 for r in rows)


async def test_current_only_does_not_fall_back() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served(release=LEGACY_RELEASE) as client:
            with pytest.raises(NotFoundError, match="no current Repository Results API"):
                await read_all(client, CONTAINER, EVERYTHING, api=ApiChoice.CURRENT)


@pytest.mark.parametrize("release", [None, LEGACY_RELEASE])
@pytest.mark.parametrize("owner_type", [OwnerType.REPOSITORY, OwnerType.REPOSITORY_MANAGER])
async def test_an_unknown_owner_is_a_usage_error_naming_it(
    release: int | None, owner_type: OwnerType
) -> None:
    overrides = {} if release is None else {"release": release}
    with anyio.fail_after(TIME_LIMIT):
        async with served(**overrides) as client:
            with pytest.raises(UnknownIdError, match=r"knows no .*no-such-owner"):
                await read_all(client, Owner(owner_type, "no-such-owner"), EVERYTHING)


async def test_refused_credentials_are_an_auth_error() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with Simulator(SimulatorConfig(), port=0) as sim:
            settings = ClientSettings(sim.base_url, Credentials("admin", "wrong"))
            async with IqClient(settings) as client:
                with pytest.raises(AuthError, match="401"):
                    await read_all(client, CONTAINER, EVERYTHING)


async def test_a_rejected_search_is_a_server_error_with_its_status() -> None:
    # The query checks stop a bad body before it is sent; a hand-made one shows the 400 path.
    bad = RepositoryResultsQuery.model_construct(
        page=0,
        page_size=10,
        search_filters=[],
        sort_fields=[],
        match_state_filters=[],
        violation_state_filters=[],
        threat_level_filters=[11, 0],
        aggregate=None,
    )
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            with pytest.raises(ServerError) as caught:
                await client.repository_results(OwnerType.REPOSITORY_CONTAINER, CONTAINER.id, bad)
            assert caught.value.status == 400


async def test_the_summary_counts_every_row() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served() as client:
            everything, _ = await read_all(client, CONTAINER, EVERYTHING)
            section = RepositoryResultsSection.model_validate(
                {"pageSize": 7, "quarantinedLimit": 2}
            )
            summary = await summarize(client, section)
    assert summary.api is Generation.CURRENT
    assert summary.total == len(everything)
    assert summary.pages == -(-len(everything) // 7)
    assert sum(summary.by_policy.values()) == summary.total
    assert sum(summary.by_threat_level.values()) == summary.total
    assert sum(summary.by_violation_state.values()) == summary.total
    quarantined = {
        (r.repository_id, r.hash, r.pathname)
        for r in everything
        if violation_state(r) is ViolationState.QUARANTINED
    }
    assert summary.quarantined_total == len(quarantined)
    assert len(summary.quarantined) == min(2, len(quarantined))
    times = [q.quarantined_at for q in summary.quarantined]
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]


async def test_the_summary_of_a_legacy_server() -> None:
    with anyio.fail_after(TIME_LIMIT):
        async with served(release=LEGACY_RELEASE) as client:
            summary = await summarize(client, RepositoryResultsSection())
    assert summary.api is Generation.LEGACY
    assert summary.total > 0
