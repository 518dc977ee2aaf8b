"""Small servers a test puts in front of the simulator, on 127.0.0.1, to change one thing.

- :class:`Front` is a reverse proxy (a load balancer, a gateway) whose hook may answer a
  request itself or rewrite the simulator's answer: a ``/policy`` that fails, an HTML page
  with 200, a status word this version does not know, an odd row in a listing.
- :class:`ForwardProxy` is an HTTP proxy, as ``HTTP_PROXY`` names one: it records what it was
  asked and forwards it.
- :class:`RefusingProxy` is an HTTP proxy that forwards nothing: it answers every request,
  a tunnel's ``CONNECT`` too, with one status and the request's headers echoed back.

- :class:`SharedHost` is a front server for IQ under ``/iq/`` and another application beside
  it, which decodes a path before it resolves its dot segments, as nginx does.

All stop with their ``async with`` block; none reaches anything but the URL it is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from posixpath import normpath
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

FORWARDED = ("Authorization", "Content-Type", "Accept", "Cookie", "X-CSRF-TOKEN")


@dataclass(frozen=True, slots=True)
class Upstream:
    """What the simulator answered, for a hook to rewrite."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    """Headers a hook adds to the answer."""

    def response(self) -> web.Response:
        """This answer, passed on."""
        return web.Response(
            status=self.status,
            body=self.body,
            content_type=self.content_type,
            headers=CIMultiDict(self.headers),
        )


Before = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
"""Answer a request in the simulator's place, or None to forward it."""
After = Callable[[web.Request, Upstream], Upstream]
"""Rewrite the simulator's answer."""


async def _forward(request: web.Request, url: str) -> Upstream:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            request.method,
            url,
            headers={k: v for k, v in request.headers.items() if k in FORWARDED},
            data=await request.read(),
            allow_redirects=False,
        ) as answer,
    ):
        return Upstream(answer.status, await answer.read(), answer.content_type)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the block; its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with serving(app) as url:
        yield url


@asynccontextmanager
async def _serve_all(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """Serve every request to ``handler``, routed or not (a ``CONNECT host:443`` has no path
    a router matches)."""
    runner = web.ServerRunner(web.Server(handler), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


@dataclass(slots=True)
class Front:
    """A reverse proxy to ``upstream`` (the simulator's base URL), changed by the hooks."""

    upstream: str
    before: Before | None = None
    after: After | None = None
    seen: list[tuple[str, str]] = field(default_factory=list)
    """(method, raw path and query, as sent) of every request, in order."""
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.raw_path))
        if self.before is not None:
            answered = await self.before(request)
            if answered is not None:
                return answered
        upstream = await _forward(request, self.upstream + request.path_qs.lstrip("/"))
        if self.after is not None:
            upstream = self.after(request, upstream)
        return upstream.response()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Front]:
        async with _serve(self.handle) as url:
            self.url = url
            yield self


@dataclass(slots=True)
class ForwardProxy:
    """An HTTP forward proxy: what clients ask it for (absolute URLs), it fetches."""

    asked: list[str] = field(default_factory=list)
    """Every absolute URL it was asked for."""
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = str(request.url)
        self.asked.append(target)
        return (await _forward(request, target)).response()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[ForwardProxy]:
        async with _serve(self.handle) as url:
            self.url = url
            yield self


@dataclass(slots=True)
class RefusingProxy:
    """A proxy that answers every request with ``status`` (407: its credentials refused), its
    body the request's headers, as a careless proxy's error page shows them."""

    status: int = 407
    asked: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, target, Proxy-Authorization) of every request, in order."""
    url: str = ""

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        authorization = request.headers.get("Proxy-Authorization")
        self.asked.append((request.method, request.raw_path, authorization))
        return web.Response(
            status=self.status,
            headers={"Proxy-Authenticate": 'Basic realm="corporate"'},
            text=f"refused: {dict(request.headers)}",
        )

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[RefusingProxy]:
        async with _serve_all(self.handle) as url:
            self.url = url
            yield self


@dataclass(slots=True)
class SharedHost:
    """One host serving IQ under ``/iq/`` and another application beside it, behind a front
    server that, as nginx does, decodes a path (``%2F`` too), takes a backslash for a slash
    (as IIS does) and resolves its dot segments before it chooses where a request goes. The
    other application records what reaches it."""

    upstream: str
    after: Callable[[web.BaseRequest, Upstream], Upstream]
    elsewhere: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = normpath(unquote(request.raw_path.split("?", 1)[0]).replace("\\", "/"))
        if not path.startswith("/iq/"):
            self.elsewhere.append({"path": path, **dict(request.headers)})
            return web.json_response({"status": "COMPLETED"})
        query = request.raw_path.partition("?")[2]
        url = self.upstream + path.removeprefix("/iq/") + (f"?{query}" if query else "")
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                url,
                headers={k: v for k, v in request.headers.items() if k in FORWARDED},
                data=await request.read(),
            ) as answer,
        ):
            upstream = Upstream(answer.status, await answer.read(), answer.content_type)
        return self.after(request, upstream).response()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[SharedHost]:
        async with _serve_all(self.handle) as url:
            self.url = url
            yield self
