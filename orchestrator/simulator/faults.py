"""Fault injection: aiohttp middlewares that make the API routes misbehave as configured.

Faults apply to API routes only, never to ``/__simulator/*``, and draw from a seeded
generator so a run with the same seed and the same request order misbehaves the same way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import anyio
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from orchestrator.simulator.config import FaultConfig
from orchestrator.simulator.stats import SimulatorStats

SIMULATOR_ROUTE_PREFIX = "simulator."
"""Route names of the simulator's own endpoints start with this; they are never faulted."""
PROMOTE_ROUTE = "promote-scan"
SERVER_ERRORS = (
    (500, "Internal Server Error"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
)


@dataclass(slots=True)
class Outage:
    """Whether the server is away: while it is, every API request is dropped unanswered."""

    active: bool = False


def route_name(request: web.Request) -> str:
    """The name of the route a request matched, or 'unmatched'."""
    return request.match_info.route.name or "unmatched"


def is_api(request: web.Request) -> bool:
    return not route_name(request).startswith(SIMULATOR_ROUTE_PREFIX)


def drop(request: web.Request) -> web.Response:
    """Close the connection without an answer; aiohttp then quietly fails to write this one."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error as IQ sends them: plain text."""
    return web.Response(status=status, text=text, content_type="text/plain", headers=headers)


def stats_middleware(stats: SimulatorStats) -> Middleware:
    """Count every API request by route name and method, faulted or not."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_api(request):
            stats.count_request(route_name(request), request.method)
        return await handler(request)

    return count


def fault_middleware(
    faults: FaultConfig,
    outage: Outage,
    stats: SimulatorStats,
    seed: int,
) -> Middleware:
    """Outage, latency, dropped connections, 5xx answers and throttling, in that order."""
    rng = random.Random(f"faults:{seed}")

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_api(request):
            return await handler(request)
        if outage.active:
            stats.faults["outage"] += 1
            return drop(request)
        if faults.latency > 0:
            spread = faults.latency * faults.latency_jitter
            await anyio.sleep(max(0.0, faults.latency + rng.uniform(-spread, spread)))
        if faults.drop_rate and rng.random() < faults.drop_rate:
            stats.faults["drop"] += 1
            return drop(request)
        if faults.fail_rate and rng.random() < faults.fail_rate:
            status, reason = rng.choice(SERVER_ERRORS)
            stats.faults[str(status)] += 1
            return plain(status, f"{reason} (simulated)")
        depth = faults.throttle_queue_depth
        throttled = route_name(request) == PROMOTE_ROUTE and request.method == "POST"
        if throttled and depth is not None and stats.queue_depth >= depth:
            stats.faults["429"] += 1
            wait = str(max(0, round(faults.retry_after)))
            return plain(
                429, "Too many evaluations queued; retry later", headers={"Retry-After": wait}
            )
        return await handler(request)

    return inject
