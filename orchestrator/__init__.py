"""iq-promote: promote and re-evaluate application scans on Sonatype IQ Server, in bulk.

The command line (``iq-promote``) is the usual way in; these names are for programs that
run promotions themselves, for example from a release pipeline written in Python::

    import anyio
    from orchestrator import RunRequest, run

    report = anyio.run(run, RunRequest(manifest=Path("manifests/nightly.yaml")))
    sys.exit(report.exit_code)

:func:`run` does what ``iq-promote run`` does, options for fields: it writes the same report
and outputs and decides the same exit code. The simulator is imported only when one of its
names is first used, so that ``import orchestrator`` stays small.

Everything not listed in ``__all__`` is internal and may change without notice.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from orchestrator.errors import (
    AuthError,
    ExitCode,
    ForbiddenError,
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
from orchestrator.iq.client import IqClient
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import Manifest, load_manifest, manifest_digest, parse_manifest
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.promote.control import RunControl
from orchestrator.promote.progress import ProgressSnapshot, ProgressTracker
from orchestrator.render import RenderOutputs, write_outputs
from orchestrator.report.baseline import BaselineComparison, compare
from orchestrator.report.firewall import FirewallSummary
from orchestrator.report.gate import PolicyGate, gate
from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts
from orchestrator.report.run_report import RunReport, Summary, load_report, write_report
from orchestrator.report.violations import count_violations
from orchestrator.runner.config import RunConfig
from orchestrator.runner.request import RunRequest, resolve
from orchestrator.runner.run import run
from orchestrator.runner.state_dir import StateDir

if TYPE_CHECKING:
    from orchestrator.simulator import FaultConfig, Simulator, SimulatorConfig

try:
    __version__ = version("iq-promote")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0+unknown"

_LAZY = {"FaultConfig", "Simulator", "SimulatorConfig"}
"""Names of the simulator, which pulls in an aiohttp web server: loaded on first use."""


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module("orchestrator.simulator"), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")


__all__ = [
    "AuthError",
    "BaselineComparison",
    "ClientSettings",
    "Credentials",
    "ExitCode",
    "FaultConfig",
    "FirewallSummary",
    "ForbiddenError",
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
    "RunRequest",
    "ServerError",
    "Simulator",
    "SimulatorConfig",
    "StateDir",
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
    "resolve",
    "run",
    "summarize",
    "write_outputs",
    "write_report",
]
