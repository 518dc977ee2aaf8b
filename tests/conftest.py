"""Shared fixtures: the anyio backend and the one real simulator every integration test uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal

from orchestrator.simulator import FaultConfig, Simulator, SimulatorConfig

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
"""``async with simulator_factory(**config_overrides) as sim:``"""

ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]
"""``with threaded_simulator_factory(**config_overrides) as sim:``"""

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


DOOMED_APP = "doomed-app"
"""The application of ``doomed_simulator`` whose every evaluation fails."""


@pytest.fixture
async def doomed_simulator(simulator_factory: SimulatorFactory) -> AsyncIterator[Simulator]:
    """The default simulator and one more application, ``doomed-app``, that always fails."""
    async with simulator_factory(
        faults=FaultConfig(failing_apps=(DOOMED_APP,)),
        extra_applications=((DOOMED_APP, None),),
    ) as sim:
        yield sim


@pytest.fixture
def threaded_simulator_factory() -> ThreadedSimulatorFactory:
    """Start a simulator with the test defaults, overridden as given, on a free loopback port
    and an event loop of its own in a background thread (an anyio blocking portal): for
    synchronous tests of code that calls ``anyio.run`` itself, such as the command line.

    Read ``sim.stats`` and ``sim.portfolio`` once the code under test has returned."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[Simulator]:
        config = SimulatorConfig(**{**FAST_SIMULATOR, **overrides})
        simulator = Simulator(config, host="127.0.0.1", port=0)
        with (
            start_blocking_portal(backend="asyncio") as portal,
            portal.wrap_async_context_manager(simulator) as sim,
        ):
            yield sim

    return start


@pytest.fixture(autouse=True)
def _private_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs keep their state under $XDG_STATE_HOME by default: a test's goes to a folder of
    its own, never to the user's home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
