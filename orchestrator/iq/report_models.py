"""The JSON shapes of IQ's reports: the latest report of each application and stage
(``ApiApplicationReportDTOV2``), an application's report history (``ApiReportResultsDTO``),
and a report's data, raw (``ApiReportRawDataDTOV2``: components, security and license data,
**no violations**) and policy (``ApiReportPolicyDataDTOV2``: each component's violations).

Violations are read only from the policy data: counting them from the raw data finds none,
whatever the report holds. docs/simulator.md cites the vendor schema for each shape.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AliasChoices, Field

from orchestrator.iq.models import UtcDatetime, WireModel

_REPORT_SEGMENT = re.compile(r"/reports?/([^/?#]+)")


def scan_id_in(url: str | None) -> str | None:
    """The scan (report) id a report link names: the segment after ``/report/`` or
    ``/reports/``, whichever application id the link was built with."""
    if not url:
        return None
    found = _REPORT_SEGMENT.search(url)
    return found.group(1) if found else None


def policy_data_url(report_data_url: str) -> str:
    """The policy data of the report whose ``reportDataUrl`` the server gave: that URL with a
    trailing ``/raw`` dropped and ``/policy`` added, so that whichever application id (public,
    in current releases; internal, in older ones) the server put in the link is kept."""
    base, _, query = report_data_url.partition("?")
    base = base.rstrip("/").removesuffix("/raw")
    return f"{base}/policy" + (f"?{query}" if query else "")


class LatestReport(WireModel):
    """One row of ``GET api/v2/reports/applications[/{applicationId}]``: the latest report of
    one application at one stage. It carries no scan id of its own (see :attr:`scan_id`)."""

    application_id: str
    stage: str
    evaluation_date: UtcDatetime | None = None
    latest_report_html_url: str | None = None
    report_html_url: str | None = None
    embeddable_report_html_url: str | None = None
    report_pdf_url: str | None = None
    report_data_url: str | None = None

    @property
    def scan_id(self) -> str | None:
        """The report's scan id, from its links."""
        return scan_id_in(self.report_data_url) or scan_id_in(self.report_html_url)


class ReportInfo(LatestReport):
    """One report of an application's history, with its scan id and how it came about."""

    scan_id_field: str | None = Field(default=None, alias="scanId")
    is_reevaluation: bool | None = None
    is_for_monitoring: bool | None = None
    """Made by IQ's Continuous Monitoring, not by a scan or a promotion."""
    policy_evaluation_id: str | None = None
    scan_trigger_type: str | None = None
    commit_hash: str | None = None

    @property
    def scan_id(self) -> str | None:
        return self.scan_id_field or super().scan_id


class ReportHistory(WireModel):
    """``GET api/v2/reports/applications/{id}/history``: the schema names the list
    ``reports``; the help page's example ``policyEvaluations``. Both are read."""

    application_id: str | None = None
    reports: list[ReportInfo] = Field(
        default_factory=list, validation_alias=AliasChoices("reports", "policyEvaluations")
    )


class ReportComponentIdentifier(WireModel):
    format: str | None = None
    coordinates: dict[str, str] | None = None


class _ReportComponent(WireModel):
    hash: str | None = None
    display_name: str | None = None
    package_url: str | None = None
    component_identifier: ReportComponentIdentifier | None = None
    match_state: str | None = None
    proprietary: bool | None = None
    pathnames: list[str] | None = None


# --- raw data ------------------------------------------------------------------------------


class LicenseRef(WireModel):
    license_id: str | None = None
    license_name: str | None = None


class LicenseData(WireModel):
    declared_licenses: list[LicenseRef] | None = None
    observed_licenses: list[LicenseRef] | None = None
    effective_licenses: list[LicenseRef] | None = None
    status: str | None = None


class SecurityIssue(WireModel):
    reference: str | None = None
    severity: float | None = None
    source: str | None = None
    status: str | None = None
    threat_category: str | None = None
    url: str | None = None


class SecurityData(WireModel):
    security_issues: list[SecurityIssue] | None = None


class RawComponent(_ReportComponent):
    """``ApiReportComponentDTOV2``: security and license data; policy violations are not here."""

    license_data: LicenseData | None = None
    security_data: SecurityData | None = None


class RawReport(WireModel):
    """``GET api/v2/applications/{publicId}/reports/{scanId}/raw``."""

    components: list[RawComponent] = Field(default_factory=list)


# --- policy data ---------------------------------------------------------------------------


class PolicyViolation(WireModel):
    """``ApiReportPolicyViolationDTOV2``. A violation without its threat level cannot be put
    in a band, so it fails the parse and the report counts as unchecked, never as clean."""

    policy_id: str | None = None
    policy_name: str | None = None
    policy_threat_level: Annotated[int, Field(ge=0, le=10)]
    policy_threat_category: str | None = None
    policy_violation_id: str | None = None
    waived: bool = False
    grandfathered: bool = False
    """Existed before the policy applied and is accepted as such (IQ's grandfathering)."""
    legacy_violation: bool = False
    """Marked legacy (IQ's Legacy Violations): known and tolerated."""

    @property
    def open(self) -> bool:
        """Counted against the application: not waived, grandfathered or legacy."""
        return not (self.waived or self.grandfathered or self.legacy_violation)


class PolicyComponent(_ReportComponent):
    """``ApiReportComponentPolicyViolationsDTOV2``."""

    violations: list[PolicyViolation] = Field(default_factory=list)


class PolicyReport(WireModel):
    """``GET api/v2/applications/{publicId}/reports/{scanId}/policy[?page=&pageSize=]``.

    Current releases page it (``page``, ``pageSize`` up to 500, answering ``pageCount`` and
    ``total``); older ones ignore the parameters and answer every component at once."""

    report_title: str | None = None
    initiator: str | None = None
    report_time: float | str | None = None
    """A number (epoch milliseconds) in current releases, a date-time string in older ones."""
    components: list[PolicyComponent] = Field(default_factory=list)
    page: int | None = None
    page_size: int | None = None
    page_count: int | None = None
    total: int | None = None
