"""The simulator in its own process, so that the client's CPU and memory are the client's alone."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.workloads import Workload

USERNAME = "admin"
PASSWORD = "admin123"  # noqa: S105 - the simulator's default account
_ANNOUNCED = re.compile(r"IQ Server simulator at (\S+)")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation the server ran, on the client's wall clock."""

    status_id: str
    seconds: float
    finished_wall: float
    enqueued_wall: float = 0.0
    """When the promotion was accepted: the evaluations in this order are the run's own."""


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the server saw while one variant ran."""

    total_requests: int
    requests: dict[str, dict[str, int]]
    evaluations: list[Evaluation]
    max_running: int
    webhooks_lost: int = 0


WEBHOOK_SECRET = "benchmark-webhook-secret"  # noqa: S105 - the harness's own, on loopback


def free_port() -> int:
    """A loopback port nothing listens on now, for a run's webhook listener."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class WebhookFeed:
    """Where the simulator delivers IQ's webhook, signed with ``secret``, ``loss`` of the
    deliveries never sent."""

    url: str
    secret: str = field(repr=False)
    loss: float


class SimulatorProcess:
    """A running ``iq-promote simulate`` and the calls the harness makes to it."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        self._auth = f"Basic {token}"

    def reset(self) -> None:
        self._call("POST", "__simulator/reset-stats")

    def view(self) -> ServerView:
        """Read the stats, placing the server's monotonic times on this machine's wall clock
        (the monotonic clock is the machine's, shared by every process)."""
        stats = self._call("GET", "__simulator/stats")
        started_wall = stats["monotonicStart"] + time.time() - time.monotonic()
        evaluations = [
            Evaluation(
                status_id=record["status_id"],
                seconds=record["finished_at"] - record["started_at"],
                finished_wall=started_wall + record["finished_at"],
                enqueued_wall=started_wall + record["enqueued_at"],
            )
            for record in stats["evaluations"]
        ]
        return ServerView(
            total_requests=stats["totalRequests"],
            requests=stats["requests"],
            evaluations=evaluations,
            max_running=stats["maxRunning"],
            webhooks_lost=stats["webhooksLost"],
        )

    def _call(self, method: str, path: str, *, auth: bool = False) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method)  # noqa: S310
        if auth:
            request.add_header("Authorization", self._auth)
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - loopback
            body = answer.read()
        return json.loads(body) if body else None


@contextmanager
def simulator_process(
    workload: Workload, manifest: Path, seed: int, webhook: WebhookFeed | None = None
) -> Iterator[SimulatorProcess]:
    """Start the simulator on a free loopback port, serving exactly the applications the
    manifest names (each with a scan at every stage) and delivering IQ's webhook to
    ``webhook`` if given, and stop it afterwards, whatever happens."""
    command = [
        sys.executable,
        "-m",
        "orchestrator",
        "simulate",
        "--host=127.0.0.1",
        "--port=0",
        "--apps=0",
        f"--manifest={manifest}",
        f"--seed={seed}",
        f"--workers={workload.workers}",
        f"--eval-time={workload.eval_time}",
        f"--eval-sigma={workload.eval_sigma}",
        f"--eval-noise={workload.eval_noise}",
    ]
    env = dict(os.environ)
    if webhook is not None:
        command += [f"--webhook-url={webhook.url}", f"--webhook-loss={webhook.loss}"]
        env["IQ_SIM_WEBHOOK_SECRET"] = webhook.secret
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stderr=log, stdout=subprocess.DEVNULL, text=True, env=env
    )
    try:
        yield SimulatorProcess(process, _announced_url(process, log))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _announced_url(process: subprocess.Popen[str], log: IO[str], timeout: float = 30) -> str:
    """The URL the simulator prints once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        if found := _ANNOUNCED.search(log.read()):
            url = found.group(1)
            return url if url.endswith("/") else url + "/"
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the simulator exited with {process.returncode}: {log.read()}")
        time.sleep(0.05)
    raise RuntimeError("the simulator did not start listening in time")


@contextmanager
def webhook_simulator(
    workload: Workload, manifest: Path, seed: int, loss: float
) -> Iterator[tuple[SimulatorProcess, tuple[str, str]]]:
    """The simulator delivering IQ's webhook to a free loopback port, ``loss`` of the
    deliveries lost; and what a run listens with there (HOST:PORT and the secret)."""
    port = free_port()
    feed = WebhookFeed(f"http://127.0.0.1:{port}/", WEBHOOK_SECRET, loss)
    with simulator_process(workload, manifest, seed, feed) as server:
        yield server, (f"127.0.0.1:{port}", WEBHOOK_SECRET)
