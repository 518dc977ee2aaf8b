"""``python -m benchmarks --workload standard|quick|scale``: run, then write results/<name>.json
and results/<name>.md."""

from __future__ import annotations

import json
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from benchmarks.clients import run_iq_promote, run_script, write_manifest
from benchmarks.manifest_load import manifest_load_seconds
from benchmarks.measure import Measurement, Results, measure
from benchmarks.simulator import SimulatorProcess, simulator_process
from benchmarks.workloads import WORKLOADS, Workload, public_ids

RESULTS = Path(__file__).parent / "results"


@click.command()
@click.option("--workload", "name", type=click.Choice(sorted(WORKLOADS)), default="standard")
@click.option("--repeats", type=click.IntRange(min=1), help="Override the workload's repeats.")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), default=RESULTS)
def main(name: str, repeats: int | None, output_dir: Path) -> None:
    """Run every variant of a workload against the simulator in its own process."""
    workload = WORKLOADS[name]
    runs: list[Measurement] = []
    load_seconds = None
    with tempfile.TemporaryDirectory(prefix="iq-promote-bench-") as scratch:
        work = Path(scratch)
        if name == "scale":
            load_seconds = manifest_load_seconds(work, workload.apps)
            click.echo(f"manifest of {workload.apps} applications: {load_seconds:.3f} s")
        ids = public_ids(workload)
        manifest = write_manifest(work / "nightly.yaml", workload, ids)
        with simulator_process(workload, manifest) as server:
            for repeat in range(repeats or workload.repeats):
                runs.extend(_repetition(server, workload, manifest, ids, work / f"r{repeat}"))
    results = Results(
        workload=workload,
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        runs=runs,
        manifest_load_seconds=load_seconds,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(results.to_json(), indent=2) + "\n")
    table = results.markdown()
    (output_dir / f"{name}.md").write_text(table)
    click.echo(table)


def _repetition(
    server: SimulatorProcess,
    workload: Workload,
    manifest: Path,
    ids: list[str],
    work: Path,
) -> list[Measurement]:
    """Every variant once; the second night uses the state the first one left."""
    work.mkdir(parents=True)
    ids_file = work / "public-ids.json"
    ids_file.write_text(json.dumps(ids))
    measured = []
    for variant in workload.variants:
        server.reset()
        if variant.startswith("night-"):
            report = work / f"{variant}.json"
            client = run_iq_promote(server.base_url, manifest, work / "state", report)
        else:
            interval = float(variant.removeprefix("fixed-").removesuffix("s"))
            out = work / f"{variant}.json"
            client = run_script(server.base_url, interval, workload.concurrency, ids_file, out)
        result = measure(variant, len(ids), workload.workers, client, server.view())
        click.echo(
            f"{variant}: {result.ratio:.3f}x lower bound, "
            f"{result.requests_per_promotion:.2f} requests per promotion",
            err=True,
        )
        measured.append(result)
    return measured


if __name__ == "__main__":
    main()
