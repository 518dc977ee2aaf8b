"""Handlers of the IQ Server REST API the simulator serves: applications, organizations,
application categories, reports and report data, configuration and promote scan.

Errors are plain text with IQ's status codes; URLs in answers are relative, as IQ gives them.
docs/simulator.md says, for each behaviour, what evidence it follows.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from orchestrator.iq.models import (
    Application,
    ApplicationList,
    OrganizationList,
    PromoteScanResponse,
    PurgeScanFiles,
    Stage,
)
from orchestrator.iq.report_models import PolicyReport, ReportHistory
from orchestrator.simulator.faults import plain
from orchestrator.simulator.portfolio import Report
from orchestrator.simulator.reportdata import policy_report, raw_report
from orchestrator.simulator.state import ServerState, state_of

HISTORY_LIMIT = 100
MAX_POLICY_PAGE_SIZE = 500
STAGE_NAMES = ", ".join(s.value for s in Stage)
RETENTION = "purgeScanFiles"


class Refusal(Exception):  # noqa: N818 - it is an answer, not a failure of the simulator
    """An error answer a handler gives: status and plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        return plain(self.status, self.message)


def wire(model: BaseModel, **exclude: bool) -> dict[str, Any]:
    """A model as JSON with camelCase names, nulls kept as IQ sends them."""
    return model.model_dump(
        mode="json", by_alias=True, exclude={k for k, v in exclude.items() if v}
    )


def _application(request: web.Request) -> Application:
    application_id = request.match_info["applicationId"]
    found = state_of(request).portfolio.application(application_id)
    if found is None:
        raise Refusal(404, f"Application not found: {application_id}")
    return found


def _evaluable(state: ServerState, app: Application) -> None:
    """403 for an application the user may see but not evaluate."""
    if app.public_id in state.config.no_evaluate:
        raise Refusal(
            403, f"The user does not have permission to evaluate application {app.public_id}"
        )


def _stage(value: object, field: str) -> Stage:
    try:
        return Stage(str(value))
    except ValueError:
        raise Refusal(400, f"Invalid {field} '{value}': use one of {STAGE_NAMES}") from None


def _legacy(state: ServerState) -> bool:
    return state.config.report_links == "legacy"


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Refusal(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "The request body must be a JSON object")
    return body


# --- applications, organizations and categories -----------------------------------------


async def applications(request: web.Request) -> web.Response:
    """Every application, or those whose public ids are asked; their categories only with
    ``includeCategories=true``."""
    wanted = set(request.query.getall("publicId", []))
    tags = request.query.get("includeCategories", "false").lower() == "true"
    apps = state_of(request).portfolio.applications
    if wanted:
        apps = [a for a in apps if a.public_id in wanted]
    answer = wire(ApplicationList(applications=apps))
    if not tags:
        for app in answer["applications"]:
            app.pop("applicationTags", None)
    return web.json_response(answer)


async def applications_of_organization(request: web.Request) -> web.Response:
    """The applications placed directly in the organization (not in its sub-organizations)."""
    portfolio = state_of(request).portfolio
    organization_id = request.match_info["organizationId"]
    if portfolio.organization(organization_id) is None:
        raise Refusal(404, f"Organization not found: {organization_id}")
    apps = [a for a in portfolio.applications if a.organization_id == organization_id]
    answer = wire(ApplicationList(applications=apps))
    for app in answer["applications"]:
        app.pop("applicationTags", None)
    return web.json_response(answer)


async def organizations(request: web.Request) -> web.Response:
    names = request.query.getall("organizationName", [])
    found = state_of(request).portfolio.organizations
    if names:
        found = [o for o in found if o.name in names]
    return web.json_response(wire(OrganizationList(organizations=found)))


async def categories_of_organization(request: web.Request) -> web.Response:
    """The application categories an organization owns (here, the root owns them all)."""
    portfolio = state_of(request).portfolio
    organization_id = request.match_info["organizationId"]
    if portfolio.organization(organization_id) is None:
        raise Refusal(404, f"Organization not found: {organization_id}")
    owned = [c for c in portfolio.categories if c.organization_id == organization_id]
    return web.json_response([wire(c) for c in owned])


async def categories_in_use(request: web.Request) -> web.Response:
    """The application categories at least one application carries, whoever owns them."""
    portfolio = state_of(request).portfolio
    carried = {t.tag_id for a in portfolio.applications for t in a.application_tags or []}
    return web.json_response([wire(c) for c in portfolio.categories if c.id in carried])


# --- reports -------------------------------------------------------------------------------


async def all_latest_reports(request: web.Request) -> web.Response:
    """The latest report of every application at every stage it was evaluated at."""
    state = state_of(request)
    portfolio, legacy = state.portfolio, _legacy(state)
    rows = []
    for app in portfolio.applications:
        for stage in Stage:
            latest = portfolio.latest(app.id, stage)
            if latest is not None:
                rows.append(wire(latest.latest(app.public_id, legacy=legacy)))
    return web.json_response(rows)


async def latest_reports(request: web.Request) -> web.Response:
    """The latest report of each stage the application has been evaluated at."""
    app = _application(request)
    state = state_of(request)
    latest = [state.portfolio.latest(app.id, stage) for stage in Stage]
    return web.json_response(
        [wire(r.latest(app.public_id, legacy=_legacy(state))) for r in latest if r is not None]
    )


async def report_history(request: web.Request) -> web.Response:
    app = _application(request)
    state = state_of(request)
    stage_name = request.query.get("stage")
    stage = _stage(stage_name, "stage") if stage_name is not None else None
    try:
        limit = int(request.query.get("limit", HISTORY_LIMIT))
    except ValueError:
        raise Refusal(400, "limit must be a whole number") from None
    if limit < 1:
        raise Refusal(400, "limit must be at least 1")
    reports = state.portfolio.history(app.id, stage)[: min(limit, HISTORY_LIMIT)]
    history = ReportHistory(
        application_id=app.id,
        reports=[r.info(app.public_id, legacy=_legacy(state)) for r in reports],
    )
    return web.json_response(wire(history))


def _report_of(request: web.Request) -> tuple[ServerState, Application, Report]:
    """The report a report-data path names, by public id (current releases' links) or by
    internal id (older releases' links)."""
    state = state_of(request)
    given = request.match_info["applicationPublicId"]
    app = state.portfolio.resolve(given)
    if app is None:
        raise Refusal(404, f"Application not found: {given}")
    scan_id = request.match_info["scanId"]
    found = state.portfolio.report(app.id, scan_id)
    if found is None:
        raise Refusal(404, f"Report not found: {scan_id}")
    return state, app, found


async def raw_report_data(request: web.Request) -> web.Response:
    """Components, security and license data; no violations, as on a real server."""
    state, app, report = _report_of(request)
    return web.json_response(wire(raw_report(state.config.seed, app, report)))


async def bare_report_data(request: web.Request) -> web.Response:
    """The path without ``/raw`` is the older name of the raw data: it redirects there."""
    _report_of(request)
    raise web.HTTPTemporaryRedirect(location=f"{request.path.rstrip('/')}/raw")


async def policy_report_data(request: web.Request) -> web.Response:
    """Each component's policy violations; paged when asked with ``page`` and ``pageSize``
    (both, pageSize up to 500), unless the simulated release predates paging."""
    state, app, report = _report_of(request)
    document = policy_report(state.config.seed, app, report)
    page_text, size_text = request.query.get("page"), request.query.get("pageSize")
    if not state.config.policy_paging or (page_text is None and size_text is None):
        return web.json_response(
            wire(document, page=True, page_size=True, page_count=True, total=True)
        )
    return web.json_response(wire(_paged(document, page_text, size_text)))


def _paged(document: PolicyReport, page_text: str | None, size_text: str | None) -> PolicyReport:
    if page_text is None or size_text is None:
        raise Refusal(400, "page and pageSize must be provided together")
    try:
        page, size = int(page_text), int(size_text)
    except ValueError:
        raise Refusal(400, "page and pageSize must be whole numbers") from None
    if page < 1 or not 1 <= size <= MAX_POLICY_PAGE_SIZE:
        raise Refusal(400, f"page must be at least 1 and pageSize 1 to {MAX_POLICY_PAGE_SIZE}")
    every = document.components
    pages = max(1, -(-len(every) // size))
    return document.model_copy(
        update={
            "components": every[(page - 1) * size : page * size],
            "page": page,
            "page_size": size,
            "page_count": pages,
            "total": len(every),
        }
    )


# --- configuration -------------------------------------------------------------------------


def _administrator(state: ServerState) -> None:
    if not state.config.admin:
        raise Refusal(
            403, "The user does not have the Edit System Configuration and Users permission"
        )


def _properties(request: web.Request) -> list[str]:
    properties = request.query.getall("property", [])
    if not properties:
        raise Refusal(400, "The query parameter 'property' is required")
    unknown = [p for p in properties if p != RETENTION]
    if unknown:
        raise Refusal(400, f"Unknown configuration property: {unknown[0]}")
    return properties


async def get_config(request: web.Request) -> web.Response:
    """A set property is answered; an unset one (IQ's default) is left out."""
    state = state_of(request)
    _administrator(state)
    _properties(request)
    retention = state.portfolio.retention
    return web.json_response({RETENTION: retention.value} if retention is not None else {})


async def put_config(request: web.Request) -> web.Response:
    state = state_of(request)
    _administrator(state)
    body = await json_object(request)
    unknown = [key for key in body if key != RETENTION]
    if unknown or not body:
        raise Refusal(400, f"Unknown configuration property: {(unknown or ['(none)'])[0]}")
    try:
        value = PurgeScanFiles(body[RETENTION])
    except ValueError:
        raise Refusal(
            400, f"Invalid value for {RETENTION}: {body[RETENTION]!r}; the value is withReports"
        ) from None
    state.portfolio.retention = value
    return web.Response(status=204)


async def delete_config(request: web.Request) -> web.Response:
    """Unset the property: IQ's default (only the latest scan file of a stage kept) again."""
    state = state_of(request)
    _administrator(state)
    _properties(request)
    state.portfolio.retention = None
    return web.Response(status=204)


# --- promote scan --------------------------------------------------------------------------

PURGED_HINT = f"Set configuration {RETENTION} to withReports to retain older scan files"


async def promote_scan(request: web.Request) -> web.Response:
    """Queue an evaluation of a scan (by scanId, or the latest of a source stage). A scan
    that cannot be promoted is refused at submission (400), never a later FAILED."""
    app = _application(request)
    state = state_of(request)
    _evaluable(state, app)
    body = await json_object(request)
    scan_id, source_stage = body.get("scanId"), body.get("sourceStageId")
    if "targetStageId" not in body or body["targetStageId"] in (None, ""):
        raise Refusal(400, "targetStageId is required")
    target = _stage(body["targetStageId"], "targetStageId")
    if (scan_id is None) == (source_stage is None):
        raise Refusal(400, "Give either scanId or sourceStageId, not both and not neither")
    if scan_id is not None:
        source = state.portfolio.report(app.id, str(scan_id))
        if source is None or not source.scan_file_kept:
            raise Refusal(
                400,
                f"A scan with ID {scan_id} does not exist on the server and may be obsolete. "
                f"{PURGED_HINT}.",
            )
    else:
        stage = _stage(source_stage, "sourceStageId")
        found = state.portfolio.latest(app.id, stage)
        if found is None:
            raise Refusal(400, f"No scan available to promote from stage {stage}.")
        source = found
    promotion = state.engine.submit(app, source, target)
    answer = PromoteScanResponse(status_url=promotion.status_url)
    return web.json_response(answer.to_wire())


async def promotion_status(request: web.Request) -> web.Response:
    app = _application(request)
    state = state_of(request)
    _evaluable(state, app)
    status_id = request.match_info["statusId"]
    promotion = state.engine.promotion(app.id, status_id)
    if promotion is None:
        raise Refusal(404, f"Status not found: {status_id}")
    return web.json_response(promotion.status().to_wire())
