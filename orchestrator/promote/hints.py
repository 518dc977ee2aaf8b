"""Webhook deliveries as hints: where the run listens for them, which outstanding promotion
an evaluation event may concern, and how far apart the backstop polls may be while
deliveries arrive.

An event never ends a promotion. It wakes the follower of the promotion whose application
and target stage it names, if the evaluation ended after that promotion was sent; the
follower asks the status at once, and only that answer decides. So a foreign evaluation (a CI
scan of the same application) costs one status request, and a lost delivery costs time:
polling goes on, spaced by :class:`WebhookBackstop`, a policy value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio

from orchestrator import defaults
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.webhooks import EvaluationEvent


@dataclass(frozen=True, slots=True)
class WebhookBackstop:
    """How to poll while webhooks arrive: the strategy's polls spaced ``stretch`` times
    further apart, never more than ``max_gap`` seconds, nor earlier than it planned them.

    Webhooks count as arriving for ``fresh_for`` seconds after the last delivery a status
    confirmed (a delivery for a promotion's own evaluation); after that, or before the first,
    polls come when the strategy plans them. ``clock_tolerance``: how long before its
    promotion was sent an evaluation may seem to have ended and still be a hint.
    """

    stretch: float = defaults.WEBHOOK_STRETCH
    max_gap: float = defaults.WEBHOOK_MAX_GAP
    fresh_for: float = defaults.WEBHOOK_FRESH_FOR
    clock_tolerance: float = defaults.WEBHOOK_CLOCK_TOLERANCE

    def __post_init__(self) -> None:
        if self.stretch < 1 or self.max_gap <= 0 or self.fresh_for <= 0:
            raise ValueError("a webhook backstop needs stretch >= 1, max_gap > 0, fresh_for > 0")
        if self.clock_tolerance < 0:
            raise ValueError("clock_tolerance cannot be negative")

    def spaced(self, previous: Spacing, planned: float, *, live: bool) -> Spacing:
        """When to send the poll the strategy planned at ``planned`` seconds after submission,
        given when the previous one was planned and sent: the gap stretched while ``live``,
        else the plan itself (at once, if that is past)."""
        if not live:
            return Spacing(planned, planned)
        gap = min((planned - previous.planned) * self.stretch, self.max_gap)
        return Spacing(planned, max(planned, previous.at + gap))

    def live(self, last_confirmed: float | None, now: float) -> bool:
        """Whether webhooks count as arriving at ``now``, the last confirmed one at
        ``last_confirmed`` (same clock)."""
        return last_confirmed is not None and now - last_confirmed <= self.fresh_for


@dataclass(frozen=True, slots=True)
class Spacing:
    """One poll's time: as the strategy planned it, and as it is sent (seconds after
    submission)."""

    planned: float
    at: float


START = Spacing(0.0, 0.0)
"""Before the first poll: the submission."""


@dataclass(slots=True, eq=False)
class Watch:
    """One outstanding promotion, as the hints see it: woken by an event that may be its
    evaluation's."""

    application_id: str
    stage: str
    since: datetime
    """When the promotion was (first) sent; evaluations that ended before are not hints."""
    board: HintBoard
    _woken: anyio.Event = field(default_factory=anyio.Event, repr=False)

    def hint(self) -> None:
        self._woken.set()

    def take(self) -> bool:
        """Whether a hint came since the last one was taken; it is taken now."""
        if not self._woken.is_set():
            return False
        self._woken = anyio.Event()
        return True

    async def hinted(self) -> None:
        """Return once a hint came since the last return (at once, if one already did)."""
        await self._woken.wait()
        self._woken = anyio.Event()

    def spaced(self, previous: Spacing, planned: float) -> Spacing:
        """The board's policy, with the board's view of whether webhooks arrive."""
        return self.board.policy.spaced(previous, planned, live=self.board.live())

    def confirmed(self) -> None:
        """A hint of this promotion was confirmed by a final status: webhooks arrive."""
        self.board.last_confirmed = anyio.current_time()


@dataclass(slots=True)
class HintBoard:
    """The outstanding promotions, by application id and target stage, for events to wake."""

    policy: WebhookBackstop = field(default_factory=WebhookBackstop)
    last_confirmed: float | None = None
    """``anyio.current_time()`` of the last hint a final status confirmed."""
    _watches: dict[tuple[str, str], list[Watch]] = field(default_factory=dict, repr=False)

    def live(self) -> bool:
        return self.policy.live(self.last_confirmed, anyio.current_time())

    @contextmanager
    def watching(self, application_id: str, stage: str, since: datetime) -> Iterator[Watch]:
        """Watch for events of ``application_id`` at ``stage`` while the block runs; enter it
        before the promotion is sent, so that an evaluation done at once is not missed."""
        watch = Watch(application_id, stage, since, self)
        key = (application_id, stage)
        self._watches.setdefault(key, []).append(watch)
        try:
            yield watch
        finally:
            watches = self._watches[key]
            watches.remove(watch)
            if not watches:
                del self._watches[key]

    def offer(self, event: EvaluationEvent) -> bool:
        """Wake every promotion ``event`` may concern; whether it concerned any. A dict look-up
        and an event set: cheap enough for the listener to call before it answers."""
        tolerance = timedelta(seconds=self.policy.clock_tolerance)
        woken = False
        for watch in self._watches.get((event.application_id, event.stage), ()):
            if event.evaluation_date > watch.since - tolerance:
                watch.hint()
                woken = True
        return woken

    @property
    def outstanding(self) -> int:
        """Promotions watched now."""
        return sum(len(w) for w in self._watches.values())


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where to listen, the secret deliveries are signed with (None: ``--webhook-insecure``,
    unsigned ones are taken), how polling backs the webhook up, and the body cap."""

    listen: ListenAddress
    secret: str | None = field(repr=False)
    backstop: WebhookBackstop = field(default_factory=WebhookBackstop)
    max_body: int = defaults.WEBHOOK_MAX_BODY
