"""Logging set-up: structlog everywhere, JSON lines off a TTY, and secrets scrubbed.

Every event passes :class:`SecretScrubber` last before rendering, so a password that slips
into a message, an exception or a URL is replaced before it can reach any output.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]
REDACTED = "***"
_SENSITIVE_KEYS = frozenset({"password", "authorization", "auth", "token", "secret"})


class SecretScrubber:
    """A structlog processor that replaces known secret values and sensitive keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = {s for s in secrets if s}

    def add(self, secret: str) -> None:
        if secret:
            self.secrets.add(secret)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._scrub_item(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        return value

    def _scrub_item(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and key.lower() in _SENSITIVE_KEYS:
            return REDACTED
        return self.scrub(value)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        scrubbed: MutableMapping[str, Any] = {
            key: self._scrub_item(key, value) for key, value in event_dict.items()
        }
        return dict(scrubbed)


SCRUBBER = SecretScrubber()
"""The process-wide scrubber; the CLI registers the password with it before any request."""


class _CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written: a live progress display replaces it
    for a while, so that log lines print above the display instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    *, level: str = "info", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Route structlog to ``stream`` (stderr by default) as JSON lines or console text."""
    stream = stream or cast(TextIO, _CurrentStderr())
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            SCRUBBER,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
