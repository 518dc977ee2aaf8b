"""The run journal: what a resume finds, what history later nights learn from, and what a
crash leaves behind."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import UsageError
from orchestrator.promote import journal as journal_module
from orchestrator.promote.events import StepKey
from orchestrator.promote.journal import (
    CHECKPOINT_PAGES,
    HELD_ROWS,
    HELD_SECONDS,
    HISTORY_KEPT,
    JOURNAL_NAME,
    RUNS_KEPT,
    Journal,
    ResumePoint,
)
from orchestrator.report.results import Outcome, PromotionResult

MANIFEST = "nightly.yaml"
DIGEST = "what-the-manifest-means"
STARTED = datetime(2025, 1, 6, 2, 30, tzinfo=UTC)


def result(
    key: StepKey,
    status: Outcome,
    *,
    status_url: str | None = None,
    attempts: int = 1,
    polls: int = 0,
    evaluation_seconds: float | None = None,
    stage: str = "build",
) -> PromotionResult:
    entry, transition, public_id = key
    return PromotionResult(
        public_id=public_id,
        entry_index=entry,
        transition_index=transition,
        source_stage_id="build",
        target_stage_id=stage,
        status=status,
        reason=None if status is Outcome.COMPLETED else f"{status} on purpose",
        status_url=status_url,
        attempts=attempts,
        polls=polls,
        evaluation_seconds=evaluation_seconds,
    )


def url(n: int) -> str:
    return f"http://127.0.0.1:1/api/v2/evaluation/applications/a{n}/status/s{n}"


def rows(state_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the journal's file directly, as a second process (or a person) would."""
    with sqlite3.connect(state_dir / JOURNAL_NAME) as db:
        return list(db.execute(sql))


def resume_point(journal: Journal, manifest: str) -> ResumePoint | None:
    """Where the last run of ``manifest`` stopped, if it did."""
    unfinished = journal.unfinished(manifest)
    return journal.resume(unfinished) if unfinished is not None else None


def test_a_run_round_trips_and_a_finished_run_is_not_resumed(tmp_path: Path) -> None:
    done, failed = (0, 0, "app-a"), (0, 0, "app-b")
    with Journal(tmp_path) as journal:
        run_id = journal.begin(MANIFEST, DIGEST, STARTED)
        for n, (key, outcome) in enumerate(((done, Outcome.COMPLETED), (failed, Outcome.FAILED))):
            anyio.run(journal.intent, key)
            journal.submitted(key, url(n), attempts=2)
            journal.finished(key, result(key, outcome, status_url=url(n), attempts=2))
        journal.end([result(done, Outcome.COMPLETED), result(failed, Outcome.FAILED)])

    assert rows(tmp_path, "SELECT id, manifest, complete FROM runs") == [(run_id, MANIFEST, 1)]
    assert rows(tmp_path, "SELECT public_id, outcome, attempts FROM steps ORDER BY 1") == [
        ("app-a", "COMPLETED", 2),
        ("app-b", "FAILED", 2),
    ]
    with Journal(tmp_path) as journal:
        assert resume_point(journal, MANIFEST) is None
        assert resume_point(journal, "other.yaml") is None


def test_an_interrupted_run_resumes_with_what_each_step_got_to(tmp_path: Path) -> None:
    completed, in_air, accepted, cancelled = (
        (0, 0, "done"),
        (0, 0, "in-air"),
        (0, 0, "accepted"),
        (1, 0, "cancelled"),
    )
    with Journal(tmp_path) as journal:
        run_id = journal.begin(MANIFEST, DIGEST, STARTED)
        anyio.run(journal.intent, completed)
        journal.submitted(completed, url(1), attempts=1)
        journal.finished(completed, result(completed, Outcome.COMPLETED, status_url=url(1)))
        anyio.run(journal.intent, in_air)  # the POST was sent, its answer never recorded
        anyio.run(journal.intent, accepted)
        journal.submitted(accepted, url(3), attempts=3)
        anyio.run(journal.intent, cancelled)
        journal.submitted(cancelled, url(4), attempts=1)
        journal.finished(
            cancelled, result(cancelled, Outcome.CANCELLED, status_url=url(4), polls=5)
        )
        # No end(): the process died here.

    with Journal(tmp_path) as journal:
        point = resume_point(journal, MANIFEST)
        assert point is not None
        assert journal.run_id == point.run_id == run_id
        assert point.started_at == STARTED
        prior = point.prior

    kept = prior[completed].result
    assert kept is not None
    assert kept.status is Outcome.COMPLETED
    assert prior[completed].status_url is None  # a kept result is not followed again
    # Sent, its answer never recorded: a resume sends it again, and says it may be a repeat.
    assert prior[in_air].status_url is None
    assert prior[in_air].result is None
    assert prior[in_air].sent_unanswered_at is not None
    assert prior[accepted].result is None
    assert prior[accepted].status_url == url(3)
    assert prior[accepted].attempts == 3
    assert prior[accepted].submitted_at is not None
    # A CANCELLED result is not final: it is followed again by its status URL.
    assert prior[cancelled].result is None
    assert prior[cancelled].status_url == url(4)
    assert prior[cancelled].polls == 5


def test_an_unfinished_run_says_what_it_meant_and_an_abandoned_one_is_gone(
    tmp_path: Path,
) -> None:
    """Whether a run may be resumed is the runner's call, from the digest of what the manifest
    meant; a run it gives up is not offered again."""
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        anyio.run(journal.intent, (0, 0, "app"))
    with Journal(tmp_path) as journal:
        unfinished = journal.unfinished(MANIFEST)
        assert unfinished is not None
        assert (unfinished.digest, unfinished.undecided) == (DIGEST, 1)
        journal.abandon(unfinished)
        assert journal.unfinished(MANIFEST) is None


def test_a_later_finished_run_hides_an_older_unfinished_one(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        anyio.run(journal.intent, (0, 0, "app"))
        journal.begin(MANIFEST, DIGEST, STARTED)  # started afresh without --resume
        journal.end([result((0, 0, "app"), Outcome.COMPLETED)])
        assert resume_point(journal, MANIFEST) is None


def test_a_cancelled_step_keeps_the_run_resumable(tmp_path: Path) -> None:
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        journal.end([result(key, Outcome.COMPLETED), result(key, Outcome.CANCELLED)])
        assert resume_point(journal, MANIFEST) is not None


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.CANCELLED, "the run was stopped (SIGTERM) while the POST was in the air"),
        (Outcome.ERROR, "server unavailable for more than 300 s"),
    ],
)
def test_a_post_cut_off_in_the_air_is_looked_for_before_it_is_sent_again(
    tmp_path: Path, outcome: Outcome, reason: str
) -> None:
    """A resumable result with an intent and no status URL: the POST may have reached the
    server, so a resume checks the report history before sending it again."""
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        anyio.run(journal.intent, key)
        cut_off = result(key, outcome).model_copy(update={"reason": reason, "resumable": True})
        journal.finished(key, cut_off)
        journal.end([cut_off])
    with Journal(tmp_path) as journal:
        point = resume_point(journal, MANIFEST)
    assert point is not None
    assert point.prior[key].sent_unanswered_at is not None
    assert point.prior[key].result is None


def test_submitted_at_is_kept_across_resubmissions(tmp_path: Path) -> None:
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        anyio.run(journal.intent, key)
        journal.submitted(key, url(1), attempts=1)
        anyio.run(journal.intent, (0, 0, "next"))  # commits the status URL
        (first,) = rows(tmp_path, "SELECT submitted_at FROM steps WHERE public_id = 'app'")
        # A resumed run reports the same promotion as submitted again (same or new URL).
        journal.submitted(key, url(2), attempts=4)
        journal.submitted(key, url(2), attempts=4)
    query = "SELECT status_url, attempts, submitted_at FROM steps WHERE public_id = 'app'"
    assert rows(tmp_path, query) == [(url(2), 4, first[0])]


def test_a_result_without_a_status_url_keeps_the_recorded_one(tmp_path: Path) -> None:
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        journal.submitted(key, url(1), attempts=1)
        journal.finished(key, result(key, Outcome.CANCELLED, status_url=None))
    with Journal(tmp_path) as journal:
        point = resume_point(journal, MANIFEST)
    assert point is not None
    assert point.prior[key].status_url == url(1)


def test_evaluation_history_holds_the_latest_times_per_application(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        for seconds in range(1, 8):
            key = (0, seconds, "busy")
            journal.finished(key, result(key, Outcome.COMPLETED, evaluation_seconds=seconds))
        quiet = (0, 0, "quiet")
        journal.finished(quiet, result(quiet, Outcome.COMPLETED, evaluation_seconds=0.5))
        # Neither a failure nor a completion without a measured time is history.
        journal.finished((1, 0, "quiet"), result(quiet, Outcome.FAILED, evaluation_seconds=9))
        journal.finished((2, 0, "quiet"), result(quiet, Outcome.COMPLETED))
        assert journal.evaluation_history(per_application=3) == {
            "busy": [7.0, 6.0, 5.0],
            "quiet": [0.5],
        }
    with Journal(tmp_path) as journal:  # and the next night still has it
        history = journal.evaluation_history()
    assert history["busy"] == [7.0, 6.0, 5.0, 4.0, 3.0]
    assert history["quiet"] == [0.5]


def test_the_journal_survives_reopening(tmp_path: Path) -> None:
    for night in range(3):
        with Journal(tmp_path) as journal:
            journal.begin(MANIFEST, DIGEST, STARTED)
            key = (0, 0, "app")
            anyio.run(journal.intent, key)
            journal.finished(key, result(key, Outcome.COMPLETED, evaluation_seconds=night + 1))
            journal.end([result(key, Outcome.COMPLETED)])
    assert rows(tmp_path, "SELECT id, complete FROM runs") == [(1, 1), (2, 1), (3, 1)]
    with Journal(tmp_path) as journal:
        assert journal.evaluation_history()["app"] == [3.0, 2.0, 1.0]


def test_the_log_is_copied_into_the_journal_seldom(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        pages = journal.db.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == (CHECKPOINT_PAGES,)


def test_a_journal_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_NAME).write_bytes(b"this is not an SQLite database, not at all" * 100)
    with pytest.raises(UsageError, match="move it aside"), Journal(tmp_path):
        pass


def test_records_committed_before_a_crash_are_there_after_it(tmp_path: Path) -> None:
    """A process that dies without closing the journal (no checkpoint, no close) loses
    nothing it committed: each intent, with the status URLs before it, is a transaction in
    WAL mode. The last status URL, not committed yet, leaves its POST one to look for."""
    script = textwrap.dedent(
        f"""
        import os, signal
        import anyio
        from datetime import datetime, UTC
        from pathlib import Path
        from orchestrator.promote.journal import Journal
        journal = Journal(Path({str(tmp_path)!r})).__enter__()
        journal.begin({MANIFEST!r}, {DIGEST!r}, datetime.now(UTC))
        for n in range(50):
            key = (0, 0, f"app-{{n}}")
            anyio.run(journal.intent, key)
            if n % 2:
                journal.submitted(key, f"status/{{n}}", 1)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    crashed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], check=False, timeout=60, capture_output=True
    )
    assert crashed.returncode == -9, crashed.stderr.decode()
    assert (tmp_path / f"{JOURNAL_NAME}-wal").exists()  # never checkpointed into the main file

    with Journal(tmp_path) as journal:
        point = resume_point(journal, MANIFEST)
    assert point is not None
    accepted = {k: p for k, p in point.prior.items() if p.status_url is not None}
    assert sorted(accepted) == sorted((0, 0, f"app-{n}") for n in range(1, 49, 2))
    assert all(p.status_url == f"status/{key[2][4:]}" for key, p in accepted.items())
    unanswered = [k for k, p in point.prior.items() if p.sent_unanswered_at is not None]
    assert sorted(unanswered) == sorted((0, 0, f"app-{n}") for n in [*range(0, 50, 2), 49])
    assert rows(tmp_path, "SELECT COUNT(*) FROM steps") == [(50,)]


def crash_after(tmp_path: Path, steps: str, *, held: float = 3600.0) -> dict[str, str | None]:
    """Run ``steps`` (Python, with ``journal``, ``result`` and ``Outcome`` at hand) on a fresh
    journal, kill the process without closing it, and say what a resume finds of each
    application: ``"result"``, ``"status URL"``, ``"unanswered"``."""
    script = (
        textwrap.dedent(
            f"""
        import os, signal
        import anyio
        from datetime import datetime, UTC
        from pathlib import Path
        from orchestrator.promote import journal as journal_module
        from orchestrator.report.results import Outcome, PromotionResult
        journal_module.HELD_SECONDS = {held!r}
        def result(name):
            return PromotionResult(
                public_id=name, entry_index=0, transition_index=0, source_stage_id="build",
                target_stage_id="build", status=Outcome.COMPLETED, status_url="status/" + name,
                attempts=1, evaluation_seconds=1.0,
            )
        journal = journal_module.Journal(Path({str(tmp_path)!r})).__enter__()
        journal.begin({MANIFEST!r}, {DIGEST!r}, datetime.now(UTC))
        """
        )
        + textwrap.dedent(steps)
        + "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    crashed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], check=False, timeout=60, capture_output=True
    )
    assert crashed.returncode == -9, crashed.stderr.decode()
    with Journal(tmp_path) as journal:
        point = resume_point(journal, MANIFEST)
    assert point is not None
    found: dict[str, str | None] = {}
    for key, prior in point.prior.items():
        found[key[2]] = (
            "result"
            if prior.result is not None
            else "status URL"
            if prior.status_url is not None
            else "unanswered"
            if prior.sent_unanswered_at is not None
            else None
        )
    return found


def test_a_result_is_committed_with_the_next_intent_and_a_crash_before_costs_a_poll(
    tmp_path: Path,
) -> None:
    """Results wait for the next commit: one lost to a crash leaves its status URL, which a
    resume follows (one status request), never a POST sent again."""
    steps = """
        for name in ("a", "b"):
            anyio.run(journal.intent, (0, 0, name))
            journal.submitted((0, 0, name), "status/" + name, 1)
        journal.finished((0, 0, "a"), result("a"))
        anyio.run(journal.intent, (0, 0, "c"))
        journal.finished((0, 0, "b"), result("b"))
        """
    assert crash_after(tmp_path / "held", steps) == {
        "a": "result",
        "b": "status URL",
        "c": "unanswered",
    }
    # Held no time, each result is committed as it comes.
    assert crash_after(tmp_path / "unheld", steps, held=0.0)["b"] == "result"


def test_a_status_url_is_committed_with_the_next_intent_and_a_crash_before_costs_a_look(
    tmp_path: Path,
) -> None:
    """A status URL lost to a crash leaves its POST as one cut off in the air: the resume
    looks for its report before it sends it again."""
    steps = """
        anyio.run(journal.intent, (0, 0, "a"))
        journal.submitted((0, 0, "a"), "status/a", 1)
        anyio.run(journal.intent, (0, 0, "b"))
        journal.submitted((0, 0, "b"), "status/b", 1)
        """
    assert crash_after(tmp_path / "held", steps) == {"a": "status URL", "b": "unanswered"}
    assert crash_after(tmp_path / "unheld", steps, held=0.0)["b"] == "status URL"


@pytest.mark.anyio
async def test_what_is_held_is_committed_within_moments_while_the_journal_is_kept(
    tmp_path: Path,
) -> None:
    """No intent follows: :meth:`Journal.keep_committed` commits what is held."""
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        await journal.intent(key)
        async with anyio.create_task_group() as tg:
            tg.start_soon(journal.keep_committed)
            journal.submitted(key, "status/app", 1)
            query = "SELECT status_url FROM steps"
            assert rows(tmp_path, query) == [(None,)]
            with anyio.fail_after(30):
                while rows(tmp_path, query) != [("status/app",)]:  # noqa: ASYNC110 - sets no event
                    await anyio.sleep(HELD_SECONDS / 4)
            tg.cancel_scope.cancel()


class _Commits:
    """Counts the journal's commits: the records that had something to write."""

    def __init__(self, journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        record = journal._record

        def counted(statements: list[tuple[str, tuple[object, ...]]]) -> None:
            self.count += bool(journal._held or statements)
            record(statements)

        monkeypatch.setattr(journal, "_record", counted)


async def _send(journal: Journal, tmp_path: Path, name: str, committed: dict[str, bool]) -> None:
    """An intent, as the scheduler records it before a POST; ``committed`` says whether its
    row was committed when it returned (when the POST would go)."""
    await journal.intent((0, 0, name))
    committed[name] = (name,) in rows(tmp_path, "SELECT public_id FROM steps")


@pytest.mark.anyio
async def test_intents_of_one_moment_share_a_commit_and_each_returns_once_it_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promotions whose slots one batch of answers freed are sent in the same moment: their
    intents go in one commit, and each POST waits for it."""
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        commits = _Commits(journal, monkeypatch)
        committed: dict[str, bool] = {}
        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(_send, journal, tmp_path, f"app-{n}", committed)
        assert commits.count == 1
        assert committed == {f"app-{n}": True for n in range(5)}
        await journal.intent((0, 0, "later"))
        assert commits.count == 2


@pytest.mark.anyio
async def test_intents_that_follow_a_commit_closely_wait_to_share_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slots freed one answer at a time send one promotion at a time: an intent that comes
    within :data:`INTENT_SPACING` of the latest commit waits out the spacing, and those that
    come meanwhile share its commit; each still returns only once its row is committed."""
    monkeypatch.setattr(journal_module, "INTENT_SPACING", 1.0)
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        commits = _Commits(journal, monkeypatch)
        committed: dict[str, bool] = {}
        await _send(journal, tmp_path, "first", committed)
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(_send, journal, tmp_path, f"app-{n}", committed)
                await anyio.wait_all_tasks_blocked()
        assert commits.count == 2
        assert committed == {"first": True} | {f"app-{n}": True for n in range(3)}


def test_no_more_results_are_held_than_a_commit_takes(tmp_path: Path) -> None:
    steps = f"""
        for n in range({HELD_ROWS // 2 + 10}):
            journal.finished((0, 0, f"app-{{n}}"), result(f"app-{{n}}"))
        """
    found = crash_after(tmp_path, steps)
    # Each result is two statements (its row, its time): the first half made a full commit.
    assert list(found.values()) == ["result"] * (HELD_ROWS // 2)


def test_results_held_are_committed_when_the_journal_closes_or_is_read(tmp_path: Path) -> None:
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin(MANIFEST, DIGEST, STARTED)
        journal.finished(key, result(key, Outcome.COMPLETED, evaluation_seconds=3.0))
        assert rows(tmp_path, "SELECT COUNT(*) FROM steps") == [(0,)]
        assert journal.evaluation_history() == {"app": [3.0]}
        assert rows(tmp_path, "SELECT COUNT(*) FROM steps") == [(1,)]
        journal.finished((0, 1, "app"), result(key, Outcome.COMPLETED))
    assert rows(tmp_path, "SELECT COUNT(*) FROM steps") == [(2,)]


def test_a_journal_kept_for_years_holds_only_recent_runs_and_history(tmp_path: Path) -> None:
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        for night in range(RUNS_KEPT + 5):
            journal.begin("nightly.yaml", "digest", datetime.now(UTC))
            anyio.run(journal.intent, key)
            journal.finished(key, result(key, Outcome.COMPLETED, evaluation_seconds=float(night)))
            journal.end([result(key, Outcome.COMPLETED)])
        runs = journal.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        steps = journal.db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        history = journal.evaluation_history()
    assert runs == steps == RUNS_KEPT
    newest = float(RUNS_KEPT + 4)
    assert history == {"app": [newest - n for n in range(HISTORY_KEPT)]}


def test_a_journal_of_an_earlier_version_gains_the_intent_time(tmp_path: Path) -> None:
    """Journals written before the intent time was kept open and resume as before."""
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        db.executescript(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, manifest TEXT NOT NULL, "
            "manifest_digest TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, "
            "complete INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE steps (run_id INTEGER NOT NULL, entry_index INTEGER NOT NULL, "
            "transition_index INTEGER NOT NULL, public_id TEXT NOT NULL, status_url TEXT, "
            "attempts INTEGER NOT NULL DEFAULT 0, submitted_at TEXT, outcome TEXT, result TEXT, "
            "PRIMARY KEY (run_id, entry_index, transition_index, public_id));"
        )
        db.execute(
            "INSERT INTO runs (manifest, manifest_digest, started_at) VALUES (?, ?, ?)",
            (MANIFEST, DIGEST, STARTED.isoformat()),
        )
        db.execute(
            "INSERT INTO steps (run_id, entry_index, transition_index, public_id, "
            "status_url, attempts) VALUES (1, 0, 0, 'app', ?, 1)",
            (url(1),),
        )
    db.close()
    with Journal(tmp_path) as journal:
        point = resume_point(journal, MANIFEST)
        assert point is not None
        assert point.prior[(0, 0, "app")].status_url == url(1)
        anyio.run(journal.intent, (0, 1, "app"))
