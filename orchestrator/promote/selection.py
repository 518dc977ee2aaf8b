"""Choosing an entry's applications as IQ organizes them: organizations as a tree (an
organization takes its sub-organizations), application categories, and what to leave out.

Everything here works on the server's listings, already fetched (the organizations, every
application with its categories, the categories in use), so choosing for 20,000
applications costs no request. A name two organizations share cannot be chosen between: it is
a manifest problem, found here and raised by the plan with the entry's line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from orchestrator.errors import ManifestProblem
from orchestrator.iq.models import Application, ApplicationCategory, Organization
from orchestrator.manifest.model import Manifest, PromotionEntry

__all__ = ["Chooser", "OrganizationTree", "Selection", "SelectionWarning", "UnknownName"]


@dataclass(frozen=True, slots=True)
class SelectionWarning:
    """A value of an entry that selects nothing, most likely a typo: ``exclude: [catalog-uii]``
    leaves ``catalog-ui`` in. Logged as ``plan.selects_nothing`` by ``plan`` and ``run``."""

    entry_index: int
    entry_name: str | None
    field: str
    """The manifest key, with its list position: ``exclude[1]``."""
    value: str
    message: str


@dataclass(frozen=True, slots=True)
class UnknownName:
    """An organization or category the server does not know: its steps become ERROR results,
    as an unknown public id's do."""

    field: str
    value: str
    reason: str
    organization: str | None = None
    """The organization named, for the result's ``organization``; None for a category."""


@dataclass(slots=True)
class Selection:
    """What an entry that selects chose: public ids in order, and what went wrong."""

    public_ids: list[str] = field(default_factory=list)
    excluded: int = 0
    """Applications of the selection left out by ``exclude`` or ``excludeOrganizations``."""
    unknown: list[UnknownName] = field(default_factory=list)
    warnings: list[SelectionWarning] = field(default_factory=list)
    problems: list[ManifestProblem] = field(default_factory=list)
    """Names two organizations share: the manifest must say which."""


class OrganizationTree:
    """The organizations by ``parentOrganizationId``, to find one by name, path or id and to
    walk down from it: ``GET applications/organization/{id}`` lists direct children only, so
    the subtree is the client's to build."""

    def __init__(self, organizations: Sequence[Organization]) -> None:
        self._by_id = {org.id: org for org in organizations}
        self._children: dict[str, list[str]] = defaultdict(list)
        for org in organizations:
            if org.parent_organization_id is not None:
                self._children[org.parent_organization_id].append(org.id)

    def name_of(self, organization_id: str | None) -> str | None:
        org = self._by_id.get(organization_id or "")
        return org.name if org is not None else None

    def path(self, org: Organization) -> str:
        """``Payments/Payments Cards``: the names from below the root down to ``org``."""
        names = [org.name]
        parent = self._by_id.get(org.parent_organization_id or "")
        seen = {org.id}
        while parent is not None and parent.parent_organization_id is not None:
            if parent.id in seen:
                break  # a cycle in what the server answered: stop rather than loop
            seen.add(parent.id)
            names.append(parent.name)
            parent = self._by_id.get(parent.parent_organization_id)
        return "/".join(reversed(names))

    def find(self, text: str) -> list[Organization]:
        """The organizations ``text`` names: by id; else by name (exactly, else ignoring
        case); else as a ``Parent/Child`` path, matched from the child upwards. None found
        is unknown; more than one, ambiguous."""
        if text in self._by_id:
            return [self._by_id[text]]
        found = _named(text, self._by_id.values(), lambda org: org.name)
        if found or "/" not in text:
            return found
        parts = [part.strip() for part in text.strip("/").split("/")]
        return _named(
            "/".join(parts), self._by_id.values(), lambda org: self._tail(org, len(parts))
        )

    def _tail(self, org: Organization, length: int) -> str:
        """The last ``length`` names of the path down to ``org`` (the root's included)."""
        names: list[str] = []
        seen: set[str] = set()
        current: Organization | None = org
        while current is not None and len(names) < length and current.id not in seen:
            seen.add(current.id)  # a cycle in what the server answered ends the walk
            names.append(current.name)
            current = self._by_id.get(current.parent_organization_id or "")
        return "/".join(reversed(names))

    def scope(self, org: Organization, *, sub_organizations: bool) -> set[str]:
        """The ids of ``org`` and, when asked, of every organization below it."""
        found = {org.id}
        if not sub_organizations:
            return found
        pending = [org.id]
        while pending:
            for child in self._children.get(pending.pop(), ()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found


T = TypeVar("T")


def _named(text: str, candidates: Iterable[T], name: Callable[[T], str]) -> list[T]:
    """The candidates whose name is ``text``, else those whose name is it ignoring case."""
    exact: list[T] = []
    folded: list[T] = []
    wanted = text.casefold()
    for candidate in candidates:
        given = name(candidate)
        if given == text:
            exact.append(candidate)
        elif given.casefold() == wanted:
            folded.append(candidate)
    return exact or folded


Named = tuple[str, str]
"""Where a value sits in an entry, and the value: ``("organizations[1]", "Retail")``."""


class Chooser:
    """Chooses each selecting entry's applications from the server's listings."""

    def __init__(
        self,
        manifest: Manifest,
        applications: Sequence[Application],
        tree: OrganizationTree,
        categories: Sequence[ApplicationCategory],
    ) -> None:
        self.manifest = manifest
        self.applications = applications
        self.tree = tree
        self.categories = categories

    def choose(self, entry_index: int, entry: PromotionEntry) -> Selection:
        """The public ids ``entry`` selects, sorted, with the names that selected nothing.

        Organizations and categories must both hold; within each, any one will do."""
        selection = Selection()
        pool = list(self.applications)
        by_org = self._organizations(entry_index, entry, selection)
        for where, ids in (by_org or {}).items():
            if not any(a.organization_id in ids for a in pool):
                selection.warnings.append(_warning(entry_index, entry, where, "has no application"))
        if by_org is not None:
            within = set().union(*by_org.values())
            pool = [a for a in pool if a.organization_id in within]
        by_category = self._categories(entry, selection)
        for where, tag_ids in (by_category or {}).items():
            if not any(_tag_ids(a) & tag_ids for a in pool):
                what = "is carried by no application" + (" of the organization" if by_org else "")
                selection.warnings.append(_warning(entry_index, entry, where, what))
        if by_category is not None:
            carried = set().union(*by_category.values())
            pool = [a for a in pool if _tag_ids(a) & carried]
        kept = self._without_excluded(entry_index, entry, pool, selection)
        selection.public_ids = sorted(a.public_id for a in kept)
        return selection

    def _organizations(
        self, entry_index: int, entry: PromotionEntry, selection: Selection
    ) -> dict[Named, set[str]] | None:
        """The organization ids each organization name takes; None when the entry does not
        select by organization. An unknown name is noted, an ambiguous one a problem."""
        if entry.organization is not None:
            names = [("organization", entry.organization)]
        elif entry.organizations is not None:
            names = [(f"organizations[{i}]", name) for i, name in enumerate(entry.organizations)]
        else:
            return None
        scopes: dict[Named, set[str]] = {}
        for where, name in names:
            found = self._found(entry_index, (where, name), selection)
            if found is None:
                selection.unknown.append(
                    UnknownName(
                        where,
                        name,
                        f"organization '{name}' is not known to the server (give its name "
                        "as IQ Server shows it, a Parent/Child path, or its id)",
                        organization=name,
                    )
                )
            elif found:
                sub = entry.include_sub_organizations
                scopes[(where, name)] = self.tree.scope(found[0], sub_organizations=sub)
        return scopes

    def _found(
        self, entry_index: int, named: Named, selection: Selection
    ) -> list[Organization] | None:
        """The one organization ``named`` names; None if none; empty if several, which is a
        problem for the manifest to settle."""
        where, name = named
        found = self.tree.find(name)
        if len(found) <= 1:
            return found or None
        listed = ", ".join(f"'{self.tree.path(o)}' (id {o.id})" for o in found)
        error = self.manifest.problem(
            entry_index,
            where,
            f"{len(found)} organizations are named '{name}': {listed}; write a Parent/Child "
            f"path such as '{self.tree.path(found[0])}', or the id",
        )
        selection.problems += error.problems
        return []

    def _categories(
        self, entry: PromotionEntry, selection: Selection
    ) -> dict[Named, set[str]] | None:
        """The category ids each category name stands for (a name several owners use, all of
        theirs); None when the entry does not select by category."""
        if entry.categories is None:
            return None
        found: dict[Named, set[str]] = {}
        for index, name in enumerate(entry.categories):
            where = f"categories[{index}]"
            ids = {c.id for c in _named(name, self.categories, lambda c: c.name)}
            if ids:
                found[(where, name)] = ids
                continue
            in_use = ", ".join(sorted({c.name for c in self.categories})) or "none"
            selection.unknown.append(
                UnknownName(
                    where,
                    name,
                    f"category '{name}' is not known to the server: no application carries "
                    f"it (categories in use: {in_use})",
                )
            )
        return found

    def _without_excluded(
        self,
        entry_index: int,
        entry: PromotionEntry,
        pool: list[Application],
        selection: Selection,
    ) -> list[Application]:
        """``pool`` without the excluded organizations (and theirs) and applications; an
        exclusion that leaves nothing out is warned of: ``exclude: [catalog-uii]`` keeps
        catalog-ui in."""
        left_out: set[str] = set()
        for index, name in enumerate(entry.exclude_organizations):
            named = (f"excludeOrganizations[{index}]", name)
            found = self._found(entry_index, named, selection)
            if found is None:
                selection.warnings.append(
                    _warning(entry_index, entry, named, "is no organization the server knows")
                )
            elif found:
                ids = self.tree.scope(found[0], sub_organizations=True)
                hit = {a.public_id for a in pool if a.organization_id in ids}
                if not hit:
                    what = "leaves out no application of the selection"
                    selection.warnings.append(_warning(entry_index, entry, named, what))
                left_out |= hit
        chosen = {a.public_id for a in pool}
        for index, public_id in enumerate(entry.exclude):
            if public_id not in chosen:
                what = "is no application of the selection: nothing is left out"
                named = (f"exclude[{index}]", public_id)
                selection.warnings.append(_warning(entry_index, entry, named, what))
            left_out.add(public_id)
        kept = [a for a in pool if a.public_id not in left_out]
        selection.excluded = len(pool) - len(kept)
        return kept


def _warning(entry_index: int, entry: PromotionEntry, named: Named, what: str) -> SelectionWarning:
    where, value = named
    return SelectionWarning(entry_index, entry.name, where, value, f"{where} '{value}' {what}")


def _tag_ids(app: Application) -> set[str]:
    return {t.tag_id for t in app.application_tags or [] if t.tag_id}
