"""The commands about a manifest itself: ``validate`` (no network), ``plan`` (look-ups only,
no promotion) and ``schema`` (the JSON Schemas of a manifest and of a report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import click

from orchestrator.cli.support import guarded, log_options, server_options
from orchestrator.errors import ExitCode
from orchestrator.iq.client import IqClient
from orchestrator.logs import LogFormat, configure_logging
from orchestrator.manifest.model import Manifest, load_manifest
from orchestrator.promote.plan import EntrySummary, Plan, resolve_plan
from orchestrator.report.run_report import RunReport
from orchestrator.runner.connection import client_settings, connected


@click.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
def validate(manifest_path: Path) -> None:
    """Check MANIFEST without touching the network."""

    def body() -> int:
        manifest = load_manifest(manifest_path)
        entries = manifest.promotions
        steps = sum(len(e.transitions) for e in entries)
        named = sum(len(e.applications or ()) * len(e.transitions) for e in entries)
        selecting = sum(1 for e in entries if e.selects)
        said = [
            f"{_count(len(entries), 'entry', 'entries')} with {_count(steps, 'transition')} in all"
        ]
        if named:
            said.append(f"{_count(named, 'promotion')} of the applications it names")
        if selecting:
            said.append(
                f"{_count(selecting, 'entry', 'entries')} choosing applications on the server "
                "(`iq-promote plan` counts them)"
            )
        click.echo(f"{manifest_path}: valid: " + "; ".join(said))
        return 0

    guarded(body)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@click.command("plan")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@server_options
@click.option("--simulate", is_flag=True, help="Resolve against the embedded simulator.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@log_options
def plan_command(
    manifest_path: Path,
    server_url: str | None,
    username: str | None,
    ca_bundle: Path | None,
    proxy: str | None,
    simulate: bool,
    as_json: bool,
    log_format: LogFormat,
    log_level: str | None,
) -> None:
    """Resolve MANIFEST's applications and print what would run; sends no promotion. Exits 1,
    as `run --dry-run` does, when a step cannot resolve."""
    configure_logging(level=log_level, fmt=log_format)

    def body() -> int:
        manifest = load_manifest(manifest_path)

        async def resolve() -> Plan:
            given = None
            if not simulate:
                given = client_settings(
                    server_url, username, ca_bundle=ca_bundle, proxy=proxy, server=manifest.server
                )
            async with connected(given, manifest) as settings, IqClient(settings) as client:
                return await resolve_plan(manifest, client)

        plan = anyio.run(resolve)
        click.echo(_plan_json(plan) if as_json else _plan_text(plan))
        # As a dry run: steps that cannot resolve (an unknown application) fail it.
        return int(ExitCode.NOT_COMPLETED if plan.unresolved else ExitCode.OK)

    guarded(body)


def _plan_rows(plan: Plan) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for work in plan.work:
        rows.extend(
            {
                "position": step.position,
                "publicId": work.target.public_id,
                "organization": work.target.organization,
                "entry": step.entry_index,
                "transition": step.label,
            }
            for step in work.steps
        )
    rows.extend(
        {
            "position": s.step.position,
            "publicId": s.target.public_id,
            "organization": s.target.organization,
            "entry": s.step.entry_index,
            "transition": s.step.label,
            "skipped": s.skip.reason,
            "notApplicable": s.skip.cause.value,
        }
        for s in plan.skipped
    )
    rows.extend(
        {
            "position": u.step.position,
            "publicId": u.public_id,
            "organization": u.organization,
            "entry": u.step.entry_index,
            "transition": u.step.label,
            "error": u.reason,
        }
        for u in plan.unresolved
    )
    return sorted(rows, key=lambda row: row["position"])


def _entry_rows(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "entry": e.index,
            "name": e.name,
            "selected": e.selected,
            "excluded": e.excluded,
            "skipped": dict(e.skipped),
            "toRun": e.to_run,
            "unresolved": e.unresolved,
        }
        for e in plan.entries
    ]


def _plan_json(plan: Plan) -> str:
    warnings = [
        {"entry": w.entry_index, "field": w.field, "value": w.value, "message": w.message}
        for w in plan.warnings
    ]
    document = {
        "total": plan.total,
        "entries": _entry_rows(plan),
        "warnings": warnings,
        "steps": _plan_rows(plan),
    }
    return json.dumps(document, indent=2)


def _step_line(row: dict[str, Any]) -> str:
    line = (
        f"{row['publicId'] or '-'}\t{row['organization'] or '-'}\tpromotions[{row['entry']}]"
        f"\t{row['transition']}"
    )
    if "error" in row:
        return f"{line}\tERROR: {row['error']}"
    if "skipped" in row:
        return f"{line}\tSKIPPED: {row['skipped']}"
    return line


def _entry_line(entry: EntrySummary) -> str:
    """``promotions[1] released: 24 selected, 1 excluded, 9 skipped (no release scan: 9),
    14 to run``."""
    label = f"promotions[{entry.index}]" + (f" {entry.name}" if entry.name else "")
    parts = [f"{entry.selected} selected"]
    if entry.excluded:
        parts.append(f"{entry.excluded} excluded")
    skipped = sum(entry.skipped.values())
    if skipped:
        why = ", ".join(f"{reason}: {count}" for reason, count in sorted(entry.skipped.items()))
        parts.append(f"{skipped} skipped ({why})")
    parts.append(f"{entry.to_run} to run")
    if entry.unresolved:
        parts.append(f"{entry.unresolved} unknown to the server")
    return f"{label}: {', '.join(parts)}"


def _plan_text(plan: Plan) -> str:
    lines = [_step_line(row) for row in _plan_rows(plan)]
    lines += ["", *(_entry_line(entry) for entry in plan.entries)]
    lines.append(
        f"{plan.total} promotions for {len(plan.work)} applications; "
        f"{len(plan.unresolved)} cannot run; {len(plan.skipped)} skipped"
    )
    return "\n".join(lines)


@click.command()
@click.argument("which", type=click.Choice(["manifest", "report"]))
def schema(which: str) -> None:
    """Print the JSON Schema of a manifest or of a report."""
    document = Manifest.json_schema() if which == "manifest" else RunReport.json_schema()
    click.echo(json.dumps(document, indent=2))
