"""Firewall Repository Results: export them (``repository-results``), list the owners whose
results can be read (``repositories``), and summarise them for a run's report."""

from orchestrator.firewall.command import repositories, repository_results
from orchestrator.firewall.inventory import FirewallInventory, read_inventory
from orchestrator.firewall.query import Owner, QueryOptions, build_query, resolve_owner
from orchestrator.firewall.results import (
    ApiChoice,
    Generation,
    ResultsPage,
    ResultsRequest,
    walk_pages,
)
from orchestrator.firewall.summary import (
    FirewallSummary,
    QuarantinedComponent,
    RepositoryResultsSection,
    summarize,
)
from orchestrator.firewall.writers import OutputFormat, open_rows

__all__ = [
    "ApiChoice",
    "FirewallInventory",
    "FirewallSummary",
    "Generation",
    "OutputFormat",
    "Owner",
    "QuarantinedComponent",
    "QueryOptions",
    "RepositoryResultsSection",
    "ResultsPage",
    "ResultsRequest",
    "build_query",
    "open_rows",
    "read_inventory",
    "repositories",
    "repository_results",
    "resolve_owner",
    "summarize",
    "walk_pages",
]
