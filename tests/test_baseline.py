"""Comparing a run with a baseline run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sample_reports import (
    BASELINE_PATH,
    FIXED_APP,
    KNOWN_APP,
    MISSING_APP,
    NEW_APP,
    REGRESSED_APP,
    STARTED,
    previous_report,
    result,
    sample_report,
)

from orchestrator.report.baseline import BaselineComparison, compare
from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts
from orchestrator.report.run_report import RunReport, Summary, load_report, write_report


def _report(results: list[PromotionResult]) -> RunReport:
    return RunReport(
        started_at=STARTED,
        finished_at=STARTED + timedelta(minutes=5),
        duration_seconds=300.0,
        server_url="http://127.0.0.1:8070",
        manifest="m.yaml",
        summary=Summary.of(results),
        results=results,
    )


def test_sample_changes_are_found() -> None:
    comparison = compare(sample_report(with_baseline=False), previous_report(), BASELINE_PATH)
    assert comparison.baseline_path == BASELINE_PATH
    assert [
        (v.public_id, v.critical_before, v.critical_after) for v in comparison.new_critical
    ] == [(KNOWN_APP, 0, 3)]
    assert [(v.public_id, v.critical_before, v.critical_after) for v in comparison.fixed] == [
        (FIXED_APP, 2, 0)
    ]
    [change] = comparison.status_changes
    assert change.public_id == REGRESSED_APP
    assert (change.status_before, change.status_after) == (Outcome.COMPLETED, Outcome.FAILED)
    assert change.regressed
    assert [a.public_id for a in comparison.new_applications] == [NEW_APP]
    assert [a.public_id for a in comparison.missing_applications] == [MISSING_APP]
    assert comparison.counts.model_dump() == {
        "new_critical": 1,
        "fixed": 1,
        "status_changed": 1,
        "regressed": 1,
        "no_earlier_count": 0,
        "new_applications": 1,
        "missing_applications": 1,
    }
    assert comparison.has_changes


def test_a_run_compared_with_itself_has_no_changes() -> None:
    report = sample_report(with_baseline=False)
    comparison = compare(report, report, "same.json")
    assert not comparison.has_changes
    assert comparison.new_critical == comparison.fixed == []
    assert comparison.status_changes == []


def test_critical_in_a_report_new_to_the_run_has_no_earlier_count() -> None:
    current = _report([result("fresh", Outcome.COMPLETED, violations=ViolationCounts(critical=2))])
    comparison = compare(current, _report([]), "old.json")
    assert comparison.new_critical == []
    [change] = comparison.no_earlier_count
    assert comparison.counts.no_earlier_count == 1
    assert change.critical_before is None
    assert change.critical_after == 2
    assert [a.public_id for a in comparison.new_applications] == ["fresh"]


def test_more_criticals_than_before_is_not_new_and_unknown_now_is_not_fixed() -> None:
    before = _report(
        [
            result("worse", Outcome.COMPLETED, violations=ViolationCounts(critical=1)),
            result("unknown", Outcome.COMPLETED, violations=ViolationCounts(critical=4)),
        ]
    )
    after = _report(
        [
            result("worse", Outcome.COMPLETED, violations=ViolationCounts(critical=5)),
            result("unknown", Outcome.FAILED, reason="evaluation failed"),
        ]
    )
    comparison = compare(after, before, "old.json")
    assert comparison.new_critical == []
    assert comparison.fixed == []
    [change] = comparison.status_changes
    assert change.public_id == "unknown"
    assert change.reason == "evaluation failed"


def test_recovery_is_a_status_change_but_not_a_regression() -> None:
    before = _report([result("app", Outcome.TIMED_OUT)])
    after = _report([result("app", Outcome.COMPLETED)])
    comparison = compare(after, before, "old.json")
    assert comparison.counts.status_changed == 1
    assert comparison.counts.regressed == 0


def test_promotions_are_matched_by_application_and_target_stage() -> None:
    before = _report([result("app", Outcome.COMPLETED, target="release")])
    after = _report(
        [
            result("app", Outcome.FAILED, target="operate"),
            result("app", Outcome.COMPLETED, scan_id="abc", target="release"),
        ]
    )
    comparison = compare(after, before, "old.json")
    assert comparison.status_changes == []
    assert comparison.new_applications == comparison.missing_applications == []


def test_results_without_public_id_are_not_compared() -> None:
    nameless = result(None, Outcome.ERROR, organization="Ghost", reason="unknown organization")
    comparison = compare(_report([nameless]), _report([]), "old.json")
    assert not comparison.has_changes


def test_report_with_baseline_survives_a_round_trip(tmp_path: Path) -> None:
    report = sample_report()
    assert report.baseline is not None
    path = tmp_path / "run.json"
    write_report(report, path)
    loaded = load_report(path)
    assert loaded == report
    assert '"baseline": {' in path.read_text(encoding="utf-8")
    assert '"newCritical": [' in path.read_text(encoding="utf-8")


def test_a_report_written_a_result_at_a_time_is_the_whole_document(tmp_path: Path) -> None:
    """The report is streamed to disk, one result at a time, as the same text the whole
    document serializes to, with results or without, with a baseline's own lists inside."""
    for report in (
        sample_report(),
        sample_report(size=2, with_baseline=False),
        sample_report(size=2).model_copy(update={"results": []}),
    ):
        whole = report.model_dump_json(by_alias=True, indent=2) + "\n"
        assert report.to_json() == whole
        write_report(report, tmp_path / "run.json")
        assert (tmp_path / "run.json").read_text(encoding="utf-8") == whole


def test_report_without_baseline_still_loads() -> None:
    data = sample_report(with_baseline=False).model_dump(mode="json", by_alias=True)
    data.pop("baseline")
    assert RunReport.model_validate(data).baseline is None


def test_report_schema_describes_the_baseline() -> None:
    schema = RunReport.json_schema()
    assert "baseline" in schema["properties"]
    assert "BaselineComparison" in schema["$defs"]


statuses = st.sampled_from(list(Outcome))
criticals = st.one_of(st.none(), st.integers(0, 3))


@settings(max_examples=60)
@given(
    st.dictionaries(st.sampled_from("abcdef"), st.tuples(statuses, criticals), max_size=6),
    st.dictionaries(st.sampled_from("abcdef"), st.tuples(statuses, criticals), max_size=6),
)
def test_counts_match_lists_and_swapping_swaps_new_and_missing(
    old: dict[str, tuple[Outcome, int | None]], new: dict[str, tuple[Outcome, int | None]]
) -> None:
    def run(apps: dict[str, tuple[Outcome, int | None]]) -> RunReport:
        return _report(
            [
                result(
                    name,
                    status,
                    violations=None if critical is None else ViolationCounts(critical=critical),
                )
                for name, (status, critical) in apps.items()
            ]
        )

    forward: BaselineComparison = compare(run(new), run(old), "old.json")
    backward = compare(run(old), run(new), "new.json")
    c = forward.counts
    assert c.new_critical == len(forward.new_critical)
    assert c.fixed == len(forward.fixed)
    assert c.status_changed == len(forward.status_changes)
    assert {a.public_id for a in forward.new_applications} == set(new) - set(old)
    assert forward.new_applications == backward.missing_applications
    assert c.status_changed == backward.counts.status_changed
    for v in forward.new_critical:
        assert v.critical_after > 0
        assert not v.critical_before
    for v in forward.fixed:
        assert v.critical_after == 0
        assert v.critical_before


def test_a_count_the_baseline_never_read_is_not_zero() -> None:
    """The night before read no violations (no --fail-on): tonight's criticals are unknown
    before, counted apart, and never reported as new."""
    before = _report([result(f"app-{i}", Outcome.COMPLETED, violations=None) for i in range(5)])
    after = _report(
        [
            result(f"app-{i}", Outcome.COMPLETED, violations=ViolationCounts(critical=i))
            for i in range(5)
        ]
    )
    comparison = compare(after, before, "old.json")
    assert comparison.new_critical == []
    assert [c.public_id for c in comparison.no_earlier_count] == [f"app-{i}" for i in range(1, 5)]
    assert comparison.counts.new_critical == 0
    assert comparison.counts.no_earlier_count == 4
    assert comparison.has_changes
