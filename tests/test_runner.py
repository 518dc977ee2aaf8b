"""Whole runs against the real simulator: manifest in, report out."""

from __future__ import annotations

import gc
import itertools
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from structlog.testing import capture_logs

from orchestrator import defaults
from orchestrator.errors import AuthError
from orchestrator.iq.firewall_models import OwnerType
from orchestrator.iq.models import Stage
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import parse_manifest
from orchestrator.promote.events import StepKey
from orchestrator.promote.polling import BackoffSchedule
from orchestrator.promote.progress import ProgressTracker
from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts
from orchestrator.report.run_report import RunReport
from orchestrator.report.violations import count_violations
from orchestrator.runner.config import RunConfig
from orchestrator.runner.run import run
from orchestrator.simulator import FaultConfig, Simulator
from orchestrator.simulator.firewall import seed_firewall
from orchestrator.simulator.reportdata import policy_report

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
FAST_POLLS = BackoffSchedule(initial=0.02, factor=1.5, cap=0.2)


def config_for(
    sim: Simulator,
    manifest_text: str,
    *,
    password: str = "admin123",  # noqa: S107 - the simulator's default
    **overrides: Any,
) -> RunConfig:
    manifest = parse_manifest(manifest_text, source="test.yaml", env={})
    fields: dict[str, Any] = {
        "manifest": manifest,
        "manifest_path": "test.yaml",
        "client": ClientSettings(
            base_url=sim.base_url,
            credentials=Credentials("admin", password),
            retry=RetryPolicy(backoff_base=0.02, backoff_cap=0.2),
        ),
        "concurrency": 4,
        "promotion_timeout": 30.0,
        "handle_signals": False,
        "strategy": FAST_POLLS,
    }
    fields.update(overrides)
    return RunConfig(**fields)


def manifest(*entries: str, concurrency: int = 4) -> str:
    return f"version: 1\nconcurrency: {concurrency}\npromotions:\n" + "".join(entries)


def entry(apps: list[str], *transitions: str) -> str:
    lines = f"  - applications: [{', '.join(apps)}]\n    transitions:\n"
    return lines + "".join(f"      - {t}\n" for t in transitions)


@pytest.fixture
async def portfolio(simulator: Simulator) -> list[str]:
    """Public ids of the default simulator's applications."""
    return [app.public_id for app in simulator.portfolio.applications][:6]


@pytest.mark.anyio
async def test_chains_complete_in_order_with_absolute_links(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(
        entry(
            portfolio[:3], "{from: build, to: stage-release}", "{from: stage-release, to: release}"
        )
    )
    with anyio.fail_after(30):
        report = await run(config_for(simulator, text))
    assert report.summary.by_status[Outcome.COMPLETED] == 6
    assert report.succeeded
    assert [(r.public_id, r.transition_index) for r in report.results] == [
        (pid, i) for pid in portfolio[:3] for i in (0, 1)
    ]
    for result in report.results:
        assert result.report_html_url
        assert result.report_html_url.startswith(simulator.base_url)
        assert result.report_data_url
        assert result.status_url
        assert result.attempts == 1
        assert result.polls >= 1
        assert result.submitted_at
        assert result.finished_at
        assert result.duration_seconds is not None


@pytest.mark.anyio
async def test_the_collector_runs_at_the_runs_pace_and_is_given_back(
    simulator: Simulator, portfolio: list[str]
) -> None:
    """A run collects cyclic garbage less often (its promotions allocate by the thousand a
    second); a Python caller's own pace is back when it returns."""
    seen: list[tuple[int, int, int]] = []

    class Watching(ProgressTracker):
        def finished(self, key: StepKey, result: PromotionResult) -> None:
            seen.append(gc.get_threshold())
            super().finished(key, result)

    callers = (900, 11, 12)
    before = gc.get_threshold()
    gc.set_threshold(*callers)
    try:
        text = manifest(entry(portfolio[:2], "{from: build, to: build}"))
        with anyio.fail_after(30):
            report = await run(config_for(simulator, text, progress=Watching()))
        assert gc.get_threshold() == callers
    finally:
        gc.set_threshold(*before)
    assert report.succeeded
    assert seen == [defaults.COLLECTOR_THRESHOLDS] * 2


@pytest.mark.anyio
async def test_runs_side_by_side_keep_the_pace_until_the_last_one_ends(
    simulator: Simulator, portfolio: list[str]
) -> None:
    """Two runs in one process, the first to start ending first: the second keeps the run's
    pace to its end, and the caller's comes back after it."""
    seen: list[tuple[int, int, int]] = []
    started = anyio.Event()

    class Starting(ProgressTracker):
        def planned(self, total: int, carried: Any = None) -> None:
            started.set()
            super().planned(total, carried)

    class Watching(ProgressTracker):
        def finished(self, key: StepKey, result: PromotionResult) -> None:
            seen.append(gc.get_threshold())
            super().finished(key, result)

    short = manifest(entry(portfolio[:1], "{from: build, to: build}"))
    steps = ["{from: build, to: build}"] * 4
    long = manifest(entry(portfolio[1:4], *steps), concurrency=1)
    callers = (900, 11, 12)
    before = gc.get_threshold()
    gc.set_threshold(*callers)
    reports: list[RunReport] = []
    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:

                async def first() -> None:
                    reports.append(await run(config_for(simulator, short, progress=Starting())))

                tg.start_soon(first)
                await started.wait()
                reports.append(await run(config_for(simulator, long, progress=Watching())))
        assert gc.get_threshold() == callers
    finally:
        gc.set_threshold(*before)
    assert [len(r.results) for r in reports] == [1, 12]  # the short one ended first
    assert seen == [defaults.COLLECTOR_THRESHOLDS] * 12


@pytest.mark.anyio
async def test_unknown_application_is_an_error_and_the_rest_run(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(entry([portfolio[0], "no-such-app"], "{from: build, to: build}"))
    with anyio.fail_after(30):
        report = await run(config_for(simulator, text))
    by_id = {r.public_id: r for r in report.results}
    assert by_id[portfolio[0]].status is Outcome.COMPLETED
    assert by_id["no-such-app"].status is Outcome.ERROR
    assert "not known" in (by_id["no-such-app"].reason or "")
    assert not report.succeeded


@pytest.mark.anyio
async def test_failed_evaluation_skips_the_rest_of_its_chain(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(
        faults=FaultConfig(failing_apps=("doomed-app",)), extra_applications=(("doomed-app", None),)
    ) as sim:
        healthy = sim.portfolio.applications[0].public_id
        text = manifest(
            entry(
                ["doomed-app", healthy],
                "{from: build, to: stage-release}",
                "{from: stage-release, to: release}",
            )
        )
        with anyio.fail_after(30):
            report = await run(config_for(sim, text))
    statuses = [(r.public_id, r.status) for r in report.results]
    assert statuses == [
        ("doomed-app", Outcome.FAILED),
        ("doomed-app", Outcome.SKIPPED),
        (healthy, Outcome.COMPLETED),
        (healthy, Outcome.COMPLETED),
    ]
    failed, skipped = report.results[0], report.results[1]
    assert failed.reason
    assert skipped.reason
    assert "ended FAILED" in skipped.reason


@pytest.mark.anyio
async def test_slow_evaluation_times_out(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(eval_time=30.0) as sim:
        pid = sim.portfolio.applications[0].public_id
        text = manifest(entry([pid], "{from: build, to: build}"))
        with anyio.fail_after(30):
            report = await run(config_for(sim, text, promotion_timeout=0.5))
    (result,) = report.results
    assert result.status is Outcome.TIMED_OUT
    assert result.status_url
    assert result.polls >= 1


@pytest.mark.anyio
async def test_throttling_and_server_errors_are_retried_without_losing_anything(
    simulator_factory: SimulatorFactory,
) -> None:
    faults = FaultConfig(fail_rate=0.15, drop_rate=0.05, throttle_queue_depth=2, retry_after=0.05)
    async with simulator_factory(faults=faults, workers=2, seed=7) as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:12]]
        text = manifest(entry(pids, "{from: build, to: build}"), concurrency=8)
        with anyio.fail_after(60):
            report = await run(config_for(sim, text, concurrency=8))
        accepted = dict(sim.stats.promotions_accepted)
    assert report.summary.by_status[Outcome.COMPLETED] == 12
    assert sum(r.attempts for r in report.results) > 12  # some POSTs were retried
    assert all(count == 1 for count in accepted.values())  # but none evaluated twice
    assert len(accepted) == 12


@pytest.mark.anyio
async def test_wrong_credentials_stop_before_any_promotion(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(entry(portfolio[:2], "{from: build, to: build}"))
    with anyio.fail_after(30), pytest.raises(AuthError, match="401"):
        await run(config_for(simulator, text, password="wrong-password"))
    assert not simulator.stats.promotions_accepted


@pytest.mark.anyio
async def test_works_behind_a_context_path(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(context_path="/iq") as sim:
        assert sim.base_url.endswith("/iq/")
        pid = sim.portfolio.applications[0].public_id
        text = manifest(entry([pid], "{from: build, to: release}"))
        with anyio.fail_after(30):
            report = await run(config_for(sim, text))
    (result,) = report.results
    assert result.status is Outcome.COMPLETED
    assert result.status_url
    assert "/iq/api/v2/evaluation/" in result.status_url
    assert result.report_html_url
    assert "/iq/ui/links/" in result.report_html_url


@pytest.mark.anyio
async def test_concurrency_bounds_evaluations_and_one_app_runs_one_at_a_time(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(workers=16, eval_time=0.05) as sim:
        pids = [a.public_id for a in sim.portfolio.applications[:10]]
        text = manifest(
            entry(pids, "{from: build, to: build}"),
            entry(pids[:3], "{from: release, to: release}"),
            concurrency=3,
        )
        with anyio.fail_after(60):
            report = await run(config_for(sim, text, concurrency=3))
        records = list(sim.stats.evaluations)
        max_running = sim.stats.max_running
    assert report.succeeded
    assert max_running <= 3
    by_app: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        by_app.setdefault(record.application_id, []).append(
            (record.enqueued_at, record.finished_at)
        )
    for spans in by_app.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end


@pytest.mark.anyio
async def test_dry_run_sends_no_promotion(simulator: Simulator, portfolio: list[str]) -> None:
    text = manifest(entry(portfolio[:3], "{from: build, to: build}"))
    report = await run(config_for(simulator, text, dry_run=True))
    assert report.dry_run
    assert {r.status for r in report.results} == {Outcome.SKIPPED}
    assert not simulator.stats.promotions_accepted


@pytest.mark.anyio
async def test_report_validates_against_its_schema_and_the_logs_hold_no_secret(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(
        entry(portfolio[:2], "{from: build, to: build}"),
        entry(["ghost"], "{from: build, to: build}"),
    )
    with capture_logs() as events, anyio.fail_after(30):
        report = await run(config_for(simulator, text))
    document = json.loads(report.to_json())
    jsonschema.validate(document, RunReport.json_schema())
    completed = [e for e in events if e["event"] == "promotion.completed"]
    assert {e["publicId"] for e in completed} == set(portfolio[:2])
    assert all(e["attempt"] == 1 for e in completed)
    assert "admin123" not in json.dumps(events, default=str)
    assert "admin123" not in report.to_json()


def test_committed_report_schema_is_current() -> None:
    committed = Path(__file__).parent.parent / "docs" / "schema" / "report.schema.json"
    assert json.loads(committed.read_text()) == RunReport.json_schema(), (
        "regenerate with: iq-promote schema report > docs/schema/report.schema.json"
    )


# --- violation counts: RunConfig.fetch_results ---------------------------------------------


def _verdict(sim: Simulator, public_id: str, stage: str) -> ViolationCounts:
    """What the simulator's newest report of ``public_id`` at ``stage`` holds, counted."""
    app = sim.portfolio.by_public_id(public_id)
    assert app is not None
    latest = sim.portfolio.latest(app.id, Stage(stage))
    assert latest is not None
    return count_violations(policy_report(sim.config.seed, app, latest))


@pytest.mark.parametrize(
    ("fetch", "counted"),
    [
        (None, {"build": True, "stage-release": False}),
        (True, {"build": True, "stage-release": True}),
        (False, {"build": False, "stage-release": False}),
    ],
)
@pytest.mark.anyio
async def test_fetch_results_decides_whose_report_data_is_read(
    simulator: Simulator, portfolio: list[str], fetch: bool | None, counted: dict[str, bool]
) -> None:
    """None (the default) reads the new report of each same-stage re-evaluation only."""
    text = manifest(
        entry(portfolio[:2], "{from: build, to: build}"),
        entry(portfolio[2:4], "{from: build, to: stage-release}"),
    )
    with anyio.fail_after(30):
        report = await run(config_for(simulator, text, fetch_results=fetch))
    assert report.succeeded
    assert {r.target_stage_id: r.violations is not None for r in report.results} == counted
    reads = simulator.stats.requests_to("report-policy")
    assert reads == sum(2 for wanted in counted.values() if wanted)
    for result in report.results:
        if result.violations is not None:
            assert result.public_id is not None
            expected = _verdict(simulator, result.public_id, result.target_stage_id)
            assert result.violations == expected


# --- the manifest's repositoryResults section: report.firewall ------------------------------


@pytest.mark.anyio
async def test_repository_results_section_adds_a_firewall_summary(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(entry(portfolio[:2], "{from: build, to: build}")) + (
        "repositoryResults: {pageSize: 50, quarantinedLimit: 5}\n"
    )
    with anyio.fail_after(30):
        report = await run(config_for(simulator, text))
    assert report.succeeded
    assert report.firewall_error is None
    summary = report.firewall
    assert summary is not None
    rows = seed_firewall(simulator.config.seed).rows
    assert summary.total == len(rows)
    assert summary.pages == -(-len(rows) // 50)
    assert summary.owner_type is OwnerType.REPOSITORY_CONTAINER
    quarantined = {(r.repository_id, r.hash, r.pathname) for r in rows if r.quarantine_time}
    assert summary.quarantined_total == len(quarantined)
    assert len(summary.quarantined) == min(5, len(quarantined))
    assert sum(summary.by_violation_state.values()) == summary.total
    document = json.loads(report.to_json())
    jsonschema.validate(document, RunReport.json_schema())
    assert document["firewall"]["total"] == len(rows)


@pytest.mark.anyio
async def test_an_unreadable_firewall_summary_is_explained_and_the_promotions_stand(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(entry(portfolio[:2], "{from: build, to: build}")) + (
        "repositoryResults:\n"
        "  ownerType: repository\n"
        "  ownerId: 0123456789abcdef0123456789abcdef\n"
        "  api: current\n"
    )
    with capture_logs() as events, anyio.fail_after(30):
        report = await run(config_for(simulator, text))
    assert report.firewall is None
    assert report.firewall_error
    assert "0123456789abcdef0123456789abcdef" in report.firewall_error
    assert report.succeeded  # the promotions' results stand
    unavailable = [e for e in events if e["event"] == "repository_results.unavailable"]
    assert len(unavailable) == 1
    assert json.loads(report.to_json())["firewallError"] == report.firewall_error


@pytest.mark.anyio
async def test_a_dry_run_reads_no_firewall_summary(
    simulator: Simulator, portfolio: list[str]
) -> None:
    text = manifest(entry(portfolio[:1], "{from: build, to: build}")) + "repositoryResults: {}\n"
    report = await run(config_for(simulator, text, dry_run=True))
    assert report.firewall is None
    assert report.firewall_error is None
    assert simulator.stats.requests_to("repository-results") == 0
