"""An async client for the IQ Server endpoints iq-promote uses.

One aiohttp session carries every request (connection pooling, basic auth), every relative
URL is joined to the server's base URL so that a context path (``https://host/iq/``) is kept,
and every request goes through :class:`~orchestrator.iq.retry.RetryPolicy`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
import anyio
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError
from yarl import URL

from orchestrator import defaults
from orchestrator.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    ServerError,
    UnreachableError,
)
from orchestrator.iq.breaker import RequestGate
from orchestrator.iq.models import (
    Application,
    ApplicationList,
    Organization,
    OrganizationList,
    OwnerType,
    PromoteScanRequest,
    PromoteScanResponse,
    PromotionStatus,
    PurgeScanFiles,
    ReportData,
    Repository,
    RepositoryContainer,
    RepositoryList,
    RepositoryManager,
    RepositoryManagerList,
    RepositoryResult,
    RepositoryResultsPage,
    RepositoryResultsQuery,
    ScanRetentionConfig,
)
from orchestrator.iq.retry import Failure, Meaning, Refusal, RetryPolicy, parse_retry_after

log = structlog.get_logger("orchestrator.iq")

ModelT = TypeVar("ModelT", bound=BaseModel)

CLOSE_TIMEOUT = 5.0
"""Seconds closing the session may take, even in a cancelled run."""

PUBLIC_ID_BATCH = 50
"""Public ids per ``GET /api/v2/applications?publicId=...`` look-up, to keep URLs short."""


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
    max_connections: int = 64


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
class Submission:
    """An accepted promotion: where to follow it, and how many POSTs it took."""

    status_url: str
    attempts: int


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    attempts: int


def normalise_base_url(url: str) -> URL:
    """The server URL as a base for relative links: scheme and host required, trailing slash."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is not an http(s) URL")
    if parsed.user or parsed.password:
        raise ValueError("put credentials in IQ_USERNAME/IQ_PASSWORD, not in the server URL")
    path = parsed.path if parsed.path.endswith("/") else parsed.path + "/"
    return parsed.with_path(path).with_query(None).with_fragment(None)


class IqClient:
    """Async IQ Server client; use it as ``async with IqClient(settings) as client``."""

    def __init__(self, settings: ClientSettings, *, gate: RequestGate | None = None) -> None:
        self.settings = settings
        self.base_url = normalise_base_url(settings.base_url)
        self.stats = RequestStats()
        self._gate = gate or RequestGate()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        ssl_context: ssl.SSLContext | bool = True
        if not self.settings.verify_tls:
            ssl_context = False
        elif self.settings.ca_bundle:
            ssl_context = ssl.create_default_context(cafile=self.settings.ca_bundle)
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections, ssl=ssl_context, enable_cleanup_closed=True
        )
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

    def absolute(self, url: str) -> str:
        """Join a URL the server gave (relative, as IQ gives them) to the base URL."""
        return str(self.base_url.join(URL(url)))

    # --- look-ups --------------------------------------------------------------------------

    async def organizations(self) -> list[Organization]:
        answer = await self._get("api/v2/organizations", OrganizationList, kind="organizations")
        return answer.organizations

    async def applications(self) -> list[Application]:
        answer = await self._get("api/v2/applications", ApplicationList, kind="applications")
        return answer.applications

    async def applications_by_public_id(self, public_ids: Iterable[str]) -> list[Application]:
        """Resolve public ids in batches; ids the server does not know are simply absent."""
        ids = list(dict.fromkeys(public_ids))
        found: list[Application] = []
        for start in range(0, len(ids), PUBLIC_ID_BATCH):
            batch = ids[start : start + PUBLIC_ID_BATCH]
            answer = await self._get(
                "api/v2/applications",
                ApplicationList,
                params=[("publicId", pid) for pid in batch],
                kind="applications",
            )
            found.extend(answer.applications)
        return found

    async def applications_of_organization(self, organization_id: str) -> list[Application]:
        answer = await self._get(
            f"api/v2/applications/organization/{organization_id}",
            ApplicationList,
            kind="applications",
        )
        return answer.applications

    async def scan_retention(self) -> PurgeScanFiles:
        answer = await self._get(
            "api/v2/config",
            ScanRetentionConfig,
            params=[("property", "purgeScanFiles")],
            kind="config",
        )
        return answer.purge_scan_files

    async def set_scan_retention(self, value: PurgeScanFiles) -> None:
        await self._send(
            "PUT",
            "api/v2/config",
            kind="config",
            json_body=ScanRetentionConfig(purge_scan_files=value).to_wire(),
            what="set purgeScanFiles (needs the System Administrator role)",
        )

    # --- promotion -------------------------------------------------------------------------

    async def promote_scan(self, application_id: str, request: PromoteScanRequest) -> Submission:
        """POST promoteScan. Repeating it is safe (it only makes another report), so it is
        retried like a read on 429, 5xx and dropped connections."""
        answer = await self._send(
            "POST",
            f"api/v2/evaluation/applications/{application_id}/promoteScan",
            kind="promote",
            json_body=request.to_wire(),
            what=f"promote a scan of application {application_id}",
        )
        response = _parse(PromoteScanResponse, answer.body, "promoteScan")
        return Submission(status_url=self.absolute(response.status_url), attempts=answer.attempts)

    async def promotion_status(self, status_url: str) -> PromotionStatus:
        return await self._get(status_url, PromotionStatus, kind="status")

    async def report_data(self, report_data_url: str) -> ReportData:
        return await self._get(report_data_url, ReportData, kind="report-data")

    # --- plumbing --------------------------------------------------------------------------

    async def get_json(
        self,
        url: str,
        adapter: TypeAdapter[Any],
        *,
        kind: str,
        json_body: Any = None,
        method: str = "GET",
    ) -> Any:
        """Send a request and parse its JSON answer with ``adapter``; for endpoints whose
        answer is not one of this module's models (e.g. a bare list)."""
        answer = await self._send(method, url, kind=kind, json_body=json_body, what=kind)
        try:
            return adapter.validate_json(answer.body)
        except ValidationError as exc:
            raise ServerError(f"unexpected answer from {kind}: {_short(exc)}") from exc

    async def _get(
        self,
        url: str,
        model: type[ModelT],
        *,
        kind: str,
        params: Sequence[tuple[str, str]] | None = None,
    ) -> ModelT:
        answer = await self._send("GET", url, kind=kind, params=params, what=kind)
        return _parse(model, answer.body, kind)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        what: str,
        params: Sequence[tuple[str, str]] | None = None,
        json_body: Any = None,
    ) -> _Answer:
        """Send one request, retrying as the policy says; raise a ServerError when it fails."""
        if self._session is None:
            raise RuntimeError("IqClient is used outside 'async with'")
        target = self.base_url.join(URL(url))
        attempts = 0
        # What the retry policy counts: not the attempts sent while the server was known to be
        # away (the circuit breaker's probes); how long to wait that out is the breaker's call.
        counted = 0
        while True:
            await self._gate.before_attempt(retry=attempts > 0)
            attempts += 1
            counted += 1
            self.stats.count(kind, retry=attempts > 1)
            failure: Failure
            try:
                async with self._session.request(
                    method, target, params=params, json=json_body
                ) as response:
                    body = await response.read()
                    status = response.status
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = Failure(status=None, detail=_describe(exc))
            else:
                if status < 400:
                    self._gate.on_success()
                    return _Answer(status=status, body=body, attempts=attempts)
                failure = Failure(status=status, retry_after=retry_after, detail=_text(body))
            policy = self.settings.retry
            meaning = policy.meaning(failure)
            self._gate.on_failure(meaning)
            if not meaning.retry:
                raise _refused(
                    failure, meaning, what=what, url=target, user=self.settings.credentials.username
                )
            if self._gate.waiting_out(meaning):
                counted -= 1
                continue
            delay = policy.next_delay(counted, failure, method)
            if delay is None:
                raise _give_up(failure, what=what, attempts=attempts, base=self.base_url)
            log.info(
                "http.retry",
                method=method,
                path=target.path,
                status=failure.status,
                error=failure.detail if failure.is_connection_error else None,
                attempt=attempts,
                delay=round(delay, 3),
            )
            await anyio.sleep(delay)

    # --- firewall: listings and repository results ----------------------------------------
    # Used by orchestrator.firewall; paths follow the Firewall and Repository Results REST APIs.

    async def repository_container(self) -> RepositoryContainer:
        return await self._get(
            "api/v2/firewall/repositoryContainer", RepositoryContainer, kind="firewall"
        )

    async def repository_managers(self) -> list[RepositoryManager]:
        answer = await self._get(
            "api/v2/firewall/repositoryManagers", RepositoryManagerList, kind="firewall"
        )
        return answer.repository_managers

    async def repositories(self, repository_manager_id: str) -> list[Repository]:
        answer = await self._get(
            f"api/v2/firewall/repositories/configuration/{_segment(repository_manager_id)}",
            RepositoryList,
            kind="firewall",
        )
        return answer.repositories

    async def repository_results(
        self, owner_type: OwnerType, owner_id: str, query: RepositoryResultsQuery
    ) -> RepositoryResultsPage:
        """One page from the Repository Results endpoint of release 175 and later."""
        answer = await self._send(
            "POST",
            f"api/experimental/repositories/{owner_type.value}/{_segment(owner_id)}"
            "/results/details",
            kind="repository-results",
            json_body=query.to_wire(),
            what=f"read the repository results of {owner_type.value} {owner_id}",
        )
        return _parse(RepositoryResultsPage, answer.body, "repository results")

    async def legacy_repository_results(
        self, repository_id: str, body: dict[str, object]
    ) -> list[RepositoryResult]:
        """One page from the per-repository endpoint of releases before 175 (a bare list)."""
        answer = await self._send(
            "POST",
            f"api/experimental/repositories/{_segment(repository_id)}/results/details",
            kind="repository-results",
            json_body=body,
            what=f"read the repository results of repository {repository_id}",
        )
        try:
            return _RESULT_LIST.validate_json(answer.body)
        except ValidationError as exc:
            raise ServerError(f"unexpected answer from repository results: {_short(exc)}") from exc


_RESULT_LIST = TypeAdapter(list[RepositoryResult])


def _segment(value: str) -> str:
    """An id as one path segment: a '/' or '?' in it must not reach another endpoint."""
    return quote(value, safe="")


def _parse(model: type[ModelT], body: bytes, kind: str) -> ModelT:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ServerError(f"unexpected answer from {kind}: {_short(exc)}") from exc


def _refused(failure: Failure, meaning: Meaning, *, what: str, url: URL, user: str) -> ServerError:
    """The error of an answer no retry can mend, as the status table classes it."""
    status, detail = failure.status, failure.detail
    if meaning.refusal is Refusal.CREDENTIALS:
        return AuthError(
            f"IQ Server refused the credentials (HTTP {status}) of user {user!r}: "
            "check IQ_USERNAME and IQ_PASSWORD",
            status=status,
        )
    if meaning.refusal is Refusal.PERMISSION:
        said = f": {detail}" if detail else ""
        return ForbiddenError(
            f"the user may not {what} (HTTP {status}{said}); grant it the needed role "
            "or leave this out",
            status=status,
        )
    if meaning.refusal is Refusal.NOT_FOUND:
        return NotFoundError(detail or f"not found: {url.path}", status=status)
    return ServerError(
        f"IQ Server rejected the request to {what} (HTTP {status}): {detail}", status=status
    )


def _give_up(failure: Failure, *, what: str, attempts: int, base: URL) -> ServerError:
    if failure.is_connection_error:
        return UnreachableError(
            f"IQ Server at {base} did not answer after {attempts} attempts ({failure.detail}); "
            "check the URL, the network and the server's health"
        )
    return ServerError(
        f"IQ Server failed to {what} after {attempts} attempts "
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


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
