"""SKIPPED because a promotion did not apply (no scan at the source stage, evaluated lately):
counted apart, never a failure of the run, while a chain's SKIPPED still is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sample_reports import STARTED, result

from orchestrator.promote.control import RunControl
from orchestrator.render.markdown import render_markdown
from orchestrator.report.baseline import compare
from orchestrator.report.results import NotApplicable, Outcome, PromotionResult
from orchestrator.report.run_report import RunReport, Summary
from orchestrator.runner.run import exit_code


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


def _skipped(public_id: str, why: NotApplicable | None, reason: str) -> PromotionResult:
    return result(public_id, Outcome.SKIPPED, reason=reason, duration=None).model_copy(
        update={"not_applicable": why}
    )


NO_SCAN = _skipped("never-deployed", NotApplicable.NO_SOURCE_SCAN, "no operate scan")
RECENT = _skipped(
    "fresh-app", NotApplicable.RECENTLY_EVALUATED, "evaluated at operate 2h 5m ago, within 12h"
)
BROKEN_CHAIN = _skipped("chained-app", None, "earlier transition build -> build ended FAILED")


@pytest.mark.anyio
async def test_skips_that_did_not_apply_leave_the_run_a_success() -> None:
    report = _report([result("done-app", Outcome.COMPLETED), NO_SCAN, RECENT])
    assert report.summary.by_status[Outcome.SKIPPED] == 2
    assert report.summary.not_applicable == 2
    assert report.succeeded
    assert exit_code(report, RunControl()) == 0  # RunControl holds a cancel scope: async
    fields = report.summary_fields()
    assert fields["notApplicable"] == 2
    assert fields["notCompleted"] == [], "nothing to act on: they did not apply"


@pytest.mark.anyio
async def test_a_skip_because_the_chain_broke_still_fails_the_run() -> None:
    report = _report([result("done-app", Outcome.COMPLETED), NO_SCAN, BROKEN_CHAIN])
    assert report.summary.not_applicable == 1
    assert not report.succeeded
    assert exit_code(report, RunControl()) == 1
    assert [r["publicId"] for r in report.summary_fields()["notCompleted"]] == ["chained-app"]


def test_not_applicable_goes_only_with_skipped() -> None:
    completed = result("done-app", Outcome.COMPLETED).model_dump(by_alias=True)
    with pytest.raises(ValidationError, match="notApplicable goes only with SKIPPED"):
        PromotionResult.model_validate({**completed, "notApplicable": "noSourceScan"})


def test_it_survives_the_report_round_trip() -> None:
    report = _report([NO_SCAN])
    again = RunReport.model_validate_json(report.to_json())
    assert again.results[0].not_applicable is NotApplicable.NO_SOURCE_SCAN
    assert '"notApplicable": "noSourceScan"' in report.to_json()
    assert again.summary.not_applicable == 1


def test_skipped_because_evaluated_lately_is_no_regression() -> None:
    before = _report([result("fresh-app", Outcome.COMPLETED, target="operate")])
    after = _report([RECENT.model_copy(update={"target_stage_id": "operate"})])
    comparison = compare(after, before, "old.json")
    assert comparison.counts.regressed == 0
    assert comparison.status_changes == []


def test_the_markdown_summary_lists_only_what_to_act_on() -> None:
    text = render_markdown(_report([result("done-app", Outcome.COMPLETED), NO_SCAN, BROKEN_CHAIN]))
    assert text.startswith("## ❌ iq-promote: 1 of 3 promotions completed")
    assert "### Not completed (1)" in text
    assert "chained-app" in text
    assert "never-deployed" not in text, "it did not apply: nothing to act on"
