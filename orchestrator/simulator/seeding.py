"""Seeding the simulator from a manifest, so that a rehearsal finds every application and
organization the manifest names, whatever the seeded portfolio happens to hold."""

from __future__ import annotations

import dataclasses

from orchestrator.manifest.model import Manifest
from orchestrator.simulator.config import SimulatorConfig


def seeded_from(manifest: Manifest, config: SimulatorConfig) -> SimulatorConfig:
    """``config`` plus the manifest's public ids (each with a scan at every stage) and the
    organizations it names."""
    apps: dict[str, str | None] = dict(config.extra_applications)
    organizations: list[str] = list(config.extra_organizations)
    for entry in manifest.promotions:
        for public_id in entry.applications or ():
            apps.setdefault(public_id, None)
        if entry.organization:
            organizations.append(entry.organization)
    return dataclasses.replace(
        config,
        extra_applications=tuple(apps.items()),
        extra_organizations=tuple(dict.fromkeys(organizations)),
    )
