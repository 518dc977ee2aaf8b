"""iq-promote: promote and re-evaluate application scans on Sonatype IQ Server, in bulk.

The command line (``iq-promote``) is the usual way in; these names are for programs that
run promotions themselves, for example from a release pipeline written in Python::

    import anyio
    from orchestrator import ClientSettings, Credentials, RunConfig, load_manifest, run

    manifest = load_manifest(path)
    settings = ClientSettings("https://iq.example.com/", Credentials(user, password))
    report = anyio.run(run, RunConfig(manifest, str(path), digest, settings))

Everything not listed in ``__all__`` is internal and may change without notice.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from orchestrator.errors import (
    AuthError,
    IqPromoteError,
    LockedError,
    ManifestError,
    ManifestProblem,
    NotFoundError,
    ServerError,
    UnreachableError,
    UsageError,
)
from orchestrator.firewall.summary import summarize
from orchestrator.iq.client import ClientSettings, Credentials, IqClient
from orchestrator.manifest.model import Manifest, load_manifest, parse_manifest
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.promote.control import RunControl
from orchestrator.promote.journal import manifest_digest
from orchestrator.promote.progress import ProgressSnapshot, ProgressTracker
from orchestrator.render import RenderOutputs, write_outputs
from orchestrator.report.baseline import BaselineComparison, compare
from orchestrator.report.firewall import FirewallSummary
from orchestrator.report.gate import PolicyGate, gate
from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts
from orchestrator.report.run_report import RunReport, Summary, load_report, write_report
from orchestrator.report.violations import count_violations
from orchestrator.runner.run import RunConfig, run
from orchestrator.simulator import FaultConfig, Simulator, SimulatorConfig

try:
    __version__ = version("iq-promote")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0+unknown"

__all__ = [
    "AuthError",
    "BaselineComparison",
    "ClientSettings",
    "Credentials",
    "FaultConfig",
    "FirewallSummary",
    "IqClient",
    "IqPromoteError",
    "LockedError",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "NotFoundError",
    "Outcome",
    "PolicyGate",
    "ProgressSnapshot",
    "ProgressTracker",
    "PromotionResult",
    "RenderOutputs",
    "RepositoryResultsSection",
    "RunConfig",
    "RunControl",
    "RunReport",
    "ServerError",
    "Simulator",
    "SimulatorConfig",
    "Summary",
    "UnreachableError",
    "UsageError",
    "ViolationCounts",
    "__version__",
    "compare",
    "count_violations",
    "gate",
    "load_manifest",
    "load_report",
    "manifest_digest",
    "parse_manifest",
    "run",
    "summarize",
    "write_outputs",
    "write_report",
]
