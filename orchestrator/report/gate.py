"""The ``--fail-on`` gate: which completed promotions' reports have a violation at the
threshold or above, and which could not be checked.

The gate fails closed: a report whose policy data could not be read is unchecked, never
clean, and an unchecked report fails the gate as a crossing one does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from orchestrator.report.results import Outcome, PromotionResult, ResultModel, ViolationCounts

Threshold = Literal["critical", "severe"]


def crosses(counts: ViolationCounts, threshold: Threshold) -> bool:
    """True when ``counts`` has a violation at ``threshold`` or above."""
    if threshold == "critical":
        return counts.critical > 0
    return counts.critical > 0 or counts.severe > 0


class PolicyGate(ResultModel):
    """The outcome of ``--fail-on``: which completed promotions crossed the threshold."""

    fail_on: Threshold
    crossed: list[str] = Field(
        description="'publicId (stage)' of every report with a violation at the threshold."
    )
    unchecked: int = Field(
        description="Completed promotions whose policy data could not be read; the gate "
        "fails on them too, since nothing says they are clean."
    )
    unchecked_reports: list[str] = Field(
        default_factory=list,
        description="'publicId (stage)' of every report that could not be checked.",
    )

    @property
    def failed(self) -> bool:
        return bool(self.crossed) or self.unchecked > 0


def gate(results: Iterable[PromotionResult], threshold: Threshold) -> PolicyGate:
    """Apply ``threshold`` to every completed promotion's violation counts."""
    crossed: list[str] = []
    unchecked: list[str] = []
    for result in results:
        if result.status is not Outcome.COMPLETED:
            continue
        name = f"{result.public_id} ({result.target_stage_id})"
        if result.violations is None:
            unchecked.append(name)
        elif crosses(result.violations, threshold):
            crossed.append(name)
    return PolicyGate(
        fail_on=threshold, crossed=crossed, unchecked=len(unchecked), unchecked_reports=unchecked
    )
