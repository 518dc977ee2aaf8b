"""The manifest: which applications to promote or re-evaluate, and how, read from YAML.

:func:`load_manifest` and :func:`parse_manifest` return a validated, immutable
:class:`Manifest`, or raise one :class:`~orchestrator.errors.ManifestError` that lists every
problem found, each with its file, line and field. ``docs/manifest.md`` is the reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from orchestrator import defaults
from orchestrator.errors import ManifestError, ManifestProblem
from orchestrator.iq.models import Stage
from orchestrator.manifest.base import ManifestModel
from orchestrator.manifest.problems import problems_from, shown
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.manifest.source import DataPath, collector_paused, read_document
from orchestrator.manifest.webhook import WebhookSection

__all__ = [
    "Manifest",
    "PollingSettings",
    "PromotionEntry",
    "ServerSettings",
    "Transition",
    "WebhookSection",
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


_SELECTORS = ("applications", "organization", "all")


class PromotionEntry(ManifestModel):
    """Which applications, and the transitions each of them goes through, in order."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [name]} for name in _SELECTORS]}
    )

    name: Text | None = None
    """A label for logs and reports."""

    applications: tuple[PublicId, ...] | None = Field(default=None, min_length=1)
    """Public ids of the applications."""

    organization: Text | None = None
    """Every application of this organization (name or id)."""

    all: Annotated[Literal[True], BeforeValidator(_only_true)] | None = None
    """Every application on the server."""

    exclude: tuple[PublicId, ...] = ()
    """Public ids to leave out of an organization or 'all'."""

    transitions: tuple[Transition, ...] = Field(min_length=1)
    """Run in order for each application; one that does not complete skips the rest."""

    @field_validator("applications")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        first: dict[str, int] = {}
        for index, public_id in enumerate(value or ()):
            if public_id in first:
                raise _fail(
                    "duplicate",
                    "'{value}' is listed twice (also applications[{first}])",
                    value=public_id,
                    first=first[public_id],
                    at=(index,),
                )
            first[public_id] = index
        return value

    @model_validator(mode="after")
    def _selection(self) -> Self:
        given = [name for name in _SELECTORS if getattr(self, name) is not None]
        if not given:
            raise _fail("selector", "give one of 'applications', 'organization' or 'all: true'")
        if len(given) > 1:
            raise _fail(
                "selector",
                "give only one of 'applications', 'organization' and 'all' (found {found})",
                found=" and ".join(f"'{name}'" for name in given),
            )
        if self.exclude and self.applications is not None:
            raise _fail(
                "exclude",
                "'exclude' goes with 'organization' or 'all'; leave the application out of "
                "'applications' instead",
                at=("exclude",),
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

    promotions: tuple[PromotionEntry, ...] = Field(min_length=1)
    """Entries, run in order for each application; different applications run concurrently."""

    repository_results: RepositoryResultsSection | None = None
    """A firewall summary (Repository Results API) to add to each run's report."""

    webhook: WebhookSection | None = None
    """Listen for IQ Server's Application Evaluation webhook while the run goes."""

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
    return manifest, problems
