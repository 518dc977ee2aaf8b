"""The manifest: which applications to promote or re-evaluate, and how, read from YAML.

:func:`load_manifest` and :func:`parse_manifest` return a validated, immutable
:class:`Manifest`, or raise one :class:`~orchestrator.errors.ManifestError` that lists every
problem found, each with its file, line and field. ``docs/manifest.md`` is the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from orchestrator import defaults
from orchestrator.errors import ManifestError, ManifestProblem
from orchestrator.manifest.base import ManifestModel
from orchestrator.manifest.problems import problems_from, shown
from orchestrator.manifest.promotions import PromotionEntry, Transition
from orchestrator.manifest.repository_results import RepositoryResultsSection
from orchestrator.manifest.source import (
    DataPath,
    UnsetReference,
    collector_paused,
    read_document,
)
from orchestrator.manifest.values import (
    Concurrency,
    Duration,
    DurationText,
    MaybeText,
    PasswordReference,
    Seconds,
    ServerUrl,
    Version,
    fail,
)
from orchestrator.manifest.webhook import WebhookSection

__all__ = [
    "Duration",
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

MAX_MANIFEST_BYTES = 16 << 20
"""The largest manifest read: 16 MiB. 100,000 applications listed by public id take about
3 MiB; a bigger file is a mistake (or an attack) that would take gigabytes to read."""
_VERBATIM: tuple[DataPath, ...] = (("server", "password"),)
"""Kept as written: the password stays a ${VAR} reference until the moment it is used."""
_OPTIONAL: tuple[DataPath, ...] = (("server", "url"), ("server", "username"))
"""Values an option or the environment may give instead: ``url: ${IQ_SERVER_URL}`` with the
variable unset is no error while ``--server-url`` (or ``--simulate``) gives the URL."""


# --- The model ---------------------------------------------------------------------------


class ServerSettings(ManifestModel):
    """Where IQ Server is and how to reach it. The CLI's options and the environment
    (IQ_SERVER_URL, IQ_USERNAME, IQ_PASSWORD) take precedence over these."""

    url: ServerUrl = Field(default=None, examples=["${IQ_SERVER_URL}", "https://iq.example.com"])
    """Base URL of IQ Server, such as https://iq.example.com; usually ${IQ_SERVER_URL}."""

    username: MaybeText = None
    """User name or user token name; usually ${IQ_USERNAME}."""

    password_reference: PasswordReference | None = Field(
        default=None,
        alias="password",
        json_schema_extra={"pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"},
    )
    """Only a reference such as ${IQ_PASSWORD}: read from the environment when used, never
    kept in the manifest or in reports."""

    verify_tls: bool = True
    """Check the server's TLS certificate. Turn off only for a test server."""

    ca_bundle: MaybeText = None
    """PEM file of the certificate authorities to trust; relative to the manifest's folder.
    Else REQUESTS_CA_BUNDLE or SSL_CERT_FILE, else the system's."""

    client_cert: MaybeText = None
    """PEM file of a client certificate to present (and its key, unless clientKey); relative
    to the manifest's folder."""

    client_key: MaybeText = None
    """PEM file of the client certificate's private key; relative to the manifest's folder."""

    proxy: MaybeText = None
    """An HTTP proxy for every request, such as http://proxy.example.com:3128; else
    HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment."""

    connect_timeout_seconds: Seconds = defaults.CONNECT_TIMEOUT
    """Most seconds to open a connection to the server (TCP and TLS)."""

    timeout_seconds: Seconds = defaults.READ_TIMEOUT
    """Most seconds one request may wait for its answer, once connected."""

    _unset: dict[str, UnsetReference] = PrivateAttr(default_factory=dict)

    def unset_reference(self, key: str) -> UnsetReference | None:
        """The unset ``${NAME}`` that ``key`` (``url``, ``username``) was written as, if any:
        what to name when no other source gives the value either."""
        return self._unset.get(key)

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
            raise fail(
                "polling",
                "must be at least initialInterval ({initial})",
                initial=f"{self.initial_interval:g}",
                at=("maxInterval",),
            )
        return self


class Manifest(ManifestModel):
    """An iq-promote manifest: what to promote or re-evaluate on IQ Server, and how."""

    model_config = ConfigDict(
        title="iq-promote manifest",
        json_schema_extra={"patternProperties": {"^x-": {}}},
    )

    version: Version
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

    webhook: WebhookSection | None = None
    """Listen for IQ Server's Application Evaluation webhook while the run goes."""

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


_NOT_MEANING = frozenset(
    {"server", "concurrency", "polling", "promotion_timeout", "repository_results", "webhook"}
)
"""Settings that change how a run goes, not which steps it has: a resume survives them."""


def manifest_digest(manifest: Manifest) -> str:
    """What a manifest means, for ``--resume``: its steps, normalised. Comments, layout,
    quoting, anchors and settings such as concurrency or polling leave it the same, so an
    edit to any of those still resumes; a changed entry or transition does not."""
    meaning = manifest.model_dump(mode="json", exclude=set(_NOT_MEANING))
    text = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Reading -----------------------------------------------------------------------------


def load_manifest(path: Path | str, env: Mapping[str, str] | None = None) -> Manifest:
    """Read and validate the manifest at ``path``; ``${VAR}`` comes from ``env`` (default:
    the process environment). Raises ManifestError naming every problem."""
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            message = (
                f"the manifest has {size / (1 << 20):.1f} MiB, more than the "
                f"{MAX_MANIFEST_BYTES >> 20} MiB a manifest may have: select applications "
                "by organization, category or 'all' rather than list them one by one"
            )
            raise ManifestError([ManifestProblem(source, None, "", message)])
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
    if len(text) > MAX_MANIFEST_BYTES:
        message = f"the manifest is longer than the {MAX_MANIFEST_BYTES >> 20} MiB it may be"
        raise ManifestError([ManifestProblem(source, None, "", message)])
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
    document = read_document(text, source=source, env=env, verbatim=_VERBATIM, optional=_OPTIONAL)
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
    if manifest.server is not None:
        keys = {f"server.{key}": key for key in ("url", "username")}
        manifest.server._unset = {keys[u.field]: u for u in document.unset}
    for index, entry in enumerate(manifest.promotions):
        entry._line = document.line_of(("promotions", index))
    return manifest, problems
