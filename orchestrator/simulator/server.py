"""The Simulator: an embedded IQ Server on a loopback port, run as an async context manager.

Its evaluation workers, webhook senders and scheduled outage live in a task group that ends
when the context does, so nothing outlives the simulator.
"""

from __future__ import annotations

import ssl
from contextlib import AsyncExitStack
from types import TracebackType

import anyio
from aiohttp import web

from orchestrator.simulator.app import build_app
from orchestrator.simulator.config import SimulatorConfig
from orchestrator.simulator.engine import Engine
from orchestrator.simulator.faults import Outage
from orchestrator.simulator.firewall import seed_firewall
from orchestrator.simulator.portfolio import Portfolio, seed_portfolio
from orchestrator.simulator.state import ServerState
from orchestrator.simulator.stats import SimulatorStats
from orchestrator.simulator.webhooks import WebhookSender

SHUTDOWN_TIMEOUT = 1.0
"""Seconds open connections get to finish when the simulator stops."""


class Simulator:
    """``async with Simulator(config, port=0) as sim:`` serves IQ's API at ``sim.base_url``."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        """Serve HTTPS with this context (its certificate, and whether it asks for clients')."""
        self.stats = SimulatorStats()
        self.portfolio: Portfolio = seed_portfolio(self.config)
        self._outage = Outage()
        self._webhooks = WebhookSender(self.config, self.stats) if self.config.webhook_url else None
        self._state = ServerState(
            config=self.config,
            portfolio=self.portfolio,
            firewall=seed_firewall(self.config.seed),
            engine=Engine(self.config, self.portfolio, self.stats, self._webhooks),
            stats=self.stats,
            outage=self._outage,
        )
        self._stack: AsyncExitStack | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def base_url(self) -> str:
        """The server's URL, with the context path and a trailing slash."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self._url_host}:{self.port}{self.config.prefix}/"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def engine(self) -> Engine:
        return self._state.engine

    async def __aenter__(self) -> Simulator:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            if self._webhooks is not None:
                await tg.start(self._webhooks.run)
            app = build_app(self._state)
            app.cleanup_ctx.append(self.engine.lifecycle(tg))
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            self._runner = runner
            await self._listen()
            faults = self.config.faults
            if faults.outage_after is not None and faults.outage_for > 0:
                tg.start_soon(self._scheduled_outage, faults.outage_after, faults.outage_for)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # The body's own exception, wrapped by the task group: let it propagate unwrapped.
            if exc is None or list(group.exceptions) != [exc]:
                raise

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()
        self._site = site
        self.port = site.port

    async def outage(self, seconds: float) -> None:
        """Go away for ``seconds``: new connections are refused and requests on open ones are
        dropped unanswered; then come back on the same port."""
        self._outage.active = True
        try:
            if self._site is not None:
                await self._site.stop()
                self._site = None
            await anyio.sleep(seconds)
        finally:
            with anyio.CancelScope(shield=True):
                if self._runner is not None and self._runner.server is not None:
                    await self._listen()
            self._outage.active = False

    def forget_statuses(self) -> int:
        """Forget every promotion status, as a restart of a release that keeps them in memory
        does; evaluations under way finish and leave their reports."""
        return self.engine.forget_statuses()

    async def _scheduled_outage(self, after: float, seconds: float) -> None:
        await anyio.sleep(after)
        await self.outage(seconds)
