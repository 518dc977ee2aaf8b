"""Seeding the simulator from a manifest: a rehearsal finds what the manifest names."""

from __future__ import annotations

import pytest

from orchestrator.manifest.model import parse_manifest
from orchestrator.simulator import Simulator, SimulatorConfig
from orchestrator.simulator.portfolio import seed_portfolio
from orchestrator.simulator.seeding import seeded_from

MANIFEST = """\
version: 1
promotions:
  - applications: [zeta-one, zeta-two]
    transitions: [{from: build, to: stage-release}]
  - organization: Brand New Org
    transitions: [{from: release, to: release}]
  - applications: [zeta-one]
    transitions: [{from: operate, to: operate}]
"""


def test_named_applications_and_organizations_are_added_once() -> None:
    manifest = parse_manifest(MANIFEST, source="m.yaml", env={})
    config = seeded_from(manifest, SimulatorConfig(apps=3, extra_organizations=("Kept",)))
    assert config.extra_applications == (("zeta-one", None), ("zeta-two", None))
    assert config.extra_organizations == ("Kept", "Brand New Org")
    portfolio = seed_portfolio(config)
    public_ids = [a.public_id for a in portfolio.applications]
    assert public_ids.count("zeta-one") == 1
    assert {"zeta-one", "zeta-two"} <= set(public_ids)
    assert "Brand New Org" in {o.name for o in portfolio.organizations}


@pytest.mark.anyio
async def test_a_seeded_application_has_a_scan_at_every_stage() -> None:
    manifest = parse_manifest(MANIFEST, source="m.yaml", env={})
    async with Simulator(seeded_from(manifest, SimulatorConfig(apps=2)), port=0) as sim:
        app = next(a for a in sim.portfolio.applications if a.public_id == "zeta-two")
        stages = {r.stage for r in sim.portfolio.history(app.id)}
    assert {str(s) for s in stages} == {"build", "stage-release", "release", "operate"}


SELECTING = """\
version: 1
promotions:
  - organization: Retail
    exclude: [legacy-pos]
    transitions: [{from: release, to: release}]
  - organizations: [Payments/Cards, Shared]
    excludeOrganizations: [Payments/Sandbox]
    categories: [Regulated, Tier-1]
    transitions: [{from: release, to: release}]
"""


def test_what_an_entry_selects_by_or_leaves_out_is_seeded() -> None:
    manifest = parse_manifest(SELECTING, source="m.yaml", env={})
    config = seeded_from(manifest, SimulatorConfig(apps=10))
    assert config.extra_applications == (("legacy-pos", "Retail"),)
    assert config.extra_organizations == ("Retail", "Payments/Cards", "Shared", "Payments/Sandbox")
    assert config.extra_categories == ("Regulated", "Tier-1")
    portfolio = seed_portfolio(config)
    excluded = portfolio.by_public_id("legacy-pos")
    assert excluded is not None
    home = portfolio.organization(excluded.organization_id or "")
    assert home is not None
    assert home.name == "Retail", "an excluded application sits where its entry looks"
    assert {"Regulated", "Tier-1"} <= {c.name for c in portfolio.categories}
