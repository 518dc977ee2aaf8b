"""What the simulator saw and did, for tests and benchmarks to assert on.

Times are seconds since the simulator started (monotonic clock), so records from one run
compare with each other and read well in JSON.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One finished evaluation: when it was queued, started and finished, and how it ended."""

    application_id: str
    status_id: str
    enqueued_at: float
    started_at: float
    finished_at: float
    outcome: str


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One webhook delivery: what it was for (``promotion``, or a ``foreign-*`` evaluation)
    and how it went: the receiver's answer, or an error (``lost`` if never sent)."""

    delivery_id: str
    kind: str
    application_id: str
    stage: str
    status: int | None = None
    error: str | None = None


@dataclass(slots=True)
class SimulatorStats:
    """Live counters of a running simulator; read them directly or at ``GET /__simulator/stats``.

    ``monotonicStart`` in the JSON is ``time.monotonic()`` at start: a tool on the same machine
    places the records on its own clock with it, however long the answer took to arrive.

    ``requests`` counts API requests by (route name, method); requests the simulator answered
    with an injected fault are counted there too, and by kind in ``faults``. Webhook
    deliveries are counted by the receiver's answer, lost (never sent) and failed (no answer).
    """

    started: float = field(default_factory=time.monotonic, repr=False)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    total_requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    promotions_accepted: Counter[str] = field(default_factory=Counter)
    evaluations_started: int = 0
    evaluations_completed: int = 0
    evaluations_failed: int = 0
    running: int = 0
    max_running: int = 0
    queue_depth: int = 0
    max_queue_depth: int = 0
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    webhooks_lost: int = 0
    webhooks_failed: int = 0
    webhook_answers: Counter[int] = field(default_factory=Counter)
    webhook_deliveries: list[DeliveryRecord] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def count_request(self, route: str, method: str) -> None:
        self.requests[(route, method)] += 1
        self.total_requests += 1

    def requests_to(self, route: str, method: str | None = None) -> int:
        """Requests to one route name, for one method or all."""
        return sum(n for (r, m), n in self.requests.items() if r == route and method in (None, m))

    def reset(self) -> None:
        """Zero every counter; evaluations running or queued keep being counted as such."""
        running, depth = self.running, self.queue_depth
        fresh = SimulatorStats(started=self.started)
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))
        self.running = self.max_running = running
        self.queue_depth = self.max_queue_depth = depth

    def to_json(self) -> dict[str, object]:
        by_route: dict[str, dict[str, int]] = {}
        for (route, method), count in sorted(self.requests.items()):
            by_route.setdefault(route, {})[method] = count
        return {
            "uptime": round(self.now(), 6),
            "monotonicStart": self.started,
            "requests": by_route,
            "totalRequests": self.total_requests,
            "faults": dict(self.faults),
            "promotionsAccepted": dict(self.promotions_accepted),
            "evaluationsStarted": self.evaluations_started,
            "evaluationsCompleted": self.evaluations_completed,
            "evaluationsFailed": self.evaluations_failed,
            "running": self.running,
            "maxRunning": self.max_running,
            "queueDepth": self.queue_depth,
            "maxQueueDepth": self.max_queue_depth,
            "evaluations": [asdict(record) for record in self.evaluations],
            "webhooksLost": self.webhooks_lost,
            "webhooksFailed": self.webhooks_failed,
            "webhookAnswers": {str(k): v for k, v in sorted(self.webhook_answers.items())},
            "webhookDeliveries": [asdict(record) for record in self.webhook_deliveries],
        }
