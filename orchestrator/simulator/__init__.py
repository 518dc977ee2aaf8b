"""An embedded Sonatype IQ Server simulator, for tests, benchmarks and ``--simulate`` runs.

It serves the REST endpoints iq-promote uses (applications, reports, promote scan, scan
retention configuration, firewall listings and repository results) over real HTTP, with a
seeded portfolio, a worker pool with a FIFO queue, and optional faults. See docs/simulator.md.
"""

from __future__ import annotations

from orchestrator.simulator.config import FaultConfig, SimulatorConfig
from orchestrator.simulator.portfolio import Portfolio, Report
from orchestrator.simulator.server import Simulator
from orchestrator.simulator.stats import EvaluationRecord, SimulatorStats

__all__ = [
    "EvaluationRecord",
    "FaultConfig",
    "Portfolio",
    "Report",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
]
