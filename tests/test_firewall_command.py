"""The ``repository-results`` and ``repositories`` commands, end to end against the simulator.

The commands call ``anyio.run`` themselves, so they run as plain synchronous tests while the
simulator serves from a thread of its own (an anyio blocking portal).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner, Result

from orchestrator.cli.firewall import repositories, repository_results
from orchestrator.firewall.writers import CSV_COLUMNS
from orchestrator.iq.firewall_models import RepositoryResult
from orchestrator.simulator import Simulator, SimulatorConfig

LEGACY_RELEASE = 170


@contextmanager
def simulator_thread(**overrides: Any) -> Iterator[str]:
    """A simulator serving from its own event loop in a thread; yields its base URL."""
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(Simulator(SimulatorConfig(**overrides), port=0)) as sim,
    ):
        yield sim.base_url


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with simulator_thread() as url:
        yield url


@pytest.fixture(scope="module")
def legacy_server() -> Iterator[str]:
    with simulator_thread(release=LEGACY_RELEASE) as url:
        yield url


PASSWORD = "admin123"


def invoke(command: Any, url: str | None, *args: str, password: str = PASSWORD) -> Result:
    env = {"IQ_USERNAME": "admin", "IQ_PASSWORD": password, "IQ_SERVER_URL": url or ""}
    return CliRunner().invoke(command, [*args, "--log-format", "json"], env=env)


def log_events(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


def ndjson_rows(text: str) -> list[RepositoryResult]:
    return [RepositoryResult.model_validate_json(line) for line in text.splitlines()]


def test_ndjson_to_stdout_with_a_done_event(server: str) -> None:
    result = invoke(repository_results, server, "--page-size", "4")
    assert result.exit_code == 0, result.stderr
    rows = ndjson_rows(result.stdout)
    assert rows
    done = [e for e in log_events(result) if e["event"] == "repository_results.done"]
    assert len(done) == 1
    assert done[0]["rows"] == len(rows)
    assert done[0]["pages"] == max(1, -(-len(rows) // 4))  # no extra request at a multiple
    assert done[0]["api"] == "current"
    assert "admin123" not in result.stderr


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv"])
def test_the_three_formats_to_a_file_parse_back_to_the_same_rows(
    server: str, tmp_path: Path, fmt: str
) -> None:
    reference = ndjson_rows(invoke(repository_results, server, "--page-size", "1000").stdout)
    target = tmp_path / f"results.{fmt}"
    result = invoke(
        repository_results, server, "--format", fmt, "--output", str(target), "--page-size", "3"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    text = target.read_text(encoding="utf-8")
    if fmt == "ndjson":
        assert ndjson_rows(text) == reference
    elif fmt == "json":
        assert [RepositoryResult.model_validate(item) for item in json.loads(text)] == reference
    else:
        with target.open(encoding="utf-8", newline="") as handle:
            records = list(csv.DictReader(handle))
        assert tuple(records[0]) == CSV_COLUMNS
        assert [(r["hash"], r["policyName"], int(r["threatLevel"])) for r in records] == [
            (r.hash, r.policy_name or "", r.threat_level) for r in reference
        ]
        assert [json.loads(r["coordinates"]) for r in records] == [
            r.component_identifier.coordinates for r in reference
        ]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_an_empty_result_is_an_empty_json_array(server: str) -> None:
    result = invoke(
        repository_results, server, "--format", "json", "--search", "COMPONENT_COORDINATES=zz-none"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_every_option_reaches_the_server(server: str) -> None:
    result = invoke(
        repository_results,
        server,
        "--search", "POLICY_NAME=Security",
        "--sort", "POLICY_THREAT_LEVEL:desc",
        "--sort", "component_coordinates",
        "--match-state", "all",
        "--violation-state", "open",
        "--violation-state", "quarantined",
        "--threat-levels", "4-10",
        "--no-aggregate",
        "--page-size", "2",
        "--api", "current",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = ndjson_rows(result.stdout)
    assert all(4 <= r.threat_level <= 10 for r in rows)
    assert all("security" in (r.policy_name or "").lower() for r in rows)
    assert [r.threat_level for r in rows] == sorted((r.threat_level for r in rows), reverse=True)


def test_a_legacy_server_is_detected(legacy_server: str) -> None:
    result = invoke(repository_results, legacy_server, "--page-size", "5")
    assert result.exit_code == 0, result.stderr
    assert ndjson_rows(result.stdout)
    events = {e["event"]: e for e in log_events(result)}
    assert "repository_results.legacy_fallback" in events
    assert events["repository_results.done"]["api"] == "legacy"
    assert events["repository_results.done"]["repositories"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", "REPOSIOTRY_MANAGER_ID=4ebc94d1"], "did you mean REPOSITORY_MANAGER_ID?"),
        (["--threat-levels", "9-3"], "threat levels 9-3"),
        (["--sort", "POLICY_NAME:sideways"], "'asc' or 'desc'"),
        (["--sort", "THREAT"], "unknown sort field"),
        (["--violation-state", "opne"], "did you mean VIOLATION_STATE_OPEN?"),
        (["--owner-type", "repository"], "--owner-id is required"),
    ],
)
def test_argument_mistakes_exit_2_before_any_request(args: list[str], message: str) -> None:
    # No server at all: a request would fail differently (exit 3).
    result = invoke(repository_results, "http://127.0.0.1:9/", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_server_url_is_a_usage_error() -> None:
    result = invoke(repository_results, None)
    assert result.exit_code == 2
    assert "IQ_SERVER_URL" in result.stderr


def test_refused_credentials_exit_3_without_showing_the_password(server: str) -> None:
    result = invoke(repository_results, server, password="not-the-password")
    assert result.exit_code == 3
    assert "401" in result.stderr
    assert "not-the-password" not in result.stderr


def test_an_unknown_owner_is_a_usage_error_naming_it(server: str, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = invoke(
        repository_results,
        server,
        "--owner-type", "repository",
        "--owner-id", "no-such-repository",
        "--format", "csv",
        "--output", str(target),
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "knows no repository no-such-repository" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_repositories_lists_the_inventory_as_json(server: str) -> None:
    result = invoke(repositories, server, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["repositoryContainer"] is not None
    managers = document["repositoryManagers"]
    assert managers
    repository = managers[0]["repositories"][0]
    assert {"repositoryId", "publicId", "format", "quarantineEnabled"} <= set(repository)


def test_listed_ids_are_the_owner_ids_results_take(server: str) -> None:
    document = json.loads(invoke(repositories, server).stdout)  # not a TTY: JSON
    manager = document["repositoryManagers"][0]
    repository_id = manager["repositories"][0]["repositoryId"]
    result = invoke(
        repository_results, server, "--owner-type", "repository", "--owner-id", repository_id
    )
    assert result.exit_code == 0, result.stderr
    assert {r.repository_id for r in ndjson_rows(result.stdout)} <= {repository_id}
