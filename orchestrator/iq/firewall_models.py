"""The JSON shapes of the Firewall and Repository Results REST APIs, as the reference pages and
Sonatype's published client describe them. Shared by the client and the simulator."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from orchestrator.iq.models import WireModel


class OwnerType(StrEnum):
    """Whose Repository Results: the whole container, one repository manager, or one repository."""

    REPOSITORY_CONTAINER = "repository_container"
    REPOSITORY_MANAGER = "repository_manager"
    REPOSITORY = "repository"


class ApiChoice(StrEnum):
    """Which Repository Results endpoint to use. Release 175 replaced the per-repository one
    with an owner-typed one; ``auto`` detects which the server has from its answer."""

    AUTO = "auto"
    CURRENT = "current"
    LEGACY = "legacy"


class Generation(StrEnum):
    """The endpoint generation a page actually came from."""

    CURRENT = "current"
    LEGACY = "legacy"


REPOSITORY_CONTAINER_ID = "REPOSITORY_CONTAINER_ID"
"""The global owner id of the repository container, covering every repository manager."""


class FilterableField(StrEnum):
    """A field a Repository Results search can filter on."""

    POLICY_NAME = "POLICY_NAME"
    QUARANTINE_TIME = "QUARANTINE_TIME"
    COMPONENT_COORDINATES = "COMPONENT_COORDINATES"
    REPOSITORY_MANAGER_ID = "REPOSITORY_MANAGER_ID"
    REPOSITORY_ID = "REPOSITORY_ID"


class SortableField(StrEnum):
    POLICY_THREAT_LEVEL = "POLICY_THREAT_LEVEL"
    POLICY_NAME = "POLICY_NAME"
    COMPONENT_COORDINATES = "COMPONENT_COORDINATES"
    QUARANTINE_TIME = "QUARANTINE_TIME"


class MatchState(StrEnum):
    """How exactly the firewall matched a component to a known one."""

    ALL = "MATCH_STATE_ALL"
    EXACT = "MATCH_STATE_EXACT"
    UNKNOWN = "MATCH_STATE_UNKNOWN"


class ViolationState(StrEnum):
    """Where a component stands with a policy: quarantined, waived, open or not violating."""

    ALL = "VIOLATION_STATE_ALL"
    NOT_VIOLATING = "VIOLATION_STATE_NOT_VIOLATING"
    OPEN = "VIOLATION_STATE_OPEN"
    QUARANTINED = "VIOLATION_STATE_QUARANTINED"
    WAIVED = "VIOLATION_STATE_WAIVED"


class ComponentIdentifier(WireModel):
    """A component's format and coordinates, as the firewall's results carry them."""

    format: str
    coordinates: dict[str, str]


class SearchFilter(WireModel):
    filterable_field: FilterableField
    value: str


class SortField(WireModel):
    sortable_field: SortableField
    asc: bool = True
    sort_priority: int = 1


class RepositoryResultsQuery(WireModel):
    """The search body of both Repository Results endpoints (the legacy one ignores aggregate)."""

    page: Annotated[int, Field(ge=1)] = 1
    page_size: Annotated[int, Field(ge=1)] = 10
    search_filters: list[SearchFilter] = Field(default_factory=list)
    sort_fields: list[SortField] = Field(default_factory=list)
    match_state_filters: list[MatchState] = Field(default_factory=lambda: [MatchState.ALL])
    violation_state_filters: list[ViolationState] = Field(
        default_factory=lambda: [ViolationState.ALL]
    )
    threat_level_filters: list[int] | None = None
    aggregate: bool | None = None


class RepositoryResult(WireModel):
    """One policy result for one component in a repository.

    ``repository_manager_id`` and ``repository_id`` are absent from the legacy endpoint's rows.
    """

    threat_level: int
    policy_name: str | None
    repository_manager_id: str | None = None
    repository_id: str | None = None
    component_display_text: str
    pathname: str
    component_identifier: ComponentIdentifier
    hash: str
    match_state_id: str
    quarantine_time: int | None = None
    waived: bool = False


class RepositoryResultsPage(WireModel):
    repository_results_details: list[RepositoryResult]
    has_next_page: bool


class RepositoryContainer(WireModel):
    id: str
    name: str
    related_organization_id: str | None = None


class RepositoryManager(WireModel):
    id: str
    name: str
    instance_id: str | None = None
    manager_type: str | None = None
    product_name: str | None = None
    product_version: str | None = None


class RepositoryManagerList(WireModel):
    repository_managers: list[RepositoryManager]


class Repository(WireModel):
    repository_id: str
    public_id: str
    format: str
    type: str = "proxy"
    quarantine_enabled: bool = False
    audit_enabled: bool = True
    policy_compliant_component_selection_enabled: bool = False
    namespace_confusion_protection_enabled: bool = False


class RepositoryList(WireModel):
    repositories: list[Repository]
