"""Search parameters are checked, and near misses named, before anything is sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import UsageError
from orchestrator.firewall.query import (
    Owner,
    QueryOptions,
    build_query,
    parse_search,
    parse_sorts,
    resolve_owner,
)
from orchestrator.iq.firewall_models import (
    REPOSITORY_CONTAINER_ID,
    FilterableField,
    MatchState,
    OwnerType,
    SortableField,
    ViolationState,
)
from orchestrator.iq.names import parse_match_state, parse_threat_levels, parse_violation_state


def test_defaults_ask_for_everything() -> None:
    body = build_query(QueryOptions()).to_wire()
    assert body == {
        "page": 1,
        "pageSize": 100,
        "searchFilters": [],
        "sortFields": [],
        "matchStateFilters": ["MATCH_STATE_ALL"],
        "violationStateFilters": ["VIOLATION_STATE_ALL"],
    }


def test_every_parameter_reaches_the_body() -> None:
    query = build_query(
        QueryOptions(
            search=["COMPONENT_COORDINATES=ant", "repository_id=99285af9"],
            sort=["QUARANTINE_TIME:desc", "policy_name"],
            match_states=["exact"],
            violation_states=["open", "VIOLATION_STATE_QUARANTINED"],
            threat_levels="0-10",
            aggregate=False,
            page_size=10,
        )
    )
    assert query.to_wire() == {
        "page": 1,
        "pageSize": 10,
        "searchFilters": [
            {"filterableField": "COMPONENT_COORDINATES", "value": "ant"},
            {"filterableField": "REPOSITORY_ID", "value": "99285af9"},
        ],
        "sortFields": [
            {"sortableField": "QUARANTINE_TIME", "asc": False, "sortPriority": 1},
            {"sortableField": "POLICY_NAME", "asc": True, "sortPriority": 2},
        ],
        "matchStateFilters": ["MATCH_STATE_EXACT"],
        "violationStateFilters": ["VIOLATION_STATE_OPEN", "VIOLATION_STATE_QUARANTINED"],
        "threatLevelFilters": [0, 10],
        "aggregate": False,
    }


def test_the_reference_pages_misspelt_field_gets_the_right_name_suggested() -> None:
    with pytest.raises(UsageError, match=r"did you mean REPOSITORY_MANAGER_ID\?"):
        parse_search("REPOSIOTRY_MANAGER_ID=4ebc94d10f6b4f3dbc1a3375e2f3678")


def test_a_name_nothing_like_any_field_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as caught:
        parse_search("colour=blue")
    assert "did you mean" not in str(caught.value)
    assert "POLICY_NAME" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("POLICY_NAME", "not FIELD=VALUE"),
        ("POLICY_NAME=", "no value"),
        ("POLICY_NAME=  ", "no value"),
    ],
)
def test_malformed_search_filters(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_search(text)


def test_a_value_may_hold_an_equals_sign() -> None:
    assert parse_search("COMPONENT_COORDINATES=a=b").value == "a=b"


def test_sort_directions_and_priorities() -> None:
    fields = parse_sorts(["POLICY_THREAT_LEVEL:DESC", "component-coordinates:asc"])
    assert [(f.sortable_field, f.asc, f.sort_priority) for f in fields] == [
        (SortableField.POLICY_THREAT_LEVEL, False, 1),
        (SortableField.COMPONENT_COORDINATES, True, 2),
    ]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["POLICY_NAME:up"], "'asc' or 'desc'"),
        (["REPOSITORY_ID"], "unknown sort field"),
        (["POLICY_TREAT_LEVEL:desc"], "did you mean POLICY_THREAT_LEVEL"),
        (["POLICY_NAME", "policy_name:desc"], "given twice"),
    ],
)
def test_bad_sorts(texts: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sorts(texts)


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("all", MatchState.ALL),
        ("EXACT", MatchState.EXACT),
        ("match_state_unknown", MatchState.UNKNOWN),
    ],
)
def test_match_state_short_forms(text: str, state: MatchState) -> None:
    assert parse_match_state(text) is state


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("open", ViolationState.OPEN),
        ("not-violating", ViolationState.NOT_VIOLATING),
        ("Waived", ViolationState.WAIVED),
        ("VIOLATION_STATE_QUARANTINED", ViolationState.QUARANTINED),
    ],
)
def test_violation_state_short_forms(text: str, state: ViolationState) -> None:
    assert parse_violation_state(text) is state


def test_misspelt_states_are_named() -> None:
    with pytest.raises(UsageError, match="did you mean VIOLATION_STATE_QUARANTINED"):
        parse_violation_state("quarantine")
    with pytest.raises(UsageError, match="unknown match state"):
        parse_match_state("fuzzy")


@pytest.mark.parametrize(
    ("text", "levels"), [("0-10", (0, 10)), ("7-10", (7, 10)), ("8", (8, 8)), (" 3 - 5 ", (3, 5))]
)
def test_threat_level_ranges(text: str, levels: tuple[int, int]) -> None:
    assert parse_threat_levels(text) == levels


@pytest.mark.parametrize("text", ["10-7", "0-11", "-1-3", "a-b", "", "7-"])
def test_bad_threat_level_ranges(text: str) -> None:
    with pytest.raises(UsageError, match="threat levels"):
        parse_threat_levels(text)


@given(st.integers(-5, 15), st.integers(-5, 15))
def test_threat_ranges_accepted_exactly_when_ordered_within_0_to_10(lo: int, hi: int) -> None:
    text = f"{lo}-{hi}"
    if 0 <= lo <= hi <= 10:
        assert parse_threat_levels(text) == (lo, hi)
    else:
        with pytest.raises(UsageError):
            parse_threat_levels(text)


def test_page_size_must_be_positive() -> None:
    with pytest.raises(UsageError, match="page size"):
        build_query(QueryOptions(page_size=0))


def test_owner_id_defaults_to_the_container() -> None:
    owner = resolve_owner("repository_container", None)
    assert owner == Owner(OwnerType.REPOSITORY_CONTAINER, REPOSITORY_CONTAINER_ID)


@pytest.mark.parametrize("kind", ["repository_manager", "repository"])
def test_owner_id_is_required_below_the_container(kind: str) -> None:
    with pytest.raises(UsageError, match="--owner-id is required"):
        resolve_owner(kind, None)


def test_unknown_owner_type_is_named() -> None:
    with pytest.raises(UsageError, match="did you mean repository_manager"):
        resolve_owner("repository_manger", "x")


def test_every_filterable_field_is_accepted_by_its_name() -> None:
    for field in FilterableField:
        assert parse_search(f"{field.value.lower()}=x").filterable_field is field
