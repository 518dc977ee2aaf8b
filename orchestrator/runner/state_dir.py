"""The state directory of a manifest's runs: the journal, the lock, and the last complete
report, which the next run compares with (its baseline).

One object owns all three, so where each lives and when each is written is decided here. By
default it does not depend on the current folder (a cron line without ``cd`` finds the same
state) and never lies beside the report, in a folder users publish as a CI artifact: it is
``$XDG_STATE_HOME/iq-promote/<manifest name>-<hash of its real path>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from orchestrator.errors import UsageError
from orchestrator.files import ensure_private_dir
from orchestrator.promote.journal import Journal
from orchestrator.promote.lock import StateLock
from orchestrator.report.run_report import RunReport, load_report, write_report

log = structlog.get_logger("orchestrator.runner")


@dataclass(frozen=True, slots=True)
class Baseline:
    """An earlier report to compare a run with, and where it was read from."""

    report: RunReport
    path: str


def default_state_dir(manifest: Path, env: Mapping[str, str]) -> Path:
    """Where a manifest's state lives unless --state-dir says: under the user's state folder
    (``$XDG_STATE_HOME``, else ``~/.local/state``), one folder per manifest, known by its
    real path, so ``nightly.yaml``, ``./nightly.yaml`` and a symlink to it share one."""
    real = manifest.resolve()
    key = hashlib.sha256(str(real).encode("utf-8")).hexdigest()[:12]
    base = Path(env.get("XDG_STATE_HOME") or Path(env.get("HOME") or Path.home()) / ".local/state")
    return base / "iq-promote" / f"{real.stem}-{key}"


def complete(report: RunReport) -> bool:
    """Whether ``report`` may be the next run's baseline: a run that decided every step it
    had, and had some. An interrupted, failed-to-start or dry run is not one."""
    return (
        not report.dry_run
        and report.stopped is None
        and bool(report.results)
        and not any(r.resumable for r in report.results)
    )


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

    def prepare(self) -> None:
        """Make the folder (0700) or check it is the user's own and writable by nobody else:
        before the first request, so a wrong one costs nothing."""
        ensure_private_dir(self.path, "the state directory")

    def keep(self, report: RunReport) -> bool:
        """Keep ``report`` as the next run's baseline if it is a complete run's; an
        interrupted or empty one leaves the last complete one in place."""
        if not complete(report):
            return False
        write_report(report, self.kept_report, private=True)
        return True

    @contextmanager
    def held(self) -> Iterator[Journal]:
        """Lock the directory for this process, and open the journal, for as long as the block
        runs: a second run on the same directory fails at once with LockedError. The folder
        is checked (:meth:`prepare`) here too, so a caller that skipped it gets no less."""
        self.prepare()
        with StateLock(self.path), Journal(self.path) as journal:
            yield journal
