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
- A proxy's password, wherever it was given, is registered with the scrubber before the first
  request, and no message or log event names a URL with its credentials.
"""

from __future__ import annotations

import math
import posixpath
import re
import secrets
import ssl
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import BaseCookie
from types import TracebackType
from typing import Any, Self

import aiohttp
import anyio
import structlog
from aiohttp import hdrs
from yarl import URL

from orchestrator import defaults
from orchestrator.errors import (
    AuthError,
    ForbiddenError,
    ForeignUrlError,
    NotFoundError,
    ServerError,
    UnreachableError,
    UsageError,
)
from orchestrator.iq.breaker import RequestGate
from orchestrator.iq.retry import Failure, Meaning, Refusal, RetryPolicy, parse_retry_after
from orchestrator.secrets import MIN_SECRET, SCRUBBER

log = structlog.get_logger("orchestrator.iq")

CLOSE_TIMEOUT = 5.0
"""Seconds closing the session may take, even in a cancelled run."""

MAX_REDIRECTS = 5
_OVERDUE = Failure(status=None, detail="the deadline passed")
"""What an attempt answers when its request's deadline passed while it was under way, or
before it was sent (it then is not)."""
_TARGETS_KEPT = 4096
"""URLs whose checked target is kept: more than the status URLs a run has in flight."""
_TARGET_KEPT_LENGTH = 2048
"""The longest URL whose target is kept: a server's odd URL does not take memory for long."""
_PLAIN_RELATIVE = re.compile(r"(?:[\w~-][\w.~-]*/)*[\w~-][\w.~-]*", re.ASCII)
"""A relative path of unreserved characters, no segment empty or starting with a dot: joined
to a base URL ending in ``/``, it is the two put together."""
_TIMER_SLACK = 0.01
"""Seconds by which a timer may fire before its time and still be the deadline's."""

SCRUB_MARGIN = 4096
"""Characters past the cut of an error message that are scrubbed with it: a secret that
starts before the cut ends within them."""

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
        """A bad URL is refused here, not mid-run; a proxy's password is registered with the
        scrubber here, so that settings a Python caller builds keep it out of what is written
        as those the command line builds do."""
        try:
            normalise_base_url(self.base_url)
        except ValueError as exc:
            raise ValueError(f"server URL: {exc}") from None
        if self.proxy is not None:
            checked_proxy(self.proxy, "--proxy (or server.proxy)")


def checked_proxy(text: str, where: str) -> URL:
    """The proxy ``where`` names, its password registered with the scrubber; a ValueError
    that says what is wrong without repeating the URL (it may hold that password)."""
    try:
        proxy = URL(text)
        host = proxy.host
    except (ValueError, TypeError):
        host = None
    if host is None or proxy.scheme != "http":
        raise ValueError(
            f"the proxy {where} names must be an http:// URL with a host, such as "
            "http://proxy.example.com:3128"
        ) from None
    if proxy.password is not None:
        if len(proxy.password) < MIN_SECRET:
            raise ValueError(
                f"the password of the proxy {where} names has fewer than {MIN_SECRET} "
                "characters: it could not be kept out of logs and reports reliably"
            )
        SCRUBBER.add(proxy.password, username=proxy.user or "")
    return proxy


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


def environment_proxy(base_url: URL) -> URL | None:
    """The proxy ``HTTP(S)_PROXY`` names for the server (with its credentials), unless
    ``NO_PROXY`` exempts it. Looked up once for the session, since every request goes to the
    one origin: aiohttp's ``trust_env`` would look it up (and ``.netrc``) in a thread for every
    request, which cost more CPU than the request itself."""
    if base_url.host is None or urllib.request.proxy_bypass(base_url.host):
        return None
    named = urllib.request.getproxies().get(base_url.scheme)
    if not named:
        return None
    return checked_proxy(named, f"{base_url.scheme.upper()}_PROXY")


_NO_URL = URL()


class _SessionCookies(aiohttp.CookieJar):
    """The cookies the server (or a front) set, but never a ``CLM-CSRF-TOKEN`` of its own: it
    would take the place of the client's token, sent as that cookie beside the header. The
    token goes in the Cookie header, not as ``cookies=``: aiohttp builds a cookie jar for
    each request's own cookies, 2% of the client's CPU."""

    def filter_cookies(self, request_url: URL = _NO_URL) -> BaseCookie[str]:
        cookies = super().filter_cookies(request_url)
        cookies.pop(CSRF_COOKIE, None)
        return cookies


class _TooLarge(Exception):  # noqa: N818 - raised and caught inside this module only
    pass


class Transport:
    """The session every request of one client goes through; ``async with`` opens it."""

    def __init__(self, settings: ClientSettings, gate: RequestGate | None = None) -> None:
        self.settings = settings
        self.base_url = normalise_base_url(settings.base_url)
        self._base_text = str(self.base_url)
        self._targets: dict[str, URL] = {}
        self.stats = RequestStats()
        self._gate = gate or RequestGate()
        self._session: aiohttp.ClientSession | None = None
        self._csrf = secrets.token_urlsafe(16)
        self._answered = False
        """Whether anything at the base URL has answered yet (see :func:`_nowhere`)."""
        self._proxy_user: str | None = None
        self._authorization = settings.credentials.authorization()
        self._timeout = aiohttp.ClientTimeout(
            total=settings.connect_timeout + settings.read_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections, ssl=self._ssl(), enable_cleanup_closed=True
        )
        proxy: URL | None
        if self.settings.proxy is not None:
            proxy = checked_proxy(self.settings.proxy, "--proxy")
        else:
            try:
                proxy = environment_proxy(self.base_url)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        self._proxy_user = proxy.user if proxy is not None else None
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=_SessionCookies(),
            # Not Authorization: aiohttp sends a session's Authorization to a proxy that has
            # no credentials of its own, as its Proxy-Authorization (see _headers).
            headers={"Accept": "application/json", "User-Agent": "iq-promote"},
            timeout=self._timeout,
            raise_for_status=False,
            proxy=proxy,
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
        # A file that is missing or holds no certificate is the user's to mend, before anything
        # is sent: a usage error naming it, not an internal one.
        try:
            context = ssl.create_default_context(cafile=settings.ca_bundle)
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(
                f"the CA bundle {settings.ca_bundle} cannot be used ({_tls_reason(exc)}): give a "
                "PEM file of the certificate authorities to trust"
            ) from None
        if settings.client_cert:
            try:
                context.load_cert_chain(settings.client_cert, settings.client_key)
            except (ssl.SSLError, OSError) as exc:
                key = f" with the key {settings.client_key}" if settings.client_key else ""
                raise UsageError(
                    f"the client certificate {settings.client_cert}{key} cannot be used "
                    f"({_tls_reason(exc)}): give PEM files of the certificate and its key"
                ) from None
        return context

    # --- the origin boundary -----------------------------------------------------------------

    def target(self, url: str | URL) -> URL:
        """``url`` (relative, as IQ gives links, or absolute) joined to the base URL, when it
        is on the server's origin and under its context path; else ForeignUrlError, also for a
        URL that cannot be read (``http://[::1``, a port past 65535), which is not repeated.
        What it answered for the latest URLs is kept: a status URL is asked several times.
        A plain relative path (as IQ gives its status URLs), alone or after the base URL's
        text, is that text and the path, already encoded: a join to check each of 100,000
        status URLs was 2% of the client's CPU."""
        if isinstance(url, str) and (known := self._targets.get(url)) is not None:
            return known
        base = self._base_text
        path = url[len(base) :] if isinstance(url, str) and url.startswith(base) else url
        if isinstance(path, str) and _PLAIN_RELATIVE.fullmatch(path):
            joined = URL(base + path, encoded=True)
        else:
            joined = self._checked(url)
        if isinstance(url, str) and len(url) <= _TARGET_KEPT_LENGTH:
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            self._targets[url] = joined
        return joined

    def _checked(self, url: str | URL) -> URL:
        try:
            joined = self.base_url.join(URL(url) if isinstance(url, str) else url)
            same_origin = (
                joined.scheme == self.base_url.scheme
                and joined.host == self.base_url.host
                and joined.port == self.base_url.port
                and joined.user is None
            )
        except ValueError:
            raise ForeignUrlError(
                "the server answered a URL that cannot be read; nothing was sent there"
            ) from None
        if not same_origin or not _under(joined.path, self.base_url.path):
            port = f":{joined.explicit_port}" if joined.explicit_port else ""
            shown = f"{joined.scheme}://{joined.host or ''}{port}{joined.path}"
            raise ForeignUrlError(
                f"the server answered a URL on another host or outside {self.base_url}: "
                f"{shown}; nothing was sent there"
            )
        return joined

    def absolute(self, url: str) -> str:
        """A link the server gave, made absolute; links elsewhere are refused. A plain
        relative path (as IQ gives its report links) is appended to the base URL, as joining
        it would: four links a promotion are not each parsed."""
        if _PLAIN_RELATIVE.fullmatch(url):
            return self._base_text + url
        return str(self.target(url))

    # --- sending -------------------------------------------------------------------------------

    async def send(self, request: Request) -> Answer:
        """Send one request, retrying as the policy says; raise a ServerError when it fails."""
        if self._session is None:
            raise RuntimeError("the client is used outside 'async with'")
        target = self.target(request.url)
        policy = self.settings.retry
        attempts = 0
        # What the retry policy counts: not the attempts sent while the server was known to be
        # away (the circuit breaker's probes); how long to wait that out is the breaker's call.
        counted = 0
        # Seconds of attempts and of waits between them: what the policy's deadline bounds,
        # the attempt under way (its redirects and timeouts) included.
        spent = 0.0
        while True:
            await self._gate.before_attempt(retry=attempts > 0)
            attempts += 1
            counted += 1
            self.stats.count(request.kind, retry=attempts > 1)
            began = time.monotonic()
            failure = await self._attempt(request, target, policy.deadline - spent)
            took = time.monotonic() - began
            spent += took
            if failure is _OVERDUE:
                raise ServerError(
                    f"IQ Server took more than {policy.deadline:g} s to {request.what} "
                    f"({attempts} attempt{'s' if attempts > 1 else ''}, waits included); it was "
                    "not asked again"
                )
            if isinstance(failure, Answer):
                self._gate.on_success()
                self._answered = True
                return Answer(failure.status, failure.body, attempts)
            meaning = policy.meaning(failure)
            self._gate.on_failure(meaning)
            if not meaning.retry:
                error = _refused(
                    failure, meaning, request, target, self.settings.credentials, self._proxy_user
                )
                if isinstance(error, NotFoundError) and not self._answered:
                    error = _nowhere(error, target, self.base_url)
                raise error
            if self._gate.waiting_out(meaning):
                counted -= 1
                spent -= took
                continue
            delay = policy.next_delay(counted, failure, request.method)
            if delay is not None and spent + delay > policy.deadline:
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
            spent += delay

    def _headers(self, *, changes: bool) -> dict[str, str]:
        """The credentials go with each request, not the session: as a session header,
        aiohttp would also send them to a proxy (as its Proxy-Authorization, in the clear
        before a tunnel to an https:// server), a host that is not the server. A request that
        changes data carries the CSRF token as a header and as the cookie beside it; the
        session's other cookies (an SSO front's) join that cookie."""
        if changes:
            return {
                "Authorization": self._authorization,
                CSRF_HEADER: self._csrf,
                hdrs.COOKIE: f"{CSRF_COOKIE}={self._csrf}",
            }
        return {"Authorization": self._authorization}

    def _hop_timeout(self, left: float) -> aiohttp.ClientTimeout:
        """One request's timeouts, cut to the ``left`` seconds of its deadline: aiohttp's
        own timer bounds the attempt, body included, and no second timer is set for it."""
        if left >= self.settings.connect_timeout + self.settings.read_timeout:
            return self._timeout
        return aiohttp.ClientTimeout(
            total=left,
            sock_connect=min(self.settings.connect_timeout, left),
            sock_read=min(self.settings.read_timeout, left),
            # Not rounded up to the next second, as aiohttp rounds timeouts of 5 s and more.
            ceil_threshold=math.inf,
        )

    async def _attempt(self, request: Request, target: URL, budget: float) -> Answer | Failure:
        """One attempt, redirects followed on the server's own origin only, within ``budget``
        seconds (else :data:`_OVERDUE`)."""
        assert self._session is not None
        url = target
        began = time.monotonic()
        for _ in range(MAX_REDIRECTS + 1):
            changes = request.method not in ("GET", "HEAD")
            left = budget - (time.monotonic() - began)
            if left <= 0:
                return _OVERDUE
            timeout = self._hop_timeout(left)
            try:
                async with self._session.request(
                    request.method,
                    url,
                    params=request.params if url == target else None,
                    json=request.json_body,
                    allow_redirects=False,
                    headers=self._headers(changes=changes),
                    timeout=timeout,
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
                    f"the answer to {request.what} is larger than {_size(request.limit)}; "
                    "it was not read"
                ) from None
            except aiohttp.ClientSSLError as exc:
                return Failure(status=None, detail=_describe(exc), tls=True)
            except aiohttp.ClientHttpProxyError as exc:
                return Failure(status=None, detail=_describe(exc), tunnel_status=exc.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                overdue = time.monotonic() - began >= budget - _TIMER_SLACK
                if isinstance(exc, TimeoutError) and timeout is not self._timeout and overdue:
                    return _OVERDUE
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


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not PEM"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _under(path: str, context: str) -> bool:
    """Whether the decoded ``path`` is under the ``context`` path (which ends in ``/``), also
    as a front server that decodes a path before it resolves its dot segments sees it (nginx
    does; IIS also takes a backslash for a slash). yarl resolves plain dot segments, but one
    spelled with an encoded separator (``..%2F``, ``%2F..``, ``..%5C``) stays in the path
    and would lead such a server outside the context path."""
    resolved = posixpath.normpath(path.replace("\\", "/"))
    return path.startswith(context) and (resolved.rstrip("/") + "/").startswith(context)


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or _TooLarge as soon as it passes ``limit`` (nothing more is read)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise _TooLarge
    if declared is not None and hdrs.CONTENT_ENCODING not in response.headers:
        # All at once: aiohttp reads no more than the length declared, and nothing
        # decompressed can outgrow it.
        return await response.read()
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
    failure: Failure,
    meaning: Meaning,
    request: Request,
    url: URL,
    credentials: Credentials,
    proxy_user: str | None,
) -> ServerError:
    """The error of an answer no retry can mend, as the status table classes it."""
    status, detail, what = failure.status, failure.detail, request.what
    if meaning.refusal is Refusal.CREDENTIALS:
        return AuthError(
            f"IQ Server refused the credentials (HTTP {status}) of user "
            f"{credentials.username!r}: check IQ_USERNAME and IQ_PASSWORD",
            status=status,
        )
    if meaning.refusal is Refusal.PROXY_CREDENTIALS:
        status = status or failure.tunnel_status
        whose = (
            f"the credentials of user {proxy_user!r}"
            if proxy_user
            else "to serve without credentials"
        )
        return AuthError(
            f"the proxy between refused {whose} (HTTP {status}): check the user and password "
            "in --proxy, server.proxy or HTTPS_PROXY/HTTP_PROXY",
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


def _nowhere(error: NotFoundError, target: URL, base: URL) -> NotFoundError:
    """A 404 before anything at the base URL ever answered is most likely no IQ Server API
    there at all: a server under a context path (``https://host/iq``) given without it."""
    return NotFoundError(
        f"{target.with_query(None)} answered HTTP 404 ({error}), and nothing at {base} has "
        "answered yet: check the server URL; if IQ Server is served under a context path "
        "(such as https://host/iq), the URL must include it",
        status=error.status,
        url=error.url,
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


def _size(limit: int) -> str:
    """A byte limit as people read it: MiB when whole, else bytes."""
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and not limit % (1 << 20) else f"{limit} bytes"


def _text(body: bytes, limit: int = 300) -> str:
    """The start of an error answer, for a message. It is scrubbed before it is cut: a secret
    the answer echoes across the cut would leave a prefix the scrubber no longer knows (the
    start of a Basic pair's base64 is the start of the password)."""
    text = body[: 4 * (limit + SCRUB_MARGIN)].decode("utf-8", errors="replace").strip()
    text = str(SCRUBBER.scrub(text[: limit + SCRUB_MARGIN]))
    return text if len(text) <= limit else text[:limit] + "…"


_USERINFO = re.compile(r"(?<=//)[^/@\s'\"]*@")
"""The ``user:password@`` of a URL in text."""


def _describe(exc: BaseException) -> str:
    """What went wrong, for a message; no URL in it keeps its credentials (aiohttp names the
    proxy's URL as it was given)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    described = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _USERINFO.sub("", described)
