"""Shared fixtures: the anyio backend and the one real simulator every integration test uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from orchestrator.simulator import Simulator, SimulatorConfig

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
"""``async with simulator_factory(**config_overrides) as sim:``"""

FAST_SIMULATOR = {"apps": 20, "organizations": 3, "seed": 1, "workers": 4, "eval_time": 0.03}
"""A small portfolio with evaluations fast enough for tests."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def simulator_factory() -> SimulatorFactory:
    """Start a simulator on a free loopback port with the test defaults, overridden as given."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Simulator]:
        config = SimulatorConfig(**{**FAST_SIMULATOR, **overrides})
        async with Simulator(config, host="127.0.0.1", port=0) as sim:
            yield sim

    return start


@pytest.fixture
async def simulator(simulator_factory: SimulatorFactory) -> AsyncIterator[Simulator]:
    """The default simulator: 20 applications, 4 workers, evaluations of about 0.03 s."""
    async with simulator_factory() as sim:
        yield sim
