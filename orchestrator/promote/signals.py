"""Stopping a run gracefully: SIGTERM, SIGINT or SIGHUP (a closed terminal or SSH session)
stop submissions, a grace period lets the promotions in flight finish, and a second signal (or
the end of the grace) cancels them; the report is written either way."""

from __future__ import annotations

import signal

import anyio
import structlog

from orchestrator.promote.control import RunControl

log = structlog.get_logger("orchestrator.promote")

STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""The signals that stop a run gracefully."""


async def watch_signals(control: RunControl, grace: float) -> None:
    """Run alongside the scheduler; cancel this task when the run is over."""
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(*STOPPING) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if control.signal is None:
                    control.signal = signum
                    control.stop_submitting(f"stopped by {name}")
                    log.warning("run.signal", signal=name, graceSeconds=grace)
                    tg.start_soon(_cancel_after, control, grace)
                else:
                    log.warning("run.signal", signal=name, action="cancelling now")
                    control.cancel()
                    tg.cancel_scope.cancel()
                    return


async def _cancel_after(control: RunControl, grace: float) -> None:
    await anyio.sleep(grace)
    log.warning("run.grace_over", action="cancelling the promotions still in flight")
    control.cancel()
