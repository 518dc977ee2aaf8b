"""Files and state a night can meet: outputs that cannot be written, found before anything is
sent; outputs that would overwrite an input or land in the state directory; a state directory
someone else prepared (symlinks, another owner, writable by others); file modes; a deleted
lock file; the kept baseline; and a resume after an edit. Real files, the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
import structlog
import trustme
from click.testing import CliRunner, Result
from sample_reports import result
from structlog.testing import capture_logs
from test_runner import config_for, entry
from test_runner import manifest as runner_manifest

from orchestrator.cli.main import main
from orchestrator.errors import LockedError, UnwrittenError, UsageError
from orchestrator.files import check_private_file
from orchestrator.manifest.model import load_manifest, manifest_digest, parse_manifest
from orchestrator.promote.control import RunControl
from orchestrator.promote.journal import JOURNAL_NAME, Journal
from orchestrator.promote.lock import StateLock
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport, Summary
from orchestrator.runner.config import RunConfig
from orchestrator.runner.request import RunRequest
from orchestrator.runner.run import run as orchestrator_run
from orchestrator.runner.run import write_all
from orchestrator.runner.state_dir import StateDir, default_state_dir
from orchestrator.simulator import Simulator

ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]
CREDENTIALS = {"IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"}
FAST = "polling: {initialInterval: 0.02, maxInterval: 0.1}\n"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def manifest(path: Path, apps: list[str], transition: str = "{from: build, to: build}") -> Path:
    path.write_text(
        f"version: 1\n{FAST}promotions:\n  - applications: [{', '.join(apps)}]\n"
        f"    transitions: [{transition}]\n",
        encoding="utf-8",
    )
    return path


def run(sim: Simulator, path: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(
        main,
        ["run", str(path), "--server-url", sim.base_url, "--log-format", "json", *map(str, args)],
        env=CREDENTIALS,
    )


def events(result: Result) -> list[dict[str, object]]:
    found = []
    for line in result.stderr.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sim(threaded_simulator_factory: ThreadedSimulatorFactory) -> Iterator[Simulator]:
    with threaded_simulator_factory() as served:
        yield served


def scanned(sim: Simulator, count: int) -> list[str]:
    return [a.public_id for a in sim.portfolio.applications[:count]]


# --- outputs that cannot be written ---------------------------------------------------------

UNWRITABLE = ["/proc/iq-promote/out.txt", "{file}/below-a-file.txt"]


@pytest.mark.parametrize("option", ["--report", "--html", "--junit", "--markdown", "--metrics"])
@pytest.mark.parametrize("where", UNWRITABLE, ids=["proc", "under-a-file"])
def test_an_output_that_cannot_be_written_is_exit_2_before_anything_is_sent(
    sim: Simulator, tmp_path: Path, option: str, where: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    path = where.format(file=a_file)
    given = manifest(tmp_path / "m.yaml", scanned(sim, 2))
    other: list[str | Path] = [] if option == "--report" else ["--report", tmp_path / "r.json"]
    result = run(sim, given, option, path, *other, "--state-dir", tmp_path / "state")
    assert result.exit_code == 2, result.stderr
    assert path in result.stderr
    assert "cannot be written" in result.stderr
    assert sim.stats.total_requests == 0, "nothing is sent"


@pytest.mark.parametrize("where", ["/proc/iq-promote-state", "{file}/state"])
def test_a_state_directory_that_cannot_be_made_is_exit_2_before_anything_is_sent(
    sim: Simulator, tmp_path: Path, where: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    path = where.format(file=a_file)
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", path)
    assert result.exit_code == 2, result.stderr
    assert path in result.stderr
    assert sim.stats.total_requests == 0


def test_an_output_naming_an_input_or_the_state_directory_is_refused(
    sim: Simulator, tmp_path: Path
) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    state = tmp_path / "state"
    before = given.read_text(encoding="utf-8")
    cases: list[list[str | Path]] = [
        ["--report", given],
        ["--report", tmp_path / "r.json", "--html", given],
        ["--report", state / "journal.sqlite3"],
        ["--report", tmp_path / "r.json", "--markdown", state / "reports" / "m.json"],
    ]
    for options in cases:
        result = run(sim, given, *options, "--state-dir", state)
        assert result.exit_code == 2, result.stderr
        assert "overwrite the manifest" in result.stderr or "inside the state directory" in (
            result.stderr
        )
    assert given.read_text(encoding="utf-8") == before
    assert sim.stats.total_requests == 0


@pytest.mark.parametrize("where", ["--ca-bundle", "server.caBundle", "server.clientKey"])
def test_an_output_naming_a_certificate_file_is_refused(
    sim: Simulator, tmp_path: Path, where: str
) -> None:
    """The CA bundle and the client certificate and key are inputs as the manifest is: a
    report written over one would break every later night's TLS."""
    authority = trustme.CA()
    client = authority.issue_cert("iq-promote.example.com")
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    authority.cert_pem.write_to_path(str(ca))
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    options: list[str | Path] = ["--state-dir", tmp_path / "state"]
    if where == "--ca-bundle":
        target = ca
        options += ["--ca-bundle", ca]
    elif where == "server.caBundle":
        target = ca
        given.write_text(given.read_text("utf-8") + "server:\n  caBundle: ca.pem\n", "utf-8")
    else:
        target = key
        server = "server:\n  clientCert: client.pem\n  clientKey: client.key\n"
        given.write_text(given.read_text("utf-8") + server, "utf-8")
    before = target.read_bytes()
    result = run(sim, given, "--report", target, *options)
    assert result.exit_code == 2, result.stderr
    assert "would overwrite" in result.stderr
    assert target.read_bytes() == before
    assert sim.stats.total_requests == 0


@pytest.mark.parametrize("which", ["--ca-bundle", "server.caBundle", "server.clientKey"])
def test_a_certificate_file_that_is_not_one_is_exit_2_naming_it(
    sim: Simulator, tmp_path: Path, which: str
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("this is no certificate\n", encoding="utf-8")
    cert = tmp_path / "client.pem"
    trustme.CA().issue_cert("iq-promote.example.com").cert_chain_pems[0].write_to_path(str(cert))
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    options: list[str | Path] = ["--report", tmp_path / "r.json"]
    if which == "--ca-bundle":
        options += ["--ca-bundle", not_pem]
    elif which == "server.caBundle":
        given.write_text(given.read_text("utf-8") + "server:\n  caBundle: not.pem\n", "utf-8")
    else:
        server = "server:\n  clientCert: client.pem\n  clientKey: not.pem\n"
        given.write_text(given.read_text("utf-8") + server, "utf-8")
    result = run(sim, given, *options, "--state-dir", tmp_path / "state")
    assert result.exit_code == 2, result.stderr
    assert "internal error" not in result.stderr
    assert "not.pem" in result.stderr
    assert sim.stats.total_requests == 0


# --- the state directory ----------------------------------------------------------------------


def test_the_default_state_directory_does_not_depend_on_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = manifest(tmp_path / "nightly.yaml", ["a"])
    link = tmp_path / "elsewhere" / "link.yaml"
    link.parent.mkdir()
    link.symlink_to(target)
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    absolute = default_state_dir(target, env)
    monkeypatch.chdir(tmp_path)
    assert default_state_dir(Path("nightly.yaml"), env) == absolute
    assert default_state_dir(Path("elsewhere/../nightly.yaml"), env) == absolute
    assert default_state_dir(link, env) == absolute
    assert absolute.is_relative_to(tmp_path / "xdg" / "iq-promote")
    assert absolute.name.startswith("nightly-")
    (tmp_path / "other").mkdir()
    other = manifest(tmp_path / "other" / "nightly.yaml", ["a"])
    assert default_state_dir(other, env) != absolute, "two manifests of one name differ"


def test_a_run_from_another_folder_finds_the_same_state(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = manifest(tmp_path / "nightly.yaml", scanned(sim, 1))
    monkeypatch.chdir(tmp_path)
    first = run(sim, Path("nightly.yaml"), "--report", tmp_path / "r1.json")
    assert first.exit_code == 0, first.stderr
    monkeypatch.chdir("/")
    second = run(sim, given, "--report", tmp_path / "r2.json")
    assert second.exit_code == 0, second.stderr
    document = json.loads((tmp_path / "r2.json").read_text(encoding="utf-8"))
    assert document["baseline"] is not None, "the second found the first's kept report"
    link = tmp_path / "links" / "tonight.yaml"
    link.parent.mkdir()
    link.symlink_to(given)
    third = run(sim, link, "--report", tmp_path / "r3.json")
    assert third.exit_code == 0, third.stderr
    document = json.loads((tmp_path / "r3.json").read_text(encoding="utf-8"))
    assert document["baseline"] is not None, "a symlink to the manifest shares its state"


def test_state_is_private_and_reports_follow_the_umask(sim: Simulator, tmp_path: Path) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    state, report = tmp_path / "state", tmp_path / "out" / "r.json"
    previous = os.umask(0o027)
    try:
        result = run(
            sim, given, "--report", report, "--state-dir", state, "--html", tmp_path / "r.html"
        )
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    assert mode(state) == 0o700
    assert mode(state / "journal.sqlite3") == 0o600
    assert mode(state / "reports" / "m.json") == 0o600
    assert mode(report) == 0o640
    assert mode(tmp_path / "r.html") == 0o640


def test_state_an_earlier_version_left_readable_is_made_private(
    sim: Simulator, tmp_path: Path
) -> None:
    """A state directory and journal made under umask 022 (0755, 0644) are the user's own:
    they are made private, not refused, and what is in them is kept."""
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    state = tmp_path / "state"
    assert run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state).exit_code == 0
    journal, lock = state / "journal.sqlite3", state / "run.lock"
    state.chmod(0o755)
    for path in (journal, lock):
        path.chmod(0o644)
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state)
    assert result.exit_code == 0, result.stderr
    assert (mode(state), mode(journal), mode(lock)) == (0o700, 0o600, 0o600)


def test_a_journal_sidecar_left_readable_is_made_private(tmp_path: Path) -> None:
    """SQLite makes its -wal and -shm files with the journal's mode; one left 0644 is made
    0600 before the journal opens."""
    tmp_path.chmod(0o700)
    sidecar = tmp_path / "journal.sqlite3-wal"
    sidecar.touch(mode=0o644)
    sidecar.chmod(0o644)
    check_private_file(sidecar)
    assert mode(sidecar) == 0o600


def test_held_checks_the_state_directory_for_a_python_caller(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="chmod 700"), StateDir(shared, "m").held():
        pass
    assert not (shared / "journal.sqlite3").exists()


def test_a_planted_symlink_in_the_state_directory_is_refused_and_its_target_untouched(
    sim: Simulator, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    for planted in ("run.lock", "journal.sqlite3", "journal.sqlite3-wal"):
        state = tmp_path / f"state-{planted}"
        state.mkdir(mode=0o700)
        (state / planted).symlink_to(victim)
        result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state)
        assert result.exit_code == 2, (planted, result.stderr)
        assert "symlink" in result.stderr
        assert victim.read_text(encoding="utf-8") == "precious"
    assert sim.stats.requests_to("promote-scan") == 0


def test_a_state_directory_writable_by_others_is_refused(sim: Simulator, tmp_path: Path) -> None:
    state = tmp_path / "shared"
    state.mkdir()
    state.chmod(0o777)
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state)
    assert result.exit_code == 2
    assert "chmod 700" in result.stderr
    assert sim.stats.total_requests == 0


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a folder to another user")
def test_a_state_directory_of_another_user_is_refused(sim: Simulator, tmp_path: Path) -> None:
    state = tmp_path / "theirs"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state)
    assert result.exit_code == 2
    assert "another user" in result.stderr


def test_deleting_the_lock_file_frees_nothing(tmp_path: Path) -> None:
    with StateLock(tmp_path):
        (tmp_path / "run.lock").unlink()
        with pytest.raises(LockedError):
            StateLock(tmp_path).__enter__()


# --- the kept baseline --------------------------------------------------------------------


def _report(results: int, *, stopped: str | None = None) -> RunReport:
    made = [result(f"app-{n}", Outcome.COMPLETED) for n in range(results)]
    now = datetime.now(UTC)
    return RunReport(
        started_at=now,
        finished_at=now,
        duration_seconds=1.0,
        server_url="http://iq/",
        manifest="m.yaml",
        summary=Summary.of(made),
        results=made,
        stopped=stopped,
    )


def test_only_a_complete_run_replaces_the_kept_baseline(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state", "m")
    state.prepare()
    assert state.keep(_report(3))
    kept = state.kept_report.read_text(encoding="utf-8")
    assert not state.keep(_report(0)), "an empty run is no baseline"
    assert not state.keep(_report(2, stopped="stopped by SIGTERM"))
    assert state.kept_report.read_text(encoding="utf-8") == kept


DAMAGED_REPORTS = {
    "not-utf8": b'{"startedAt": "\xff\xfe',
    "nested": b"[" * 100_000 + b"]" * 100_000,
}
"""What a disk error or a stray write may leave where a report was: bytes that are not UTF-8,
or JSON nested past what the parser recurses into."""


@pytest.mark.parametrize("damage", DAMAGED_REPORTS, ids=str)
def test_a_damaged_kept_report_is_said_and_skipped_not_crashed_on(
    sim: Simulator, tmp_path: Path, damage: str
) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    state = StateDir(tmp_path / "state", "m")
    state.prepare()
    state.kept_report.parent.mkdir()
    state.kept_report.write_bytes(DAMAGED_REPORTS[damage])
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state.path)
    assert result.exit_code == 0, result.stderr
    assert "baseline.unreadable" in [e["event"] for e in events(result)]
    assert sim.stats.requests_to("promote-scan") == 1


@pytest.mark.parametrize("damage", DAMAGED_REPORTS, ids=str)
@pytest.mark.parametrize("where", ["REPORT", "--baseline"])
def test_a_damaged_report_given_to_render_is_exit_2(
    tmp_path: Path, damage: str, where: str
) -> None:
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(DAMAGED_REPORTS[damage])
    good = tmp_path / "good.json"
    good.write_text(_report(1).to_json(), encoding="utf-8")
    report, baseline = (damaged, good) if where == "REPORT" else (good, damaged)
    args = [
        "render",
        str(report),
        "--baseline",
        str(baseline),
        "--markdown",
        str(tmp_path / "r.md"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "is not an iq-promote report" in result.output
    assert "internal error" not in result.output


# --- resuming ----------------------------------------------------------------------------


def interrupted(state: Path, manifest_path: Path, digest_of: Path) -> datetime:
    """A journal holding an unfinished run of ``manifest_path`` that meant what
    ``digest_of`` means, as a killed run leaves it."""
    started = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    state.mkdir(mode=0o700, exist_ok=True)
    with Journal(state) as journal:
        journal.begin(
            str(manifest_path.resolve()), manifest_digest(load_manifest(digest_of)), started
        )
    return started


def test_a_resume_survives_an_edit_that_changes_no_step(sim: Simulator, tmp_path: Path) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 2))
    started = interrupted(tmp_path / "state", given, given)
    given.write_text("# tonight: a comment\n" + given.read_text(encoding="utf-8"), encoding="utf-8")
    result = run(
        sim, given, "--resume", "--report", tmp_path / "r.json", "--state-dir", tmp_path / "state"
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert document["startedAt"].startswith(started.isoformat()[:19]), "the same run, resumed"


def test_a_resume_after_a_change_of_steps_starts_afresh_saying_so(
    sim: Simulator, tmp_path: Path
) -> None:
    old = manifest(tmp_path / "old.yaml", scanned(sim, 2))
    given = manifest(tmp_path / "m.yaml", scanned(sim, 3))
    interrupted(tmp_path / "state", given, old)
    result = run(
        sim, given, "--resume", "--report", tmp_path / "r.json", "--state-dir", tmp_path / "state"
    )
    assert result.exit_code == 0, result.stderr
    [warning] = [e for e in events(result) if e["event"] == "run.resume_abandoned"]
    assert warning["startedAt"] == "2026-11-30T02:30:00+00:00"
    again = run(
        sim, given, "--resume", "--report", tmp_path / "r2.json", "--state-dir", tmp_path / "state"
    )
    assert again.exit_code == 0
    assert not [e for e in events(again) if e["event"] == "run.resume_abandoned"]


def test_a_plain_run_after_an_interrupted_one_suggests_resume(
    sim: Simulator, tmp_path: Path
) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    interrupted(tmp_path / "state", given, given)
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", tmp_path / "state")
    assert result.exit_code == 0
    [found] = [e for e in events(result) if e["event"] == "run.unfinished_found"]
    assert "--resume" in str(found["message"])


def test_a_resume_stopped_before_its_plan_leaves_the_run_to_resume(
    sim: Simulator, tmp_path: Path
) -> None:
    """A signal that lands while a resumed run is still planning decided nothing: the
    interrupted run it resumes stays unfinished, its accepted promotion still followed next
    time, never sent again."""
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    state = tmp_path / "state"
    interrupted(state, given, given)
    key = (0, 0, scanned(sim, 1)[0])
    with Journal(state) as journal:
        unfinished = journal.unfinished(str(given.resolve()))
        assert unfinished is not None
        journal.resume(unfinished)
        anyio.run(journal.intent, key)
        journal.submitted(key, "api/v2/evaluation/applications/x/promotion/status/1", 1)
    request = RunRequest(
        manifest=given,
        server_url=sim.base_url,
        resume=True,
        state_dir=state,
        report=tmp_path / "r.json",
        handle_signals=False,
        env={"IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"},
    )

    async def stopped_at_once() -> RunReport:
        control = RunControl()
        control.stop_submitting("stopped by SIGTERM")
        control.cancel()  # the grace ran out while the plan was being made
        return await orchestrator_run(request, control=control)

    report = anyio.run(stopped_at_once)
    assert report.results == []
    with Journal(state) as journal:
        still = journal.unfinished(str(given.resolve()))
    assert still is not None
    assert still.run_id == unfinished.run_id
    assert still.undecided == 1


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def test_the_same_manifest_written_differently_resumes_the_same_run(
    sim: Simulator, tmp_path: Path
) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    started = interrupted(tmp_path / "state", given, given)
    with _cwd(tmp_path / "state"):
        result = run(
            sim,
            Path("../m.yaml"),
            "--resume",
            "--report",
            tmp_path / "r.json",
            "--state-dir",
            tmp_path / "state",
        )
    assert result.exit_code == 0, result.stderr
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert document["startedAt"].startswith(started.isoformat()[:19])


# --- a damaged journal, a full disk ---------------------------------------------------------


def test_a_damaged_journal_is_exit_2_saying_to_move_it_aside(
    sim: Simulator, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "journal.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    result = run(sim, given, "--report", tmp_path / "r.json", "--state-dir", state)
    assert result.exit_code == 2, result.stderr
    assert "move it aside" in result.stderr
    assert sim.stats.requests_to("promote-scan") == 0


def test_an_unreadable_journal_row_is_skipped_with_a_warning(tmp_path: Path) -> None:
    key = (0, 0, "app")
    with Journal(tmp_path) as journal:
        journal.begin("m.yaml", "meaning", datetime.now(UTC))
        journal.finished(key, result("app", Outcome.COMPLETED))
    with closing(sqlite3.connect(tmp_path / JOURNAL_NAME)) as db, db:
        db.execute("UPDATE steps SET result = '{not json'")
    with Journal(tmp_path) as journal, capture_logs() as logs:
        unfinished = journal.unfinished("m.yaml")
        assert unfinished is not None
        point = journal.resume(unfinished)
    assert key not in point.prior or point.prior[key].result is None
    assert [e["event"] for e in logs] == ["journal.row_unreadable"]


def test_a_journal_that_fills_up_stops_recording_not_the_run(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal, capture_logs() as logs:
        journal.begin("m.yaml", "meaning", datetime.now(UTC))
        (pages,) = journal.db.execute("PRAGMA page_count").fetchone()
        journal.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here
        for n in range(200):
            journal.finished((0, 0, f"app-{n}"), result(f"app-{n}", Outcome.COMPLETED))
        journal.end([result("app", Outcome.COMPLETED)])
        assert journal.failure is not None
    [unwritable] = [e for e in logs if e["event"] == "journal.unwritable"]
    assert "cannot be resumed" in unwritable["consequence"]


def test_a_report_that_cannot_be_written_is_saved_in_the_state_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    state = tmp_path / "state"
    text = "version: 1\npromotions:\n  - applications: [a]\n    transitions: [{to: build}]\n"
    text = text.replace("{to: build}", "{from: build, to: build}")
    config = RunConfig(
        manifest=parse_manifest(text, env={}),
        manifest_path="m.yaml",
        state_dir=state,
        report_path=a_file / "r.json",
    )
    with pytest.raises(UnwrittenError, match="saved instead to") as failed:
        write_all(_report(2), config)
    saved = list((state / "reports").glob("unsaved-*.json"))
    assert len(saved) == 1
    assert str(saved[0]) in str(failed.value)
    assert (state / "reports" / "m.json").exists(), "the rest was still written"


@pytest.mark.parametrize(("fail_on", "code"), [(None, 74), ("critical", 1)])
def test_a_report_lost_after_the_run_keeps_the_nights_own_exit_code(
    sim: Simulator, tmp_path: Path, fail_on: str | None, code: int
) -> None:
    """A disk that fills during the night: a run that passed exits 74 (its file is missing),
    one that did not keeps its own code (here the gate's 1); both say where the report went."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    apps = scanned(sim, 1)
    text = runner_manifest(entry(apps, "{from: build, to: build}"))
    config = config_for(
        sim,
        text,
        state_dir=tmp_path / "state",
        report_path=a_file / "r.json",
        fail_on=fail_on,
        fetch_results=True,
    )
    with pytest.raises(UnwrittenError, match="saved instead to") as failed:
        anyio.run(orchestrator_run, config)
    if fail_on is not None:
        saved = next((tmp_path / "state" / "reports").glob("unsaved-*.json"))
        report = RunReport.model_validate_json(saved.read_text(encoding="utf-8"))
        assert report.policy_gate is not None
        assert report.policy_gate.failed, "the simulator's data changed: choose another app"
    assert failed.value.exit_code == code


def test_state_an_earlier_version_left_beside_the_report_is_pointed_out(
    sim: Simulator, tmp_path: Path
) -> None:
    given = manifest(tmp_path / "m.yaml", scanned(sim, 1))
    old = tmp_path / "reports" / ".iq-promote-state"
    old.mkdir(parents=True)
    result = run(sim, given, "--report", tmp_path / "reports" / "m.json")
    assert result.exit_code == 0, result.stderr
    [said] = [e for e in events(result) if e["event"] == "state.left_behind"]
    assert said["old"] == str(old)
    assert f"--state-dir {old}" in str(said["message"])
    again = run(sim, given, "--report", tmp_path / "reports" / "m.json")
    assert "state.left_behind" not in [e["event"] for e in events(again)], (
        "said once, then moved on"
    )
