"""Threat bands, violation counts and thresholds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_reports import result

from orchestrator.iq.models import PolicyViolation, ReportComponent, ReportData
from orchestrator.report.gate import PolicyGate, Threshold, crosses, gate
from orchestrator.report.results import Outcome, ViolationCounts
from orchestrator.report.violations import band_of, count_violations


@pytest.mark.parametrize(
    ("level", "band"),
    [
        (0, None),
        (1, "low"),
        (2, "moderate"),
        (3, "moderate"),
        (4, "severe"),
        (7, "severe"),
        (8, "critical"),
        (10, "critical"),
    ],
)
def test_band_edges(level: int, band: str | None) -> None:
    assert band_of(level) == band


@given(st.integers(0, 10), st.integers(0, 10))
def test_bands_rise_with_threat_level(a: int, b: int) -> None:
    order = [None, "low", "moderate", "severe", "critical"]
    low, high = sorted((a, b))
    assert order.index(band_of(low)) <= order.index(band_of(high))


@pytest.mark.parametrize("level", [-1, 11, 100])
def test_band_rejects_levels_outside_iq_range(level: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        band_of(level)


def _violation(level: int, *, waived: bool = False, grandfathered: bool = False) -> PolicyViolation:
    return PolicyViolation(
        policy_id=f"p{level}",
        policy_name=f"Policy {level}",
        policy_threat_level=level,
        waived=waived,
        grandfathered=grandfathered,
    )


def test_count_violations_skips_waived_ones() -> None:
    data = ReportData(
        components=[
            ReportComponent(
                display_name="log4j-core 2.14.1",
                violations=[_violation(10), _violation(9, waived=True), _violation(5)],
            ),
            ReportComponent(
                display_name="commons-text 1.9",
                violations=[_violation(8), _violation(3), _violation(1), _violation(0)],
            ),
            ReportComponent(display_name="clean 1.0"),
        ]
    )
    assert count_violations(data) == ViolationCounts(critical=2, severe=1, moderate=1, low=1)


def test_count_violations_reads_iq_report_data() -> None:
    data = ReportData.model_validate(
        {
            "components": [
                {
                    "displayName": "jackson-databind 2.9.8",
                    "violations": [
                        {
                            "policyId": "a",
                            "policyName": "Security-Critical",
                            "policyThreatLevel": 10,
                        },
                        {
                            "policyId": "b",
                            "policyName": "License",
                            "policyThreatLevel": 7,
                            "waived": True,
                        },
                    ],
                }
            ]
        }
    )
    assert count_violations(data) == ViolationCounts(critical=1)


levels = st.lists(st.tuples(st.integers(0, 10), st.booleans()), max_size=30)


@given(st.lists(levels, max_size=6))
def test_count_violations_counts_each_open_violation_once(
    components: list[list[tuple[int, bool]]],
) -> None:
    data = ReportData(
        components=[
            ReportComponent(
                display_name=f"c{i}",
                violations=[_violation(level, waived=waived) for level, waived in violations],
            )
            for i, violations in enumerate(components)
        ]
    )
    counts = count_violations(data)
    open_levels = [level for vs in components for level, waived in vs if not waived]
    assert counts.critical == sum(1 for level in open_levels if level >= 8)
    assert counts.critical + counts.severe + counts.moderate + counts.low == sum(
        1 for level in open_levels if level >= 1
    )


def test_crosses() -> None:
    assert crosses(ViolationCounts(critical=1), "critical")
    assert crosses(ViolationCounts(critical=1), "severe")
    assert not crosses(ViolationCounts(severe=4, moderate=9), "critical")
    assert crosses(ViolationCounts(severe=4), "severe")
    assert not crosses(ViolationCounts(moderate=3, low=7), "severe")
    assert not crosses(ViolationCounts(), "severe")


counts = st.builds(
    ViolationCounts,
    critical=st.integers(0, 5),
    severe=st.integers(0, 5),
    moderate=st.integers(0, 5),
    low=st.integers(0, 5),
)


@given(counts)
def test_critical_threshold_is_stricter_than_severe(c: ViolationCounts) -> None:
    assert not crosses(c, "critical") or crosses(c, "severe")
    assert crosses(c, "severe") == (c.critical + c.severe > 0)


# --- the --fail-on gate ----------------------------------------------------------------------


def test_gate_names_the_completed_reports_that_cross_the_threshold() -> None:
    results = [
        result("severe-only", Outcome.COMPLETED, violations=ViolationCounts(severe=3, low=2)),
        result("bad", Outcome.COMPLETED, target="release", violations=ViolationCounts(critical=1)),
        result(
            "worse", Outcome.COMPLETED, target="operate", violations=ViolationCounts(critical=4)
        ),
    ]
    verdict = gate(results, "critical")
    assert verdict.crossed == ["bad (release)", "worse (operate)"]
    assert verdict.unchecked == 0
    assert verdict.failed
    assert gate(results, "severe").crossed == [
        "severe-only (release)",
        "bad (release)",
        "worse (operate)",
    ]


def test_gate_ignores_promotions_that_did_not_complete() -> None:
    critical = ViolationCounts(critical=2)
    results = [
        result(f"app-{status.lower()}", status, violations=critical)
        for status in Outcome
        if status is not Outcome.COMPLETED
    ]
    verdict = gate(results, "severe")
    assert verdict == PolicyGate(fail_on="severe", crossed=[], unchecked=0)
    assert not verdict.failed


def test_gate_counts_completed_promotions_without_counts_as_unchecked() -> None:
    results = [
        result("unread", Outcome.COMPLETED),
        result("unread-too", Outcome.COMPLETED),
        result("failed", Outcome.FAILED),
        result("read", Outcome.COMPLETED, violations=ViolationCounts(moderate=1)),
    ]
    verdict = gate(results, "critical")
    assert verdict.unchecked == 2
    assert verdict.crossed == []
    assert not verdict.failed  # what could not be checked does not fail the gate; it is counted


def test_gate_of_nothing_passes() -> None:
    verdict = gate([], "critical")
    assert (verdict.crossed, verdict.unchecked, verdict.failed) == ([], 0, False)


def test_policy_gate_in_json() -> None:
    verdict = gate(
        [result("bad", Outcome.COMPLETED, violations=ViolationCounts(critical=1))], "critical"
    )
    assert verdict.model_dump(mode="json", by_alias=True) == {
        "failOn": "critical",
        "crossed": ["bad (release)"],
        "unchecked": 0,
    }
    assert PolicyGate.model_validate_json(verdict.model_dump_json(by_alias=True)) == verdict


outcomes = st.sampled_from(list(Outcome))
thresholds: st.SearchStrategy[Threshold] = st.sampled_from(["critical", "severe"])


@given(st.lists(st.tuples(outcomes, st.none() | counts), max_size=20), thresholds)
def test_gate_fails_exactly_when_a_completed_report_crosses(
    items: list[tuple[Outcome, ViolationCounts | None]], threshold: Threshold
) -> None:
    results = [
        result(f"app-{i}", status, violations=violations)
        for i, (status, violations) in enumerate(items)
    ]
    verdict = gate(results, threshold)
    completed = [v for s, v in items if s is Outcome.COMPLETED]
    crossing = [v for v in completed if v is not None and crosses(v, threshold)]
    assert verdict.unchecked == sum(1 for v in completed if v is None)
    assert len(verdict.crossed) == len(crossing)
    assert verdict.failed == bool(crossing)
