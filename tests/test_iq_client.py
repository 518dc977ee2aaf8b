"""The IQ Server client over real sockets, against the simulator."""

from __future__ import annotations

import base64
import math
import socket
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from yarl import URL

from orchestrator.errors import (
    AuthError,
    ForeignUrlError,
    NotFoundError,
    ServerError,
    UnreachableError,
)
from orchestrator.iq.client import PUBLIC_ID_BATCH, IqClient
from orchestrator.iq.models import (
    EvaluationState,
    PromoteScanRequest,
    PromotionStatus,
    PurgeScanFiles,
    Stage,
)
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials, Transport, normalise_base_url
from orchestrator.simulator import FaultConfig, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
LIMIT = 20
PASSWORD = "Xq7-secret-Pa55word"
FAST_RETRY = RetryPolicy(max_attempts=20, backoff_base=0.005, backoff_cap=0.02)
BUILD_TO_BUILD = PromoteScanRequest(source_stage_id="build", target_stage_id="build")


def settings_for(
    base_url: str,
    *,
    username: str = "admin",
    password: str = "admin123",  # noqa: S107 - the simulator's default
    retry: RetryPolicy = FAST_RETRY,
) -> ClientSettings:
    return ClientSettings(base_url, Credentials(username, password), retry=retry)


def app_id(sim: Simulator, index: int = 0) -> str:
    return sim.portfolio.applications[index].id


async def until_final(client: IqClient, status_url: str) -> PromotionStatus:
    with anyio.fail_after(LIMIT):
        while True:
            status = await client.promotion_status(status_url)
            if status.state is not EvaluationState.PENDING:
                return status
            await anyio.sleep(0.01)


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("trailing_slash", [True, False])
async def test_relative_links_are_joined_under_the_context_path(
    simulator_factory: SimulatorFactory, trailing_slash: bool
) -> None:
    async with simulator_factory(context_path="/iq") as sim:
        base = sim.base_url
        assert base.endswith("/iq/")
        given = base if trailing_slash else base.rstrip("/")
        async with IqClient(settings_for(given)) as client:
            assert str(client.base_url) == base
            assert len(await client.applications()) == len(sim.portfolio.applications)
            submission = await client.promote_scan(app_id(sim), BUILD_TO_BUILD)
            status = await until_final(client, submission.status_url)
            assert status.report_html_url
            assert status.report_data_url
            html = client.absolute(status.report_html_url)
            data = await client.policy_report(client.absolute(status.report_data_url))
            relative_data = await client.policy_report(status.report_data_url)
    assert submission.status_url.startswith(base + "api/v2/evaluation/applications/")
    public_id = sim.portfolio.applications[0].public_id
    assert status.report_data_url.startswith(f"api/v2/applications/{public_id}/reports/")
    assert status.report_data_url.endswith("/raw"), "current releases link the raw data"
    assert not status.report_html_url.startswith(("/", "http"))  # IQ gives them relative
    assert html == base + status.report_html_url
    assert html.startswith(base + "ui/links/application/")
    assert data == relative_data
    assert data.components


def test_relative_links_are_joined_and_links_elsewhere_refused() -> None:
    client = IqClient(settings_for("https://iq.example.com/iq"))
    assert client.absolute("api/v2/x?y=1") == "https://iq.example.com/iq/api/v2/x?y=1"
    assert client.absolute("https://iq.example.com/iq/a") == "https://iq.example.com/iq/a"
    for elsewhere in (
        "https://elsewhere.example/a",
        "//elsewhere.example/a",
        "http://iq.example.com/iq/a",
        "https://iq.example.com:8443/iq/a",
        "https://iq.example.com/other/a",
        "/a",
        "file:///etc/passwd",
        "https://user@iq.example.com/iq/a",
    ):
        with pytest.raises(ForeignUrlError, match="another host or outside"):
            client.absolute(elsewhere)


@given(
    link=st.text(alphabet="ab9_~-./%:?#@\\", max_size=24),
    base=st.sampled_from(["https://iq.example.com/iq", "http://127.0.0.1:8070/", "http://h/a/b/"]),
)
def test_a_link_is_made_absolute_as_joining_it_would(link: str, base: str) -> None:
    """Plain relative links are put after the base URL without being parsed: the same URL
    that joining them gives."""
    client = IqClient(settings_for(base))
    try:
        made = client.absolute(link)
    except ForeignUrlError:
        return  # refused, as test_relative_links_are_joined_and_links_elsewhere_refused shows
    assert made == str(normalise_base_url(base).join(URL(link)))


@given(
    link=st.text(alphabet="ab9_~-./%:?#@\\", max_size=24),
    base=st.sampled_from(["https://iq.example.com/iq", "http://127.0.0.1:8070/", "http://h/a/b/"]),
)
@pytest.mark.parametrize("absolute", [False, True])
def test_a_url_is_requested_where_joining_it_leads(link: str, base: str, absolute: bool) -> None:
    """A plain relative status URL, alone or after the base URL, is requested at the base
    URL's text and its own, unparsed: the URL joining it gives; others are joined and
    checked."""
    transport = Transport(settings_for(base))
    url = str(normalise_base_url(base)) + link if absolute else link
    try:
        target = transport.target(url)
    except ForeignUrlError:
        return
    joined = normalise_base_url(base).join(URL(url))
    assert target == joined
    assert str(target) == str(joined)
    assert transport.target(url) == joined, "and again, from what is kept"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://iq.example.com", "http://iq.example.com/"),
        ("https://iq.example.com/iq", "https://iq.example.com/iq/"),
        ("https://iq.example.com/iq/?x=1#top", "https://iq.example.com/iq/"),
        ("http://127.0.0.1:8070/", "http://127.0.0.1:8070/"),
    ],
)
def test_base_url_is_normalised_to_a_directory(given: str, expected: str) -> None:
    assert str(normalise_base_url(given)) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("ftp://iq.example.com", "http:// or https://"),
        ("iq.example.com", "http:// or https://"),
        ("https://admin:hunter2@iq.example.com", "IQ_USERNAME"),
    ],
)
def test_unusable_base_urls_are_refused(given: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        normalise_base_url(given)
    assert "hunter2" not in str(caught.value)


async def test_using_the_client_outside_its_context_is_an_error() -> None:
    client = IqClient(settings_for("http://127.0.0.1:9/"))
    with pytest.raises(RuntimeError, match="async with"):
        await client.organizations()


# --- authentication ------------------------------------------------------------------------


async def test_basic_auth_goes_in_the_authorization_header(simulator: Simulator) -> None:
    credentials = Credentials("admin", "admin123")
    assert credentials.authorization() == "Basic " + base64.b64encode(b"admin:admin123").decode()
    async with IqClient(settings_for(simulator.base_url)) as client:
        organizations = await client.organizations()
    assert {o.id for o in organizations} == {o.id for o in simulator.portfolio.organizations}


async def test_refused_credentials_raise_at_once_naming_the_user_not_the_password(
    simulator: Simulator,
) -> None:
    settings = settings_for(simulator.base_url, username="ci-bot", password=PASSWORD)
    async with IqClient(settings) as client:
        with pytest.raises(AuthError) as caught:
            await client.organizations()
    error = caught.value
    assert error.status == 401
    assert "401" in str(error)
    assert "ci-bot" in str(error)
    assert simulator.stats.requests_to("organizations") == 1, "a 401 is never retried"
    header = settings.credentials.authorization()
    shown = [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
        str(settings),
        repr(settings),
        repr(settings.credentials),
        str(settings.credentials),
    ]
    for text in shown:
        assert PASSWORD not in text
        assert header not in text
        assert header.removeprefix("Basic ") not in text


# --- errors that no retry mends ------------------------------------------------------------


async def test_unknown_application_or_status_is_not_found(simulator: Simulator) -> None:
    async with IqClient(settings_for(simulator.base_url)) as client:
        with pytest.raises(NotFoundError, match="no-such-app") as unknown_app:
            await client.promote_scan("no-such-app", BUILD_TO_BUILD)
        status_url = client.absolute(
            f"api/v2/evaluation/applications/{app_id(simulator)}/status/feedface"
        )
        with pytest.raises(NotFoundError, match="feedface") as unknown_status:
            await client.promotion_status(status_url)
    assert unknown_app.value.status == unknown_status.value.status == 404
    assert simulator.stats.requests_to("promote-scan") == 1
    assert simulator.stats.requests_to("promotion-status") == 1
    assert not simulator.stats.promotions_accepted


async def test_a_404_before_anything_answered_suggests_the_context_path(
    simulator: Simulator,
) -> None:
    bare = simulator.base_url + "not-iq/"
    async with IqClient(settings_for(bare)) as client:
        with pytest.raises(NotFoundError, match="context path") as nowhere:
            await client.organizations()
    assert f"{bare}api/v2/organizations answered HTTP 404" in str(nowhere.value)
    async with IqClient(settings_for(simulator.base_url)) as client:
        await client.organizations()  # something answered: a 404 now is about what was asked
        status_url = client.absolute(
            f"api/v2/evaluation/applications/{app_id(simulator)}/status/feedface"
        )
        with pytest.raises(NotFoundError) as later:
            await client.promotion_status(status_url)
    assert "context path" not in str(later.value)


async def test_a_bad_request_is_a_clear_error_sent_once(simulator: Simulator) -> None:
    async with IqClient(settings_for(simulator.base_url)) as client:
        with pytest.raises(ServerError) as caught:
            await client.promote_scan(
                app_id(simulator),
                PromoteScanRequest(source_stage_id="build", target_stage_id="nowhere"),
            )
    error = caught.value
    assert type(error) is ServerError
    assert error.status == 400
    assert "HTTP 400" in str(error)
    assert "promote a scan" in str(error)
    assert "targetStageId" in str(error), "the server's own explanation is kept"
    assert simulator.stats.requests_to("promote-scan") == 1


async def test_a_request_whose_deadline_is_spent_is_not_sent(simulator: Simulator) -> None:
    """No time left means no request, not one without a bound (aiohttp takes a timeout of
    0 s for none)."""
    async with IqClient(
        settings_for(simulator.base_url, retry=RetryPolicy(deadline=0.0))
    ) as client:
        with pytest.raises(ServerError, match="took more than 0 s"):
            await client.promote_scan(app_id(simulator), BUILD_TO_BUILD)
    assert simulator.stats.requests_to("promote-scan") == 0


async def test_an_answer_of_the_wrong_shape_is_a_server_error(simulator: Simulator) -> None:
    async with IqClient(settings_for(simulator.base_url)) as client:
        with pytest.raises(ServerError, match="unexpected answer from status"):
            await client.promotion_status("api/v2/organizations")


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [FaultConfig(fail_rate=0.5), FaultConfig(drop_rate=0.5)],
    ids=["5xx", "dropped"],
)
async def test_promote_scan_is_retried_and_its_attempts_counted(
    simulator_factory: SimulatorFactory, faults: FaultConfig
) -> None:
    async with (
        simulator_factory(faults=faults, seed=3) as sim,
        IqClient(settings_for(sim.base_url)) as client,
    ):
        attempts = []
        with anyio.fail_after(LIMIT):
            for index in range(10):
                before = sim.stats.requests_to("promote-scan", "POST")
                submission = await client.promote_scan(app_id(sim, index), BUILD_TO_BUILD)
                attempts.append(submission.attempts)
                assert submission.attempts == sim.stats.requests_to("promote-scan", "POST") - before
        accepted = dict(sim.stats.promotions_accepted)
        faulted = sum(sim.stats.faults.values())
    assert sum(attempts) > 10, "some POSTs failed and were sent again"
    assert faulted == sum(attempts) - 10
    assert client.stats.by_kind["promote"] == sum(attempts)
    assert client.stats.retries == sum(attempts) - 10
    assert sorted(accepted.values()) == [1] * 10, "each promotion was accepted once"


async def test_retry_after_is_honoured_and_persistent_throttling_gives_up(
    simulator_factory: SimulatorFactory,
) -> None:
    # Every promoteScan is answered 429 with Retry-After: 1; without it, a retry would wait
    # at most 1 ms.
    faults = FaultConfig(throttle_queue_depth=0, retry_after=1.0)
    retry = RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_cap=0.001)
    async with (
        simulator_factory(faults=faults) as sim,
        IqClient(settings_for(sim.base_url, retry=retry)) as client,
    ):
        started = time.monotonic()
        with capture_logs() as events, pytest.raises(ServerError) as caught:
            await client.promote_scan(app_id(sim), BUILD_TO_BUILD)
        waited = time.monotonic() - started
        sent = sim.stats.requests_to("promote-scan", "POST")
    assert caught.value.status == 429
    assert "after 2 attempts" in str(caught.value)
    assert sent == 2
    (retry_event,) = [e for e in events if e["event"] == "http.retry"]
    assert retry_event["status"] == 429
    assert retry_event["delay"] >= 1.0
    assert waited >= 0.99


async def test_an_unreachable_server_is_reported_after_the_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    retry = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_cap=0.005)
    async with IqClient(settings_for(f"http://127.0.0.1:{port}/", retry=retry)) as client:
        with anyio.fail_after(LIMIT), pytest.raises(UnreachableError) as caught:
            await client.organizations()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "3 attempts" in str(caught.value)
    assert client.stats.sent == 3


# --- the endpoints -------------------------------------------------------------------------


async def test_scan_retention_reads_sets_and_unsets_purge_scan_files(simulator: Simulator) -> None:
    """Unset is IQ's default; withReports is the one value; DELETE reverts."""
    async with IqClient(settings_for(simulator.base_url)) as client:
        assert await client.scan_retention() is None
        await client.set_scan_retention()
        assert await client.scan_retention() == "withReports"
        assert simulator.portfolio.retention is PurgeScanFiles.WITH_REPORTS
        await client.reset_scan_retention()
        assert await client.scan_retention() is None
    assert simulator.portfolio.retention is None


async def test_policy_data_parses_components_and_violations(simulator: Simulator) -> None:
    app = simulator.portfolio.applications[0]
    report = simulator.portfolio.latest(app.id, Stage.BUILD)
    assert report is not None
    async with IqClient(settings_for(simulator.base_url)) as client:
        data = await client.policy_report(report.links(app.public_id)["report_data_url"])
    assert data.components
    violations = [v for c in data.components for v in c.violations]
    assert violations
    assert all(0 <= v.policy_threat_level <= 10 for v in violations)
    assert all(v.policy_name for v in violations)


async def test_applications_are_looked_up_by_public_id_in_batches(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(apps=120) as sim:
        known = [a.public_id for a in sim.portfolio.applications]
        asked = [*known, "ghost", known[0], "ghost-2"]
        async with IqClient(settings_for(sim.base_url)) as client:
            found = await client.applications_by_public_id(asked)
            org = sim.portfolio.organizations[1]
            of_org = await client.applications_of_organization(org.id)
            with pytest.raises(NotFoundError):
                await client.applications_of_organization("no-such-org")
        by_public_id = sim.stats.requests_to("applications", "GET")
    assert sorted(a.public_id for a in found) == sorted(known)
    assert {a.id for a in found} == {a.id for a in sim.portfolio.applications}
    assert by_public_id == math.ceil((len(known) + 2) / PUBLIC_ID_BATCH)
    assert {a.id for a in of_org} == {
        a.id for a in sim.portfolio.applications if a.organization_id == org.id
    }
    assert of_org


async def test_no_public_ids_asks_nothing(simulator: Simulator) -> None:
    async with IqClient(settings_for(simulator.base_url)) as client:
        assert await client.applications_by_public_id([]) == []
    assert simulator.stats.total_requests == 0


async def test_categories_in_use_name_every_tag_applications_carry(simulator: Simulator) -> None:
    async with IqClient(settings_for(simulator.base_url)) as client:
        in_use = await client.categories_in_use()
        tagged = await client.applications(include_categories=True)
    carried = {t.tag_id for a in tagged for t in a.application_tags or []}
    assert carried
    assert {c.id for c in in_use} == carried
    assert {c.name for c in in_use} <= {"Tier-1", "Internal", "PCI", "Customer-Facing"}
    assert simulator.stats.requests_to("categories-used", "GET") == 1
