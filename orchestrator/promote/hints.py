"""Webhook deliveries as hints: where the run listens for them, which outstanding promotion
an evaluation event may concern, and how far apart the backstop polls may be while
deliveries arrive.

An event never ends a promotion. It wakes the follower of the promotion whose application
and target stage it names, if the evaluation ended after that promotion was sent; the
follower asks the status at once, and only that answer decides. So a foreign evaluation (a CI
scan of the same application) costs one status request, and a lost delivery costs time:
polling goes on, spaced by :class:`WebhookBackstop`, a policy value, by how many deliveries
the run has seen lost. A sweep of the latest-reports listing (:class:`ListingSweep`, run by
:mod:`orchestrator.promote.sweeps`) finds the evaluations whose delivery was lost in one
request for every outstanding promotion, and offers them as hints too; while it works, the
polls come further apart still.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio

from orchestrator import defaults
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.webhooks import EvaluationEvent
from orchestrator.report.results import Detection


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

    While sweeps of the latest-reports listing work, they find lost deliveries instead, and
    the polls are only the sweeps' backstop: ``swept_stretch`` times further apart.

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
    swept_stretch: float = defaults.WEBHOOK_SWEPT_STRETCH
    fresh_for: float = defaults.WEBHOOK_FRESH_FOR
    clock_tolerance: float = defaults.WEBHOOK_CLOCK_TOLERANCE

    def __post_init__(self) -> None:
        if self.spread <= 0 or min(self.max_stretch, self.swept_stretch) < 1 or self.max_gap <= 0:
            raise ValueError(
                "a webhook backstop needs spread > 0, max_stretch and swept_stretch >= 1, "
                "max_gap > 0"
            )
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

    def spaced(
        self, previous: Spacing, planned: float, *, lost: float | None, swept: bool = False
    ) -> Spacing:
        """When to send the poll the strategy planned at ``planned`` seconds after submission,
        given when the previous one was planned and sent: the gap stretched while webhooks
        arrive (``lost`` is then the share of deliveries lost; ``swept``: sweeps of the
        listing work), else the plan itself (at once, if that is past)."""
        if lost is None:
            return Spacing(planned, planned)
        stretch = self.swept_stretch if swept else self.stretch(lost)
        gap = min((planned - previous.planned) * stretch, self.max_gap)
        return Spacing(planned, max(planned, previous.at + gap))

    def live(self, last_confirmed: float | None, now: float) -> bool:
        """Whether webhooks count as arriving at ``now``, the last confirmed one at
        ``last_confirmed`` (same clock)."""
        return last_confirmed is not None and now - last_confirmed <= self.fresh_for


@dataclass(frozen=True, slots=True)
class ListingSweep:
    """How often to read the latest-reports listing for evaluations whose delivery was lost:
    every ``share`` of the typical evaluation time (``first`` seconds before one is known),
    within ``min_interval`` and ``max_interval``, and no more than ``rows_per_second`` rows a
    second on average, however large the server's portfolio. A listing over ``max_bytes``
    is not read, and the run sweeps no more: polls find lost deliveries instead.

    A sweep is one request, whatever the number of promotions outstanding; a tenth lost at
    concurrency 20 is two promotions in every sweep's reach, where polls would need one
    request each, and more, to find them as soon.
    """

    share: float = defaults.SWEEP_SHARE
    first: float = defaults.SWEEP_FIRST
    min_interval: float = defaults.SWEEP_MIN_INTERVAL
    max_interval: float = defaults.SWEEP_MAX_INTERVAL
    rows_per_second: float = defaults.SWEEP_ROWS_PER_SECOND
    max_bytes: int = defaults.SWEEP_MAX_BYTES

    def __post_init__(self) -> None:
        if min(self.share, self.first, self.min_interval, self.rows_per_second) <= 0:
            raise ValueError(
                "a listing sweep needs share, first, min_interval and rows_per_second > 0"
            )
        if self.max_interval < self.min_interval or self.max_bytes <= 0:
            raise ValueError("a listing sweep needs max_interval >= min_interval, max_bytes > 0")

    def interval(self, typical: float | None, rows: int) -> float:
        """Seconds to the next sweep, the evaluations typically taking ``typical`` seconds
        (None: none seen yet) and the last listing having had ``rows`` rows."""
        base = self.first if typical is None else self.share * typical
        return min(self.max_interval, max(self.min_interval, base, rows / self.rows_per_second))


@dataclass(frozen=True, slots=True)
class Spacing:
    """One poll's time: as the strategy planned it, and as it is sent (seconds after
    submission)."""

    planned: float
    at: float


LISTED_HINTS = 2
"""How many hints one evaluation the listing shows may give."""

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
    _source: Detection = Detection.WEBHOOK
    _listed: datetime | None = None
    """The evaluation date of the latest report a sweep hinted at: each sweep lists it again."""
    _listed_hints: int = 0
    """How often a sweep hinted at it: twice at most, in case the listing showed the report
    a moment before the status said COMPLETED."""
    _delivered: bool = False
    """Whether a delivery came for this promotion, whatever hint its status was asked on."""

    def hint(self, source: Detection = Detection.WEBHOOK) -> None:
        """An evaluation may be this promotion's: said by a delivery, or found by a sweep
        (``Detection.LISTING``). A delivery's word stands over a sweep's."""
        if not self._woken.is_set() or source is Detection.WEBHOOK:
            self._source = source
        if source is Detection.WEBHOOK:
            self._delivered = True
        self._woken.set()

    def newly_listed(self, date: datetime) -> bool:
        """Whether a sweep's listing of an evaluation dated ``date`` is a hint: one newer than
        any listed before, or the one listed before, once more (its status may have lagged
        its report); it is counted now. A CI scan the listing keeps showing costs two status
        requests, not one each sweep."""
        if self._listed is not None and date < self._listed:
            return False
        if self._listed is None or date > self._listed:
            self._listed, self._listed_hints = date, 0
        if self._listed_hints >= LISTED_HINTS:
            return False
        self._listed_hints += 1
        return True

    def refuted(self) -> None:
        """The status asked on a hint was not final: a delivery that came was another
        evaluation's (a CI scan's), not this promotion's."""
        self._delivered = False

    def take(self) -> Detection | None:
        """Where the hint that came since the last one was taken came from (None: none came);
        it is taken now."""
        if not self._woken.is_set():
            return None
        self._woken = anyio.Event()
        return self._source

    async def hinted(self) -> Detection:
        """Return once a hint came since the last return (at once, if one already did), and
        where it came from."""
        await self._woken.wait()
        self._woken = anyio.Event()
        return self._source

    def spaced(self, previous: Spacing, planned: float) -> Spacing:
        """The board's policy, with the board's view of the deliveries lost and the sweeps."""
        board = self.board
        return board.policy.spaced(previous, planned, lost=board.lost(), swept=board.sweeping)

    def completed(self, *, heard: bool, seconds: float | None = None, swept: bool = False) -> None:
        """This promotion's evaluation completed, as a delivery said (``heard``) or a poll or
        a sweep (``swept``) found, ``seconds`` after it was sent (for the sweeps' pace). A
        delivery that came while the status was being asked on another hint counts too."""
        heard = heard or self._delivered
        self.board.completed(self.sequence, heard=heard, seconds=seconds)
        if swept and not heard:
            self.board.found_by_sweep(self)


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
    swept_until: float | None = None
    """``clock()`` until which sweeps count as working: set by the sweeper after each sweep
    that worked, twice its interval ahead; None once sweeps stop."""
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
    _seconds: deque[float] = field(init=False, repr=False)
    """How long the latest completions took from their submission, for :meth:`typical`."""
    _swept: OrderedDict[tuple[str, str], datetime] = field(default_factory=OrderedDict, repr=False)
    """The latest promotions a sweep found before their delivery came, by application and
    stage: when each was sent. A delivery for one is late, not lost."""

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.policy.window)
        self._seconds = deque(maxlen=self.policy.window)

    def live(self) -> bool:
        return self.policy.live(self.last_confirmed, self.clock())

    @property
    def sweeping(self) -> bool:
        """Whether sweeps of the latest-reports listing find lost deliveries now: the last
        worked, and the next is not overdue (a listing request retried for minutes is not)."""
        return self.swept_until is not None and self.clock() <= self.swept_until

    def completed(self, sequence: int, *, heard: bool, seconds: float | None = None) -> None:
        """The promotion watched as ``sequence`` completed ``seconds`` after it was sent: a
        delivery announced it (``heard``: webhooks arrive), or a poll or a sweep found it
        first. Only completions while webhooks arrive count towards the share lost."""
        if heard:
            self.last_confirmed = self.clock()
        if seconds is not None:
            self._seconds.append(seconds)
        if self.live():
            heapq.heappush(self._decided, (sequence, heard))

    def found_by_sweep(self, watch: Watch) -> None:
        """A sweep found ``watch``'s evaluation first: its delivery may still come."""
        key = (watch.application_id, watch.stage)
        self._swept[key] = watch.since
        self._swept.move_to_end(key)
        if len(self._swept) > self.policy.window:
            self._swept.popitem(last=False)

    def typical(self) -> float | None:
        """The median time from submission to completion of the latest completions; None
        before the first."""
        return statistics.median(self._seconds) if self._seconds else None

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

    def offer(self, event: EvaluationEvent, source: Detection = Detection.WEBHOOK) -> bool:
        """Wake every promotion ``event`` may concern; whether it concerned any. A dict look-up
        and an event set: cheap enough for the listener to call before it answers.
        ``source``: a delivery said it, or a sweep of the listing found it."""
        tolerance = timedelta(seconds=self.policy.clock_tolerance)
        woken = False
        date = event.evaluation_date
        for watch in self._watches.get((event.application_id, event.stage), ()):
            if date <= watch.since - tolerance:
                continue
            if source is Detection.LISTING and not watch.newly_listed(date):
                continue
            watch.hint(source)
            woken = True
        if not woken and source is Detection.WEBHOOK:
            return self._late(event, tolerance)
        return woken

    def _late(self, event: EvaluationEvent, tolerance: timedelta) -> bool:
        """Whether ``event`` is the delivery of an evaluation a sweep found first: late, not
        lost, it says that webhooks arrive as well as a confirmed one does. Were they
        always slower than the sweeps, webhooks would otherwise seem to have stopped."""
        key = (event.application_id, event.stage)
        since = self._swept.get(key)
        if since is None or event.evaluation_date <= since - tolerance:
            return False
        del self._swept[key]
        self.last_confirmed = self.clock()
        return True

    def watched(self, application_id: str, stage: str) -> bool:
        """Whether a promotion of ``application_id`` to ``stage`` is outstanding."""
        return (application_id, stage) in self._watches

    @property
    def outstanding(self) -> int:
        """Promotions watched now."""
        return sum(len(w) for w in self._watches.values())


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where to listen, the secret deliveries are signed with (None: ``--webhook-insecure``,
    unsigned ones are taken), how polling and sweeps back the webhook up, and the body cap."""

    listen: ListenAddress
    secret: str | None = field(repr=False)
    backstop: WebhookBackstop = field(default_factory=WebhookBackstop)
    sweep: ListingSweep | None = field(default_factory=ListingSweep)
    """How to sweep the latest-reports listing for lost deliveries; None: polls alone."""
    max_body: int = defaults.WEBHOOK_MAX_BODY
