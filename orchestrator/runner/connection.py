"""Where a command connects: the server the options, the environment or the manifest name,
or the embedded simulator seeded from the manifest.

Every command that talks to a server (``run``, ``plan``, ``repositories``,
``repository-results``) takes its settings from :func:`client_settings`, so a value comes from
the same place whichever command the user ran.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from orchestrator import defaults
from orchestrator.errors import UsageError
from orchestrator.iq.transport import (
    ClientSettings,
    Credentials,
    environment_proxy,
    normalise_base_url,
)
from orchestrator.manifest.model import Manifest, ServerSettings
from orchestrator.secrets import MIN_SECRET, SCRUBBER

if TYPE_CHECKING:
    from orchestrator.simulator import SimulatorConfig

log = structlog.get_logger("orchestrator.runner")

SIMULATED = Credentials("admin", "admin123")
"""The embedded simulator's default account."""


CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
"""Where the tools around iq-promote (requests, curl, OpenSSL) look for a CA bundle."""


def client_settings(
    server_url: str | None,
    username: str | None,
    *,
    ca_bundle: Path | None = None,
    proxy: str | None = None,
    server: ServerSettings | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientSettings:
    """A value comes from the option, else the environment, else the manifest's ``server``;
    the password only from the environment (IQ_PASSWORD) or the manifest's reference to it."""
    env = os.environ if env is None else env
    url = server_url or env.get("IQ_SERVER_URL") or (server.url if server else None)
    if not url:
        raise UsageError(
            f"no server URL{_unset(server, 'url')}: give --server-url, set IQ_SERVER_URL, "
            "or set server.url"
        )
    user = username or env.get("IQ_USERNAME") or (server.username if server else None)
    password = env.get("IQ_PASSWORD") or (server.resolve_password(env) if server else None)
    if not user or not password:
        said = _unset(server, "username") if not user else ""
        raise UsageError(
            f"no credentials{said}: set IQ_USERNAME and IQ_PASSWORD (a user token pair works too)"
        )
    _check_credentials(user, password)
    SCRUBBER.add(password, username=user)
    bundle = str(ca_bundle) if ca_bundle else (server.ca_bundle if server else None)
    bundle = bundle or next((env[v] for v in CA_BUNDLE_VARIABLES if env.get(v)), None)
    try:
        settings = ClientSettings(
            base_url=url,
            credentials=Credentials(user, password),
            verify_tls=server.verify_tls if server else True,
            ca_bundle=bundle,
            client_cert=server.client_cert if server else None,
            client_key=server.client_key if server else None,
            proxy=proxy or (server.proxy if server else None),
            connect_timeout=server.connect_timeout_seconds if server else defaults.CONNECT_TIMEOUT,
            read_timeout=server.timeout_seconds if server else defaults.READ_TIMEOUT,
        )
        if settings.proxy is None:
            environment_proxy(normalise_base_url(url))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return settings


def _unset(server: ServerSettings | None, key: str) -> str:
    reference = server.unset_reference(key) if server is not None else None
    return f" (the manifest's {reference})" if reference is not None else ""


def _check_credentials(user: str, password: str) -> None:
    """Refuse credentials that cannot be sent, or kept out of what is written; never say the
    password, not even a part of it."""
    for name, value in (("IQ_USERNAME", user), ("IQ_PASSWORD", password)):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"{name} is not valid UTF-8 text (it holds bytes no character encodes): set "
                "it again, as UTF-8"
            ) from None
    if ":" in user:
        raise UsageError("IQ_USERNAME holds ':', which Basic authentication cannot carry")
    if len(password) < MIN_SECRET:
        raise UsageError(
            f"IQ_PASSWORD has fewer than {MIN_SECRET} characters: too short to be kept out of "
            "logs and reports reliably; use a longer password, or a user token (its "
            "passcode is long)"
        )


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where an embedded simulator sends its webhook deliveries, and the secret it signs
    them with."""

    url: str
    secret: str | None = field(repr=False)


@asynccontextmanager
async def connected(
    settings: ClientSettings | None, manifest: Manifest, webhook: WebhookTarget | None = None
) -> AsyncIterator[ClientSettings]:
    """Yield ``settings``; or, when they are None, those of an embedded simulator seeded with
    what the manifest names, serving for as long as the block runs (and sending its webhook
    deliveries to ``webhook``, if given).

    The simulator is imported only here, so a run against a real server never loads it."""
    if settings is not None:
        yield settings
        return
    from orchestrator.simulator import Simulator

    config = simulator_config(manifest)
    if webhook is not None:
        config = dataclasses.replace(config, webhook_url=webhook.url, webhook_secret=webhook.secret)
    async with Simulator(config, port=0) as sim:
        log.info("simulator.started", url=sim.base_url)
        yield ClientSettings(sim.base_url, SIMULATED)


def simulator_config(manifest: Manifest) -> SimulatorConfig:
    """A small, quick portfolio holding every application and organization the manifest
    names, so that a ``--simulate`` rehearsal resolves what the real run would."""
    from orchestrator.simulator import SimulatorConfig
    from orchestrator.simulator.seeding import seeded_from

    return seeded_from(
        manifest, SimulatorConfig(apps=24, organizations=6, workers=8, eval_time=0.4)
    )
