"""The simulator's Firewall listings and Repository Results search, both generations."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
import pytest

from orchestrator.iq.firewall_models import RepositoryResult, ViolationState
from orchestrator.simulator import Simulator
from orchestrator.simulator.firewall import violation_state

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
HEADERS = {"Authorization": aiohttp.encode_basic_auth("admin", "admin123")}
LIMIT = 20
CONTAINER = "api/experimental/repositories/repository_container/REPOSITORY_CONTAINER_ID"
ALL = {"page": 1, "pageSize": 10_000}


async def send(sim: Simulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Status and parsed answer (JSON, else text) of one request."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, sim.base_url + path, json=body, headers=HEADERS) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def search(sim: Simulator, body: dict[str, Any], owner: str = CONTAINER) -> Any:
    status, answer = await send(sim, "POST", f"{owner}/results/details", {**ALL, **body})
    assert status == 200, answer
    return answer


def rows(answer: dict[str, Any]) -> list[RepositoryResult]:
    return [RepositoryResult.model_validate(r) for r in answer["repositoryResultsDetails"]]


async def everything(sim: Simulator) -> list[RepositoryResult]:
    return rows(await search(sim, {}))


async def test_the_listings_name_managers_and_repositories(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        status, container = await send(simulator, "GET", "api/v2/firewall/repositoryContainer")
        assert status == 200
        assert container["id"]
        _, managers = await send(simulator, "GET", "api/v2/firewall/repositoryManagers")
        assert len(managers["repositoryManagers"]) == 2
        formats: set[str] = set()
        for manager in managers["repositoryManagers"]:
            path = f"api/v2/firewall/repositories/configuration/{manager['id']}"
            status, listing = await send(simulator, "GET", path)
            assert status == 200
            formats |= {r["format"] for r in listing["repositories"]}
        assert formats == {"maven", "npm", "pypi"}
        status, _ = await send(simulator, "GET", "api/v2/firewall/repositories/configuration/x")
        assert status == 404


async def test_the_dataset_is_realistic(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        found = await everything(simulator)
    assert 150 <= len(found) <= 600
    assert {r.threat_level for r in found} >= {0, 1, 7, 9, 10}
    states = [violation_state(r) for r in found]
    assert set(states) == set(ViolationState) - {ViolationState.ALL}
    assert {r.match_state_id for r in found} == {"exact", "unknown"}
    assert {"Security-Critical", "License-Banned", "Architecture-Cleanup"} <= {
        r.policy_name for r in found if r.policy_name
    }


async def test_paging_edges(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        total = len(await everything(simulator))
        exact = await search(simulator, {"pageSize": total})
        assert len(exact["repositoryResultsDetails"]) == total
        assert exact["hasNextPage"] is False
        short = await search(simulator, {"pageSize": total - 1})
        assert short["hasNextPage"] is True
        last = await search(simulator, {"pageSize": total - 1, "page": 2})
        assert len(last["repositoryResultsDetails"]) == 1
        assert last["hasNextPage"] is False
        beyond = await search(simulator, {"pageSize": 10, "page": total})
        assert beyond == {"repositoryResultsDetails": [], "hasNextPage": False}


@pytest.mark.parametrize(
    ("field", "value", "holds"),
    [
        ("POLICY_NAME", "security-", lambda r, v: v in (r.policy_name or "").lower()),
        (
            "COMPONENT_COORDINATES",
            "LODASH",
            lambda r, v: v.lower() in r.component_display_text.lower(),
        ),
        ("QUARANTINE_TIME", "1719792000000", lambda r, v: (r.quarantine_time or 0) >= int(v)),
    ],
)
async def test_search_filters_match_case_insensitive_substrings(
    simulator: Simulator, field: str, value: str, holds: Callable[[RepositoryResult, str], bool]
) -> None:
    with anyio.fail_after(LIMIT):
        all_rows = await everything(simulator)
        filters = [{"filterableField": field, "value": value}]
        found = rows(await search(simulator, {"searchFilters": filters}))
    assert found
    assert found == [r for r in all_rows if holds(r, value)]


async def test_owner_filters_and_owner_types_agree(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        all_rows = await everything(simulator)
        manager, repository = all_rows[0].repository_manager_id, all_rows[0].repository_id
        assert manager
        assert repository
        by_manager = rows(
            await search(
                simulator,
                {"searchFilters": [{"filterableField": "REPOSITORY_MANAGER_ID", "value": manager}]},
            )
        )
        owned = rows(
            await search(
                simulator, {}, f"api/experimental/repositories/repository_manager/{manager}"
            )
        )
        assert by_manager == owned == [r for r in all_rows if r.repository_manager_id == manager]
        both = [
            {"filterableField": "REPOSITORY_MANAGER_ID", "value": manager},
            {"filterableField": "REPOSITORY_ID", "value": repository},
        ]
        in_repository = rows(await search(simulator, {"searchFilters": both}))
        direct = rows(
            await search(simulator, {}, f"api/experimental/repositories/repository/{repository}")
        )
        assert in_repository == direct == [r for r in all_rows if r.repository_id == repository]


async def test_states_threat_levels_and_aggregation(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        all_rows = await everything(simulator)
        counted = 0
        for state in set(ViolationState) - {ViolationState.ALL}:
            found = rows(await search(simulator, {"violationStateFilters": [state.value]}))
            assert {violation_state(r) for r in found} == {state}
            counted += len(found)
        assert counted == len(all_rows)
        exact = rows(await search(simulator, {"matchStateFilters": ["MATCH_STATE_EXACT"]}))
        unknown = rows(await search(simulator, {"matchStateFilters": ["MATCH_STATE_UNKNOWN"]}))
        assert len(exact) + len(unknown) == len(all_rows)
        assert {r.match_state_id for r in unknown} == {"unknown"}
        severe = rows(await search(simulator, {"threatLevelFilters": [8, 10]}))
        assert severe == [r for r in all_rows if 8 <= r.threat_level <= 10]
        aggregated = rows(await search(simulator, {"aggregate": True}))
    keys = [(r.repository_id, r.hash) for r in aggregated]
    assert len(keys) == len(set(keys)) == len({(r.repository_id, r.hash) for r in all_rows})
    for row in aggregated:
        same = [r for r in all_rows if (r.repository_id, r.hash) == (row.repository_id, row.hash)]
        assert row.threat_level == max(r.threat_level for r in same)


async def test_sort_fields_follow_their_priorities(simulator: Simulator) -> None:
    sorts = [
        {"sortableField": "POLICY_THREAT_LEVEL", "asc": False, "sortPriority": 2},
        {"sortableField": "POLICY_NAME", "asc": True, "sortPriority": 1},
    ]
    with anyio.fail_after(LIMIT):
        found = rows(await search(simulator, {"sortFields": sorts}))
        by_time = rows(
            await search(
                simulator,
                {"sortFields": [{"sortableField": "QUARANTINE_TIME", "asc": False}]},
            )
        )
    keys = [(r.policy_name or "", -r.threat_level) for r in found]
    assert keys == sorted(keys)
    times = [r.quarantine_time or 0 for r in by_time]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    "body",
    [
        {"searchFilters": [{"filterableField": "REPOSIOTRY_MANAGER_ID", "value": "x"}]},
        {"sortFields": [{"sortableField": "SEVERITY", "asc": True, "sortPriority": 1}]},
        {"matchStateFilters": ["MATCH_STATE_SOMETIMES"]},
        {"violationStateFilters": ["VIOLATION_STATE_MAYBE"]},
        {"threatLevelFilters": [11, 0]},
        {"threatLevelFilters": [5]},
        {"page": 0},
        {"searchFilters": [{"filterableField": "QUARANTINE_TIME", "value": "yesterday"}]},
    ],
)
async def test_bad_search_bodies_are_400_plain_text(
    simulator: Simulator, body: dict[str, Any]
) -> None:
    with anyio.fail_after(LIMIT):
        status, answer = await send(simulator, "POST", f"{CONTAINER}/results/details", body)
    assert status == 400
    assert isinstance(answer, str)
    assert answer


@pytest.mark.parametrize(
    "owner",
    [
        "repository_container/not-the-container",
        "repository_manager/no-such-owner",
        "repository/no-such-owner",
    ],
)
async def test_unknown_owners_are_404(simulator: Simulator, owner: str) -> None:
    with anyio.fail_after(LIMIT):
        path = f"api/experimental/repositories/{owner}/results/details"
        status, answer = await send(simulator, "POST", path, ALL)
    assert status == 404
    assert owner.rsplit("/", 1)[-1] in answer


async def test_the_release_decides_which_endpoint_exists(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory() as current, simulator_factory(release=174) as legacy:
        with anyio.fail_after(LIMIT):
            all_rows = await everything(current)
            repository = all_rows[0].repository_id
            legacy_path = f"api/experimental/repositories/{repository}/results/details"
            status, _ = await send(current, "POST", legacy_path, ALL)
            assert status == 404
            status, _ = await send(legacy, "POST", f"{CONTAINER}/results/details", ALL)
            assert status == 404
            status, listed = await send(legacy, "POST", legacy_path, {**ALL, "aggregate": True})
            assert status == 200
            assert isinstance(listed, list)
            assert all("repositoryId" not in r and "repositoryManagerId" not in r for r in listed)
            assert all("quarantineTime" in r for r in listed)
            assert len(listed) == sum(r.repository_id == repository for r in all_rows)
            page = {"page": 2, "pageSize": len(listed) - 1}
            status, tail = await send(legacy, "POST", legacy_path, page)
            assert len(tail) == 1
            status, _ = await send(
                legacy, "POST", "api/experimental/repositories/x/results/details", ALL
            )
            assert status == 404
