"""Choosing the portfolio as IQ organizes it, against the simulator: organizations as a tree,
categories, what is left out, what does not apply (no scan at the source stage, evaluated
lately), the typos that select nothing, and how few requests all of it takes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from orchestrator.errors import ManifestError
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import Application, Organization, Stage
from orchestrator.iq.report_models import LatestReport
from orchestrator.iq.retry import RetryPolicy
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import Manifest, parse_manifest
from orchestrator.promote.applicable import spoken_age
from orchestrator.promote.events import Prior, step_key
from orchestrator.promote.plan import Listings, Plan, build_plan, resolve_plan
from orchestrator.promote.polling import BackoffSchedule
from orchestrator.promote.scheduler import Schedule, Scheduler
from orchestrator.promote.step_results import skipped_result
from orchestrator.report.results import NotApplicable, Outcome, PromotionResult
from orchestrator.runner.config import RunConfig
from orchestrator.runner.run import run
from orchestrator.simulator import FaultConfig, Portfolio, Simulator

pytestmark = pytest.mark.anyio

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
LIMIT = 30
FAST_POLLS = BackoffSchedule(initial=0.02, factor=1.5, cap=0.2)
TREE = {"apps": 80, "organizations": 10}
"""Platform holds Platform Cards, which holds Platform Cards Web (tests/conftest.py seeds)."""


def manifest(text: str) -> Manifest:
    return parse_manifest(text, source="select.yaml", env={})


def entry(selector: str, transition: str = "{from: build, to: build}") -> str:
    return f"  - {selector}\n    transitions: [{transition}]\n"


def promotions(*entries: str, top: str = "") -> Manifest:
    return manifest(f"version: 1\n{top}promotions:\n" + "".join(entries))


def settings_for(sim: Simulator) -> ClientSettings:
    return ClientSettings(
        sim.base_url,
        Credentials("admin", "admin123"),
        retry=RetryPolicy(backoff_base=0.02, backoff_cap=0.2),
    )


async def resolve(sim: Simulator, plan_manifest: Manifest) -> Plan:
    async with IqClient(settings_for(sim)) as client:
        with anyio.fail_after(LIMIT):
            return await resolve_plan(plan_manifest, client)


def chosen(plan: Plan, entry_index: int = 0) -> list[str]:
    """The public ids an entry chose, in plan order: to run, and skipped."""
    placed = [(s.position, w.target.public_id) for w in plan.work for s in w.steps] + [
        (s.step.position, s.target.public_id) for s in plan.skipped
    ]
    wanted = {s.position for w in plan.work for s in w.steps if s.entry_index == entry_index}
    wanted |= {s.step.position for s in plan.skipped if s.step.entry_index == entry_index}
    return list(dict.fromkeys(pid for position, pid in sorted(placed) if position in wanted))


def organization(portfolio: Portfolio, name: str) -> Organization:
    (found,) = [o for o in portfolio.organizations if o.name == name]
    return found


def placed_in(portfolio: Portfolio, *names: str) -> set[str]:
    ids = {organization(portfolio, name).id for name in names}
    return {a.public_id for a in portfolio.applications if a.organization_id in ids}


def carrying(portfolio: Portfolio, *names: str) -> set[str]:
    ids = {c.id for c in portfolio.categories if c.name in names}
    return {
        a.public_id
        for a in portfolio.applications
        if any(t.tag_id in ids for t in a.application_tags or [])
    }


# --- organizations as a tree -----------------------------------------------------------------


async def test_an_organization_takes_its_whole_subtree(simulator_factory: SimulatorFactory) -> None:
    async with simulator_factory(**TREE) as sim:
        subtree = await resolve(sim, promotions(entry("organization: Platform")))
        direct = await resolve(
            sim, promotions(entry("organization: Platform\n    includeSubOrganizations: false"))
        )
        by_path = await resolve(sim, promotions(entry("organization: Platform/Platform Cards")))
        portfolio = sim.portfolio
    everything = placed_in(portfolio, "Platform", "Platform Cards", "Platform Cards Web")
    assert placed_in(portfolio, "Platform Cards Web"), "two levels down holds applications"
    assert chosen(subtree) == sorted(everything)
    assert chosen(direct) == sorted(placed_in(portfolio, "Platform"))
    assert chosen(by_path) == sorted(placed_in(portfolio, "Platform Cards", "Platform Cards Web"))
    organizations = {w.target.organization for w in subtree.work}
    assert organizations <= {"Platform", "Platform Cards", "Platform Cards Web"}
    assert len(organizations) > 1, "each application names the organization it sits in"


async def test_a_name_two_organizations_share_is_a_manifest_error_naming_both(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(
        **TREE, extra_organizations=("Payments/Core", "Platform/Core")
    ) as sim:
        text = promotions(entry("organizations: [Retail, Core]"))
        with pytest.raises(ManifestError) as caught:
            await resolve(sim, text)
        by_path = await resolve(sim, promotions(entry("organization: Payments/Core")))
        payments_core = organization(sim.portfolio, "Payments").id
        core = next(
            o
            for o in sim.portfolio.organizations
            if o.name == "Core" and o.parent_organization_id == payments_core
        )
        promoted = sim.stats.requests_to("promote-scan")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (
        "select.yaml",
        3,
        "promotions[0].organizations[1]",
    )
    assert "2 organizations are named 'Core'" in problem.message
    assert "'Payments/Core'" in problem.message
    assert "'Platform/Core'" in problem.message
    assert "Parent/Child path" in problem.message
    assert caught.value.exit_code == 2
    assert by_path.unresolved == ()
    assert by_path.entries[0].selected == 0, "the new organization holds no application"
    assert core.id, "the path found the Core under Payments"
    assert promoted == 0


async def test_organizations_less_excluded_organizations(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(**TREE) as sim:
        plan = await resolve(
            sim,
            promotions(
                entry(
                    "organizations: [Platform, Payments]\n"
                    "    excludeOrganizations: [Platform Cards]"
                )
            ),
        )
        portfolio = sim.portfolio
    kept = placed_in(portfolio, "Platform", "Payments", "Payments Core")
    assert chosen(plan) == sorted(kept)
    left_out = placed_in(portfolio, "Platform Cards", "Platform Cards Web")
    assert plan.entries[0].excluded == len(left_out)
    assert plan.warnings == ()


# --- categories ------------------------------------------------------------------------------


async def test_categories_select_what_carries_any_of_them(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(**TREE) as sim:
        alone = await resolve(sim, promotions(entry("categories: [Tier-1, PCI]")))
        combined = await resolve(
            sim, promotions(entry("organization: Platform\n    categories: [tier-1]"))
        )
        portfolio = sim.portfolio
    tier_one_or_pci = carrying(portfolio, "Tier-1", "PCI")
    assert 0 < len(tier_one_or_pci) < len(portfolio.applications)
    assert chosen(alone) == sorted(tier_one_or_pci)
    platform = placed_in(portfolio, "Platform", "Platform Cards", "Platform Cards Web")
    expected = sorted(platform & carrying(portfolio, "Tier-1"))
    assert expected
    assert chosen(combined) == expected, "both must hold; a category's name ignores case"


async def test_an_unknown_category_is_an_error_and_the_known_ones_still_select(
    simulator: Simulator,
) -> None:
    plan = await resolve(simulator, promotions(entry("categories: [Tier-1, Teir-2]")))
    (unresolved,) = plan.unresolved
    assert unresolved.public_id is None
    assert unresolved.organization is None
    assert "category 'Teir-2' is not known to the server" in unresolved.reason
    assert "Tier-1" in unresolved.reason, "the message lists the categories in use"
    assert chosen(plan) == sorted(carrying(simulator.portfolio, "Tier-1"))
    assert plan.entries[0].unresolved == 1


# --- what does not apply ---------------------------------------------------------------------


def config_for(sim: Simulator, text: str) -> RunConfig:
    return RunConfig(
        manifest=manifest(text),
        manifest_path="select.yaml",
        client=settings_for(sim),
        concurrency=8,
        promotion_timeout=30.0,
        handle_signals=False,
        strategy=FAST_POLLS,
    )


def results_by_id(results: list[PromotionResult]) -> dict[str | None, PromotionResult]:
    return {r.public_id: r for r in results}


async def test_a_selected_application_without_the_source_stage_is_skipped_a_named_one_is_an_error(
    simulator: Simulator,
) -> None:
    portfolio = simulator.portfolio
    never = [
        a.public_id for a in portfolio.applications if not portfolio.latest(a.id, Stage.OPERATE)
    ]
    deployed = [
        a.public_id for a in portfolio.applications if portfolio.latest(a.id, Stage.OPERATE)
    ]
    assert never
    assert deployed
    text = (
        "version: 1\npromotions:\n"
        + entry("all: true", "{from: operate, to: operate}")
        + entry(f"applications: [{never[0]}]", "{from: operate, to: operate}")
    )
    with anyio.fail_after(LIMIT):
        report = await run(config_for(simulator, text))
    selected = [r for r in report.results if r.entry_index == 0]
    skipped = {r.public_id: r for r in selected if r.status is Outcome.SKIPPED}
    assert set(skipped) == set(never)
    assert all(r.not_applicable is NotApplicable.NO_SOURCE_SCAN for r in skipped.values())
    assert all(r.reason == "no operate scan" for r in skipped.values())
    assert all(r.attempts == 0 for r in skipped.values()), "known before anything is sent"
    assert {r.public_id for r in selected if r.status is Outcome.COMPLETED} == set(deployed)
    (named,) = [r for r in report.results if r.entry_index == 1]
    assert named.status is Outcome.ERROR, "named, it stays the server's refusal"
    assert "No scan available to promote from stage operate" in (named.reason or "")
    assert simulator.stats.requests_to("promote-scan") == len(deployed) + 1
    assert report.summary.not_applicable == len(never)
    assert report.exit_code == 1, "the named application's ERROR fails the run"


async def test_selection_skips_exit_0_and_a_broken_chain_exits_1(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(extra_applications=(("doomed-app", "Payments"),)) as sim:
        text = "version: 1\npromotions:\n" + entry("all: true", "{from: operate, to: operate}")
        with anyio.fail_after(LIMIT):
            healthy = await run(config_for(sim, text))
    assert healthy.summary.not_applicable > 0
    assert healthy.summary.by_status[Outcome.SKIPPED] == healthy.summary.not_applicable
    assert healthy.exit_code == 0
    async with simulator_factory(
        extra_applications=(("doomed-app", "Payments"),),
        faults=FaultConfig(failing_apps=("doomed-app",)),
    ) as sim:
        chained = (
            "version: 1\npromotions:\n"
            "  - all: true\n"
            "    transitions: [{from: operate, to: operate}, {from: operate, to: release}]\n"
        )
        with anyio.fail_after(LIMIT):
            report = await run(config_for(sim, chained))
    doomed = [r for r in report.results if r.public_id == "doomed-app"]
    assert [(r.status, r.not_applicable) for r in doomed] == [
        (Outcome.FAILED, None),
        (Outcome.SKIPPED, None),
    ]
    never = [r for r in report.results if r.not_applicable is not None]
    assert never
    assert all(r.status is Outcome.SKIPPED for r in never)
    assert len({(r.public_id, r.reason) for r in never}) == len(never) // 2, "a whole chain"
    assert report.exit_code == 1


async def test_skip_if_evaluated_within_on_an_entry_and_at_the_top(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(recent_reports=0.5) as sim:
        portfolio = sim.portfolio
        now = datetime.now(UTC)
        fresh = {
            a.public_id
            for a in portfolio.applications
            if (r := portfolio.latest(a.id, Stage.BUILD))
            and now - r.evaluation_date < timedelta(days=1)
        }
        built = {a.public_id for a in portfolio.applications if portfolio.latest(a.id, Stage.BUILD)}
        assert fresh
        assert fresh < built
        on_entry = await resolve(sim, promotions(entry("all: true\n    skipIfEvaluatedWithin: 1d")))
        at_top = await resolve(
            sim,
            promotions(
                entry("all: true"),
                entry("all: true\n    skipIfEvaluatedWithin: 0m"),
                top="skipIfEvaluatedWithin: 24h\n",
            ),
        )
        minutes = await resolve(
            sim, promotions(entry("all: true"), top="skipIfEvaluatedWithin: 10m\n")
        )
    recent = {
        s.target.public_id: s
        for s in on_entry.skipped
        if s.skip.cause is NotApplicable.RECENTLY_EVALUATED
    }
    assert set(recent) == fresh
    reason = next(iter(recent.values())).skip.reason
    assert reason.startswith("evaluated at build ")
    assert reason.endswith(" ago, within skipIfEvaluatedWithin 1d")
    assert on_entry.entries[0].skipped["evaluated at build within 1d"] == len(fresh)
    top_recent = {
        s.target.public_id
        for s in at_top.skipped
        if s.skip.cause is NotApplicable.RECENTLY_EVALUATED
    }
    assert top_recent == fresh
    assert {s.step.entry_index for s in at_top.skipped if s.target.public_id in fresh} == {0}
    assert set(chosen(at_top, 1)) >= fresh, "0m on the entry turns the top-level value off"
    assert not any(s.skip.cause is NotApplicable.RECENTLY_EVALUATED for s in minutes.skipped)


def test_spoken_ages() -> None:
    assert spoken_age(timedelta(seconds=59)) == "0m"
    assert spoken_age(timedelta(minutes=45)) == "45m"
    assert spoken_age(timedelta(hours=3, minutes=12, seconds=30)) == "3h 12m"
    assert spoken_age(timedelta(hours=5)) == "5h"
    assert spoken_age(timedelta(days=2, hours=4)) == "2d 4h"
    assert spoken_age(timedelta(seconds=-5)) == "0m", "a clock behind the server's"


NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
ORG = Organization(id="org-a", name="Alpha", parent_organization_id="ROOT_ORGANIZATION_ID")
APPS = [Application(id=f"id-{n}", public_id=f"app-{n}", organization_id="org-a") for n in range(4)]


def latest(app: int, stage: str, hours_ago: float | None) -> LatestReport:
    when = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return LatestReport(application_id=f"id-{app}", stage=stage, evaluation_date=when)


def test_only_the_first_transition_of_a_chain_is_checked_and_the_whole_chain_skips() -> None:
    reports = [
        latest(0, "build", 1),  # evaluated an hour ago
        latest(1, "build", 48),
        latest(2, "build", None),  # no date: never counts as recent
        # app-3: no build scan at all
        latest(3, "release", 1),
    ]
    chain = "{from: build, to: build}, {from: build, to: release}"
    plan = build_plan(
        promotions(entry("all: true\n    skipIfEvaluatedWithin: 12h", chain)),
        Listings(APPS, [ORG], latest_reports=reports, now=NOW),
    )
    skipped = {(s.target.public_id, s.step.transition_index): s.skip for s in plan.skipped}
    assert set(skipped) == {("app-0", 0), ("app-0", 1), ("app-3", 0), ("app-3", 1)}
    assert (
        skipped[("app-0", 1)].reason
        == "evaluated at build 1h ago, within skipIfEvaluatedWithin 12h"
    )
    assert skipped[("app-3", 1)].reason == "no build scan"
    assert [w.target.public_id for w in plan.work] == ["app-1", "app-2"]
    (summary,) = plan.entries
    assert (summary.selected, summary.to_run) == (4, 2)
    assert summary.skipped == {"evaluated at build within 12h": 1, "no build scan": 1}


def test_without_the_reports_listing_nothing_is_skipped() -> None:
    plan = build_plan(promotions(entry("all: true")), Listings(APPS, [ORG]))
    assert plan.skipped == ()
    assert len(plan.work) == 4


# --- typos that select nothing -----------------------------------------------------------------


def uncarried(portfolio: Portfolio) -> tuple[str, str]:
    """An organization with applications placed in it, and a category none of them carries."""
    for org in portfolio.organizations:
        apps = [a for a in portfolio.applications if a.organization_id == org.id]
        carried = {t.tag_id for a in apps for t in a.application_tags or []}
        missing = [c.name for c in portfolio.categories if c.id not in carried]
        if apps and missing:
            return org.name, missing[0]
    raise AssertionError("every organization carries every category: choose another seed")


def selects_nothing(logs: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    warnings = [e for e in logs if e["event"] == "plan.selects_nothing"]
    assert all(w["log_level"] == "warning" for w in warnings)
    assert all(w["message"].startswith(f"{w['field']} '{w['value']}' ") for w in warnings)
    return {(w["entry"], w["field"], w["value"]) for w in warnings}


def typos(portfolio: Portfolio) -> tuple[str, set[tuple[str, str, str]]]:
    """A manifest with five values that select nothing, and the warnings they should give."""
    org, missing = uncarried(portfolio)
    direct = f"organization: {org}\n    includeSubOrganizations: false"
    first = sorted(placed_in(portfolio, org))[0]
    text = (
        "version: 1\npromotions:\n"
        + entry(f"{direct}\n    exclude: [{first}, {first}-typo]")
        + entry("organization: Empty Team")
        + entry(f"{direct}\n    categories: [{missing}]")
        + entry("all: true\n    excludeOrganizations: [Retial, Empty Team, Retail]")
    )
    expected = {
        ("promotions[0]", "exclude[1]", f"{first}-typo"),
        ("promotions[1]", "organization", "Empty Team"),
        ("promotions[2]", "categories[0]", missing),
        ("promotions[3]", "excludeOrganizations[0]", "Retial"),
        ("promotions[3]", "excludeOrganizations[1]", "Empty Team"),
    }
    return text, expected


async def test_what_selects_nothing_is_warned_of_by_the_plan(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(**TREE, extra_organizations=("Empty Team",)) as sim:
        text, expected = typos(sim.portfolio)
        with capture_logs() as logs:
            plan = await resolve(sim, manifest(text))
    assert selects_nothing(logs) == expected
    by_field = {(w.entry_index, w.field): w for w in plan.warnings}
    assert by_field[(0, "exclude[1]")].message.endswith(
        "is no application of the selection: nothing is left out"
    )
    assert by_field[(1, "organization")].message == "organization 'Empty Team' has no application"
    lines = {e["entry"]: e["line"] for e in logs if e["event"] == "plan.selects_nothing"}
    assert lines == {
        "promotions[0]": 3,
        "promotions[1]": 7,
        "promotions[2]": 9,
        "promotions[3]": 13,
    }
    assert plan.unresolved == (), "known names that select nothing are no error"


async def test_what_selects_nothing_is_warned_of_by_a_run(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(**TREE, extra_organizations=("Empty Team",)) as sim:
        text, expected = typos(sim.portfolio)
        with capture_logs() as logs, anyio.fail_after(LIMIT):
            report = await run(
                config_for(
                    sim, text.replace("{from: build, to: build}", "{from: build, to: build}")
                )
            )
    assert selects_nothing(logs) == expected
    assert report.results


# --- how few requests ----------------------------------------------------------------------------


async def test_a_large_portfolio_is_planned_in_a_handful_of_requests(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(apps=3000, organizations=40) as sim:
        named = [a.public_id for a in sim.portfolio.applications[:3]]
        text = promotions(
            entry(f"applications: [{', '.join(named)}]"),
            entry("organization: Payments"),
            entry("organizations: [Retail, Platform]\n    categories: [Tier-1]"),
            entry("categories: [PCI]\n    excludeOrganizations: [Mobile]"),
            entry("all: true\n    exclude: [" + named[0] + "]", "{from: operate, to: operate}"),
            top="skipIfEvaluatedWithin: 12h\n",
        )
        plan = await resolve(sim, text)
        asked = {route: sim.stats.requests_to(route) for route, _ in sim.stats.requests}
        total = sim.stats.total_requests
    assert asked == {"organizations": 1, "applications": 1, "categories-used": 1, "all-reports": 1}
    assert total == 4
    assert len(plan.work) + len({s.target.public_id for s in plan.skipped}) > 3000 / 2
    assert plan.entries[4].selected == 2999


async def test_named_applications_alone_need_no_listing_of_reports(simulator: Simulator) -> None:
    named = [a.public_id for a in simulator.portfolio.applications[:3]]
    await resolve(simulator, promotions(entry(f"applications: [{', '.join(named)}]")))
    assert simulator.stats.requests_to("all-reports") == 0
    assert simulator.stats.requests_to("categories-used") == 0
    with_window = promotions(
        entry(f"applications: [{', '.join(named)}]"), top="skipIfEvaluatedWithin: 1d\n"
    )
    await resolve(simulator, with_window)
    assert simulator.stats.requests_to("all-reports") == 1, "the age is read from the listing"


# --- dry runs and resumes -------------------------------------------------------------------------


async def test_a_dry_run_shows_what_would_not_apply(simulator: Simulator) -> None:
    text = "version: 1\npromotions:\n" + entry("all: true", "{from: operate, to: operate}")
    config = config_for(simulator, text)
    with anyio.fail_after(LIMIT):
        report = await run(replace(config, dry_run=True))
    reasons = Counter(
        (r.reason, r.not_applicable) for r in report.results if r.status is Outcome.SKIPPED
    )
    assert reasons[("no operate scan", NotApplicable.NO_SOURCE_SCAN)] > 0
    assert reasons[("dry run: nothing sent", None)] > 0
    assert report.exit_code == 0
    assert simulator.stats.requests_to("promote-scan") == 0


async def test_a_resumed_run_keeps_what_it_did_over_a_skip(
    simulator_factory: SimulatorFactory,
) -> None:
    """The resumed run's own evaluation makes its application look recently evaluated: the
    journal's COMPLETED stands, not a skip."""
    async with simulator_factory(recent_reports=1.0) as sim:
        text = promotions(entry("all: true\n    skipIfEvaluatedWithin: 1d"))
        async with IqClient(settings_for(sim)) as client:
            plan = await resolve_plan(text, client)
            first = plan.skipped[0]
            done = skipped_result(first).model_copy(
                update={"status": Outcome.COMPLETED, "reason": None, "not_applicable": None}
            )
            key = step_key(first.step, first.target.public_id)
            schedule = Schedule(strategy=FAST_POLLS, prior={key: Prior(result=done)})
            with anyio.fail_after(LIMIT):
                results = await Scheduler(plan, client, schedule).run()
    assert not plan.work, "every application was evaluated lately"
    assert results[first.step.position] == done
    assert all(r.not_applicable is not None for r in results[1:]), "the rest stay skipped"
