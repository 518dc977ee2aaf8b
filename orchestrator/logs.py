"""Logging set-up: structlog everywhere, JSON lines off a TTY, and secrets scrubbed.

Every event passes the :data:`~orchestrator.secrets.SCRUBBER` last before rendering, so a
password that slips into a message, an exception or a URL is replaced before it can reach
any output.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor

from orchestrator.secrets import SCRUBBER

LogFormat = Literal["auto", "json", "console"]


class _CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written: a live progress display replaces it
    for a while, so that log lines print above the display instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


class _Omit:
    """Drop the named events before anything renders them."""

    def __init__(self, events: frozenset[str]) -> None:
        self._events = events

    def __call__(self, _: object, __: str, event: EventDict) -> EventDict:
        if event.get("event") in self._events:
            raise structlog.DropEvent
        return event


def configure_logging(
    *,
    level: str | None = None,
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    shown_otherwise: frozenset[str] = frozenset(),
) -> None:
    """Route structlog to ``stream`` (stderr by default) as JSON lines or console text.

    Without a ``level``, a person on a terminal sees warnings and errors (the display says
    the rest), and a log file gets every event from info up. Events named in
    ``shown_otherwise`` are left out: a display shows them better (the closing summary)."""
    stream = stream or cast(TextIO, _CurrentStderr())
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    if level is None:
        level = "warning" if fmt == "console" and stream.isatty() else "info"
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            _Omit(shown_otherwise),
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
