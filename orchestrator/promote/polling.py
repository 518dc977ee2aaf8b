"""Following a promotion's status URL until IQ Server says COMPLETED or FAILED.

*When* to poll is a policy (:class:`PollStrategy`); this module only obeys it. The default,
:class:`BackoffSchedule`, is capped exponential backoff with jitter;
:mod:`orchestrator.promote.learned_polling` holds the strategies that learn from the run and
from earlier nights.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import structlog

from orchestrator import defaults
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import EvaluationState, PromotionStatus
from orchestrator.promote.hints import START, Spacing, Watch
from orchestrator.report.results import Detection

log = structlog.get_logger("orchestrator.promote")


class PollStrategy(Protocol):
    """Decides when to ask; learns from how long evaluations took."""

    def offsets(self, public_id: str) -> Iterator[float]:
        """Seconds after submission at which to poll, increasing, without end."""
        ...

    def observe(self, public_id: str, lower: float, upper: float) -> float | None:
        """An evaluation of ``public_id`` finished between ``lower`` seconds after submission
        (the last PENDING answer) and ``upper`` (the first final one). Returns the strategy's
        best estimate of its evaluation time, or None for the midpoint."""
        ...


@dataclass(frozen=True, slots=True)
class BackoffSchedule:
    """Poll after ``initial`` seconds, then at intervals growing by ``factor`` up to ``cap``.

    ``jitter`` is the fraction by which each interval is randomly shortened or lengthened, so
    that promotions submitted together do not poll together.
    """

    initial: float = defaults.POLL_INITIAL
    factor: float = 1.5
    cap: float = defaults.POLL_MAX
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap <= 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(
                "poll schedule needs initial > 0, cap > 0, factor >= 1, 0 <= jitter < 1"
            )

    def offsets(self, public_id: str) -> Iterator[float]:
        at, interval = 0.0, self.initial
        while True:
            at += min(interval, self.cap) * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
            yield at
            interval *= self.factor

    def observe(self, public_id: str, lower: float, upper: float) -> None:
        """A fixed schedule learns nothing, and knows no better than the midpoint."""


@dataclass(slots=True)
class InFlight:
    """A submitted promotion being followed; whoever cancels the follower still reads it."""

    status_url: str
    submitted_at: float
    """``anyio.current_time()`` when the POST was accepted."""
    polls: int = 0
    pending_until: float = 0.0
    """Seconds after submission of the last PENDING answer: the evaluation ended after it."""

    final_at: float | None = None
    """Seconds after submission of the first final answer."""

    estimate: float | None = None
    """The poll strategy's estimate of the evaluation time, if it has a better one than the
    midpoint of what the polls bracket."""

    detected_by: Detection | None = None
    """How the final answer came: a regular poll, or one a webhook hint prompted."""

    picked_up: bool = False
    """Sent by an earlier run and picked up by this one: its clock starts at the pick-up, so
    its times say nothing of how long evaluations take."""

    @property
    def evaluation_seconds(self) -> float | None:
        """The evaluation time: the strategy's estimate, else the time of a confirmed hint
        (which comes moments after the end), else the midpoint of the bracket."""
        if self.final_at is None:
            return None
        if self.estimate is not None:
            return self.estimate
        if self.detected_by is Detection.WEBHOOK:
            return self.final_at
        return (self.pending_until + self.final_at) / 2


async def follow(
    client: IqClient,
    in_flight: InFlight,
    strategy: PollStrategy,
    public_id: str,
    watch: Watch | None = None,
) -> PromotionStatus:
    """Poll at the strategy's offsets until the status is final (COMPLETED or FAILED).

    With a ``watch``, a hint (a webhook delivery, or a sweep of the listing) makes the status
    be asked at once; only that answer decides, and a hint it refutes leaves the planned poll
    where it was. While hints come, the planned polls are spaced wider, the more so the fewer
    deliveries are lost, and the most while sweeps work
    (:class:`~orchestrator.promote.hints.WebhookBackstop`).
    A status word this version does not know is not final: polling goes on (until the
    promotion's timeout), with one warning. Cancellation (a timeout, a stopped run) may land
    at any await; ``in_flight`` then still says how many polls were sent.
    """
    warned = False
    spacing = START
    for planned in strategy.offsets(public_id):
        spacing = Spacing(planned, planned) if watch is None else watch.spaced(spacing, planned)
        while True:
            hint = await _until(in_flight.submitted_at + spacing.at, watch)
            asked_at = anyio.current_time() - in_flight.submitted_at
            status = await client.promotion_status(in_flight.status_url)
            in_flight.polls += 1
            if status.final:
                in_flight.final_at = asked_at
                # A confirmed delivery came moments after the evaluation ended: a bracket
                # that close says more than any estimate within a wider one. A sweep's hint
                # is no closer than a poll's answer.
                heard = hint is Detection.WEBHOOK
                ended_after = asked_at if heard else in_flight.pending_until
                in_flight.estimate = strategy.observe(public_id, ended_after, asked_at)
                in_flight.detected_by = hint or Detection.POLL
                if watch is not None and status.state is EvaluationState.COMPLETED:
                    # IQ's event is for completed evaluations only: a FAILED one says nothing
                    # of the deliveries.
                    seconds = None if in_flight.picked_up else asked_at
                    watch.completed(heard=heard, seconds=seconds, swept=hint is Detection.LISTING)
                return status
            in_flight.pending_until = asked_at
            if hint is not None and watch is not None:
                watch.refuted()
            if status.state is None and not warned:
                warned = True
                log.warning(
                    "promotion.unknown_status",
                    publicId=public_id,
                    status=status.status,
                    action="not final: polling goes on until the promotion's timeout",
                )
            if hint is None:
                break  # to the next planned poll; after a refuted hint, wait on for this one
    raise AssertionError("poll strategies yield without end")  # pragma: no cover


async def _until(deadline: float, watch: Watch | None) -> Detection | None:
    """Wait until ``deadline`` (``anyio.current_time()``), or a hint: where the hint came
    from, or None if none came."""
    if watch is None:
        await anyio.sleep(max(0.0, deadline - anyio.current_time()))
        return None
    if (taken := watch.take()) is not None:
        return taken
    with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
        return await watch.hinted()
    return None
