"""Reading a webhook delivery, as pure functions: the signature, the event type, the body."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.iq.webhook_models import (
    ApplicationEvaluationEvent,
    WebhookApplication,
    iq_timestamp,
)
from orchestrator.promote.webhooks import (
    Accepted,
    EvaluationEvent,
    Rejection,
    parse_event,
    read_delivery,
    signature_valid,
)

SECRET = "s3cret-for-tests"

VENDOR_EXAMPLE = {
    "timestamp": "2020-04-22T18:30:04.673+0000",
    "initiator": "admin",
    "id": "d5cc2e91d6454545841da5599d3c7156",
    "applicationEvaluation": {
        "application": {
            "id": "0f256982c80b4e13abef4917b93ac343",
            "publicId": "My-Application-ID",
            "name": "My-Application",
            "organizationId": "f25acda2a413ab2c62b44917b93ac232",
        },
        "policyEvaluationId": "d5cc2e91d6454545841da5599d3c7156",
        "stage": "release",
        "ownerId": "0f256982c80b4e13abef4917b93ac343",
        "evaluationDate": "2020-04-22T18:30:04.404+0000",
        "affectedComponentCount": 10,
        "criticalComponentCount": 2,
        "severeComponentCount": 5,
        "moderateComponentCount": 3,
        "outcome": "fail",
        "reportId": "36f37cf776dd408bacd063450ab04f71",
    },
}
"""help.sonatype.com's example payload (vendor-evidence G.3)."""

OLDER_EXAMPLE = {
    "applicationEvaluation": {
        "policyEvaluationId": "debceb1d-9209-485d-8d07-bd5390de7ef5",
        "stage": "build",
        "ownerId": "6a454175-f55d-4d33-ba44-90ac3af2e8b8",
        "evaluationDate": "2015-05-05T23:40:12Z",
        "affectedComponentCount": 10,
        "criticalComponentCount": 2,
        "severeComponentCount": 5,
        "moderateComponentCount": 3,
        "outcome": "fail",
    }
}
"""The older releases' payload: no ``application``, no ``reportId``."""


def body_of(payload: object) -> bytes:
    return json.dumps(payload).encode()


def signed(body: bytes, secret: str = SECRET, **extra: str) -> dict[str, str]:
    return {
        "X-Nexus-Webhook-Id": "iq:applicationEvaluation",
        "X-Nexus-Webhook-Delivery": "7f4a6dde-5c68-4999-bcc0-a62f3fb8ae48",
        "X-Nexus-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Nexus-Webhook-Signature-Algorithm": "HmacSHA1",
        **extra,
    }


# --- the signature -------------------------------------------------------------------------


def test_the_signature_is_the_hex_hmac_sha1_of_the_raw_body() -> None:
    body = body_of(VENDOR_EXAMPLE)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert signature_valid(body, SECRET, digest)
    assert signature_valid(body, SECRET, f"sha1={digest}")
    assert signature_valid(body, SECRET, f"SHA1={digest.upper()}")
    assert not signature_valid(body, "another secret", digest)
    assert not signature_valid(body + b" ", SECRET, digest), "the raw bytes are signed"
    assert not signature_valid(body, SECRET, digest[:-1])
    assert not signature_valid(body, SECRET, "")
    assert not signature_valid(body, SECRET, "sha256=" + digest)


@given(body=st.binary(max_size=256), secret=st.text(min_size=1, max_size=40))
def test_any_body_signed_with_the_secret_is_accepted_and_one_byte_changed_is_not(
    body: bytes, secret: str
) -> None:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    assert signature_valid(body, secret, digest)
    assert not signature_valid(body + b"x", secret, digest)


def test_a_signature_of_other_characters_is_refused_not_an_error() -> None:
    assert not signature_valid(b"{}", SECRET, "é" * 40)


# --- deciding on a delivery ----------------------------------------------------------------


def test_a_signed_evaluation_event_is_accepted_with_what_it_says() -> None:
    body = body_of(VENDOR_EXAMPLE)
    decided = read_delivery(signed(body), body, SECRET)
    assert decided == Accepted(
        "7f4a6dde-5c68-4999-bcc0-a62f3fb8ae48",
        EvaluationEvent(
            application_id="0f256982c80b4e13abef4917b93ac343",
            stage="release",
            evaluation_date=datetime(2020, 4, 22, 18, 30, 4, 404000, tzinfo=UTC),
            public_id="My-Application-ID",
            report_id="36f37cf776dd408bacd063450ab04f71",
        ),
    )


def test_headers_are_read_whatever_their_case() -> None:
    body = body_of(VENDOR_EXAMPLE)
    headers = {k.lower(): v for k, v in signed(body).items()}
    headers["x-nexus-webhook-id"] = "iq:applicationEvaluation"
    decided = read_delivery(headers, body, SECRET)
    assert isinstance(decided, Accepted)
    assert decided.event is not None


def test_a_prefixed_signature_is_accepted() -> None:
    body = body_of(VENDOR_EXAMPLE)
    headers = signed(body)
    headers["X-Nexus-Webhook-Signature"] = "sha1=" + headers["X-Nexus-Webhook-Signature"]
    assert isinstance(read_delivery(headers, body, SECRET), Accepted)


def test_with_a_secret_an_unsigned_or_wrongly_signed_delivery_is_refused_401() -> None:
    body = body_of(VENDOR_EXAMPLE)
    unsigned = {k: v for k, v in signed(body).items() if k != "X-Nexus-Webhook-Signature"}
    assert read_delivery(unsigned, body, SECRET) is Rejection.UNSIGNED
    assert read_delivery(signed(body, "not the secret"), body, SECRET) is Rejection.BAD_SIGNATURE
    tampered = body.replace(b"release", b"operate")
    assert read_delivery(signed(body), tampered, SECRET) is Rejection.BAD_SIGNATURE
    assert Rejection.UNSIGNED.status == Rejection.BAD_SIGNATURE.status == 401


def test_a_badly_signed_body_is_refused_before_it_is_read() -> None:
    assert read_delivery(signed(b"{}", "wrong"), b"not json", SECRET) is Rejection.BAD_SIGNATURE


def test_without_a_secret_any_delivery_is_taken_signed_or_not() -> None:
    body = body_of(VENDOR_EXAMPLE)
    unsigned = {k: v for k, v in signed(body).items() if k != "X-Nexus-Webhook-Signature"}
    assert isinstance(read_delivery(unsigned, body, None), Accepted)
    assert isinstance(read_delivery(signed(body, "whatever"), body, None), Accepted)


def test_another_event_type_is_accepted_and_not_read() -> None:
    body = b'{"policyManagement": "not ours"}'
    decided = read_delivery(
        signed(body, **{"X-Nexus-Webhook-Id": "iq:policyManagement"}), body, SECRET
    )
    assert decided == Accepted("7f4a6dde-5c68-4999-bcc0-a62f3fb8ae48", None)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        body_of({"applicationEvaluation": {"stage": "build"}}),
        body_of({"applicationEvaluation": {"stage": "build", "evaluationDate": "yesterday"}}),
        body_of(
            {"applicationEvaluation": {"stage": "build", "evaluationDate": "2020-04-22T18:30:04Z"}}
        ),
        body_of(
            {
                "applicationEvaluation": {
                    "stage": "",
                    "ownerId": "6a45",
                    "evaluationDate": "2020-04-22T18:30:04Z",
                }
            }
        ),
        '{"applicationEvaluation": "\u00e9"}'.encode("latin-1"),
    ],
    ids=["text", "list", "empty", "no-date", "bad-date", "no-application", "no-stage", "latin-1"],
)
def test_an_evaluation_event_that_names_no_evaluation_is_malformed_400(body: bytes) -> None:
    assert parse_event(body) is None
    assert read_delivery(signed(body), body, SECRET) is Rejection.MALFORMED
    assert Rejection.MALFORMED.status == 400


def test_the_older_payload_names_the_application_by_owner_id() -> None:
    event = parse_event(body_of(OLDER_EXAMPLE))
    assert event == EvaluationEvent(
        application_id="6a454175-f55d-4d33-ba44-90ac3af2e8b8",
        stage="build",
        evaluation_date=datetime(2015, 5, 5, 23, 40, 12, tzinfo=UTC),
    )


def test_application_id_is_preferred_to_owner_id() -> None:
    payload = json.loads(json.dumps(VENDOR_EXAMPLE))
    payload["applicationEvaluation"]["ownerId"] = "someone-else"
    event = parse_event(body_of(payload))
    assert event is not None
    assert event.application_id == "0f256982c80b4e13abef4917b93ac343"


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("2020-04-22T18:30:04.404+0000", datetime(2020, 4, 22, 18, 30, 4, 404000, tzinfo=UTC)),
        ("2020-04-22T20:30:04.404+02:00", datetime(2020, 4, 22, 18, 30, 4, 404000, tzinfo=UTC)),
        ("2020-04-22T18:30:04Z", datetime(2020, 4, 22, 18, 30, 4, tzinfo=UTC)),
        ("2020-04-22T18:30:04.404", datetime(2020, 4, 22, 18, 30, 4, 404000, tzinfo=UTC)),
    ],
)
def test_timestamps_are_read_tolerantly_and_without_an_offset_as_utc(
    written: str, meant: datetime
) -> None:
    payload = json.loads(json.dumps(VENDOR_EXAMPLE))
    payload["applicationEvaluation"]["evaluationDate"] = written
    event = parse_event(body_of(payload))
    assert event is not None
    assert event.evaluation_date == meant
    assert event.evaluation_date.tzinfo is not None


def test_iq_timestamps_are_written_as_iq_writes_them_and_read_back() -> None:
    when = datetime(2020, 4, 22, 18, 30, 4, 404321, tzinfo=UTC)
    assert iq_timestamp(when) == "2020-04-22T18:30:04.404+0000"
    payload = ApplicationEvaluationEvent.model_validate(VENDOR_EXAMPLE)
    assert payload.application_evaluation.application == WebhookApplication(
        id="0f256982c80b4e13abef4917b93ac343",
        public_id="My-Application-ID",
        name="My-Application",
        organization_id="f25acda2a413ab2c62b44917b93ac232",
    )
