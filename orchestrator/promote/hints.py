"""Webhook deliveries as hints: where the run listens for them, which outstanding promotion
an evaluation event may concern, and how far apart the backstop polls may be while
deliveries arrive.

An event never ends a promotion. It wakes the follower of the promotion whose application
and target stage it names, if the evaluation ended after that promotion was sent; the
follower asks the status at once, and only that answer decides. So a foreign evaluation (a CI
scan of the same application) costs one status request, and a lost delivery costs time:
polling goes on, spaced by :class:`WebhookBackstop`, a policy value, by how many deliveries
the run has seen lost.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio

from orchestrator import defaults
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.webhooks import EvaluationEvent


@dataclass(frozen=True, slots=True)
class WebhookBackstop:
    """How to poll while webhooks arrive: the strategy's polls spaced further apart the fewer
    deliveries are lost, never more than ``max_gap`` seconds, nor earlier than planned.

    The gaps are stretched by ``spread / sqrt(lost)``, at most ``max_stretch`` times,
    ``lost`` being the share of completed evaluations no delivery announced (found by a poll
    instead), from the latest ``window`` of them and ``prior_weight`` imagined ones of which
    ``prior_loss`` were lost. The square
    root is what balances requests against waiting: a poll only helps the promotions whose
    delivery was lost, so with fewer of them each poll must wait longer to save as much.

    Webhooks count as arriving for ``fresh_for`` seconds after the last delivery a status
    confirmed (a delivery for a promotion's own evaluation); after that, or before the first,
    polls come when the strategy plans them. ``clock_tolerance``: how long before its
    promotion was sent an evaluation may seem to have ended and still be a hint.
    """

    spread: float = defaults.WEBHOOK_SPREAD
    max_stretch: float = defaults.WEBHOOK_MAX_STRETCH
    max_gap: float = defaults.WEBHOOK_MAX_GAP
    prior_loss: float = defaults.WEBHOOK_PRIOR_LOSS
    prior_weight: float = defaults.WEBHOOK_PRIOR_WEIGHT
    window: int = defaults.WEBHOOK_WINDOW
    fresh_for: float = defaults.WEBHOOK_FRESH_FOR
    clock_tolerance: float = defaults.WEBHOOK_CLOCK_TOLERANCE

    def __post_init__(self) -> None:
        if self.spread <= 0 or self.max_stretch < 1 or self.max_gap <= 0:
            raise ValueError("a webhook backstop needs spread > 0, max_stretch >= 1, max_gap > 0")
        if self.fresh_for <= 0 or self.window < 1:
            raise ValueError("a webhook backstop needs fresh_for > 0 and window >= 1")
        if not 0 < self.prior_loss <= 1 or self.prior_weight <= 0:
            raise ValueError("a webhook backstop needs 0 < prior_loss <= 1 and prior_weight > 0")
        if self.clock_tolerance < 0:
            raise ValueError("clock_tolerance cannot be negative")

    def lost(self, heard: int, unheard: int) -> float:
        """The share of completions whose delivery is lost, from ``heard`` completions a
        delivery announced and ``unheard`` ones a poll found first, and the prior."""
        imagined = self.prior_loss * self.prior_weight
        return (unheard + imagined) / (heard + unheard + self.prior_weight)

    def stretch(self, lost: float) -> float:
        """How many times further apart than planned polls come while ``lost`` of the
        deliveries are lost: never closer than the plan, nor further than ``max_stretch``
        times (few losses seen may be bad luck, and a lost delivery pays for the gap)."""
        return min(self.max_stretch, max(1.0, self.spread / math.sqrt(lost)))

    def spaced(self, previous: Spacing, planned: float, *, lost: float | None) -> Spacing:
        """When to send the poll the strategy planned at ``planned`` seconds after submission,
        given when the previous one was planned and sent: the gap stretched while webhooks
        arrive (``lost`` is then the share of deliveries lost), else the plan itself (at
        once, if that is past)."""
        if lost is None:
            return Spacing(planned, planned)
        gap = min((planned - previous.planned) * self.stretch(lost), self.max_gap)
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
    sequence: int = 0
    """Its place in the order promotions were watched, which is the order they were sent."""
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
        """The board's policy, with the board's view of the deliveries lost."""
        return self.board.policy.spaced(previous, planned, lost=self.board.lost())

    def completed(self, *, heard: bool) -> None:
        """This promotion's evaluation completed, as a hint said (``heard``) or a poll found."""
        self.board.completed(self.sequence, heard=heard)


@dataclass(slots=True)
class HintBoard:
    """The outstanding promotions, by application id and target stage, for events to wake;
    and what the run has seen of deliveries: when the last was confirmed, and how many of the
    latest completions one announced.

    Completions are counted in the order their promotions were sent, each once every
    promotion sent before it is over: a lost delivery is learned of only when a poll finds
    the evaluation, long after the deliveries of its neighbours came, and counting in the
    order of learning would take too few for lost, and so poll too seldom.
    """

    policy: WebhookBackstop = field(default_factory=WebhookBackstop)
    clock: Callable[[], float] = field(default=anyio.current_time, repr=False)
    last_confirmed: float | None = None
    """``clock()`` of the last hint a final status confirmed."""
    _watches: dict[tuple[str, str], list[Watch]] = field(default_factory=dict, repr=False)
    _sent: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _open: OrderedDict[int, None] = field(default_factory=OrderedDict, repr=False)
    """The sequence numbers of the promotions watched now, oldest first."""
    _decided: list[tuple[int, bool]] = field(default_factory=list, repr=False)
    """Completions not counted yet (a promotion sent earlier is still open): a heap of
    (sequence, heard)."""
    _recent: deque[bool] = field(init=False, repr=False)
    """The latest completions counted: whether a delivery announced each."""
    _heard: int = field(default=0, init=False, repr=False)
    """How many of ``_recent`` a delivery announced: asked at every poll planned, so kept
    rather than counted again."""

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.policy.window)

    def live(self) -> bool:
        return self.policy.live(self.last_confirmed, self.clock())

    def completed(self, sequence: int, *, heard: bool) -> None:
        """The promotion watched as ``sequence`` completed: a delivery announced it
        (``heard``: webhooks arrive), or a poll found it first. Only completions while
        webhooks arrive count towards the share lost."""
        if heard:
            self.last_confirmed = self.clock()
        if self.live():
            heapq.heappush(self._decided, (sequence, heard))

    def lost(self) -> float | None:
        """The share of deliveries lost, as the policy estimates it; None while webhooks do
        not count as arriving."""
        if not self.live():
            return None
        return self.policy.lost(self._heard, len(self._recent) - self._heard)

    @contextmanager
    def watching(self, application_id: str, stage: str, since: datetime) -> Iterator[Watch]:
        """Watch for events of ``application_id`` at ``stage`` while the block runs; enter it
        before the promotion is sent, so that an evaluation done at once is not missed."""
        watch = Watch(application_id, stage, since, self, next(self._sent))
        key = (application_id, stage)
        self._watches.setdefault(key, []).append(watch)
        self._open[watch.sequence] = None
        try:
            yield watch
        finally:
            watches = self._watches[key]
            watches.remove(watch)
            if not watches:
                del self._watches[key]
            del self._open[watch.sequence]
            self._count_settled()

    def _count_settled(self) -> None:
        """Count the completions of promotions sent before any still open."""
        oldest = next(iter(self._open), None)
        while self._decided and (oldest is None or self._decided[0][0] < oldest):
            heard = heapq.heappop(self._decided)[1]
            if len(self._recent) == self._recent.maxlen:
                self._heard -= self._recent[0]
            self._recent.append(heard)
            self._heard += heard

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
