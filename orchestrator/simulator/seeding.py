"""Seeding the simulator from a manifest, so that a rehearsal finds every application and
organization the manifest names, whatever the seeded portfolio happens to hold."""

from __future__ import annotations

import dataclasses

from orchestrator.manifest.model import Manifest
from orchestrator.simulator.config import SimulatorConfig


def seeded_from(manifest: Manifest, config: SimulatorConfig) -> SimulatorConfig:
    """``config`` plus the public ids the manifest names or excludes (each with a scan at
    every stage), the organizations it selects or excludes, and the categories it names."""
    apps: dict[str, str | None] = dict(config.extra_applications)
    organizations: list[str] = list(config.extra_organizations)
    categories: list[str] = list(config.extra_categories)
    for entry in manifest.promotions:
        for public_id in entry.applications or ():
            apps.setdefault(public_id, None)
        # An excluded application sits where the entry looks, so that leaving it out matters.
        home = entry.organization or next(iter(entry.organizations or ()), None)
        for public_id in entry.exclude:
            apps.setdefault(public_id, home)
        organizations += [*(entry.organizations or ()), *entry.exclude_organizations]
        if entry.organization:
            organizations.append(entry.organization)
        categories += entry.categories or ()
    return dataclasses.replace(
        config,
        extra_applications=tuple(apps.items()),
        extra_organizations=tuple(dict.fromkeys(organizations)),
        extra_categories=tuple(dict.fromkeys(categories)),
    )
