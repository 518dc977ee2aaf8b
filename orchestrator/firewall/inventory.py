"""What the Firewall knows about: the repository container, the repository managers and their
repositories, read from the Firewall REST API so that nobody has to dig ids out of the UI."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import Field

from orchestrator.errors import NotFoundError
from orchestrator.iq.client import IqClient
from orchestrator.iq.firewall_models import Repository, RepositoryContainer, RepositoryManager
from orchestrator.iq.models import WireModel

LISTING_CONCURRENCY = 8
"""Repository listings fetched at once: quick for many managers, gentle on the server."""


class ManagerInventory(WireModel):
    """A repository manager and the repositories it has configured."""

    manager: RepositoryManager
    repositories: list[Repository] = Field(default_factory=list)


class FirewallInventory(WireModel):
    """The container (absent when the Firewall is not set up) and every manager's repositories."""

    repository_container: RepositoryContainer | None
    repository_managers: list[ManagerInventory]

    def to_document(self) -> dict[str, Any]:
        """The JSON printed by ``iq-promote repositories --json``: each manager's own fields
        with its ``repositories`` beside them."""
        return {
            "repositoryContainer": (
                self.repository_container.to_wire() if self.repository_container else None
            ),
            "repositoryManagers": [
                {
                    **entry.manager.to_wire(),
                    "repositories": [r.to_wire() for r in entry.repositories],
                }
                for entry in self.repository_managers
            ],
        }


async def read_inventory(client: IqClient) -> FirewallInventory:
    """The container, the managers, and each manager's repositories, in the server's order."""
    try:
        container: RepositoryContainer | None = await client.repository_container()
    except NotFoundError:
        container = None
    managers = await client.repository_managers()
    found: dict[str, list[Repository]] = {}
    limiter = anyio.CapacityLimiter(LISTING_CONCURRENCY)

    async def list_repositories(manager_id: str) -> None:
        async with limiter:
            found[manager_id] = await client.repositories(manager_id)

    async with anyio.create_task_group() as tg:
        for manager in managers:
            tg.start_soon(list_repositories, manager.id)
    return FirewallInventory(
        repository_container=container,
        repository_managers=[
            ManagerInventory(manager=m, repositories=found[m.id]) for m in managers
        ],
    )
