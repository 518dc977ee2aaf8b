"""Each variant runs as a child process, so its CPU time and peak memory are its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.simulator import PASSWORD, USERNAME, SimulatorProcess, webhook_simulator
from benchmarks.workloads import Workload

TRANSITION = "{from: build, to: stage-release}"


@dataclass(frozen=True, slots=True)
class ClientRun:
    """What one variant did, seen from the client: its makespan, resources and detections."""

    makespan: float
    cpu_seconds: float
    peak_rss_mib: float
    detected: dict[str, float]
    """statusId -> wall-clock time the client saw the evaluation finish."""
    exit_code: int
    started_wall: float = 0.0
    """When the run started, on the wall clock: its makespan counts from here."""
    detected_by: dict[str, int] = field(default_factory=dict)
    """How many completions each way of detecting found (poll, webhook, history)."""


def write_manifest(path: Path, workload: Workload, public_ids: list[str]) -> Path:
    """One entry naming every application: the shape of a nightly manifest."""
    apps = "\n".join(f"      - {p}" for p in public_ids)
    path.write_text(
        f"version: 1\nconcurrency: {workload.concurrency}\npromotions:\n"
        f"  - applications:\n{apps}\n    transitions: [{TRANSITION}]\n",
        encoding="utf-8",
    )
    return path


def run_iq_promote(
    base_url: str,
    manifest: Path,
    state_dir: Path,
    report: Path,
    webhook: tuple[str, str] | None = None,
    *,
    dry_run: bool = False,
) -> ClientRun:
    """``iq-promote run`` as a user starts it from cron; with ``webhook`` (HOST:PORT and the
    secret), listening for IQ's webhook there; or a dry run, which only plans."""
    command = [
        sys.executable,
        "-m",
        "orchestrator",
        "run",
        str(manifest),
        f"--server-url={base_url}",
        f"--state-dir={state_dir}",
        f"--report={report}",
        "--no-fetch-results",
        "--no-baseline",
        "--quiet",
    ]
    env = os.environ | {"IQ_USERNAME": USERNAME, "IQ_PASSWORD": PASSWORD}
    if dry_run:
        command.append("--dry-run")
    if webhook is not None:
        listen, secret = webhook
        command.append(f"--webhook-listen={listen}")
        env["IQ_WEBHOOK_SECRET"] = secret
    code, cpu, rss = _measured(command, env, report.with_suffix(".log"))
    data = json.loads(report.read_text(encoding="utf-8"))
    completed = [r for r in data["results"] if r["status"] == "COMPLETED"]
    detected = {
        r["statusUrl"].rsplit("/", 1)[-1]: datetime.fromisoformat(r["finishedAt"]).timestamp()
        for r in completed
    }
    return ClientRun(
        makespan=data["durationSeconds"],
        cpu_seconds=cpu,
        peak_rss_mib=rss,
        detected=detected,
        exit_code=code,
        started_wall=datetime.fromisoformat(data["startedAt"]).timestamp(),
        detected_by=dict(Counter(str(r.get("detectedBy")) for r in completed)),
    )


def webhook_nights(
    workload: Workload, manifest: Path, seed: int, loss: float, work: Path, repeats: int
) -> Iterator[tuple[ClientRun, SimulatorProcess]]:
    """``repeats`` first nights with IQ's webhook, ``loss`` of the deliveries lost, each with
    fresh state under ``work``; each run, and the simulator that served it (to be read
    before the next)."""
    with webhook_simulator(workload, manifest, seed, loss) as (server, hook):
        for repeat in range(repeats):
            server.reset()
            run = work / f"r{repeat}"
            run.mkdir(parents=True)
            client = run_iq_promote(
                server.base_url, manifest, run / "state", run / "report.json", webhook=hook
            )
            yield client, server


def run_script(
    base_url: str, interval: float, concurrency: int, ids_file: Path, out: Path
) -> ClientRun:
    """The baseline script of :mod:`benchmarks.script`."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.script",
        base_url,
        str(interval),
        str(concurrency),
        str(ids_file),
        str(out),
    ]
    code, cpu, rss = _measured(command, dict(os.environ), out.with_suffix(".log"))
    data = json.loads(out.read_text(encoding="utf-8"))
    return ClientRun(
        makespan=data["makespan"],
        cpu_seconds=cpu,
        peak_rss_mib=rss,
        detected=data["detected"],
        exit_code=code,
        started_wall=data["startedWall"],
        detected_by={"poll": len(data["detected"])},
    )


def _measured(command: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float]:
    """Run to the end, its stderr to ``log``; the exit code, CPU seconds (user + system) and
    peak RSS in MiB. Python may keep compiled bytecode, as an installed tool does: a client
    compiling its sources anew every run would measure the compiler."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stderr=stderr)  # noqa: S603 - ours
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
