"""Policy threat bands: how IQ Server groups threat levels 0-10, and counting a report's
open violations by band, from its policy data (``.../reports/{scanId}/policy``).

Open means counted against the application: not waived, not grandfathered (accepted as it
was when the policy came), not a legacy violation (marked known and tolerated)."""

from __future__ import annotations

from typing import Literal

from orchestrator.iq.report_models import PolicyReport
from orchestrator.report.results import ViolationCounts

Band = Literal["critical", "severe", "moderate", "low"]


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


def count_violations(data: PolicyReport) -> ViolationCounts:
    """Count the open violations of a report's components, by band."""
    counts = {"critical": 0, "severe": 0, "moderate": 0, "low": 0}
    for component in data.components:
        for violation in component.violations:
            if not violation.open:
                continue
            band = band_of(violation.policy_threat_level)
            if band is not None:
                counts[band] += 1
    return ViolationCounts(**counts)
