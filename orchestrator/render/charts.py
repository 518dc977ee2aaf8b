"""Inline SVG charts for the HTML report: the promotions' timeline and a histogram.

Every text that reaches the SVG goes through ``html.escape``; sizes are in a fixed viewBox,
so the charts scale with the page.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from orchestrator.render.views import seconds
from orchestrator.report.results import PromotionResult

WIDTH = 1000
LEFT = 56
RIGHT = 12
TOP = 8
AXIS = 26
MAX_BARS = 2000
"""Above this many promotions the timeline shows how many were in flight instead of bars."""

_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float
    result: PromotionResult


def _spans(results: Sequence[PromotionResult], origin: datetime, end: datetime) -> list[Span]:
    spans = []
    for r in results:
        if r.submitted_at is None:
            continue
        finished = r.finished_at or end
        start = (r.submitted_at - origin).total_seconds()
        spans.append(Span(start, max(start, (finished - origin).total_seconds()), r))
    spans.sort(key=lambda s: (s.start, s.end))
    return spans


def _tick_step(total: float, most: int = 8) -> float:
    for step in _TICK_STEPS:
        if total / step <= most:
            return step
    return math.ceil(total / most / 3600) * 3600


def _offset_label(value: float) -> str:
    whole = round(value)
    if whole < 60:
        return f"+{whole} s"
    if whole < 3600:
        return f"+{whole // 60} min" + (f" {whole % 60} s" if whole % 60 else "")
    return f"+{whole // 3600} h" + (f" {whole % 3600 // 60} min" if whole % 3600 // 60 else "")


def _anchor(x: float) -> str:
    """Centre a tick label under its tick, except where it would run off the right edge."""
    return "end" if x > WIDTH - RIGHT - 30 else "middle"


def _time_axis(total: float, y: float) -> list[str]:
    scale = (WIDTH - LEFT - RIGHT) / total
    step = _tick_step(total)
    parts = [f'<line class="axis" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>']
    tick = 0.0
    while tick <= total + 1e-9:
        x = LEFT + tick * scale
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}"/>')
        label = _offset_label(tick)
        parts.append(f'<text x="{x:.1f}" y="{y + 16}" text-anchor="{_anchor(x)}">{label}</text>')
        tick += step
    return parts


def timeline_svg(results: Sequence[PromotionResult], origin: datetime, end: datetime) -> str:
    """Each promotion as a bar from submission to final status, packed into lanes so that
    the lanes' height shows the concurrency; above :data:`MAX_BARS` promotions, the number in
    flight over time."""
    spans = _spans(results, origin, end)
    if not spans:
        return '<p class="empty">No promotion was submitted.</p>'
    total = max(max(s.end for s in spans), (end - origin).total_seconds(), 1.0)
    if len(spans) > MAX_BARS:
        return _in_flight_svg(spans, total)
    lane_ends: list[tuple[float, int]] = []  # (end, lane) of the lanes in use, a heap
    free: list[int] = []
    lanes: list[int] = []
    for span in spans:
        while lane_ends and lane_ends[0][0] <= span.start:
            heapq.heappush(free, heapq.heappop(lane_ends)[1])
        lane = heapq.heappop(free) if free else len(lane_ends) + len(free)
        heapq.heappush(lane_ends, (span.end, lane))
        lanes.append(lane)
    count = max(lanes) + 1
    lane_height = max(1.0, min(14.0, 360 / count))
    plot = count * lane_height
    height = TOP + plot + AXIS
    scale = (WIDTH - LEFT - RIGHT) / total
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'aria-label="Timeline of {len(spans)} promotions in {count} lanes">',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{count}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot}" text-anchor="end">lanes</text>',
    ]
    gap = 1.0 if lane_height > 3 else 0.0
    for span, lane in zip(spans, lanes, strict=True):
        r = span.result
        x = LEFT + span.start * scale
        width = max(1.0, (span.end - span.start) * scale)
        tip = f"{r.application}: {r.transition} — {r.status}, {seconds(r.duration_seconds)}"
        parts.append(
            f'<rect class="bar s-{r.status}" x="{x:.1f}" y="{TOP + lane * lane_height:.1f}" '
            f'width="{width:.1f}" height="{lane_height - gap:.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts += _time_axis(total, TOP + plot + 2)
    parts.append("</svg>")
    return "".join(parts)


def _in_flight_svg(spans: list[Span], total: float, buckets: int = 400) -> str:
    starts = sorted(s.start for s in spans)
    ends = sorted(s.end for s in spans)
    samples = []
    for i in range(buckets + 1):
        t = total * i / buckets
        samples.append(bisect.bisect_right(starts, t) - bisect.bisect_right(ends, t))
    peak = max(max(samples), 1)
    plot = 200.0
    scale_x = (WIDTH - LEFT - RIGHT) / buckets
    points = " ".join(
        f"{LEFT + i * scale_x:.1f},{TOP + plot - n / peak * plot:.1f}"
        for i, n in enumerate(samples)
    )
    base = TOP + plot
    return "".join(
        [
            f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {base + AXIS:.0f}" '
            f'aria-label="Promotions in flight over time, at most {peak}">',
            f'<polygon class="area" points="{LEFT},{base} {points} {WIDTH - RIGHT},{base}"/>',
            f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{peak}</text>',
            f'<text x="{LEFT - 6}" y="{base}" text-anchor="end">0</text>',
            *_time_axis(total, base + 2),
            "</svg>",
        ]
    )


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def histogram_svg(values: Sequence[float], bins: int = 20, unit: str = "s") -> str:
    """A histogram of ``values`` in ``bins`` equal bins from 0 to a round maximum."""
    if not values:
        return '<p class="empty">No evaluation times were recorded.</p>'
    top = _nice_ceiling(max(values))
    width = top / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v / width)))] += 1
    peak = max(counts)
    plot = 180.0
    bar = (WIDTH - LEFT - RIGHT) / bins
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {TOP + plot + AXIS:.0f}" '
        f'aria-label="Histogram of {len(values)} evaluation times">',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{peak}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot}" text-anchor="end">0</text>',
    ]
    for i, n in enumerate(counts):
        h = n / peak * plot
        low, high = i * width, (i + 1) * width
        parts.append(
            f'<rect class="hbar" x="{LEFT + i * bar + 1:.1f}" y="{TOP + plot - h:.1f}" '
            f'width="{bar - 2:.1f}" height="{h:.1f}">'
            f"<title>{low:g} to {high:g} {unit}: {n} promotions</title></rect>"
        )
    y = TOP + plot + 2
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = LEFT + i * bar
        parts.append(
            f'<text x="{x:.1f}" y="{y + 16}" text-anchor="{_anchor(x)}">{i * width:g} {unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
