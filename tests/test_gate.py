"""The retry budget and the circuit breaker, driven by a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest

from orchestrator.errors import UnreachableError
from orchestrator.iq.breaker import BreakerState, CircuitBreaker, RequestGate, RetryBudget
from orchestrator.iq.retry import Failure, RetryPolicy


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


DOWN = RetryPolicy().meaning(Failure(status=None, detail="ConnectionRefusedError"))


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read the state afresh (mypy would otherwise keep an earlier narrowing)."""
    return breaker.state


def test_breaker_opens_after_threshold_and_probes_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, probe_interval=2.0, down_timeout=60, clock=clock)
    for _ in range(2):
        breaker.record_failure(DOWN)
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure(DOWN)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.admit() == pytest.approx(2.0)
    clock.now += 2.0
    assert breaker.admit() == 0.0  # the probe
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.admit() != 0.0  # everyone else waits for the probe
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.admit() == 0.0


def test_failed_probe_reopens_with_a_longer_interval() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, probe_interval=1.0, max_probe_interval=3.0, clock=clock)
    breaker.record_failure(DOWN)
    clock.now += 1.0
    assert breaker.admit() == 0.0
    breaker.record_failure(DOWN)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.admit() == pytest.approx(2.0)


def test_lost_probe_does_not_block_forever() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, probe_interval=1.0, max_probe_interval=5.0, clock=clock)
    breaker.record_failure(DOWN)
    clock.now += 1.0
    assert breaker.admit() == 0.0  # probe sent, never reports back
    clock.now += 6.0
    assert breaker.admit() == 0.0  # a new probe


def test_breaker_gives_up_after_down_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, down_timeout=10, clock=clock)
    breaker.record_failure(DOWN)
    clock.now += 11
    assert breaker.gave_up
    assert breaker.admit() is None


def test_client_errors_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(threshold=2, clock=FakeClock())
    for _ in range(5):
        breaker.record_failure(RetryPolicy().meaning(Failure(status=404)))
        breaker.record_failure(RetryPolicy().meaning(Failure(status=429)))
    assert state(breaker) is BreakerState.CLOSED


def test_budget_limits_retries_to_a_share_of_requests() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.1, min_per_second=0.0, max_tokens=5.0, clock=clock)
    budget.tokens = 0.0
    for _ in range(100):
        budget.deposit()
    granted = 0
    while budget.wait_for_token() == 0.0:
        granted += 1
    assert granted == 5  # 100 requests x 0.1, capped at max_tokens


def test_budget_refills_with_time() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.0, min_per_second=2.0, clock=clock)
    budget.tokens = 0.0
    assert budget.wait_for_token() == pytest.approx(0.5)
    clock.now += 0.5
    assert budget.wait_for_token() == 0.0


@pytest.mark.anyio
async def test_gate_raises_unreachable_once_the_breaker_gives_up() -> None:
    breaker = CircuitBreaker(threshold=1, probe_interval=0.01, down_timeout=0.05)
    gate = RequestGate(breaker=breaker)
    gate.on_failure(DOWN)

    async def keep_failing() -> None:
        while True:
            await gate.before_attempt(retry=True)
            gate.on_failure(DOWN)

    with anyio.fail_after(5), pytest.raises(UnreachableError, match="server unavailable"):
        await keep_failing()


def test_a_server_never_reached_is_not_waited_out_as_an_outage() -> None:
    """A wrong URL looks like an outage from the first request; the retry policy, not the
    server-down timeout (minutes), should say so."""
    breaker = CircuitBreaker(threshold=2, clock=FakeClock())
    gate = RequestGate(breaker=breaker)
    for _ in range(3):
        gate.on_failure(DOWN)
    assert state(breaker) is BreakerState.OPEN
    assert not gate.waiting_out(DOWN)
    gate.on_success()
    for _ in range(3):
        gate.on_failure(DOWN)
    assert gate.waiting_out(DOWN)
