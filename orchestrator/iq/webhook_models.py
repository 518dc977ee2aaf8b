"""The shapes of IQ Server's webhooks: the headers of a delivery, and the body of the
Application Evaluation event (``iq:applicationEvaluation``), which IQ sends for every
completed evaluation.

The body follows help.sonatype.com "Lifecycle Webhooks Events Types" (docs/simulator.md,
Evidence): current releases name the application in ``application`` and the new report in
``reportId``; older ones give only ``ownerId`` (the application's internal id) and no report
id. Timestamps read like ``2020-04-22T18:30:04.404+0000``; a time without an offset is taken
as UTC. The listener (:mod:`orchestrator.promote.webhooks`) and the simulator both use these
models, and nothing else of each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer

from orchestrator.iq.models import UtcDatetime, WireModel

EVENT_HEADER = "X-Nexus-Webhook-Id"
"""The event type: ``iq:applicationEvaluation`` for evaluations."""
DELIVERY_HEADER = "X-Nexus-Webhook-Delivery"
"""A UUID of its own for every delivery."""
SIGNATURE_HEADER = "X-Nexus-Webhook-Signature"
"""The lower-case hex HMAC of the body, keyed with the webhook's secret, when it has one."""
ALGORITHM_HEADER = "X-Nexus-Webhook-Signature-Algorithm"
"""How the signature was made: only ``HmacSHA1`` is documented."""

APPLICATION_EVALUATION = "iq:applicationEvaluation"
SIGNATURE_ALGORITHM = "HmacSHA1"
CONTENT_TYPE = "application/json; charset=UTF-8"


def iq_timestamp(value: datetime) -> str:
    """``value`` written as IQ writes its webhook times: milliseconds and a ``+0000`` offset."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


Timestamp = Annotated[UtcDatetime, PlainSerializer(iq_timestamp, when_used="json")]


class WebhookApplication(WireModel):
    """The evaluated application, in current releases."""

    id: str | None = None
    public_id: str | None = None
    name: str | None = None
    organization_id: str | None = None


class ApplicationEvaluation(WireModel):
    """One completed evaluation: which application, at which stage, when, and how it went."""

    application: WebhookApplication | None = None
    policy_evaluation_id: str | None = None
    stage: str
    owner_id: str | None = None
    """The application's internal id; older releases name the application only by it."""
    evaluation_date: Timestamp
    affected_component_count: int | None = None
    critical_component_count: int | None = None
    severe_component_count: int | None = None
    moderate_component_count: int | None = None
    outcome: str | None = None
    """The policy outcome (``fail`` in the vendor's example), not whether the evaluation ran."""
    report_id: str | None = None
    """The new report's (scan's) id, in current releases."""

    @property
    def application_id(self) -> str | None:
        """The application's internal id: ``application.id``, else ``ownerId``."""
        if self.application is not None and self.application.id:
            return self.application.id
        return self.owner_id


class ApplicationEvaluationEvent(WireModel):
    """The body of an ``iq:applicationEvaluation`` delivery."""

    timestamp: Timestamp | None = None
    initiator: str | None = None
    id: str | None = None
    application_evaluation: ApplicationEvaluation
