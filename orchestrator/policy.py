"""Policy threat bands: how IQ Server groups threat levels 0-10, and counting a report's
open violations by band."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from orchestrator.iq.models import ReportData
from orchestrator.results import Outcome, PromotionResult, ResultModel, ViolationCounts

Band = Literal["critical", "severe", "moderate", "low"]
Threshold = Literal["critical", "severe"]


def band_of(threat_level: int) -> Band | None:
    """The band of a threat level: critical 8-10, severe 4-7, moderate 2-3, low 1; 0 has none."""
    if not 0 <= threat_level <= 10:
        raise ValueError(f"threat level {threat_level} is outside IQ Server's range 0-10")
    if threat_level >= 8:
        return "critical"
    if threat_level >= 4:
        return "severe"
    if threat_level >= 2:
        return "moderate"
    if threat_level == 1:
        return "low"
    return None


def count_violations(data: ReportData) -> ViolationCounts:
    """Count the violations of a report's components that are not waived, by band."""
    counts = {"critical": 0, "severe": 0, "moderate": 0, "low": 0}
    for component in data.components:
        for violation in component.violations:
            if violation.waived:
                continue
            band = band_of(violation.policy_threat_level)
            if band is not None:
                counts[band] += 1
    return ViolationCounts(**counts)


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
        description="Completed promotions whose report data could not be read, so not gated."
    )

    @property
    def failed(self) -> bool:
        return bool(self.crossed)


def gate(results: Iterable[PromotionResult], threshold: Threshold) -> PolicyGate:
    """Apply ``threshold`` to every completed promotion's violation counts."""
    crossed: list[str] = []
    unchecked = 0
    for result in results:
        if result.status is not Outcome.COMPLETED:
            continue
        if result.violations is None:
            unchecked += 1
        elif crosses(result.violations, threshold):
            crossed.append(f"{result.public_id} ({result.target_stage_id})")
    return PolicyGate(fail_on=threshold, crossed=crossed, unchecked=unchecked)
