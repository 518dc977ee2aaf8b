"""The manifest: which applications to promote or re-evaluate, and how, read from YAML.

:func:`load_manifest` and :func:`parse_manifest` return a validated, immutable
:class:`Manifest`, or raise one :class:`~orchestrator.errors.ManifestError` that lists every
problem found, each with its file, line and field. ``docs/manifest.md`` is the reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    PrivateAttr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from orchestrator import defaults
from orchestrator.errors import ManifestError, ManifestProblem
from orchestrator.iq.models import Stage
from orchestrator.manifest.base import ManifestModel
from orchestrator.manifest.problems import problems_from, shown
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.manifest.source import DataPath, collector_paused, read_document

__all__ = [
    "Duration",
    "Manifest",
    "PollingSettings",
    "PromotionEntry",
    "ServerSettings",
    "Transition",
    "load_manifest",
    "parse_manifest",
]

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
_VERBATIM: tuple[DataPath, ...] = (("server", "password"),)
"""Kept as written: the password stays a ${VAR} reference until the moment it is used."""


# --- Value types, each with a message a person can act on ---------------------------------


def _fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    """A validation error; ``at`` in ``context`` names the place below the current model."""
    return PydanticCustomError(kind, message, context or None)


def _no_bool(value: object) -> object:
    """YAML reads ``yes``/``true`` as booleans, which pydantic would take for 1."""
    if isinstance(value, bool):
        raise _fail("number_type", "must be a number, not {got}", got=shown(value))
    return value


def _blank_is_none(value: object) -> object:
    """``${VAR:-}`` gives an empty string: that means "not set here"."""
    return None if isinstance(value, str) and not value.strip() else value


def _version(value: object) -> object:
    if (value == 1 and not isinstance(value, bool | float)) or value == "1":
        return 1
    raise _fail(
        "version", "unsupported version {got}: this iq-promote reads version 1", got=shown(value)
    )


_STAGES = tuple(stage.value for stage in Stage)


def _only_true(value: object) -> object:
    if value is not True:
        raise _fail("all", "can only be true: 'all: true' selects every application")
    return value


def _stage(value: object) -> object:
    if isinstance(value, Stage) or value in _STAGES:
        return value
    stages = ", ".join(_STAGES)
    if isinstance(value, str):
        raise _fail("stage", "'{value}' is not one of {stages}", value=value, stages=stages)
    raise _fail("stage", "must be one of {stages}, not {got}", stages=stages, got=shown(value))


_SCAN_ID = re.compile(r"[0-9a-fA-F]{32}")


def _scan_id(value: str) -> str:
    if not _SCAN_ID.fullmatch(value):
        raise _fail(
            "scan_id",
            "'{value}' is not a scan id (32 hexadecimal characters, as in a report's URL)",
            value=value,
        )
    return value


def _public_id(value: str) -> str:
    if any(c.isspace() for c in value):
        raise _fail(
            "public_id",
            "'{value}' is not a public id (no spaces; separate ids with commas)",
            value=value,
        )
    return value


def _concurrency(value: object) -> object:
    if value == "auto":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # from ${VAR}
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000:
        return value
    raise _fail(
        "concurrency",
        "must be a whole number from 1 to 1000, or 'auto', not {got}",
        got=shown(value),
    )


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _server_url(value: str) -> str:
    value = value.strip()
    try:
        url = _HTTP_URL.validate_python(value)
    except ValidationError:
        # The text is not echoed: a mistyped URL may hold a password.
        raise _fail(
            "url", "must be an http:// or https:// URL, such as https://iq.example.com"
        ) from None
    if url.username or url.password:
        raise _fail(
            "url",
            "credentials do not belong in the URL: set IQ_USERNAME and IQ_PASSWORD instead",
        )
    return value


_PASSWORD_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _password_reference(value: str) -> str:
    if not _PASSWORD_REFERENCE.fullmatch(value.strip()):
        # Never echo the value: it may be the password itself.
        raise _fail(
            "plain_password",
            "a password must not be written in the manifest: write ${IQ_PASSWORD} "
            "(or another ${VARIABLE}) and set it in the environment",
        )
    return value.strip()


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time as a manifest writes it (``30m``, ``12h``, ``7d``); kept as written, so
    that a message says "within 24h" where the manifest said 24h."""

    text: str
    delta: timedelta

    def __str__(self) -> str:
        return self.text


_DURATION = re.compile(r"\s*([0-9]+)\s*([mhd])\s*")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def _duration(value: object) -> object:
    if isinstance(value, Duration):
        return value
    found = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise _fail(
            "duration",
            "{got} is not a duration: write a whole number and m (minutes), h (hours) or "
            "d (days), such as 30m, 12h or 7d",
            got=shown(value),
        )
    amount, unit = found.groups()
    return Duration(f"{int(amount)}{unit}", int(amount) * _UNITS[unit])


Seconds = Annotated[float, Field(gt=0), BeforeValidator(_no_bool)]
StageName = Annotated[Stage, BeforeValidator(_stage)]
PublicId = Annotated[str, Field(min_length=1), AfterValidator(_public_id)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ScanId = Annotated[
    str,
    AfterValidator(_scan_id),
    Field(json_schema_extra={"pattern": "^[0-9a-fA-F]{32}$"}),
]
Concurrency = Annotated[
    Annotated[int, Field(ge=1, le=1000)] | Literal["auto"], BeforeValidator(_concurrency)
]
DurationText = Annotated[
    Duration,
    BeforeValidator(_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]+[mhd]$", "examples": ["12h", "7d"]}),
]


# --- The model ---------------------------------------------------------------------------


class ServerSettings(ManifestModel):
    """Where IQ Server is and how to reach it. The CLI's options and the environment
    (IQ_SERVER_URL, IQ_USERNAME, IQ_PASSWORD) take precedence over these."""

    url: Annotated[
        Annotated[str, AfterValidator(_server_url)] | None, BeforeValidator(_blank_is_none)
    ] = Field(default=None, examples=["${IQ_SERVER_URL}", "https://iq.example.com"])
    """Base URL of IQ Server, such as https://iq.example.com; usually ${IQ_SERVER_URL}."""

    username: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    """User name or user token name; usually ${IQ_USERNAME}."""

    password_reference: Annotated[str, AfterValidator(_password_reference)] | None = Field(
        default=None,
        alias="password",
        json_schema_extra={"pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"},
    )
    """Only a reference such as ${IQ_PASSWORD}: read from the environment when used, never
    kept in the manifest or in reports."""

    verify_tls: bool = True
    """Check the server's TLS certificate. Turn off only for a test server."""

    ca_bundle: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    """PEM file of the certificate authorities to trust; relative to the manifest's folder.
    Else REQUESTS_CA_BUNDLE or SSL_CERT_FILE, else the system's."""

    client_cert: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    """PEM file of a client certificate to present (and its key, unless clientKey); relative
    to the manifest's folder."""

    client_key: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    """PEM file of the client certificate's private key; relative to the manifest's folder."""

    proxy: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    """An HTTP proxy for every request, such as http://proxy.example.com:3128; else
    HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment."""

    connect_timeout_seconds: Seconds = defaults.CONNECT_TIMEOUT
    """Most seconds to open a connection to the server (TCP and TLS)."""

    timeout_seconds: Seconds = defaults.READ_TIMEOUT
    """Most seconds one request may wait for its answer, once connected."""

    @property
    def password_variable(self) -> str | None:
        """The environment variable that holds the password, if the manifest names one."""
        return self.password_reference[2:-1] if self.password_reference else None

    def resolve_password(self, env: Mapping[str, str] | None = None) -> str | None:
        """The password from ``env`` (default: the process environment), or None if unset."""
        name = self.password_variable
        if name is None:
            return None
        return (os.environ if env is None else env).get(name) or None

    @property
    def password(self) -> str | None:
        """The password, read from the process environment now; None if unset."""
        return self.resolve_password()


class PollingSettings(ManifestModel):
    """How often to ask whether an evaluation has finished: soon at first, then less often."""

    initial_interval: Seconds = defaults.POLL_INITIAL
    """Seconds before the first status check."""

    max_interval: Seconds = defaults.POLL_MAX
    """Longest wait between two status checks."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_interval < self.initial_interval:
            raise _fail(
                "polling",
                "must be at least initialInterval ({initial})",
                initial=f"{self.initial_interval:g}",
                at=("maxInterval",),
            )
        return self


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
            raise _fail("source", "give either 'from' or 'scanId', not both")
        if self.source_stage is None and self.scan_id is None:
            raise _fail("source", "give 'from' (a stage) or 'scanId' (a scan) to promote")
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

    all: Annotated[Literal[True], BeforeValidator(_only_true)] | None = None
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
                raise _fail(
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
            raise _fail(
                "selector",
                "give one of 'applications', 'organization', 'organizations', 'categories' "
                "or 'all: true'",
            )
        if len(given) > 1:
            raise _fail(
                "selector",
                "give only one of 'applications', 'organization', 'organizations' and 'all' "
                "(found {found})",
                found=" and ".join(f"'{name}'" for name in given),
            )
        if self.applications is not None:
            self._named_only()
        by_organization = self.organization is not None or self.organizations is not None
        if "include_sub_organizations" in self.model_fields_set and not by_organization:
            raise _fail(
                "sub_organizations",
                "'includeSubOrganizations' goes with 'organization' or 'organizations'",
                at=("includeSubOrganizations",),
            )
        single = self.applications is not None and len(self.applications) == 1
        for index, transition in enumerate(self.transitions):
            if transition.scan_id is not None and not single:
                raise _fail(
                    "scan_id",
                    "a scan belongs to one application: promote a scanId in an entry "
                    "whose 'applications' lists exactly one",
                    at=("transitions", index, "scanId"),
                )
        return self

    def _named_only(self) -> None:
        """What may not go with ``applications``: it names the applications already."""
        if self.categories is not None:
            raise _fail(
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
                raise _fail(
                    "exclude",
                    "'{key}' goes with 'organization', 'organizations', 'categories' or "
                    "'all'; leave the application out of 'applications' instead",
                    key=key,
                    at=(key,),
                )


class Manifest(ManifestModel):
    """An iq-promote manifest: what to promote or re-evaluate on IQ Server, and how."""

    model_config = ConfigDict(
        title="iq-promote manifest",
        json_schema_extra={"patternProperties": {"^x-": {}}},
    )

    version: Annotated[Literal[1], BeforeValidator(_version)]
    """Version of the manifest format: 1."""

    server: ServerSettings | None = None
    """Where IQ Server is and how to reach it."""

    concurrency: Concurrency | None = None
    """Most evaluations outstanding at once (1-1000), or 'auto' to adapt to the server."""

    promotion_timeout: Seconds = defaults.PROMOTION_TIMEOUT
    """Seconds one promotion may take, from submission to its final status."""

    polling: PollingSettings = Field(default_factory=PollingSettings)
    """How often to check on a submitted evaluation."""

    skip_if_evaluated_within: DurationText | None = None
    """Every entry's skipIfEvaluatedWithin, unless the entry gives its own."""

    promotions: tuple[PromotionEntry, ...] = Field(min_length=1)
    """Entries, run in order for each application; different applications run concurrently."""

    repository_results: RepositoryResultsSection | None = None
    """A firewall summary (Repository Results API) to add to each run's report."""

    _source: str = PrivateAttr(default="<manifest>")

    @property
    def source(self) -> str:
        """The file (or name) the manifest was read from, as its errors name it."""
        return self._source

    def skip_window(self, entry: PromotionEntry) -> Duration | None:
        """How recent a report at the target stage makes ``entry`` skip an application: the
        entry's own skipIfEvaluatedWithin, else the manifest's; None when it never skips."""
        window = entry.skip_if_evaluated_within or self.skip_if_evaluated_within
        return window if window is not None and window.delta else None

    def problem(self, entry_index: int, field: str, message: str) -> ManifestError:
        """A problem with an entry that only the server's answers reveal (a name two
        organizations share), at the entry's line, as if validation had found it."""
        entry = self.promotions[entry_index]
        where = f"promotions[{entry_index}]" + (f".{field}" if field else "")
        return ManifestError([ManifestProblem(self.source, entry.line, where, message)])

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        """Top-level ``x-`` keys hold YAML anchors to reuse (as in Compose files); ignored."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of a manifest, by YAML key, for editors and ``iq-promote schema``."""
        return {"$schema": SCHEMA_URI, **cls.model_json_schema(by_alias=True)}


# --- Reading -----------------------------------------------------------------------------


def load_manifest(path: Path | str, env: Mapping[str, str] | None = None) -> Manifest:
    """Read and validate the manifest at ``path``; ``${VAR}`` comes from ``env`` (default:
    the process environment). Raises ManifestError naming every problem."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ManifestError([ManifestProblem(source, None, "", f"cannot read: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as UTF-8"
        raise ManifestError([ManifestProblem(source, line, "", message)]) from None
    manifest = parse_manifest(text, source=source, env=env)
    server = manifest.server
    if server is None:
        return manifest
    files = {"ca_bundle": server.ca_bundle, "client_cert": server.client_cert}
    files["client_key"] = server.client_key
    placed = {
        # Relative to the manifest's folder; an absolute path stays as it is.
        name: str(path.parent / os.path.expanduser(value))
        for name, value in files.items()
        if value is not None
    }
    if not placed:
        return manifest
    return manifest.model_copy(update={"server": server.model_copy(update=placed)})


def parse_manifest(
    text: str, *, source: str = "<manifest>", env: Mapping[str, str] | None = None
) -> Manifest:
    """Validate manifest ``text``; ``source`` names it in errors. Raises ManifestError."""
    with collector_paused():
        # The YAML nodes and plain data are freed on return, before the collector resumes.
        manifest, problems = _validate(text, source, os.environ if env is None else env)
    if manifest is None or problems:
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ManifestError(problems)
    return manifest


def _validate(
    text: str, source: str, env: Mapping[str, str]
) -> tuple[Manifest | None, list[ManifestProblem]]:
    document = read_document(text, source=source, env=env, verbatim=_VERBATIM)
    problems = list(document.problems)
    if not isinstance(document.data, dict):
        what = "empty" if document.data is None else f"{shown(document.data)}, not a mapping"
        message = f"the manifest is {what}: it needs 'version: 1' and 'promotions:'"
        problems.append(ManifestProblem(source, document.line_of(()), "", message))
        return None, problems
    try:
        manifest = Manifest.model_validate(document.data, by_alias=True, by_name=False)
    except ValidationError as exc:
        return None, [*problems, *problems_from(exc, document, Manifest)]
    # Lines are known only now, while the YAML nodes are at hand; the plan's look-ups later
    # find problems (a shared organization name) that must point at the entry too.
    manifest._source = source
    for index, entry in enumerate(manifest.promotions):
        entry._line = document.line_of(("promotions", index))
    return manifest, problems
