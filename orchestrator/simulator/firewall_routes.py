"""Handlers of the Firewall listings and both generations of the Repository Results API.

Which Repository Results endpoint exists depends on the simulated release (see
``SimulatorConfig.current_results_api``); the app registers only that one.
"""

from __future__ import annotations

from aiohttp import web

from orchestrator.iq.firewall_models import OwnerType, RepositoryList, RepositoryManagerList
from orchestrator.simulator.firewall import QueryError, page_of, parse_query, search, wire_row
from orchestrator.simulator.handlers import Refusal, json_object, wire
from orchestrator.simulator.state import state_of


async def repository_container(request: web.Request) -> web.Response:
    return web.json_response(wire(state_of(request).firewall.container))


async def repository_managers(request: web.Request) -> web.Response:
    managers = state_of(request).firewall.managers
    return web.json_response(wire(RepositoryManagerList(repository_managers=managers)))


async def repositories(request: web.Request) -> web.Response:
    manager_id = request.match_info["repositoryManagerId"]
    found = state_of(request).firewall.repositories.get(manager_id)
    if found is None:
        raise Refusal(404, f"Repository manager not found: {manager_id}")
    return web.json_response(wire(RepositoryList(repositories=found)))


async def repository_results(request: web.Request) -> web.Response:
    """Release 175 and later: an owner's results, one page, with ``hasNextPage``."""
    owner_type = OwnerType(request.match_info["ownerType"])
    owner_id = request.match_info["ownerId"]
    body = await json_object(request)
    try:
        query = parse_query(body)
        rows = state_of(request).firewall.owner_rows(owner_type, owner_id)
        if rows is None:
            raise Refusal(404, f"No {owner_type.value} with id {owner_id}")
        page, more = page_of(search(rows, query, legacy=False), query)
    except QueryError as exc:
        raise Refusal(400, str(exc)) from None
    return web.json_response(
        {
            "repositoryResultsDetails": [wire_row(r, legacy=False) for r in page],
            "hasNextPage": more,
        }
    )


async def legacy_repository_results(request: web.Request) -> web.Response:
    """Before release 175: one repository's results, one page, as a bare list."""
    repository_id = request.match_info["repositoryId"]
    body = await json_object(request)
    try:
        query = parse_query(body)
        rows = state_of(request).firewall.owner_rows(OwnerType.REPOSITORY, repository_id)
        if rows is None:
            raise Refusal(404, f"No repository with id {repository_id}")
        page, _ = page_of(search(rows, query, legacy=True), query)
    except QueryError as exc:
        raise Refusal(400, str(exc)) from None
    return web.json_response([wire_row(r, legacy=True) for r in page])
