"""``python -m benchmarks --workload standard|queue|heavy|quick|scale``: run, then write
results/<name>.json and results/<name>.md."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click

from benchmarks.clients import run_iq_promote, run_script, webhook_nights, write_manifest
from benchmarks.measure import Measurement, Results, Setting, measure
from benchmarks.output import command, machine, now, reference_work, write_results
from benchmarks.simulator import simulator_process
from benchmarks.workloads import WORKLOADS, Workload, public_ids

RESULTS = Path(__file__).parent / "results"
LOSSES = {"webhook-0": 0.0, "webhook-10": 0.1}
"""The share of deliveries the simulator loses, per webhook variant."""


@click.command()
@click.option(
    "--workload",
    "name",
    type=click.Choice([*sorted(WORKLOADS), "scale"]),
    default="standard",
    show_default=True,
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs of each variant per seed.",
)
@click.option("--seeds", "only", help="Comma-separated seeds instead of the workload's.")
@click.option("--variants", help="Comma-separated variants instead of all the workload's.")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), default=RESULTS)
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep every run's reports, logs and state here [default: a temporary directory].",
)
def main(
    name: str,
    repeats: int,
    only: str | None,
    variants: str | None,
    output_dir: Path,
    keep: Path | None,
) -> None:
    """Run every variant of a workload on each of its seeds, against the simulator in its own
    process, and write what they came to."""
    before = reference_work()
    if name == "scale":
        from benchmarks.scale import run_scale

        run_scale(output_dir, repeats, before)
        return
    workload = WORKLOADS[name]
    if variants:
        workload = replace(workload, variants=tuple(variants.split(",")))
    seeds = [int(s) for s in only.split(",")] if only else list(workload.seeds)
    runs: list[Measurement] = []
    with _scratch(keep) as work:
        ids = public_ids(workload.apps)
        manifest = write_manifest(work / "nightly.yaml", workload, ids)
        for seed in seeds:
            where = work / f"seed-{seed}"
            for measured in seed_runs(workload, seed, manifest, ids, where, repeats):
                runs.append(measured)
                _progress(measured)
    results = Results(workload, now(), machine(before), command(), runs)
    write_results(output_dir, name, results.to_json(), results.markdown())


def seed_runs(
    workload: Workload, seed: int, manifest: Path, ids: list[str], work: Path, repeats: int
) -> Iterator[Measurement]:
    """Every variant on one seed's portfolio. The simulator draws each night's noise in
    sequence, so the nights come first: the first night, with and without webhooks, meets
    the same evaluation times in each repetition."""
    work.mkdir(parents=True)
    ids_file = work / "public-ids.json"
    ids_file.write_text(json.dumps(ids))
    plain = [v for v in workload.variants if v not in LOSSES]
    plain.sort(key=lambda v: not v.startswith("night-"))
    with simulator_process(workload, manifest, seed) as server:
        for repeat in range(repeats):
            for variant in plain:
                server.reset()
                run = work / f"r{repeat}"
                run.mkdir(parents=True, exist_ok=True)
                if variant.startswith("night-"):
                    report = run / f"{variant}.json"
                    client = run_iq_promote(server.base_url, manifest, run / "state", report)
                else:
                    interval = float(variant.removeprefix("fixed-").removesuffix("s"))
                    out = run / f"{variant}.json"
                    client = run_script(
                        server.base_url, interval, workload.concurrency, ids_file, out
                    )
                yield measure(Setting(variant, seed, workload), len(ids), client, server.view())
    for variant in (v for v in workload.variants if v in LOSSES):
        nights = webhook_nights(workload, manifest, seed, LOSSES[variant], work / variant, repeats)
        for client, server in nights:
            yield measure(Setting(variant, seed, workload), len(ids), client, server.view())


@contextmanager
def _scratch(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="iq-promote-bench-") as scratch:
        yield Path(scratch)


def _progress(m: Measurement) -> None:
    click.echo(
        f"seed {m.seed} {m.variant}: {m.ratio:.3f} x lower bound, {m.zero_delay_ratio:.3f} x "
        f"zero-delay, {m.requests_per_promotion:.2f} requests per promotion, "
        f"{m.cpu_ms_per_promotion:.2f} ms CPU",
        err=True,
    )


if __name__ == "__main__":
    main()
