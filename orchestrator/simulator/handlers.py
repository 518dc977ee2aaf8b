"""Handlers of the IQ Server REST API the simulator serves: applications, organizations,
reports, configuration and promote scan.

Errors are plain text with IQ's status codes; URLs in answers are relative, as IQ gives them.
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
    ReportHistory,
    Stage,
)
from orchestrator.simulator.faults import plain
from orchestrator.simulator.reportdata import report_data
from orchestrator.simulator.state import state_of

HISTORY_LIMIT = 100
STAGE_NAMES = ", ".join(s.value for s in Stage)


class Refusal(Exception):  # noqa: N818 - it is an answer, not a failure of the simulator
    """An error answer a handler gives: status and plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        return plain(self.status, self.message)


def wire(model: BaseModel) -> dict[str, Any]:
    """A model as JSON with camelCase names, nulls kept as IQ sends them."""
    return model.model_dump(mode="json", by_alias=True)


def _application(request: web.Request) -> Application:
    application_id = request.match_info["applicationId"]
    found = state_of(request).portfolio.application(application_id)
    if found is None:
        raise Refusal(404, f"Application not found: {application_id}")
    return found


def _stage(value: object, field: str) -> Stage:
    try:
        return Stage(str(value))
    except ValueError:
        raise Refusal(400, f"Invalid {field} '{value}': use one of {STAGE_NAMES}") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Refusal(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "The request body must be a JSON object")
    return body


# --- applications and organizations --------------------------------------------------------


async def applications(request: web.Request) -> web.Response:
    wanted = set(request.query.getall("publicId", []))
    apps = state_of(request).portfolio.applications
    if wanted:
        apps = [a for a in apps if a.public_id in wanted]
    return web.json_response(wire(ApplicationList(applications=apps)))


async def applications_of_organization(request: web.Request) -> web.Response:
    portfolio = state_of(request).portfolio
    organization_id = request.match_info["organizationId"]
    if portfolio.organization(organization_id) is None:
        raise Refusal(404, f"Organization not found: {organization_id}")
    apps = [a for a in portfolio.applications if a.organization_id == organization_id]
    return web.json_response(wire(ApplicationList(applications=apps)))


async def organizations(request: web.Request) -> web.Response:
    names = request.query.getall("organizationName", [])
    found = state_of(request).portfolio.organizations
    if names:
        found = [o for o in found if o.name in names]
    return web.json_response(wire(OrganizationList(organizations=found)))


# --- reports -------------------------------------------------------------------------------


async def latest_reports(request: web.Request) -> web.Response:
    """The latest report of each stage the application has been evaluated at."""
    app = _application(request)
    portfolio = state_of(request).portfolio
    latest = [portfolio.latest(app.id, stage) for stage in Stage]
    return web.json_response([wire(r.info(app.public_id)) for r in latest if r is not None])


async def report_history(request: web.Request) -> web.Response:
    app = _application(request)
    stage_name = request.query.get("stage")
    stage = _stage(stage_name, "stage") if stage_name is not None else None
    try:
        limit = int(request.query.get("limit", HISTORY_LIMIT))
    except ValueError:
        raise Refusal(400, "limit must be a whole number") from None
    if limit < 1:
        raise Refusal(400, "limit must be at least 1")
    reports = state_of(request).portfolio.history(app.id, stage)[: min(limit, HISTORY_LIMIT)]
    history = ReportHistory(application_id=app.id, reports=[r.info(app.public_id) for r in reports])
    return web.json_response(wire(history))


async def report(request: web.Request) -> web.Response:
    app = _application(request)
    state = state_of(request)
    report_id = request.match_info["reportId"]
    found = state.portfolio.report(app.id, report_id)
    if found is None:
        raise Refusal(404, f"Report not found: {report_id}")
    return web.json_response(wire(report_data(state.config.seed, app, found)))


# --- configuration -------------------------------------------------------------------------


async def get_config(request: web.Request) -> web.Response:
    properties = request.query.getall("property", [])
    if not properties:
        raise Refusal(400, "The query parameter 'property' is required")
    unknown = [p for p in properties if p != "purgeScanFiles"]
    if unknown:
        raise Refusal(400, f"Unknown configuration property: {unknown[0]}")
    return web.json_response({"purgeScanFiles": state_of(request).portfolio.retention.value})


async def put_config(request: web.Request) -> web.Response:
    body = await json_object(request)
    unknown = [key for key in body if key != "purgeScanFiles"]
    if unknown or not body:
        raise Refusal(400, f"Unknown configuration property: {(unknown or ['(none)'])[0]}")
    try:
        value = PurgeScanFiles(body["purgeScanFiles"])
    except ValueError:
        choices = ", ".join(v.value for v in PurgeScanFiles)
        raise Refusal(400, f"purgeScanFiles must be one of {choices}") from None
    state_of(request).portfolio.retention = value
    return web.Response(status=204)


# --- promote scan --------------------------------------------------------------------------


async def promote_scan(request: web.Request) -> web.Response:
    """Queue an evaluation of a scan (by scanId, or the latest of a source stage)."""
    app = _application(request)
    body = await json_object(request)
    scan_id, source_stage = body.get("scanId"), body.get("sourceStageId")
    if "targetStageId" not in body or body["targetStageId"] in (None, ""):
        raise Refusal(400, "targetStageId is required")
    target = _stage(body["targetStageId"], "targetStageId")
    if (scan_id is None) == (source_stage is None):
        raise Refusal(400, "Give either scanId or sourceStageId, not both and not neither")
    state = state_of(request)
    failure: str | None = None
    if scan_id is not None:
        source = state.portfolio.report(app.id, str(scan_id))
        if source is None:
            raise Refusal(404, f"No scan with id {scan_id} found for application {app.public_id}")
        if not source.scan_file_kept:
            raise Refusal(
                404,
                f"The scan file of scan {scan_id} was purged and cannot be promoted; "
                "set purgeScanFiles to withReports to keep older scan files",
            )
    else:
        stage = _stage(source_stage, "sourceStageId")
        source = state.portfolio.latest(app.id, stage)
        if source is None:
            failure = f"No scan found for application {app.public_id} at stage {stage}"
    promotion = state.engine.submit(app, source, target, failure)
    answer = PromoteScanResponse(status_url=promotion.status_url)
    return web.json_response(answer.to_wire())


async def promotion_status(request: web.Request) -> web.Response:
    app = _application(request)
    status_id = request.match_info["statusId"]
    promotion = state_of(request).engine.promotion(app.id, status_id)
    if promotion is None:
        raise Refusal(404, f"Status not found: {status_id}")
    return web.json_response(promotion.status().to_wire())
