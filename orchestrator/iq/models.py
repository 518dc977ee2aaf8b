"""The JSON shapes IQ Server sends and accepts, as Sonatype's published OpenAPI client
(``sonatype-iq-api-client``) and the help pages describe them: applications, organizations,
application categories, promote scan and its status, configuration.

The vendor's schema makes nearly every field optional, so these models require only what
iq-promote cannot do without, and keep unknown fields from newer servers. A listing is read
row by row (``IqClient``), so one odd row is skipped with a warning rather than failing the
whole answer. The client and the simulator both use these models, and nothing else of each
other. Report shapes are in :mod:`orchestrator.iq.report_models`, the firewall's in
:mod:`orchestrator.iq.firewall_models`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Stage(StrEnum):
    """The four policy evaluation stages of IQ Server, in the order software moves through them."""

    BUILD = "build"
    STAGE_RELEASE = "stage-release"
    RELEASE = "release"
    OPERATE = "operate"


class EvaluationState(StrEnum):
    """What a promote-scan status URL answers (``ApiApplicationEvaluationResultDTOV2``)."""

    PENDING = "PENDING"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"


_STATES = {state.value: state for state in EvaluationState}
"""Each state by its word: a lookup, where the enum's constructor raises for a word this
version does not know (and the status of each poll is read several times)."""


class PurgeScanFiles(StrEnum):
    """The values IQ accepts for the ``purgeScanFiles`` configuration property: one.

    IQ's default is the property being unset: only each stage's latest scan file is kept, so
    only it can be promoted by scan id. ``withReports`` keeps scan files as long as their
    reports; deleting the property (``DELETE api/v2/config?property=purgeScanFiles``) reverts.
    """

    WITH_REPORTS = "withReports"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A time the server wrote: one written without an offset is taken as UTC, so that every
time compares with every other (a naive one would stop the run at the first comparison)."""


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


# --- Applications, organizations and application categories ------------------------------


class ApplicationTag(WireModel):
    """An application's category (``ApiApplicationTagDTO``): ``tag_id`` is the category's id."""

    id: str | None = None
    tag_id: str | None = None
    application_id: str | None = None


class Application(WireModel):
    """``ApiApplicationDTO``; ``application_tags`` is filled when asked with
    ``includeCategories=true``."""

    id: str
    public_id: str
    name: str | None = None
    organization_id: str | None = None
    contact_user_name: str | None = None
    application_tags: list[ApplicationTag] | None = None


class ApplicationList(WireModel):
    applications: list[Application]


class Organization(WireModel):
    """``ApiOrganizationDTO``: organizations form a tree by ``parent_organization_id``; the root
    is ``ROOT_ORGANIZATION_ID``."""

    id: str
    name: str
    parent_organization_id: str | None = None
    tags: list[dict[str, object]] | None = None


class OrganizationList(WireModel):
    organizations: list[Organization]


ROOT_ORGANIZATION_ID = "ROOT_ORGANIZATION_ID"
"""The root organization's fixed id."""


class ApplicationCategory(WireModel):
    """``ApiApplicationCategoryDTO``: a category (application tag) an organization owns."""

    id: str
    name: str
    description: str | None = None
    color: str | None = None
    organization_id: str | None = None


# --- Promote scan --------------------------------------------------------------------------


class PromoteScanRequest(WireModel):
    """Either ``scan_id`` or ``source_stage_id`` names the scan; never both."""

    scan_id: str | None = None
    source_stage_id: str | None = None
    target_stage_id: str


class PromoteScanResponse(WireModel):
    status_url: str


class PromotionStatus(WireModel):
    """A status URL's answer: PENDING; FAILED with a reason; COMPLETED with report links.

    ``status`` is kept as the server wrote it: a word this version does not know is not
    final (:attr:`state` is None), and polling goes on."""

    status: str
    reason: str | None = None
    report_html_url: str | None = None
    embeddable_report_html_url: str | None = None
    report_pdf_url: str | None = None
    report_data_url: str | None = None

    @property
    def state(self) -> EvaluationState | None:
        return _STATES.get(self.status)

    @property
    def final(self) -> bool:
        return self.state in (EvaluationState.COMPLETED, EvaluationState.FAILED)


# --- Configuration -------------------------------------------------------------------------


class ScanRetentionConfig(WireModel):
    """``GET api/v2/config?property=purgeScanFiles``: absent or null when unset (IQ's default)."""

    purge_scan_files: str | None = Field(default=None)
