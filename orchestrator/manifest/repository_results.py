"""The manifest's optional ``repositoryResults:`` section: which firewall results to summarise
in each run's report.

It is plain, frozen data like the rest of the manifest; the names it accepts are the
``repository-results`` command's (:mod:`orchestrator.iq.names`), so a manifest and a command
line mean the same by the same words. ``orchestrator.firewall.summary`` turns it into requests.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator

from orchestrator.errors import UsageError
from orchestrator.iq.firewall_models import (
    ApiChoice,
    FilterableField,
    MatchState,
    OwnerType,
    ViolationState,
)
from orchestrator.iq.names import (
    check_threat_levels,
    parse_match_state,
    parse_threat_levels,
    parse_violation_state,
    resolve_name,
)
from orchestrator.manifest.base import ManifestModel


def _usage_as_value_error(parse: Any, value: Any) -> Any:
    """The parsers raise UsageError; pydantic reports only ValueError as a field problem."""
    try:
        return parse(value)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


class SectionFilter(ManifestModel):
    """One search filter, as on the wire: ``{filterableField: POLICY_NAME, value: ...}``."""

    filterable_field: FilterableField = Field(
        description="POLICY_NAME, QUARANTINE_TIME, COMPONENT_COORDINATES, "
        "REPOSITORY_MANAGER_ID or REPOSITORY_ID."
    )
    value: Annotated[str, Field(min_length=1)] = Field(description="The value to match.")

    @field_validator("filterable_field", mode="before")
    @classmethod
    def _known_field(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return _usage_as_value_error(
            lambda v: resolve_name(FilterableField, v, what="search field"), value
        )


class RepositoryResultsSection(ManifestModel):
    """The manifest's optional ``repositoryResults:`` section; every field has a default, so
    ``repositoryResults: {}`` summarises the whole repository container."""

    owner_type: OwnerType = Field(
        default=OwnerType.REPOSITORY_CONTAINER,
        description="repository_container, repository_manager or repository.",
    )
    owner_id: str | None = Field(
        default=None,
        description="Required unless ownerType is repository_container "
        "(REPOSITORY_CONTAINER_ID then); 'iq-promote repositories' lists the ids.",
    )
    search_filters: tuple[SectionFilter, ...] = Field(
        default=(), description="Filters, all of which a row must match."
    )
    match_states: tuple[MatchState, ...] = Field(
        default=(MatchState.ALL,),
        description="MATCH_STATE_* names or their short forms (all, exact, unknown).",
    )
    violation_states: tuple[ViolationState, ...] = Field(
        default=(ViolationState.ALL,),
        description="VIOLATION_STATE_* names or short forms (open, quarantined, waived...).",
    )
    threat_levels: tuple[int, int] | None = Field(
        default=None, description="Lowest and highest threat level: '7-10' or [7, 10]."
    )
    aggregate: bool | None = Field(
        default=None, description="true: each component once, with its worst violation."
    )
    page_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=500, description="Rows per request."
    )
    quarantined_limit: Annotated[int, Field(ge=0)] = Field(
        default=100, description="Most quarantined components listed; all are counted."
    )
    api: ApiChoice = Field(default=ApiChoice.AUTO, description="auto, current or legacy.")

    @field_validator("owner_type", mode="before")
    @classmethod
    def _owner_type(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return _usage_as_value_error(lambda v: resolve_name(OwnerType, v, what="owner type"), value)

    @field_validator("match_states", mode="before")
    @classmethod
    def _match_states(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [_usage_as_value_error(parse_match_state, v) for v in value]

    @field_validator("violation_states", mode="before")
    @classmethod
    def _violation_states(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [_usage_as_value_error(parse_violation_state, v) for v in value]

    @field_validator("threat_levels", mode="before")
    @classmethod
    def _threat_levels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _usage_as_value_error(parse_threat_levels, value)
        if isinstance(value, list | tuple) and len(value) == 2:
            lo, hi = value
            if isinstance(lo, int) and isinstance(hi, int):
                return _usage_as_value_error(lambda pair: check_threat_levels(*pair), (lo, hi))
        return value

    @model_validator(mode="after")
    def _owner_id_when_needed(self) -> Self:
        if self.owner_id is not None and not self.owner_id.strip():
            raise ValueError("ownerId is empty")
        if self.owner_type is not OwnerType.REPOSITORY_CONTAINER and not self.owner_id:
            raise ValueError(
                f"ownerId is required for ownerType {self.owner_type.value}: "
                "'iq-promote repositories' lists the ids"
            )
        return self
