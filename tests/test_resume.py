"""The real command line, killed and stopped mid-run, then resumed: ``kill -9``, SIGTERM,
SIGINT and a second signal, against a simulator running in its own process.

Every process is started by a fixture that kills it in ``finally``, and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.promote.journal import JOURNAL_NAME
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport, load_report

APPS = 40
CONCURRENCY = 4
WAIT = 60.0
"""Seconds any one wait may take before the test fails (instead of hanging)."""
PASSWORD = "admin123"

MANIFEST = f"""\
version: 1
concurrency: {CONCURRENCY}
polling: {{initialInterval: 0.1, maxInterval: 0.3}}
promotions:
  - applications: [{", ".join(f"resume-app-{n:02}" for n in range(APPS))}]
    transitions:
      - {{from: build, to: build}}
"""


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Processes:
    """Subprocesses a test starts; all are killed when the test ends, however it ends."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "orchestrator", *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        self.started.append(process)
        return process


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    try:
        yield running
    finally:
        for process in running.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=WAIT)


@dataclass
class Simulated:
    """The simulator subprocess: its URL, and its counters read over HTTP."""

    url: str

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "__simulator/stats", timeout=10) as answer:  # noqa: S310 - a loopback URL
            stats: dict[str, Any] = json.load(answer)
        return stats

    def accepted(self) -> dict[str, int]:
        """Promotions accepted per application id: one evaluation each."""
        accepted: dict[str, int] = self.stats()["promotionsAccepted"]
        return accepted

    def applications(self) -> dict[str, str]:
        """Public id by application id."""
        request = urllib.request.Request(  # noqa: S310 - a loopback URL
            self.url + "api/v2/applications",
            headers={"Authorization": "Basic " + b64encode(f"admin:{PASSWORD}".encode()).decode()},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            apps = json.load(answer)["applications"]
        return {app["id"]: app["publicId"] for app in apps}


@dataclass
class Setup:
    processes: Processes
    tmp: Path
    manifest: Path
    sim: Simulated
    state: Path
    report: Path

    def run(self, *options: str) -> subprocess.Popen[bytes]:
        return self.processes.start(
            [
                "run",
                str(self.manifest),
                "--server-url",
                self.sim.url,
                "--state-dir",
                str(self.state),
                "--report",
                str(self.report),
                "--log-format",
                "json",
                *options,
            ],
            self.tmp / "run.log",
            IQ_USERNAME="admin",
            IQ_PASSWORD=PASSWORD,
        )

    def journal(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.state / JOURNAL_NAME) as db:
            return list(db.execute(sql))

    def submitted(self) -> int:
        """Promotions whose POST the simulator accepted so far."""
        return sum(self.sim.accepted().values())

    def evaluations_by_app(self) -> dict[str, int]:
        names = self.sim.applications()
        return {names[app_id]: n for app_id, n in self.sim.accepted().items()}

    def log(self) -> str:
        return (self.tmp / "run.log").read_text(errors="replace")


@pytest.fixture
def setup(processes: Processes, tmp_path: Path) -> Setup:
    """A simulator subprocess serving the manifest's applications (a scan at every stage),
    slow enough (about 0.3 s per evaluation, four workers) that a run is mid-way for seconds."""
    return simulated(processes, tmp_path, eval_time=0.3)


def simulated(processes: Processes, tmp_path: Path, *, eval_time: float) -> Setup:
    manifest = tmp_path / "nightly.yaml"
    manifest.write_text(MANIFEST)
    sim_log = tmp_path / "simulator.log"
    simulator = processes.start(
        [
            "simulate",
            "--port",
            "0",
            "--apps",
            "0",
            "--workers",
            str(CONCURRENCY),
            "--eval-time",
            str(eval_time),
            "--eval-sigma",
            "0.1",
            "--manifest",
            str(manifest),
        ],
        sim_log,
    )

    def announced() -> bool:
        assert simulator.poll() is None, sim_log.read_text()
        return "IQ Server simulator at " in sim_log.read_text()

    wait_until(announced, "the simulator to listen")
    url = sim_log.read_text().split("IQ Server simulator at ", 1)[1].split()[0]
    return Setup(
        processes, tmp_path, manifest, Simulated(url), tmp_path / "state", tmp_path / "r.json"
    )


def finish(process: subprocess.Popen[bytes], setup: Setup) -> int:
    try:
        return process.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run did not end within {WAIT:g} s:\n{setup.log()[-3000:]}")


def resume_to_completion(setup: Setup) -> RunReport:
    code = finish(setup.run("--resume"), setup)
    assert code == 0, setup.log()[-3000:]
    report = load_report(setup.report)
    assert [r.status for r in report.results] == [Outcome.COMPLETED] * APPS
    assert PASSWORD not in setup.log()
    assert PASSWORD not in setup.report.read_text()
    return report


def assert_complete_report(report: RunReport, reason: str) -> None:
    """Every item is there; what did not finish is CANCELLED, resumable where submitted."""
    assert len(report.results) == APPS
    assert {r.public_id for r in report.results} == {f"resume-app-{n:02}" for n in range(APPS)}
    statuses = {r.status for r in report.results}
    assert statuses <= {Outcome.COMPLETED, Outcome.CANCELLED}
    assert Outcome.CANCELLED in statuses  # stopped mid-way, not after the end
    for result in report.results:
        if result.status is Outcome.CANCELLED:
            assert result.reason == reason
            assert (result.status_url is None) == (result.attempts == 0)


def test_kill_9_mid_run_then_resume_sends_only_what_was_in_the_air(setup: Setup) -> None:
    first = setup.run()
    wait_until(lambda: setup.submitted() >= 10, "ten promotions to be submitted")
    first.send_signal(signal.SIGKILL)
    assert finish(first, setup) == -signal.SIGKILL

    # What the journal says at the kill: POSTs in the air (intent, no answer recorded), and
    # promotions accepted but not finished (a status URL to follow, no result).
    in_the_air = setup.journal(
        "SELECT COUNT(*) FROM steps WHERE status_url IS NULL AND outcome IS NULL"
    )[0][0]
    following = dict(
        setup.journal(
            "SELECT public_id, status_url FROM steps WHERE status_url IS NOT NULL "
            "AND outcome IS NULL"
        )
    )
    assert setup.journal("SELECT complete FROM runs") == [(0,)]
    assert in_the_air <= CONCURRENCY
    assert following  # the kill left promotions mid-evaluation

    report = resume_to_completion(setup)
    evaluations = setup.evaluations_by_app()
    print(f"in the air at the kill: {in_the_air}; followed on resume: {len(following)}")
    assert set(evaluations) == {r.public_id for r in report.results}
    # Only a POST in the air at the kill can have been evaluated twice: its answer was lost,
    # so the resumed run sends it again. Everything accepted was followed, not re-sent.
    assert sum(evaluations.values()) <= APPS + in_the_air
    for result in report.results:
        if result.public_id is not None and result.public_id in following:
            assert result.status_url == following[result.public_id]
            assert evaluations[result.public_id] == 1
    assert setup.journal("SELECT complete FROM runs") == [(1,)]


def test_a_status_url_is_committed_within_moments_when_no_post_follows_it(
    processes: Processes, tmp_path: Path
) -> None:
    """Status URLs wait for the next POST's commit, but not for long: here every slot holds
    an evaluation of a minute, so no POST follows for that long, and a ``kill -9`` still
    finds each accepted promotion's status URL to follow."""
    setup = simulated(processes, tmp_path, eval_time=60.0)
    first = setup.run()
    wait_until(lambda: setup.submitted() >= CONCURRENCY, "every slot's promotion to be accepted")

    def committed() -> bool:
        query = "SELECT COUNT(*) FROM steps WHERE status_url IS NOT NULL"
        return setup.journal(query) == [(CONCURRENCY,)]

    wait_until(committed, "their status URLs to be committed", timeout=10.0)
    first.send_signal(signal.SIGKILL)
    assert finish(first, setup) == -signal.SIGKILL
    assert setup.submitted() == CONCURRENCY


def test_sigterm_stops_with_a_complete_report_and_resume_evaluates_each_once(
    setup: Setup,
) -> None:
    first = setup.run("--grace", "0.5")
    wait_until(lambda: setup.submitted() >= 8, "eight promotions to be submitted")
    first.send_signal(signal.SIGTERM)
    assert finish(first, setup) == 128 + signal.SIGTERM
    stopped = load_report(setup.report)
    assert_complete_report(stopped, "stopped by SIGTERM")
    assert sum(setup.sim.accepted().values()) == sum(r.attempts for r in stopped.results)

    report = resume_to_completion(setup)
    # A graceful stop sends no new POST, and the POSTs in the air at the signal are answered
    # (in milliseconds) long before the grace ends, so each was recorded: no promotion is
    # evaluated twice, not even one that was mid-POST when the signal came.
    assert setup.evaluations_by_app() == {r.public_id: 1 for r in report.results}
    cancelled = {r.public_id: r.status_url for r in stopped.results if r.status_url}
    for result in report.results:
        if result.public_id in cancelled:
            assert result.status_url == cancelled[result.public_id]  # followed, not re-sent


def test_sigint_exits_130_with_a_complete_report(setup: Setup) -> None:
    first = setup.run("--grace", "0")
    wait_until(lambda: setup.submitted() >= 6, "six promotions to be submitted")
    first.send_signal(signal.SIGINT)
    assert finish(first, setup) == 128 + signal.SIGINT
    assert_complete_report(load_report(setup.report), "stopped by SIGINT")
    assert "Traceback" not in setup.log()
    assert PASSWORD not in setup.log()


def test_sighup_stops_like_sigterm_with_a_complete_report(setup: Setup) -> None:
    """A closed terminal or SSH session sends SIGHUP: the run stops as it does on SIGTERM."""
    first = setup.run("--grace", "0")
    wait_until(lambda: setup.submitted() >= 6, "six promotions to be submitted")
    first.send_signal(signal.SIGHUP)
    assert finish(first, setup) == 128 + signal.SIGHUP
    assert_complete_report(load_report(setup.report), "stopped by SIGHUP")
    resume_to_completion(setup)


def test_a_second_signal_stops_at_once_and_still_writes_the_report(setup: Setup) -> None:
    first = setup.run("--grace", "600")  # only the second signal can end this run in time
    wait_until(lambda: setup.submitted() >= 6, "six promotions to be submitted")
    first.send_signal(signal.SIGTERM)
    wait_until(lambda: '"run.signal"' in setup.log(), "the run to take the first signal")
    first.send_signal(signal.SIGINT)
    assert finish(first, setup) == 128 + signal.SIGTERM  # the first signal is the reason
    stopped = load_report(setup.report)
    assert_complete_report(stopped, "stopped by SIGTERM")
    assert any(r.status is Outcome.CANCELLED and r.status_url for r in stopped.results)
    resume_to_completion(setup)
