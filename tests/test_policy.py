"""Threat bands, violation counts and thresholds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_reports import result

from orchestrator.iq.report_models import PolicyComponent, PolicyReport, PolicyViolation, RawReport
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


def _violation(
    level: int, *, waived: bool = False, grandfathered: bool = False, legacy: bool = False
) -> PolicyViolation:
    return PolicyViolation(
        policy_id=f"p{level}",
        policy_name=f"Policy {level}",
        policy_threat_level=level,
        waived=waived,
        grandfathered=grandfathered,
        legacy_violation=legacy,
    )


def test_count_violations_counts_only_open_ones() -> None:
    """Waived, grandfathered and legacy violations are not held against the application."""
    data = PolicyReport(
        components=[
            PolicyComponent(
                display_name="log4j-core 2.14.1",
                violations=[
                    _violation(10),
                    _violation(9, waived=True),
                    _violation(9, grandfathered=True),
                    _violation(8, legacy=True),
                    _violation(5),
                ],
            ),
            PolicyComponent(
                display_name="commons-text 1.9",
                violations=[_violation(8), _violation(3), _violation(1), _violation(0)],
            ),
            PolicyComponent(display_name="clean 1.0"),
        ]
    )
    assert count_violations(data) == ViolationCounts(critical=2, severe=1, moderate=1, low=1)


def test_raw_report_data_has_no_violations_to_count() -> None:
    """The raw data (where reportDataUrl points) has components, security and license data,
    and no violations: read as policy data, it would count nothing however bad it is."""
    raw = RawReport.model_validate(
        {
            "components": [
                {
                    "displayName": "log4j-core 2.14.1",
                    "securityData": {"securityIssues": [{"reference": "CVE-2021-44228"}]},
                }
            ]
        }
    )
    assert all(not hasattr(c, "violations") for c in raw.components)
    assert count_violations(PolicyReport.model_validate(raw.model_dump(by_alias=True))) == (
        ViolationCounts()
    )


def test_a_violation_without_a_threat_level_is_not_counted_as_none() -> None:
    with pytest.raises(ValueError, match="policyThreatLevel"):
        PolicyReport.model_validate(
            {"components": [{"violations": [{"policyName": "Security-High"}]}]}
        )


def test_count_violations_reads_iq_policy_data() -> None:
    data = PolicyReport.model_validate(
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
    data = PolicyReport(
        components=[
            PolicyComponent(
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
    assert verdict == PolicyGate(fail_on="severe", crossed=[], unchecked=0, unchecked_reports=[])
    assert not verdict.failed


def test_gate_fails_closed_on_reports_it_could_not_check() -> None:
    """Unknown is not zero: a completed promotion whose policy data could not be read fails
    the gate as a crossing one does, and is named."""
    results = [
        result("unread", Outcome.COMPLETED),
        result("unread-too", Outcome.COMPLETED, target="operate"),
        result("failed", Outcome.FAILED),
        result("read", Outcome.COMPLETED, violations=ViolationCounts(moderate=1)),
    ]
    verdict = gate(results, "critical")
    assert verdict.unchecked == 2
    assert verdict.unchecked_reports == ["unread (release)", "unread-too (operate)"]
    assert verdict.crossed == []
    assert verdict.failed


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
        "uncheckedReports": [],
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
    assert verdict.failed == (bool(crossing) or verdict.unchecked > 0)
