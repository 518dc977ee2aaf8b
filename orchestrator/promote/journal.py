"""The run journal: a durable record of every promotion's progress, for ``--resume``.

Before each POST the journal records the intent; after it, the status URL; at the end, the
result. After a crash at any instant, a resume therefore looks in the report history for the
POSTs whose answer was not recorded, sends again only those it finds no report of, and
follows every other accepted promotion by its status URL. SQLite in WAL mode makes each
record durable against the process dying, as soon as it is committed: an intent before its
POST goes (the intents of one moment, and of the :data:`INTENT_SPACING` after the commit
before, in one commit); status URLs and results with the next intent, or within
:data:`HELD_SECONDS` (:meth:`Journal.keep_committed`). Three commits a promotion were 8% of
the client's CPU at 5,000 applications, two still 9% at 100,000, and one still 8%; now a
busy run makes one for every few promotions. A status URL lost to a crash makes its
promotion one the resume looks for (and, without its report yet, sends again); a result lost
costs one status request. The journal also keeps evaluation times, the history that lets
later nights poll closer to when evaluations finish.

The journal is private state (0600, never opened through a symlink). A write that fails
during a run (a full disk) does not stop the run: the journal says so once and stops
recording, so the run still finishes and writes its report, only without a resume point.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import structlog

from orchestrator.errors import UsageError
from orchestrator.files import check_private_file, open_private
from orchestrator.promote.events import Prior, StepKey
from orchestrator.report.results import Outcome, PromotionResult
from orchestrator.secrets import SCRUBBER

JOURNAL_NAME = "journal.sqlite3"

RUNS_KEPT = 10
"""Finished runs whose steps the journal keeps, newest first; unfinished ones stay for --resume."""

HISTORY_KEPT = 5
"""Evaluation times kept per application, newest first: what later nights poll by."""

HELD_SECONDS = 0.1
"""Seconds a status URL or a result may wait for the next intent's commit before it is
committed without one."""
HELD_ROWS = 500
"""...or this many statements, whichever comes first."""

INTENT_SPACING = 0.01
"""Seconds an intent's commit waits after the one before it, so that the intents of that
moment share it. At 100,000 applications, slots are freed one answer at a time (370 a
second), and the intents committed one by one were 8% of the client's CPU; a POST waits at
most this long, a slot's turn takes seconds."""

CHECKPOINT_PAGES = 10_000
"""Pages the write-ahead log grows to (40 MB) before they are copied into the journal: a
run rewrites the same pages commit after commit, and each copy takes only the latest. At
SQLite's default of 1,000, the copies were a quarter of the journal's CPU."""

Statement = tuple[str, tuple[object, ...]]

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


log = structlog.get_logger("orchestrator.promote")


@dataclass(frozen=True, slots=True)
class Unfinished:
    """The latest run of a manifest, when it did not finish deciding every step."""

    run_id: int
    digest: str
    """What the manifest meant then (:func:`orchestrator.manifest.model.manifest_digest`)."""
    started_at: datetime
    undecided: int
    """Steps it had not decided when it stopped."""


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
        self.failure: str | None = None
        """Why recording stopped (a full disk), once it has: the run goes on unrecorded."""
        self._held: list[Statement] = []
        """Status URLs and results not committed yet: they go with the next commit."""
        self._held_since = 0.0
        self._committed_at = -math.inf
        """``time.monotonic()`` of the latest commit."""
        self._committing: anyio.Event | None = None
        """Set once the intents of this moment are committed, while a commit is coming."""

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for part in ("", "-wal", "-shm"):
            check_private_file(self.path.with_name(self.path.name + part))
        os.close(open_private(self.path, os.O_RDWR | os.O_CREAT))
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
        except sqlite3.DatabaseError as exc:
            raise UsageError(
                f"the journal {self.path} cannot be used ({exc}); move it aside to start afresh"
            ) from exc
        self._db = db
        self.failure = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            self._record([])
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

    def unfinished(self, manifest: str) -> Unfinished | None:
        """The latest run of ``manifest``, if it stopped before deciding every step."""
        row = self._read(
            "SELECT id, manifest_digest, started_at, complete FROM runs WHERE manifest = ? "
            "ORDER BY id DESC LIMIT 1",
            (manifest,),
        ).fetchone()
        if row is None or row[3]:
            return None
        run_id, digest, started_at, _ = row
        (decided,) = self._read(
            "SELECT COUNT(*) FROM steps WHERE run_id = ? AND outcome IS NOT NULL "
            "AND outcome != 'CANCELLED'",
            (run_id,),
        ).fetchone()
        (seen,) = self._read("SELECT COUNT(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()
        return Unfinished(run_id, digest, datetime.fromisoformat(started_at), seen - decided)

    def resume(self, unfinished: Unfinished) -> ResumePoint:
        """Continue ``unfinished``: what each of its steps got to."""
        self.run_id = unfinished.run_id
        return ResumePoint(unfinished.run_id, unfinished.started_at, self._prior(unfinished.run_id))

    def abandon(self, unfinished: Unfinished) -> None:
        """Give up ``unfinished`` (what its manifest meant has changed): it will not be resumed."""
        self.db.execute(
            "UPDATE runs SET finished_at = ?, complete = 1 WHERE id = ?",
            (_now(), unfinished.run_id),
        )

    def _read(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise UsageError(
                f"the journal {self.path} cannot be read ({exc}); move it aside to start afresh"
            ) from exc

    def _prior(self, run_id: int) -> dict[StepKey, Prior]:
        prior: dict[StepKey, Prior] = {}
        rows = self._read(
            "SELECT entry_index, transition_index, public_id, status_url, attempts, "
            "submitted_at, intended_at, result FROM steps WHERE run_id = ?",
            (run_id,),
        ).fetchall()
        for entry, transition, public_id, url, attempts, submitted, intended, result in rows:
            key = (entry, transition, public_id)
            try:
                decided = PromotionResult.model_validate_json(result) if result else None
            except ValueError as exc:
                # A damaged row: what it decided is unknown, so it is not kept as decided.
                log.warning("journal.row_unreadable", step=list(key), error=str(exc)[:200])
                decided = None
            if decided is not None and not decided.resumable:
                prior[key] = Prior(result=decided)
            elif url is None and intended is not None:
                # The POST went out and no answer was recorded: the process died, the run was
                # cancelled while it was in the air, or the server went away mid-request.
                # The server may have accepted it, so a resume looks before it sends again.
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
        self._write(
            "UPDATE runs SET finished_at = ?, complete = ? WHERE id = ?",
            (datetime.now(UTC).isoformat(), int(complete), self._run()),
        )
        if self.failure is None:
            try:
                self._prune()
            except sqlite3.Error as exc:
                log.warning("journal.prune_failed", error=str(exc))

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
            raise RuntimeError("Journal.begin or Journal.resume first")
        return self.run_id

    # --- the scheduler's Listener ----------------------------------------------------------

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        self._record([(sql, params)])

    def _hold(self, statements: list[Statement]) -> None:
        """Commit ``statements`` with the next commit, or now if what is held has waited
        :data:`HELD_SECONDS` (or is :data:`HELD_ROWS` statements)."""
        now = time.monotonic()
        if not self._held:
            self._held_since = now
        self._held += statements
        if now - self._held_since >= HELD_SECONDS or len(self._held) >= HELD_ROWS:
            self._record([])

    async def keep_committed(self) -> None:
        """Commit what is held every :data:`HELD_SECONDS`, while the run lasts (cancel it to
        stop): when no intent comes (the run's last evaluations), nothing waits longer."""
        while True:
            await anyio.sleep(HELD_SECONDS)
            self._record([])

    def _record(self, statements: list[Statement]) -> None:
        """Record, in one commit with the results held, unless recording already failed: a
        journal that cannot be written (a full disk, a folder made read-only) must not stop
        the run, whose report is still written."""
        statements, self._held = self._held + statements, []
        if self.failure is not None or not statements:
            return
        try:
            if len(statements) == 1:
                self.db.execute(*statements[0])
            else:
                with self.db:
                    self.db.execute("BEGIN")
                    for sql, params in statements:
                        self.db.execute(sql, params)
            self._committed_at = time.monotonic()
        except sqlite3.Error as exc:
            self.failure = str(exc)
            log.error(  # noqa: TRY400 - said in words; a traceback adds nothing
                "journal.unwritable",
                path=str(self.path),
                error=self.failure,
                consequence="the run goes on and writes its report, but this run cannot be "
                "resumed: free space in the state directory before the next run",
            )

    async def intent(self, key: StepKey) -> None:
        """A POST is about to go: should the process die before its answer is recorded, a
        resume knows the server may have accepted it. Returns once that is committed; the
        intents of promotions sent in the same moment (slots freed by one batch of answers)
        share the commit, which is why this waits once for the others."""
        self._hold(
            [
                (
                    "INSERT INTO steps (run_id, entry_index, transition_index, public_id, "
                    "intended_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET intended_at = excluded.intended_at",
                    (self._run(), *key, _now()),
                )
            ]
        )
        if not self._held:
            return  # committed with what was held
        if (shared := self._committing) is not None:
            await shared.wait()
            return
        self._committing = committed = anyio.Event()
        try:
            await anyio.sleep(max(0.0, self._committed_at + INTENT_SPACING - time.monotonic()))
        finally:
            self._committing = None
            self._record([])
            committed.set()

    def submitted(self, key: StepKey, status_url: str, attempts: int) -> None:
        """The status URL, committed with the next commit (see :data:`HELD_SECONDS`). It is
        the server's, written as scrubbed as the final row: a killed run leaves only this row,
        and a server that echoed a secret into the URL must not leave it in the journal (a
        resume then finds that one promotion by the report history)."""
        status_url = SCRUBBER.scrub(status_url)
        self._hold(
            [
                (
                    "INSERT INTO steps (run_id, entry_index, transition_index, public_id, "
                    "status_url, attempts, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET status_url = excluded.status_url, "
                    "attempts = excluded.attempts, "
                    "submitted_at = COALESCE(steps.submitted_at, excluded.submitted_at)",
                    (self._run(), *key, status_url, attempts, _now()),
                )
            ]
        )

    def finished(self, key: StepKey, result: PromotionResult) -> None:
        """The step's final row, and its evaluation time for later nights, committed
        together with the next commit (see :data:`HELD_SECONDS`)."""
        statements: list[Statement] = [
            (
                "INSERT INTO steps (run_id, entry_index, transition_index, public_id, "
                "status_url, attempts, outcome, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET outcome = excluded.outcome, result = excluded.result, "
                "status_url = COALESCE(excluded.status_url, steps.status_url)",
                (
                    self._run(),
                    *key,
                    SCRUBBER.scrub(result.status_url),
                    result.attempts,
                    result.status,
                    SCRUBBER.dump_json(result),
                ),
            )
        ]
        if result.status is Outcome.COMPLETED and result.evaluation_seconds is not None:
            statements.append(
                (
                    "INSERT INTO durations VALUES (?, ?, ?, ?)",
                    (key[2], result.target_stage_id, result.evaluation_seconds, _now()),
                )
            )
        self._hold(statements)

    # --- history ---------------------------------------------------------------------------

    def evaluation_history(self, per_application: int = HISTORY_KEPT) -> dict[str, list[float]]:
        """The latest evaluation times of each application, newest first."""
        history: dict[str, list[float]] = {}
        self._record([])  # the results held first: they hold times too
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
