"""Prometheus metrics in the text format node_exporter's textfile collector reads.

``iq_promote_last_success_timestamp_seconds`` must survive a failed run, so that "no
successful run for a day" can alert; the caller passes the value from the previous file
(:func:`previous_last_success`), as :func:`orchestrator.render.write_outputs` does.
"""

from __future__ import annotations

import math
import re

from orchestrator.render.views import BANDS, violation_totals
from orchestrator.report.run_report import RunReport

PREFIX = "iq_promote"
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"

DURATION_BUCKETS: tuple[float, ...] = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
"""Seconds: a promotion takes from about a second (small scan, idle server) to the better part
of an hour (large scan, queued behind others)."""

_LAST_SUCCESS_LINE = re.compile(
    rf"^{LAST_SUCCESS}(?:\{{\}})?[ \t]+(\S+)(?:[ \t]+\S+)?[ \t]*$", re.MULTILINE
)


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _header(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


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
    """The report as Prometheus text; a run that did not succeed keeps the previous success
    time (0 when there was none)."""
    lines: list[str] = []
    name = f"{PREFIX}_promotions"
    _header(lines, name, "gauge", "Promotions of the last run, by final status.")
    lines.extend(f'{name}{{status="{o}"}} {n}' for o, n in report.summary.by_status.items())

    name = f"{PREFIX}_promotion_duration_seconds"
    _header(
        lines, name, "histogram", "Seconds from a promotion's accepted request to its final status."
    )
    durations = sorted(r.duration_seconds for r in report.results if r.duration_seconds is not None)
    for bound in (*DURATION_BUCKETS, math.inf):
        count = sum(1 for d in durations if d <= bound)
        lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {count}')
    lines.append(f"{name}_sum {_number(sum(durations))}")
    lines.append(f"{name}_count {len(durations)}")

    name = f"{PREFIX}_run_duration_seconds"
    _header(lines, name, "gauge", "Seconds the last run took.")
    lines.append(f"{name} {_number(report.duration_seconds)}")

    name = f"{PREFIX}_last_run_timestamp_seconds"
    _header(lines, name, "gauge", "When the last run finished, in seconds since the epoch.")
    lines.append(f"{name} {_number(report.finished_at.timestamp())}")

    _header(
        lines,
        LAST_SUCCESS,
        "gauge",
        "When the last run in which every promotion completed finished, in seconds since "
        "the epoch; 0 if none has yet.",
    )
    success = report.finished_at.timestamp() if report.succeeded else previous_last_success
    lines.append(f"{LAST_SUCCESS} {_number(success or 0)}")

    totals = violation_totals(report.results)
    if totals is not None:
        name = f"{PREFIX}_policy_violations"
        _header(
            lines,
            name,
            "gauge",
            "Open policy violations in the last run's reports, by threat band.",
        )
        lines.extend(f'{name}{{band="{b}"}} {getattr(totals.counts, b)}' for b in BANDS)

    if report.baseline is not None:
        name = f"{PREFIX}_baseline_changes"
        _header(lines, name, "gauge", "Changes since the baseline run, by kind.")
        counts = report.baseline.counts.model_dump()
        lines.extend(f'{name}{{change="{kind}"}} {n}' for kind, n in counts.items())
    return "\n".join(lines) + "\n"
