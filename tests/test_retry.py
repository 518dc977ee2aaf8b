"""The retry policy as a value: no network needed."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.iq.retry import (
    RETRY,
    STATUSES,
    Ends,
    Failure,
    Refusal,
    RetryPolicy,
    parse_retry_after,
)

statuses = st.one_of(st.none(), st.integers(min_value=400, max_value=599))


@given(
    attempts=st.integers(min_value=1, max_value=20),
    status=statuses,
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=1000)),
    seed=st.integers(),
)
def test_delay_is_bounded_and_honours_retry_after(
    attempts: int, status: int | None, retry_after: float | None, seed: int
) -> None:
    policy = RetryPolicy(max_attempts=10, backoff_cap=30.0, rng=random.Random(seed))
    delay = policy.next_delay(attempts, Failure(status=status, retry_after=retry_after))
    if attempts >= 10 or not policy.is_retryable(Failure(status=status)):
        assert delay is None
        return
    assert delay is not None
    assert 0 <= delay <= max(30.0, min(retry_after or 0.0, policy.max_retry_after))
    if retry_after is not None:
        assert delay >= min(retry_after, policy.max_retry_after)


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    failure = Failure(status=503)
    assert policy.next_delay(1, failure) is not None
    assert policy.next_delay(2, failure) is not None
    assert policy.next_delay(3, failure) is None


def test_client_errors_are_not_retried_but_429_and_drops_are() -> None:
    policy = RetryPolicy()
    for status in (400, 401, 403, 404, 409):
        assert policy.next_delay(1, Failure(status=status)) is None
    for status in (429, 500, 502, 503, 504):
        assert policy.next_delay(1, Failure(status=status)) is not None
    assert policy.next_delay(1, Failure(status=None, detail="ServerDisconnectedError")) is not None


def test_backoff_ceiling_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=50, backoff_base=1.0, backoff_cap=8.0, rng=random.Random(1))
    ceilings = [
        max(policy.next_delay(n, Failure(500)) or 0 for _ in range(200)) for n in (1, 2, 3, 10)
    ]
    assert ceilings[0] <= 1.0
    assert ceilings[1] <= 2.0
    assert ceilings[2] <= 4.0
    assert 6.0 < ceilings[3] <= 8.0


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_the_table_says_what_each_status_ends() -> None:
    policy = RetryPolicy()
    assert policy.meaning(Failure(401)).ends is Ends.RUN
    assert policy.meaning(Failure(401)).refusal is Refusal.CREDENTIALS
    for status in (400, 403, 404, 409, 422):
        meaning = policy.meaning(Failure(status))
        assert (meaning.retry, meaning.ends) == (False, Ends.REQUEST), status
    assert policy.meaning(Failure(403)).refusal is Refusal.PERMISSION
    assert policy.meaning(Failure(418)).refusal is Refusal.REJECTED


def test_a_proxy_that_refuses_its_credentials_ends_the_run_unretried() -> None:
    policy = RetryPolicy()
    for failure in (Failure(407), Failure(None, tunnel_status=407)):
        meaning = policy.meaning(failure)
        assert (meaning.retry, meaning.outage) == (False, False), failure
        assert (meaning.refusal, meaning.ends) == (Refusal.PROXY_CREDENTIALS, Ends.RUN)
        assert policy.next_delay(1, failure) is None
    # A proxy that cannot reach the server: the server may be away, as for a lost connection.
    assert policy.meaning(Failure(None, tunnel_status=502)) == policy.meaning(Failure(None))


def test_the_table_says_which_failures_are_outages_and_throttling() -> None:
    policy = RetryPolicy()
    outages = {s for s in range(400, 600) if policy.meaning(Failure(s)).outage}
    throttles = {s for s in range(400, 600) if policy.meaning(Failure(s)).throttle}
    assert outages == {502, 503, 504}
    assert throttles == {429, 503}
    assert policy.meaning(Failure(None)).outage
    assert policy.meaning(Failure(599)).retry


def test_which_methods_are_retried_is_data() -> None:
    assert RetryPolicy().next_delay(1, Failure(503), "POST") is not None
    cautious = RetryPolicy(retry_methods=frozenset({"GET"}))
    assert cautious.next_delay(1, Failure(503), "POST") is None
    assert cautious.next_delay(1, Failure(503), "GET") is not None


def test_a_changed_table_changes_the_policy() -> None:
    policy = RetryPolicy(statuses={**STATUSES, 409: RETRY})
    assert policy.next_delay(1, Failure(409)) is not None


def test_an_answer_that_is_not_json_is_retried() -> None:
    assert RetryPolicy().next_delay(1, Failure(200, not_json=True)) is not None
