"""``run --webhook-listen`` and the manifest's ``webhook:``: what is refused before anything is
sent, where the listener's address and secret come from, and whole runs from the command
line, against a simulator of its own and against ``--simulate``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog
from click.testing import CliRunner, Result
from receivers import SECRET, free_port

from orchestrator.cli import main
from orchestrator.errors import UsageError
from orchestrator.manifest.webhook import ListenAddress
from orchestrator.promote.hints import ListingSweep
from orchestrator.runner.request import RunRequest, resolve
from orchestrator.secrets import SCRUBBER
from orchestrator.simulator import Simulator

ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]
CREDENTIALS = {"IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"}


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def invoke(*args: str | Path, env: Mapping[str, str] | None = None) -> Result:
    """Run ``iq-promote ARGS`` in process, with ``env`` and none of the caller's IQ_*."""
    clean: dict[str, str | None] = {
        "IQ_SERVER_URL": None,
        "IQ_USERNAME": None,
        "IQ_PASSWORD": None,
        "IQ_WEBHOOK_SECRET": None,
    }
    return CliRunner().invoke(main, [str(a) for a in args], env={**clean, **(env or {})})


FAST_POLLING = "{initialInterval: 0.05, maxInterval: 0.2}"
LATE_POLLING = "{initialInterval: 30, maxInterval: 30}"
"""Polls that come after the test's end: only a delivery ends a promotion in time."""


def write_manifest(path: Path, apps: list[str], *extra: str, polling: str = FAST_POLLING) -> Path:
    lines = [
        "version: 1",
        "concurrency: 4",
        f"polling: {polling}",
        *extra,
        "promotions:",
        f"  - applications: [{', '.join(apps)}]",
        "    transitions: [{from: build, to: stage-release}]",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


# --- refused before anything is sent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--webhook-listen", "127.0.0.1:0"], {}, "IQ_WEBHOOK_SECRET"),
        (["--webhook-listen", "127.0.0.1:0"], {"IQ_WEBHOOK_SECRET": "short"}, "fewer than 8"),
        (["--webhook-listen", "127.0.0.1"], {"IQ_WEBHOOK_SECRET": SECRET}, "HOST:PORT"),
        (["--webhook-listen", "::1:80"], {"IQ_WEBHOOK_SECRET": SECRET}, "in brackets"),
        (["--webhook-insecure"], {}, "without a listener"),
        (["--no-webhook-sweep"], {}, "without a listener"),
    ],
    ids=["no-secret", "short-secret", "no-port", "bare-ipv6", "insecure-alone", "unswept-alone"],
)
def test_a_listener_that_cannot_work_is_exit_2_before_anything_is_sent(
    threaded_simulator_factory: ThreadedSimulatorFactory,
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    said: str,
) -> None:
    report = tmp_path / "report.json"
    with threaded_simulator_factory() as sim:
        manifest = write_manifest(tmp_path / "m.yaml", [sim.portfolio.applications[0].public_id])
        result = invoke(
            "run", manifest, "--server-url", sim.base_url, "--report", report, *args,
            env=CREDENTIALS | env,
        )  # fmt: skip
        requests = sim.stats.total_requests
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert requests == 0
    assert not report.exists()


def test_a_bad_listen_address_in_the_manifest_names_its_line(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", ["a"], "webhook: {listen: 'nowhere'}")
    result = invoke("validate", manifest)
    assert result.exit_code == 2
    assert "m.yaml:4: webhook.listen" in result.stderr


# --- where the address and the secret come from -------------------------------------------


def request_for(manifest: Path, **fields: Any) -> RunRequest:
    env = {"IQ_SERVER_URL": "http://127.0.0.1:9/", **CREDENTIALS}
    return RunRequest(manifest=manifest, env=env | fields.pop("env", {}), **fields)


def test_the_option_wins_over_the_manifest(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", ["a"], "webhook: {listen: '0.0.0.0:8090'}")
    env = {"IQ_WEBHOOK_SECRET": SECRET}
    from_manifest = resolve(request_for(manifest, env=env)).webhook
    assert from_manifest is not None
    assert from_manifest.listen == ListenAddress("0.0.0.0", 8090)  # noqa: S104 - a parsed value
    given = resolve(request_for(manifest, env=env, webhook_listen="[::1]:9000")).webhook
    assert given is not None
    assert given.listen == ListenAddress("::1", 9000)
    assert str(given.listen) == "[::1]:9000"
    assert given.secret == SECRET
    assert SECRET not in repr(given)
    assert resolve(request_for(manifest, env=env, dry_run=True)).webhook is not None


def test_sweeps_of_the_listing_are_on_unless_the_manifest_or_the_option_says_not(
    tmp_path: Path,
) -> None:
    env = {"IQ_WEBHOOK_SECRET": SECRET}
    listening = write_manifest(tmp_path / "on.yaml", ["a"], "webhook: {listen: '127.0.0.1:0'}")
    unswept = write_manifest(
        tmp_path / "off.yaml", ["a"], "webhook: {listen: '127.0.0.1:0', sweep: false}"
    )
    swept = resolve(request_for(listening, env=env)).webhook
    assert swept is not None
    assert swept.sweep == ListingSweep()
    for request in (
        request_for(listening, env=env, no_webhook_sweep=True),
        request_for(unswept, env=env),
    ):
        settings = resolve(request).webhook
        assert settings is not None
        assert settings.sweep is None


def test_without_a_listener_nothing_listens(tmp_path: Path) -> None:
    assert resolve(request_for(write_manifest(tmp_path / "m.yaml", ["a"]))).webhook is None


def test_insecure_listens_without_a_secret(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", ["a"])
    settings = resolve(request_for(manifest, webhook_listen="127.0.0.1:0", webhook_insecure=True))
    assert settings.webhook is not None
    assert settings.webhook.secret is None
    with pytest.raises(UsageError, match="IQ_WEBHOOK_SECRET"):
        resolve(request_for(manifest, webhook_listen="127.0.0.1:0"))


def test_the_secret_is_registered_with_the_log_scrubber(tmp_path: Path) -> None:
    secret = "a-secret-only-this-test-knows"
    manifest = write_manifest(tmp_path / "m.yaml", ["a"])
    resolve(request_for(manifest, webhook_listen="127.0.0.1:0", env={"IQ_WEBHOOK_SECRET": secret}))
    assert SCRUBBER.scrub(f"signed with {secret}") == "signed with ***"


# --- whole runs from the command line ---------------------------------------------------------


def test_a_run_against_a_delivering_simulator_reports_the_webhook(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    """Run twice, two waves of promotions each: with --no-webhook-sweep the listing is never
    read, and only deliveries end promotions; without it, sweeps read it too."""
    port = free_port()
    reports, swept = [tmp_path / "unswept.json", tmp_path / "swept.json"], []
    with threaded_simulator_factory(
        webhook_url=f"http://127.0.0.1:{port}/",
        webhook_secret=SECRET,
        eval_time=0.8,
        eval_sigma=0.0,
        eval_noise=0.0,
    ) as sim:
        apps = [a.public_id for a in sim.portfolio.applications[:8]]
        manifest = write_manifest(
            tmp_path / "m.yaml",
            apps,
            f"webhook: {{listen: '127.0.0.1:{port}'}}",
            polling=LATE_POLLING,
        )
        for report, flags in zip(reports, (["--no-webhook-sweep"], []), strict=True):
            before = sim.stats.requests_to("all-reports", "GET")
            result = invoke(
                "run", manifest, "--server-url", sim.base_url, "--report", report,
                "--log-format", "json", *flags,
                env=CREDENTIALS | {"IQ_WEBHOOK_SECRET": SECRET},
            )  # fmt: skip
            assert result.exit_code == 0, result.stderr
            assert SECRET not in result.stderr
            swept.append(sim.stats.requests_to("all-reports", "GET") - before)
    document = read_json(reports[0])
    jsonschema.validate(document, json.loads(invoke("schema", "report").stdout))
    assert [r["detectedBy"] for r in document["results"]] == ["webhook"] * 8
    assert document["webhook"]["matched"] == 8
    assert swept[0] == 0, "--no-webhook-sweep: the listing is never read"
    assert swept[1] > 0, "else the second wave is swept for"


def test_simulate_delivers_to_the_runs_own_listener(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    manifest = write_manifest(tmp_path / "m.yaml", ["alpha-api", "beta-web"])
    result = invoke(
        "run", manifest, "--simulate", "--webhook-listen", "127.0.0.1:0", "--webhook-insecure",
        "--report", report, "--log-format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = read_json(report)
    assert document["webhook"]["accepted"] == 2
    assert all(r["detectedBy"] in ("poll", "webhook") for r in document["results"])
