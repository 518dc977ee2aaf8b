"""One run per state directory: the lock excludes a second holder, never outlives its process,
and an overlapping run exits before it touches anything."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest
from test_runner import config_for, entry, manifest

from orchestrator.errors import LockedError
from orchestrator.promote.journal import JOURNAL_NAME
from orchestrator.promote.lock import LOCK_NAME, StateLock
from orchestrator.report.results import Outcome
from orchestrator.runner.run import run
from orchestrator.simulator import Simulator

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from orchestrator.promote.lock import StateLock
    with StateLock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def hold_in_subprocess(state_dir: Path) -> subprocess.Popen[str]:
    """Another process that takes the lock and keeps it until killed."""
    holder = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", HOLD, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    with StateLock(tmp_path):
        with pytest.raises(LockedError, match=f"pid {os.getpid()}") as refused:
            StateLock(tmp_path).__enter__()
        assert str(tmp_path) in str(refused.value)
        assert refused.value.exit_code == 75
    with StateLock(tmp_path):  # released: the next run gets it
        pass


def test_another_process_holding_the_lock_excludes_this_one(tmp_path: Path) -> None:
    holder = hold_in_subprocess(tmp_path)
    try:
        with pytest.raises(LockedError, match=f"pid {holder.pid}"), StateLock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    holder = hold_in_subprocess(tmp_path)
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    # The file still names the dead holder; only the kernel's lock counted, and it died too.
    assert f"pid {holder.pid}" in (tmp_path / LOCK_NAME).read_text()
    with StateLock(tmp_path):
        assert f"pid {os.getpid()}" in (tmp_path / LOCK_NAME).read_text()


def test_a_lock_file_naming_a_process_that_does_not_exist_does_not_block(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("pid 4194999 on a-host-long-gone\n")
    with StateLock(tmp_path):
        pass
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly


@pytest.mark.anyio
async def test_an_overlapping_run_is_refused_and_touches_nothing(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    """Last night's run still holds the state directory; tonight's exits at once. The second
    run talks to its own simulator, so any request it sent would show there."""
    async with (
        simulator_factory(apps=12, eval_time=0.2, eval_sigma=0.0, workers=2) as busy,
        simulator_factory(apps=12) as other,
    ):
        apps = [a.public_id for a in busy.portfolio.applications[:6]]
        text = manifest(entry(apps, "{from: build, to: build}"))
        first = config_for(busy, text, state_dir=tmp_path)
        second = config_for(other, text, state_dir=tmp_path, resume=True)
        reports = []
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:

                async def first_run() -> None:
                    reports.append(await run(first))

                tg.start_soon(first_run)
                while not busy.stats.promotions_accepted:  # noqa: ASYNC110 - sets no event
                    await anyio.sleep(0.01)  # until the first run is under way
                with pytest.raises(LockedError, match="another iq-promote run"):
                    await run(second)
        accepted = dict(busy.stats.promotions_accepted)
        assert other.stats.total_requests == 0
        assert not other.stats.promotions_accepted

    (report,) = reports
    assert [r.status for r in report.results] == [Outcome.COMPLETED] * len(apps)
    assert sorted(accepted.values()) == [1] * len(apps)  # the refused run re-sent nothing
    with sqlite3.connect(tmp_path / JOURNAL_NAME) as db:
        # One run only, complete: the refused one neither began a run nor resumed this one.
        assert list(db.execute("SELECT manifest, complete FROM runs")) == [("test.yaml", 1)]
        assert list(db.execute("SELECT COUNT(*) FROM steps")) == [(len(apps),)]
