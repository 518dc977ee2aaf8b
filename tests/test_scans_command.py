"""``iq-promote scans APP``: an application's report history, as JSON off a terminal and as
a table on one, against the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from aiohttp import web
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner, Result
from frontends import serving
from rich.console import Console

from orchestrator.cli.main import main
from orchestrator.cli.scans import scans_table
from orchestrator.iq.models import Stage
from orchestrator.promote.scans import Scan, ScanListing
from orchestrator.simulator import Simulator

ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]


def scans(sim: Simulator, *args: str) -> Result:
    env = {"IQ_SERVER_URL": None, "IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"}
    return CliRunner().invoke(main, ["scans", *args, "--server-url", sim.base_url], env=env)


def test_scans_lists_an_applications_reports_newest_first_as_json_off_a_terminal(
    threaded_simulator_factory: ThreadedSimulatorFactory,
) -> None:
    with threaded_simulator_factory() as sim:
        app = sim.portfolio.applications[0]
        every = invoke_json(scans(sim, app.public_id))
        builds = invoke_json(scans(sim, app.public_id, "--stage", "build", "--limit", "1"))
        history = sim.portfolio.history(app.id)
        latest_build = sim.portfolio.latest(app.id, Stage.BUILD)
        asked = sim.stats.requests_to("report-history")
    assert every["publicId"] == app.public_id
    assert every["applicationId"] == app.id
    assert [r["scanId"] for r in every["reports"]] == [r.scan_id for r in history]
    dates = [datetime.fromisoformat(r["evaluationDate"]) for r in every["reports"]]
    assert dates == sorted(dates, reverse=True)
    first = every["reports"][0]
    assert set(first) == {
        "scanId",
        "stage",
        "evaluationDate",
        "isReevaluation",
        "isForMonitoring",
        "scanTriggerType",
        "reportHtmlUrl",
    }
    assert first["reportHtmlUrl"].startswith(sim.base_url), "absolute, to open in a browser"
    assert latest_build is not None
    assert [r["scanId"] for r in builds["reports"]] == [latest_build.scan_id]
    assert builds["stage"] == "build"
    assert asked == 2


def invoke_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_an_unknown_application_is_a_usage_error_naming_it(
    threaded_simulator_factory: ThreadedSimulatorFactory,
) -> None:
    with threaded_simulator_factory() as sim:
        result = scans(sim, "no-such-app")
        history = sim.stats.requests_to("report-history")
    assert result.exit_code == 2
    assert "application 'no-such-app' is not known to the server" in result.stderr
    assert history == 0


def test_a_bad_limit_or_stage_is_refused_before_any_request(
    threaded_simulator_factory: ThreadedSimulatorFactory,
) -> None:
    with threaded_simulator_factory() as sim:
        too_many = scans(sim, "any-app", "--limit", "500")
        no_stage = scans(sim, "any-app", "--stage", "prod")
        requests = sim.stats.total_requests
    assert too_many.exit_code == 2
    assert no_stage.exit_code == 2
    assert requests == 0


def test_the_table_shows_each_report_as_plain_text() -> None:
    listing = ScanListing(
        "web-portal",
        "internal-id",
        Stage.RELEASE,
        (
            Scan(
                scan_id="896791eb6a484d51bb570dca94dc2c67",
                stage="release",
                evaluation_date=datetime.fromisoformat("2025-01-05T08:30:00+00:00"),
                is_reevaluation=True,
                is_for_monitoring=False,
                scan_trigger_type="[bold]RE_EVALUATE[/bold]",
                report_html_url=None,
            ),
        ),
    )
    console = Console(record=True, width=160)
    console.print(scans_table(listing))
    shown = console.export_text()
    assert "Scans of web-portal at release, newest first" in shown
    for text in ("scan id", "re-evaluation", "monitoring", "896791eb6a484d51bb570dca94dc2c67"):
        assert text in shown
    assert "2025-01-05T08:30:00+00:00" in shown
    assert "yes" in shown
    assert "[bold]RE_EVALUATE[/bold]" in shown, "the server's words are never markup"
    empty = Console(record=True, width=160)
    empty.print(scans_table(ScanListing("web-portal", "internal-id", None, ())))
    assert "no reports" in empty.export_text()


def test_a_report_link_off_the_server_is_left_out_and_the_rest_listed() -> None:
    history = {
        "reports": [
            {
                "applicationId": "a1",
                "stage": "build",
                "scanId": "s2",
                "reportHtmlUrl": "https://elsewhere.example/r/2",
            },
            {
                "applicationId": "a1",
                "stage": "build",
                "scanId": "s1",
                "reportHtmlUrl": "ui/links/application/app/report/1",
            },
        ]
    }
    answers: dict[str, object] = {
        "/api/v2/applications": {"applications": [{"id": "a1", "publicId": "app", "name": "App"}]},
        "/api/v2/reports/applications/a1/history": history,
    }

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(answers[request.path])

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    env = {"IQ_SERVER_URL": None, "IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"}
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(serving(app)) as url,
    ):
        result = CliRunner().invoke(main, ["scans", "app", "--json", "--server-url", url], env=env)
    listing = invoke_json(result)
    links = {r["scanId"]: r["reportHtmlUrl"] for r in listing["reports"]}
    assert links["s2"] is None
    assert links["s1"] == f"{url}ui/links/application/app/report/1"
    assert "scans.link_left_out" in result.stderr
    assert "elsewhere.example" in result.stderr, "the warning says which host"
