"""The result of one step of a plan: what was attempted, and what became of it.

The scheduler makes these as promotions end; a dry run and the steps a plan could not resolve
make them without sending anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.promote.plan import Skipped, Step, Target, Unresolved
from orchestrator.report.results import Detection, NotApplicable, Outcome, PromotionResult


@dataclass(frozen=True, slots=True)
class Attempted:
    """What is known of a promotion that was sent, for its result."""

    status_url: str | None = None
    attempts: int = 0
    polls: int = 0
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    evaluation_seconds: float | None = None
    detected_by: Detection | None = None


NOT_SENT = Attempted()


def step_result(
    step: Step,
    *,
    status: Outcome,
    reason: str | None,
    target: Target | None = None,
    public_id: str | None = None,
    organization: str | None = None,
    resumable: bool = False,
    attempted: Attempted = NOT_SENT,
    not_applicable: NotApplicable | None = None,
) -> PromotionResult:
    """The result of ``step``: of the application ``target`` (or, when the server knows none,
    of ``public_id`` in ``organization``), with what is known of what was sent."""
    transition = step.transition
    return PromotionResult(
        public_id=target.public_id if target else public_id,
        application_id=target.application_id if target else None,
        organization=target.organization if target else organization,
        entry_index=step.entry_index,
        transition_index=step.transition_index,
        source_stage_id=transition.source_stage,
        scan_id=transition.scan_id,
        target_stage_id=transition.target_stage,
        status=status,
        reason=reason,
        resumable=resumable,
        status_url=attempted.status_url,
        attempts=attempted.attempts,
        polls=attempted.polls,
        submitted_at=attempted.submitted_at,
        finished_at=attempted.finished_at,
        duration_seconds=attempted.duration_seconds,
        evaluation_seconds=attempted.evaluation_seconds,
        detected_by=attempted.detected_by,
        not_applicable=not_applicable,
    )


def unresolved_result(unresolved: Unresolved) -> PromotionResult:
    """The ERROR result of a step whose application or organization the server does not know."""
    return step_result(
        unresolved.step,
        public_id=unresolved.public_id,
        organization=unresolved.organization,
        status=Outcome.ERROR,
        reason=unresolved.reason,
    )


def skipped_result(skipped: Skipped) -> PromotionResult:
    """The SKIPPED result of a step whose chain does not apply to its application; it does
    not fail the run."""
    return step_result(
        skipped.step,
        target=skipped.target,
        status=Outcome.SKIPPED,
        reason=skipped.skip.reason,
        not_applicable=skipped.skip.cause,
    )
