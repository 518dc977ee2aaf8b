"""From what the client and the server saw to the figures the issue asks for."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from benchmarks.clients import ClientRun
from benchmarks.simulator import ServerView


@dataclass(frozen=True, slots=True)
class Measurement:
    """One variant, one repetition.

    ``lower_bound`` is what no client can beat on this server: the evaluation time the run
    cost, spread over every worker, or its longest evaluation if that is longer (each
    application here has one transition, so a chain is one evaluation).
    """

    variant: str
    promotions: int
    completed: int
    evaluations: int
    makespan: float
    lower_bound: float
    ratio: float
    requests_per_promotion: float
    polls_per_promotion: float
    detection_delay_median: float
    detection_delay_p95: float
    cpu_seconds: float
    cpu_ms_per_promotion: float
    peak_rss_mib: float
    max_running: int
    exit_code: int

    def as_json(self) -> dict[str, object]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure(
    variant: str, promotions: int, workers: int, client: ClientRun, server: ServerView
) -> Measurement:
    seconds = [e.seconds for e in server.evaluations]
    lower_bound = max(sum(seconds) / workers, max(seconds, default=0.0))
    finished = {e.status_id: e.finished_wall for e in server.evaluations}
    delays = sorted(
        max(0.0, seen - finished[status_id])
        for status_id, seen in client.detected.items()
        if status_id in finished
    )
    polls = server.requests.get("promotion-status", {}).get("GET", 0)
    return Measurement(
        variant=variant,
        promotions=promotions,
        completed=len(client.detected),
        evaluations=len(server.evaluations),
        makespan=client.makespan,
        lower_bound=lower_bound,
        ratio=client.makespan / lower_bound if lower_bound else float("nan"),
        requests_per_promotion=server.total_requests / promotions,
        polls_per_promotion=polls / promotions,
        detection_delay_median=statistics.median(delays) if delays else float("nan"),
        detection_delay_p95=_quantile(delays, 0.95),
        cpu_seconds=client.cpu_seconds,
        cpu_ms_per_promotion=1000 * client.cpu_seconds / promotions,
        peak_rss_mib=client.peak_rss_mib,
        max_running=server.max_running,
        exit_code=client.exit_code,
    )


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
