"""Resolving a manifest into chains: against the simulator, and ``build_plan`` as a value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import ManifestError
from orchestrator.iq.client import PUBLIC_ID_BATCH, IqClient
from orchestrator.iq.models import Application, Organization, Stage
from orchestrator.iq.transport import ClientSettings, Credentials
from orchestrator.manifest.model import Manifest, parse_manifest
from orchestrator.promote.plan import LIST_ALL_ABOVE, Listings, Plan, build_plan, resolve_plan
from orchestrator.simulator import Simulator

SimulatorFactory = Callable[..., AbstractAsyncContextManager[Simulator]]
LIMIT = 20
SCAN_ID = "896791eb6a484d51bb570dca94dc2c67"

Layout = list[tuple[int, int, str | None]]
"""(entry index, transition index, public id) of every step, by position."""


def manifest(*entries: str) -> Manifest:
    return parse_manifest("version: 1\npromotions:\n" + "".join(entries), env={})


def apps_entry(public_ids: Sequence[str], *transitions: str) -> str:
    lines = f"  - applications: [{', '.join(public_ids)}]\n    transitions:\n"
    return lines + "".join(f"      - {t}\n" for t in transitions)


def selector_entry(selector: str, *transitions: str) -> str:
    lines = f"  - {selector}\n    transitions:\n"
    return lines + "".join(f"      - {t}\n" for t in transitions)


BUILD = "{from: build, to: build}"
TO_RELEASE = "{from: build, to: release}"
RELEASE = "{from: release, to: release}"


async def resolve(sim: Simulator, plan_manifest: Manifest) -> Plan:
    settings = ClientSettings(sim.base_url, Credentials("admin", "admin123"))
    async with IqClient(settings) as client:
        with anyio.fail_after(LIMIT):
            return await resolve_plan(plan_manifest, client)


def layout(plan: Plan) -> Layout:
    placed: list[tuple[int, tuple[int, int, str | None]]] = [
        (step.position, (step.entry_index, step.transition_index, work.target.public_id))
        for work in plan.work
        for step in work.steps
    ]
    for unresolved in plan.unresolved:
        step = unresolved.step
        placed.append(
            (step.position, (step.entry_index, step.transition_index, unresolved.public_id))
        )
    for skipped in plan.skipped:
        step = skipped.step
        placed.append(
            (step.position, (step.entry_index, step.transition_index, skipped.target.public_id))
        )
    placed.sort()
    assert [position for position, _ in placed] == list(range(plan.total))
    return [where for _, where in placed]


def chosen(plan: Plan, entry_index: int = 0) -> list[str]:
    """The public ids an entry chose, in plan order: those to run and those skipped."""
    return list(
        dict.fromkeys(
            public_id
            for entry, _, public_id in layout(plan)
            if entry == entry_index and public_id is not None
        )
    )


def org_apps(sim: Simulator, name: str) -> list[str]:
    (org,) = [o for o in sim.portfolio.organizations if o.name == name]
    return sorted(a.public_id for a in sim.portfolio.applications if a.organization_id == org.id)


@pytest.fixture
def public_ids(simulator: Simulator) -> list[str]:
    return [a.public_id for a in simulator.portfolio.applications]


# --- against the simulator -----------------------------------------------------------------


@pytest.mark.anyio
async def test_explicit_public_ids_resolve_to_chains_in_manifest_order(
    simulator: Simulator, public_ids: list[str]
) -> None:
    chosen = [public_ids[3], public_ids[0], public_ids[7]]
    plan = await resolve(simulator, manifest(apps_entry(chosen, BUILD, TO_RELEASE, RELEASE)))
    assert [w.target.public_id for w in plan.work] == chosen
    assert plan.unresolved == ()
    assert plan.total == 9
    org_names = {o.id: o.name for o in simulator.portfolio.organizations}
    for work in plan.work:
        app = simulator.portfolio.by_public_id(work.target.public_id)
        assert app is not None
        assert work.target.application_id == app.id
        assert work.target.organization == org_names[app.organization_id or ""]
        (chain,) = work.chains
        assert [(s.transition.source_stage, s.transition.target_stage) for s in chain.steps] == [
            (Stage.BUILD, Stage.BUILD),
            (Stage.BUILD, Stage.RELEASE),
            (Stage.RELEASE, Stage.RELEASE),
        ]
        assert [s.transition_index for s in chain.steps] == [0, 1, 2]
        assert [s.label for s in chain.steps] == [
            "build -> build",
            "build -> release",
            "release -> release",
        ]
    assert layout(plan) == [(0, t, pid) for pid in chosen for t in range(3)]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["name", "id", "folded name"])
async def test_an_organization_selects_its_applications_by_name_or_id(
    simulator: Simulator, how: str
) -> None:
    org = next(o for o in simulator.portfolio.organizations if o.name == "Platform")
    selector = {"name": org.name, "id": org.id, "folded name": org.name.upper()}[how]
    plan = await resolve(simulator, manifest(selector_entry(f"organization: {selector}", BUILD)))
    expected = org_apps(simulator, "Platform")
    assert expected
    assert chosen(plan) == expected
    assert {w.target.organization for w in plan.work} == {"Platform"}
    assert plan.unresolved == ()


@pytest.mark.anyio
async def test_all_selects_every_application_but_the_excluded(
    simulator: Simulator, public_ids: list[str]
) -> None:
    excluded = [public_ids[2], public_ids[5]]
    plan = await resolve(
        simulator,
        manifest(selector_entry(f"all: true\n    exclude: [{', '.join(excluded)}]", BUILD)),
    )
    assert chosen(plan) == sorted(set(public_ids) - set(excluded))
    assert plan.total == len(public_ids) - 2


@pytest.mark.anyio
async def test_unknown_ids_and_organizations_are_unresolved_and_the_rest_resolve(
    simulator: Simulator, public_ids: list[str]
) -> None:
    plan = await resolve(
        simulator,
        manifest(
            apps_entry([public_ids[0], "no-such-app", public_ids[1]], BUILD, TO_RELEASE),
            selector_entry("organization: No Such Org", BUILD, RELEASE),
        ),
    )
    assert [w.target.public_id for w in plan.work] == public_ids[:2]
    by_place = {(u.step.entry_index, u.step.transition_index): u for u in plan.unresolved}
    assert set(by_place) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for t in (0, 1):
        app = by_place[(0, t)]
        assert app.public_id == "no-such-app"
        assert "no-such-app" in app.reason
        assert "not known" in app.reason
        org = by_place[(1, t)]
        assert org.public_id is None
        assert org.organization == "No Such Org"
        assert "No Such Org" in org.reason
    assert layout(plan) == [
        (0, 0, public_ids[0]),
        (0, 1, public_ids[0]),
        (0, 0, "no-such-app"),
        (0, 1, "no-such-app"),
        (0, 0, public_ids[1]),
        (0, 1, public_ids[1]),
        (1, 0, None),
        (1, 1, None),
    ]


@pytest.mark.anyio
async def test_an_application_in_two_entries_gets_two_chains_in_entry_order(
    simulator: Simulator, public_ids: list[str]
) -> None:
    twice, other = public_ids[0], public_ids[1]
    plan = await resolve(
        simulator,
        manifest(
            apps_entry([twice, other], BUILD, TO_RELEASE),
            apps_entry([other], RELEASE),
            apps_entry([twice], RELEASE, BUILD),
        ),
    )
    by_id = {w.target.public_id: w for w in plan.work}
    assert list(by_id) == [twice, other]
    first, second = by_id[twice].chains
    assert [(s.entry_index, s.transition_index) for s in first.steps] == [(0, 0), (0, 1)]
    assert [(s.entry_index, s.transition_index) for s in second.steps] == [(2, 0), (2, 1)]
    assert [s.position for s in by_id[twice].steps] == [0, 1, 5, 6]
    assert [s.position for s in by_id[other].steps] == [2, 3, 4]
    assert len(layout(plan)) == plan.total == 7


@pytest.mark.anyio
async def test_uses_scan_ids_only_when_a_transition_names_a_scan(
    simulator: Simulator, public_ids: list[str]
) -> None:
    by_stage = await resolve(simulator, manifest(apps_entry(public_ids[:2], BUILD)))
    assert not by_stage.uses_scan_ids
    by_scan = await resolve(
        simulator,
        manifest(
            apps_entry(public_ids[:2], BUILD),
            apps_entry([public_ids[3]], f"{{scanId: {SCAN_ID}, to: release}}"),
        ),
    )
    assert by_scan.uses_scan_ids
    unknown = await resolve(
        simulator, manifest(apps_entry(["ghost"], f"{{scanId: {SCAN_ID}, to: release}}"))
    )
    assert not unknown.uses_scan_ids, "an unresolved step sends nothing"


async def application_requests(sim: Simulator) -> int:
    """GET requests to /api/v2/applications, read from the simulator's stats endpoint."""
    async with aiohttp.ClientSession() as http, http.get(sim.base_url + "__simulator/stats") as r:
        stats: dict[str, Any] = await r.json()
    count: int = stats["requests"].get("applications", {}).get("GET", 0)
    return count


@pytest.mark.anyio
async def test_named_applications_are_looked_up_in_batches(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(apps=120) as sim:
        named = [a.public_id for a in sim.portfolio.applications] + ["ghost-1", "ghost-2"]
        plan = await resolve(sim, manifest(apps_entry(named, BUILD)))
        requests = await application_requests(sim)
        organizations = sim.stats.requests_to("organizations", "GET")
    assert len(plan.work) == 120
    assert len(plan.unresolved) == 2
    assert requests == math.ceil(len(named) / PUBLIC_ID_BATCH)
    assert requests < 10
    assert organizations == 1


@pytest.mark.anyio
async def test_many_names_or_selectors_take_one_listing(
    simulator_factory: SimulatorFactory,
) -> None:
    async with simulator_factory(apps=LIST_ALL_ABOVE + 20) as sim:
        named = [a.public_id for a in sim.portfolio.applications]
        many = await resolve(sim, manifest(apps_entry(named, BUILD)))
        assert await application_requests(sim) == 1
        sim.stats.reset()
        selected = await resolve(
            sim,
            manifest(
                apps_entry(named[:3], BUILD),
                selector_entry("organization: Payments", BUILD),
                selector_entry("all: true", RELEASE),
            ),
        )
        assert await application_requests(sim) == 1
    assert len(many.work) == len(named)
    assert {*chosen(selected, 0), *chosen(selected, 1), *chosen(selected, 2)} == set(named)


# --- build_plan, as a value ----------------------------------------------------------------

ORGS = [
    Organization(id="org-a", name="Alpha"),
    Organization(id="org-b", name="Beta"),
]
APPS = [
    Application(id=f"id-{n}", public_id=f"app-{n}", name=f"App {n}", organization_id=org)
    for n, org in enumerate(["org-a", "org-b", "org-a", "org-b", "org-a"])
]
KNOWN = [a.public_id for a in APPS]


def test_a_name_two_organizations_share_but_for_case_is_a_manifest_error() -> None:
    orgs = [*ORGS, Organization(id="org-c", name="ALPHA")]
    with pytest.raises(ManifestError) as caught:
        build_plan(manifest(selector_entry("organization: alpha", BUILD)), Listings(APPS, orgs))
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (3, "promotions[0].organization")
    assert "'Alpha' (id org-a)" in problem.message
    assert "'ALPHA' (id org-c)" in problem.message
    exact = build_plan(manifest(selector_entry("organization: Alpha", BUILD)), Listings(APPS, orgs))
    assert [w.target.public_id for w in exact.work] == ["app-0", "app-2", "app-4"]


def test_exclude_of_an_unknown_application_is_harmless() -> None:
    plan = build_plan(
        manifest(selector_entry("organization: Beta\n    exclude: [app-1, nobody]", BUILD)),
        Listings(APPS, ORGS),
    )
    assert [w.target.public_id for w in plan.work] == ["app-3"]
    assert plan.unresolved == ()


transitions = st.lists(
    st.sampled_from(["build", "stage-release", "release", "operate"]).map(
        lambda stage: {"from": stage, "to": stage}
    ),
    min_size=1,
    max_size=3,
)
entries = st.one_of(
    st.fixed_dictionaries(
        {
            "applications": st.lists(
                st.sampled_from([*KNOWN, "ghost-1", "ghost-2"]), min_size=1, unique=True
            ),
            "transitions": transitions,
        }
    ),
    st.fixed_dictionaries(
        {
            "organization": st.sampled_from(["Alpha", "org-b", "beta", "Gamma"]),
            "exclude": st.lists(st.sampled_from(KNOWN), unique=True),
            "transitions": transitions,
        }
    ),
    st.fixed_dictionaries(
        {
            "all": st.just(True),
            "exclude": st.lists(st.sampled_from(KNOWN), unique=True),
            "transitions": transitions,
        }
    ),
)


def expected_layout(data: list[dict[str, Any]]) -> Layout:
    """What the docs promise: entries in order; named ids as listed; an organization's or
    all applications sorted by public id; each application's transitions in order."""
    org_ids = {"Alpha": "org-a", "org-b": "org-b", "beta": "org-b"}
    placed: Layout = []
    for index, entry in enumerate(data):
        count = len(entry["transitions"])
        if "applications" in entry:
            selected: list[str | None] = list(entry["applications"])
        elif "organization" in entry and entry["organization"] not in org_ids:
            selected = [None]
        else:
            org = org_ids.get(entry.get("organization", ""))
            chosen = [a.public_id for a in APPS if org is None or a.organization_id == org]
            selected = [p for p in sorted(chosen) if p not in entry["exclude"]]
        placed.extend((index, t, pid) for pid in selected for t in range(count))
    return placed


@settings(max_examples=100, deadline=None)
@given(data=st.lists(entries, min_size=1, max_size=5))
def test_build_plan_places_every_step_once_in_manifest_order(data: list[dict[str, Any]]) -> None:
    plan_manifest = Manifest.model_validate(
        {"version": 1, "promotions": data}, by_alias=True, by_name=False
    )
    plan = build_plan(plan_manifest, Listings(APPS, ORGS))
    assert layout(plan) == expected_layout(data)
    assert len({w.target.public_id for w in plan.work}) == len(plan.work)
    for work in plan.work:
        entry_indices = [c.steps[0].entry_index for c in work.chains]
        assert entry_indices == sorted(entry_indices)
        for chain in work.chains:
            assert [s.transition_index for s in chain.steps] == list(range(len(chain.steps)))
            assert len({s.entry_index for s in chain.steps}) == 1
    for unresolved in plan.unresolved:
        assert unresolved.reason
        assert "not known" in unresolved.reason
