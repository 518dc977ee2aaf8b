"""TLS as corporate networks have it: a server certificate signed by the company's own CA
(trusted through --ca-bundle, server.caBundle, REQUESTS_CA_BUNDLE or SSL_CERT_FILE), and a
server that asks for a client certificate. The simulator serves HTTPS on 127.0.0.1 with
certificates trustme makes for the test."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
import trustme

from orchestrator.errors import UnreachableError
from orchestrator.iq.retry import RetryPolicy
from orchestrator.report.results import Outcome
from orchestrator.runner.request import RunRequest
from orchestrator.runner.run import run
from orchestrator.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

CREDENTIALS = {"IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"}
LIMIT = 30


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def https_simulator(
    authority: trustme.CA, *, client_certificates: bool = False
) -> AsyncIterator[Simulator]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    if client_certificates:
        context.verify_mode = ssl.CERT_REQUIRED
        authority.configure_trust(context)
    config = SimulatorConfig(apps=6, workers=2, eval_time=0.01)
    async with Simulator(config, port=0, ssl_context=context) as sim:
        yield sim


def manifest(path: Path, sim: Simulator, server: str = "") -> Path:
    app = sim.portfolio.applications[0].public_id
    path.write_text(
        f"version: 1\nserver:\n  url: {sim.base_url}\n{server}"
        "polling: {initialInterval: 0.02, maxInterval: 0.1}\n"
        f"promotions:\n  - applications: [{app}]\n    transitions: [{{from: build, to: build}}]\n",
        encoding="utf-8",
    )
    return path


def request(path: Path, tmp_path: Path, **env: str) -> RunRequest:
    return RunRequest(
        manifest=path,
        report=tmp_path / "report.json",
        env={**CREDENTIALS, **env},
        handle_signals=False,
    )


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
async def test_the_ca_bundle_of_the_environment_is_trusted(
    authority: trustme.CA, tmp_path: Path, variable: str
) -> None:
    bundle = tmp_path / "company-ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    async with https_simulator(authority) as sim:
        assert sim.base_url.startswith("https://")
        given = manifest(tmp_path / "nightly.yaml", sim)
        with anyio.fail_after(LIMIT):
            report = await run(request(given, tmp_path, **{variable: str(bundle)}))
    assert [r.status for r in report.results] == [Outcome.COMPLETED]


async def test_an_untrusted_certificate_ends_the_run_at_once_saying_what_to_give(
    authority: trustme.CA, tmp_path: Path
) -> None:
    async with https_simulator(authority) as sim:
        given = manifest(tmp_path / "nightly.yaml", sim)
        with anyio.fail_after(LIMIT), pytest.raises(UnreachableError) as failed:
            await run(request(given, tmp_path))
    assert "--ca-bundle" in str(failed.value)
    assert "certificate" in str(failed.value).lower()


async def test_a_client_certificate_is_presented_when_the_manifest_names_one(
    authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    identity = authority.issue_cert("iq-promote@example.com")
    identity.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    identity.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    async with https_simulator(authority, client_certificates=True) as sim:
        # Relative to the manifest's folder, as every file the manifest names.
        server = "  caBundle: ca.pem\n  clientCert: client.pem\n  clientKey: client.key\n"
        given = manifest(tmp_path / "nightly.yaml", sim, server)
        with anyio.fail_after(LIMIT):
            report = await run(request(given, tmp_path))
        assert [r.status for r in report.results] == [Outcome.COMPLETED]
        # Under TLS 1.3 the server refuses after the handshake: the client sees a connection
        # dropped, which it retries as such before it gives up (exit 3).
        without = manifest(tmp_path / "without.yaml", sim, "  caBundle: ca.pem\n")
        quick = replace(
            request(without, tmp_path), retry=RetryPolicy(backoff_base=0.01, backoff_cap=0.02)
        )
        with anyio.fail_after(LIMIT), pytest.raises(UnreachableError):
            await run(quick)
