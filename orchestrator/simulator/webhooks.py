"""IQ's Application Evaluation webhook, as the simulator sends it: one POST for every
completed evaluation, signed when a secret is set, never retried, a seeded share lost.

The headers and the body follow the vendor's documentation (docs/simulator.md, Evidence).
Optionally, accepted promotions come with foreign evaluations of the same application (CI
scans), delivered the same way, so that a client can be shown never to take one for its
own. Deliveries go out from a few sender tasks in the simulator's task group, in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.iq.models import Application, Stage
from orchestrator.iq.webhook_models import (
    ALGORITHM_HEADER,
    APPLICATION_EVALUATION,
    CONTENT_TYPE,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_ALGORITHM,
    SIGNATURE_HEADER,
    ApplicationEvaluation,
    ApplicationEvaluationEvent,
    WebhookApplication,
)
from orchestrator.simulator.config import SimulatorConfig
from orchestrator.simulator.portfolio import Report, new_id
from orchestrator.simulator.reportdata import policy_report
from orchestrator.simulator.stats import DeliveryRecord, SimulatorStats

SENDERS = 4
"""Deliveries in the air at once."""
DELIVERY_TIMEOUT = 10.0
"""Seconds a receiver gets to answer; then the delivery is given up, as every failed one is."""
FOREIGN_BEFORE = timedelta(seconds=60)
"""How long before a promotion was accepted the foreign evaluation "before" it ended."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST to send: its headers and body, and what it was for."""

    headers: dict[str, str]
    body: bytes
    kind: str
    application_id: str
    stage: str

    def record(self, *, status: int | None = None, error: str | None = None) -> DeliveryRecord:
        return DeliveryRecord(
            delivery_id=self.headers[DELIVERY_HEADER],
            kind=self.kind,
            application_id=self.application_id,
            stage=self.stage,
            status=status,
            error=error,
        )


class WebhookSender:
    """Queues a delivery for each evaluation it is told of, and sends them while it runs."""

    def __init__(self, config: SimulatorConfig, stats: SimulatorStats):
        self.config = config
        self.stats = stats
        self._loss = random.Random(f"webhook-loss:{config.seed}")
        self._ids = random.Random(f"webhook-ids:{config.seed}")
        self._foreign = random.Random(f"webhook-foreign:{config.seed}")
        self._send: MemoryObjectSendStream[Delivery] | None = None

    @property
    def legacy(self) -> bool:
        return self.config.webhook_format == "legacy"

    # --- what is delivered ---------------------------------------------------------------

    def evaluated(self, application: Application, report: Report) -> None:
        """A promotion's evaluation completed and made ``report``."""
        evaluation = self._evaluation(
            application,
            report.stage,
            report.evaluation_date,
            report.report_id,
            **self._counts(application, report),
        )
        self._queue(evaluation, "promotion")

    def accepted(self, application: Application, target: Stage) -> None:
        """A promotion was accepted: for a seeded share, foreign evaluations of the same
        application are delivered too (none of them its own)."""
        if self._foreign.random() >= self.config.webhook_foreign:
            return
        now = datetime.now(UTC)
        other = Stage.BUILD if target is not Stage.BUILD else Stage.STAGE_RELEASE
        for stage, when, kind in (
            (other, now, "foreign-other-stage"),
            (target, now - FOREIGN_BEFORE, "foreign-before"),
            (target, now, "foreign-during"),
        ):
            self._queue(self._evaluation(application, stage, when, new_id(self._ids)), kind)

    def _evaluation(
        self,
        application: Application,
        stage: Stage,
        when: datetime,
        report_id: str,
        **counts: object,
    ) -> ApplicationEvaluation:
        named = WebhookApplication(
            id=application.id,
            public_id=application.public_id,
            name=application.name,
            organization_id=application.organization_id,
        )
        return ApplicationEvaluation.model_validate(
            {
                "application": None if self.legacy else named,
                "policy_evaluation_id": report_id,
                "stage": stage.value,
                "owner_id": application.id,
                "evaluation_date": when,
                "outcome": "none",
                "report_id": None if self.legacy else report_id,
                **counts,
            }
        )

    def _counts(self, application: Application, report: Report) -> dict[str, object]:
        """Components with open violations by their worst threat band, from the report's own
        policy data, and the outcome they make."""
        worst = [
            max(levels)
            for component in policy_report(self.config.seed, application, report).components
            if (levels := [v.policy_threat_level for v in component.violations if not v.waived])
        ]
        critical = sum(1 for w in worst if w >= 8)
        severe = sum(1 for w in worst if 4 <= w < 8)
        return {
            "affected_component_count": len(worst),
            "critical_component_count": critical,
            "severe_component_count": severe,
            "moderate_component_count": sum(1 for w in worst if 2 <= w < 4),
            "outcome": "fail" if critical else "warn" if severe else "none",
        }

    def _queue(self, evaluation: ApplicationEvaluation, kind: str) -> None:
        delivery_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        event = ApplicationEvaluationEvent(
            timestamp=None if self.legacy else datetime.now(UTC),
            initiator=None if self.legacy else self.config.username,
            id=None if self.legacy else evaluation.policy_evaluation_id,
            application_evaluation=evaluation,
        )
        # Compact, as IQ's JSON is; the signature is of exactly these bytes.
        body = json.dumps(event.to_wire(), separators=(",", ":")).encode()
        delivery = Delivery(
            self._headers(delivery_id, body),
            body,
            kind,
            evaluation.owner_id or "",
            evaluation.stage,
        )
        if self._loss.random() < self.config.webhook_loss:
            self.stats.webhooks_lost += 1
            self.stats.webhook_deliveries.append(delivery.record(error="lost"))
        elif self._send is not None:
            self._send.send_nowait(delivery)

    def _headers(self, delivery_id: str, body: bytes) -> dict[str, str]:
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": f"Sonatype_CLM_Server/1.{self.config.release}.0-01 "
            "(Java 17.0.12; Linux 6.1.0)",
            EVENT_HEADER: APPLICATION_EVALUATION,
            DELIVERY_HEADER: delivery_id,
        }
        secret = self.config.webhook_secret
        if secret:
            headers[SIGNATURE_HEADER] = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
            headers[ALGORITHM_HEADER] = SIGNATURE_ALGORITHM
        return headers

    # --- sending -------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Send queued deliveries until cancelled, with the simulator."""
        self._send, receive = anyio.create_memory_object_stream[Delivery](math.inf)
        timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                anyio.create_task_group() as senders,
            ):
                for _ in range(SENDERS):
                    senders.start_soon(self._sender, receive.clone(), session)
                receive.close()
                task_status.started()
        finally:
            self._send.close()
            self._send = None

    async def _sender(
        self, receive: MemoryObjectReceiveStream[Delivery], session: aiohttp.ClientSession
    ) -> None:
        url = self.config.webhook_url
        assert url is not None
        async with receive:
            async for delivery in receive:
                try:
                    async with session.post(
                        url, data=delivery.body, headers=delivery.headers
                    ) as answer:
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    # Never retried, as IQ does not retry: the delivery is lost.
                    self.stats.webhooks_failed += 1
                    record = delivery.record(error=type(exc).__name__)
                else:
                    self.stats.webhook_answers[status] += 1
                    record = delivery.record(status=status)
                self.stats.webhook_deliveries.append(record)
