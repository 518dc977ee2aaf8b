"""Secrets never reach a log line."""

from __future__ import annotations

import io
import json

import structlog

from orchestrator.logs import configure_logging
from orchestrator.secrets import REDACTED, SecretScrubber


def test_scrubber_replaces_secret_values_anywhere() -> None:
    scrubber = SecretScrubber(["hunter2"])
    event = scrubber(
        None,
        "info",
        {
            "event": "x",
            "url": "https://u:hunter2@h/",
            "nested": {"list": ["a hunter2 b"], "password": "anything"},
            "Authorization": "Basic abc",
        },
    )
    text = json.dumps(event)
    assert "hunter2" not in text
    assert event["nested"]["password"] == REDACTED
    assert event["Authorization"] == REDACTED


def test_configured_json_logs_are_scrubbed() -> None:
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    from orchestrator.secrets import SCRUBBER

    SCRUBBER.add("s3cr3t-pw")
    structlog.get_logger("t").info("evt", detail="password is s3cr3t-pw")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["event"] == "evt"
    assert "s3cr3t-pw" not in stream.getvalue()
