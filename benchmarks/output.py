"""Where and how the benchmarks write what they measured, and what they say of the machine."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import click


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine() -> str:
    """What the figures were measured on."""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def command() -> str:
    """The command that produced the figures, as typed."""
    return shlex.join(["python", "-m", "benchmarks", *sys.argv[1:]])


def write_results(output_dir: Path, name: str, document: dict[str, object], table: str) -> None:
    """``name.json`` (every run) and ``name.md`` (the table the README quotes)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    (output_dir / f"{name}.md").write_text(table)
    click.echo(table)
