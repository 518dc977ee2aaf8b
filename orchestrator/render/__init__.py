"""Renderers: a saved run report as JUnit XML, Markdown, Prometheus metrics or HTML.

Each renderer is a pure function ``RunReport -> str``; :func:`write_outputs` writes the ones
asked for, atomically, and is what both ``run`` and ``render`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType

from orchestrator.files import atomic_write_text, check_outputs
from orchestrator.render.html import render_html
from orchestrator.render.junit import render_junit
from orchestrator.render.markdown import render_markdown
from orchestrator.render.metrics import previous_last_success, render_metrics
from orchestrator.report.run_report import RunReport

Renderer = Callable[[RunReport], str]

RENDERERS: Mapping[str, Renderer] = MappingProxyType(
    {
        "junit": render_junit,
        "markdown": render_markdown,
        "metrics": render_metrics,
        "html": render_html,
    }
)
"""Format name -> renderer; the names are :class:`RenderOutputs`' fields and the options of
``iq-promote render``."""


@dataclass(frozen=True, slots=True)
class RenderOutputs:
    """Where to write each format; a format left None is not rendered."""

    junit: Path | None = None
    markdown: Path | None = None
    metrics: Path | None = None
    html: Path | None = None

    def items(self) -> list[tuple[str, Path]]:
        """(format, path) of the formats asked for, in a fixed order."""
        chosen = ((f.name, getattr(self, f.name)) for f in fields(self))
        return [(name, path) for name, path in chosen if path is not None]

    def __bool__(self) -> bool:
        return bool(self.items())


def _render(name: str, report: RunReport, path: Path) -> str:
    if name == "metrics":
        # A run that did not succeed keeps the last success time the file already holds.
        try:
            previous = previous_last_success(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            previous = None
        return render_metrics(report, previous_last_success=previous)
    return RENDERERS[name](report)


def check_output_paths(
    outputs: RenderOutputs,
    inputs: Mapping[str, Path],
    *,
    also: Mapping[str, Path] | None = None,
    protected: Mapping[str, Path] | None = None,
) -> None:
    """Refuse, before any work, renderings (and ``also``, such as ``--report``) that would
    overwrite an input, share a file, fall inside a protected folder or cannot be written."""
    chosen = dict(also or {}) | {f"--{name}": path for name, path in outputs.items()}
    check_outputs(chosen, inputs, protected)


def write_outputs(report: RunReport, outputs: RenderOutputs) -> list[Path]:
    """Render ``report`` into every path ``outputs`` names, each written atomically; returns
    the paths written."""
    written = []
    for name, path in outputs.items():
        atomic_write_text(path, _render(name, report, path))
        written.append(path)
    return written


__all__ = [
    "RENDERERS",
    "RenderOutputs",
    "Renderer",
    "check_output_paths",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_metrics",
    "write_outputs",
]
