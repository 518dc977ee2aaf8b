"""The firewall section of a run report: counts of a Repository Results search, and the
newest quarantined components. ``orchestrator.firewall.summary`` reads the pages and fills it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from orchestrator.iq.firewall_models import Generation, OwnerType, ViolationState
from orchestrator.report.results import ResultModel


class QuarantinedComponent(ResultModel):
    """A component the firewall holds in quarantine, with every policy that put it there."""

    component_display_text: str
    format: str
    coordinates: dict[str, str]
    repository_manager_id: str | None = None
    repository_id: str | None = None
    pathname: str
    hash: str
    quarantined_at: datetime | None
    threat_level: int = Field(description="The highest threat level among its violations.")
    policy_names: list[str]


class FirewallSummary(ResultModel):
    """Counts of a Repository Results search, and the newest quarantined components."""

    owner_type: OwnerType
    owner_id: str
    api: Generation = Field(description="The endpoint generation that answered.")
    total: int = Field(description="Rows read: one per component and policy (unless aggregate).")
    pages: int
    by_policy: dict[str, int] = Field(description="Rows per policy, most frequent first.")
    by_threat_level: dict[int, int] = Field(description="Rows per threat level, highest first.")
    by_violation_state: dict[ViolationState, int] = Field(
        description="Rows per state (every state present): quarantined if quarantineTime is "
        "set, waived if waived, not violating without a policy, else open."
    )
    quarantined_total: int = Field(description="Distinct quarantined components, all counted.")
    quarantined: list[QuarantinedComponent] = Field(
        description="The newest quarantined components, at most quarantinedLimit."
    )
