"""``python -m benchmarks --workload scale``: the client alone at 1,000 to 100,000 applications.

One ``iq-promote run`` process per night, against the simulator in its own process with 1,000
workers, at concurrency 1,000: its peak RSS, its CPU time per promotion, the time it takes to
plan (from its start to its first promotion), and how each grows with the portfolio. Each
size runs a dry run (the plan alone), a first night and a second night (with the first
night's state), each ``repeats`` times; the figures are the medians.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from benchmarks.clients import ClientRun, run_iq_promote, webhook_nights, write_manifest
from benchmarks.measure import Setting, measure
from benchmarks.output import command, machine, now, write_results
from benchmarks.simulator import SimulatorProcess, simulator_process
from benchmarks.workloads import HELD_OUT_SEEDS, Workload, public_ids

SIZES = (1_000, 10_000, 100_000)
NIGHTS = ("dry-run", "night-1", "night-2")
WEBHOOK_NIGHT = "webhook-10"
"""A first night with IQ's webhook, a tenth of the deliveries lost: what the client costs
when the server says when an evaluation is done."""
ALL_NIGHTS = (*NIGHTS, WEBHOOK_NIGHT)
TARGETS = {"peak_rss_mib": 512.0, "cpu_ms_per_promotion": 2.0, "plan_seconds": 10.0}
"""At 100,000 applications: at most this much memory (MiB), CPU a promotion (ms), and time
to plan (s)."""


def scale_workload(apps: int) -> Workload:
    return Workload(
        f"scale-{apps}",
        apps=apps,
        workers=1000,
        concurrency=1000,
        eval_time=2.0,
        seeds=(HELD_OUT_SEEDS[0],),
        variants=NIGHTS,
        description=f"{apps:,} applications, 1,000 server workers, concurrency 1,000, "
        "evaluation times lognormal (median 2 s, sigma 0.5)",
    )


@dataclass(frozen=True, slots=True)
class ScaleRun:
    """One night of one size, as the client and the server saw it."""

    apps: int
    night: str
    repeat: int
    makespan: float
    ratio: float
    zero_delay_ratio: float
    plan_seconds: float
    requests_per_promotion: float
    cpu_seconds: float
    cpu_ms_per_promotion: float
    peak_rss_mib: float
    completed: int
    exit_code: int


def run_scale(
    output_dir: Path, repeats: int, reference_before: float, sizes: tuple[int, ...] = SIZES
) -> list[ScaleRun]:
    """Every size, every night, ``repeats`` times; the results go to ``output_dir/scale.*``,
    with :func:`~benchmarks.output.reference_work`'s CPU seconds before (measured by the
    caller) and after."""
    runs: list[ScaleRun] = []
    with tempfile.TemporaryDirectory(prefix="iq-promote-scale-") as scratch:
        for apps in sizes:
            runs += _size(apps, Path(scratch) / f"apps-{apps}", repeats)
    document: dict[str, object] = {
        "workload": "scale",
        "description": "the client alone, one process, against the simulator in its own "
        "process with 1,000 workers, concurrency 1,000",
        "date": now(),
        "machine": machine(reference_before),
        "command": command(),
        "targets": {f"{k} at {max(sizes):,}": v for k, v in TARGETS.items()},
        "medians": {f"{a}/{n}": _medians(runs, a, n) for a in sizes for n in ALL_NIGHTS},
        "runs": [asdict(r) for r in runs],
    }
    write_results(output_dir, "scale", document, markdown(runs, sizes, document))
    return runs


def _size(apps: int, work: Path, repeats: int) -> list[ScaleRun]:
    workload = scale_workload(apps)
    work.mkdir(parents=True)
    ids = public_ids(apps)
    manifest = write_manifest(work / "nightly.yaml", workload, ids)
    runs = []
    with simulator_process(workload, manifest, workload.seed) as server:
        for repeat in range(repeats):
            state = work / f"r{repeat}" / "state"
            for night in NIGHTS:
                server.reset()
                report = work / f"r{repeat}" / f"{night}.json"
                report.parent.mkdir(parents=True, exist_ok=True)
                client = run_iq_promote(
                    server.base_url, manifest, state, report, dry_run=night == "dry-run"
                )
                runs.append(_measured(apps, night, repeat, workload, client, server))
    nights = webhook_nights(workload, manifest, workload.seed, 0.1, work / WEBHOOK_NIGHT, repeats)
    for repeat, (client, server) in enumerate(nights):
        runs.append(_measured(apps, WEBHOOK_NIGHT, repeat, workload, client, server))
    return runs


def _measured(
    apps: int,
    night: str,
    repeat: int,
    workload: Workload,
    client: ClientRun,
    server: SimulatorProcess,
) -> ScaleRun:
    view = server.view()
    m = measure(Setting(night, workload.seed, workload), apps, client, view)
    run = ScaleRun(
        apps=apps,
        night=night,
        repeat=repeat,
        makespan=client.makespan,
        ratio=m.ratio,
        zero_delay_ratio=m.zero_delay_ratio,
        plan_seconds=m.lead if view.evaluations else client.makespan,
        requests_per_promotion=m.requests_per_promotion,
        cpu_seconds=client.cpu_seconds,
        cpu_ms_per_promotion=m.cpu_ms_per_promotion,
        peak_rss_mib=client.peak_rss_mib,
        completed=m.completed,
        exit_code=client.exit_code,
    )
    click.echo(
        f"{apps} {night} #{repeat}: {run.cpu_ms_per_promotion:.2f} ms CPU a promotion, "
        f"{run.peak_rss_mib:.0f} MiB, plan {run.plan_seconds:.2f} s, {run.makespan:.1f} s",
        err=True,
    )
    return run


def _medians(runs: list[ScaleRun], apps: int, night: str) -> dict[str, float]:
    chosen = [r for r in runs if r.apps == apps and r.night == night]
    numbers = (
        "makespan",
        "ratio",
        "zero_delay_ratio",
        "plan_seconds",
        "requests_per_promotion",
        "cpu_seconds",
        "cpu_ms_per_promotion",
        "peak_rss_mib",
    )
    return {n: round(statistics.median(getattr(r, n) for r in chosen), 4) for n in numbers}


def markdown(runs: list[ScaleRun], sizes: tuple[int, ...], document: dict[str, object]) -> str:
    repeats = len({r.repeat for r in runs})
    rows = [
        "The client alone at scale: one `iq-promote run` process per night against the "
        "simulator in its own process (1,000 workers, concurrency 1,000, evaluation times "
        "lognormal, median 2 s, sigma 0.5).",
        "",
        f"{document['machine']}; {document['date']}. Command: `{document['command']}`. "
        f"Medians of {repeats} run(s) of each night.",
        "",
        "| applications | night | plan (s) | makespan (s) | makespan / lower bound "
        "| requests per promotion | client CPU (s) | CPU per promotion (ms) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for apps in sizes:
        for night in ALL_NIGHTS:
            m = _medians(runs, apps, night)
            ratio = "" if night == "dry-run" else f"{m['ratio']:.3f}"
            requests = "" if night == "dry-run" else f"{m['requests_per_promotion']:.2f}"
            rows.append(
                f"| {apps:,} | {night} | {m['plan_seconds']:.2f} | {m['makespan']:.1f} "
                f"| {ratio} | {requests} | {m['cpu_seconds']:.1f} "
                f"| {m['cpu_ms_per_promotion']:.2f} | {m['peak_rss_mib']:.0f} |"
            )
    rows += ["", *_growth(runs, sizes), "", *_verdicts(runs, max(sizes))]
    return "\n".join(rows) + "\n"


def _growth(runs: list[ScaleRun], sizes: tuple[int, ...]) -> list[str]:
    """What each further application costs between sizes: flat if nothing is quadratic."""
    rows = [
        "Growth between sizes, per further application (first night): CPU, memory and "
        "planning time.",
        "",
        "| from | to | CPU (ms) | RSS (KiB) | plan (ms) |",
        "|---|---|---|---|---|",
    ]
    for small, large in itertools.pairwise(sizes):
        a, b = _medians(runs, small, "night-1"), _medians(runs, large, "night-1")
        added = large - small
        rows.append(
            f"| {small:,} | {large:,} | {1000 * (b['cpu_seconds'] - a['cpu_seconds']) / added:.2f} "
            f"| {1024 * (b['peak_rss_mib'] - a['peak_rss_mib']) / added:.2f} "
            f"| {1000 * (b['plan_seconds'] - a['plan_seconds']) / added:.3f} |"
        )
    return rows


def _verdicts(runs: list[ScaleRun], apps: int) -> list[str]:
    rows = [
        f"Targets at {apps:,} applications: the worse polling night, and the night with IQ's "
        "webhook (10% of deliveries lost).",
        "",
        "| | target | polling | webhook |",
        "|---|---|---|---|",
    ]
    polling = [night for night in NIGHTS if night != "dry-run"]
    worst = {key: max(_medians(runs, apps, night)[key] for night in polling) for key in TARGETS}
    hooked = _medians(runs, apps, WEBHOOK_NIGHT)
    names = {
        "peak_rss_mib": ("peak RSS", "MiB"),
        "cpu_ms_per_promotion": ("client CPU per promotion", "ms"),
        "plan_seconds": ("plan", "s"),
    }
    for key, limit in TARGETS.items():
        name, unit = names[key]
        met = "met" if worst[key] <= limit else "**not met**"
        also = "met" if hooked[key] <= limit else "**not met**"
        rows.append(
            f"| {name} | at most {limit:g} {unit} | {worst[key]:.2f} {unit}: {met} "
            f"| {hooked[key]:.2f} {unit}: {also} |"
        )
    return rows
