"""The JSON shapes IQ Server sends and accepts, as the reference pages and Sonatype's
published client describe them.

The client and the simulator both use these models, and nothing else of each other, so a
mistake in one side's logic cannot hide behind the other's.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Stage(StrEnum):
    """The four policy evaluation stages of IQ Server, in the order software moves through them."""

    BUILD = "build"
    STAGE_RELEASE = "stage-release"
    RELEASE = "release"
    OPERATE = "operate"


class EvaluationState(StrEnum):
    """What a promote-scan status URL answers."""

    PENDING = "PENDING"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"


class PurgeScanFiles(StrEnum):
    """The ``purgeScanFiles`` configuration property (Configuration REST API).

    Under the default only each stage's latest scan file is kept, so only it can be promoted
    by scan id; ``withReports`` keeps scan files as long as their reports.
    """

    DEFAULT = "default"
    WITH_REPORTS = "withReports"


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields from newer servers are kept."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="allow",
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready dict IQ Server sends or accepts, leaving out fields that are unset."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- Applications and organizations ------------------------------------------------------


class ApplicationTag(WireModel):
    id: str | None = None
    tag_id: str
    application_id: str | None = None


class Application(WireModel):
    id: str
    public_id: str
    name: str
    organization_id: str
    contact_user_name: str | None = None
    application_tags: list[ApplicationTag] = Field(default_factory=list)


class ApplicationList(WireModel):
    applications: list[Application]


class Organization(WireModel):
    id: str
    name: str
    parent_organization_id: str | None = None
    tags: list[dict[str, object]] = Field(default_factory=list)


class OrganizationList(WireModel):
    organizations: list[Organization]


# --- Promote scan --------------------------------------------------------------------------


class PromoteScanRequest(WireModel):
    """Either ``scan_id`` or ``source_stage_id`` names the scan; never both."""

    scan_id: str | None = None
    source_stage_id: str | None = None
    target_stage_id: str


class PromoteScanResponse(WireModel):
    status_url: str


class PromotionStatus(WireModel):
    """A status URL's answer: PENDING; FAILED with a reason; COMPLETED with report links."""

    status: EvaluationState
    reason: str | None = None
    report_html_url: str | None = None
    embeddable_report_html_url: str | None = None
    report_pdf_url: str | None = None
    report_data_url: str | None = None


# --- Reports -------------------------------------------------------------------------------


class ReportInfo(WireModel):
    """One application report, as the Reports API lists them (latest per stage, or history)."""

    application_id: str
    stage: Stage
    scan_id: str
    evaluation_date: datetime
    report_html_url: str
    embeddable_report_html_url: str
    report_pdf_url: str
    report_data_url: str
    latest_report_html_url: str | None = None
    is_reevaluation: bool = False
    is_for_monitoring: bool = False
    policy_evaluation_id: str | None = None
    scan_trigger_type: str | None = None


class ReportHistory(WireModel):
    application_id: str
    reports: list[ReportInfo]


class ComponentIdentifier(WireModel):
    format: str
    coordinates: dict[str, str]


class PolicyViolation(WireModel):
    policy_id: str
    policy_name: str
    policy_threat_level: Annotated[int, Field(ge=0, le=10)]
    policy_threat_category: str | None = None
    policy_violation_id: str | None = None
    waived: bool = False
    grandfathered: bool = False


class ReportComponent(WireModel):
    hash: str | None = None
    display_name: str
    package_url: str | None = None
    component_identifier: ComponentIdentifier | None = None
    match_state: str = "exact"
    proprietary: bool = False
    pathnames: list[str] = Field(default_factory=list)
    violations: list[PolicyViolation] = Field(default_factory=list)


class ReportData(WireModel):
    """A report's data: the components found in the scan and their policy violations."""

    application: dict[str, object] | None = None
    report_time: int | None = None
    report_title: str | None = None
    initiator: str | None = None
    components: list[ReportComponent]


# --- Configuration -------------------------------------------------------------------------


class ScanRetentionConfig(WireModel):
    purge_scan_files: PurgeScanFiles


# --- Firewall: repository managers, repositories, repository results -----------------------


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
