"""The ``iq-promote`` command line, in process through click's CliRunner.

``run --simulate`` and ``plan --simulate`` start the embedded simulator themselves (seeded
from the manifest); the tests that need a server of their own (other credentials, stats to
inspect, an unknown application) start one in a background thread, since the command calls
``anyio.run`` itself. No test looks at a clock: the runs are small, with fast polling.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog
from click.testing import CliRunner, Result

from orchestrator.cli.main import main
from orchestrator.iq.models import Stage
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings
from orchestrator.manifest.model import parse_manifest
from orchestrator.promote.lock import StateLock
from orchestrator.report.results import ViolationCounts
from orchestrator.report.violations import count_violations
from orchestrator.runner import connection
from orchestrator.runner.connection import simulator_config
from orchestrator.simulator import Simulator
from orchestrator.simulator.portfolio import seed_portfolio
from orchestrator.simulator.reportdata import policy_report

ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]
"""``with threaded_simulator_factory(**overrides) as sim:`` (tests/conftest.py)."""

REPO = Path(__file__).parent.parent
EXAMPLES = sorted((REPO / "manifests").glob("*.yaml"))

FAST_POLLING = "polling: {initialInterval: 0.05, maxInterval: 0.2}"

CRITICAL_APP = "risky-app"
"""On the ``--simulate`` server, its first new report has critical violations."""
CLEAN_APP = "app-155"
"""On the ``--simulate`` server, its first new report has no critical violation, but a
severe one (see :func:`first_verdict`)."""


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """The command configures structlog for the whole process (a level filter, a renderer):
    put back what the other tests expect."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """Run ``iq-promote ARGS`` in process, without the caller's IQ_* environment."""
    clean: dict[str, str | None] = {
        "IQ_SERVER_URL": None,
        "IQ_USERNAME": None,
        "IQ_PASSWORD": None,
    }
    return CliRunner().invoke(main, [str(a) for a in args], env=clean | (env or {}))


SIMULATOR_PASSWORD = "admin123"
"""The simulator's default password."""


def server_env(password: str = SIMULATOR_PASSWORD) -> dict[str, str | None]:
    return {"IQ_USERNAME": "admin", "IQ_PASSWORD": password}


def run_against(
    sim: Simulator, manifest: Path, *args: str | Path, password: str = SIMULATOR_PASSWORD
) -> Result:
    """``iq-promote run MANIFEST --server-url SIM ARGS``, with the credentials from the
    environment, as a cron job has them."""
    return invoke("run", manifest, "--server-url", sim.base_url, *args, env=server_env(password))


def events(result: Result) -> list[dict[str, Any]]:
    """The JSON log lines of the command's stderr."""
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


def event_names(result: Result) -> list[str]:
    return [e["event"] for e in events(result)]


def write_manifest(path: Path, *entries: tuple[list[str], str]) -> Path:
    """A manifest of ``(public ids, transitions)`` entries, with fast polling."""
    lines = ["version: 1", "concurrency: 8", FAST_POLLING, "promotions:"]
    for apps, transitions in entries:
        lines += [f"  - applications: [{', '.join(apps)}]", f"    transitions: {transitions}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


REEVALUATE = "[{from: build, to: build}]"
PROMOTE = "[{from: build, to: stage-release}]"


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def first_verdict(public_id: str) -> ViolationCounts:
    """The violations of the first new report of ``public_id`` on the server ``--simulate``
    starts: its report ids come from a seeded stream, so a run of one application is
    predictable."""
    text = (
        f"version: 1\npromotions:\n  - applications: [{public_id}]\n    transitions: {REEVALUATE}\n"
    )
    config = simulator_config(parse_manifest(text, source="verdict.yaml", env={}))
    portfolio = seed_portfolio(config)
    app = portfolio.by_public_id(public_id)
    assert app is not None
    report = portfolio.add_report(app.id, Stage.BUILD, reevaluation=True)
    return count_violations(policy_report(config.seed, app, report))


# --- validate and schema ------------------------------------------------------------------


@pytest.mark.parametrize("manifest", EXAMPLES, ids=lambda p: p.name)
def test_validate_accepts_the_example_manifests(manifest: Path) -> None:
    result = invoke("validate", manifest)
    assert result.exit_code == 0, result.stderr
    assert f"{manifest}: valid" in result.stdout


def test_validate_names_file_line_and_field_of_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "version: 1\n"
        "promotions:\n"
        "  - applications: [payments-api]\n"
        "    transitions:\n"
        "      - {from: built, to: release}\n",
        encoding="utf-8",
    )
    result = invoke("validate", broken)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        f"{broken}:5: promotions[0].transitions[0].from: 'built' is not one of build, "
        in result.stderr
    )


def test_validate_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("validate", tmp_path / "absent.yaml")
    assert result.exit_code == 2
    assert "absent.yaml: cannot read" in result.stderr


@pytest.mark.parametrize("which", ["manifest", "report"])
def test_schema_prints_what_is_committed(which: str) -> None:
    result = invoke("schema", which)
    assert result.exit_code == 0
    committed = REPO / "docs" / "schema" / f"{which}.schema.json"
    assert result.stdout == committed.read_text(encoding="utf-8"), (
        f"regenerate with: iq-promote schema {which} > docs/schema/{which}.schema.json"
    )


# --- a whole run, with every output ----------------------------------------------------------


@dataclass(frozen=True)
class FullRun:
    result: Result
    manifest: Path
    report: Path
    states: Path
    outputs: dict[str, Path]

    @property
    def document(self) -> dict[str, Any]:
        return read_json(self.report)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> FullRun:
    """``run --simulate`` of two re-evaluations and one promotion, with every output asked for."""
    saved = structlog.get_config()
    root = tmp_path_factory.mktemp("full")
    manifest = write_manifest(
        root / "nightly.yaml", (["alpha-api", "beta-web"], REEVALUATE), (["gamma-svc"], PROMOTE)
    )
    outputs = {
        "--junit": root / "out" / "junit.xml",
        "--markdown": root / "out" / "summary.md",
        "--metrics": root / "out" / "iq.prom",
        "--html": root / "out" / "report.html",
    }
    report, states = root / "out" / "nightly.json", root / "state"
    options = [str(item) for pair in outputs.items() for item in pair]
    result = invoke(
        "run", manifest, "--simulate", "--report", report, "--state-dir", states, *options
    )
    structlog.configure(**saved)
    return FullRun(result, manifest, report, states, outputs)


def test_a_run_that_completes_exits_0_and_writes_every_output(full_run: FullRun) -> None:
    assert full_run.result.exit_code == 0, full_run.result.stderr
    document = full_run.document
    assert document["summary"] == {
        "total": 3,
        "byStatus": {
            "COMPLETED": 3,
            "FAILED": 0,
            "ERROR": 0,
            "SKIPPED": 0,
            "TIMED_OUT": 0,
            "CANCELLED": 0,
        },
        "notApplicable": 0,
    }
    assert [r["publicId"] for r in document["results"]] == ["alpha-api", "beta-web", "gamma-svc"]
    junit = ET.parse(full_run.outputs["--junit"]).getroot()  # noqa: S314 - our own output
    assert len(junit.findall(".//testcase")) == 3
    assert "iq_promote_promotions{" in full_run.outputs["--metrics"].read_text(encoding="utf-8")
    assert full_run.outputs["--markdown"].read_text(encoding="utf-8").strip()
    assert full_run.outputs["--html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    kept = full_run.states / "reports" / "nightly.json"
    assert read_json(kept)["results"] == document["results"]
    assert document["baseline"] is None  # the first run has nothing to compare with


def test_the_report_validates_against_the_printed_schema(full_run: FullRun) -> None:
    schema = json.loads(invoke("schema", "report").stdout)
    jsonschema.validate(full_run.document, schema)


def test_re_evaluations_get_violation_counts_and_promotions_do_not(full_run: FullRun) -> None:
    counted = {r["publicId"]: r["violations"] is not None for r in full_run.document["results"]}
    assert counted == {"alpha-api": True, "beta-web": True, "gamma-svc": False}


def test_json_logs_off_a_terminal_end_with_the_summary(full_run: FullRun) -> None:
    names = event_names(full_run.result)
    assert "simulator.started" in names
    assert names[-1] == "run.summary"
    summary = events(full_run.result)[-1]
    assert summary["report"] == str(full_run.report)
    assert summary["total"] == 3
    assert summary["byStatus"]["COMPLETED"] == 3
    assert full_run.result.stdout == ""


@pytest.mark.parametrize(
    ("flag", "counted"), [("--fetch-results", True), ("--no-fetch-results", False)]
)
def test_fetch_results_flag_decides_for_every_promotion(
    full_run: FullRun, tmp_path: Path, flag: str, counted: bool
) -> None:
    report = tmp_path / "report.json"
    result = invoke(
        "run", full_run.manifest, "--simulate", "--report", report, "--no-baseline", flag
    )
    assert result.exit_code == 0, result.stderr
    assert {r["violations"] is not None for r in read_json(report)["results"]} == {counted}


# --- the baseline -----------------------------------------------------------------------------


def test_a_second_run_compares_with_the_first_runs_kept_copy(
    full_run: FullRun, tmp_path: Path
) -> None:
    states = tmp_path / "state"
    shutil.copytree(full_run.states, states)
    kept = states / "reports" / "nightly.json"
    first = read_json(kept)
    report = tmp_path / "again.json"
    result = invoke(
        "run", full_run.manifest, "--simulate", "--report", report, "--state-dir", states
    )
    assert result.exit_code == 0, result.stderr
    document = read_json(report)
    assert document["baseline"] is not None
    assert document["baseline"]["baselinePath"] == str(kept)
    assert document["baseline"]["baselineStartedAt"] == first["startedAt"]
    assert "baseline" in events(result)[-1]  # run.summary carries the changes' counts
    assert read_json(kept)["startedAt"] == document["startedAt"]  # and this run is kept next


@pytest.mark.parametrize("no_baseline", [True, False])
def test_no_baseline_compares_with_nothing(
    full_run: FullRun, tmp_path: Path, no_baseline: bool
) -> None:
    """Dry runs, which compare like any run (without the flag, with the kept copy)."""
    states = tmp_path / "state"
    shutil.copytree(full_run.states, states)
    report = tmp_path / "again.json"
    flag = ["--no-baseline"] if no_baseline else []
    result = invoke(
        "run",
        full_run.manifest,
        "--simulate",
        "--dry-run",
        "--report",
        report,
        "--state-dir",
        states,
        *flag,
    )
    assert result.exit_code == 0, result.stderr
    baseline = read_json(report)["baseline"]
    if no_baseline:
        assert baseline is None
    else:
        assert baseline["baselinePath"] == str(states / "reports" / "nightly.json")


def test_a_given_baseline_is_compared_with(full_run: FullRun, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = invoke(
        "run",
        full_run.manifest,
        "--simulate",
        "--dry-run",
        "--report",
        report,
        "--baseline",
        full_run.report,
    )
    assert result.exit_code == 0, result.stderr
    assert read_json(report)["baseline"]["baselinePath"] == str(full_run.report)


def test_a_baseline_that_is_not_a_report_is_refused_before_anything_is_sent(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    not_a_report = tmp_path / "previous.json"
    not_a_report.write_text('{"hello": "world"}\n', encoding="utf-8")
    report = tmp_path / "report.json"
    with threaded_simulator_factory() as sim:
        pid = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([pid], REEVALUATE))
        result = run_against(sim, manifest, "--report", report, "--baseline", not_a_report)
        requests = sim.stats.total_requests
    assert result.exit_code == 2
    assert "is not an iq-promote report" in result.stderr
    assert requests == 0
    assert not report.exists()


# --- exit codes -------------------------------------------------------------------------------


def test_the_example_manifest_exits_0_and_skips_what_was_never_released(
    tmp_path: Path,
) -> None:
    report = tmp_path / "example.json"
    result = invoke(
        "run", REPO / "manifests" / "example.yaml", "--simulate", "--report", report, "--quiet"
    )
    assert result.exit_code == 0, result.stderr
    document = read_json(report)
    not_completed = [r for r in document["results"] if r["status"] != "COMPLETED"]
    assert not_completed, "some Retail application was never released"
    assert {(r["status"], r["notApplicable"], r["reason"]) for r in not_completed} == {
        ("SKIPPED", "noSourceScan", "no release scan")
    }
    assert {r["organization"] for r in not_completed} == {"Retail"}
    assert document["summary"]["notApplicable"] == len(not_completed)
    assert "legacy-pos" not in {r["publicId"] for r in document["results"]}, "excluded"


def test_the_nightly_manifest_exits_0_on_a_healthy_portfolio(tmp_path: Path) -> None:
    """What never reached operate or release is skipped, not failed: only a real failure
    would make the nightly run exit 1. Polled faster than at night, the manifest otherwise
    as shipped."""
    shipped = (REPO / "manifests" / "nightly.yaml").read_text(encoding="utf-8")
    fast = shipped.replace("initialInterval: 5", "initialInterval: 0.05")
    manifest = tmp_path / "nightly.yaml"
    manifest.write_text(fast.replace("maxInterval: 60", "maxInterval: 0.2"), encoding="utf-8")
    report = tmp_path / "nightly.json"
    result = invoke("run", manifest, "--simulate", "--report", report, "--quiet")
    assert result.exit_code == 0, result.stderr
    document = read_json(report)
    statuses = {(r["status"], r["notApplicable"]) for r in document["results"]}
    assert statuses == {("COMPLETED", None), ("SKIPPED", "noSourceScan")}
    assert "plan.selects_nothing" not in result.stderr, "sandbox-playground is left out"


def test_fail_on_critical_exits_1_and_names_the_report(tmp_path: Path) -> None:
    verdict = first_verdict(CRITICAL_APP)
    assert verdict.critical > 0, "the simulator's data changed: choose another CRITICAL_APP"
    manifest = write_manifest(tmp_path / "gate.yaml", ([CRITICAL_APP], PROMOTE))
    report = tmp_path / "gate.json"
    result = invoke("run", manifest, "--simulate", "--report", report, "--fail-on", "critical")
    assert result.exit_code == 1, result.stderr
    document = read_json(report)
    (promotion,) = document["results"]
    assert promotion["status"] == "COMPLETED"
    # --fail-on counts violations of promotions too, not only of re-evaluations
    assert promotion["violations"] == verdict.model_dump(by_alias=True)
    gate = {
        "failOn": "critical",
        "crossed": [f"{CRITICAL_APP} (stage-release)"],
        "unchecked": 0,
        "uncheckedReports": [],
    }
    assert document["policyGate"] == gate
    assert events(result)[-1]["policyGate"] == gate


@pytest.mark.parametrize(("threshold", "code"), [("critical", 0), ("severe", 1)])
def test_fail_on_a_report_with_severe_but_no_critical_violations(
    tmp_path: Path, threshold: str, code: int
) -> None:
    verdict = first_verdict(CLEAN_APP)
    assert verdict.critical == 0, "the simulator's data changed: choose another CLEAN_APP"
    assert verdict.severe > 0, "the simulator's data changed: choose another CLEAN_APP"
    manifest = write_manifest(tmp_path / "gate.yaml", ([CLEAN_APP], REEVALUATE))
    report = tmp_path / "gate.json"
    result = invoke("run", manifest, "--simulate", "--report", report, "--fail-on", threshold)
    assert result.exit_code == code, result.stderr
    document = read_json(report)
    assert document["results"][0]["violations"] == verdict.model_dump(by_alias=True)
    crossed = [f"{CLEAN_APP} (build)"] if code else []
    assert document["policyGate"] == {
        "failOn": threshold,
        "crossed": crossed,
        "unchecked": 0,
        "uncheckedReports": [],
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--junit", "{report}"], "--junit and --report both write {report}"),
        (["--html", "{out}", "--markdown", "{out}"], "--html and --markdown both write {out}"),
    ],
)
def test_an_output_path_clash_is_a_usage_error(
    tmp_path: Path, options: list[str], message: str
) -> None:
    paths = {"report": str(tmp_path / "r.json"), "out": str(tmp_path / "out.txt")}
    manifest = write_manifest(tmp_path / "m.yaml", (["alpha-api"], REEVALUATE))
    given = [o.format(**paths) for o in options]
    result = invoke("run", manifest, "--simulate", "--report", paths["report"], *given)
    assert result.exit_code == 2
    assert message.format(**paths) in result.stderr
    assert not (tmp_path / "r.json").exists()
    assert not (tmp_path / "out.txt").exists()


def test_dry_run_exits_0_when_every_application_resolves_and_sends_nothing(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    report, states = tmp_path / "dry.json", tmp_path / "state"
    with threaded_simulator_factory() as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:3]]
        manifest = write_manifest(tmp_path / "dry.yaml", (pids, REEVALUATE))
        result = run_against(sim, manifest, "--dry-run", "--report", report, "--state-dir", states)
        promotions = sim.stats.requests_to("promote-scan")
        applications = sim.stats.requests_to("applications")
    assert result.exit_code == 0, result.stderr
    document = read_json(report)
    assert document["dryRun"] is True
    assert [(r["publicId"], r["status"], r["reason"]) for r in document["results"]] == [
        (pid, "SKIPPED", "dry run: nothing sent") for pid in pids
    ]
    assert applications > 0  # it did resolve them on the server
    assert promotions == 0
    assert not (states / "reports" / "dry.json").exists()  # a dry run is nobody's baseline


def test_dry_run_exits_1_when_an_application_is_unknown(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    report = tmp_path / "dry.json"
    with threaded_simulator_factory() as sim:
        known = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "dry.yaml", ([known, "no-such-app"], REEVALUATE))
        result = run_against(sim, manifest, "--dry-run", "--report", report)
        promotions = sim.stats.requests_to("promote-scan")
    assert result.exit_code == 1, result.stderr
    statuses = {r["publicId"]: r["status"] for r in read_json(report)["results"]}
    assert statuses == {known: "SKIPPED", "no-such-app": "ERROR"}
    assert promotions == 0


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_wrong_password_exits_3_sends_no_promotion_and_never_shows_it(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    wrong = "Wr0ng-Pa55-7f3c9e"
    report, states = tmp_path / "report.json", tmp_path / "state"
    with threaded_simulator_factory(password="the-server-s3cret") as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:2]]
        manifest = write_manifest(tmp_path / "m.yaml", (pids, REEVALUATE))
        result = run_against(
            sim,
            manifest,
            "--report",
            report,
            "--state-dir",
            states,
            "--log-level",
            "debug",
            password=wrong,
        )
        asked = sim.stats.total_requests
        promotions = sim.stats.requests_to("promote-scan")
        accepted = dict(sim.stats.promotions_accepted)
    assert result.exit_code == 3
    assert "refused the credentials (HTTP 401)" in result.stderr
    assert "IQ_PASSWORD" in result.stderr  # says what to check
    assert asked > 0  # it did ask the server
    assert promotions == 0
    assert not accepted
    basic = base64.b64encode(f"admin:{wrong}".encode()).decode()  # as the header carries it
    for secret in (wrong, basic):
        assert secret not in result.stdout
        assert secret not in result.stderr
    written = _files_under(tmp_path)
    assert states / "run.lock" in written  # the state directory was used: its files are checked
    for path in written:
        content = path.read_bytes()
        assert wrong.encode() not in content, path
        assert basic.encode() not in content, path


def test_an_unreachable_server_exits_3_and_still_writes_the_night(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the port. The command line has no retry option, so the client gets
    a quick retry policy the way a program would (``ClientSettings.retry``): the refused
    connections, the circuit breaker and ``--server-down-timeout`` are all real."""
    quick = RetryPolicy(backoff_base=0.01, backoff_cap=0.05)
    monkeypatch.setattr(connection, "ClientSettings", partial(ClientSettings, retry=quick))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    manifest = write_manifest(tmp_path / "m.yaml", (["alpha-api"], REEVALUATE))
    report, metrics = tmp_path / "report.json", tmp_path / "iq.prom"
    result = invoke(
        "run",
        manifest,
        "--server-url",
        f"http://127.0.0.1:{closed_port}",
        "--server-down-timeout",
        "1",
        "--report",
        report,
        "--metrics",
        metrics,
        env=server_env(),
    )
    assert result.exit_code == 3, result.stderr
    assert "iq-promote: error: server unavailable for more than 1 s" in result.stderr
    assert "server.unavailable" in event_names(result)
    # A dashboard sees the failed night, not last night's numbers.
    document = read_json(report)
    assert document["exitCode"] == 3
    assert document["results"] == []
    assert "server unavailable" in document["error"]
    text = metrics.read_text()
    assert 'iq_promote_last_run_exit_code{manifest="m"} 3' in text
    assert 'iq_promote_last_success_timestamp_seconds{manifest="m"} 0' in text


def test_missing_credentials_are_a_usage_error(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", (["alpha-api"], REEVALUATE))
    result = invoke(
        "run",
        manifest,
        "--server-url",
        "http://127.0.0.1:9",
        "--report",
        tmp_path / "r.json",
        env={"IQ_USERNAME": "admin"},
    )
    assert result.exit_code == 2
    assert "no credentials" in result.stderr


def test_a_locked_state_directory_exits_75_and_writes_no_report(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    report, states = tmp_path / "report.json", tmp_path / "state"
    with threaded_simulator_factory() as sim, StateLock(states):
        pid = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([pid], REEVALUATE))
        result = run_against(sim, manifest, "--report", report, "--state-dir", states)
        requests = sim.stats.total_requests
    assert result.exit_code == 75
    assert "another iq-promote run" in result.stderr
    assert requests == 0
    assert not report.exists()
    assert not (states / "reports").exists()


# --- plan -------------------------------------------------------------------------------------


def test_plan_json_lists_every_step(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.yaml",
        (
            ["alpha-api", "beta-web"],
            "[{from: build, to: stage-release}, {from: stage-release, to: release}]",
        ),
        (["gamma-svc"], REEVALUATE),
    )
    result = invoke("plan", manifest, "--simulate", "--json", "--log-level", "warning")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["total"] == 5
    assert [(s["publicId"], s["entry"], s["transition"]) for s in plan["steps"]] == [
        ("alpha-api", 0, "build -> stage-release"),
        ("alpha-api", 0, "stage-release -> release"),
        ("beta-web", 0, "build -> stage-release"),
        ("beta-web", 0, "stage-release -> release"),
        ("gamma-svc", 1, "build -> build"),
    ]
    assert [s["position"] for s in plan["steps"]] == list(range(5))
    assert not any("error" in s for s in plan["steps"])


def test_plan_marks_unknown_applications_and_sends_no_promotion(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    with threaded_simulator_factory() as sim:
        known = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([known, "no-such-app"], REEVALUATE))
        as_json = invoke("plan", manifest, "--server-url", sim.base_url, "--json", env=server_env())
        as_text = invoke("plan", manifest, "--server-url", sim.base_url, env=server_env())
        promotions = sim.stats.requests_to("promote-scan")
    assert as_json.exit_code == 1, as_json.stderr  # as a dry run: a step cannot resolve
    steps = {s["publicId"]: s for s in json.loads(as_json.stdout)["steps"]}
    assert "error" not in steps[known]
    assert "not known" in steps["no-such-app"]["error"]
    assert as_text.exit_code == 1, as_text.stderr
    assert "ERROR: " in as_text.stdout
    assert as_text.stdout.strip().splitlines()[-1] == (
        "2 promotions for 1 applications; 1 cannot run; 0 skipped"
    )
    assert "promotions[0]: 1 selected, 1 to run, 1 unknown to the server" in as_text.stdout
    assert promotions == 0


def test_plan_counts_per_entry_what_is_selected_skipped_and_why(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.yaml"
    with threaded_simulator_factory(apps=40) as sim:
        portfolio = sim.portfolio
        deployed = [a for a in portfolio.applications if portfolio.latest(a.id, Stage.OPERATE)]
        kept_out = deployed[0].public_id
        manifest.write_text(
            "version: 1\npromotions:\n"
            "  - name: deployed\n    all: true\n"
            f"    exclude: [{kept_out}, {kept_out}-typo]\n"
            "    transitions: [{from: operate, to: operate}]\n",
            encoding="utf-8",
        )
        server = ("--server-url", sim.base_url)
        as_json = invoke("plan", manifest, *server, "--json", env=server_env())
        as_text = invoke("plan", manifest, *server, env=server_env())
        promotions = sim.stats.requests_to("promote-scan")
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    never = len(portfolio.applications) - len(deployed)
    assert document["entries"] == [
        {
            "entry": 0,
            "name": "deployed",
            "selected": 39,
            "excluded": 1,
            "skipped": {"no operate scan": never},
            "toRun": len(deployed) - 1,
            "unresolved": 0,
        }
    ]
    skipped = [s for s in document["steps"] if "skipped" in s]
    assert len(skipped) == never
    assert {(s["skipped"], s["notApplicable"]) for s in skipped} == {
        ("no operate scan", "noSourceScan")
    }
    (warning,) = document["warnings"]
    assert (warning["entry"], warning["field"], warning["value"]) == (
        0,
        "exclude[1]",
        f"{kept_out}-typo",
    )
    assert "plan.selects_nothing" in as_json.stderr, "a warning on stderr too"
    assert as_text.exit_code == 0, as_text.stderr
    assert (
        f"promotions[0] deployed: 39 selected, 1 excluded, {never} skipped "
        f"(no operate scan: {never}), {len(deployed) - 1} to run"
    ) in as_text.stdout
    assert "SKIPPED: no operate scan" in as_text.stdout
    assert promotions == 0


def test_a_name_two_organizations_share_exits_2_at_the_entrys_line(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\npromotions:\n"
        "  - applications: [alpha-api]\n    transitions: [{from: build, to: build}]\n"
        "  - organization: Core\n    transitions: [{from: build, to: build}]\n",
        encoding="utf-8",
    )
    with threaded_simulator_factory(extra_organizations=("Payments/Core", "Platform/Core")) as sim:
        planned = invoke("plan", manifest, "--server-url", sim.base_url, env=server_env())
        ran = run_against(sim, manifest, "--report", tmp_path / "r.json")
        promotions = sim.stats.requests_to("promote-scan")
    for result in (planned, ran):
        assert result.exit_code == 2, result.stderr
        assert f"{manifest}:5: promotions[1].organization: 2 organizations are named 'Core'" in (
            result.stderr
        )
        assert "'Payments/Core'" in result.stderr
        assert "'Platform/Core'" in result.stderr
    assert promotions == 0, "nothing is sent before the manifest is settled"


# --- logs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_leaves_out_the_info_events(tmp_path: Path, quiet: bool) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", (["alpha-api"], REEVALUATE))
    report = tmp_path / "r.json"
    args: list[str | Path] = ["run", manifest, "--simulate", "--dry-run", "--report", report]
    result = invoke(*args, *(["--quiet"] if quiet else []))
    assert result.exit_code == 0, result.stderr
    info = [e["event"] for e in events(result) if e["level"] == "info"]
    if quiet:
        assert info == []
        assert result.stderr == ""
    else:
        assert "run.summary" in info
    assert report.exists()


def test_progress_events_off_a_terminal_and_no_secret_anywhere(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    """An evaluation longer than the progress interval: one run.progress at least, before
    run.summary. The password is a custom one, so finding it would be a leak."""
    secret = "Cust0m-Pa55-d41d8c"
    report, states = tmp_path / "r.json", tmp_path / "state"
    slow = {"eval_time": 1.5, "eval_sigma": 0.0, "eval_noise": 0.0, "password": secret}
    with threaded_simulator_factory(**slow) as sim:
        pid = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([pid], REEVALUATE))
        result = run_against(
            sim,
            manifest,
            "--report",
            report,
            "--state-dir",
            states,
            "--progress-interval",
            "1",
            password=secret,
        )
    assert result.exit_code == 0, result.stderr
    names = event_names(result)
    assert "run.progress" in names
    assert names.index("run.progress") < names.index("run.summary")
    progress = events(result)[names.index("run.progress")]
    assert progress["total"] == 1
    assert set(progress) >= {"finished", "inFlight", "byStatus", "elapsedSeconds", "etaSeconds"}
    assert secret not in result.stderr
    assert secret not in result.stdout
    for path in _files_under(tmp_path):
        assert secret.encode() not in path.read_bytes(), path
