"""The ``iq-promote`` command group: every command, under one name."""

from __future__ import annotations

import click

from orchestrator.cli.firewall import repositories, repository_results
from orchestrator.cli.manifest import plan_command, schema, validate
from orchestrator.cli.render import render
from orchestrator.cli.run import run_command
from orchestrator.cli.scans import scans
from orchestrator.cli.simulate import simulate
from orchestrator.logs import configure_logging


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        "show_default": True,
    }
)
@click.version_option(package_name="iq-promote")
def main() -> None:
    """Promote and re-evaluate application scans on Sonatype IQ Server, in bulk."""
    # Every command logs to stderr, also one without log options (render, simulate): its
    # stdout is data (a plan, an export), and an error must never land in it.
    configure_logging()


for command in (
    run_command,
    validate,
    plan_command,
    schema,
    render,
    repository_results,
    repositories,
    scans,
    simulate,
):
    main.add_command(command)
