"""An application's scans, newest first, so that a ``scanId:`` transition can be written
without opening IQ's UI: what ``iq-promote scans`` lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from orchestrator.errors import ForeignUrlError, UsageError
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import Stage
from orchestrator.iq.report_models import ReportInfo
from orchestrator.secrets import SCRUBBER

__all__ = ["Scan", "ScanListing", "list_scans"]

log = structlog.get_logger("orchestrator.promote")


@dataclass(frozen=True, slots=True)
class Scan:
    """One report of the history: the scan it evaluated, where, when, and how it came about."""

    scan_id: str | None
    stage: str
    evaluation_date: datetime | None
    is_reevaluation: bool | None
    is_for_monitoring: bool | None
    """Made by Continuous Monitoring, not by a scan or a promotion."""
    scan_trigger_type: str | None
    report_html_url: str | None
    """Absolute, to open in a browser."""

    def to_document(self) -> dict[str, object]:
        return {
            "scanId": self.scan_id,
            "stage": self.stage,
            "evaluationDate": self.evaluation_date.isoformat() if self.evaluation_date else None,
            "isReevaluation": self.is_reevaluation,
            "isForMonitoring": self.is_for_monitoring,
            "scanTriggerType": self.scan_trigger_type,
            "reportHtmlUrl": self.report_html_url,
        }


@dataclass(frozen=True, slots=True)
class ScanListing:
    """The reports of one application (at one stage, when asked), newest first."""

    public_id: str
    application_id: str
    stage: Stage | None
    scans: tuple[Scan, ...]

    def to_document(self) -> dict[str, object]:
        return {
            "publicId": self.public_id,
            "applicationId": self.application_id,
            "stage": self.stage.value if self.stage else None,
            "reports": [scan.to_document() for scan in self.scans],
        }


async def list_scans(
    client: IqClient, public_id: str, *, stage: Stage | None = None, limit: int | None = None
) -> ScanListing:
    """The report history of the application ``public_id`` (two requests: the public id's
    internal id, then ``GET api/v2/reports/applications/{id}/history``).

    Raises UsageError when the server knows no application of that public id."""
    found = [
        a for a in await client.applications_by_public_id([public_id]) if a.public_id == public_id
    ]
    if not found:
        raise UsageError(
            f"application '{public_id}' is not known to the server: give its public id, as IQ "
            "Server shows it next to the application's name"
        )
    app = found[0]
    history = await client.report_history(app.id, stage=stage, limit=limit)
    scans = tuple(_scan(client, r) for r in history)
    return ScanListing(public_id, SCRUBBER.scrub(app.id), stage, scans)


def _scan(client: IqClient, report: ReportInfo) -> Scan:
    """One report as listed; what the server said is scrubbed, since the listing is printed
    (and often kept in a file): a server that echoes a request must not put a secret there."""
    html = report.report_html_url
    return Scan(
        scan_id=SCRUBBER.scrub(report.scan_id),
        stage=SCRUBBER.scrub(report.stage),
        evaluation_date=report.evaluation_date,
        is_reevaluation=report.is_reevaluation,
        is_for_monitoring=report.is_for_monitoring,
        scan_trigger_type=SCRUBBER.scrub(report.scan_trigger_type),
        report_html_url=_link(client, html, report.scan_id) if html else None,
    )


def _link(client: IqClient, html: str, scan_id: str | None) -> str | None:
    """The report's page, absolute; a link off the server is left out of the listing (with
    a warning), not shown for someone to open, and the rest of the listing stands."""
    try:
        return str(SCRUBBER.scrub(client.absolute(html)))
    except ForeignUrlError as exc:
        log.warning("scans.link_left_out", scanId=SCRUBBER.scrub(scan_id), error=str(exc))
        return None
