"""Everything the route handlers share, in one value stored on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from orchestrator.simulator.config import SimulatorConfig
from orchestrator.simulator.engine import Engine
from orchestrator.simulator.faults import Outage
from orchestrator.simulator.firewall import FirewallData
from orchestrator.simulator.portfolio import Portfolio
from orchestrator.simulator.stats import SimulatorStats


@dataclass(slots=True)
class ServerState:
    """The simulated server: its config, data, evaluation engine, counters and outage flag."""

    config: SimulatorConfig
    portfolio: Portfolio
    firewall: FirewallData
    engine: Engine
    stats: SimulatorStats
    outage: Outage


STATE = web.AppKey("state", ServerState)


def state_of(request: web.Request) -> ServerState:
    return request.app[STATE]
