"""The simulator as Sonatype's own generated client (``sonatype-iq-api-client``) sees it.

Every endpoint iq-promote uses is driven here with the vendor's client and parsed by the
vendor's models, never by ours: where the simulator and our client might share a wrong guess,
the vendor's schema decides. The client is synchronous, so the simulator serves from its own
event loop in a thread. Raw HTTP is used only for ``purgeScanFiles``, which the generated
ConfigurationApi cannot carry (its enum knows baseUrl and forceBaseUrl only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from sonatype_iq_api_client import (
    ApiClient,
    ApiPromoteScanRequestDTOV2,
    ApplicationCategoriesApi,
    ApplicationReportDataApi,
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
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)

from orchestrator.iq.models import ROOT_ORGANIZATION_ID
from orchestrator.simulator import Simulator, SimulatorConfig

DEADLINE = 20.0
CONFIG: dict[str, Any] = {
    "apps": 12,
    "organizations": 5,
    "workers": 4,
    "eval_time": 0.02,
    "context_path": "/iq",
}


@contextmanager
def serving(**overrides: Any) -> Iterator[Simulator]:
    config = SimulatorConfig(**{**CONFIG, **overrides})
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(Simulator(config, port=0)) as sim,
    ):
        yield sim


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    with serving() as sim:
        yield sim


def client(sim: Simulator, password: str = "admin123", **extra: str) -> ApiClient:  # noqa: S107
    settings = Configuration(host=sim.base_url.rstrip("/"), username="admin", password=password)
    return ApiClient(settings, **extra)


def raw_json(response: Any) -> Any:
    return json.loads(response.data)


def scanned(sim: Simulator, stage: str = "build") -> Any:
    """An application with a report at ``stage``, and that report."""
    for app in sim.portfolio.applications:
        for report in sim.portfolio.history(app.id):
            if report.stage.value == stage:
                return app, report
    raise AssertionError(f"no application has a {stage} report")


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


# --- applications, organizations, categories -------------------------------------------------


def test_applications_resolve_by_public_id_with_and_without_categories(served: Simulator) -> None:
    with client(served) as api_client:
        apps = ApplicationsApi(api_client)
        every = apps.get_applications().applications or []
        assert len(every) == len(served.portfolio.applications)
        assert all(not a.application_tags for a in every), "categories only when asked"
        wanted = [a.public_id for a in served.portfolio.applications[:3]]
        found = apps.get_applications(public_id=wanted).applications or []
        assert sorted(str(a.public_id) for a in found) == sorted(wanted)
        tagged = apps.get_applications(include_categories=True).applications or []
        categories = ApplicationCategoriesApi(api_client).get_tags(ROOT_ORGANIZATION_ID)
        category_ids = {c.id for c in categories}
        assert {c.name for c in categories} >= {"Tier-1", "PCI"}
        tags = [t for a in tagged for t in a.application_tags or []]
        assert tags
        assert {t.tag_id for t in tags} <= category_ids
        assert all(t.application_id for t in tags)
        in_use = ApplicationCategoriesApi(api_client).get_tags_used_by_applications()
        assert {c.id for c in in_use} == {t.tag_id for t in tags}
        assert all(c.name and c.organization_id for c in in_use)


def test_organizations_form_a_tree_and_list_their_direct_applications(served: Simulator) -> None:
    with client(served) as api_client:
        organizations = OrganizationsApi(api_client).get_organizations().organizations or []
        by_id = {str(o.id): o for o in organizations}
        assert by_id[ROOT_ORGANIZATION_ID].name == "Root Organization"

        def depth(org_id: str) -> int:
            parent = by_id[org_id].parent_organization_id
            return 0 if parent is None else 1 + depth(str(parent))

        depths = {org_id: depth(org_id) for org_id in by_id}
        assert max(depths.values()) >= 2, "some organizations sit below the first level"
        apps = ApplicationsApi(api_client)
        counted = 0
        for org_id in by_id:
            direct = apps.get_applications_by_organization_id(org_id).applications or []
            assert all(a.organization_id == org_id for a in direct)
            counted += len(direct)
        assert counted == len(served.portfolio.applications)


# --- reports -------------------------------------------------------------------------------


def test_latest_reports_of_every_application_in_one_listing(served: Simulator) -> None:
    with client(served) as api_client:
        rows = ReportsApi(api_client).get_all1()
        expected = {
            (a.id, stage.value)
            for a in served.portfolio.applications
            for stage in served.portfolio.reports.get(a.id, {})
            if served.portfolio.latest(a.id, stage) is not None
        }
        assert {(r.application_id, r.stage) for r in rows} == expected
        assert all(r.evaluation_date is not None for r in rows)
        assert all(str(r.report_data_url).endswith("/raw") for r in rows)


def test_report_history_names_scan_ids(served: Simulator) -> None:
    app, report = scanned(served)
    with client(served) as api_client:
        reports = ReportsApi(api_client)
        latest = reports.get_by_application_id(app.id)
        assert {r.stage for r in latest} >= {"build"}
        history = reports.get_report_history_for_application(app.id, stage="build")
        scan_ids = [r.scan_id for r in history.reports or []]
        assert report.scan_id in scan_ids
        assert all(r.stage == "build" for r in history.reports or [])
        one = reports.get_report_history_for_application(app.id, limit=1)
        assert len(one.reports or []) == 1


def test_raw_data_has_no_violations_and_policy_data_has_them(served: Simulator) -> None:
    app, report = scanned(served)
    with client(served) as api_client:
        data = ApplicationReportDataApi(api_client)
        raw = data.get_raw_data1(app.public_id, report.scan_id)
        assert raw.components
        assert all("violations" not in c.to_dict() for c in raw.components)
        policy = data.get_policy_violations2(app.public_id, report.scan_id)
        violations = [v for c in policy.components or [] for v in c.violations or []]
        assert violations
        assert all(0 <= (v.policy_threat_level or 0) <= 10 for v in violations)
        assert isinstance(policy.report_time, int | float)
        first = data.get_policy_violations2(app.public_id, report.scan_id, page=1, page_size=2)
        assert first.page == 1
        assert first.page_size == 2
        assert first.total == len(policy.components or [])
        assert len(first.components or []) == min(2, first.total or 0)


def test_the_bare_data_path_leads_to_the_raw_data(served: Simulator) -> None:
    app, report = scanned(served)
    with client(served) as api_client:
        answer = ApplicationReportDataApi(api_client).get_data_without_preload_content(
            app.public_id, report.scan_id
        )
        body = answer.read()
        assert answer.status == 200  # the 307 to .../raw is followed
        assert json.loads(body)["components"]


# --- promote scan --------------------------------------------------------------------------


@pytest.mark.parametrize("by_scan_id", [False, True])
def test_promote_scan_completes_with_links_current_releases_give(
    served: Simulator, by_scan_id: bool
) -> None:
    app, report = scanned(served)
    with client(served) as api_client:
        request = (
            ApiPromoteScanRequestDTOV2(scan_id=report.scan_id, target_stage_id="release")
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
            assert not answer[key].startswith(("/", "http"))
        assert answer["reportHtmlUrl"].startswith(f"ui/links/application/{app.public_id}/report/")
        data_url = answer["reportDataUrl"]
        assert data_url.startswith(f"api/v2/applications/{app.public_id}/reports/")
        assert data_url.endswith("/raw")
        scan_id = data_url.split("/")[-2]
        after = ReportsApi(api_client).get_report_history_for_application(
            app.id, stage="release", limit=1
        )
        assert (after.reports or [])[0].scan_id == scan_id
        policy = ApplicationReportDataApi(api_client).get_policy_violations2(app.public_id, scan_id)
        assert policy.components


def test_legacy_links_name_the_internal_id_and_the_bare_data_path() -> None:
    with serving(report_links="legacy") as sim, client(sim) as api_client:
        app, _ = scanned(sim)
        evaluation = PolicyEvaluationApi(api_client)
        request = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="build")
        status_id = str(evaluation.promote_scan(app.id, request).status_url).rsplit("/", 1)[-1]
        answer = wait_for_status(evaluation, app.id, status_id)
        assert (
            answer["reportDataUrl"]
            == f"api/v2/applications/{app.id}/reports/"
            + (answer["reportDataUrl"].rsplit("/", 1)[-1])
        )
        scan_id = answer["reportDataUrl"].rsplit("/", 1)[-1]
        policy = ApplicationReportDataApi(api_client).get_policy_violations2(app.id, scan_id)
        assert policy.components, "the internal id the link named is served"


# --- configuration -------------------------------------------------------------------------


def test_scan_retention_is_unset_by_default_and_takes_only_with_reports() -> None:
    with serving() as sim, client(sim) as api_client:
        url = sim.base_url + "api/v2/config"
        settings = api_client.configuration
        headers = {
            "Authorization": settings.get_basic_auth_token(),
            "Content-Type": "application/json",
        }

        def send(method: str, target: str, body: Any = None) -> Any:
            response = api_client.call_api(method, target, header_params=headers, body=body)
            response.read()
            return response

        read = send("GET", url + "?property=purgeScanFiles")
        assert read.status == 200
        assert json.loads(read.data) == {}
        assert send("PUT", url, {"purgeScanFiles": "default"}).status == 400
        assert send("PUT", url, {"purgeScanFiles": "withReports"}).status == 204
        assert json.loads(send("GET", url + "?property=purgeScanFiles").data) == {
            "purgeScanFiles": "withReports"
        }
        assert send("DELETE", url + "?property=purgeScanFiles").status == 204
        assert json.loads(send("GET", url + "?property=purgeScanFiles").data) == {}


# --- firewall ------------------------------------------------------------------------------


def test_firewall_listings(served: Simulator) -> None:
    with client(served) as api_client:
        firewall = FirewallApi(api_client)
        assert firewall.get_repository_container().id
        managers = firewall.get_repository_managers().repository_managers or []
        assert managers
        repositories = firewall.get_configured_repositories(str(managers[0].id)).repositories
        assert repositories
        assert repositories[0].repository_id


# --- refusals ------------------------------------------------------------------------------


def test_refusals(served: Simulator) -> None:
    app = served.portfolio.applications[0]
    never = served.portfolio.applications[-1]
    assert not served.portfolio.history(never.id)
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
        with pytest.raises(BadRequestException) as no_scan:
            evaluation.promote_scan(never.id, request)
        assert no_scan.value.body == "No scan available to promote from stage build."
        unknown = ApiPromoteScanRequestDTOV2(scan_id="f" * 32, target_stage_id="release")
        with pytest.raises(BadRequestException) as purged:
            evaluation.promote_scan(app.id, unknown)
        assert "purgeScanFiles" in (purged.value.body or "")
        both = ApiPromoteScanRequestDTOV2(
            scan_id="abc", source_stage_id="build", target_stage_id="release"
        )
        with pytest.raises(BadRequestException):
            evaluation.promote_scan(app.id, both)
        bad_stage = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="prod")
        with pytest.raises(BadRequestException) as bad:
            evaluation.promote_scan(app.id, bad_stage)
        assert "prod" in (bad.value.body or "")
        with pytest.raises(ApiException) as missing:
            ReportsApi(api_client).get_by_application_id("no-such-application")
        assert missing.value.status == 404


def test_an_application_the_user_may_not_evaluate_is_403_and_the_rest_are_not() -> None:
    with serving(no_evaluate=("locked-app",), extra_applications=(("locked-app", None),)) as sim:
        locked = sim.portfolio.by_public_id("locked-app")
        other, _ = scanned(sim)
        assert locked is not None
        with client(sim) as api_client:
            assert ApplicationsApi(api_client).get_applications(public_id=["locked-app"])
            evaluation = PolicyEvaluationApi(api_client)
            request = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="build")
            with pytest.raises(ForbiddenException) as refused:
                evaluation.promote_scan(locked.id, request)
            assert "locked-app" in (refused.value.body or "")
            with pytest.raises(ForbiddenException):
                evaluation.get_application_evaluation_status(locked.id, "any")
            assert evaluation.promote_scan(other.id, request).status_url


def test_a_forgotten_status_is_404_and_its_report_stays_in_the_history() -> None:
    with serving() as sim, client(sim) as api_client:
        app, _ = scanned(sim)
        evaluation = PolicyEvaluationApi(api_client)
        request = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="operate")
        status_id = str(evaluation.promote_scan(app.id, request).status_url).rsplit("/", 1)[-1]
        scan_id = wait_for_status(evaluation, app.id, status_id)["reportDataUrl"].split("/")[-2]
        assert sim.forget_statuses() >= 1
        with pytest.raises(NotFoundException):
            evaluation.get_application_evaluation_status(app.id, status_id)
        history = ReportsApi(api_client).get_report_history_for_application(app.id, stage="operate")
        assert (history.reports or [])[0].scan_id == scan_id


def test_csrf_is_demanded_on_changes_when_asked() -> None:
    with serving(csrf=True) as sim:
        app, _ = scanned(sim)
        request = ApiPromoteScanRequestDTOV2(source_stage_id="build", target_stage_id="build")
        with client(sim) as api_client:
            assert ApplicationsApi(api_client).get_applications().applications  # GETs pass
            with pytest.raises(ForbiddenException, match="CSRF"):
                PolicyEvaluationApi(api_client).promote_scan(app.id, request)
        pair = {
            "header_name": "X-CSRF-TOKEN",
            "header_value": "api",
            "cookie": "CLM-CSRF-TOKEN=api",
        }
        with client(sim, **pair) as api_client:
            assert PolicyEvaluationApi(api_client).promote_scan(app.id, request).status_url
