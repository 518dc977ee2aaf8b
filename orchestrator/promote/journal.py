"""The run journal: a durable record of every promotion's progress, for ``--resume``.

Before each POST the journal records the intent; after it, the status URL; at the end, the
result. After a crash at any instant, a resume therefore re-sends only the POSTs whose
answer was never recorded (those in the air at that instant) and follows every other
accepted promotion by its status URL. SQLite in WAL mode makes each record durable against
the process dying; the journal also keeps evaluation times, the history that lets later
nights poll closer to when evaluations finish.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.errors import UsageError
from orchestrator.promote.events import Prior, StepKey
from orchestrator.report.results import Outcome, PromotionResult

JOURNAL_NAME = "journal.sqlite3"

RUNS_KEPT = 10
"""Finished runs whose steps the journal keeps, newest first; unfinished ones stay for --resume."""

HISTORY_KEPT = 5
"""Evaluation times kept per application, newest first: what later nights poll by."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    manifest TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    complete INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    entry_index INTEGER NOT NULL,
    transition_index INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    status_url TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT,
    intended_at TEXT,
    outcome TEXT,
    result TEXT,
    PRIMARY KEY (run_id, entry_index, transition_index, public_id)
);
CREATE TABLE IF NOT EXISTS durations (
    public_id TEXT NOT NULL,
    target_stage TEXT NOT NULL,
    seconds REAL NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS durations_by_app ON durations (public_id, recorded_at);
"""


def manifest_digest(text: str) -> str:
    """What identifies a manifest for ``--resume``: a run resumes only the same text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """An unfinished run of a manifest: its id, start time and what each step got to."""

    run_id: int
    started_at: datetime
    prior: Mapping[StepKey, Prior]


class Journal:
    """``with Journal(state_dir) as journal:``; implements the scheduler's Listener."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / JOURNAL_NAME
        self._db: sqlite3.Connection | None = None
        self.run_id: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
        except sqlite3.DatabaseError as exc:
            raise UsageError(
                f"the journal {self.path} cannot be used ({exc}); move it aside to start afresh"
            ) from exc
        self._db = db
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("Journal used outside 'with'")
        return self._db

    # --- runs ------------------------------------------------------------------------------

    def begin(self, manifest: str, digest: str, started_at: datetime) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (manifest, manifest_digest, started_at) VALUES (?, ?, ?)",
            (manifest, digest, started_at.isoformat()),
        )
        self.run_id = int(cursor.lastrowid or 0)
        return self.run_id

    def resume_point(self, manifest: str, digest: str) -> ResumePoint | None:
        """The last run of ``manifest`` that did not complete, if it is the latest run of it."""
        row = self.db.execute(
            "SELECT id, manifest_digest, started_at, complete FROM runs WHERE manifest = ? "
            "ORDER BY id DESC LIMIT 1",
            (manifest,),
        ).fetchone()
        if row is None or row[3]:
            return None
        run_id, old_digest, started_at, _ = row
        if old_digest != digest:
            raise UsageError(
                "the manifest changed since the interrupted run; resuming it could promote "
                "the wrong things: run without --resume to start afresh"
            )
        self.run_id = run_id
        return ResumePoint(run_id, datetime.fromisoformat(started_at), self._prior(run_id))

    def _prior(self, run_id: int) -> dict[StepKey, Prior]:
        prior: dict[StepKey, Prior] = {}
        rows = self.db.execute(
            "SELECT entry_index, transition_index, public_id, status_url, attempts, "
            "submitted_at, intended_at, result FROM steps WHERE run_id = ?",
            (run_id,),
        )
        for entry, transition, public_id, url, attempts, submitted, intended, result in rows:
            key = (entry, transition, public_id)
            decided = PromotionResult.model_validate_json(result) if result else None
            if decided is not None and not decided.resumable:
                prior[key] = Prior(result=decided)
            elif url is None and intended is not None and decided is None:
                prior[key] = Prior(sent_unanswered_at=datetime.fromisoformat(intended))
            elif url is not None:
                polls = decided.polls if decided is not None else 0
                prior[key] = Prior(
                    status_url=url,
                    attempts=attempts,
                    polls=polls,
                    submitted_at=datetime.fromisoformat(submitted) if submitted else None,
                )
        return prior

    def end(self, results: Iterable[PromotionResult]) -> None:
        """Mark the run complete unless it stopped before deciding something (then it can
        be resumed)."""
        complete = not any(r.resumable for r in results)
        self.db.execute(
            "UPDATE runs SET finished_at = ?, complete = ? WHERE id = ?",
            (datetime.now(UTC).isoformat(), int(complete), self._run()),
        )
        self._prune()

    def _prune(self) -> None:
        """A nightly job runs for years: keep what resuming and polling need, not every night."""
        old_runs = (
            "SELECT id FROM runs WHERE complete = 1 AND id NOT IN "
            "(SELECT id FROM runs WHERE complete = 1 ORDER BY id DESC LIMIT ?)"
        )
        self.db.execute(f"DELETE FROM steps WHERE run_id IN ({old_runs})", (RUNS_KEPT,))  # noqa: S608
        self.db.execute(f"DELETE FROM runs WHERE id IN ({old_runs})", (RUNS_KEPT,))  # noqa: S608
        self.db.execute(
            "DELETE FROM durations WHERE rowid IN (SELECT rowid FROM (SELECT rowid, "
            "ROW_NUMBER() OVER (PARTITION BY public_id ORDER BY recorded_at DESC, rowid DESC) "
            "AS newer FROM durations) WHERE newer > ?)",
            (HISTORY_KEPT,),
        )

    def _run(self) -> int:
        if self.run_id is None:
            raise RuntimeError("Journal.begin or resume_point first")
        return self.run_id

    # --- the scheduler's Listener ----------------------------------------------------------

    def intent(self, key: StepKey) -> None:
        """A POST is about to go: should the process die before its answer is recorded, a
        resume knows the server may have accepted it."""
        self.db.execute(
            "INSERT INTO steps (run_id, entry_index, transition_index, public_id, intended_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET intended_at = excluded.intended_at",
            (self._run(), *key, _now()),
        )

    def submitted(self, key: StepKey, status_url: str, attempts: int) -> None:
        self.db.execute(
            "INSERT INTO steps (run_id, entry_index, transition_index, public_id, status_url, "
            "attempts, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET status_url = excluded.status_url, "
            "attempts = excluded.attempts, "
            "submitted_at = COALESCE(steps.submitted_at, excluded.submitted_at)",
            (self._run(), *key, status_url, attempts, datetime.now(UTC).isoformat()),
        )

    def finished(self, key: StepKey, result: PromotionResult) -> None:
        self.db.execute(
            "INSERT INTO steps (run_id, entry_index, transition_index, public_id, status_url, "
            "attempts, outcome, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET outcome = excluded.outcome, result = excluded.result, "
            "status_url = COALESCE(excluded.status_url, steps.status_url)",
            (
                self._run(),
                *key,
                result.status_url,
                result.attempts,
                result.status,
                result.model_dump_json(),
            ),
        )
        if result.status is Outcome.COMPLETED and result.evaluation_seconds is not None:
            self.db.execute(
                "INSERT INTO durations VALUES (?, ?, ?, ?)",
                (key[2], result.target_stage_id, result.evaluation_seconds, _now()),
            )

    # --- history ---------------------------------------------------------------------------

    def evaluation_history(self, per_application: int = HISTORY_KEPT) -> dict[str, list[float]]:
        """The latest evaluation times of each application, newest first."""
        history: dict[str, list[float]] = {}
        rows = self.db.execute(
            "SELECT public_id, seconds FROM durations ORDER BY recorded_at DESC, rowid DESC"
        )
        for public_id, seconds in rows:
            times = history.setdefault(public_id, [])
            if len(times) < per_application:
                times.append(seconds)
        return history


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A journal from an earlier version lacks the columns added since; add them."""
    present = {row[1] for row in db.execute("PRAGMA table_info(steps)")}
    if "intended_at" not in present:
        db.execute("ALTER TABLE steps ADD COLUMN intended_at TEXT")


def _now() -> str:
    return datetime.now(UTC).isoformat()
