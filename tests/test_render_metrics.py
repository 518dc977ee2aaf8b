"""Prometheus textfile metrics, read back with prometheus_client's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sample_reports import completed_report, sample_report

from orchestrator.render import RenderOutputs, write_outputs
from orchestrator.render.metrics import DURATION_BUCKETS, previous_last_success, render_metrics
from orchestrator.report.results import Outcome


def _families(text: str) -> dict[str, tuple[str, list[Sample]]]:
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def _value(text: str, name: str) -> float:
    [sample] = _families(text)[name][1]
    return sample.value


def test_promotions_by_status_has_every_status() -> None:
    report = sample_report()
    kind, samples = _families(render_metrics(report))["iq_promote_promotions"]
    assert kind == "gauge"
    assert {s.labels["status"]: s.value for s in samples} == {
        str(o): float(n) for o, n in report.summary.by_status.items()
    }
    zero = completed_report(2)
    _, samples = _families(render_metrics(zero))["iq_promote_promotions"]
    assert {s.labels["status"] for s in samples} == {str(o) for o in Outcome}


def test_duration_histogram() -> None:
    report = sample_report()
    kind, samples = _families(render_metrics(report))["iq_promote_promotion_duration_seconds"]
    assert kind == "histogram"
    durations = [r.duration_seconds for r in report.results if r.duration_seconds is not None]
    buckets = [s for s in samples if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets] == [*(_le(b) for b in DURATION_BUCKETS), "+Inf"]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts)
    assert counts[-1] == len(durations)
    for bucket in buckets[:-1]:
        bound = float(bucket.labels["le"])
        assert bucket.value == sum(1 for d in durations if d <= bound)
    by_name = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert by_name["iq_promote_promotion_duration_seconds_count"] == len(durations)
    assert by_name["iq_promote_promotion_duration_seconds_sum"] == pytest.approx(sum(durations))


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def test_run_gauges() -> None:
    report = sample_report()
    text = render_metrics(report)
    assert "# HELP iq_promote_run_duration_seconds " in text
    assert "# TYPE iq_promote_last_run_timestamp_seconds gauge" in text
    assert _value(text, "iq_promote_run_duration_seconds") == report.duration_seconds
    assert _value(text, "iq_promote_last_run_timestamp_seconds") == pytest.approx(
        report.finished_at.timestamp()
    )


def test_successful_run_sets_last_success() -> None:
    report = completed_report(3)
    text = render_metrics(report, previous_last_success=12.0)
    assert _value(text, "iq_promote_last_success_timestamp_seconds") == pytest.approx(
        report.finished_at.timestamp()
    )


def test_unsuccessful_run_keeps_the_previous_last_success() -> None:
    report = sample_report()
    assert not report.succeeded
    text = render_metrics(report, previous_last_success=1_700_000_000.5)
    assert _value(text, "iq_promote_last_success_timestamp_seconds") == 1_700_000_000.5
    assert _value(render_metrics(report), "iq_promote_last_success_timestamp_seconds") == 0


def test_every_metric_has_help_and_type() -> None:
    text = render_metrics(sample_report())
    for family in text_string_to_metric_families(text):
        assert f"# HELP {family.name} " in text
        assert f"# TYPE {family.name} {family.type}" in text
        assert family.documentation


def test_violations_and_baseline_when_present() -> None:
    report = sample_report()
    families = _families(render_metrics(report))
    bands = {s.labels["band"]: s.value for s in families["iq_promote_policy_violations"][1]}
    with_counts = [r.violations for r in report.results if r.violations is not None]
    assert bands["critical"] == sum(v.critical for v in with_counts)
    assert set(bands) == {"critical", "severe", "moderate", "low"}
    changes = {s.labels["change"]: s.value for s in families["iq_promote_baseline_changes"][1]}
    assert changes["new_critical"] == 1
    assert changes["missing_applications"] == 1

    plain = sample_report(with_baseline=False)
    for r in plain.results:
        r.violations = None
    families = _families(render_metrics(plain))
    assert "iq_promote_policy_violations" not in families
    assert "iq_promote_baseline_changes" not in families


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("iq_promote_last_success_timestamp_seconds 1741053600\n", 1741053600.0),
        ("# HELP x y\niq_promote_last_success_timestamp_seconds 1.5e9 1700000000000\n", 1.5e9),
        ("iq_promote_last_success_timestamp_seconds 0\n", None),
        ("iq_promote_last_success_timestamp_seconds NaN\n", None),
        ("iq_promote_last_success_timestamp_seconds_other 5\n", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_previous_last_success(text: str, found: float | None) -> None:
    assert previous_last_success(text) == found


def test_written_file_carries_last_success_across_failed_runs(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "iq_promote.prom"
    good = completed_report(2)
    write_outputs(good, RenderOutputs(metrics=path))
    success = good.finished_at.timestamp()
    assert _value(path.read_text(), "iq_promote_last_success_timestamp_seconds") == success

    bad = sample_report()
    for _ in range(2):
        write_outputs(bad, RenderOutputs(metrics=path))
        text = path.read_text()
        assert _value(text, "iq_promote_last_success_timestamp_seconds") == success
        assert _value(text, "iq_promote_last_run_timestamp_seconds") == pytest.approx(
            bad.finished_at.timestamp()
        )

    later = completed_report(2, day=1)
    write_outputs(later, RenderOutputs(metrics=path))
    assert _value(path.read_text(), "iq_promote_last_success_timestamp_seconds") == pytest.approx(
        later.finished_at.timestamp()
    )
    assert [p.name for p in path.parent.iterdir()] == ["iq_promote.prom"]
