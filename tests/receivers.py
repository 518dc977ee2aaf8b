"""Small servers and helpers for webhook tests, on 127.0.0.1 only.

- :func:`free_port` picks a port for a listener the simulator must know before it starts.
- :class:`Recorder` takes deliveries, answering each with a status the test chooses, and keeps
  their headers and bodies.
- :class:`Replayer` sits between the simulator and a run's listener and forwards every
  delivery twice, as a replay would.
- :func:`delivery` makes a signed Application Evaluation delivery, for a test to send itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from aiohttp import web

from orchestrator.iq.webhook_models import iq_timestamp

SECRET = "webhook-secret-for-tests"


def free_port() -> int:
    """A port nothing listens on now, for a listener to bind a moment later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def delivery(
    application_id: str,
    stage: str,
    when: datetime,
    *,
    secret: str | None = SECRET,
    delivery_id: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of an ``iq:applicationEvaluation`` delivery, signed with ``secret``."""
    body = json.dumps(
        {
            "applicationEvaluation": {
                "application": {"id": application_id},
                "stage": stage,
                "ownerId": application_id,
                "evaluationDate": iq_timestamp(when),
                "reportId": uuid.uuid4().hex,
            }
        }
    ).encode()
    headers = {
        "Content-Type": "application/json; charset=UTF-8",
        "X-Nexus-Webhook-Id": "iq:applicationEvaluation",
        "X-Nexus-Webhook-Delivery": delivery_id or str(uuid.uuid4()),
    }
    if secret is not None:
        headers["X-Nexus-Webhook-Signature"] = hmac.new(
            secret.encode(), body, hashlib.sha1
        ).hexdigest()
    return headers, body


@asynccontextmanager
async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], port: int = 0
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{bound}/"
    finally:
        await runner.cleanup()


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Recorder:
    """Takes every request, answering ``status``, and keeps it."""

    status: int = 204
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            Received(request.method, request.path, dict(request.headers), await request.read())
        )
        return web.Response(status=self.status)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Recorder]:
        async with _serve(self.handle) as url:
            self.url = url
            yield self


@dataclass(slots=True)
class Replayer:
    """Forwards every request twice, headers and body unchanged, to ``target``."""

    target: str
    answers: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-nexus")}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.post(self.target, data=body, headers=headers) as answer:
                    self.answers.append(answer.status)
        return web.Response(status=self.answers[-1])

    @asynccontextmanager
    async def serving(self, port: int) -> AsyncIterator[Replayer]:
        async with _serve(self.handle, port):
            yield self
