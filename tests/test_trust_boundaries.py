"""Trust boundaries, tried as an attacker would, on 127.0.0.1 only: links that point at a thief,
credentials in a mistyped URL, a password that is not UTF-8, a server that echoes the
request into what iq-promote writes, answers too large or without end, long Retry-After, and
ids that would retarget a request."""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
import pytest
import structlog
from aiohttp import web
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner
from frontends import After, Before, Front, RefusingProxy, SharedHost, Upstream, serving
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import BaseModel
from sample_reports import sample_report
from test_runner import config_for, entry, manifest
from yarl import URL

from orchestrator.cli.main import main
from orchestrator.errors import ServerError
from orchestrator.firewall.pages import ResultsRequest, walk_pages
from orchestrator.firewall.query import Owner
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import OwnerType, RepositoryContainer, RepositoryResultsQuery
from orchestrator.iq.retry import Failure, RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials, _describe
from orchestrator.logs import configure_logging
from orchestrator.manifest.model import manifest_digest, parse_manifest
from orchestrator.promote.journal import Journal
from orchestrator.render import RenderOutputs
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.report.run_report import RunReport
from orchestrator.runner.run import run
from orchestrator.secrets import SCRUBBER, SecretScrubber, forms
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


def every_rendering(folder: Path) -> RenderOutputs:
    """Every rendering of a run, written into ``folder``."""
    return RenderOutputs(
        junit=folder / "r.xml",
        markdown=folder / "r.md",
        metrics=folder / "r.prom",
        html=folder / "r.html",
    )


async def run_behind(
    simulator: Simulator,
    text: str,
    *,
    before: Before | None = None,
    after: After | None = None,
    **options: Any,
) -> RunReport:
    """The manifest ``text`` run (configured with ``options``) through a front before the
    simulator, changed by the hooks."""
    async with Front(simulator.base_url, before=before, after=after).serving() as front:
        config = config_for(simulator, text, **options)
        assert config.client is not None
        config = replace(config, client=replace(config.client, base_url=front.url))
        with anyio.fail_after(LIMIT):
            return await run(config)


# --- 1. links to another host -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "link",
    [
        "{thief}steal",
        "//{authority}/steal",
        "file:///etc/passwd",
        "http://[::1",
        "http://h:99999/x",
    ],
    ids=str,
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
        report = await run_behind(simulator, text, after=send_elsewhere)
    assert listener.requests == [], "nothing, and no credentials, went to the thief"
    assert [r.status for r in report.results] == [Outcome.ERROR] * 2
    said = "cannot be read" if "[" in link or "99999" in link else "another host or outside"
    assert all(said in (r.reason or "") for r in report.results)


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


SECRETS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs"), exclude_characters="*"),
    min_size=8,
    max_size=24,
)
"""Passwords as people choose them: any printable text but ``*`` (what replaces them)."""
WORDY_SECRETS = st.from_regex(r"[A-Za-z0-9]{8,24}", fullmatch=True)
BEFORE = st.sampled_from(["", " ", "password ", "pw=", "'", '"', "(", "[", "-", ".", "…", ": "])
"""What may come before a secret in a sentence, never a word (nor a word and a ``.``)."""
AFTER = st.sampled_from(
    ["", ".", ". Next", ".\n", "...", ",", ";", ":", "!", "?", ")", "'", '"', " ", "-", " - x"]
)
"""Sentence punctuation and the end of the text: a ``.`` or ``-`` no word follows."""


@given(secret=SECRETS, before=BEFORE, after=AFTER)
@settings(max_examples=300)
def test_a_secret_that_ends_a_sentence_is_scrubbed(secret: str, before: str, after: str) -> None:
    scrubber = SecretScrubber()
    scrubber.add(secret, username="admin")
    encoded = base64.b64encode(f"admin:{secret}".encode()).decode()
    for form in (*forms(secret), encoded):
        scrubbed = scrubber.scrub(f"bad {before}{form}{after}")
        assert form not in scrubbed, (form, scrubbed)
        assert scrubbed == f"bad {before}***{after}"


@given(
    secret=WORDY_SECRETS,
    glue=st.sampled_from(["-", ".", "_", ""]),
    word=st.sampled_from(["api", "v2", "x", "9"]),
)
def test_a_secret_inside_a_longer_word_is_left_whole(secret: str, glue: str, word: str) -> None:
    scrubber = SecretScrubber()
    scrubber.add(secret, username="admin")
    for text in (
        f"{secret}{glue}{word}",
        f"{word}{glue}{secret}",
        f"{word}{glue}{secret}{glue}{word}",
    ):
        assert scrubber.scrub(f"app {text}.") == f"app {text}."


def test_a_basic_header_is_scrubbed_whatever_punctuation_follows() -> None:
    scrubber = SecretScrubber()
    scrubber.add("s3cretpass", username="admin")
    pair = base64.b64encode(b"admin:s3cretpass").decode()
    assert pair.endswith("==")
    for after in ("", ".", ",", "-", "_", ")", "'", "&x=1"):
        assert scrubber.scrub(f"Basic {pair}{after}") == f"Basic ***{after}"
    assert scrubber.scrub(f"Basic x{pair}") == f"Basic x{pair}", "inside a longer base64 token"
    assert scrubber.scrub("bad password s3cretpass.") == "bad password ***."


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


ODD_PASSWORD = 'Zorblax"7 <&>%/'
"""A password every escape changes (JSON, URL, HTML), around a core none does."""


def every_form(password: str) -> dict[str, str]:
    """Each form ``password`` may take in what is written, and what is left of it whatever
    else escapes it (an XML writer's own escaping, say)."""
    pair = base64.b64encode(f"admin:{password}".encode()).decode()
    return {
        "raw": password,
        "JSON": json.dumps(password)[1:-1],
        "URL": quote(password, safe=""),
        "HTML": html.escape(password),
        "Basic pair": pair,
        "Basic pair in a URL": quote(pair, safe=""),
        "core": re.split(r"[^A-Za-z0-9]", password)[0],
    }


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


def test_what_the_server_sent_beyond_the_declared_fields_is_scrubbed() -> None:
    """Wire models keep the fields a newer server adds; a secret echoed in one of them (or in
    its name) is scrubbed like any other."""
    scrubber = SecretScrubber(["correct-horse-battery"])
    container = RepositoryContainer.model_validate(
        {
            "id": "1",
            "name": "correct-horse-battery",
            "description": "leak correct-horse-battery here",
            "correct-horse-battery": "x",
        }
    )
    scrubbed = scrubber.scrub_model(container)
    assert "correct-horse-battery" not in scrubbed.model_dump_json()
    assert "correct-horse-battery" not in scrubber.dump_json(container)
    assert scrubbed.model_dump(by_alias=True)["description"] == "leak *** here"
    assert "correct-horse-battery" in container.model_dump_json(), "the original is kept"


class _Row(BaseModel):
    name: str
    tags: list[str] = []


class _Rows(BaseModel):
    """A model of models, lists and keys, as a firewall summary is."""

    rows: list[_Row]
    counts: dict[str, int] = {}


@given(
    secret=SECRETS,
    before=st.sampled_from(["", "\n", "\t", '"', "\\", "x\n", " "]),
    after=AFTER,
    where=st.sampled_from(["reason", "key", "list", "nested"]),
)
@settings(max_examples=200)
def test_a_model_is_looked_at_by_its_json_and_no_secret_slips_past(
    secret: str, before: str, after: str, where: str
) -> None:
    """What JSON escapes beside a secret (a newline becomes ``\\n``, a word character
    before it) does not hide it from the look at a model's JSON, wherever in the model."""
    scrubber = SecretScrubber()
    scrubber.add(secret, username="admin")
    said = f"bad {before}{secret}{after}"
    scrubbed = scrubber.scrub(said)
    assert scrubbed != said
    report = sample_report(size=4)
    rows = _Rows(rows=[_Row(name="a"), _Row(name="b", tags=["x"])], counts={"p": 1})
    assert scrubber.scrub_model(rows) is rows
    if where == "reason":
        leaky = report.results[2].model_copy(update={"reason": said})
        whole = report.model_copy(update={"results": [*report.results[:2], leaky]})
        assert scrubber.scrub_model(whole).results[2].reason == scrubbed
        assert scrubber.scrub_model(leaky).reason == scrubbed
        assert json.loads(scrubber.dump_json(leaky))["reason"] == scrubbed
        return
    placed = {
        "key": _Rows(rows=[], counts={said: 1}),
        "list": _Rows(rows=[_Row(name="a", tags=["x", said])]),
        "nested": _Rows(rows=[_Row(name="a"), _Row(name=said)]),
    }[where]

    def found(m: _Rows) -> str:
        return {
            "key": lambda: next(iter(m.counts)),
            "list": lambda: m.rows[0].tags[1],
            "nested": lambda: m.rows[1].name,
        }[where]()

    assert found(scrubber.scrub_model(placed)) == scrubbed
    assert found(_Rows.model_validate_json(scrubber.dump_json(placed))) == scrubbed


@pytest.mark.anyio
@pytest.mark.parametrize("password", ["payments", ODD_PASSWORD], ids=["a-word", "odd"])
async def test_an_echoing_server_leaves_no_secret_in_anything_written(
    simulator_factory: SimulatorFactory, tmp_path: Path, password: str
) -> None:
    """The server echoes, first thing in its error, the password in every form and the
    request's headers (its Basic pair): none of it reaches the log lines as rendered, the
    report, the journal or any rendering; ``payments-api`` stays whole."""
    forms_of = every_form(password)
    async with simulator_factory(
        password=password, extra_applications=(("payments-api", None),)
    ) as sim:

        async def echo(request: web.Request) -> web.StreamResponse | None:
            if request.path.endswith("/promoteScan"):
                echoed = " ".join(f"{k}={v}" for k, v in forms_of.items() if k != "core")
                said = f"{echoed} bad request {dict(request.headers)}"
                return web.Response(status=400, text=said)
            return None

        text = manifest(entry(["payments-api"], "{from: build, to: build}"))
        state = tmp_path / "state"
        outputs = every_rendering(tmp_path)
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
            stderr = io.StringIO()
            configure_logging(level="info", fmt="json", stream=stderr)
            with anyio.fail_after(LIMIT):
                report = await run(config)
    logged = stderr.getvalue()
    written = files_under(tmp_path)
    assert set(written) >= {"r.json", "r.xml", "r.md", "r.prom", "r.html", "journal.sqlite3"}
    written |= {"stderr": logged.encode(), "the returned report": report.to_json().encode()}
    for name, data in written.items():
        rest = data.replace(b"payments-api", b"")
        for form, value in forms_of.items():
            assert value.encode() not in rest, f"{form} form of the password in {name}"
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert (result.reason or "").startswith("IQ Server rejected"), result.reason
    assert "raw=*** JSON=***" in (result.reason or ""), "the echo reached the report"
    assert "raw=*** JSON=***" in logged, "the echo reached the log lines"
    assert b"payments-api" in written["r.json"], "the word is kept whole"
    assert b"***-api" not in written["r.json"]
    assert "***-api" not in logged


def test_a_status_url_that_echoes_a_secret_is_journalled_scrubbed(tmp_path: Path) -> None:
    """A run killed while it polls leaves only the row of the submission: the status URL the
    server gave, with the password it echoed, is written scrubbed there too."""
    password = "journal-echo-secret"
    SCRUBBER.add(password, username="admin")
    with Journal(tmp_path) as journal:
        journal.begin(str(tmp_path / "m.yaml"), "digest", datetime.now(UTC))
        key = (0, 0, "payments-api")
        anyio.run(journal.intent, key)
        journal.submitted(key, f"api/v2/evaluation/applications/x/status/1?echo={password}", 1)
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        [(url,)] = db.execute("SELECT status_url FROM steps").fetchall()
    assert url == "api/v2/evaluation/applications/x/status/1?echo=***"
    for name, data in files_under(tmp_path).items():
        assert password.encode() not in data, name


@pytest.mark.anyio
@pytest.mark.parametrize("kept", [12, 20, 27])
@pytest.mark.parametrize("echoed", ["pair", "password"])
async def test_a_secret_echoed_across_the_cut_of_an_error_leaves_no_part_of_it(
    echoed: str, kept: int
) -> None:
    """An error answer is cut for its message; a password, or a Basic pair (whose start
    decodes to the start of the password), that the cut splits leaves no part of itself."""
    password = "Quixotic-9-lantern"
    pair = base64.b64encode(f"admin:{password}".encode()).decode()
    SCRUBBER.add(password, username="admin")
    # What the cut keeps of it, but for the base64 of "admin:", which tells nothing.
    secret, part = (pair, pair[8:kept]) if echoed == "pair" else (password, password[:kept])

    async def refuse(request: web.Request) -> web.StreamResponse:
        filler = "x" + " " * (300 - kept - 1)
        return web.Response(status=400, text=f"{filler}{secret} rejected")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    async with serving(app) as url:
        settings = ClientSettings(url, Credentials("admin", password))
        async with IqClient(settings) as client:
            with pytest.raises(ServerError) as caught:
                await client.organizations()
    said = str(caught.value)
    assert "HTTP 400" in said
    assert part not in said


# --- 5. a proxy that refuses its credentials, or echoes them ---------------------------------

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def with_credentials(proxy_url: str, password: str) -> str:
    return proxy_url.replace("http://", f"http://puser:{password}@", 1)


def proxy_pair(password: str) -> str:
    return base64.b64encode(f"puser:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("where", "scheme"),
    [("option", "https"), ("manifest", "http"), ("HTTPS_PROXY", "https"), ("HTTP_PROXY", "http")],
)
def test_a_proxy_that_refuses_its_credentials_ends_the_run_at_once_and_never_shows_them(
    tmp_path: Path, where: str, scheme: str
) -> None:
    """Through a tunnel (CONNECT, to an https:// server) or not, a 407 is asked once, ends the
    run (exit 3) saying to check the proxy's credentials, and neither the password nor the
    Basic pair the proxy was sent reaches the log lines as rendered or the report."""
    password = f"proxy-secret-{where}"  # one per case: the scrubber is the process's
    pair = proxy_pair(password)
    report = tmp_path / "r.json"
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(RefusingProxy().serving()) as proxy,
    ):
        proxy_url = with_credentials(proxy.url, password)
        text = manifest(entry(["a"], "{from: build, to: build}"))
        if where == "manifest":
            text = text.replace("version: 1\n", f"version: 1\nserver:\n  proxy: {proxy_url}\n")
        given = tmp_path / "m.yaml"
        given.write_text(text, encoding="utf-8")
        args = ["run", str(given), "--server-url", f"{scheme}://iq.example.invalid/"]
        args += ["--report", str(report), "--state-dir", str(tmp_path / "state")]
        args += ["--log-format", "json", "--log-level", "info"]
        env: dict[str, str | None] = dict.fromkeys(PROXY_VARIABLES)
        if where == "option":
            args += ["--proxy", proxy_url]
        elif where != "manifest":
            env[where] = proxy_url
        result = CliRunner().invoke(
            main, args, env={"IQ_USERNAME": "admin", "IQ_PASSWORD": PASSWORD, **env}
        )
        asked = list(proxy.asked)
    written = result.output + report.read_text(encoding="utf-8")
    assert password not in written
    assert pair not in written
    assert result.exit_code == 3, result.output
    assert "refused the credentials of user 'puser' (HTTP 407)" in result.output
    assert "check the user and password in --proxy" in result.output
    assert "http.retry" not in result.output
    method = "CONNECT" if scheme == "https" else "GET"
    assert asked == [(method, asked[0][1], f"Basic {pair}")], "one attempt, with credentials"
    assert json.loads(report.read_text(encoding="utf-8"))["exitCode"] == 3


@pytest.mark.anyio
async def test_what_a_proxy_echoes_of_a_python_callers_credentials_is_scrubbed(
    simulator: Simulator, tmp_path: Path
) -> None:
    """Settings a Python caller builds (no command line read them) name a proxy with a
    password; the proxy's error page echoes the Proxy-Authorization it was sent."""
    password = "python-callers-proxy"
    pair = proxy_pair(password)
    async with RefusingProxy(status=400).serving() as proxy:
        config = config_for(
            simulator,
            manifest(entry(scanned(simulator, 1), "{from: build, to: build}")),
            report_path=tmp_path / "r.json",
        )
        assert config.client is not None
        proxied = replace(config.client, proxy=with_credentials(proxy.url, password))
        stderr = io.StringIO()
        configure_logging(level="info", fmt="json", stream=stderr)
        with anyio.fail_after(LIMIT), pytest.raises(ServerError) as caught:
            await run(replace(config, client=proxied))
    assert [authorization for *_, authorization in proxy.asked] == [f"Basic {pair}"]
    said = str(caught.value)
    assert "'Proxy-Authorization': 'Basic ***'" in said, "the echo reached the message"
    for text in (said, stderr.getvalue(), (tmp_path / "r.json").read_text(encoding="utf-8")):
        assert pair not in text
        assert password not in text


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_proxy_without_credentials_is_never_sent_the_servers(tmp_path: Path, scheme: str) -> None:
    """A proxy given no credentials of its own is asked without any: IQ's are never offered
    to it as its Proxy-Authorization (in the clear, before a tunnel to an https:// server),
    nor, through a tunnel, as anything."""
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(RefusingProxy().serving()) as proxy,
    ):
        given = tmp_path / "m.yaml"
        given.write_text(manifest(entry(["a"], "{from: build, to: build}")), encoding="utf-8")
        args = ["run", str(given), "--server-url", f"{scheme}://iq.example.invalid/"]
        args += ["--proxy", proxy.url, "--state-dir", str(tmp_path / "state")]
        args += ["--report", str(tmp_path / "r.json")]
        env: dict[str, str | None] = dict.fromkeys(PROXY_VARIABLES)
        result = CliRunner().invoke(
            main, args, env={"IQ_USERNAME": "admin", "IQ_PASSWORD": PASSWORD, **env}
        )
        asked = list(proxy.asked)
    assert result.exit_code == 3, result.output
    assert "refused to serve without credentials (HTTP 407)" in result.output
    assert [authorization for *_, authorization in asked] == [None]


def test_an_error_naming_a_url_never_shows_its_credentials() -> None:
    """Whatever put credentials in a URL an error names (a proxy's), its description, which
    messages and log events carry, leaves them out."""
    proxy = URL("http://puser:describe-secret@127.0.0.1:3128")
    info = aiohttp.RequestInfo(proxy, "CONNECT", CIMultiDictProxy(CIMultiDict()), proxy)
    error = aiohttp.ClientHttpProxyError(info, (), status=407, message="Proxy Authentication")
    described = _describe(error)
    assert "127.0.0.1:3128" in described
    assert "describe-secret" not in described
    assert "puser" not in described


@pytest.mark.parametrize(
    ("proxy", "said"),
    [
        ("htp//puser:malformed-pw-1@proxy", "must be an http:// URL with a host"),
        ("http://puser:malformed-pw-1@", "must be an http:// URL with a host"),
        ("http://puser:short@127.0.0.1:9/", "fewer than 8 characters"),
    ],
)
def test_a_proxy_that_cannot_be_used_is_refused_without_repeating_it(
    tmp_path: Path, proxy: str, said: str
) -> None:
    given = tmp_path / "m.yaml"
    given.write_text(manifest(entry(["a"], "{from: build, to: build}")), encoding="utf-8")
    result = invoke(
        "run", str(given), "--server-url", "http://127.0.0.1:9/", "--proxy", proxy, env={}
    )
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert "malformed-pw-1" not in result.output
    assert "short" not in result.output.replace("too short", "")


# --- 12. answers too large ---------------------------------------------------------------------


async def one_promotion_behind(simulator: Simulator, before: Before) -> PromotionResult:
    """What became of one promotion run through a front answering in the simulator's place
    with ``before``."""
    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    [result] = (await run_behind(simulator, text, before=before)).results
    return result


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

    result = await one_promotion_behind(simulator, flood)
    assert result.status is Outcome.ERROR
    assert "larger than 1 MiB" in (result.reason or "")


@pytest.mark.anyio
async def test_a_small_compressed_answer_that_inflates_past_the_limit_is_not_read(
    simulator: Simulator,
) -> None:
    """Its Content-Length is small, but what it inflates to is what is held: the bound is
    on the inflated bytes."""
    bomb = gzip.compress(b" " * (48 << 20))

    async def inflate(request: web.Request) -> web.StreamResponse | None:
        if "/status/" in request.path:
            return web.Response(
                body=bomb,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        return None

    result = await one_promotion_behind(simulator, inflate)
    assert len(bomb) < 1 << 20
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
    async with serving(app) as url:
        yield url


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


@pytest.mark.anyio
async def test_an_answer_that_never_comes_ends_its_request_at_the_deadline(
    simulator: Simulator,
) -> None:
    """The status answer is held far past the deadline (the read timeout is longer still):
    the request ends at the deadline, its attempt under way included, and that promotion is
    an ERROR saying so; the run ends long before the answer would have come."""

    async def hold(request: web.Request) -> web.StreamResponse | None:
        if "/status/" in request.path:
            await anyio.sleep(4)  # four times the deadline; the server's cleanup waits for it
        return None

    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    async with Front(simulator.base_url, before=hold).serving() as front:
        config = config_for(simulator, text)
        assert config.client is not None
        client = replace(
            config.client, base_url=front.url, retry=RetryPolicy(deadline=1.0), read_timeout=LIMIT
        )
        with anyio.fail_after(LIMIT / 2):
            report = await run(replace(config, client=client))
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert result.reason is not None
    assert "took more than 1 s" in result.reason


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


@pytest.mark.anyio
@pytest.mark.parametrize(
    "odd", ["\u00b2", "\u00b9\u00b2\u00b3", "\u0663"], ids=["sup2", "sup123", "arabic3"]
)
async def test_a_retry_after_of_digits_that_are_not_ascii_is_ignored(
    simulator: Simulator, odd: str
) -> None:
    """``str.isdigit`` also takes superscripts and other scripts' digits, which ``float`` may
    not read: such a Retry-After is unusable, not a crash of the run."""
    throttled: list[str] = []

    async def throttle(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/promoteScan") and not throttled:
            throttled.append(request.path)
            return web.Response(status=429, headers={"Retry-After": odd})
        return None

    result = await one_promotion_behind(simulator, throttle)
    assert throttled, "the odd Retry-After was answered"
    assert result.status is Outcome.COMPLETED, result.reason


# --- 16. JSON nested past what a parser recurses into ----------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000
"""Valid JSON, nested deeper than Python's json module recurses: a RecursionError, not a
ValueError, unless it is caught as one."""


@asynccontextmanager
async def nesting() -> AsyncIterator[str]:
    """A server whose every listing is nested past any parser's depth."""

    async def answer(request: web.Request) -> web.Response:
        if request.path.endswith("/repositoryContainer"):
            return web.json_response({"id": "REPOSITORY_CONTAINER_ID", "name": "container"})
        return web.Response(body=NESTED, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize("command", [["repositories", "--json"], ["scans", "some-app"]], ids=str)
def test_a_listing_nested_past_any_depth_is_a_server_error_not_a_crash(
    command: list[str],
) -> None:
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(nesting()) as url,
    ):
        result = invoke(*command, "--server-url", url, env={})
    assert result.exit_code == 3, result.output
    assert "not JSON" in result.output
    assert "internal error" not in result.output


# --- 17. a secret echoed where the report keeps it as a key -----------------------------------


@pytest.mark.anyio
async def test_a_secret_echoed_in_firewall_rows_never_reaches_the_report_or_its_renderings(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    """The firewall summary counts rows by policy name and keeps each quarantined row's
    coordinates: both are keys of the report's mappings, and are scrubbed as its values are."""
    password = ODD_PASSWORD
    forms_of = every_form(password)
    async with simulator_factory(password=password) as sim:

        def echo(request: web.Request, upstream: Upstream) -> Upstream:
            if not request.path.endswith("/results/details") or upstream.status != 200:
                return upstream
            document = json.loads(upstream.body)
            for row in document["repositoryResultsDetails"]:
                row["policyName"] = f"{password} {forms_of['Basic pair']}"
                identifier = row["componentIdentifier"]
                identifier["coordinates"] = {
                    password: forms_of["JSON"],
                    **identifier["coordinates"],
                }
                row["quarantineTime"] = row.get("quarantineTime") or 1_700_000_000_000
            return replace(upstream, body=json.dumps(document).encode())

        text = manifest(entry(scanned(sim, 1), "{from: build, to: build}"))
        text += "repositoryResults: {pageSize: 50, quarantinedLimit: 5}\n"
        outputs = every_rendering(tmp_path)
        async with Front(sim.base_url, after=echo).serving() as front:
            config = config_for(
                sim, text, password=password, report_path=tmp_path / "r.json", outputs=outputs
            )
            assert config.client is not None
            config = replace(config, client=replace(config.client, base_url=front.url))
            SCRUBBER.add(password, username="admin")
            with anyio.fail_after(LIMIT):
                report = await run(config)
    assert report.firewall is not None, report.firewall_error
    written = files_under(tmp_path) | {"the returned report": report.to_json().encode()}
    for name, data in written.items():
        for form, value in forms_of.items():
            assert value.encode() not in data, f"{form} form of the password in {name}"
    assert "***" in json.dumps(report.firewall.by_policy), "the rows were echoed into"


# --- 18. what the listing commands print -----------------------------------------------------


@asynccontextmanager
async def echoing_listings(said: str) -> AsyncIterator[str]:
    """A server that names everything it lists ``said``: the container, a manager and its
    repository, an application, and a report's trigger and scan id."""
    answers: dict[str, object] = {
        "/api/v2/firewall/repositoryContainer": {"id": "c", "name": said},
        "/api/v2/firewall/repositoryManagers": {
            "repositoryManagers": [{"id": "m1", "name": said, "productName": said}]
        },
        "/api/v2/firewall/repositories/configuration/m1": {
            "repositories": [{"repositoryId": "r1", "publicId": said, "format": said}]
        },
        "/api/v2/applications": {"applications": [{"id": "a1", "publicId": "app", "name": said}]},
        "/api/v2/reports/applications/a1/history": {
            "reports": [
                {
                    "applicationId": "a1",
                    "stage": "build",
                    "scanId": said,
                    "scanTriggerType": said,
                    "reportHtmlUrl": "ui/links/application/app/report/1",
                }
            ]
        },
    }

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(answers[request.path])

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize(
    "command", [["repositories", "--json"], ["scans", "app", "--json"]], ids=str
)
def test_what_the_listing_commands_print_holds_no_secret_a_server_echoed(
    command: list[str],
) -> None:
    forms_of = every_form(ODD_PASSWORD)
    said = f"{ODD_PASSWORD} {forms_of['Basic pair']}"
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(echoing_listings(said)) as url,
    ):
        result = invoke(*command, "--server-url", url, env={"IQ_PASSWORD": ODD_PASSWORD})
    assert result.exit_code == 0, result.output
    assert "***" in result.stdout
    for form, value in forms_of.items():
        assert value not in result.output, f"{form} form of the password printed"


# --- 19. a report's policy data that pages on and on -------------------------------------------


@pytest.mark.anyio
async def test_policy_data_that_pages_on_and_on_is_bounded_by_the_promotion_timeout(
    simulator: Simulator,
) -> None:
    """Each page brings one component and says there are 10,000, each a little late: within
    every bound a request has, but reading them all would hold the run's end for hours."""
    pages: list[str] = []

    async def paging(request: web.Request) -> web.StreamResponse | None:
        if not request.path.endswith("/policy"):
            return None
        pages.append(request.query.get("page", ""))
        await anyio.sleep(0.05)
        component = {"hash": f"{len(pages):040x}", "violations": []}
        return web.json_response(
            {"components": [component], "page": len(pages), "pageCount": 10_000}
        )

    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    report = await run_behind(
        simulator, text, before=paging, promotion_timeout=2.0, fetch_results=True
    )
    [result] = report.results
    assert result.status is Outcome.COMPLETED, result.reason
    assert pages, "the policy data was asked for"
    assert result.violations is None
    assert "not read within 2 s" in (result.violations_unchecked or "")


@pytest.mark.anyio
async def test_a_firewall_that_pages_on_and_on_is_bounded_by_the_promotion_timeout(
    simulator: Simulator,
) -> None:
    """Every page of Repository Results is new and says another follows, each a little late:
    the summary at the run's end stops at the promotion timeout, saying why, and the run's
    promotions and report stand."""
    pages: list[int] = []

    async def paging(request: web.Request) -> web.StreamResponse | None:
        if not request.path.endswith("/results/details"):
            return None
        pages.append((await request.json())["page"])
        await anyio.sleep(0.05)
        row = {**ROW, "hash": f"{len(pages):020x}"}
        return web.json_response({"repositoryResultsDetails": [row], "hasNextPage": True})

    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    text += "repositoryResults: {pageSize: 1}\n"
    report = await run_behind(simulator, text, before=paging, promotion_timeout=2.0)
    [result] = report.results
    assert result.status is Outcome.COMPLETED, result.reason
    assert len(pages) > 5, "the pages were walked"
    assert report.firewall is None
    assert "not read within 2 s" in (report.firewall_error or "")


# --- 20. a link that leaves the context path once a front server decodes it -------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "link", ["/iq%2F..%2Fother/steal", "..%2Fother/steal", "/iq/..%5Cother/steal"], ids=str
)
async def test_a_link_whose_encoded_dot_segments_leave_the_context_path_is_never_followed(
    simulator: Simulator, link: str
) -> None:
    def send_elsewhere(request: web.BaseRequest, upstream: Upstream) -> Upstream:
        if request.raw_path.endswith("/promoteScan") and upstream.status == 200:
            return replace(upstream, body=json.dumps({"statusUrl": link}).encode())
        return upstream

    text = manifest(entry(scanned(simulator, 1), "{from: build, to: build}"))
    async with SharedHost(simulator.base_url, send_elsewhere).serving() as shared:
        config = config_for(simulator, text)
        assert config.client is not None
        config = replace(config, client=replace(config.client, base_url=shared.url + "iq/"))
        with anyio.fail_after(LIMIT):
            report = await run(config)
    assert shared.elsewhere == [], "nothing, and no credentials, went beside IQ"
    [result] = report.results
    assert result.status is Outcome.ERROR
    assert "another host or outside" in (result.reason or "")


# --- 21. an internal error that quotes a secret ----------------------------------------------

BOTH_QUOTES = "Zorblax'7\"secret"
"""A password with both quote characters: repr() escapes one of them, a form nobody registers."""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_an_internal_error_that_quotes_the_password_never_shows_it(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    import orchestrator.cli.scans as scans_command

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError(f"a bug that quotes {BOTH_QUOTES}")

    monkeypatch.setattr(scans_command, "list_scans", broken)
    result = invoke(
        "scans",
        "app",
        "--server-url",
        "http://127.0.0.1:9/",
        "--log-format",
        fmt,
        env={"IQ_PASSWORD": BOTH_QUOTES},
    )
    assert result.exit_code == 70, result.output
    assert "internal.error" in result.output
    assert "a bug that quotes ***" in result.output
    assert "Zorblax" not in result.output
