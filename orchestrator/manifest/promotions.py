"""What a manifest promotes: each entry's choice of applications (named, by organization,
by category, or all, less what it leaves out) and the transitions each goes through."""

from __future__ import annotations

from typing import Self

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from orchestrator.manifest.base import ManifestModel
from orchestrator.manifest.values import (
    DurationText,
    OnlyTrue,
    PublicId,
    ScanId,
    StageName,
    Text,
    fail,
)

__all__ = ["PromotionEntry", "Transition"]


class Transition(ManifestModel):
    """One promotion: the latest scan of stage ``from`` (or the scan ``scanId``) is evaluated
    at stage ``to``. The same stage in both re-evaluates it against today's policies."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["from"]}, {"required": ["scanId"]}]}
    )

    source_stage: StageName | None = Field(default=None, alias="from")
    """Stage whose latest scan is promoted."""

    scan_id: ScanId | None = None
    """A particular scan to promote instead (it must still be kept by the server)."""

    target_stage: StageName = Field(alias="to")
    """Stage to evaluate the scan at."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.source_stage is not None and self.scan_id is not None:
            raise fail("source", "give either 'from' or 'scanId', not both")
        if self.source_stage is None and self.scan_id is None:
            raise fail("source", "give 'from' (a stage) or 'scanId' (a scan) to promote")
        return self


_SCOPES = ("applications", "organization", "organizations", "all")
"""Where an entry's applications come from: at most one of these."""
_SELECTORS = (*_SCOPES, "categories")
_EXCLUSIVE = [
    *((a, b) for i, a in enumerate(_SCOPES) for b in _SCOPES[i + 1 :]),
    ("applications", "categories"),
]
"""Pairs of keys an entry may not have together."""


class PromotionEntry(ManifestModel):
    """Which applications, and the transitions each of them goes through, in order."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": [name]} for name in _SELECTORS],
            "not": {"anyOf": [{"required": list(pair)} for pair in _EXCLUSIVE]},
        }
    )

    name: Text | None = None
    """A label for logs and reports."""

    applications: tuple[PublicId, ...] | None = Field(default=None, min_length=1)
    """Public ids of the applications."""

    organization: Text | None = None
    """Every application of this organization and its sub-organizations (a name, a
    Parent/Child path, or an id)."""

    organizations: tuple[Text, ...] | None = Field(default=None, min_length=1)
    """Every application of these organizations and their sub-organizations."""

    all: OnlyTrue | None = None
    """Every application on the server."""

    categories: tuple[Text, ...] | None = Field(default=None, min_length=1)
    """Applications carrying any of these application categories; with 'organization' or
    'organizations', only theirs."""

    include_sub_organizations: bool = True
    """With 'organization' or 'organizations': false takes only the applications placed
    directly in them, not those of their sub-organizations."""

    exclude: tuple[PublicId, ...] = ()
    """Public ids to leave out of what the entry selects."""

    exclude_organizations: tuple[Text, ...] = ()
    """Organizations whose applications (and their sub-organizations') to leave out."""

    skip_if_evaluated_within: DurationText | None = None
    """SKIPPED, not promoted: an application whose latest report at the first transition's
    target stage is younger than this (30m, 12h, 7d; 0m never skips). Overrides the top-level
    value."""

    transitions: tuple[Transition, ...] = Field(min_length=1)
    """Run in order for each application; one that does not complete skips the rest."""

    _line: int | None = PrivateAttr(default=None)

    @property
    def line(self) -> int | None:
        """The line the entry starts at in its manifest, when it was read from one."""
        return self._line

    @property
    def selects(self) -> bool:
        """Whether the entry chooses its applications (by organization, category or 'all')
        rather than naming them: then an application the entry does not apply to is skipped,
        where a named one is an error."""
        return self.applications is None

    @field_validator("applications", "organizations", "categories")
    @classmethod
    def _no_repeats(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        first: dict[str, int] = {}
        key = to_camel(info.field_name or "")
        for index, item in enumerate(value or ()):
            if item in first:
                raise fail(
                    "duplicate",
                    "'{value}' is listed twice (also {key}[{first}])",
                    value=item,
                    key=key,
                    first=first[item],
                    at=(index,),
                )
            first[item] = index
        return value

    @model_validator(mode="after")
    def _selection(self) -> Self:
        given = [name for name in _SCOPES if getattr(self, name) is not None]
        if not given and self.categories is None:
            raise fail(
                "selector",
                "give one of 'applications', 'organization', 'organizations', 'categories' "
                "or 'all: true'",
            )
        if len(given) > 1:
            raise fail(
                "selector",
                "give only one of 'applications', 'organization', 'organizations' and 'all' "
                "(found {found})",
                found=" and ".join(f"'{name}'" for name in given),
            )
        if self.applications is not None:
            self._named_only()
        by_organization = self.organization is not None or self.organizations is not None
        if "include_sub_organizations" in self.model_fields_set and not by_organization:
            raise fail(
                "sub_organizations",
                "'includeSubOrganizations' goes with 'organization' or 'organizations'",
                at=("includeSubOrganizations",),
            )
        single = self.applications is not None and len(self.applications) == 1
        for index, transition in enumerate(self.transitions):
            if transition.scan_id is not None and not single:
                raise fail(
                    "scan_id",
                    "a scan belongs to one application: promote a scanId in an entry "
                    "whose 'applications' lists exactly one",
                    at=("transitions", index, "scanId"),
                )
        return self

    def _named_only(self) -> None:
        """What may not go with ``applications``: it names the applications already."""
        if self.categories is not None:
            raise fail(
                "categories",
                "'categories' chooses among an organization's applications or all of them; "
                "with 'applications', list only the ones you want",
                at=("categories",),
            )
        for key, value in (
            ("exclude", self.exclude),
            ("excludeOrganizations", self.exclude_organizations),
        ):
            if value:
                raise fail(
                    "exclude",
                    "'{key}' goes with 'organization', 'organizations', 'categories' or "
                    "'all'; leave the application out of 'applications' instead",
                    key=key,
                    at=(key,),
                )
