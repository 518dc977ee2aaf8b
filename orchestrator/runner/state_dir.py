"""The state directory of a manifest's runs: the journal, the lock, and the last complete
report, which the next run compares with (its baseline).

One object owns all three, so where each lives and when each is written is decided here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from orchestrator.errors import UsageError
from orchestrator.promote.journal import Journal
from orchestrator.promote.lock import StateLock
from orchestrator.report.run_report import RunReport, load_report, write_report

log = structlog.get_logger("orchestrator.runner")


@dataclass(frozen=True, slots=True)
class Baseline:
    """An earlier report to compare a run with, and where it was read from."""

    report: RunReport
    path: str


@dataclass(frozen=True, slots=True)
class StateDir:
    """``path`` holds the state of the runs of one manifest (``name`` tells its kept report)."""

    path: Path
    name: str

    @property
    def kept_report(self) -> Path:
        """The copy of the last complete report: the next run's baseline by default."""
        return self.path / "reports" / f"{self.name}.json"

    def kept_baseline(self) -> Baseline | None:
        """The kept report, if there is a readable one; an unreadable one is said and skipped,
        since the run can do its work without a baseline."""
        kept = self.kept_report
        if not kept.exists():
            return None
        try:
            return Baseline(load_report(kept), str(kept))
        except UsageError as exc:
            log.warning("baseline.unreadable", path=str(kept), error=str(exc))
            return None

    def keep(self, report: RunReport) -> None:
        """Keep ``report`` as the next run's baseline."""
        write_report(report, self.kept_report)

    @contextmanager
    def held(self) -> Iterator[Journal]:
        """Lock the directory for this process, and open the journal, for as long as the block
        runs: a second run on the same directory fails at once with LockedError."""
        with StateLock(self.path), Journal(self.path) as journal:
            yield journal
