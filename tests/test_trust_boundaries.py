"""Trust boundaries, tried as an attacker would, on 127.0.0.1 only: links that point at a thief,
credentials in a mistyped URL, a password that is not UTF-8, a server that echoes the
request into what iq-promote writes, answers too large or without end, long Retry-After, and
ids that would retarget a request."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from aiohttp import web
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner
from frontends import Front, Upstream
from sample_reports import sample_report
from structlog.testing import capture_logs
from test_runner import config_for, entry, manifest

from orchestrator.cli.main import main
from orchestrator.errors import ServerError
from orchestrator.firewall.pages import ResultsRequest, walk_pages
from orchestrator.firewall.query import Owner
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import OwnerType, RepositoryResultsQuery
from orchestrator.iq.retry import Failure, RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import manifest_digest, parse_manifest
from orchestrator.promote.journal import Journal
from orchestrator.render import RenderOutputs
from orchestrator.report.results import Outcome
from orchestrator.runner.run import run
from orchestrator.secrets import SCRUBBER, SecretScrubber
from orchestrator.simulator import Simulator

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]
LIMIT = 30
PASSWORD = "admin123"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@dataclass(slots=True)
class Thief:
    """A listener on another port that records everything anyone sends it."""

    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"path": request.path, **dict(request.headers)})
        return web.json_response({"status": "COMPLETED"})


@asynccontextmanager
async def thief() -> AsyncIterator[Thief]:
    found = Thief()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    found.url = f"http://{host}:{port}/"
    try:
        yield found
    finally:
        await runner.cleanup()


def scanned(sim: Simulator, count: int) -> list[str]:
    return [a.public_id for a in sim.portfolio.applications[:count]]


# --- 1. links to another host -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "link", ["{thief}steal", "//{authority}/steal", "file:///etc/passwd"], ids=str
)
async def test_a_status_url_on_another_host_is_never_requested(
    simulator: Simulator, link: str
) -> None:
    async with thief() as listener:
        authority = listener.url.split("//")[1].rstrip("/")
        elsewhere = link.format(thief=listener.url, authority=authority)

        def send_elsewhere(request: web.Request, upstream: Upstream) -> Upstream:
            if request.path.endswith("/promoteScan") and upstream.status == 200:
                return replace(upstream, body=json.dumps({"statusUrl": elsewhere}).encode())
            return upstream

        apps = scanned(simulator, 2)
        text = manifest(entry(apps, "{from: build, to: build}"))
        async with Front(simulator.base_url, after=send_elsewhere).serving() as front:
            config = config_for(simulator, text)
            assert config.client is not None
            config = replace(config, client=replace(config.client, base_url=front.url))
            with anyio.fail_after(LIMIT):
                report = await run(config)
    assert listener.requests == [], "nothing, and no credentials, went to the thief"
    assert [r.status for r in report.results] == [Outcome.ERROR] * 2
    assert all("another host or outside" in (r.reason or "") for r in report.results)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["report-link", "redirect"])
async def test_report_links_and_redirects_to_another_host_are_not_followed(
    simulator: Simulator, how: str
) -> None:
    async with thief() as listener:

        def foreign_link(request: web.Request, upstream: Upstream) -> Upstream:
            document = json.loads(upstream.body) if "/status/" in request.path else None
            if document and document.get("status") == "COMPLETED":
                document["reportDataUrl"] = listener.url + "raw"
                return replace(upstream, body=json.dumps(document).encode())
            return upstream

        async def redirect(request: web.Request) -> web.StreamResponse | None:
            if "/status/" in request.path:
                raise web.HTTPTemporaryRedirect(location=listener.url + "status")
            return None

        front = (
            Front(simulator.base_url, after=foreign_link)
            if how == "report-link"
            else Front(simulator.base_url, before=redirect)
        )
        text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
        async with front.serving():
            config = config_for(simulator, text, fail_on="critical")
            assert config.client is not None
            config = replace(config, client=replace(config.client, base_url=front.url))
            with anyio.fail_after(LIMIT):
                report = await run(config)
    assert listener.requests == []
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert "another host or outside" in (result.reason or "")


@pytest.mark.anyio
async def test_a_tampered_journal_sends_nothing_to_the_host_it_names(
    simulator: Simulator, tmp_path: Path
) -> None:
    apps = scanned(simulator, 1)
    text = manifest(entry(apps, "{from: build, to: build}"))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    async with thief() as listener:
        with Journal(state) as journal:
            meaning = manifest_digest(parse_manifest(text, source="test.yaml", env={}))
            journal.begin("test.yaml", meaning, datetime.now(UTC))
            journal.submitted((0, 0, apps[0]), listener.url + "status/1", 1)
        config = config_for(simulator, text, state_dir=state, resume=True)
        with anyio.fail_after(LIMIT):
            report = await run(config)
    assert listener.requests == []
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert "another host or outside" in (result.reason or "")


# --- 2, 3. credentials in a URL, a password that is not UTF-8 ---------------------------------


def invoke(*args: str, env: dict[str, str]) -> Any:
    clean = {"IQ_SERVER_URL": None, "IQ_USERNAME": "admin", "IQ_PASSWORD": PASSWORD}
    return CliRunner().invoke(main, list(args), env={**clean, **env})


@pytest.mark.parametrize(
    "url",
    [
        "ftp://admin:s3cret-pass-1@iq.example.com/",
        "https://admin:s3cret-pass-1@iq.example.com/",
        "htp//admin:s3cret-pass-1@iq",
        "http://",
        "http://[::1",
        "iq.example.com",
    ],
)
@pytest.mark.parametrize("where", ["option", "environment"])
def test_a_malformed_server_url_is_a_usage_error_that_never_repeats_it(
    tmp_path: Path, url: str, where: str
) -> None:
    given = tmp_path / "m.yaml"
    given.write_text(manifest(entry(["a"], "{from: build, to: build}")), encoding="utf-8")
    args = ["run", str(given), "--report", str(tmp_path / "r.json")]
    env: dict[str, str] = {}
    if where == "option":
        args += ["--server-url", url]
    else:
        env["IQ_SERVER_URL"] = url
    result = invoke(*args, env=env)
    assert result.exit_code == 2, result.output
    assert "s3cret-pass-1" not in result.output
    assert "Traceback" not in result.output


def test_a_password_that_is_not_utf8_is_refused_without_showing_it(tmp_path: Path) -> None:
    given = tmp_path / "m.yaml"
    given.write_text(manifest(entry(["a"], "{from: build, to: build}")), encoding="utf-8")
    # A byte that is not UTF-8 reaches Python's environment as a lone surrogate.
    secret = "correct-horse-\udcff-battery"
    result = invoke(
        "run", str(given), "--server-url", "http://127.0.0.1:9/", env={"IQ_PASSWORD": secret}
    )
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.output
    assert "correct-horse" not in result.output


def test_a_password_too_short_to_scrub_is_refused(tmp_path: Path) -> None:
    given = tmp_path / "m.yaml"
    given.write_text(manifest(entry(["a"], "{from: build, to: build}")), encoding="utf-8")
    result = invoke(
        "run", str(given), "--server-url", "http://127.0.0.1:9/", env={"IQ_PASSWORD": "abc"}
    )
    assert result.exit_code == 2
    assert "fewer than 8 characters" in result.output


# --- 4. a server that echoes the request -----------------------------------------------------


def test_the_scrubber_replaces_whole_secrets_and_keeps_ordinary_words() -> None:
    scrubber = SecretScrubber()
    scrubber.add("payments", username="admin")
    pair = base64.b64encode(b"admin:payments").decode()
    assert scrubber.scrub("payments-api and payments_v2 and paymentsx") == (
        "payments-api and payments_v2 and paymentsx"
    )
    assert scrubber.scrub("password=payments&x") == "password=***&x"
    assert scrubber.scrub(f"Authorization: Basic {pair}") == "Authorization: Basic ***"
    assert scrubber.scrub('{"p": "payments"}') == '{"p": "***"}'
    quoted = SecretScrubber()
    quoted.add('pa"ss wo&rd<1>')
    assert quoted.scrub('{"p": "pa\\"ss wo&rd<1>"}') == '{"p": "***"}'  # as JSON writes it
    assert quoted.scrub("pa&quot;ss wo&amp;rd&lt;1&gt;") == "***"  # as HTML writes it
    assert quoted.scrub("pa%22ss%20wo%26rd%3C1%3E") == "***"  # as a URL carries it


def test_a_scrubbed_report_is_copied_only_where_a_secret_was() -> None:
    """A large report holding no secret is not rebuilt (its memory would double at the end
    of a night); one holding some is scrubbed in every nested string it holds."""
    scrubber = SecretScrubber(["correct-horse-battery"])
    report = sample_report(size=20)
    assert scrubber.scrub_model(report) is report
    echoed = report.results[3].model_copy(update={"reason": "rejected correct-horse-battery"})
    leaky = report.model_copy(
        update={"results": [*report.results[:3], echoed, *report.results[4:]]}
    )
    scrubbed = scrubber.scrub_model(leaky)
    assert scrubbed.results[3].reason == "rejected ***"
    assert scrubbed.results[3].status is echoed.status
    assert all(a is b for a, b in zip(scrubbed.results[4:], leaky.results[4:], strict=True))
    assert "correct-horse-battery" not in scrubbed.to_json()
    assert leaky.results[3].reason == "rejected correct-horse-battery", "the original is kept"


@pytest.mark.anyio
async def test_an_echoing_server_leaves_no_secret_in_anything_written(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    password = "payments"  # also a word in an application's public id
    async with simulator_factory(
        password=password, extra_applications=(("payments-api", None),)
    ) as sim:

        async def echo(request: web.Request) -> web.StreamResponse | None:
            if request.path.endswith("/promoteScan"):
                said = f"bad request {dict(request.headers)} password={password}"
                return web.Response(status=400, text=said)
            return None

        text = manifest(entry(["payments-api"], "{from: build, to: build}"))
        state = tmp_path / "state"
        outputs = RenderOutputs(
            junit=tmp_path / "r.xml",
            markdown=tmp_path / "r.md",
            metrics=tmp_path / "r.prom",
            html=tmp_path / "r.html",
        )
        async with Front(sim.base_url, before=echo).serving() as front:
            config = config_for(
                sim,
                text,
                password=password,
                state_dir=state,
                report_path=tmp_path / "r.json",
                outputs=outputs,
            )
            assert config.client is not None
            config = replace(config, client=replace(config.client, base_url=front.url))
            SCRUBBER.add(password, username="admin")
            with capture_logs() as logs, anyio.fail_after(LIMIT):
                report = await run(config)
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert "bad request" in (result.reason or "")
    assert_no_secret_written(tmp_path, password)
    logged = json.dumps(logs, default=str)
    assert "password=payments" not in logged
    assert "payments-api" in logged, "the word is kept whole"
    assert "***-api" not in logged


def assert_no_secret_written(folder: Path, password: str) -> None:
    """No file under ``folder`` holds the password as a value, or the Basic pair."""
    pair = base64.b64encode(f"admin:{password}".encode()).decode().encode()
    written = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert set(written) >= {"r.json", "r.xml", "r.md", "r.prom", "r.html", "journal.sqlite3"}
    for name, data in written.items():
        assert pair not in data, name
        assert f"password={password}".encode() not in data, name
    assert b"payments-api" in written["r.json"], "the word is kept whole"


# --- 12. answers too large ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_status_answer_too_large_ends_that_promotion_unread(simulator: Simulator) -> None:
    big = 48 << 20

    async def flood(request: web.Request) -> web.StreamResponse | None:
        if "/status/" in request.path:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            chunk = b" " * (1 << 20)
            try:
                for _ in range(big // len(chunk)):
                    await response.write(chunk)
            except (ConnectionResetError, RuntimeError):
                pass  # the client stopped reading, as it should
            return response
        return None

    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    async with Front(simulator.base_url, before=flood).serving() as front:
        config = config_for(simulator, text)
        assert config.client is not None
        config = replace(config, client=replace(config.client, base_url=front.url))
        with anyio.fail_after(LIMIT):
            report = await run(config)
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert "larger than 1 MiB" in (result.reason or "")


# --- 13. pages without end ------------------------------------------------------------------

ROW = {
    "threatLevel": 9,
    "policyName": "Security-High",
    "repositoryManagerId": "m",
    "repositoryId": "r",
    "componentDisplayText": "ant : ant : 1.6.1",
    "pathname": "ant/ant/1.6.1/ant-1.6.1.jar",
    "componentIdentifier": {"format": "maven", "coordinates": {"artifactId": "ant"}},
    "hash": "684aeca90db2a55234f5",
    "matchStateId": "exact",
    "quarantineTime": None,
    "waived": False,
}


@asynccontextmanager
async def endless(*, same_rows: bool) -> AsyncIterator[str]:
    """A Repository Results endpoint that always says there is another page."""

    async def results(request: web.Request) -> web.Response:
        page = (await request.json())["page"]
        row = ROW if same_rows else {**ROW, "hash": f"{page:020x}"}
        return web.json_response({"repositoryResultsDetails": [row], "hasNextPage": True})

    app = web.Application()
    app.router.add_post("/api/experimental/repositories/{kind}/{owner}/results/details", results)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


@pytest.mark.anyio
@pytest.mark.parametrize("same_rows", [True, False], ids=["repeated", "endless"])
async def test_pages_without_end_are_stopped(same_rows: bool) -> None:
    async with endless(same_rows=same_rows) as url:
        settings = ClientSettings(url, Credentials("admin", PASSWORD))
        request = ResultsRequest(
            owner=Owner(OwnerType.REPOSITORY_CONTAINER, "REPOSITORY_CONTAINER_ID"),
            query=RepositoryResultsQuery(),
            max_pages=50,
        )
        pages = []

        async def walk() -> None:
            async with IqClient(settings) as client:
                async for page in walk_pages(client, request):
                    pages.append(page.number)  # noqa: PERF401 - counted before the walk stops

        with anyio.fail_after(LIMIT), pytest.raises(ServerError) as stopped:
            await walk()
    assert ("never end" if same_rows else "past 50 pages") in str(stopped.value)
    assert len(pages) == (1 if same_rows else 50)


def test_an_export_that_never_ends_exits_non_zero_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(endless(same_rows=True)) as url,
    ):
        result = invoke(
            "repository-results", "--format", "csv", "-o", str(out), "--server-url", url, env={}
        )
    assert result.exit_code == 3, result.output
    assert "never end" in result.output
    assert list(tmp_path.iterdir()) == [], "no file, no temporary file"


# --- 14. a long Retry-After ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_retry_after_past_the_requests_deadline_ends_it_at_once(
    simulator: Simulator,
) -> None:
    async def throttle(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/promoteScan"):
            return web.Response(status=429, headers={"Retry-After": "100000"})
        return None

    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    async with Front(simulator.base_url, before=throttle).serving() as front:
        config = config_for(simulator, text)
        assert config.client is not None
        policy = RetryPolicy(deadline=5.0, max_retry_after=120.0)
        config = replace(config, client=replace(config.client, base_url=front.url, retry=policy))
        with anyio.fail_after(LIMIT):
            report = await run(config)
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert front.seen.count(("POST", front.seen[-1][1])) == 1, "not retried past the deadline"


def test_retry_after_is_bounded_and_the_deadline_holds() -> None:
    policy = RetryPolicy(max_retry_after=120.0)
    delay = policy.next_delay(1, Failure(429, retry_after=1_000_000))
    assert delay is not None
    assert delay <= 120.0


# --- 15. ids that would retarget a request ----------------------------------------------------


@pytest.mark.anyio
async def test_an_internal_id_is_one_path_segment_whatever_it_holds(simulator: Simulator) -> None:
    evil = "../../../api/v2/config?property=x#"
    target = simulator.portfolio.applications[0]

    def rename(request: web.Request, upstream: Upstream) -> Upstream:
        if request.path.endswith("/api/v2/applications"):
            document = json.loads(upstream.body)
            for app in document["applications"]:
                if app["id"] == target.id:
                    app["id"] = evil
            return replace(upstream, body=json.dumps(document).encode())
        return upstream

    text = manifest(entry([target.public_id], "{from: build, to: build}"))
    async with Front(simulator.base_url, after=rename).serving() as front:
        config = config_for(simulator, text)
        assert config.client is not None
        config = replace(config, client=replace(config.client, base_url=front.url))
        with anyio.fail_after(LIMIT):
            report = await run(config)
    posts = [path for method, path in front.seen if method == "POST"]
    assert posts == [
        "/api/v2/evaluation/applications/..%2F..%2F..%2Fapi%2Fv2%2Fconfig%3Fproperty=x%23"
        "/promoteScan"
    ]
    assert not [path for _, path in front.seen if path.startswith("/api/v2/config")]
    assert report.results[0].status is Outcome.ERROR
