"""Runs against the server as the real IQ Server behaves (docs/simulator.md cites the
evidence): violations only in the policy data, purgeScanFiles unset by default, 403 for one
application, refusals at submission, statuses that are forgotten, CSRF behind reverse-proxy
authentication, proxies, and answers more varied than ours."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from aiohttp import web
from frontends import ForwardProxy, Front, Upstream, serving
from structlog.testing import capture_logs
from test_runner import config_for, entry, manifest
from yarl import URL

from orchestrator.errors import AuthError, ExitCode, ForbiddenError
from orchestrator.iq import client as iq_client
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import PurgeScanFiles, Stage
from orchestrator.iq.transport import ClientSettings, Credentials, environment_proxy
from orchestrator.promote.polling import BackoffSchedule
from orchestrator.promote.recovery import evaluated_since
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport
from orchestrator.report.violations import count_violations
from orchestrator.runner.config import RunConfig
from orchestrator.runner.run import run
from orchestrator.simulator import Simulator
from orchestrator.simulator.reportdata import policy_report

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
LIMIT = 30


def scanned(sim: Simulator, count: int, stage: Stage = Stage.BUILD) -> list[str]:
    """Public ids of ``count`` applications with a scan at ``stage``."""
    found = [a.public_id for a in sim.portfolio.applications if sim.portfolio.latest(a.id, stage)]
    assert len(found) >= count
    return found[:count]


def never_at(sim: Simulator, stage: Stage) -> str:
    """An application with a build scan but none at ``stage``."""
    portfolio = sim.portfolio
    return next(
        a.public_id
        for a in portfolio.applications
        if portfolio.latest(a.id, Stage.BUILD) and not portfolio.latest(a.id, stage)
    )


def via(config: RunConfig, url: str) -> RunConfig:
    """``config`` talking to ``url`` (a front of the simulator) instead."""
    assert config.client is not None
    return replace(config, client=replace(config.client, base_url=url))


def events(logs: list[Any], name: str) -> list[Any]:
    return [e for e in logs if e["event"] == name]


def newest_counts(sim: Simulator, public_id: str, stage: str) -> Any:
    app = sim.portfolio.by_public_id(public_id)
    assert app is not None
    latest = sim.portfolio.latest(app.id, Stage(stage))
    assert latest is not None
    return count_violations(policy_report(sim.config.seed, app, latest))


# --- 1. the policy picture reads the policy data --------------------------------------------


async def test_the_gate_counts_the_violations_of_the_policy_data(simulator: Simulator) -> None:
    apps = scanned(simulator, 5)
    text = manifest(entry(apps, "{from: build, to: build}"))
    with anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text, fail_on="critical"))
    assert all(r.status is Outcome.COMPLETED for r in report.results)
    for result in report.results:
        assert result.public_id is not None
        assert result.violations == newest_counts(simulator, result.public_id, "build")
    crossing = [
        f"{r.public_id} (build)" for r in report.results if r.violations and r.violations.critical
    ]
    assert crossing, "the seeded data has critical violations somewhere"
    assert report.policy_gate is not None
    assert report.policy_gate.crossed == crossing
    assert report.exit_code == ExitCode.NOT_COMPLETED
    assert simulator.stats.requests_to("report-policy") == len(apps)
    assert simulator.stats.requests_to("report-raw") == 0, "the raw data has no violations"


async def test_policy_data_that_cannot_be_read_is_unchecked_and_fails_the_gate(
    simulator: Simulator,
) -> None:
    apps = scanned(simulator, 3)

    async def no_policy(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/policy"):
            return web.Response(status=404, text="Not Found")
        return None

    text = manifest(entry(apps, "{from: build, to: build}"))
    with anyio.fail_after(LIMIT):
        async with Front(simulator.base_url, before=no_policy).serving() as front:
            report = await run(via(config_for(simulator, text, fail_on="critical"), front.url))
    assert [r.status for r in report.results] == [Outcome.COMPLETED] * 3
    assert all(r.violations is None for r in report.results), "unknown, never zero"
    assert all(r.violations_unchecked for r in report.results)
    assert report.policy_gate is not None
    assert report.policy_gate.unchecked == 3
    assert report.policy_gate.failed
    assert report.exit_code == ExitCode.NOT_COMPLETED


async def test_policy_data_is_read_page_by_page(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(iq_client, "POLICY_PAGE_SIZE", 3)
    apps = scanned(simulator, 2)
    text = manifest(entry(apps, "{from: build, to: build}"))
    with anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text, fail_on="severe"))
    for result in report.results:
        assert result.public_id is not None
        assert result.violations == newest_counts(simulator, result.public_id, "build")
    assert simulator.stats.requests_to("report-policy") > len(apps)


@pytest.mark.parametrize("links", ["legacy", "current"])
async def test_both_link_forms_lead_to_the_policy_data(
    simulator_factory: SimulatorFactory, links: str
) -> None:
    """Current releases link the raw data by public id; older ones by internal id, without
    /raw. The policy data is found from the link the server gave, either way."""
    async with simulator_factory(report_links=links, policy_paging=links == "current") as sim:
        apps = scanned(sim, 3)
        text = manifest(entry(apps, "{from: build, to: build}"))
        with anyio.fail_after(LIMIT):
            report = await run(config_for(sim, text, fail_on="critical"))
    for result in report.results:
        assert result.public_id is not None
        assert result.violations == newest_counts(sim, result.public_id, "build")


# --- 2. purgeScanFiles is advisory --------------------------------------------------------


def scan_entry(public_id: str, scan_id: str, target: str = "build") -> str:
    return entry([public_id], f"{{scanId: {scan_id}, to: {target}}}")


async def test_a_scan_id_run_works_on_a_default_server(simulator: Simulator) -> None:
    app = simulator.portfolio.applications[0]
    latest = simulator.portfolio.latest(app.id, Stage.BUILD)
    assert latest is not None
    text = manifest(scan_entry(app.public_id, latest.scan_id))
    with capture_logs() as logs, anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text))
    assert [r.status for r in report.results] == [Outcome.COMPLETED]
    assert report.exit_code == ExitCode.OK
    assert events(logs, "config.scan_retention_default")
    assert simulator.portfolio.retention is None, "nothing is changed unasked"


async def test_without_administrator_rights_a_scan_id_run_goes_on(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(admin=False) as sim:
        app = sim.portfolio.applications[0]
        latest = sim.portfolio.latest(app.id, Stage.BUILD)
        assert latest is not None
        text = manifest(scan_entry(app.public_id, latest.scan_id))
        with capture_logs() as logs, anyio.fail_after(LIMIT):
            report = await run(config_for(sim, text, ensure_scan_retention=True))
    assert [r.status for r in report.results] == [Outcome.COMPLETED]
    [warning] = events(logs, "config.scan_retention_unknown")
    assert "403" in warning["error"]


async def test_credentials_refused_at_the_retention_check_end_the_run_not_advise(
    simulator: Simulator,
) -> None:
    """The setting is advice; a server that refuses the credentials is not: the run stops
    there (exit 3) before any promotion, rather than warning and going on to fail each."""

    async def refused(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/api/v2/config"):
            return web.Response(status=401, text="Unauthorized")
        return None

    app = simulator.portfolio.applications[0]
    latest = simulator.portfolio.latest(app.id, Stage.BUILD)
    assert latest is not None
    text = manifest(scan_entry(app.public_id, latest.scan_id))
    async with Front(simulator.base_url, before=refused).serving() as front:
        config = config_for(simulator, text)
        assert config.client is not None
        config = replace(config, client=replace(config.client, base_url=front.url))
        with anyio.fail_after(LIMIT), pytest.raises(AuthError):
            await run(config)
    assert not simulator.stats.promotions_accepted


async def test_ensure_scan_retention_sets_with_reports(simulator: Simulator) -> None:
    app = simulator.portfolio.applications[0]
    latest = simulator.portfolio.latest(app.id, Stage.BUILD)
    assert latest is not None
    text = manifest(scan_entry(app.public_id, latest.scan_id))
    with anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text, ensure_scan_retention=True))
    assert report.succeeded
    assert simulator.portfolio.retention is PurgeScanFiles.WITH_REPORTS


# --- 3. 403 is per application ------------------------------------------------------------


async def test_an_application_the_user_may_not_evaluate_leaves_the_rest_completed(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory() as sim:
        apps = scanned(sim, 4)
    async with simulator_factory(no_evaluate=(apps[1],)) as sim:
        text = manifest(entry(apps, "{from: build, to: build}"))
        with anyio.fail_after(LIMIT):
            report = await run(config_for(sim, text))
    by_app = {r.public_id: r for r in report.results}
    refused = by_app[apps[1]]
    assert refused.status is Outcome.ERROR
    assert refused.reason is not None
    assert "HTTP 403" in refused.reason
    assert "does not have permission to evaluate" in refused.reason, "the server's own words"
    assert [by_app[a].status for a in apps if a != apps[1]] == [Outcome.COMPLETED] * 3
    assert report.exit_code == ExitCode.NOT_COMPLETED, "not 3: the server is fine"
    assert report.error is None


async def test_a_403_at_the_first_look_ups_stops_the_run(simulator: Simulator) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/api/v2/organizations"):
            return web.Response(status=403, text="Forbidden")
        return None

    text = manifest(entry(scanned(simulator, 2), "{from: build, to: build}"))
    with anyio.fail_after(LIMIT):
        async with Front(simulator.base_url, before=refuse).serving() as front:
            with pytest.raises(ForbiddenError) as stopped:
                await run(via(config_for(simulator, text), front.url))
    assert stopped.value.exit_code == ExitCode.SERVER
    assert simulator.stats.requests_to("promote-scan") == 0


# --- 4. refusals at submission ------------------------------------------------------------


async def test_a_missing_source_stage_is_an_error_in_the_servers_words(
    simulator: Simulator,
) -> None:
    unreleased = never_at(simulator, Stage.RELEASE)
    healthy = scanned(simulator, 1, Stage.RELEASE)[0]
    text = manifest(entry([unreleased, healthy], "{from: release, to: release}"))
    with anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text))
    by_app = {r.public_id: r for r in report.results}
    refused = by_app[unreleased]
    assert refused.status is Outcome.ERROR
    assert refused.reason is not None
    assert "No scan available to promote from stage release." in refused.reason
    assert refused.attempts == 0
    assert by_app[healthy].status is Outcome.COMPLETED


async def test_a_purged_scan_refused_at_submission_says_what_keeps_scans(
    simulator: Simulator,
) -> None:
    app = next(
        a
        for a in simulator.portfolio.applications
        if len(simulator.portfolio.history(a.id, Stage.BUILD)) >= 2
    )
    older = simulator.portfolio.history(app.id, Stage.BUILD)[1]
    text = manifest(scan_entry(app.public_id, older.scan_id))
    with anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text))
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert result.reason is not None
    assert "HTTP 400" in result.reason
    assert "--ensure-scan-retention" in result.reason


# --- 5. statuses that vanish --------------------------------------------------------------


async def test_a_forgotten_status_is_found_in_the_report_history(
    simulator_factory: SimulatorFactory,
) -> None:
    """The server forgets each status at once (a restart, another node): the report that
    the evaluation left is taken as the promotion's, and nothing is sent twice."""
    async with simulator_factory(forget_statuses_after=0.0, eval_time=0.005) as sim:
        apps = scanned(sim, 4)
        text = manifest(entry(apps, "{from: build, to: operate}"))
        late = BackoffSchedule(initial=0.3, cap=0.3)  # by then every evaluation is done
        with capture_logs() as logs, anyio.fail_after(LIMIT):
            report = await run(config_for(sim, text, strategy=late))
        newest = {}
        for public_id in apps:
            app = sim.portfolio.by_public_id(public_id)
            assert app is not None
            latest = sim.portfolio.latest(app.id, Stage.OPERATE)
            assert latest is not None
            newest[public_id] = latest.report_id
    assert [r.status for r in report.results] == [Outcome.COMPLETED] * 4
    assert sum(sim.stats.promotions_accepted.values()) == 4, "nothing sent twice"
    for result in report.results:
        assert result.report_data_url is not None
        assert newest[str(result.public_id)] in result.report_data_url
    assert events(logs, "promotion.status_lost")


async def test_a_status_lost_before_its_report_exists_ends_completed_after_one_resend(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(forget_statuses_after=0.0, eval_time=0.3, workers=8) as sim:
        apps = scanned(sim, 3)
        text = manifest(entry(apps, "{from: build, to: release}"))
        with anyio.fail_after(LIMIT):
            report = await run(config_for(sim, text))
    assert [r.status for r in report.results] == [Outcome.COMPLETED] * 3
    assert all(n <= 2 for n in sim.stats.promotions_accepted.values())


# --- 6. transport ---------------------------------------------------------------------------


async def test_a_csrf_protected_server_is_served(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(csrf=True) as sim:
        apps = scanned(sim, 3)
        text = manifest(entry(apps, "{from: build, to: build}"))
        with anyio.fail_after(LIMIT):
            report = await run(config_for(sim, text))
    assert report.succeeded


async def promoted_through_named(sim: Simulator, front: Front) -> RunReport:
    """Two applications promoted build to build through ``front``, reached by a host name:
    cookies from an IP address are not kept."""
    apps = scanned(sim, 2)
    text = manifest(entry(apps, "{from: build, to: build}"))
    async with front.serving() as served:
        config = config_for(sim, text)
        assert config.client is not None
        named = served.url.replace("127.0.0.1", "localhost")
        with anyio.fail_after(LIMIT):
            return await run(replace(config, client=replace(config.client, base_url=named)))


async def test_a_csrf_cookie_the_server_sets_does_not_displace_the_clients(
    simulator_factory: SimulatorFactory,
) -> None:
    """A front (or IQ itself) that sets a ``CLM-CSRF-TOKEN`` cookie of its own: the client's
    token still goes as the cookie beside its header, so its changes are not refused."""

    def set_cookie(request: web.Request, upstream: Upstream) -> Upstream:
        return replace(upstream, headers=(("Set-Cookie", "CLM-CSRF-TOKEN=theirs; Path=/"),))

    async with simulator_factory(csrf=True) as sim:
        report = await promoted_through_named(sim, Front(sim.base_url, after=set_cookie))
    assert report.succeeded, [r.reason for r in report.results]
    assert sim.stats.requests_to("promote-scan") == 2


async def test_a_fronts_session_cookie_goes_back_with_every_request_the_csrf_one_beside_it(
    simulator_factory: SimulatorFactory,
) -> None:
    """An SSO front's session cookie, set on the first answer, comes back on each later
    request; a POST carries it beside the client's CSRF cookie."""
    cookies: list[tuple[str, dict[str, str]]] = []

    async def record(request: web.Request) -> None:
        cookies.append((request.method, dict(request.cookies)))

    def set_cookie(request: web.Request, upstream: Upstream) -> Upstream:
        return replace(upstream, headers=(("Set-Cookie", "FRONT-SESSION=s1; Path=/"),))

    async with simulator_factory(csrf=True) as sim:
        front = Front(sim.base_url, before=record, after=set_cookie)
        report = await promoted_through_named(sim, front)
    assert report.succeeded, [r.reason for r in report.results]
    later = cookies[1:]
    assert later
    assert all(sent.get("FRONT-SESSION") == "s1" for _, sent in later)
    posts = [sent for method, sent in later if method == "POST"]
    assert len(posts) == 2
    assert all(set(sent) == {"FRONT-SESSION", "CLM-CSRF-TOKEN"} for sent in posts)
    assert all("CLM-CSRF-TOKEN" not in sent for method, sent in cookies if method == "GET")


async def test_the_proxy_from_the_environment_carries_every_request(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps = scanned(simulator, 2)
    text = manifest(entry(apps, "{from: build, to: build}"))
    async with ForwardProxy().serving() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with anyio.fail_after(LIMIT):
            report = await run(config_for(simulator, text))
    assert report.succeeded
    assert any(url.endswith("/promoteScan") for url in proxy.asked)
    assert all(url.startswith(simulator.base_url) for url in proxy.asked)


async def test_no_proxy_is_honoured_and_an_explicit_proxy_wins(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps = scanned(simulator, 2)
    text = manifest(entry(apps, "{from: build, to: build}"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with anyio.fail_after(LIMIT):
        bypassed = await run(config_for(simulator, text))
    assert bypassed.succeeded
    async with ForwardProxy().serving() as proxy:
        config = config_for(simulator, text)
        assert config.client is not None
        config = replace(config, client=replace(config.client, proxy=proxy.url))
        with anyio.fail_after(LIMIT):
            explicit = await run(config)
    assert explicit.succeeded
    assert proxy.asked


# --- 7. lenient where the vendor is lenient ----------------------------------------------


async def test_an_odd_row_of_a_listing_is_skipped_with_a_warning(simulator: Simulator) -> None:
    def broken_row(request: web.Request, upstream: Upstream) -> Upstream:
        if request.path.endswith("/api/v2/applications"):
            document = json.loads(upstream.body)
            document["applications"].insert(0, {"name": "no ids at all"})
            return replace(upstream, body=json.dumps(document).encode())
        return upstream

    apps = scanned(simulator, 2)
    text = manifest(
        entry(apps, "{from: build, to: build}"),
        "  - all: true\n    transitions: [{from: build, to: build}]\n",
    )
    async with Front(simulator.base_url, after=broken_row).serving() as front:
        with capture_logs() as logs, anyio.fail_after(LIMIT):
            report = await run(via(config_for(simulator, text), front.url))
    assert Counter(r.status for r in report.results)[Outcome.COMPLETED] >= 2
    [skipped] = events(logs, "listing.row_skipped")
    assert skipped["row"] == 0


async def test_a_status_word_this_version_does_not_know_keeps_it_polling(
    simulator: Simulator,
) -> None:
    first_answers: set[str] = set()

    def queued_first(request: web.Request, upstream: Upstream) -> Upstream:
        if "/status/" in request.path and request.path not in first_answers:
            first_answers.add(request.path)
            return replace(upstream, body=b'{"status": "QUEUED"}')
        return upstream

    apps = scanned(simulator, 2)
    text = manifest(entry(apps, "{from: build, to: build}"))
    async with Front(simulator.base_url, after=queued_first).serving() as front:
        with capture_logs() as logs, anyio.fail_after(LIMIT):
            report = await run(via(config_for(simulator, text), front.url))
    assert report.succeeded
    warnings = events(logs, "promotion.unknown_status")
    assert {w["status"] for w in warnings} == {"QUEUED"}
    assert len(warnings) == 2


async def test_an_html_page_with_200_is_retried_and_said_to_be_html(simulator: Simulator) -> None:
    pages = {"left": 3}

    async def login_page(request: web.Request) -> web.StreamResponse | None:
        if "/status/" in request.path and pages["left"]:
            pages["left"] -= 1
            return web.Response(text="<html><body>Sign in</body></html>", content_type="text/html")
        return None

    apps = scanned(simulator, 1)
    text = manifest(entry(apps, "{from: build, to: build}"))
    async with Front(simulator.base_url, before=login_page).serving() as front:
        with capture_logs() as logs, anyio.fail_after(LIMIT):
            report = await run(via(config_for(simulator, text), front.url))
    assert report.succeeded
    retries = events(logs, "http.retry")
    assert retries
    assert all("HTML page" in r["error"] for r in retries)


async def test_the_report_history_allows_for_a_server_clock_a_little_behind() -> None:
    """The server's clock runs a second behind ours, and writes its dates without an offset:
    the report evaluated just after the POST still counts as the promotion's, an older one
    does not, and no naive date stops the run."""
    sent = datetime.now(UTC)

    def row(seconds_after_sent: float, report: str) -> dict[str, object]:
        when = (sent + timedelta(seconds=seconds_after_sent)).replace(tzinfo=None)
        return {
            "applicationId": "app-id",
            "stage": "build",
            "evaluationDate": when.isoformat(),
            "reportHtmlUrl": f"ui/links/application/a/report/{report}",
            "reportDataUrl": f"api/v2/applications/a/reports/{report}/raw",
        }

    async def history(_: web.Request) -> web.Response:
        return web.json_response({"reports": [row(-1.0, "ours"), row(-60.0, "a-ci-scan")]})

    app = web.Application()
    app.router.add_get("/api/v2/reports/applications/{id}/history", history)
    async with serving(app) as url:
        settings = ClientSettings(url, Credentials("admin", "admin123"))
        async with IqClient(settings) as client:
            found = await evaluated_since(client, "app-id", Stage.BUILD, sent)
            too_late = await evaluated_since(
                client, "app-id", Stage.BUILD, sent + timedelta(seconds=5)
            )
    assert found is not None
    assert found.report_html_url is not None
    assert found.report_html_url.endswith("/report/ours")
    assert too_late is None


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"HTTPS_PROXY": "http://proxy.corp:3128"}, ("http://proxy.corp:3128", None)),
        (
            {"HTTPS_PROXY": "http://ann:s3cret-pass@proxy.corp:3128"},
            ("http://proxy.corp:3128", ("ann", "s3cret-pass")),
        ),
        ({"HTTP_PROXY": "http://proxy.corp:3128"}, (None, None)),
        ({"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "iq.example.com"}, (None, None)),
        ({"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": ".example.com"}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_the_proxy_from_the_environment_is_read_once_for_the_server(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    expected: tuple[str | None, tuple[str, str] | None],
) -> None:
    """HTTPS_PROXY for an https server (HTTP_PROXY would be for http), unless NO_PROXY names
    it; the proxy's credentials come with it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    proxy = environment_proxy(URL("https://iq.example.com/iq/"))
    assert (str(proxy.with_user(None)) if proxy else None) == expected[0]
    assert ((proxy.user, proxy.password) if proxy and proxy.user else None) == expected[1]
