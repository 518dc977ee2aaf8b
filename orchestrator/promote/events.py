"""What the scheduler tells its listeners, and what it is told of an earlier run: a step's
identity across runs, the listener protocol, and what an interrupted run got to.

The journal, the progress tracker and adaptive concurrency listen; they depend on this module,
never on the scheduler itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orchestrator.promote.plan import Step
from orchestrator.report.results import PromotionResult

StepKey = tuple[int, int, str]
"""(entry index, transition index, public id): a step's identity across runs of a manifest."""


def step_key(step: Step, public_id: str) -> StepKey:
    return (step.entry_index, step.transition_index, public_id)


@dataclass(frozen=True, slots=True)
class Prior:
    """What an earlier, interrupted run of the same manifest got to for one step."""

    result: PromotionResult | None = None
    """A final result to keep (anything but CANCELLED)."""
    status_url: str | None = None
    """A promotion already accepted: follow it instead of sending the POST again."""
    attempts: int = 0
    polls: int = 0
    submitted_at: datetime | None = None
    sent_unanswered_at: datetime | None = None
    """When the earlier run sent this promotion's POST without recording an answer (it died
    in between): the server may have accepted it."""


class Listener(Protocol):
    """Told of every state change: the journal makes them durable, progress shows them."""

    async def intent(self, key: StepKey) -> None:
        """A POST is about to go: it goes once each listener returns (the journal's, once the
        intent is committed)."""

    def submitted(self, key: StepKey, status_url: str, attempts: int) -> None: ...

    def finished(self, key: StepKey, result: PromotionResult) -> None: ...
