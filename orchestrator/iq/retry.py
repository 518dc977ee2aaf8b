"""What each answer means, when to try again, and how long to wait first: a policy as a value.

:data:`STATUSES` is the one table of what an HTTP status means (retry it, a sign the server
is away, a sign it wants less, or an error that ends a promotion or the whole run), kept on
:class:`RetryPolicy` as urllib3 keeps its status list and allowed methods. The client, the
circuit breaker and adaptive concurrency only read a :class:`Meaning`; none of them decides
what a status is. The whole policy is tested without a network (``tests/test_retry.py``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import MappingProxyType


class Ends(StrEnum):
    """What a failure no retry can mend puts an end to."""

    RUN = "run"
    """Nothing else can succeed either (refused credentials): the run stops."""
    REQUEST = "request"
    """Only this request, and the promotion (or look-up) it serves, fails."""


class Refusal(StrEnum):
    """Which kind of refusal a final status is; the client raises the matching error."""

    CREDENTIALS = "credentials"
    """401: :class:`~orchestrator.errors.AuthError`."""
    PROXY_CREDENTIALS = "proxy-credentials"
    """407, from the proxy between (its answer, or its answer to a tunnel's ``CONNECT``):
    :class:`~orchestrator.errors.AuthError`, naming the proxy's user."""
    PERMISSION = "permission"
    """403: :class:`~orchestrator.errors.ForbiddenError`."""
    NOT_FOUND = "not-found"
    """404: :class:`~orchestrator.errors.NotFoundError`."""
    REJECTED = "rejected"
    """Any other 4xx: :class:`~orchestrator.errors.ServerError`, with the server's text."""
    TLS = "tls"
    """The TLS handshake failed (an untrusted certificate, a client certificate asked for):
    :class:`~orchestrator.errors.UnreachableError`, at once."""
    FAILED = "failed"
    """A retryable failure that ran out of retries."""


@dataclass(frozen=True, slots=True)
class Meaning:
    """What one failed attempt means."""

    retry: bool = False
    """Another attempt may succeed (within the policy's attempts and the retry budget)."""
    outage: bool = False
    """A sign that the server is away: the circuit breaker counts it."""
    throttle: bool = False
    """A sign that the server wants less: adaptive concurrency backs off."""
    refusal: Refusal = Refusal.FAILED
    """The error it becomes when it is final."""
    ends: Ends = Ends.REQUEST
    """What it ends when it is final."""


RETRY = Meaning(retry=True)
OUTAGE = Meaning(retry=True, outage=True)
THROTTLE = Meaning(retry=True, throttle=True)
OVERLOADED = Meaning(retry=True, outage=True, throttle=True)
CREDENTIALS_REFUSED = Meaning(refusal=Refusal.CREDENTIALS, ends=Ends.RUN)
PROXY_CREDENTIALS_REFUSED = Meaning(refusal=Refusal.PROXY_CREDENTIALS, ends=Ends.RUN)
FORBIDDEN = Meaning(refusal=Refusal.PERMISSION)
NOT_FOUND = Meaning(refusal=Refusal.NOT_FOUND)
REJECTED = Meaning(refusal=Refusal.REJECTED)

STATUSES: Mapping[int, Meaning] = MappingProxyType(
    {
        401: CREDENTIALS_REFUSED,
        # IQ answers 403 for an application the user may see but not evaluate: with
        # `all: true` that is routine, so it ends that promotion, not the run.
        403: FORBIDDEN,
        404: NOT_FOUND,
        # The same credentials are refused again, and a proxy may lock the account out.
        407: PROXY_CREDENTIALS_REFUSED,
        429: THROTTLE,
        500: RETRY,
        502: OUTAGE,
        503: OVERLOADED,
        504: OUTAGE,
    }
)
"""What each status means; other 4xx are :data:`REJECTED`, other 5xx :data:`RETRY`."""

CONNECTION_LOST = OUTAGE
"""A connection refused, reset or timed out: the server may be away."""

TLS_REFUSED = Meaning(refusal=Refusal.TLS, ends=Ends.RUN)
"""A TLS handshake that failed: the same certificates fail again, so it is not retried."""

NOT_JSON = RETRY
"""A 2xx answer that is not the JSON asked for (an HTML page from a proxy): try again."""

RETRY_METHODS = frozenset({"GET", "PUT", "DELETE", "POST"})
"""Methods retried on a retryable failure. POST is among them: the only POSTs are promoteScan,
which a repeat only makes evaluate once more (another report, nothing lost), and the firewall's
searches, which change nothing."""


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one attempt: an HTTP status, or a connection error (status None)."""

    status: int | None
    retry_after: float | None = None
    detail: str = ""
    not_json: bool = False
    """A success status with an answer that is not JSON (see :data:`NOT_JSON`)."""
    tls: bool = False
    """The TLS handshake failed (see :data:`TLS_REFUSED`)."""
    tunnel_status: int | None = None
    """The status a proxy answered a tunnel's ``CONNECT`` with, when it would not open one:
    407 is :data:`PROXY_CREDENTIALS_REFUSED`, any other a lost connection (the proxy could not
    reach the server)."""

    @property
    def is_connection_error(self) -> bool:
        return self.status is None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, honouring ``Retry-After`` up to a bound.

    ``max_attempts`` counts every attempt, the first included. Full jitter (a uniform draw
    between zero and the capped exponential) spreads the retries of many clients apart, so a
    server that recovers is not hit by all of them at the same instant.
    """

    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    statuses: Mapping[int, Meaning] = field(default_factory=lambda: STATUSES)
    retry_methods: frozenset[str] = RETRY_METHODS
    deadline: float = 300.0
    """The longest one request may take, retries and their waits included (waiting out an
    outage is the circuit breaker's, and not counted here)."""
    max_retry_after: float = 120.0
    """The longest ``Retry-After`` obeyed: a server (or proxy) asking for an hour is asked
    again sooner, so that one answer cannot hold a slot for the night."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.backoff_base, self.backoff_cap, self.max_retry_after, self.deadline) < 0:
            raise ValueError("backoff times cannot be negative")

    def meaning(self, failure: Failure) -> Meaning:
        """What ``failure`` means, by the table."""
        if failure.not_json:
            return NOT_JSON
        if failure.tls:
            return TLS_REFUSED
        if failure.tunnel_status == 407:
            return PROXY_CREDENTIALS_REFUSED
        if failure.status is None:
            return CONNECTION_LOST
        found = self.statuses.get(failure.status)
        if found is not None:
            return found
        return RETRY if failure.status >= 500 else REJECTED

    def is_retryable(self, failure: Failure, method: str = "GET") -> bool:
        return method.upper() in self.retry_methods and self.meaning(failure).retry

    def next_delay(self, attempts_made: int, failure: Failure, method: str = "GET") -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        ``attempts_made`` is how many attempts have been sent, the failed one included.
        """
        if attempts_made >= self.max_attempts or not self.is_retryable(failure, method):
            return None
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempts_made - 1))
        delay = self.rng.uniform(0, ceiling)
        if failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, self.max_retry_after))
        return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    # ASCII only: str.isdigit also takes superscripts ("\u00b2"), which float cannot read.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
