"""When to try a request again, and how long to wait first: a policy as a value.

The client only obeys what :meth:`RetryPolicy.next_delay` says, so the whole policy can be
tested without a network (see ``tests/test_retry.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one attempt: an HTTP status, or a connection error (status None)."""

    status: int | None
    retry_after: float | None = None
    detail: str = ""

    @property
    def is_connection_error(self) -> bool:
        return self.status is None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, honouring ``Retry-After``.

    ``max_attempts`` counts every attempt, the first included. Full jitter (a uniform draw
    between zero and the capped exponential) spreads the retries of many clients apart, so a
    server that recovers is not hit by all of them at the same instant.
    """

    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    retry_connection_errors: bool = True
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("backoff times cannot be negative")

    def is_retryable(self, failure: Failure) -> bool:
        if failure.is_connection_error:
            return self.retry_connection_errors
        return failure.status in self.retry_statuses

    def next_delay(self, attempts_made: int, failure: Failure) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        ``attempts_made`` is how many attempts have been sent, the failed one included.
        """
        if attempts_made >= self.max_attempts or not self.is_retryable(failure):
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
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
