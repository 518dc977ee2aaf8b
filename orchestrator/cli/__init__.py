"""The ``iq-promote`` command line: every click command and everything printed for people.

Nothing outside this package imports click or rich; the commands only turn options into the
values the rooms below take, and errors into exit codes (``support``).
"""

from orchestrator.cli.main import main

__all__ = ["main"]
