"""``python -m orchestrator`` is the ``iq-promote`` command, for when the script is not on PATH."""

from orchestrator.cli.main import main

main(prog_name="iq-promote")
