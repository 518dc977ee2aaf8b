"""What may go out, and when: a retry budget and a circuit breaker in front of every request.

Retries alone multiply the load on a struggling server; the budget caps them at a share of
the traffic, and the breaker stops all traffic but one probe while the server is away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import anyio
import structlog

from orchestrator import defaults
from orchestrator.errors import UnreachableError
from orchestrator.iq.retry import Meaning

log = structlog.get_logger("orchestrator.iq")

Clock = Callable[[], float]


@dataclass(slots=True)
class RetryBudget:
    """Retries may use at most ``ratio`` of the first attempts, plus ``min_per_second``.

    Every first attempt deposits ``ratio`` of a token; every retry takes one. A retry that
    finds no token waits until one accrues, so retries slow down rather than pile up.
    """

    ratio: float = 0.2
    min_per_second: float = 2.0
    max_tokens: float = 50.0
    clock: Clock = field(default=time.monotonic, repr=False)
    tokens: float = field(init=False)
    _updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.max_tokens / 5
        self._updated = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(
            self.max_tokens, self.tokens + (now - self._updated) * self.min_per_second
        )
        self._updated = now

    def deposit(self) -> None:
        self._refill()
        self.tokens = min(self.max_tokens, self.tokens + self.ratio)

    def wait_for_token(self) -> float:
        """Take a token if there is one and return 0, else the seconds until one accrues."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.min_per_second if self.min_per_second > 0 else 1.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after ``threshold`` consecutive signs of a server that is away (failures whose
    :class:`~orchestrator.iq.retry.Meaning` is an outage), lets one probe through every
    ``probe_interval`` seconds (growing up to ``max_probe_interval``), closes on the first
    answer that is no such sign (a success, but also a 500 or a 429: the server is there), and
    gives up after ``down_timeout`` seconds open."""

    threshold: int = 5
    probe_interval: float = 1.0
    max_probe_interval: float = 15.0
    down_timeout: float = defaults.SERVER_DOWN_TIMEOUT
    clock: Clock = field(default=time.monotonic, repr=False)
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    next_probe_at: float = 0.0
    reached: bool = False
    """Whether the server ever answered: a server never reached is not having an outage."""
    _interval: float = field(init=False)
    _probing: bool = False

    def __post_init__(self) -> None:
        self._interval = self.probe_interval

    def record_success(self) -> None:
        self.reached = True
        if self.state is not BreakerState.CLOSED:
            log.info("server.back", down_seconds=round(self.down_for(), 1))
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = None
        self._probing = False
        self._interval = self.probe_interval

    def record_failure(self, meaning: Meaning) -> None:
        if not meaning.outage:
            # Any other answer (500, 429, 404...) comes from a server that is there: the
            # outage is over, and a probe answered so must not keep the probe slot taken.
            self.record_success()
            return
        self.consecutive_failures += 1
        now = self.clock()
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN
            self._probing = False
            self._interval = min(self._interval * 2, self.max_probe_interval)
            self.next_probe_at = now + self._interval
        elif self.state is BreakerState.CLOSED and self.consecutive_failures >= self.threshold:
            self.state = BreakerState.OPEN
            self.opened_at = now
            self.next_probe_at = now + self._interval
            log.warning("server.unavailable", consecutive_failures=self.consecutive_failures)

    def down_for(self) -> float:
        return 0.0 if self.opened_at is None else self.clock() - self.opened_at

    @property
    def gave_up(self) -> bool:
        return self.state is not BreakerState.CLOSED and self.down_for() > self.down_timeout

    def admit(self) -> float | None:
        """0 to send now, seconds to wait before asking again, or None when it gave up."""
        if self.state is BreakerState.CLOSED:
            return 0.0
        if self.gave_up:
            return None
        now = self.clock()
        probe_lost = self._probing and now >= self.next_probe_at + self.max_probe_interval
        if now >= self.next_probe_at and (not self._probing or probe_lost):
            # A probe that never reported back (cancelled, timed out) must not block forever.
            self.state = BreakerState.HALF_OPEN
            self._probing = True
            self.next_probe_at = now
            return 0.0
        wait = self.next_probe_at - now if self.state is BreakerState.OPEN else self._interval
        return max(0.05, min(wait, self.down_timeout - self.down_for() + 0.01))


class RequestGate:
    """The client's gatekeeper: every attempt asks it first and tells it how it went."""

    def __init__(
        self,
        *,
        budget: RetryBudget | None = None,
        breaker: CircuitBreaker | None = None,
        on_throttled: Callable[[], None] | None = None,
    ) -> None:
        self.budget = budget
        self.breaker = breaker
        self.on_throttled = on_throttled

    async def before_attempt(self, *, retry: bool) -> None:
        if self.breaker is not None:
            while (wait := self.breaker.admit()) != 0.0:
                if wait is None:
                    raise UnreachableError(
                        f"server unavailable for more than {self.breaker.down_timeout:g} s"
                    )
                await anyio.sleep(wait)
        if self.budget is not None:
            if retry:
                # Tokens accrue with time, not with an event another task could set.
                while (wait := self.budget.wait_for_token()) > 0:  # noqa: ASYNC110
                    await anyio.sleep(wait)
            else:
                self.budget.deposit()

    def waiting_out(self, meaning: Meaning) -> bool:
        """Whether this failure belongs to an outage the breaker is already handling: the
        next attempt then waits for its probe, and the retry policy does not count it.

        Only a server that answered before can be having an outage: one that never did is
        more likely a wrong URL, and the retry policy soon says so."""
        return (
            self.breaker is not None
            and self.breaker.reached
            and meaning.outage
            and self.breaker.state is not BreakerState.CLOSED
        )

    def on_success(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success()

    def on_failure(self, meaning: Meaning) -> None:
        if self.breaker is not None:
            self.breaker.record_failure(meaning)
        if self.on_throttled is not None and meaning.throttle:
            self.on_throttled()
