"""What every renderer shows the same way: one view of each promotion (its labels and what
changed since the baseline), totals, and which links may be shown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.report.baseline import ApplicationRef, StatusChange, ViolationChange
from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts
from orchestrator.report.run_report import RunReport

BANDS = ("critical", "severe", "moderate", "low")


@dataclass(frozen=True, slots=True)
class Headline:
    """How a run went, in one line, the same in every rendering."""

    passed: bool
    text: str


def headline(report: RunReport) -> Headline:
    """``3 of 3 promotions completed``, and what else decided the night: the gate, a stop."""
    summary = report.summary
    completed = summary.by_status[Outcome.COMPLETED]
    parts = [f"{completed} of {summary.total} promotions completed"]
    if summary.not_applicable:
        parts[0] += f" ({summary.not_applicable} did not apply)"
    gate = report.policy_gate
    if gate is not None and gate.crossed:
        parts.append(f"{len(gate.crossed)} crossed --fail-on {gate.fail_on}")
    if gate is not None and gate.unchecked:
        parts.append(f"{gate.unchecked} could not be checked against --fail-on {gate.fail_on}")
    if report.stopped is not None:
        parts.append(f"stopped: {report.stopped}")
    if report.error is not None:
        parts.append(f"ended by an error: {report.error}")
    if report.dry_run:
        parts.append("dry run")
    return Headline(report.passed, "; ".join(parts))


@dataclass(frozen=True, slots=True)
class PromotionView:
    """One promotion as every renderer shows it: the result, its labels, and what changed
    since the baseline (each renderer words the changes its own way)."""

    result: PromotionResult
    new_critical: ViolationChange | None = None
    fixed: ViolationChange | None = None
    status_change: StatusChange | None = None
    new_application: bool = False
    crossed: bool = False
    """Its report crossed ``--fail-on``."""
    unchecked: bool = False
    """``--fail-on`` was given and its report could not be checked."""

    @property
    def application(self) -> str:
        return self.result.application

    @property
    def transition(self) -> str:
        return self.result.transition

    @property
    def label(self) -> str:
        """``publicId: build -> release``: one promotion, as a test name or a tooltip."""
        return f"{self.application}: {self.transition}"

    @property
    def changed(self) -> bool:
        return any((self.new_critical, self.fixed, self.status_change, self.new_application))


def promotion_views(report: RunReport) -> list[PromotionView]:
    """A view of each result, in the report's order; baseline changes are matched by
    application and target stage, as the comparison made them."""
    baseline = report.baseline or _NO_CHANGES
    new_critical = {(v.public_id, v.target_stage_id): v for v in baseline.new_critical}
    fixed = {(v.public_id, v.target_stage_id): v for v in baseline.fixed}
    status = {(s.public_id, s.target_stage_id): s for s in baseline.status_changes}
    new_apps = {a.public_id for a in baseline.new_applications}
    gate = report.policy_gate
    crossed = set(gate.crossed) if gate is not None else set()
    unchecked = set(gate.unchecked_reports) if gate is not None else set()
    views = []
    for result in report.results:
        key = (result.public_id or "", result.target_stage_id)
        gated = f"{result.public_id} ({result.target_stage_id})"
        completed = result.status is Outcome.COMPLETED
        views.append(
            PromotionView(
                result,
                new_critical=new_critical.get(key),
                fixed=fixed.get(key),
                status_change=status.get(key),
                new_application=result.public_id in new_apps,
                crossed=completed and gated in crossed,
                unchecked=completed and gated in unchecked,
            )
        )
    return views


@dataclass(frozen=True, slots=True)
class _NoChanges:
    new_critical: tuple[ViolationChange, ...] = ()
    fixed: tuple[ViolationChange, ...] = ()
    status_changes: tuple[StatusChange, ...] = ()
    new_applications: tuple[ApplicationRef, ...] = ()


_NO_CHANGES = _NoChanges()


def web_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) address a reader may follow, else None."""
    if url is None:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def not_completed(results: Iterable[PromotionResult]) -> list[PromotionResult]:
    """What a reader should act on: not COMPLETED, and not skipped as not applicable (a
    nightly run's thousands of never-deployed applications would hide the real failures)."""
    return [r for r in results if r.status is not Outcome.COMPLETED and r.not_applicable is None]


@dataclass(frozen=True, slots=True)
class ViolationTotals:
    """Open violations summed over the reports whose violations were fetched."""

    reports: int
    """How many results carry violation counts."""
    counts: ViolationCounts
    reports_with_critical: int


def violation_totals(results: Iterable[PromotionResult]) -> ViolationTotals | None:
    """The totals, or None when no result carries violation counts (nothing to show)."""
    reports = with_critical = 0
    sums = dict.fromkeys(BANDS, 0)
    for result in results:
        if result.violations is None:
            continue
        reports += 1
        with_critical += result.violations.critical > 0
        for band in BANDS:
            sums[band] += getattr(result.violations, band)
    if not reports:
        return None
    return ViolationTotals(reports, ViolationCounts(**sums), with_critical)


def seconds(value: float | None) -> str:
    """A duration for people: ``0.4 s``, ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def webhook_line(report: RunReport) -> str | None:
    """What the run's webhook listener received, and how the promotions' ends were learned,
    in one sentence; None when the run did not listen."""
    hook = report.webhook
    if hook is None:
        return None
    rejected = sum(hook.rejected.values())
    detected = Counter(str(r.detected_by) for r in report.results if r.detected_by is not None)
    how = ", ".join(f"{n} by {by}" for by, n in sorted(detected.items())) or "none yet"
    return (
        f"Webhook at {hook.listen}: {hook.received} received, {hook.accepted} accepted, "
        f"{rejected} rejected, {hook.matched} matched a promotion, {hook.ignored} concerned "
        f"none, {hook.duplicates} repeated. Final statuses learned: {how}."
    )
