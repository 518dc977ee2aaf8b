"""The simulator as Sonatype's own generated client (sonatype-iq-api-client) sees it.

The client is synchronous, so the simulator serves from its own event loop in a thread. Where
the generated models would drop fields (status links, the configuration answer), the raw JSON
is checked too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from sonatype_iq_api_client import (
    ApiClient,
    ApiPromoteScanRequestDTOV2,
    ApplicationsApi,
    Configuration,
    FirewallApi,
    OrganizationsApi,
    PolicyEvaluationApi,
    ReportsApi,
)
from sonatype_iq_api_client.exceptions import (
    ApiException,
    BadRequestException,
    NotFoundException,
    UnauthorizedException,
)

from orchestrator.iq.models import ReportData
from orchestrator.simulator import Simulator, SimulatorConfig

DEADLINE = 20.0


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    config = SimulatorConfig(apps=12, workers=4, eval_time=0.02, context_path="/iq")
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(Simulator(config, port=0)) as sim,
    ):
        yield sim


def client(sim: Simulator, password: str = "admin123") -> ApiClient:  # noqa: S107
    settings = Configuration(host=sim.base_url.rstrip("/"), username="admin", password=password)
    return ApiClient(settings)


def raw_json(response: Any) -> Any:
    return json.loads(response.data)


def wait_for_status(api: PolicyEvaluationApi, app_id: str, status_id: str) -> dict[str, Any]:
    """Poll the status (raw JSON) until it leaves PENDING, within the deadline."""
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up:
        answer: dict[str, Any] = raw_json(
            api.get_application_evaluation_status_without_preload_content(app_id, status_id)
        )
        if answer["status"] != "PENDING":
            return answer
        time.sleep(0.02)
    raise AssertionError("the promotion stayed PENDING")


def test_applications_resolve_by_public_id(served: Simulator) -> None:
    with client(served) as api_client:
        apps = ApplicationsApi(api_client)
        every = apps.get_applications().applications or []
        assert len(every) == len(served.portfolio.applications)
        wanted = [a.public_id for a in served.portfolio.applications[:3]]
        found = apps.get_applications(public_id=wanted).applications or []
        assert sorted(str(a.public_id) for a in found) == sorted(wanted)
        organization = str(found[0].organization_id)
        of_org = apps.get_applications_by_organization_id(organization).applications or []
        assert found[0].id in {a.id for a in of_org}
        organizations = OrganizationsApi(api_client).get_organizations().organizations or []
        names = {o.name for o in organizations}
        assert "Root Organization" in names


@pytest.mark.parametrize("by_scan_id", [False, True])
def test_promote_scan_completes_with_relative_links(served: Simulator, by_scan_id: bool) -> None:
    with client(served) as api_client:
        app = served.portfolio.applications[1]
        reports = ReportsApi(api_client)
        latest = reports.get_by_application_id(app.id)
        assert {r.stage for r in latest} >= {"build"}
        history = reports.get_report_history_for_application(app.id, stage="build")
        scan_id = (history.reports or [])[0].scan_id
        request = (
            ApiPromoteScanRequestDTOV2(scan_id=scan_id, target_stage_id="release")
            if by_scan_id
            else ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="release")
        )
        evaluation = PolicyEvaluationApi(api_client)
        status_url = str(evaluation.promote_scan(app.id, request).status_url)
        assert status_url.startswith(f"api/v2/evaluation/applications/{app.id}/status/")
        status_id = status_url.rsplit("/", 1)[-1]
        answer = wait_for_status(evaluation, app.id, status_id)
        assert answer["status"] == "COMPLETED"
        parsed = evaluation.get_application_evaluation_status(app.id, status_id)
        assert parsed.status == "COMPLETED"
        assert parsed.report_data_url == answer["reportDataUrl"]
        for key in ("reportHtmlUrl", "embeddableReportHtmlUrl", "reportPdfUrl", "reportDataUrl"):
            assert not answer[key].startswith("/")
            assert not answer[key].startswith("http")
        data = api_client.call_api(
            "GET", served.base_url + answer["reportDataUrl"], header_params=auth_header(api_client)
        )
        data.read()
        assert data.status == 200
        assert ReportData.model_validate(json.loads(data.data)).components
        after = reports.get_report_history_for_application(app.id, stage="release", limit=1)
        assert answer["reportDataUrl"].endswith(str((after.reports or [])[0].scan_id))


def auth_header(api_client: ApiClient) -> dict[str, str]:
    settings = api_client.configuration
    return {"Authorization": settings.get_basic_auth_token()}


def test_scan_retention_configuration(served: Simulator) -> None:
    # The generated ConfigurationApi only knows baseUrl/forceBaseUrl, so speak raw HTTP.
    url = served.base_url + "api/v2/config"
    with client(served) as api_client:
        headers = {**auth_header(api_client), "Content-Type": "application/json"}

        def send(method: str, target: str, body: Any = None) -> Any:
            response = api_client.call_api(method, target, header_params=headers, body=body)
            response.read()
            return response

        read = send("GET", url + "?property=purgeScanFiles")
        assert read.status == 200
        assert json.loads(read.data) == {"purgeScanFiles": "default"}
        assert send("PUT", url, {"purgeScanFiles": "withReports"}).status == 204
        assert json.loads(send("GET", url + "?property=purgeScanFiles").data) == {
            "purgeScanFiles": "withReports"
        }
        assert send("PUT", url, {"purgeScanFiles": "default"}).status == 204


def test_firewall_listings(served: Simulator) -> None:
    with client(served) as api_client:
        firewall = FirewallApi(api_client)
        assert firewall.get_repository_container().id
        managers = firewall.get_repository_managers().repository_managers or []
        assert managers
        repositories = firewall.get_configured_repositories(str(managers[0].id)).repositories
        assert repositories
        assert repositories[0].repository_id


def test_refusals(served: Simulator) -> None:
    app = served.portfolio.applications[0]
    with client(served, password="wrong") as api_client:
        with pytest.raises(UnauthorizedException) as refused:
            ApplicationsApi(api_client).get_applications()
        assert refused.value.headers is not None
        assert refused.value.headers["WWW-Authenticate"] == 'BASIC realm="Sonatype IQ Server"'
    with client(served) as api_client:
        evaluation = PolicyEvaluationApi(api_client)
        request = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="release")
        with pytest.raises(NotFoundException):
            evaluation.promote_scan("no-such-application", request)
        with pytest.raises(NotFoundException):
            evaluation.get_application_evaluation_status(app.id, "no-such-status")
        both = ApiPromoteScanRequestDTOV2(
            scan_id="abc", source_stage_id="build", target_stage_id="release"
        )
        with pytest.raises(BadRequestException):
            evaluation.promote_scan(app.id, both)
        with pytest.raises(BadRequestException):
            evaluation.promote_scan(app.id, ApiPromoteScanRequestDTOV2(target_stage_id="release"))
        bad_stage = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="prod")
        with pytest.raises(BadRequestException) as bad:
            evaluation.promote_scan(app.id, bad_stage)
        assert "prod" in (bad.value.body or "")
        with pytest.raises(ApiException) as missing:
            ReportsApi(api_client).get_by_application_id("no-such-application")
        assert missing.value.status == 404
