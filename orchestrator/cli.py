"""The ``iq-promote`` command line: it wires the modules together and maps errors to exit codes."""

from __future__ import annotations

import click

from orchestrator.simulator.command import simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="iq-promote")
def main() -> None:
    """Promote and re-evaluate application scans on Sonatype IQ Server, in bulk."""


main.add_command(simulate)
