"""What happened to each promotion: the record the scheduler produces and the report keeps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class Outcome(StrEnum):
    """How one promotion ended. Only COMPLETED counts as success."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    """IQ Server ran the evaluation and answered FAILED."""
    ERROR = "ERROR"
    """Could not be sent or followed: unknown application, purged scan, HTTP error."""
    SKIPPED = "SKIPPED"
    """Not attempted: an earlier transition of its chain did not complete, a dry run, or the
    promotion did not apply to the application (:class:`NotApplicable`)."""
    TIMED_OUT = "TIMED_OUT"
    """Still not finished when the per-promotion timeout ran out."""
    CANCELLED = "CANCELLED"
    """The run was stopped (signal, server down) before this promotion finished."""


class NotApplicable(StrEnum):
    """Why a SKIPPED promotion did not apply to its application, known from the server's
    listings before anything was sent. Such skips are no failure: the run still exits 0."""

    NO_SOURCE_SCAN = "noSourceScan"
    """An entry that selects (organization, category, all) chose an application without a
    scan at the source stage: nothing to promote, which is no fault of the application."""
    RECENTLY_EVALUATED = "recentlyEvaluated"
    """The target stage's latest report is younger than skipIfEvaluatedWithin."""


class Detection(StrEnum):
    """How the run learned that a promotion's evaluation had ended."""

    POLL = "poll"
    """A regular status poll answered it final."""
    WEBHOOK = "webhook"
    """IQ's Application Evaluation webhook hinted at it, and the status asked at once
    confirmed it."""
    LISTING = "listing"
    """Its webhook delivery was lost: a sweep of the latest-reports listing found the
    evaluation, and the status asked at once confirmed it."""
    HISTORY = "history"
    """The server had forgotten the status; the report history held the evaluation's report."""


def transition_label(source_stage: str | None, scan_id: str | None, target_stage: str) -> str:
    """How a transition is named everywhere, in logs, plans and reports alike:
    ``build -> release``, or ``scan 3f2a... -> release`` for a scan given by id."""
    source = source_stage or (f"scan {scan_id}" if scan_id else "?")
    return f"{source} -> {target_stage}"


class ResultModel(BaseModel):
    """camelCase in JSON, snake_case in Python, like IQ's own API."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
    )


class ViolationCounts(ResultModel):
    """Open (not waived) policy violations of one report, by threat band."""

    critical: int = Field(default=0, description="Threat level 8-10.")
    severe: int = Field(default=0, description="Threat level 4-7.")
    moderate: int = Field(default=0, description="Threat level 2-3.")
    low: int = Field(default=0, description="Threat level 1.")


class PromotionResult(ResultModel):
    """One (application, transition) of the manifest and what became of it."""

    public_id: str | None = Field(
        description="The application public id; null when an entry named an unknown organization."
    )
    application_id: str | None = Field(default=None, description="IQ's internal application id.")
    organization: str | None = Field(
        default=None, description="The application's organization name."
    )
    entry_index: int = Field(
        description="Index of the manifest entry (promotions[i]) this came from."
    )
    transition_index: int = Field(description="Index of the transition within that entry.")
    source_stage_id: str | None = Field(
        default=None, description="The stage whose latest scan was promoted."
    )
    scan_id: str | None = Field(default=None, description="The scan promoted, when given by id.")
    target_stage_id: str
    status: Outcome
    reason: str | None = Field(default=None, description="Why the promotion did not complete.")
    status_url: str | None = None
    report_html_url: str | None = None
    embeddable_report_html_url: str | None = None
    report_pdf_url: str | None = None
    report_data_url: str | None = None
    attempts: int = Field(default=0, description="POST requests sent for this promotion.")
    polls: int = Field(default=0, description="Status requests sent for this promotion.")
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = Field(
        default=None, description="From the accepted POST to the final status."
    )
    evaluation_seconds: float | None = Field(
        default=None,
        description="Estimated evaluation time, from what the polls bracket: between the last "
        "PENDING answer and the first final one.",
    )
    detected_by: Detection | None = Field(
        default=None,
        description="How the end of the evaluation was learned: `poll` (a regular status "
        "poll), `webhook` (IQ's webhook, confirmed by one status request) or `history` (the "
        "report history, for a status the server forgot); null when no final status came.",
    )
    violations: ViolationCounts | None = Field(
        default=None, description="Open policy violations of the new report, when read."
    )
    violations_unchecked: str | None = Field(
        default=None,
        description="Why the new report's policy data could not be read, when it was wanted: "
        "its violations are unknown, not zero.",
    )
    not_applicable: NotApplicable | None = Field(
        default=None,
        description="Why this SKIPPED promotion did not apply to its application (no scan at "
        "the source stage of an entry that selects, or evaluated within skipIfEvaluatedWithin); "
        "such skips do not fail the run. Null for every other result, including a SKIPPED one "
        "whose chain broke earlier, which does.",
    )
    resumable: bool = Field(
        default=False,
        description="The run stopped (a signal, or the server going away) before this "
        "promotion was decided: `run --resume` follows it by its statusUrl, or sends it if it "
        "was never accepted. Always true of CANCELLED.",
    )

    @property
    def transition(self) -> str:
        """The transition's label (:func:`transition_label`)."""
        return transition_label(self.source_stage_id, self.scan_id, self.target_stage_id)

    @property
    def application(self) -> str:
        """The public id; an entry that named an unknown organization has none, so say which."""
        return self.public_id or f"promotions[{self.entry_index}]"

    @model_validator(mode="after")
    def _not_applicable_is_skipped(self) -> PromotionResult:
        if self.not_applicable is not None and self.status is not Outcome.SKIPPED:
            raise ValueError(f"notApplicable goes only with SKIPPED, not {self.status}")
        return self

    @model_validator(mode="after")
    def _cancelled_is_resumable(self) -> PromotionResult:
        """CANCELLED means stopped before the end: whoever made it, a resume picks it up."""
        if self.status is Outcome.CANCELLED and not self.resumable:
            object.__setattr__(self, "resumable", True)
        return self
