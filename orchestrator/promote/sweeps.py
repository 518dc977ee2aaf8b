"""Sweeps of the latest-reports listing, for the evaluations whose webhook delivery was lost.

IQ sends no delivery twice and may lose one; a lost one would leave its promotion to the
backstop polls. ``GET api/v2/reports/applications`` lists every application's latest report
at every stage, with its evaluation date: one request shows every outstanding promotion's
evaluation that has ended. Each is offered to the :class:`~orchestrator.promote.hints.HintBoard`
as a hint, as a delivery would be, and only the status asked then decides; a CI scan the
listing shows costs one status request, as its delivery would.

The sweeper runs beside the promotions while webhooks arrive, at the pace
:class:`~orchestrator.promote.hints.ListingSweep` sets. Should a sweep fail, or the listing be
too large to read, it says so once and sweeps no more: the polls find lost deliveries then.
"""

from __future__ import annotations

import anyio
import structlog

from orchestrator.errors import ServerError
from orchestrator.iq.client import IqClient
from orchestrator.promote.hints import HintBoard, ListingSweep
from orchestrator.promote.webhooks import EvaluationEvent
from orchestrator.report.results import Detection

log = structlog.get_logger("orchestrator.promote")


async def sweep_listing(client: IqClient, board: HintBoard, policy: ListingSweep) -> None:
    """Sweep until cancelled, or until a sweep fails; ``board.sweeping`` says whether sweeps
    find lost deliveries now. A listing's rows this version cannot read are skipped quietly
    (a debug event): one the listing always holds would otherwise warn at every sweep."""
    rows = 0
    try:
        while True:
            await anyio.sleep(policy.interval(board.typical(), rows))
            if not board.outstanding or not board.live():
                board.swept_until = None
                continue
            try:
                reports = await client.latest_reports(limit=policy.max_bytes, quiet=True)
            except ServerError as exc:
                log.warning(
                    "webhook.sweep_stopped",
                    reason=str(exc),
                    action="lost deliveries are found by polls alone for the rest of the run",
                )
                return
            rows = len(reports)
            found = 0
            for report in reports:
                date = report.evaluation_date
                if date is None or not board.watched(report.application_id, report.stage):
                    continue
                event = EvaluationEvent(report.application_id, report.stage, date)
                found += board.offer(event, Detection.LISTING)
            ahead = 2 * policy.interval(board.typical(), rows)
            board.swept_until = board.clock() + ahead
            if found:
                log.debug("webhook.sweep", rows=rows, hints=found)
    finally:
        board.swept_until = None
