"""Finding an evaluation the server did when its status can no longer be asked.

Releases that keep promotion statuses in memory forget them (a restart, another node behind a
load balancer, a ``--resume`` the next morning): the status URL answers 404 for work the
server did or is doing. The report history still has the report, so a report at the target
stage evaluated after the submission is taken as that promotion's; only when there is none is
the promotion sent once more. Never a final ERROR for work the server did.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator import defaults
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import EvaluationState, PromotionStatus, Stage

HISTORY_LOOKED_AT = 20
"""The newest reports of the stage looked through; the promotion's is among the newest."""


async def evaluated_since(
    client: IqClient, application_id: str, stage: Stage, since: datetime
) -> PromotionStatus | None:
    """A COMPLETED status with the links of the newest report of ``application_id`` at
    ``stage`` evaluated after ``since`` (the moment before the POST was sent; the server's
    clock may be a little behind ours), Continuous Monitoring's reports left out, if any."""
    reports = await client.report_history(application_id, stage=stage, limit=HISTORY_LOOKED_AT)
    earliest = since - timedelta(seconds=defaults.HISTORY_CLOCK_TOLERANCE)
    newer = [
        r
        for r in reports
        if r.evaluation_date is not None
        and r.evaluation_date > earliest
        and r.stage == stage.value
        and not r.is_for_monitoring
    ]
    if not newer:
        return None
    newest = max(newer, key=lambda r: r.evaluation_date or since)
    return PromotionStatus(
        status=EvaluationState.COMPLETED.value,
        report_html_url=newest.report_html_url,
        embeddable_report_html_url=newest.embeddable_report_html_url,
        report_pdf_url=newest.report_pdf_url,
        report_data_url=newest.report_data_url,
    )
