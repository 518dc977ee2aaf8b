"""The simulator's IQ endpoints over real HTTP: answers, errors, retention, queueing, stats."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import anyio
import pytest

from orchestrator.iq.models import (
    ROOT_ORGANIZATION_ID,
    EvaluationState,
    PromotionStatus,
    PurgeScanFiles,
    Stage,
)
from orchestrator.iq.report_models import LatestReport, PolicyReport, RawReport, ReportHistory
from orchestrator.simulator import Portfolio, Simulator, SimulatorConfig
from orchestrator.simulator.firewall import seed_firewall
from orchestrator.simulator.portfolio import seed_portfolio

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]

Credentials = tuple[str, str]
AUTH: Credentials = ("admin", "admin123")
LIMIT = 20
REALM = 'BASIC realm="Sonatype IQ Server"'


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


def authorization(auth: Credentials | None) -> dict[str, str]:
    return {} if auth is None else {"Authorization": aiohttp.encode_basic_auth(*auth)}


async def call(
    sim: Simulator,
    method: str,
    path: str,
    *,
    body: Any = None,
    auth: Credentials | None = AUTH,
    params: list[tuple[str, str]] | None = None,
    data: str | None = None,
) -> Answer:
    """One request to a path relative to the simulator's base URL."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            sim.base_url + path,
            json=body,
            data=data,
            headers=authorization(auth),
            params=params,
        ) as response,
    ):
        return Answer(response.status, await response.text(), dict(response.headers))


async def promote(sim: Simulator, app_id: str, body: dict[str, str]) -> str:
    answer = await call(
        sim, "POST", f"api/v2/evaluation/applications/{app_id}/promoteScan", body=body
    )
    assert answer.status == 200, answer.text
    status_url: str = answer.json()["statusUrl"]
    return status_url


async def settle(sim: Simulator, status_url: str) -> PromotionStatus:
    """Poll a status URL until it is no longer PENDING."""
    while True:
        answer = await call(sim, "GET", status_url)
        assert answer.status == 200, answer.text
        status = PromotionStatus.model_validate(answer.json())
        if status.state is not EvaluationState.PENDING:
            return status
        await anyio.sleep(0.01)


def with_history(sim: Simulator, stage: Stage = Stage.BUILD, length: int = 2) -> str:
    """The id of an application with at least ``length`` reports at ``stage``."""
    for app in sim.portfolio.applications:
        if len(sim.portfolio.history(app.id, stage)) >= length:
            return app.id
    raise AssertionError(f"no application has {length} reports at {stage}")


# --- applications and organizations --------------------------------------------------------


async def test_applications_are_listed_and_resolved_by_public_id(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        everything = (await call(simulator, "GET", "api/v2/applications")).json()
        assert len(everything["applications"]) == len(simulator.portfolio.applications) == 20
        first, second = simulator.portfolio.applications[:2]
        params = [("publicId", first.public_id), ("publicId", second.public_id)]
        params.append(("publicId", "no-such-app"))
        found = (await call(simulator, "GET", "api/v2/applications", params=params)).json()
        assert {a["publicId"] for a in found["applications"]} == {first.public_id, second.public_id}
        assert found["applications"][0]["contactUserName"] is None
        none = await call(simulator, "GET", "api/v2/applications", params=[("publicId", "x")])
        assert none.json() == {"applications": []}


async def test_organizations_and_their_applications(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        organizations = (await call(simulator, "GET", "api/v2/organizations")).json()
        ids = [o["id"] for o in organizations["organizations"]]
        assert ROOT_ORGANIZATION_ID in ids
        assert len(ids) == 4
        counted = 0
        for organization_id in ids:
            answer = await call(
                simulator, "GET", f"api/v2/applications/organization/{organization_id}"
            )
            apps = answer.json()["applications"]
            assert all(a["organizationId"] == organization_id for a in apps)
            counted += len(apps)
        assert counted == len(simulator.portfolio.applications)
        missing = await call(simulator, "GET", "api/v2/applications/organization/nope")
        assert missing.status == 404
        assert "nope" in missing.text


async def test_extra_applications_and_organizations_are_seeded(
    simulator_factory: SimulatorFactory,
) -> None:
    extra = (("from-manifest", "Manifest Org"), ("orphan-app", None))
    async with simulator_factory(
        extra_applications=extra, extra_organizations=("Empty Org",)
    ) as sim:
        names = {o.name for o in sim.portfolio.organizations}
        assert {"Manifest Org", "Empty Org"} <= names
        app = sim.portfolio.by_public_id("from-manifest")
        assert app is not None
        assert app.organization_id is not None
        owner = sim.portfolio.organization(app.organization_id)
        assert owner is not None
        assert owner.name == "Manifest Org"
        for public_id in ("from-manifest", "orphan-app"):
            found = sim.portfolio.by_public_id(public_id)
            assert found is not None
            assert all(sim.portfolio.latest(found.id, stage) for stage in Stage)


async def test_categories_in_use_are_those_applications_carry(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(extra_categories=("Regulated", "tier-1")) as sim:
        with anyio.fail_after(LIMIT):
            answer = await call(sim, "GET", "api/v2/applicationCategories/application")
        carried = {t.tag_id for a in sim.portfolio.applications for t in a.application_tags or []}
        in_use = answer.json()
        assert {c["id"] for c in in_use} == carried
        names = [c["name"] for c in in_use]
        assert "Regulated" in names, "an extra category is created and carried"
        assert len(names) == len(set(names)), "'tier-1' is Tier-1, not a second category"
        assert all(c["organizationId"] == ROOT_ORGANIZATION_ID for c in in_use)
        assert sim.stats.requests_to("categories-used", "GET") == 1


def test_extra_categories_change_no_other_application() -> None:
    plain = seed_portfolio(SimulatorConfig(apps=30))
    extended = seed_portfolio(SimulatorConfig(apps=30, extra_categories=("Regulated",)))
    regulated = next(c for c in extended.categories if c.name == "Regulated")
    for before, after in zip(plain.applications, extended.applications, strict=True):
        kept = [t for t in after.application_tags or [] if t.tag_id != regulated.id]
        assert kept == before.application_tags
    carriers = [
        a
        for a in extended.applications
        if any(t.tag_id == regulated.id for t in a.application_tags or [])
    ]
    assert 0 < len(carriers) < 30


def test_recent_reports_are_dated_by_the_clock_only_when_asked() -> None:
    assert _fingerprint(SimulatorConfig(seed=5)) == _fingerprint(
        SimulatorConfig(seed=5, recent_reports=0.0)
    )
    before = datetime.now(UTC)
    portfolio = seed_portfolio(SimulatorConfig(apps=40, recent_reports=0.5))
    again = seed_portfolio(SimulatorConfig(apps=40, recent_reports=0.5))

    def recent(p: Portfolio) -> list[str]:
        return [
            a.public_id
            for a in p.applications
            if any(
                (latest := p.latest(a.id, stage)) is not None
                and latest.evaluation_date > before - timedelta(days=1)
                for stage in Stage
            )
        ]

    assert recent(portfolio) == recent(again), "the same applications, seed after seed"
    assert 10 < len(recent(portfolio)) < 30
    for app in portfolio.applications:
        for stage in Stage:
            history = portfolio.reports[app.id].get(stage, [])
            if not history:
                continue
            assert history[-1] == portfolio.latest(app.id, stage)
            assert all(r.evaluation_date < history[-1].evaluation_date for r in history[:-1])
            age = before - history[-1].evaluation_date
            if app.public_id in recent(portfolio):
                assert timedelta(minutes=29) < age < timedelta(hours=12)


# --- reports -------------------------------------------------------------------------------


async def test_latest_reports_and_history(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        app_id = with_history(simulator)
        latest = (await call(simulator, "GET", f"api/v2/reports/applications/{app_id}")).json()
        infos = [LatestReport.model_validate(item) for item in latest]
        assert {i.stage for i in infos} >= {"build"}
        assert len({i.stage for i in infos}) == len(infos)
        assert all(i.report_data_url and not i.report_data_url.startswith("/") for i in infos)
        assert all("scanId" not in item for item in latest), "the latest listing has no scan id"
        path = f"api/v2/reports/applications/{app_id}/history"
        history = ReportHistory.model_validate(
            (await call(simulator, "GET", path, params=[("stage", "build")])).json()
        )
        dates = [r.evaluation_date for r in history.reports if r.evaluation_date is not None]
        assert len(dates) == len(history.reports) >= 2
        assert dates == sorted(dates, reverse=True)
        build_latest = next(i for i in infos if i.stage == "build")
        assert history.reports[0].scan_id == build_latest.scan_id
        one = (await call(simulator, "GET", path, params=[("limit", "1")])).json()
        assert len(one["reports"]) == 1
        assert (await call(simulator, "GET", path, params=[("stage", "prod")])).status == 400
        assert (await call(simulator, "GET", path, params=[("limit", "x")])).status == 400
        unknown = await call(simulator, "GET", "api/v2/reports/applications/nope/history")
        assert unknown.status == 404
        assert (await call(simulator, "GET", "api/v2/reports/applications/nope")).status == 404


async def test_report_data_is_raw_without_violations_and_policy_with_them(
    simulator: Simulator,
) -> None:
    """As on a real server: the raw data (what reportDataUrl names) has components and their
    security and license data, no violations; the policy data has each one's violations."""
    with anyio.fail_after(LIMIT):
        app_id = with_history(simulator)
        app = simulator.portfolio.application(app_id)
        assert app is not None
        reports = simulator.portfolio.history(app_id, Stage.BUILD)
        base = f"api/v2/applications/{app.public_id}/reports/{reports[0].report_id}"
        raw = (await call(simulator, "GET", f"{base}/raw")).json()
        assert raw["components"]
        assert all("violations" not in c for c in raw["components"])
        first, again = (
            (await call(simulator, "GET", f"{base}/policy")).json(),
            (await call(simulator, "GET", f"{base}/policy")).json(),
        )
        assert first == again
        data = PolicyReport.model_validate(first)
        levels = {v.policy_threat_level for c in data.components for v in c.violations}
        assert levels
        assert all(0 <= level <= 10 for level in levels)
        older_path = f"api/v2/applications/{app.public_id}/reports/{reports[1].report_id}/policy"
        older = PolicyReport.model_validate((await call(simulator, "GET", older_path)).json())
        assert {c.hash for c in older.components} == {c.hash for c in data.components}
        by_internal_id = f"api/v2/applications/{app.id}/reports/{reports[0].report_id}/policy"
        assert (await call(simulator, "GET", by_internal_id)).json() == first
        missing = f"api/v2/applications/{app.public_id}/reports/nope/policy"
        assert (await call(simulator, "GET", missing)).status == 404


async def test_the_bare_report_data_path_redirects_to_the_raw_data(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        app_id = with_history(simulator)
        app = simulator.portfolio.application(app_id)
        assert app is not None
        report = simulator.portfolio.history(app_id, Stage.BUILD)[0]
        path = f"api/v2/applications/{app.public_id}/reports/{report.report_id}"
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                simulator.base_url + path, headers=authorization(AUTH), allow_redirects=False
            ) as answer,
        ):
            assert answer.status == 307
            assert answer.headers["Location"].endswith(f"{path}/raw")


async def test_policy_data_is_paged_when_asked(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        app = next(a for a in simulator.portfolio.applications if simulator.portfolio.history(a.id))
        report = simulator.portfolio.history(app.id)[0]
        path = f"api/v2/applications/{app.public_id}/reports/{report.report_id}/policy"
        whole = PolicyReport.model_validate((await call(simulator, "GET", path)).json())
        assert whole.total is None
        assert whole.page_count is None
        pages = []
        page = 1
        while True:
            params = [("page", str(page)), ("pageSize", "3")]
            answer = PolicyReport.model_validate(
                (await call(simulator, "GET", path, params=params)).json()
            )
            pages.append(answer)
            assert answer.page_count is not None
            if page >= answer.page_count:
                break
            page += 1
        assert [c.hash for p in pages for c in p.components] == [c.hash for c in whole.components]
        assert pages[0].total == len(whole.components)
        for bad in (
            [("page", "1")],
            [("page", "0"), ("pageSize", "3")],
            [("page", "1"), ("pageSize", "501")],
        ):
            assert (await call(simulator, "GET", path, params=bad)).status == 400


# --- promote scan --------------------------------------------------------------------------


@pytest.mark.parametrize("by_scan_id", [False, True])
async def test_promotion_completes_with_relative_links(
    simulator: Simulator, by_scan_id: bool
) -> None:
    with anyio.fail_after(LIMIT):
        app = simulator.portfolio.applications[0]
        build = simulator.portfolio.latest(app.id, Stage.BUILD)
        assert build is not None
        body = {"scanId": build.scan_id} if by_scan_id else {"sourceStageId": "build"}
        status_url = await promote(simulator, app.id, {**body, "targetStageId": "stage-release"})
        assert status_url.startswith(f"api/v2/evaluation/applications/{app.id}/status/")
        status = await settle(simulator, status_url)
        assert status.state is EvaluationState.COMPLETED
        links = [status.report_html_url, status.embeddable_report_html_url, status.report_pdf_url]
        assert all(
            link and link.startswith(f"ui/links/application/{app.public_id}/report/")
            for link in links
        ), "current releases name the application by its public id"
        assert status.report_data_url
        assert status.report_data_url.startswith(f"api/v2/applications/{app.public_id}/")
        data = await call(simulator, "GET", status.report_data_url)
        assert data.status == 200
        assert RawReport.model_validate(data.json()).components
        newest = simulator.portfolio.latest(app.id, Stage.STAGE_RELEASE)
        assert newest is not None
        assert status.report_data_url.endswith(f"{newest.report_id}/raw")
        assert simulator.stats.promotions_accepted[app.id] == 1
        assert simulator.stats.evaluations_completed == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sourceStageId": "build"}, "targetStageId"),
        ({"sourceStageId": "build", "targetStageId": "prod"}, "prod"),
        ({"sourceStageId": "nightly", "targetStageId": "build"}, "nightly"),
        ({"targetStageId": "build"}, "either"),
        ({"scanId": "x", "sourceStageId": "build", "targetStageId": "build"}, "either"),
        ([1, 2], "JSON object"),
    ],
)
async def test_malformed_promotions_are_400(simulator: Simulator, body: Any, message: str) -> None:
    with anyio.fail_after(LIMIT):
        app = simulator.portfolio.applications[0]
        path = f"api/v2/evaluation/applications/{app.id}/promoteScan"
        answer = await call(simulator, "POST", path, body=body)
        assert answer.status == 400
        assert message in answer.text
        assert answer.headers["Content-Type"].startswith("text/plain")
        not_json = await call(simulator, "POST", path, data="{not json")
        assert not_json.status == 400
        assert not simulator.stats.promotions_accepted


async def test_unknown_application_and_status_are_404_an_unknown_scan_400(
    simulator: Simulator,
) -> None:
    with anyio.fail_after(LIMIT):
        app = simulator.portfolio.applications[0]
        body = {"sourceStageId": "build", "targetStageId": "build"}
        unknown_app = await call(
            simulator, "POST", "api/v2/evaluation/applications/nope/promoteScan", body=body
        )
        assert unknown_app.status == 404
        assert "nope" in unknown_app.text
        path = f"api/v2/evaluation/applications/{app.id}/promoteScan"
        unknown_scan = await call(
            simulator, "POST", path, body={"scanId": "feed", "targetStageId": "build"}
        )
        assert unknown_scan.status == 400, "IQ refuses a scan it does not have at submission"
        assert "feed" in unknown_scan.text
        assert "purgeScanFiles" in unknown_scan.text
        status = await call(
            simulator, "GET", f"api/v2/evaluation/applications/{app.id}/status/nope"
        )
        assert status.status == 404
        status_url = await promote(simulator, app.id, body)
        elsewhere = status_url.replace(app.id, simulator.portfolio.applications[1].id)
        assert (await call(simulator, "GET", elsewhere)).status == 404


async def test_no_scan_at_the_source_stage_is_refused_at_submission(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        never = simulator.portfolio.applications[-1]
        assert not simulator.portfolio.history(never.id)
        answer = await call(
            simulator,
            "POST",
            f"api/v2/evaluation/applications/{never.id}/promoteScan",
            body={"sourceStageId": "build", "targetStageId": "build"},
        )
        assert answer.status == 400
        assert answer.text == "No scan available to promote from stage build."
        assert not simulator.stats.promotions_accepted


ENDPOINTS = [
    ("GET", "api/v2/applications"),
    ("GET", "api/v2/organizations"),
    ("GET", "api/v2/applications/organization/x"),
    ("GET", "api/v2/reports/applications/x"),
    ("GET", "api/v2/reports/applications/x/history"),
    ("GET", "api/v2/applications/x/reports/y"),
    ("GET", "api/v2/applications/x/reports/y/raw"),
    ("GET", "api/v2/applications/x/reports/y/policy"),
    ("GET", "api/v2/applicationCategories/organization/x"),
    ("GET", "api/v2/reports/applications"),
    ("DELETE", "api/v2/config?property=purgeScanFiles"),
    ("POST", "api/v2/evaluation/applications/x/promoteScan"),
    ("GET", "api/v2/evaluation/applications/x/status/y"),
    ("GET", "api/v2/config?property=purgeScanFiles"),
    ("PUT", "api/v2/config"),
    ("GET", "api/v2/firewall/repositoryContainer"),
    ("GET", "api/v2/firewall/repositoryManagers"),
    ("GET", "api/v2/firewall/repositories/configuration/x"),
    (
        "POST",
        "api/experimental/repositories/repository_container/REPOSITORY_CONTAINER_ID/results/details",
    ),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_wants_credentials(
    simulator: Simulator, method: str, path: str
) -> None:
    with anyio.fail_after(LIMIT):
        for auth in (
            None,
            ("admin", "wrong"),
            ("nobody", "admin123"),
        ):
            answer = await call(simulator, method, path, auth=auth, body={})
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"] == REALM
            assert answer.headers["Content-Type"].startswith("text/plain")
        assert simulator.stats.total_requests == 3


# --- scan retention ------------------------------------------------------------------------


async def test_by_default_only_the_latest_scan_of_a_stage_can_be_promoted(
    simulator: Simulator,
) -> None:
    with anyio.fail_after(LIMIT):
        app_id = with_history(simulator)
        latest, older = simulator.portfolio.history(app_id, Stage.BUILD)[:2]
        path = f"api/v2/evaluation/applications/{app_id}/promoteScan"
        purged = await call(
            simulator, "POST", path, body={"scanId": older.scan_id, "targetStageId": "build"}
        )
        assert purged.status == 400
        assert "purgeScanFiles to withReports" in purged.text
        first = await settle(
            simulator,
            await promote(simulator, app_id, {"scanId": latest.scan_id, "targetStageId": "build"}),
        )
        assert first.state is EvaluationState.COMPLETED
        # The promotion made a newer build scan, so the one promoted is purged in its turn.
        again = await call(
            simulator, "POST", path, body={"scanId": latest.scan_id, "targetStageId": "build"}
        )
        assert again.status == 400
        assert "purgeScanFiles to withReports" in again.text
        config = await call(
            simulator, "GET", "api/v2/config", params=[("property", "purgeScanFiles")]
        )
        assert config.json() == {}, "unset, IQ's default, answers no value"


async def test_with_reports_retention_keeps_older_scans_promotable(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        put = await call(simulator, "PUT", "api/v2/config", body={"purgeScanFiles": "withReports"})
        assert put.status == 204
        got = await call(simulator, "GET", "api/v2/config", params=[("property", "purgeScanFiles")])
        assert got.json() == {"purgeScanFiles": "withReports"}
        app_id = with_history(simulator)
        latest = simulator.portfolio.history(app_id, Stage.BUILD)[0]
        body = {"scanId": latest.scan_id, "targetStageId": "build"}
        for _ in range(2):  # the second promotes a scan that is no longer the latest
            status = await settle(simulator, await promote(simulator, app_id, body))
            assert status.state is EvaluationState.COMPLETED
        assert simulator.portfolio.history(app_id, Stage.BUILD)[0].scan_id != latest.scan_id
        delete = await call(
            simulator, "DELETE", "api/v2/config", params=[("property", "purgeScanFiles")]
        )
        assert delete.status == 204
        got = await call(simulator, "GET", "api/v2/config", params=[("property", "purgeScanFiles")])
        assert got.json() == {}


async def test_retention_starts_as_configured(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(purge_scan_files=PurgeScanFiles.WITH_REPORTS) as sim:
        app_id = with_history(sim)
        older = sim.portfolio.history(app_id, Stage.BUILD)[1]
        with anyio.fail_after(LIMIT):
            status_url = await promote(
                sim, app_id, {"scanId": older.scan_id, "targetStageId": "release"}
            )
            assert (await settle(sim, status_url)).state is EvaluationState.COMPLETED


@pytest.mark.parametrize(
    ("method", "params", "body"),
    [
        ("GET", [], None),
        ("GET", [("property", "baseUrl")], None),
        ("PUT", [], {"purgeScanFiles": "forever"}),
        ("PUT", [], {"purgeScanFiles": "default"}),
        ("DELETE", [], None),
        ("PUT", [], {"somethingElse": "x"}),
        ("PUT", [], {}),
    ],
)
async def test_bad_configuration_requests_are_400(
    simulator: Simulator, method: str, params: list[tuple[str, str]], body: Any
) -> None:
    with anyio.fail_after(LIMIT):
        answer = await call(simulator, method, "api/v2/config", params=params, body=body)
        assert answer.status == 400


# --- queueing, timing, determinism ---------------------------------------------------------


async def test_only_k_workers_evaluate_at_once_and_the_rest_queue_in_order(
    simulator_factory: SimulatorFactory,
) -> None:
    workers, extra = 4, 10
    async with simulator_factory(workers=workers, eval_time=0.05) as sim:
        apps = sim.portfolio.applications[: workers + extra]
        with anyio.fail_after(LIMIT):
            urls = [
                await promote(sim, a.id, {"sourceStageId": "build", "targetStageId": "build"})
                for a in apps
            ]
            statuses = [await settle(sim, url) for url in urls]
        stats = sim.stats
        assert {s.status for s in statuses} == {EvaluationState.COMPLETED}
        assert stats.max_running == workers
        assert stats.max_queue_depth >= extra
        assert stats.evaluations_started == stats.evaluations_completed == workers + extra
        assert stats.running == stats.queue_depth == 0
        by_enqueue = sorted(stats.evaluations, key=lambda r: r.enqueued_at)
        starts = [r.started_at for r in by_enqueue]
        assert starts == sorted(starts)  # first come, first served
        assert all(r.enqueued_at <= r.started_at <= r.finished_at for r in stats.evaluations)


def test_each_application_has_its_own_evaluation_time() -> None:
    config = SimulatorConfig(apps=30, eval_time=1.0)
    sim = Simulator(config)
    times = [sim.engine.typical_time(a) for a in sim.portfolio.applications]
    assert len(set(times)) == len(times)
    assert all(t > 0 for t in times)
    assert min(times) < 1.0 < max(times)
    assert times == [Simulator(config).engine.typical_time(a) for a in sim.portfolio.applications]
    flat = Simulator(SimulatorConfig(apps=5, eval_time=1.0, eval_sigma=0.0))
    assert {flat.engine.typical_time(a) for a in flat.portfolio.applications} == {1.0}


def _fingerprint(config: SimulatorConfig) -> list[Any]:
    portfolio = seed_portfolio(config)
    return [
        [o.model_dump() for o in portfolio.organizations],
        [a.model_dump() for a in portfolio.applications],
        [
            (r.application_id, r.stage, r.report_id, r.evaluation_date, r.scan_file_kept)
            for a in portfolio.applications
            for r in portfolio.history(a.id)
        ],
        seed_firewall(config.seed).rows,
    ]


def test_the_same_seed_gives_the_same_portfolio_and_another_seed_another() -> None:
    assert _fingerprint(SimulatorConfig(seed=3)) == _fingerprint(SimulatorConfig(seed=3))
    one, other = _fingerprint(SimulatorConfig(seed=3)), _fingerprint(SimulatorConfig(seed=4))
    assert all(a != b for a, b in zip(one, other, strict=True))


def test_stages_follow_the_documented_shares() -> None:
    portfolio = seed_portfolio(SimulatorConfig(apps=20))
    reached = {
        stage: sum(portfolio.latest(a.id, stage) is not None for a in portfolio.applications)
        for stage in Stage
    }
    assert reached == {
        Stage.BUILD: 18,
        Stage.STAGE_RELEASE: 15,
        Stage.RELEASE: 12,
        Stage.OPERATE: 5,
    }


# --- context path and the stats endpoint ---------------------------------------------------


async def test_a_context_path_prefixes_every_route(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(context_path="/iq") as sim:
        assert sim.base_url.endswith("/iq/")
        with anyio.fail_after(LIMIT):
            assert (await call(sim, "GET", "api/v2/applications")).status == 200
            root = sim.base_url.removesuffix("iq/")
            async with (
                aiohttp.ClientSession() as http,
                http.get(root + "api/v2/applications", headers=authorization(AUTH)) as response,
            ):
                assert response.status == 404
            app = sim.portfolio.applications[0]
            url = await promote(sim, app.id, {"sourceStageId": "build", "targetStageId": "operate"})
            assert not url.startswith("/")
            assert (await settle(sim, url)).state is EvaluationState.COMPLETED
            assert (await call(sim, "GET", "__simulator/stats", auth=None)).status == 200


async def test_the_stats_endpoint_reports_and_resets(simulator: Simulator) -> None:
    with anyio.fail_after(LIMIT):
        app = simulator.portfolio.applications[0]
        await settle(
            simulator,
            await promote(simulator, app.id, {"sourceStageId": "build", "targetStageId": "build"}),
        )
        stats = (await call(simulator, "GET", "__simulator/stats", auth=None)).json()
        assert stats["promotionsAccepted"] == {app.id: 1}
        assert stats["requests"]["promote-scan"] == {"POST": 1}
        assert stats["requests"]["promotion-status"]["GET"] >= 1
        assert stats["totalRequests"] == simulator.stats.total_requests
        assert stats["evaluationsCompleted"] == 1
        assert stats["maxRunning"] == 1
        (record,) = stats["evaluations"]
        assert record["application_id"] == app.id
        assert record["outcome"] == "COMPLETED"
        assert (await call(simulator, "POST", "__simulator/reset-stats", auth=None)).status == 204
        assert simulator.stats.total_requests == 0
        assert not simulator.stats.promotions_accepted
        assert not simulator.stats.evaluations
        assert simulator.stats.requests_to("promote-scan") == 0
