"""One run: ``orchestrator.run`` is ``iq-promote run``, exit codes come out of any command the
same way, and ``import orchestrator`` stays lean."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner
from frontends import serving

from orchestrator import RunRequest, run
from orchestrator.cli.main import main
from orchestrator.errors import ExitCode
from orchestrator.simulator import Simulator

ThreadedSimulatorFactory = Callable[..., AbstractContextManager[Simulator]]

CREDENTIALS = {"IQ_USERNAME": "admin", "IQ_PASSWORD": "admin123"}

VARYING = {
    "startedAt",
    "finishedAt",
    "durationSeconds",
    "submittedAt",
    "evaluationSeconds",
    "polls",
    "serverUrl",
    "statusUrl",
}
"""What differs between two runs of the same inputs: when, how long, and the server's port."""


def steady(document: Any) -> Any:
    """``document`` without what :data:`VARYING` names, and with the server's address dropped
    from every link, so that two runs of the same inputs compare equal."""
    if isinstance(document, dict):
        return {k: steady(v) for k, v in document.items() if k not in VARYING}
    if isinstance(document, list):
        return [steady(v) for v in document]
    if isinstance(document, str) and document.startswith("http://127.0.0.1:"):
        return document.split("/", 3)[-1]
    return document


def manifest_for(sim: Simulator, path: Path) -> Path:
    apps = [a.public_id for a in sim.portfolio.applications[:4]]
    path.write_text(
        "version: 1\nconcurrency: 1\npolling: {initialInterval: 0.02, maxInterval: 0.1}\n"
        "promotions:\n"
        f"  - applications: [{', '.join(apps)}]\n"
        "    transitions: [{from: build, to: build}, {from: build, to: operate}]\n",
        encoding="utf-8",
    )
    return path


def test_run_from_python_writes_what_the_command_writes(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    """Same simulator seed, same manifest, same options: one run through the command line, one
    through ``orchestrator.run``; their reports (and kept baselines) are the same."""
    outputs: dict[str, dict[str, Any]] = {}
    for way in ("cli", "python"):
        folder = tmp_path / way
        folder.mkdir()
        with threaded_simulator_factory(seed=7) as sim:
            manifest = manifest_for(sim, folder / "nightly.yaml")
            report = folder / "report.json"
            state = folder / "state"
            options = ["--fail-on", "severe", "--report", str(report), "--no-baseline"]
            options += ["--state-dir", str(state)]
            if way == "cli":
                result = CliRunner().invoke(
                    main,
                    ["run", str(manifest), "--server-url", sim.base_url, *options],
                    env=CREDENTIALS,
                )
                code = result.exit_code
            else:
                request = RunRequest(
                    manifest=manifest,
                    server_url=sim.base_url,
                    report=report,
                    fail_on="severe",
                    no_baseline=True,
                    state_dir=state,
                    env=CREDENTIALS,
                )
                code = anyio.run(run, request).exit_code or 0
        document = json.loads(report.read_text(encoding="utf-8"))
        assert document["exitCode"] == code
        kept = state / "reports" / "nightly.json"
        assert json.loads(kept.read_text(encoding="utf-8")) == document
        outputs[way] = steady(document)
    assert outputs["cli"]["manifest"].endswith("nightly.yaml")
    outputs["cli"].pop("manifest")
    outputs["python"].pop("manifest")
    assert outputs["cli"] == outputs["python"]
    assert outputs["cli"]["policyGate"]["failOn"] == "severe"


@asynccontextmanager
async def firewall_refusing_one_manager() -> AsyncIterator[str]:
    """A server whose firewall lists two repository managers and refuses (403) the listing
    of the second's repositories, as IQ does for a user who may see only some of them."""

    async def managers(_: web.Request) -> web.Response:
        return web.json_response(
            {"repositoryManagers": [{"id": "m1", "name": "one"}, {"id": "m2", "name": "two"}]}
        )

    async def repositories(request: web.Request) -> web.Response:
        if request.match_info["id"] == "m2":
            return web.Response(status=403, text="Forbidden")
        return web.json_response({"repositories": []})

    async def container(_: web.Request) -> web.Response:
        return web.json_response({"id": "c", "name": "Repositories"})

    app = web.Application()
    app.router.add_get("/api/v2/firewall/repositoryContainer", container)
    app.router.add_get("/api/v2/firewall/repositoryManagers", managers)
    app.router.add_get("/api/v2/firewall/repositories/configuration/{id}", repositories)
    async with serving(app) as url:
        yield url


@contextmanager
def threaded(server: Callable[[], AbstractAsyncContextManager[str]]) -> Iterator[str]:
    """Serve ``server`` on an event loop of its own, for a command that runs ``anyio.run``."""
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(server()) as url,
    ):
        yield url


def test_an_error_inside_a_task_group_exits_with_its_own_code() -> None:
    """The repositories are listed concurrently; a 403 for one arrives wrapped in an
    exception group, and is still the server's refusal (exit 3), not an internal error."""
    with threaded(firewall_refusing_one_manager) as url:
        result = CliRunner().invoke(
            main, ["repositories", "--json", "--server-url", url], env=CREDENTIALS
        )
    assert result.exit_code == ExitCode.SERVER, result.output
    assert "403" in result.stderr
    assert "internal error" not in result.stderr


def test_importing_the_package_loads_no_command_line_and_no_server() -> None:
    code = (
        "import sys, orchestrator\n"
        "loaded = [m for m in ('click', 'aiohttp.web', 'orchestrator.simulator',"
        " 'orchestrator.cli') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    answer = subprocess.run(  # noqa: S603 - our own interpreter and a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == ""


def test_the_simulator_is_there_when_asked_for() -> None:
    import orchestrator

    assert orchestrator.Simulator is Simulator
    with pytest.raises(AttributeError):
        _ = orchestrator.NoSuchThing
