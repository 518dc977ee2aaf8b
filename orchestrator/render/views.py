"""What several renderers say the same way: labels, totals and which links may be shown."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts

ARROW = "\u2192"
BANDS = ("critical", "severe", "moderate", "low")


def source_label(result: PromotionResult) -> str:
    """Where the promoted scan came from: its source stage, else its scan id."""
    return result.source_stage_id or result.scan_id or "?"


def transition_label(result: PromotionResult) -> str:
    """``source→target``, e.g. ``build→release`` or ``3f2a…→release``."""
    return f"{source_label(result)}{ARROW}{result.target_stage_id}"


def application_label(result: PromotionResult) -> str:
    """The public id; an entry that named an unknown organization has none, so say which."""
    return result.public_id or f"promotions[{result.entry_index}]"


def promotion_label(result: PromotionResult) -> str:
    """``publicId: source→target``: one promotion, as a test name or a tooltip."""
    return f"{application_label(result)}: {transition_label(result)}"


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
    return [r for r in results if r.status is not Outcome.COMPLETED]


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
