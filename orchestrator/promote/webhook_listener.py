"""The run's listener for IQ Server's Application Evaluation webhook.

An aiohttp server that takes a POST on any path, answers at once and does no work of its own:
:func:`~orchestrator.promote.webhooks.read_delivery` decides on the delivery, and an
authentic evaluation event is offered to the :class:`~orchestrator.promote.hints.HintBoard`,
which wakes the follower of the promotion it may concern; that follower asks the status. The
listener runs as a task in the run's task group and stops listening when it is cancelled.

It is imported only when a run listens, so that ``import orchestrator`` loads no web server.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import anyio
import structlog
from aiohttp import web
from anyio.abc import TaskStatus

from orchestrator.errors import UsageError
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.hints import HintBoard, WebhookSettings
from orchestrator.promote.webhooks import Rejection, read_delivery
from orchestrator.report.run_report import WebhookSummary

log = structlog.get_logger("orchestrator.promote")

SHUTDOWN_TIMEOUT = 1.0
"""Seconds a delivery being answered gets when the run ends."""
DELIVERIES_REMEMBERED = 65536
"""Delivery ids kept to recognise a replay: far more than arrive while a promotion waits."""


@dataclass(slots=True)
class WebhookCounts:
    """What the listener received, for the report and ``run.summary``."""

    received: int = 0
    accepted: int = 0
    rejected: Counter[Rejection] = field(default_factory=Counter)
    matched: int = 0
    ignored: int = 0
    duplicates: int = 0

    def summary(self, listen: ListenAddress) -> WebhookSummary:
        return WebhookSummary(
            listen=str(listen),
            received=self.received,
            accepted=self.accepted,
            rejected={str(reason): self.rejected[reason] for reason in Rejection},
            matched=self.matched,
            ignored=self.ignored,
            duplicates=self.duplicates,
        )


class WebhookListener:
    """``await task_group.start(listener.serve)`` listens until the task group is cancelled;
    :attr:`board` is what the scheduler watches its promotions on."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.board = HintBoard(settings.backstop)
        self.counts = WebhookCounts()
        self.bound: ListenAddress = settings.listen
        """Where it listens: the port chosen, once listening, when the settings said 0."""
        self._seen: OrderedDict[str, None] = OrderedDict()

    def summary(self) -> WebhookSummary:
        return self.counts.summary(self.bound)

    async def serve(
        self, *, task_status: TaskStatus[ListenAddress] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen, tell the starter where, and go on until cancelled; then stop listening
        (shielded, so that the port is closed whatever cancelled the run)."""
        app = web.Application(client_max_size=self.settings.max_body)
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            listen = self.settings.listen
            site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                raise UsageError(
                    f"cannot listen for webhooks on {listen}: {exc.strerror or exc}"
                ) from None
            port = runner.addresses[0][1] if listen.port == 0 else listen.port
            self.bound = ListenAddress(listen.host, port)
            log.info("webhook.listening", address=str(self.bound), signed=self.secret_set)
            task_status.started(self.bound)
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
            log.info("webhook.closed", address=str(self.bound))

    @property
    def secret_set(self) -> bool:
        return self.settings.secret is not None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.counts.received += 1
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._rejected(Rejection.TOO_LARGE, request)
        decided = read_delivery(request.headers, body, self.settings.secret)
        if isinstance(decided, Rejection):
            return self._rejected(decided, request)
        self.counts.accepted += 1
        if decided.delivery_id is not None and self._replayed(decided.delivery_id):
            self.counts.duplicates += 1
            log.info("webhook.duplicate", delivery=decided.delivery_id)
        elif decided.event is not None and self.board.offer(decided.event):
            self.counts.matched += 1
        else:
            self.counts.ignored += 1
        return web.Response(status=204)

    def _rejected(self, reason: Rejection, request: web.Request) -> web.Response:
        """Count and answer a refused delivery; the first of each kind is a warning (a wrong
        secret in IQ's webhook, a proxy in the way), the rest only counted."""
        self.counts.rejected[reason] += 1
        emit = log.warning if self.counts.rejected[reason] == 1 else log.debug
        emit("webhook.rejected", reason=str(reason), status=reason.status, peer=request.remote)
        return web.Response(status=reason.status, text=f"delivery refused: {reason}\n")

    def _replayed(self, delivery_id: str) -> bool:
        """Whether this delivery id came before; it is remembered now, the oldest forgotten."""
        if delivery_id in self._seen:
            return True
        self._seen[delivery_id] = None
        if len(self._seen) > DELIVERIES_REMEMBERED:
            self._seen.popitem(last=False)
        return False
