"""Ten thousand applications in one run of the real command line, against the simulator.

The run is a subprocess, so its peak memory is its own (``ru_maxrss``), not pytest's nor the
simulator's, which serves from this process. The run re-evaluates (build to build) without
reading each new report's data (``--no-fetch-results``): the simulator makes that data up per
request, which would make its own CPU, not the run, what the test measures.

Peak memory and wall time are measured and reported (printed, and recorded as test
properties in JUnit XML), never asserted: a load test that fails on a slower machine says
nothing about the code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest

from orchestrator.report.results import Outcome
from orchestrator.report.run_report import load_report
from orchestrator.simulator import Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
RecordProperty = Callable[[str, object], None]

PEAK_MARK = "peak-rss-kib="
MEASURED_CLI = f"""
import atexit, resource, sys
from orchestrator.cli.main import main
atexit.register(
    lambda: print("{PEAK_MARK}%d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  file=sys.stderr)
)
main(prog_name="iq-promote")
"""
"""``iq-promote`` as usual, telling its own peak resident memory when it exits."""


async def run_at_scale(
    simulator_factory: SimulatorFactory,
    tmp_path: Path,
    record_property: RecordProperty,
    apps: int,
    limit: float,
) -> None:
    public_ids = [f"load-{n:05}" for n in range(apps)]
    manifest = tmp_path / "load.yaml"
    manifest.write_text(
        "version: 1\nconcurrency: 100\npolling: {initialInterval: 0.05, maxInterval: 0.5}\n"
        "promotions:\n  - applications: [" + ", ".join(public_ids) + "]\n"
        "    transitions: [{from: build, to: build}]\n"
    )
    report = tmp_path / "load.json"
    async with simulator_factory(
        apps=0,
        organizations=1,
        workers=100,
        eval_time=0.002,
        extra_applications=tuple((pid, None) for pid in public_ids),
    ) as sim:
        started = time.monotonic()
        with anyio.fail_after(limit):
            done = await anyio.run_process(
                [
                    *(sys.executable, "-c", MEASURED_CLI, "run", str(manifest)),
                    *("--server-url", sim.base_url, "--report", str(report)),
                    *("--state-dir", str(tmp_path / "state"), "--no-fetch-results", "--quiet"),
                ],
                env={**os.environ, "IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"},
                check=False,
            )
        elapsed = time.monotonic() - started
        evaluations = sim.stats.evaluations_completed
        requests = sim.stats.total_requests
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-3000:]

    result = load_report(report)
    assert len(result.results) == apps
    assert result.summary.by_status[Outcome.COMPLETED] == apps
    assert {r.public_id for r in result.results} == set(public_ids)
    assert evaluations == apps  # one evaluation per promotion, none repeated

    peak_kib = int(stderr.rsplit(PEAK_MARK, 1)[1].split()[0])
    measured = {
        "applications": apps,
        "wall_seconds": round(elapsed, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "simulator_requests": requests,
    }
    for name, value in measured.items():
        record_property(name, value)
    print(f"\nload: {json.dumps(measured)}")


async def test_ten_thousand_applications_all_complete(
    simulator_factory: SimulatorFactory, tmp_path: Path, record_property: RecordProperty
) -> None:
    """About 15 s on two cores (a third of it the simulator seeding its portfolio), so it is
    part of the default suite."""
    await run_at_scale(simulator_factory, tmp_path, record_property, apps=10_000, limit=180)
