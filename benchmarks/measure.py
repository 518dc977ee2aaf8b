"""From what the client and the server saw to the figures the issue asks for."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, fields

from benchmarks.clients import ClientRun
from benchmarks.simulator import ServerView
from benchmarks.workloads import Workload

TARGETS = {"night-1": (1.25, 5.0), "night-2": (1.10, 4.0)}
"""Per variant: the most makespan / lower bound and requests per promotion aimed at."""

LABELS = {
    "night-1": "iq-promote, first night (no history)",
    "night-2": "iq-promote, second night (first night's state)",
    "fixed-0.5s": "script: semaphore, poll every 0.5 s",
    "fixed-2s": "script: semaphore, poll every 2 s",
}


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


@dataclass(frozen=True, slots=True)
class Results:
    """Every run of one workload, and what the README quotes of them: the medians."""

    workload: Workload
    date: str
    machine: str
    runs: list[Measurement]
    manifest_load_seconds: float | None = None

    def medians(self, variant: str) -> dict[str, float]:
        runs = [m for m in self.runs if m.variant == variant]
        numbers = [f.name for f in fields(Measurement) if f.type in ("float", float)]
        return {n: round(statistics.median(getattr(m, n) for m in runs), 4) for n in numbers}

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "workload": self.workload.name,
            "description": self.workload.description,
            "date": self.date,
            "machine": self.machine,
            "targets": {
                k: {"ratio": r, "requestsPerPromotion": q} for k, (r, q) in TARGETS.items()
            },
        }
        if self.manifest_load_seconds is not None:
            document["manifestLoadSeconds"] = self.manifest_load_seconds
        document["medians"] = {v: self.medians(v) for v in self.workload.variants}
        document["runs"] = [m.as_json() for m in self.runs]
        return document

    def markdown(self) -> str:
        """One row per variant, medians over the repetitions."""
        repeats = len(self.runs) // max(1, len(self.workload.variants))
        rows = [
            f"Workload `{self.workload.name}`: {self.workload.description}. "
            f"Medians of {repeats} runs ({self.machine}, {self.date}).",
            "",
            "| variant | makespan / lower bound | requests per promotion | polls per promotion "
            "| detection delay median / p95 (s) | client CPU per promotion (ms) | peak RSS (MiB) |",
            "|---|---|---|---|---|---|---|",
        ]
        for variant in self.workload.variants:
            m = self.medians(variant)
            rows.append(
                f"| {LABELS.get(variant, variant)} | {m['ratio']:.3f} "
                f"| {m['requests_per_promotion']:.2f} | {m['polls_per_promotion']:.2f} "
                f"| {m['detection_delay_median']:.3f} / {m['detection_delay_p95']:.3f} "
                f"| {m['cpu_ms_per_promotion']:.2f} | {m['peak_rss_mib']:.0f} |"
            )
        if self.manifest_load_seconds is not None:
            rows += [
                "",
                f"A manifest of {self.workload.apps:,} applications loads and validates in "
                f"{self.manifest_load_seconds:.2f} s.",
            ]
        return "\n".join(rows) + "\n"
