"""``python -m benchmarks --workload standard|quick|scale``: run, then write results/<name>.json
and results/<name>.md."""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from benchmarks.clients import run_iq_promote, run_script, write_manifest
from benchmarks.manifest_load import manifest_load_seconds
from benchmarks.measure import Measurement, measure
from benchmarks.simulator import SimulatorProcess, simulator_process
from benchmarks.workloads import WORKLOADS, Workload

RESULTS = Path(__file__).parent / "results"
TARGETS = {"night-1": (1.25, 5.0), "night-2": (1.10, 4.0)}
"""Per variant: the most makespan / lower bound and requests per promotion allowed."""


@click.command()
@click.option("--workload", "name", type=click.Choice(sorted(WORKLOADS)), default="standard")
@click.option("--repeats", type=click.IntRange(min=1), help="Override the workload's repeats.")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), default=RESULTS)
def main(name: str, repeats: int | None, output_dir: Path) -> None:
    """Run every variant of a workload against the simulator in its own process."""
    workload = WORKLOADS[name]
    runs: list[Measurement] = []
    extra: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="iq-promote-bench-") as scratch:
        work = Path(scratch)
        if name == "scale":
            extra["manifestLoadSeconds"] = manifest_load_seconds(work, workload.apps)
            click.echo(
                f"manifest of {workload.apps} applications: {extra['manifestLoadSeconds']:.3f} s"
            )
        public_ids = [f"bench-app-{i:05d}" for i in range(workload.apps)]
        manifest = write_manifest(work / "nightly.yaml", workload, public_ids)
        with simulator_process(workload, manifest) as server:
            for repeat in range(repeats or workload.repeats):
                runs.extend(
                    _repetition(server, workload, manifest, public_ids, work / f"r{repeat}")
                )
    document = {
        "workload": workload.name,
        "description": workload.description,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "targets": {k: {"ratio": r, "requestsPerPromotion": q} for k, (r, q) in TARGETS.items()},
        **extra,
        "medians": {v: _medians([m for m in runs if m.variant == v]) for v in workload.variants},
        "runs": [m.as_json() for m in runs],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown_table(document)
    (output_dir / f"{name}.md").write_text(table)
    click.echo(table)


def _repetition(
    server: SimulatorProcess,
    workload: Workload,
    manifest: Path,
    public_ids: list[str],
    work: Path,
) -> list[Measurement]:
    """Every variant once; the second night uses the state the first one left."""
    work.mkdir(parents=True)
    ids_file = work / "public-ids.json"
    ids_file.write_text(json.dumps(public_ids))
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
        result = measure(variant, len(public_ids), workload.workers, client, server.view())
        click.echo(
            f"{variant}: {result.ratio:.3f}x lower bound, "
            f"{result.requests_per_promotion:.2f} requests per promotion",
            err=True,
        )
        measured.append(result)
    return measured


def _medians(runs: list[Measurement]) -> dict[str, float]:
    fields = [k for k, v in runs[0].as_json().items() if isinstance(v, float)] if runs else []
    return {f: round(statistics.median(getattr(m, f) for m in runs), 4) for f in fields}


def markdown_table(document: dict[str, object]) -> str:
    """The README's table: one row per variant, medians over the repetitions."""
    medians = document["medians"]
    assert isinstance(medians, dict)
    rows = [
        f"Workload `{document['workload']}`: {document['description']}. "
        f"Medians of {len(document['runs']) // max(1, len(medians))} runs "  # type: ignore[arg-type]
        f"({document['machine']}, {document['date']}).",
        "",
        "| variant | makespan / lower bound | requests per promotion | polls per promotion "
        "| detection delay median / p95 (s) | client CPU per promotion (ms) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, m in medians.items():
        rows.append(
            f"| {_label(variant)} | {m['ratio']:.3f} | {m['requests_per_promotion']:.2f} "
            f"| {m['polls_per_promotion']:.2f} "
            f"| {m['detection_delay_median']:.3f} / {m['detection_delay_p95']:.3f} "
            f"| {m['cpu_ms_per_promotion']:.2f} | {m['peak_rss_mib']:.0f} |"
        )
    if "manifestLoadSeconds" in document:
        rows += [
            "",
            f"A manifest of 20,000 applications loads and validates in "
            f"{document['manifestLoadSeconds']:.2f} s.",
        ]
    return "\n".join(rows) + "\n"


def _label(variant: str) -> str:
    return {
        "night-1": "iq-promote, first night (no history)",
        "night-2": "iq-promote, second night (first night's state)",
        "fixed-0.5s": "script: semaphore, poll every 0.5 s",
        "fixed-2s": "script: semaphore, poll every 2 s",
    }.get(variant, variant)


if __name__ == "__main__":
    main()
