"""The manifest's ``repositoryResults:`` section and the counting behind the firewall summary."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.firewall.query import Owner
from orchestrator.firewall.summary import (
    NO_POLICY,
    SummaryCounter,
    section_owner,
    section_query,
    violation_state,
)
from orchestrator.iq.firewall_models import (
    REPOSITORY_CONTAINER_ID,
    ApiChoice,
    ComponentIdentifier,
    FilterableField,
    Generation,
    MatchState,
    OwnerType,
    RepositoryResult,
    ViolationState,
)
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.report.firewall import FirewallSummary


def test_an_empty_section_summarises_the_whole_container() -> None:
    section = RepositoryResultsSection.model_validate({})
    assert section_owner(section) == Owner(OwnerType.REPOSITORY_CONTAINER, REPOSITORY_CONTAINER_ID)
    assert section_query(section).to_wire() == {
        "page": 1,
        "pageSize": 500,
        "searchFilters": [],
        "sortFields": [],
        "matchStateFilters": ["MATCH_STATE_ALL"],
        "violationStateFilters": ["VIOLATION_STATE_ALL"],
    }
    assert section.api is ApiChoice.AUTO


def test_a_full_section_in_camel_case_with_short_forms() -> None:
    section = RepositoryResultsSection.model_validate(
        {
            "ownerType": "repository_manager",
            "ownerId": "6d27e83a",
            "searchFilters": [{"filterableField": "policy_name", "value": "Security-High"}],
            "matchStates": ["exact"],
            "violationStates": ["open", "quarantined"],
            "threatLevels": "7-10",
            "aggregate": True,
            "pageSize": 50,
            "quarantinedLimit": 5,
            "api": "legacy",
        }
    )
    assert section.search_filters[0].filterable_field is FilterableField.POLICY_NAME
    assert section.match_states == (MatchState.EXACT,)
    assert section.threat_levels == (7, 10)
    body = section_query(section).to_wire()
    assert body["violationStateFilters"] == ["VIOLATION_STATE_OPEN", "VIOLATION_STATE_QUARANTINED"]
    assert body["threatLevelFilters"] == [7, 10]
    assert body["aggregate"] is True


def test_threat_levels_as_a_pair() -> None:
    section = RepositoryResultsSection.model_validate({"threatLevels": [0, 3]})
    assert section.threat_levels == (0, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ownerTyp": "repository"}, "Extra inputs are not permitted"),
        ({"ownerType": "repository"}, "ownerId is required"),
        (
            {"searchFilters": [{"filterableField": "REPOSIOTRY_ID", "value": "x"}]},
            "did you mean REPOSITORY_ID",
        ),
        ({"searchFilters": [{"filterableField": "POLICY_NAME", "value": ""}]}, "at least 1"),
        ({"violationStates": ["opened"]}, "did you mean VIOLATION_STATE_OPEN"),
        ({"matchStates": ["exactly"]}, "did you mean MATCH_STATE_EXACT"),
        ({"threatLevels": "9-2"}, "threat levels 9-2"),
        ({"threatLevels": [0, 11]}, "threat levels 0-11"),
        ({"pageSize": 0}, "greater than or equal to 1"),
        ({"quarantinedLimit": -1}, "greater than or equal to 0"),
        ({"api": "newest"}, "auto"),
    ],
)
def test_section_mistakes_are_field_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RepositoryResultsSection.model_validate(data)


def row(
    policy: str | None,
    threat: int,
    *,
    component: str = "a",
    repository: str = "r1",
    quarantined_at: int | None = None,
    waived: bool = False,
) -> RepositoryResult:
    return RepositoryResult(
        threat_level=threat,
        policy_name=policy,
        repository_manager_id="m1",
        repository_id=repository,
        component_display_text=f"g : {component} : 1",
        pathname=f"g/{component}/1/{component}-1.jar",
        component_identifier=ComponentIdentifier(
            format="maven", coordinates={"groupId": "g", "artifactId": component, "version": "1"}
        ),
        hash=f"hash-{component}",
        match_state_id="exact",
        quarantine_time=quarantined_at,
        waived=waived,
    )


def test_violation_state_is_derived_from_the_row() -> None:
    assert violation_state(row("P", 9, quarantined_at=1)) is ViolationState.QUARANTINED
    assert violation_state(row("P", 9, quarantined_at=1, waived=True)) is ViolationState.WAIVED
    assert violation_state(row("P", 9)) is ViolationState.OPEN
    assert violation_state(row(None, 0)) is ViolationState.NOT_VIOLATING


def test_counts_and_the_newest_quarantined_components_first() -> None:
    counter = SummaryCounter(quarantined_limit=2)
    for r in [
        row("Security-High", 9, component="old", quarantined_at=1_000),
        row("License", 5, component="old", quarantined_at=1_000),  # same component, 2nd policy
        row("Security-High", 9, component="new", quarantined_at=3_000),
        row("Security-High", 9, component="mid", quarantined_at=2_000, repository="r2"),
        row("Security-High", 9, component="waived", quarantined_at=4_000, waived=True),
        row("License", 5, component="open"),
        row(None, 0, component="clean"),
    ]:
        counter.add(r)
    counter.pages = 1
    summary = counter.summary(Owner(OwnerType.REPOSITORY, "r1"), Generation.CURRENT)
    assert summary.total == 7
    assert summary.by_policy == {"Security-High": 4, "License": 2, NO_POLICY: 1}
    assert list(summary.by_threat_level.items()) == [(9, 4), (5, 2), (0, 1)]
    assert summary.by_violation_state == {
        ViolationState.NOT_VIOLATING: 1,
        ViolationState.OPEN: 1,
        ViolationState.QUARANTINED: 4,
        ViolationState.WAIVED: 1,
    }
    assert summary.quarantined_total == 3
    assert [q.coordinates["artifactId"] for q in summary.quarantined] == ["new", "mid"]

    counter.quarantined_limit = 10
    everything = counter.summary(Owner(OwnerType.REPOSITORY, "r1"), Generation.CURRENT)
    old = everything.quarantined[-1]
    assert old.policy_names == ["Security-High", "License"]
    assert old.threat_level == 9


def test_summary_json_is_camel_case_and_round_trips() -> None:
    counter = SummaryCounter(quarantined_limit=5)
    counter.add(row("Security-High", 9, quarantined_at=1_711_040_046_780))
    summary = counter.summary(Owner(OwnerType.REPOSITORY, "r1"), Generation.LEGACY)
    document = summary.model_dump(mode="json", by_alias=True)
    assert set(document) >= {"byPolicy", "byThreatLevel", "byViolationState", "quarantinedTotal"}
    assert document["byThreatLevel"] == {"9": 1}
    assert document["quarantined"][0]["quarantinedAt"] == "2024-03-21T16:54:06.780000Z"
    assert FirewallSummary.model_validate(document) == summary
