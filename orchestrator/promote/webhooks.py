"""Reading one webhook delivery from IQ Server: is it authentic, is it ours, what does it say.

Pure functions of the headers and the raw body, so that every rule is tested without a
network; :mod:`orchestrator.promote.webhook_listener` only answers what they decide. The
signature is checked over the bytes as they arrived (re-serialised JSON need not match
them), in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import ValidationError

from orchestrator.iq.webhook_models import (
    APPLICATION_EVALUATION,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    ApplicationEvaluationEvent,
)


class Rejection(StrEnum):
    """Why a delivery was refused, as the report counts it."""

    UNSIGNED = "unsigned"
    """A secret is set and the delivery carries no signature: 401."""
    BAD_SIGNATURE = "badSignature"
    """The signature is not the body's HMAC with the secret: 401."""
    MALFORMED = "malformed"
    """An evaluation event whose body is not one: 400."""
    TOO_LARGE = "tooLarge"
    """A body over the cap: 413."""

    @property
    def status(self) -> int:
        """The HTTP status the listener answers with."""
        return {"unsigned": 401, "badSignature": 401, "malformed": 400, "tooLarge": 413}[self]


@dataclass(frozen=True, slots=True)
class EvaluationEvent:
    """What an ``iq:applicationEvaluation`` delivery says, as far as a promotion cares."""

    application_id: str
    """The internal id: ``application.id``, else ``ownerId`` (older releases)."""
    stage: str
    evaluation_date: datetime
    public_id: str | None = None
    report_id: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """An authentic delivery: an evaluation event, or None for another event type."""

    delivery_id: str | None
    event: EvaluationEvent | None


def signature_valid(body: bytes, secret: str, signature: str) -> bool:
    """Whether ``signature`` (lower-case hex, perhaps with a ``sha1=`` prefix; any case is
    taken) is the HMAC-SHA1 of ``body`` keyed with ``secret``, compared in constant time."""
    given = signature.strip()
    if given[:5].lower() == "sha1=":
        given = given[5:]
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected.encode(), given.lower().encode("ascii", "replace"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever the case the sender gave it."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def read_delivery(
    headers: Mapping[str, str], body: bytes, secret: str | None
) -> Accepted | Rejection:
    """Decide on one delivery: refused (and why), or accepted with what it says.

    With a ``secret`` every delivery must be signed with it, whatever its event type; without
    one (``--webhook-insecure``) any is taken. Only an evaluation event is read further."""
    if secret is not None:
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            return Rejection.UNSIGNED
        if not signature_valid(body, secret, signature):
            return Rejection.BAD_SIGNATURE
    delivery_id = _header(headers, DELIVERY_HEADER) or None
    if (_header(headers, EVENT_HEADER) or "").strip() != APPLICATION_EVALUATION:
        return Accepted(delivery_id, None)
    event = parse_event(body)
    if event is None:
        return Rejection.MALFORMED
    return Accepted(delivery_id, event)


def parse_event(body: bytes) -> EvaluationEvent | None:
    """The evaluation an ``iq:applicationEvaluation`` body names, or None when it names none
    (not JSON, no ``applicationEvaluation``, no application id, stage or date)."""
    try:
        wire = ApplicationEvaluationEvent.model_validate_json(body)
    except ValidationError:
        return None
    evaluation = wire.application_evaluation
    application_id = evaluation.application_id
    if not application_id or not evaluation.stage:
        return None
    return EvaluationEvent(
        application_id=application_id,
        stage=evaluation.stage,
        evaluation_date=evaluation.evaluation_date,
        public_id=evaluation.application.public_id if evaluation.application else None,
        report_id=evaluation.report_id,
    )
