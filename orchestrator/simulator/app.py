"""The aiohttp application: routes under the context path, Basic auth, error answers, and
the unauthenticated ``__simulator`` endpoints.

Middlewares run outermost first: count the request, inject faults, check credentials, turn
refusals into plain-text answers.
"""

from __future__ import annotations

import base64
import secrets

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from orchestrator.simulator import firewall_routes as fw
from orchestrator.simulator import handlers as iq
from orchestrator.simulator.faults import (
    PROMOTE_ROUTE,
    SIMULATOR_ROUTE_PREFIX,
    fault_middleware,
    is_api,
    plain,
    stats_middleware,
)
from orchestrator.simulator.state import STATE, ServerState, state_of

REALM = 'BASIC realm="Sonatype IQ Server"'
OWNER_TYPES = "repository_container|repository_manager|repository"


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from a Basic ``Authorization`` header, or None if there is none."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def auth_middleware(username: str, password: str) -> Middleware:
    """Basic auth on every API route, answered as IQ does: 401 with its realm."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_api(request):
            return await handler(request)
        given = basic_credentials(request.headers.get(hdrs.AUTHORIZATION, ""))
        if (
            given is None
            or not secrets.compare_digest(given[0].encode(), username.encode())
            or not secrets.compare_digest(given[1].encode(), password.encode())
        ):
            return plain(401, "Unauthorized", headers={hdrs.WWW_AUTHENTICATE: REALM})
        return await handler(request)

    return check


CSRF_HEADER = "X-CSRF-TOKEN"
CSRF_COOKIE = "CLM-CSRF-TOKEN"


def csrf_middleware(enforced: bool) -> Middleware:
    """Behind reverse-proxy authentication IQ demands, on every request that changes data, an
    ``X-CSRF-TOKEN`` header equal to a ``CLM-CSRF-TOKEN`` cookie (any value, the same)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if enforced and is_api(request) and request.method not in ("GET", "HEAD", "OPTIONS"):
            header = request.headers.get(CSRF_HEADER)
            cookie = request.cookies.get(CSRF_COOKIE)
            if not header or header != cookie:
                return plain(403, "CSRF token missing or incorrect")
        return await handler(request)

    return check


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A handler's Refusal becomes its plain-text answer."""
    try:
        return await handler(request)
    except iq.Refusal as refusal:
        return refusal.response()


async def simulator_stats(request: web.Request) -> web.Response:
    return web.json_response(state_of(request).stats.to_json())


async def simulator_reset_stats(request: web.Request) -> web.Response:
    state_of(request).stats.reset()
    return web.Response(status=204)


async def simulator_forget_statuses(request: web.Request) -> web.Response:
    """Forget every promotion status, as a restart of a release that keeps them in memory."""
    forgotten = state_of(request).engine.forget_statuses()
    return web.json_response({"forgotten": forgotten})


def build_app(state: ServerState) -> web.Application:
    """The application for one simulated server; the caller adds the engine's lifecycle."""
    config = state.config
    app = web.Application(
        middlewares=[
            stats_middleware(state.stats),
            fault_middleware(config.faults, state.outage, state.stats, config.seed),
            auth_middleware(config.username, config.password),
            csrf_middleware(config.csrf),
            refusals,
        ]
    )
    app[STATE] = state
    p = config.prefix
    add = app.router
    add.add_get(f"{p}/api/v2/applications", iq.applications, name="applications")
    add.add_get(
        f"{p}/api/v2/applications/organization/{{organizationId}}",
        iq.applications_of_organization,
        name="applications-of-organization",
    )
    report = f"{p}/api/v2/applications/{{applicationPublicId}}/reports/{{scanId}}"
    add.add_get(f"{report}/raw", iq.raw_report_data, name="report-raw")
    add.add_get(f"{report}/policy", iq.policy_report_data, name="report-policy")
    add.add_get(report, iq.bare_report_data, name="report-data")
    add.add_get(f"{p}/api/v2/organizations", iq.organizations, name="organizations")
    add.add_get(
        f"{p}/api/v2/applicationCategories/organization/{{organizationId}}",
        iq.categories_of_organization,
        name="application-categories",
    )
    add.add_get(
        f"{p}/api/v2/applicationCategories/application",
        iq.categories_in_use,
        name="categories-used",
    )
    add.add_get(f"{p}/api/v2/reports/applications", iq.all_latest_reports, name="all-reports")
    add.add_get(
        f"{p}/api/v2/reports/applications/{{applicationId}}",
        iq.latest_reports,
        name="reports",
    )
    add.add_get(
        f"{p}/api/v2/reports/applications/{{applicationId}}/history",
        iq.report_history,
        name="report-history",
    )
    add.add_post(
        f"{p}/api/v2/evaluation/applications/{{applicationId}}/promoteScan",
        iq.promote_scan,
        name=PROMOTE_ROUTE,
    )
    add.add_get(
        f"{p}/api/v2/evaluation/applications/{{applicationId}}/status/{{statusId}}",
        iq.promotion_status,
        name="promotion-status",
    )
    add.add_get(f"{p}/api/v2/config", iq.get_config, name="config")
    add.add_put(f"{p}/api/v2/config", iq.put_config, name="config")
    add.add_delete(f"{p}/api/v2/config", iq.delete_config, name="config")
    add.add_get(
        f"{p}/api/v2/firewall/repositoryContainer",
        fw.repository_container,
        name="repository-container",
    )
    add.add_get(
        f"{p}/api/v2/firewall/repositoryManagers",
        fw.repository_managers,
        name="repository-managers",
    )
    add.add_get(
        f"{p}/api/v2/firewall/repositories/configuration/{{repositoryManagerId}}",
        fw.repositories,
        name="repositories",
    )
    if config.current_results_api:
        add.add_post(
            f"{p}/api/experimental/repositories/{{ownerType:{OWNER_TYPES}}}/{{ownerId}}"
            "/results/details",
            fw.repository_results,
            name="repository-results",
        )
    else:
        add.add_post(
            f"{p}/api/experimental/repositories/{{repositoryId}}/results/details",
            fw.legacy_repository_results,
            name="legacy-repository-results",
        )
    add.add_get(f"{p}/__simulator/stats", simulator_stats, name=f"{SIMULATOR_ROUTE_PREFIX}stats")
    add.add_post(
        f"{p}/__simulator/reset-stats",
        simulator_reset_stats,
        name=f"{SIMULATOR_ROUTE_PREFIX}reset-stats",
    )
    add.add_post(
        f"{p}/__simulator/forget-statuses",
        simulator_forget_statuses,
        name=f"{SIMULATOR_ROUTE_PREFIX}forget-statuses",
    )
    return app
