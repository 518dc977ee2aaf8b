"""How requests reach IQ Server: one aiohttp session, the retry loop, and the boundaries every
request crosses.

- Only URLs on the configured server's origin, under its context path, are ever requested: a
  link or redirect the server answers with that points elsewhere ends that request with
  :class:`~orchestrator.errors.ForeignUrlError`, and nothing (credentials least of all) is
  sent there. Redirects are followed by this module, under the same rule.
- Corporate networks: ``HTTP(S)_PROXY``/``NO_PROXY`` are honoured, or an explicit proxy;
  TLS trusts the given CA bundle (else ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, resolved by
  the caller); a client certificate may be presented; connecting and reading have their own
  timeouts; every request that changes data carries the CSRF header and cookie IQ demands
  behind reverse-proxy authentication.
- Every answer is read up to a cap for its kind; a bigger one ends the request.
"""

from __future__ import annotations

import secrets
import ssl
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
import anyio
import structlog
from yarl import URL

from orchestrator import defaults
from orchestrator.errors import (
    AuthError,
    ForbiddenError,
    ForeignUrlError,
    NotFoundError,
    ServerError,
    UnreachableError,
)
from orchestrator.iq.breaker import RequestGate
from orchestrator.iq.retry import Failure, Meaning, Refusal, RetryPolicy, parse_retry_after

log = structlog.get_logger("orchestrator.iq")

CLOSE_TIMEOUT = 5.0
"""Seconds closing the session may take, even in a cancelled run."""

MAX_REDIRECTS = 5

CSRF_HEADER = "X-CSRF-TOKEN"
CSRF_COOKIE = "CLM-CSRF-TOKEN"

SMALL_ANSWER = 1 << 20
"""Bytes a status or a promoteScan answer may have: they are a few hundred."""
DOCUMENT_ANSWER = 64 << 20
"""Bytes a report document or one page of results may have."""
LISTING_ANSWER = 256 << 20
"""Bytes a listing of every application or report may have (100,000 applications take about
25 MiB)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or user token pair); the password never shows in a repr."""

    username: str
    password: str = field(repr=False)

    def authorization(self) -> str:
        return aiohttp.encode_basic_auth(self.username, self.password)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where the server is and how to talk to it."""

    base_url: str
    credentials: Credentials
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    """Seconds to open a connection (TCP and TLS)."""
    read_timeout: float = defaults.READ_TIMEOUT
    """Seconds an attempt may wait for its answer once connected."""
    verify_tls: bool = True
    ca_bundle: str | None = None
    """PEM file of the certificate authorities to trust, instead of the system's."""
    client_cert: str | None = None
    """PEM file of a client certificate to present (with its key, unless ``client_key``)."""
    client_key: str | None = None
    proxy: str | None = None
    """An HTTP proxy for every request; None uses HTTP(S)_PROXY and NO_PROXY."""
    max_connections: int = 64

    def __post_init__(self) -> None:
        normalise_base_url(self.base_url)  # a bad URL is refused here, not mid-run


def normalise_base_url(url: str) -> URL:
    """The server URL as a base for relative links: scheme and host required, trailing slash.

    The message never repeats the URL: a mistyped one may hold a password."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise ValueError("is not a URL; give one such as https://iq.example.com/") from None
    if parsed.user or parsed.password:
        raise ValueError("holds credentials: set IQ_USERNAME and IQ_PASSWORD instead")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(
            "must be an http:// or https:// URL with a host, such as https://iq.example.com/"
        )
    path = parsed.path if parsed.path.endswith("/") else parsed.path + "/"
    return parsed.with_path(path).with_query(None).with_fragment(None)


@dataclass(slots=True)
class RequestStats:
    """Requests this client sent, every attempt counted; the benchmarks read it."""

    sent: int = 0
    retries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, *, retry: bool) -> None:
        self.sent += 1
        self.retries += retry
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class Request:
    """One request to send, retried as the policy says."""

    method: str
    url: str
    kind: str
    """What it is, for the stats and the logs: "status", "promote", "applications"..."""
    what: str
    """What it does, for messages: "promote a scan of application X"."""
    params: Sequence[tuple[str, str]] | None = None
    json_body: Any = None
    limit: int = DOCUMENT_ANSWER
    """The most bytes its answer may have."""
    json_answer: bool = True
    """Its answer is JSON: an HTML page (a proxy's, a login page) is a retryable failure."""


def environment_proxy(base_url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy ``HTTP(S)_PROXY`` names for the server, unless ``NO_PROXY`` exempts it, and
    its credentials. Looked up once for the session, since every request goes to the one
    origin: aiohttp's ``trust_env`` would look it up (and ``.netrc``) in a thread for every
    request, which cost more CPU than the request itself."""
    if base_url.host is None or urllib.request.proxy_bypass(base_url.host):
        return None, None
    named = urllib.request.getproxies().get(base_url.scheme)
    if not named:
        return None, None
    proxy = URL(named)
    return proxy.with_user(None), aiohttp.BasicAuth.from_url(proxy)


class _TooLarge(Exception):  # noqa: N818 - raised and caught inside this module only
    pass


class Transport:
    """The session every request of one client goes through; ``async with`` opens it."""

    def __init__(self, settings: ClientSettings, gate: RequestGate | None = None) -> None:
        self.settings = settings
        self.base_url = normalise_base_url(settings.base_url)
        self.stats = RequestStats()
        self._gate = gate or RequestGate()
        self._session: aiohttp.ClientSession | None = None
        self._csrf = secrets.token_urlsafe(16)

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections, ssl=self._ssl(), enable_cleanup_closed=True
        )
        proxy: URL | None = None
        proxy_auth: aiohttp.BasicAuth | None = None
        if self.settings.proxy is not None:
            proxy = URL(self.settings.proxy)
        else:
            proxy, proxy_auth = environment_proxy(self.base_url)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={
                "Authorization": self.settings.credentials.authorization(),
                "Accept": "application/json",
                "User-Agent": "iq-promote",
            },
            timeout=aiohttp.ClientTimeout(
                total=self.settings.connect_timeout + self.settings.read_timeout,
                sock_connect=self.settings.connect_timeout,
                sock_read=self.settings.read_timeout,
            ),
            raise_for_status=False,
            proxy=proxy,
            proxy_auth=proxy_auth,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            # Closing must finish even in a cancelled run, but a connection that will not
            # close must not hold the run's end (and its report) hostage.
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await self._session.close()
            self._session = None

    def _ssl(self) -> ssl.SSLContext | bool:
        settings = self.settings
        if not settings.verify_tls:
            return False
        context = ssl.create_default_context(cafile=settings.ca_bundle)
        if settings.client_cert:
            context.load_cert_chain(settings.client_cert, settings.client_key)
        return context

    # --- the origin boundary -----------------------------------------------------------------

    def target(self, url: str | URL) -> URL:
        """``url`` (relative, as IQ gives links, or absolute) joined to the base URL, when it
        is on the server's origin and under its context path; else ForeignUrlError."""
        joined = self.base_url.join(URL(url) if isinstance(url, str) else url)
        same_origin = (
            joined.scheme == self.base_url.scheme
            and joined.host == self.base_url.host
            and joined.port == self.base_url.port
            and joined.user is None
        )
        if not same_origin or not joined.path.startswith(self.base_url.path):
            port = f":{joined.explicit_port}" if joined.explicit_port else ""
            shown = f"{joined.scheme}://{joined.host or ''}{port}{joined.path}"
            raise ForeignUrlError(
                f"the server answered a URL on another host or outside {self.base_url}: "
                f"{shown}; nothing was sent there"
            )
        return joined

    def absolute(self, url: str) -> str:
        """A link the server gave, made absolute; links elsewhere are refused."""
        return str(self.target(url))

    # --- sending -------------------------------------------------------------------------------

    async def send(self, request: Request) -> Answer:
        """Send one request, retrying as the policy says; raise a ServerError when it fails."""
        if self._session is None:
            raise RuntimeError("the client is used outside 'async with'")
        target = self.target(request.url)
        policy = self.settings.retry
        started = time.monotonic()
        attempts = 0
        # What the retry policy counts: not the attempts sent while the server was known to be
        # away (the circuit breaker's probes); how long to wait that out is the breaker's call.
        counted = 0
        while True:
            await self._gate.before_attempt(retry=attempts > 0)
            attempts += 1
            counted += 1
            self.stats.count(request.kind, retry=attempts > 1)
            failure = await self._attempt(request, target)
            if isinstance(failure, Answer):
                self._gate.on_success()
                return Answer(failure.status, failure.body, attempts)
            meaning = policy.meaning(failure)
            self._gate.on_failure(meaning)
            if not meaning.retry:
                raise _refused(failure, meaning, request, target, self.settings.credentials)
            if self._gate.waiting_out(meaning):
                counted -= 1
                continue
            delay = policy.next_delay(counted, failure, request.method)
            if delay is not None and time.monotonic() - started + delay > policy.deadline:
                delay = None
            if delay is None:
                raise _give_up(failure, request, attempts, self.base_url)
            log.info(
                "http.retry",
                method=request.method,
                path=target.path,
                status=failure.status,
                error=failure.detail if failure.is_connection_error or failure.not_json else None,
                attempt=attempts,
                delay=round(delay, 3),
            )
            await anyio.sleep(delay)

    async def _attempt(self, request: Request, target: URL) -> Answer | Failure:
        """One attempt, redirects followed on the server's own origin only."""
        assert self._session is not None
        url = target
        for _ in range(MAX_REDIRECTS + 1):
            changes = request.method not in ("GET", "HEAD")
            try:
                async with self._session.request(
                    request.method,
                    url,
                    params=request.params if url == target else None,
                    json=request.json_body,
                    allow_redirects=False,
                    headers={CSRF_HEADER: self._csrf} if changes else None,
                    cookies={CSRF_COOKIE: self._csrf} if changes else None,
                ) as response:
                    if (
                        response.status in (301, 302, 303, 307, 308)
                        and "Location" in response.headers
                    ):
                        url = self.target(url.join(URL(response.headers["Location"])))
                        continue
                    body = await _read(response, request.limit)
                    status = response.status
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    content_type = response.headers.get("Content-Type", "")
            except _TooLarge:
                raise ServerError(
                    f"the answer to {request.what} is larger than {request.limit >> 20} MiB; "
                    "it was not read"
                ) from None
            except aiohttp.ClientSSLError as exc:
                return Failure(status=None, detail=_describe(exc), tls=True)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Failure(status=None, detail=_describe(exc))
            if status >= 400:
                return Failure(status=status, retry_after=retry_after, detail=_text(body))
            if request.json_answer and _is_html(body, content_type):
                return Failure(
                    status=status,
                    detail=f"an HTML page, not JSON, answered {request.what} (HTTP {status}): "
                    "a proxy's or a login page? check the URL and any proxy between",
                    not_json=True,
                )
            return Answer(status, body, 1)
        raise ServerError(f"more than {MAX_REDIRECTS} redirects answered {request.what}")


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or _TooLarge as soon as it passes ``limit`` (nothing more is read)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_html(body: bytes, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    return body.lstrip()[:1] == b"<"


def _refused(
    failure: Failure, meaning: Meaning, request: Request, url: URL, credentials: Credentials
) -> ServerError:
    """The error of an answer no retry can mend, as the status table classes it."""
    status, detail, what = failure.status, failure.detail, request.what
    if meaning.refusal is Refusal.CREDENTIALS:
        return AuthError(
            f"IQ Server refused the credentials (HTTP {status}) of user "
            f"{credentials.username!r}: check IQ_USERNAME and IQ_PASSWORD",
            status=status,
        )
    if meaning.refusal is Refusal.PERMISSION:
        said = f": {detail}" if detail else ""
        return ForbiddenError(
            f"the user may not {what} (HTTP {status}{said}); grant it the needed role "
            "or leave this out",
            status=status,
        )
    if meaning.refusal is Refusal.TLS:
        return UnreachableError(
            f"TLS with {url.origin()} failed ({detail}): if the server's certificate is signed "
            "by your own CA, give --ca-bundle, server.caBundle or REQUESTS_CA_BUNDLE; if it "
            "asks for a client certificate, give server.clientCert and server.clientKey"
        )
    if meaning.refusal is Refusal.NOT_FOUND:
        return NotFoundError(detail or f"not found: {url.path}", status=status, url=str(url))
    return ServerError(
        f"IQ Server rejected the request to {what} (HTTP {status}): {detail}", status=status
    )


def _give_up(failure: Failure, request: Request, attempts: int, base: URL) -> ServerError:
    if failure.is_connection_error:
        return UnreachableError(
            f"IQ Server at {base} did not answer after {attempts} attempts ({failure.detail}); "
            "check the URL, the network and the server's health"
        )
    if failure.not_json:
        return ServerError(f"after {attempts} attempts, {failure.detail}", status=failure.status)
    return ServerError(
        f"IQ Server failed to {request.what} after {attempts} attempts "
        f"(HTTP {failure.status}: {failure.detail})",
        status=failure.status,
    )


def _text(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
