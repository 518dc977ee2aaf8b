"""JUnit XML, for CI servers' test views: one testcase per promotion.

FAILED, ERROR and TIMED_OUT are failures (the promotion did not do its job), SKIPPED is
skipped, CANCELLED is an error (the run, not the promotion, was stopped). The document is
valid against the JUnit schema Jenkins and its peers read (``junit-10.xsd``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestrator.render.views import (
    BANDS,
    PromotionView,
    promotion_views,
    seconds,
    violation_totals,
)
from orchestrator.report.baseline import BaselineComparison
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.report.run_report import RunReport

SUITE_NAME = "iq-promote"
FAILURES = (Outcome.FAILED, Outcome.ERROR, Outcome.TIMED_OUT)

# XML 1.0 cannot carry most control characters, even escaped; a reason from a server could.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _time(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def render_junit(report: RunReport) -> str:
    """The report as a JUnit XML document."""
    counts = report.summary.by_status
    views = promotion_views(report)
    failures = sum(counts[o] for o in FAILURES) + sum(1 for v in views if v.crossed or v.unchecked)
    suites = ET.Element(
        "testsuites",
        name=SUITE_NAME,
        tests=str(report.summary.total),
        failures=str(failures),
        errors=str(counts[Outcome.CANCELLED]),
        time=_time(report.duration_seconds),
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=SUITE_NAME,
        tests=str(report.summary.total),
        failures=str(failures),
        errors=str(counts[Outcome.CANCELLED]),
        skipped=str(counts[Outcome.SKIPPED]),
        time=_time(report.duration_seconds),
        timestamp=report.started_at.isoformat(timespec="seconds"),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(report):
        ET.SubElement(properties, "property", name=name, value=_text(value))
    gate = report.policy_gate.fail_on if report.policy_gate is not None else None
    for view in views:
        _testcase(suite, view, gate)
    if report.baseline is not None:
        ET.SubElement(suite, "system-out").text = _text(_baseline_text(report.baseline))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _properties(report: RunReport) -> list[tuple[str, str]]:
    props = [
        ("serverUrl", report.server_url),
        ("manifest", report.manifest),
        ("dryRun", str(report.dry_run).lower()),
        ("startedAt", report.started_at.isoformat()),
        ("finishedAt", report.finished_at.isoformat()),
    ]
    props.extend((f"status.{o}", str(n)) for o, n in report.summary.by_status.items())
    totals = violation_totals(report.results)
    if totals is not None:
        props.extend((f"violations.{b}", str(getattr(totals.counts, b))) for b in BANDS)
    if report.baseline is not None:
        props.append(("baseline", report.baseline.baseline_path))
        props.extend(
            (f"baseline.{name}", str(value))
            for name, value in report.baseline.counts.model_dump(by_alias=True).items()
        )
    return props


def _testcase(suite: ET.Element, view: PromotionView, fail_on: str | None) -> None:
    result = view.result
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_text(result.organization or SUITE_NAME),
        name=_text(view.label),
    )
    if result.duration_seconds is not None:
        case.set("time", _time(result.duration_seconds))
    reason = result.reason or str(result.status)
    detail = _detail(result, _changes(view))
    if result.status in FAILURES:
        outcome = ET.SubElement(case, "failure", message=_text(reason), type=str(result.status))
        outcome.text = _text(detail)
    elif result.status is Outcome.CANCELLED:
        outcome = ET.SubElement(case, "error", message=_text(reason), type=str(result.status))
        outcome.text = _text(detail)
    elif result.status is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=_text(reason))
    elif view.crossed or view.unchecked:
        why = (
            f"its report crossed --fail-on {fail_on}"
            if view.crossed
            else f"its report could not be checked against --fail-on {fail_on}: "
            f"{result.violations_unchecked}"
        )
        outcome = ET.SubElement(case, "failure", message=_text(why), type="POLICY_GATE")
        outcome.text = _text(detail)
    else:
        ET.SubElement(case, "system-out").text = _text(detail)


def _detail(result: PromotionResult, changes: list[str]) -> str:
    lines = [f"status: {result.status}"]
    if result.reason:
        lines.append(f"reason: {result.reason}")
    lines.append(f"attempts: {result.attempts}, polls: {result.polls}")
    if result.duration_seconds is not None:
        lines.append(f"duration: {seconds(result.duration_seconds)}")
    if result.violations is not None:
        v = result.violations
        lines.append(
            f"open violations: critical {v.critical}, severe {v.severe}, "
            f"moderate {v.moderate}, low {v.low}"
        )
    lines.extend(changes)
    if result.report_html_url:
        lines.append(f"report: {result.report_html_url}")
    return "\n".join(lines)


def _changes(view: PromotionView) -> list[str]:
    """What changed since the baseline, in words for a test's output."""
    lines = []
    if (v := view.new_critical) is not None:
        before = "no report" if v.critical_before is None else str(v.critical_before)
        lines.append(f"since baseline: new critical violations ({before} -> {v.critical_after})")
    if (v := view.fixed) is not None:
        lines.append(f"since baseline: critical violations fixed ({v.critical_before} -> 0)")
    if (s := view.status_change) is not None:
        lines.append(f"since baseline: status {s.status_before} -> {s.status_after}")
    return lines


def _baseline_text(baseline: BaselineComparison) -> str:
    c = baseline.counts
    lines = [
        f"Compared with {baseline.baseline_path} "
        f"(run started {baseline.baseline_started_at.isoformat()}):",
        f"  new critical violations: {c.new_critical}",
        f"  critical violations fixed: {c.fixed}",
        f"  status changes: {c.status_changed} ({c.regressed} no longer completed)",
        f"  critical violations with no earlier count: {c.no_earlier_count}",
        f"  new applications: {c.new_applications}",
        f"  missing applications: {c.missing_applications}",
    ]
    lines.extend(
        f"  new critical: {v.public_id} {v.target_stage_id} ({v.critical_after})"
        for v in baseline.new_critical
    )
    lines.extend(f"  fixed: {v.public_id} {v.target_stage_id}" for v in baseline.fixed)
    lines.extend(
        f"  status: {s.public_id} {s.target_stage_id} {s.status_before} -> {s.status_after}"
        for s in baseline.status_changes
    )
    lines.extend(f"  new application: {a.public_id}" for a in baseline.new_applications)
    lines.extend(f"  missing application: {a.public_id}" for a in baseline.missing_applications)
    return "\n".join(lines)
