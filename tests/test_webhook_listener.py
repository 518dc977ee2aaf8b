"""The webhook listener over real HTTP on 127.0.0.1: what it answers, what it counts, what it
wakes, and that it stops listening when its task is cancelled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import anyio
import pytest
from receivers import SECRET, delivery
from structlog.testing import capture_logs

from orchestrator.errors import UsageError
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.hints import WebhookSettings
from orchestrator.promote.webhook_listener import WebhookListener
from orchestrator.report.run_report import WebhookSummary

LIMIT = 20
APP = "0f256982c80b4e13abef4917b93ac343"


@asynccontextmanager
async def listening(
    secret: str | None = SECRET, max_body: int = 4096
) -> AsyncIterator[tuple[WebhookListener, str]]:
    """A listener on a free loopback port, in a task group of its own, and its URL."""
    listener = WebhookListener(
        WebhookSettings(ListenAddress("127.0.0.1", 0), secret, max_body=max_body)
    )
    async with anyio.create_task_group() as tg:
        bound = await tg.start(listener.serve)
        try:
            yield listener, f"http://{bound}/any/path/iq"
        finally:
            tg.cancel_scope.cancel()


async def post(url: str, headers: dict[str, str], body: bytes) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status


@pytest.mark.anyio
async def test_a_signed_delivery_for_a_watched_promotion_is_204_and_wakes_it() -> None:
    sent = datetime.now(UTC)
    with anyio.fail_after(LIMIT):
        async with listening() as (listener, url):
            with listener.board.watching(APP, "release", sent) as watch:
                headers, body = delivery(APP, "release", sent + timedelta(seconds=1))
                assert await post(url, headers, body) == 204
                assert watch.take()
    assert listener.summary() == WebhookSummary(
        listen=str(listener.bound),
        received=1,
        accepted=1,
        rejected={"unsigned": 0, "badSignature": 0, "malformed": 0, "tooLarge": 0},
        matched=1,
    )


@pytest.mark.anyio
async def test_signatures_missing_bad_or_prefixed() -> None:
    now = datetime.now(UTC)
    headers, body = delivery(APP, "build", now)
    unsigned = {k: v for k, v in headers.items() if k != "X-Nexus-Webhook-Signature"}
    wrong, _ = delivery(APP, "build", now, secret="not-the-secret")
    wrong["X-Nexus-Webhook-Signature"] = delivery(APP, "build", now, secret="x")[0][
        "X-Nexus-Webhook-Signature"
    ]
    prefixed = headers | {
        "X-Nexus-Webhook-Signature": "sha1=" + headers["X-Nexus-Webhook-Signature"]
    }
    with anyio.fail_after(LIMIT), capture_logs() as events:
        async with listening() as (listener, url):
            assert await post(url, unsigned, body) == 401
            assert await post(url, unsigned, body) == 401
            assert await post(url, wrong, body) == 401
            assert await post(url, prefixed, body) == 204
    counts = listener.summary()
    assert counts.rejected == {"unsigned": 2, "badSignature": 1, "malformed": 0, "tooLarge": 0}
    assert (counts.received, counts.accepted, counts.ignored) == (4, 1, 1)
    warnings = [
        e for e in events if e["event"] == "webhook.rejected" and e["log_level"] == "warning"
    ]
    assert [w["reason"] for w in warnings] == ["unsigned", "badSignature"], "first of each kind"
    assert not any(SECRET in str(e) for e in events)


@pytest.mark.anyio
async def test_insecure_takes_unsigned_deliveries() -> None:
    now = datetime.now(UTC)
    headers, body = delivery(APP, "build", now, secret=None)
    with anyio.fail_after(LIMIT):
        async with listening(secret=None) as (listener, url):
            with listener.board.watching(APP, "build", now - timedelta(seconds=5)):
                assert await post(url, headers, body) == 204
    assert listener.summary().matched == 1


@pytest.mark.anyio
async def test_a_malformed_body_is_400_and_counted() -> None:
    headers, _ = delivery(APP, "build", datetime.now(UTC), secret=None)
    with anyio.fail_after(LIMIT):
        async with listening(secret=None) as (listener, url):
            assert await post(url, headers, b"{not json") == 400
            assert await post(url, headers, b'{"applicationEvaluation": {}}') == 400
    counts = listener.summary()
    assert counts.rejected["malformed"] == 2
    assert counts.accepted == 0


@pytest.mark.anyio
async def test_a_body_over_the_cap_is_413_and_counted() -> None:
    headers, body = delivery(APP, "build", datetime.now(UTC))
    padded = body[:-1] + b', "padding": "' + b"x" * 5000 + b'"}'
    with anyio.fail_after(LIMIT):
        async with listening(max_body=4096) as (listener, url):
            assert await post(url, headers, padded) == 413
            assert await post(url, headers, body) == 204, "a body under the cap is read"
    assert listener.summary().rejected["tooLarge"] == 1


@pytest.mark.anyio
async def test_a_replayed_delivery_is_counted_and_wakes_nothing() -> None:
    sent = datetime.now(UTC)
    headers, body = delivery(APP, "release", sent + timedelta(seconds=1), delivery_id="d-1")
    with anyio.fail_after(LIMIT):
        async with listening() as (listener, url):
            with listener.board.watching(APP, "release", sent) as watch:
                assert await post(url, headers, body) == 204
                assert watch.take()
                assert await post(url, headers, body) == 204
                assert not watch.take(), "the replay woke nobody"
    counts = listener.summary()
    assert (counts.accepted, counts.matched, counts.duplicates) == (2, 1, 1)


@pytest.mark.anyio
async def test_events_for_no_outstanding_promotion_are_ignored() -> None:
    sent = datetime.now(UTC)
    other_type, other_body = delivery(APP, "release", sent)
    other_type["X-Nexus-Webhook-Id"] = "iq:policyManagement"
    with anyio.fail_after(LIMIT):
        async with listening() as (listener, url):
            with listener.board.watching(APP, "release", sent) as watch:
                for headers, body in (
                    delivery(APP, "build", sent + timedelta(seconds=1)),
                    delivery(APP, "release", sent - timedelta(minutes=10)),
                    delivery("another-app", "release", sent + timedelta(seconds=1)),
                    (other_type, other_body),
                ):
                    assert await post(url, headers, body) == 204
                assert not watch.take()
    counts = listener.summary()
    assert (counts.accepted, counts.matched, counts.ignored) == (4, 0, 4)


@pytest.mark.anyio
async def test_only_post_is_taken() -> None:
    with anyio.fail_after(LIMIT):
        async with (
            listening() as (_, url),
            aiohttp.ClientSession() as http,
            http.get(url) as answer,
        ):
            assert answer.status == 405


@pytest.mark.anyio
async def test_the_port_refuses_once_the_listener_is_cancelled() -> None:
    with anyio.fail_after(LIMIT):
        async with listening() as (listener, _):
            port = listener.bound.port
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.aclose()
        with pytest.raises(OSError, match="connection attempts failed"):
            await anyio.connect_tcp("127.0.0.1", port)


@pytest.mark.anyio
async def test_a_port_in_use_is_a_usage_error() -> None:
    with anyio.fail_after(LIMIT):
        async with listening() as (first, _):
            taken = WebhookListener(WebhookSettings(first.bound, SECRET))
            with pytest.raises(UsageError, match="cannot listen for webhooks"):
                await taken.serve()
