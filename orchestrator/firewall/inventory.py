"""What the Firewall knows about: the repository container, the repository managers and their
repositories, read from the Firewall REST API so that nobody has to dig ids out of the UI."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import Field
from rich.table import Table
from rich.text import Text

from orchestrator.errors import NotFoundError
from orchestrator.iq.client import IqClient
from orchestrator.iq.models import (
    Repository,
    RepositoryContainer,
    RepositoryManager,
    WireModel,
)

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


def inventory_table(inventory: FirewallInventory) -> Table:
    """One row per owner; the first two columns are what ``repository-results`` takes as
    ``--owner-type`` and ``--owner-id``. Names from the server are plain text, never markup."""
    table = Table(title="Firewall repositories", title_justify="left")
    for column in ("owner type", "owner id", "name", "format", "type", "quarantine"):
        table.add_column(column)
    container = inventory.repository_container
    if container is not None:
        table.add_row("repository_container", "REPOSITORY_CONTAINER_ID", Text(container.name))
    for entry in inventory.repository_managers:
        manager = entry.manager
        product = " ".join(p for p in (manager.product_name, manager.product_version) if p)
        table.add_row("repository_manager", Text(manager.id), Text(manager.name), "", Text(product))
        for repo in entry.repositories:
            table.add_row(
                "repository",
                Text(repo.repository_id),
                Text(f"  {repo.public_id}"),
                Text(repo.format),
                Text(repo.type),
                "on" if repo.quarantine_enabled else "off",
            )
    return table
