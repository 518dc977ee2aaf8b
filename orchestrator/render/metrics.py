"""Prometheus metrics in the text format node_exporter's textfile collector reads.

Every sample carries a ``manifest`` label (the manifest's name), so that two manifests'
textfiles in one collector folder never collide. ``iq_promote_last_success_timestamp_seconds``
moves only on a night that passed (every promotion completed, none crossed ``--fail-on``,
nothing stopped the run) and must survive the others, so that "no good night for a day" can
alert; the caller passes the value from the previous file (:func:`previous_last_success`),
as :func:`orchestrator.render.write_outputs` does.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import PurePath

from orchestrator.render.views import BANDS, violation_totals
from orchestrator.report.run_report import RunReport

PREFIX = "iq_promote"
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"

DURATION_BUCKETS: tuple[float, ...] = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
"""Seconds: a promotion takes from about a second (small scan, idle server) to the better part
of an hour (large scan, queued behind others)."""

_LAST_SUCCESS_LINE = re.compile(
    rf"^{LAST_SUCCESS}(?:\{{[^}}]*\}})?[ \t]+(\S+)(?:[ \t]+\S+)?[ \t]*$", re.MULTILINE
)


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escaped(value: str) -> str:
    """A label value as the text format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Metrics:
    """The lines of one textfile: every sample labelled with the manifest."""

    def __init__(self, manifest: str) -> None:
        self.lines: list[str] = []
        self._manifest = _escaped(manifest)

    def header(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        pairs = [f'manifest="{self._manifest}"'] + [
            f'{k}="{_escaped(v)}"' for k, v in labels.items()
        ]
        self.lines.append(f"{name}{{{','.join(pairs)}}} {_number(value)}")


def previous_last_success(text: str) -> float | None:
    """The last-success timestamp a metrics file written by :func:`render_metrics` holds."""
    match = _LAST_SUCCESS_LINE.search(text)
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def render_metrics(report: RunReport, *, previous_last_success: float | None = None) -> str:
    """The report as Prometheus text; a night that did not pass keeps the previous success
    time (0 when there was none)."""
    out = _Metrics(PurePath(report.manifest).stem)
    name = f"{PREFIX}_promotions"
    out.header(name, "gauge", "Promotions of the last run, by final status.")
    for outcome, count in report.summary.by_status.items():
        out.sample(name, count, status=str(outcome))

    name = f"{PREFIX}_promotion_duration_seconds"
    out.header(
        name, "histogram", "Seconds from a promotion's accepted request to its final status."
    )
    durations = sorted(r.duration_seconds for r in report.results if r.duration_seconds is not None)
    for bound in (*DURATION_BUCKETS, math.inf):
        out.sample(f"{name}_bucket", sum(1 for d in durations if d <= bound), le=_number(bound))
    out.sample(f"{name}_sum", sum(durations))
    out.sample(f"{name}_count", len(durations))

    name = f"{PREFIX}_run_duration_seconds"
    out.header(name, "gauge", "Seconds the last run took.")
    out.sample(name, report.duration_seconds)

    name = f"{PREFIX}_last_run_timestamp_seconds"
    out.header(name, "gauge", "When the last run finished, in seconds since the epoch.")
    out.sample(name, report.finished_at.timestamp())

    name = f"{PREFIX}_last_run_exit_code"
    out.header(
        name, "gauge", "The last run's exit code: 0 passed, 1 not completed or gated, 3 server."
    )
    out.sample(name, report.exit_code if report.exit_code is not None else 0)

    out.header(
        LAST_SUCCESS,
        "gauge",
        "When the last night that passed (every promotion completed, none crossed --fail-on) "
        "finished, in seconds since the epoch; 0 if none has yet.",
    )
    success = report.finished_at.timestamp() if report.passed else previous_last_success
    out.sample(LAST_SUCCESS, success or 0)

    if report.policy_gate is not None:
        gate = report.policy_gate
        name = f"{PREFIX}_policy_gate_crossed"
        out.header(name, "gauge", "Promotions whose report crossed --fail-on in the last run.")
        out.sample(name, len(gate.crossed), fail_on=gate.fail_on)
        name = f"{PREFIX}_policy_gate_unchecked"
        out.header(
            name, "gauge", "Completed promotions whose report could not be checked (fails too)."
        )
        out.sample(name, gate.unchecked, fail_on=gate.fail_on)

    totals = violation_totals(report.results)
    if totals is not None:
        name = f"{PREFIX}_policy_violations"
        out.header(name, "gauge", "Open policy violations in the last run's reports, by band.")
        for band in BANDS:
            out.sample(name, getattr(totals.counts, band), band=band)

    detected = Counter(str(r.detected_by) for r in report.results if r.detected_by is not None)
    if detected:
        name = f"{PREFIX}_promotions_detected"
        out.header(name, "gauge", "Final statuses of the last run, by how they were learned.")
        for by, count in sorted(detected.items()):
            out.sample(name, count, by=by)

    if report.webhook is not None:
        hook = report.webhook
        name = f"{PREFIX}_webhook_deliveries"
        out.header(name, "gauge", "What the last run's webhook listener received, by outcome.")
        counts = {
            "received": hook.received,
            "accepted": hook.accepted,
            "matched": hook.matched,
            "ignored": hook.ignored,
            "duplicate": hook.duplicates,
            **{f"rejected_{reason}": n for reason, n in sorted(hook.rejected.items())},
        }
        for what, count in counts.items():
            out.sample(name, count, outcome=what)

    if report.baseline is not None:
        name = f"{PREFIX}_baseline_changes"
        out.header(name, "gauge", "Changes since the baseline run, by kind.")
        for kind, count in report.baseline.counts.model_dump().items():
            out.sample(name, count, change=kind)
    return "\n".join(out.lines) + "\n"
