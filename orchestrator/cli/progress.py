"""The live progress bar on a terminal: it reads the run's :class:`ProgressTracker` and never
slows the run down."""

from __future__ import annotations

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.promote.progress import ProgressTracker


async def show_progress(tracker: ProgressTracker, console: Console) -> None:
    """A live bar on the terminal until cancelled; log lines print above it."""
    display = Progress(
        TextColumn("[bold]promotions"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TextColumn("[dim]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[eta]}"),
        console=console,
        redirect_stderr=True,
        redirect_stdout=False,
    )
    with display:
        task = display.add_task("run", total=None, detail="resolving", rate="", eta="")
        try:
            while True:
                snap = tracker.snapshot()
                display.update(
                    task,
                    total=snap.total or None,
                    completed=snap.finished,
                    detail=snap.describe() if snap.total else "resolving applications",
                    rate=f"{snap.rate * 60:.0f}/min" if snap.rate else "",
                    eta=f"eta {snap.eta:.0f}s" if snap.eta is not None else "",
                )
                await anyio.sleep(0.25)
        finally:
            snap = tracker.snapshot()
            display.update(task, completed=snap.finished, detail=snap.describe(), eta="")
