"""Comparing a run with an earlier one (the baseline): what got worse, what got better.

Promotions are matched by application and target stage, since that names the report whose
violations are counted; an application's promotions are matched across runs even when the
scan ids differ. Results without a public id (an unknown organization) are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from pydantic import Field

from orchestrator.report.results import Outcome, PromotionResult, ResultModel


class RunRecord(Protocol):
    """What a comparison reads of a run: a :class:`~orchestrator.report.run_report.RunReport`
    is one (the report holds the comparison, so this module cannot import it)."""

    @property
    def started_at(self) -> datetime: ...

    @property
    def results(self) -> Sequence[PromotionResult]: ...


class ViolationChange(ResultModel):
    """Critical violations of one application's report at one stage, then and now."""

    public_id: str
    organization: str | None = None
    target_stage_id: str
    critical_before: int | None = Field(
        description="Critical violations in the baseline; null when it had no count of them "
        "(no such report, or its violations were not read)."
    )
    critical_after: int
    report_html_url: str | None = None


class StatusChange(ResultModel):
    """A promotion that ended differently in the baseline."""

    public_id: str
    organization: str | None = None
    target_stage_id: str
    status_before: Outcome
    status_after: Outcome
    reason: str | None = Field(default=None, description="Why it did not complete this time.")
    report_html_url: str | None = None

    @property
    def regressed(self) -> bool:
        """True when it completed in the baseline and not now."""
        return (
            self.status_before is Outcome.COMPLETED and self.status_after is not Outcome.COMPLETED
        )


class ApplicationRef(ResultModel):
    """An application that is in only one of the two runs."""

    public_id: str
    organization: str | None = None


class ChangeCounts(ResultModel):
    """How many of each kind of change; each count is the length of its list."""

    new_critical: int = 0
    fixed: int = 0
    status_changed: int = 0
    regressed: int = Field(default=0, description="Status changes from COMPLETED to not.")
    no_earlier_count: int = Field(
        default=0,
        description="Reports with critical violations whose baseline had no count to compare "
        "with: unknown is not zero, so they are not new.",
    )
    new_applications: int = 0
    missing_applications: int = 0


class BaselineComparison(ResultModel):
    """What changed between a baseline run and this one."""

    baseline_path: str = Field(description="The baseline report compared with.")
    baseline_started_at: datetime
    counts: ChangeCounts
    new_critical: list[ViolationChange] = Field(
        description="Critical violations where the baseline counted none."
    )
    no_earlier_count: list[ViolationChange] = Field(
        default_factory=list,
        description="Critical violations where the baseline had no count (no such report, or "
        "its violations were not read): not counted as new.",
    )
    fixed: list[ViolationChange] = Field(description="Critical violations that went to zero.")
    status_changes: list[StatusChange]
    new_applications: list[ApplicationRef]
    missing_applications: list[ApplicationRef]

    @property
    def has_changes(self) -> bool:
        counts = self.counts
        return any(
            (
                counts.new_critical,
                counts.fixed,
                counts.status_changed,
                counts.no_earlier_count,
                counts.new_applications,
                counts.missing_applications,
            )
        )


Key = tuple[str, str]


def _by_key(results: Iterable[PromotionResult]) -> dict[Key, PromotionResult]:
    """Index results by (publicId, target stage); the last of duplicates wins, as it ran last."""
    return {(r.public_id, r.target_stage_id): r for r in results if r.public_id is not None}


def _applications(results: Iterable[PromotionResult]) -> dict[str, str | None]:
    apps: dict[str, str | None] = {}
    for r in results:
        if r.public_id is not None:
            apps[r.public_id] = apps.get(r.public_id) or r.organization
    return apps


def _critical(result: PromotionResult | None) -> int | None:
    if result is None or result.violations is None:
        return None
    return result.violations.critical


def compare(current: RunRecord, baseline: RunRecord, baseline_path: str) -> BaselineComparison:
    """Compare ``current`` with the ``baseline`` run read from ``baseline_path``."""
    before = _by_key(baseline.results)
    after = _by_key(current.results)
    new_critical: list[ViolationChange] = []
    unknown_before: list[ViolationChange] = []
    fixed: list[ViolationChange] = []
    status_changes: list[StatusChange] = []
    for key, now in after.items():
        then = before.get(key)
        critical_before, critical_after = _critical(then), _critical(now)
        change = (
            ViolationChange(
                public_id=key[0],
                organization=now.organization,
                target_stage_id=key[1],
                critical_before=critical_before,
                critical_after=critical_after,
                report_html_url=now.report_html_url,
            )
            if critical_after is not None
            else None
        )
        if change is not None and critical_after and critical_before is None:
            unknown_before.append(change)
        elif change is not None and critical_after and not critical_before:
            new_critical.append(change)
        elif change is not None and critical_after == 0 and critical_before:
            fixed.append(change)
        # A promotion that did not apply tonight (evaluated lately) did not get worse.
        if then is not None and then.status is not now.status and now.not_applicable is None:
            status_changes.append(
                StatusChange(
                    public_id=key[0],
                    organization=now.organization,
                    target_stage_id=key[1],
                    status_before=then.status,
                    status_after=now.status,
                    reason=now.reason,
                    report_html_url=now.report_html_url,
                )
            )
    apps_before, apps_after = _applications(baseline.results), _applications(current.results)
    new_apps = [
        ApplicationRef(public_id=p, organization=o)
        for p, o in apps_after.items()
        if p not in apps_before
    ]
    missing_apps = [
        ApplicationRef(public_id=p, organization=o)
        for p, o in apps_before.items()
        if p not in apps_after
    ]
    return BaselineComparison(
        baseline_path=baseline_path,
        baseline_started_at=baseline.started_at,
        counts=ChangeCounts(
            new_critical=len(new_critical),
            fixed=len(fixed),
            status_changed=len(status_changes),
            regressed=sum(1 for c in status_changes if c.regressed),
            no_earlier_count=len(unknown_before),
            new_applications=len(new_apps),
            missing_applications=len(missing_apps),
        ),
        new_critical=new_critical,
        no_earlier_count=unknown_before,
        fixed=fixed,
        status_changes=status_changes,
        new_applications=new_apps,
        missing_applications=missing_apps,
    )
