"""The run report: a versioned JSON document with its own JSON Schema.

Consumers (dashboards, renderers, the next night's baseline) read it back with
:func:`load_report`, so everything a renderer needs is in it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from orchestrator.errors import UsageError
from orchestrator.files import atomic_stream
from orchestrator.report.baseline import BaselineComparison
from orchestrator.report.firewall import FirewallSummary
from orchestrator.report.gate import PolicyGate
from orchestrator.report.results import Outcome, PromotionResult, ResultModel

SCHEMA_VERSION: Literal["1.0"] = "1.0"
_EMPTY_RESULTS = '\n  "results": []'
"""Where a report's results go in its JSON (a key of the document itself, two spaces in)."""


class Summary(ResultModel):
    """Counts of results by outcome; every outcome is present, zero or not."""

    total: int
    by_status: dict[Outcome, int]
    not_applicable: int = Field(
        default=0,
        description="Of the SKIPPED, those that did not apply to their application "
        "(results[].notApplicable): they do not fail the run.",
    )

    @classmethod
    def of(cls, results: Sequence[PromotionResult]) -> Summary:
        counts = Counter(r.status for r in results)
        return cls(
            total=len(results),
            by_status={o: counts.get(o, 0) for o in Outcome},
            not_applicable=sum(r.not_applicable is not None for r in results),
        )


class WebhookSummary(ResultModel):
    """What the run's listener for IQ's webhook received (``--webhook-listen``)."""

    listen: str = Field(description="The address the listener was bound to, HOST:PORT.")
    received: int = Field(default=0, description="Requests that reached the listener.")
    accepted: int = Field(
        default=0, description="Deliveries taken: signed with the secret (or insecure) and read."
    )
    rejected: dict[str, int] = Field(
        default_factory=dict,
        description="Deliveries refused, by reason: unsigned and badSignature (401), "
        "malformed (400), tooLarge (413).",
    )
    matched: int = Field(
        default=0,
        description="Accepted evaluation events that woke an outstanding promotion (a hint, "
        "confirmed or refuted by one status request).",
    )
    ignored: int = Field(
        default=0,
        description="Accepted events that concerned no outstanding promotion: another stage, "
        "an earlier evaluation, another application, another event type.",
    )
    duplicates: int = Field(
        default=0, description="Deliveries whose X-Nexus-Webhook-Delivery was seen before."
    )


class RunReport(ResultModel):
    """Everything one run did, in manifest order."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    server_url: str = Field(description="The IQ Server the run talked to, without credentials.")
    manifest: str = Field(description="Path of the manifest the run executed.")
    dry_run: bool = False
    summary: Summary
    results: list[PromotionResult]
    baseline: BaselineComparison | None = Field(
        default=None, description="Changes since an earlier run, when one was compared."
    )
    policy_gate: PolicyGate | None = Field(
        default=None, description="The --fail-on threshold and what crossed it, when given."
    )
    firewall: FirewallSummary | None = Field(
        default=None, description="The manifest's repositoryResults summary, when it has one."
    )
    firewall_error: str | None = Field(
        default=None, description="Why the firewall summary is missing, when it could not be read."
    )
    webhook: WebhookSummary | None = Field(
        default=None, description="What the listener for IQ's webhook received, when one ran."
    )
    stopped: str | None = Field(
        default=None,
        description="Why the run stopped before it decided every promotion (a signal, the "
        "server going away, refused credentials); `run --resume` continues it.",
    )
    error: str | None = Field(
        default=None, description="The error that stopped the run, when one did."
    )
    exit_code: int | None = Field(
        default=None, description="What iq-promote exited with for this run (see the README)."
    )

    @property
    def succeeded(self) -> bool:
        """True when every promotion completed or did not apply to its application; the run
        then exits 0. A SKIPPED whose chain broke earlier is a failure like the one before it."""
        done = self.summary.by_status[Outcome.COMPLETED] + self.summary.not_applicable
        return done == self.summary.total

    @property
    def gate_failed(self) -> bool:
        """True when ``--fail-on`` was given and a report crossed it (or could not be checked)."""
        return self.policy_gate is not None and self.policy_gate.failed

    @property
    def passed(self) -> bool:
        """True when the night went well: every promotion completed, none crossed the gate,
        nothing stopped the run. What exit code 0 means, and what a dashboard counts."""
        if self.exit_code is not None:
            return self.exit_code == 0
        return self.succeeded and not self.gate_failed and self.stopped is None

    def summary_fields(self, *, listed: int = 20) -> dict[str, Any]:
        """The closing ``run.summary`` log event: counts, timings, and what did not complete."""
        timed = sorted(
            (r for r in self.results if r.duration_seconds is not None),
            key=lambda r: r.duration_seconds or 0.0,
        )
        durations = [r.duration_seconds or 0.0 for r in timed]
        not_completed = [
            r
            for r in self.results
            if r.status is not Outcome.COMPLETED and r.not_applicable is None
        ]
        return {
            "total": self.summary.total,
            "byStatus": {str(k): v for k, v in self.summary.by_status.items()},
            "notApplicable": self.summary.not_applicable,
            "durationSeconds": self.duration_seconds,
            "promotionSeconds": {
                "p50": _quantile(durations, 0.5),
                "p95": _quantile(durations, 0.95),
                "max": durations[-1] if durations else None,
            },
            "slowest": [_brief(r) for r in reversed(timed[-5:])],
            "notCompleted": [_brief(r) for r in not_completed[:listed]],
            "notCompletedCount": len(not_completed),
        }

    def to_json(self) -> str:
        return "".join(self.json_chunks())

    def json_chunks(self) -> Iterator[str]:
        """:meth:`to_json` a result at a time: a report of 100,000 results is written without
        being held whole as text as well."""
        if not self.results:
            yield self.model_dump_json(by_alias=True, indent=2) + "\n"
            return
        outline = self.model_copy(update={"results": []}).model_dump_json(by_alias=True, indent=2)
        head, tail = outline.split(_EMPTY_RESULTS, 1)
        yield head + '\n  "results": [\n'
        for n, result in enumerate(self.results):
            text = result.model_dump_json(by_alias=True, indent=2).replace("\n", "\n    ")
            yield ("    " if n == 0 else ",\n    ") + text
        yield "\n  ]" + tail + "\n"

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return cls.model_json_schema(by_alias=True, mode="serialization")


def write_report(report: RunReport, path: Path, *, private: bool = False) -> None:
    """Write the report atomically: readers see the previous report or this one, never half.
    Its mode follows the umask, unless it is ``private`` state (0600)."""
    with atomic_stream(path, private=private) as handle:
        handle.writelines(report.json_chunks())


def load_report(path: Path) -> RunReport:
    """Read a report written by :func:`write_report`, with a clear error when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read report {path}: {exc.strerror}") from exc
    try:
        return RunReport.model_validate(json.loads(data.decode("utf-8")))
    except (ValueError, ValidationError) as exc:
        # ValueError: also bytes that are not UTF-8 (a damaged disk's).
        raise UsageError(f"{path} is not an iq-promote report: {exc}") from exc
    except RecursionError:
        raise UsageError(f"{path} is not an iq-promote report: nested too deeply") from None


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _brief(result: PromotionResult) -> dict[str, Any]:
    return {
        "publicId": result.public_id,
        "transition": result.transition,
        "status": str(result.status),
        "reason": result.reason,
        "durationSeconds": result.duration_seconds,
    }
