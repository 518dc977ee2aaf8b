"""The workloads the benchmark runs: portfolio size, server workers, evaluation times, variants."""

from __future__ import annotations

from dataclasses import dataclass

IQ_PROMOTE_NIGHTS = ("night-1", "night-2")
"""iq-promote with a fresh state directory, then again with what the first night kept."""

SCRIPTS = ("fixed-0.5s", "fixed-2s")
"""What users script today: a semaphore, one publicId look-up per application, fixed polling."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One benchmark setting; the simulator's ``seed`` makes the portfolio the same every time."""

    name: str
    apps: int
    workers: int
    concurrency: int
    eval_time: float
    eval_sigma: float = 0.5
    eval_noise: float = 0.15
    seed: int = 7
    repeats: int = 5
    """Each repetition is another pair of nights (the simulator draws the night-to-night noise
    in sequence), and one pair varies by about 0.01 in makespan ratio: the median of five is
    steadier than the margin to the targets."""
    variants: tuple[str, ...] = IQ_PROMOTE_NIGHTS + SCRIPTS
    description: str = ""


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "standard",
            apps=200,
            workers=20,
            concurrency=20,
            eval_time=2.0,
            description="200 applications, 20 server workers, concurrency 20, evaluation "
            "times lognormal (median 2 s, sigma 0.5), about 15% noise from night to night",
        ),
        Workload(
            "quick",
            apps=60,
            workers=10,
            concurrency=10,
            eval_time=0.5,
            repeats=1,
            description="a smoke run of the harness: 60 applications, 10 workers, median 0.5 s",
        ),
        Workload(
            "scale",
            apps=20_000,
            workers=500,
            concurrency=500,
            eval_time=2.0,
            repeats=1,
            variants=IQ_PROMOTE_NIGHTS,
            description="20,000 applications, 500 server workers, concurrency 500, "
            "median 2 s: client CPU and memory at scale",
        ),
    )
}


def public_ids(workload: Workload) -> list[str]:
    """The applications a workload's manifest names, in manifest order."""
    return [f"bench-app-{i:05d}" for i in range(workload.apps)]
