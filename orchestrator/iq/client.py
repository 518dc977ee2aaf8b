"""An async client for the IQ Server endpoints iq-promote uses.

Every request goes through one :class:`~orchestrator.iq.transport.Transport` (the session,
retries, the origin boundary). Listings are read row by row, as lenient as the vendor's own
schema (whose fields are nearly all optional): a row this version cannot use is skipped with a
warning, and the rest of the listing is kept. Ids are put in paths as single, encoded
segments, so an id holding ``/`` or ``?`` cannot reach another endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ValidationError

from orchestrator.errors import ServerError
from orchestrator.iq.breaker import RequestGate
from orchestrator.iq.firewall_models import (
    OwnerType,
    Repository,
    RepositoryContainer,
    RepositoryManager,
    RepositoryResult,
    RepositoryResultsPage,
    RepositoryResultsQuery,
)
from orchestrator.iq.models import (
    Application,
    ApplicationCategory,
    Organization,
    PromoteScanRequest,
    PromoteScanResponse,
    PromotionStatus,
    PurgeScanFiles,
    ScanRetentionConfig,
    Stage,
)
from orchestrator.iq.report_models import (
    LatestReport,
    PolicyComponent,
    PolicyReport,
    ReportInfo,
    policy_data_url,
)
from orchestrator.iq.transport import (
    DOCUMENT_ANSWER,
    LISTING_ANSWER,
    SMALL_ANSWER,
    ClientSettings,
    Credentials,
    Request,
    RequestStats,
    Transport,
)

log = structlog.get_logger("orchestrator.iq")

ModelT = TypeVar("ModelT", bound=BaseModel)

PUBLIC_ID_BATCH = 50
"""Public ids per ``GET /api/v2/applications?publicId=...`` look-up, to keep URLs short."""

POLICY_PAGE_SIZE = 500
"""Components per page of policy data: the most the server takes."""
MAX_POLICY_PAGES = 10_000
"""Pages of one report's policy data before the answer is taken for a server that never ends."""

RETENTION = "purgeScanFiles"

__all__ = ["ClientSettings", "Credentials", "IqClient", "RequestStats", "Submission"]


@dataclass(frozen=True, slots=True)
class Submission:
    """An accepted promotion: where to follow it, and how many POSTs it took."""

    status_url: str
    attempts: int


def segment(value: str) -> str:
    """An id as one path segment: a '/', '?' or '..' in it must not reach another endpoint."""
    return quote(value, safe="")


class IqClient:
    """Async IQ Server client; use it as ``async with IqClient(settings) as client``."""

    def __init__(self, settings: ClientSettings, *, gate: RequestGate | None = None) -> None:
        self._transport = Transport(settings, gate)
        self.settings = settings
        self.base_url = self._transport.base_url
        self.stats = self._transport.stats

    async def __aenter__(self) -> Self:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transport.__aexit__(exc_type, exc, tb)

    def absolute(self, url: str) -> str:
        """A link the server gave (relative, as IQ gives them), joined to the base URL; a link
        to another host is refused (ForeignUrlError)."""
        return self._transport.absolute(url)

    # --- applications, organizations, categories ---------------------------------------------

    async def organizations(self) -> list[Organization]:
        return await self._rows("api/v2/organizations", Organization, key="organizations")

    async def applications(self, *, include_categories: bool = False) -> list[Application]:
        """Every application the user can see; with their categories when asked."""
        params = [("includeCategories", "true")] if include_categories else None
        return await self._rows(
            "api/v2/applications", Application, key="applications", params=params
        )

    async def applications_by_public_id(
        self, public_ids: Iterable[str], *, include_categories: bool = False
    ) -> list[Application]:
        """Resolve public ids in batches; ids the server does not know are simply absent."""
        ids = list(dict.fromkeys(public_ids))
        found: list[Application] = []
        extra = [("includeCategories", "true")] if include_categories else []
        for start in range(0, len(ids), PUBLIC_ID_BATCH):
            batch = ids[start : start + PUBLIC_ID_BATCH]
            found += await self._rows(
                "api/v2/applications",
                Application,
                key="applications",
                params=[("publicId", pid) for pid in batch] + extra,
            )
        return found

    async def applications_of_organization(self, organization_id: str) -> list[Application]:
        """The applications placed directly in the organization, not in its sub-organizations."""
        return await self._rows(
            f"api/v2/applications/organization/{segment(organization_id)}",
            Application,
            key="applications",
        )

    async def categories(self, organization_id: str) -> list[ApplicationCategory]:
        """The application categories (application tags) an organization owns."""
        return await self._rows(
            f"api/v2/applicationCategories/organization/{segment(organization_id)}",
            ApplicationCategory,
            kind="categories",
        )

    async def categories_in_use(self) -> list[ApplicationCategory]:
        """The application categories applications carry, whichever organization owns them:
        one request for the names behind every ``applicationTags[].tagId``."""
        return await self._rows(
            "api/v2/applicationCategories/application", ApplicationCategory, kind="categories"
        )

    # --- reports -------------------------------------------------------------------------------

    async def latest_reports(
        self, *, limit: int = LISTING_ANSWER, quiet: bool = False
    ) -> list[LatestReport]:
        """The latest report of every application at every stage: one request for all. An
        answer over ``limit`` bytes is not read (ServerError); ``quiet``: rows skipped are
        debug events, not warnings (for a listing read again and again)."""
        return await self._rows(
            "api/v2/reports/applications", LatestReport, kind="reports", limit=limit, quiet=quiet
        )

    async def report_history(
        self, application_id: str, *, stage: Stage | None = None, limit: int | None = None
    ) -> list[ReportInfo]:
        """An application's reports, newest first (the server keeps at most 100)."""
        params = [("stage", stage.value)] if stage is not None else []
        if limit is not None:
            params.append(("limit", str(limit)))
        answer = await self._send(
            "GET",
            f"api/v2/reports/applications/{segment(application_id)}/history",
            kind="report-history",
            what="read the report history",
            params=params or None,
            limit=DOCUMENT_ANSWER,
        )
        document = _json(answer, "report history")
        if not isinstance(document, dict):
            raise ServerError("unexpected answer from the report history: not a JSON object")
        rows = document.get("reports", document.get("policyEvaluations"))
        return _valid_rows(rows, ReportInfo, "report-history")

    async def policy_report(self, report_data_url: str) -> PolicyReport:
        """Every component and violation of the report whose data URL the server gave, from
        its policy data (the raw data has no violations), page by page where paged."""
        url = policy_data_url(report_data_url)
        components: list[PolicyComponent] = []
        page = 1
        while True:
            answer = await self._send(
                "GET",
                url,
                kind="report-policy",
                what="read a report's policy data",
                params=[("page", str(page)), ("pageSize", str(POLICY_PAGE_SIZE))],
                limit=DOCUMENT_ANSWER,
            )
            document = _parse(PolicyReport, answer.body, "report policy data")
            components += document.components
            if document.page_count is None or page >= document.page_count:
                return document.model_copy(update={"components": components, "page": None})
            if not document.components or page >= MAX_POLICY_PAGES:
                raise ServerError(
                    f"the policy data of {url} has {document.page_count} pages and page {page} "
                    "brought no components: a server that never ends; not counted"
                )
            page += 1

    # --- scan retention ----------------------------------------------------------------------

    async def scan_retention(self) -> str | None:
        """The ``purgeScanFiles`` property: None when unset (IQ's default)."""
        answer = await self._send(
            "GET",
            "api/v2/config",
            kind="config",
            what="read purgeScanFiles (needs the System Administrator role)",
            params=[("property", RETENTION)],
            limit=SMALL_ANSWER,
        )
        return _parse(ScanRetentionConfig, answer.body, "config").purge_scan_files

    async def set_scan_retention(self) -> None:
        """Keep scan files as long as their reports, so any kept scan can be promoted."""
        await self._send(
            "PUT",
            "api/v2/config",
            kind="config",
            json_body={RETENTION: PurgeScanFiles.WITH_REPORTS.value},
            what="set purgeScanFiles (needs the System Administrator role)",
            limit=SMALL_ANSWER,
        )

    async def reset_scan_retention(self) -> None:
        """Unset ``purgeScanFiles``: IQ's default again."""
        await self._send(
            "DELETE",
            "api/v2/config",
            kind="config",
            params=[("property", RETENTION)],
            what="unset purgeScanFiles (needs the System Administrator role)",
            limit=SMALL_ANSWER,
        )

    # --- promotion -----------------------------------------------------------------------------

    async def promote_scan(self, application_id: str, request: PromoteScanRequest) -> Submission:
        """POST promoteScan. Repeating it is safe (it only makes another report), so the status
        table lets it be retried on 429, 5xx and dropped connections."""
        answer = await self._send(
            "POST",
            f"api/v2/evaluation/applications/{segment(application_id)}/promoteScan",
            kind="promote",
            json_body=request.to_wire(),
            what=f"promote a scan of application {application_id}",
            limit=SMALL_ANSWER,
        )
        response = _parse(PromoteScanResponse, answer.body, "promoteScan")
        return Submission(status_url=self.absolute(response.status_url), attempts=answer.attempts)

    async def promotion_status(self, status_url: str) -> PromotionStatus:
        answer = await self._send(
            "GET", status_url, kind="status", what="read a promotion's status", limit=SMALL_ANSWER
        )
        return _parse(PromotionStatus, answer.body, "status")

    # --- firewall: listings and repository results ----------------------------------------
    # Used by orchestrator.firewall; paths follow the Firewall and Repository Results REST APIs.

    async def repository_container(self) -> RepositoryContainer:
        answer = await self._send(
            "GET",
            "api/v2/firewall/repositoryContainer",
            kind="firewall",
            what="read the repository container",
            limit=SMALL_ANSWER,
        )
        return _parse(RepositoryContainer, answer.body, "repository container")

    async def repository_managers(self) -> list[RepositoryManager]:
        return await self._rows(
            "api/v2/firewall/repositoryManagers",
            RepositoryManager,
            key="repositoryManagers",
            kind="firewall",
        )

    async def repositories(self, repository_manager_id: str) -> list[Repository]:
        return await self._rows(
            f"api/v2/firewall/repositories/configuration/{segment(repository_manager_id)}",
            Repository,
            key="repositories",
            kind="firewall",
        )

    async def repository_results(
        self, owner_type: OwnerType, owner_id: str, query: RepositoryResultsQuery
    ) -> RepositoryResultsPage:
        """One page from the Repository Results endpoint of release 175 and later."""
        answer = await self._send(
            "POST",
            f"api/experimental/repositories/{owner_type.value}/{segment(owner_id)}/results/details",
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
            f"api/experimental/repositories/{segment(repository_id)}/results/details",
            kind="repository-results",
            json_body=body,
            what=f"read the repository results of repository {repository_id}",
        )
        return _valid_rows(_json(answer, "repository results"), RepositoryResult, "results")

    # --- plumbing ------------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        what: str,
        params: Sequence[tuple[str, str]] | None = None,
        json_body: Any = None,
        limit: int = DOCUMENT_ANSWER,
    ) -> Any:
        return await self._transport.send(
            Request(method, url, kind, what, params=params, json_body=json_body, limit=limit)
        )

    async def _rows(
        self,
        url: str,
        model: type[ModelT],
        *,
        key: str | None = None,
        kind: str | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        limit: int = LISTING_ANSWER,
        quiet: bool = False,
    ) -> list[ModelT]:
        """A listing: ``{key: [rows]}`` (or a bare list), each row validated alone."""
        name = kind or key or url
        answer = await self._send(
            "GET", url, kind=name, what=f"list {name}", params=params, limit=limit
        )
        document = _json(answer, name)
        rows = document.get(key) if key is not None and isinstance(document, dict) else document
        return _valid_rows(rows, model, name, quiet=quiet)


def _json(answer: Any, what: str) -> Any:
    try:
        return json.loads(answer.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServerError(f"unexpected answer from {what}: not JSON ({exc})") from None
    except RecursionError:
        # Valid JSON nested deeper than the parser recurses: not a listing, and not a crash.
        raise ServerError(
            f"unexpected answer from {what}: not JSON a listing has (nested too deeply)"
        ) from None


def _valid_rows(
    rows: object, model: type[ModelT], kind: str, *, quiet: bool = False
) -> list[ModelT]:
    """The rows this version can use; each other one is skipped with a warning (``quiet``:
    a debug event)."""
    if not isinstance(rows, list):
        raise ServerError(f"unexpected answer from {kind}: no list of rows")
    say = log.debug if quiet else log.warning
    valid: list[ModelT] = []
    for index, row in enumerate(rows):
        try:
            valid.append(model.model_validate(row))
        except ValidationError as exc:
            say("listing.row_skipped", listing=kind, row=index, problem=_short(exc))
    return valid


def _parse(model: type[ModelT], body: bytes, kind: str) -> ModelT:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ServerError(f"unexpected answer from {kind}: {_short(exc)}") from exc


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
