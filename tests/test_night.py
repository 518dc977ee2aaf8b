"""A night as cron, CI and the on-call person see it, through the real command line: a crossed
gate is visible in every output, unknown counts are never zero, quiet runs still say what
went wrong, and a terminal gets a summary instead of a log."""

from __future__ import annotations

import io
import os
import pty
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import structlog
from rich.console import Console
from sample_reports import GATED_APP, UNCHECKED_APP, gated_report
from test_cli import (
    CLEAN_APP,
    CRITICAL_APP,
    PROMOTE,
    REEVALUATE,
    ThreadedSimulatorFactory,
    events,
    first_verdict,
    invoke,
    read_json,
    run_against,
    server_env,
    write_manifest,
)

from orchestrator.cli import render as render_command
from orchestrator.cli.console import summary_renderable
from orchestrator.cli.main import main
from orchestrator.logs import configure_logging
from orchestrator.render.html import render_html
from orchestrator.render.junit import render_junit
from orchestrator.render.markdown import render_markdown
from orchestrator.render.metrics import render_metrics
from orchestrator.report.baseline import compare


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """The command configures structlog for the whole process: put back what others expect."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_a_crossed_gate_is_visible_in_every_output(tmp_path: Path) -> None:
    assert first_verdict(CRITICAL_APP).critical > 0, "choose another CRITICAL_APP"
    assert first_verdict(CLEAN_APP).critical == 0, "choose another CLEAN_APP"
    manifest = write_manifest(tmp_path / "gate.yaml", ([CRITICAL_APP, CLEAN_APP], PROMOTE))
    out = {name: tmp_path / f"night.{name}" for name in ("json", "md", "html", "xml", "prom")}
    result = invoke(
        "run", manifest, "--simulate", "--fail-on", "critical",
        "--report", out["json"], "--markdown", out["md"], "--html", out["html"],
        "--junit", out["xml"], "--metrics", out["prom"],
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert read_json(out["json"])["summary"]["byStatus"]["COMPLETED"] == 2

    markdown = out["md"].read_text()
    assert markdown.startswith(
        "## ❌ iq-promote: 2 of 2 promotions completed; 1 crossed --fail-on critical\n"
    )
    gate_table = markdown.split("### Failed the gate: --fail-on critical (1)", 1)[1]
    assert CRITICAL_APP in gate_table.split("###", 1)[0]
    assert CLEAN_APP not in gate_table.split("###", 1)[0]

    html = out["html"].read_text()
    assert "every promotion completed" not in html
    assert re.search(r'<header class="failed"><h1>[^<]*1 crossed --fail-on critical', html)
    assert 'id="gate"' in html

    suite = ET.fromstring(out["xml"].read_text()).find("testsuite")  # noqa: S314 - our own output
    assert suite is not None
    assert suite.get("failures") == "1"
    failures = {
        case.get("name", ""): failure.get("type")
        for case in suite.iter("testcase")
        if (failure := case.find("failure")) is not None
    }
    assert [(CRITICAL_APP in name, kind) for name, kind in failures.items()] == [
        (True, "POLICY_GATE")
    ]

    metrics = out["prom"].read_text()
    assert 'iq_promote_policy_gate_crossed{manifest="gate",fail_on="critical"} 1' in metrics
    assert 'iq_promote_last_run_exit_code{manifest="gate"} 1' in metrics
    assert 'iq_promote_last_success_timestamp_seconds{manifest="gate"} 0' in metrics


def test_a_gated_night_keeps_the_last_success_where_it_was() -> None:
    report = gated_report()
    text = render_metrics(report, previous_last_success=1_700_000_000.0)
    assert 'iq_promote_last_success_timestamp_seconds{manifest="nightly"} 1700000000\n' in text
    assert 'iq_promote_policy_gate_unchecked{manifest="nightly",fail_on="critical"} 1' in text
    passed = report.model_copy(update={"policy_gate": None, "exit_code": 0})
    moved = render_metrics(passed, previous_last_success=1_700_000_000.0)
    stamp = int(passed.finished_at.timestamp())
    assert f'iq_promote_last_success_timestamp_seconds{{manifest="nightly"}} {stamp}\n' in moved


def test_an_unchecked_report_fails_the_gate_visibly_too() -> None:
    report = gated_report()
    markdown = render_markdown(report)
    assert "1 could not be checked against --fail-on critical" in markdown.splitlines()[0]
    rows = markdown.split("### Failed the gate", 1)[1]
    assert GATED_APP in rows
    assert re.search(rf"{UNCHECKED_APP}.*not checked", rows)
    cases = {
        c.get("name", ""): c.find("failure")
        for c in ET.fromstring(render_junit(report)).iter("testcase")  # noqa: S314 - ours
    }
    unchecked = next(f for name, f in cases.items() if UNCHECKED_APP in name)
    assert unchecked is not None
    assert "could not be checked" in unchecked.get("message", "")
    assert "billing-ui" in render_html(report)


def test_the_terminal_summary_shows_the_gate_and_where_the_report_went() -> None:
    report = gated_report().model_copy(update={"stopped": "SIGTERM"})
    out = io.StringIO()
    Console(file=out, width=160).print(
        summary_renderable(
            report,
            report_path=Path("/var/reports/night.json"),
            resume_command=["iq-promote", "run", "nightly.yaml", "--resume"],
        )
    )
    text = out.getvalue()
    assert text.startswith("✘ 3 of 3 promotions completed; 1 crossed --fail-on critical")
    gate = text.split("Failed the gate: --fail-on critical", 1)[1]
    assert re.search(rf"{GATED_APP} .*crossed .*2 .*1 ", gate)
    assert re.search(rf"{UNCHECKED_APP} .*not checked", gate)
    assert "Open policy violations (2 reports)" in text
    assert "Report: /var/reports/night.json" in text
    assert "to continue: iq-promote run nightly.yaml --resume" in text


def test_counts_never_read_are_no_earlier_count_not_new_critical(tmp_path: Path) -> None:
    """Night one reads no violations (a promotion, no --fail-on); night two gates on them. The
    criticals found on night two were unknown before, not new."""
    manifest = write_manifest(tmp_path / "nightly.yaml", ([CRITICAL_APP, CLEAN_APP], PROMOTE))
    states = tmp_path / "state"
    first = invoke("run", manifest, "--simulate", "--state-dir", states)
    assert first.exit_code == 0, first.stderr
    report = tmp_path / "two.json"
    second = invoke(
        "run", manifest, "--simulate", "--state-dir", states, "--report", report,
        "--fail-on", "critical",
    )  # fmt: skip
    assert second.exit_code == 1, second.stderr
    baseline = read_json(report)["baseline"]
    assert baseline["newCritical"] == []
    assert baseline["counts"]["newCritical"] == 0
    assert baseline["counts"]["noEarlierCount"] == 1
    assert [c["publicId"] for c in baseline["noEarlierCount"]] == [CRITICAL_APP]


def test_quiet_still_says_which_applications_could_not_run(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    with threaded_simulator_factory() as sim:
        known = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([known, "no-such-app"], REEVALUATE))
        result = run_against(sim, manifest, "-q")
    assert result.exit_code == 1
    warned = [e for e in events(result) if e["level"] == "warning"]
    errors = [e for e in warned if e["event"] == "promotion.error"]
    assert [e["publicId"] for e in errors] == ["no-such-app"]
    assert "not known" in errors[0]["reason"]
    summary = next(e for e in warned if e["event"] == "run.summary")
    assert summary["exitCode"] == 1
    assert all(e["level"] != "info" for e in events(result))


def test_a_quiet_good_night_says_nothing(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", ([CLEAN_APP], PROMOTE))
    result = invoke("run", manifest, "--simulate", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_warnings_only_and_a_log_file_gets_info() -> None:
    terminal = _Terminal()
    configure_logging(stream=terminal)
    log = structlog.get_logger("test")
    log.info("quiet.detail")
    log.warning("worth.seeing")
    assert "quiet.detail" not in terminal.getvalue()
    assert "worth.seeing" in terminal.getvalue()
    file = io.StringIO()
    configure_logging(stream=file)
    structlog.get_logger("test").info("quiet.detail")
    assert '"event": "quiet.detail"' in file.getvalue()


# --- exit codes and messages that point the right way ------------------------------------------


def test_a_forgotten_context_path_names_the_url_and_suggests_it(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    with threaded_simulator_factory(context_path="/iq") as sim:
        known = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([known], REEVALUATE))
        bare = sim.base_url.removesuffix("iq/")
        result = invoke("run", manifest, "--server-url", bare, env=server_env())
        with_path = invoke("run", manifest, "--server-url", sim.base_url, env=server_env())
    assert result.exit_code == 3, result.stderr
    assert f"{bare}api/v2/organizations answered HTTP 404" in result.stderr
    assert "context path" in result.stderr
    assert with_path.exit_code == 0, with_path.stderr


MANIFEST_WITH_URL_FROM_ENV = """\
version: 1
server:
  url: ${IQ_SERVER_URL}
  username: ${IQ_USERNAME}
polling: {initialInterval: 0.05, maxInterval: 0.2}
promotions:
  - applications: [alpha-api]
    transitions: [{from: build, to: build}]
"""


def test_an_unset_url_variable_gives_way_to_the_options(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    manifest = tmp_path / "nightly.yaml"
    manifest.write_text(MANIFEST_WITH_URL_FROM_ENV)
    simulated = invoke("run", manifest, "--simulate")
    assert simulated.exit_code == 0, simulated.stderr
    assert invoke("validate", manifest).exit_code == 0
    with threaded_simulator_factory() as sim:
        known = sim.portfolio.applications[0].public_id
        served = tmp_path / "served.yaml"
        served.write_text(MANIFEST_WITH_URL_FROM_ENV.replace("alpha-api", known))
        given = run_against(sim, served)
    assert given.exit_code == 0, given.stderr
    missing = invoke("run", manifest, env={"IQ_PASSWORD": "admin123"})
    assert missing.exit_code == 2
    assert f"{manifest}:3: server.url is ${{IQ_SERVER_URL}}, which is not set" in missing.stderr


def test_an_unset_variable_elsewhere_is_still_a_manifest_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST_WITH_URL_FROM_ENV.replace("alpha-api", '"${APP_ID}"'))
    result = invoke("validate", manifest)
    assert result.exit_code == 2
    assert "environment variable APP_ID is not set" in result.stderr


# --- smaller things, each seen -----------------------------------------------------------------


def test_concurrency_auto_is_taken_in_any_case(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", ([CLEAN_APP], REEVALUATE))
    result = invoke(
        "run", manifest, "--simulate", "--concurrency", "AUTO", "--report", tmp_path / "r.json"
    )
    assert result.exit_code == 0, result.stderr


def test_validate_counts_what_the_manifest_holds(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.yaml",
        (["a", "b", "c"], "[{from: build, to: stage-release}, {from: stage-release, to: release}]"),
        (["d"], REEVALUATE),
    )
    result = invoke("validate", manifest)
    assert result.exit_code == 0
    assert result.stdout == (
        f"{manifest}: valid: 2 entries with 3 transitions in all; "
        "7 promotions of the applications it names\n"
    )


def test_plan_exits_1_like_a_dry_run_when_a_step_cannot_resolve(
    threaded_simulator_factory: ThreadedSimulatorFactory, tmp_path: Path
) -> None:
    with threaded_simulator_factory() as sim:
        known = sim.portfolio.applications[0].public_id
        manifest = write_manifest(tmp_path / "m.yaml", ([known, "no-such-app"], REEVALUATE))
        plan = invoke("plan", manifest, "--server-url", sim.base_url, env=server_env())
        dry = run_against(sim, manifest, "--dry-run", "--report", tmp_path / "r.json")
        manifest_ok = write_manifest(tmp_path / "ok.yaml", ([known], REEVALUATE))
        fine = invoke("plan", manifest_ok, "--server-url", sim.base_url, env=server_env())
    assert (plan.exit_code, dry.exit_code, fine.exit_code) == (1, 1, 0)


def test_simulate_on_a_busy_port_says_so_without_a_traceback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("simulate", "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_bug_in_render_is_told_on_stderr_never_in_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "r.json"
    report.write_text(gated_report().to_json())

    def broken(*_: object) -> list[Path]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(render_command, "write_outputs", broken)
    result = invoke("render", report, "--markdown", tmp_path / "out.md")
    assert result.exit_code == 70
    assert result.stdout == ""
    assert "internal.error" in result.stderr
    assert "RuntimeError" in result.stderr


def test_every_option_says_what_it_does() -> None:
    def options(command: click.Command) -> Iterator[tuple[str, click.Option]]:
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield from options(sub)
            return
        for param in command.params:
            if isinstance(param, click.Option):
                yield f"{command.name} {param.opts[0]}", param

    silent = [name for name, option in options(main) if not option.help]
    assert silent == []
    for name in ("simulate", "run", "repository-results"):
        text = invoke(name, "--help").stdout
        assert "[default: " in text, name


def test_no_earlier_count_is_shown_apart_in_every_rendering() -> None:
    before = gated_report().model_copy(update={"policy_gate": None})
    unread = [r.model_copy(update={"violations": None}) for r in before.results]
    baseline = compare(gated_report(), before.model_copy(update={"results": unread}), "old.json")
    assert baseline.counts.no_earlier_count == 1
    report = gated_report().model_copy(update={"baseline": baseline})
    markdown = render_markdown(report)
    assert "| Critical, with no earlier count | 1 |" in markdown
    assert "| New critical violations | 0 |" in markdown
    unknown = markdown.split("#### Critical violations with no earlier count", 1)[1]
    assert GATED_APP in unknown
    html = render_html(report)
    assert 'id="baseline-no-count"' in html
    assert "critical violations with no earlier count: 1" in render_junit(report)


def on_a_terminal(*args: str | Path, cwd: Path, timeout: float = 120) -> tuple[int, str]:
    """Run ``iq-promote ARGS`` in a child process whose stdout and stderr are a terminal (a
    pseudo-terminal), as a person at a shell sees it; its exit code and everything printed."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQ_")}
    env |= {"COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    child = subprocess.Popen(  # noqa: S603 - our own command, with fixed arguments
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=env,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = child.wait(timeout=max(1.0, deadline - time.monotonic()))
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", text)


def test_a_terminal_gets_a_summary_not_a_log(tmp_path: Path) -> None:
    apps = [f"app-{i:03d}" for i in range(30)]
    manifest = write_manifest(tmp_path / "nightly.yaml", (apps, REEVALUATE))
    code, text = on_a_terminal(
        "run", manifest, "--simulate", "--fail-on", "critical", "--report", "night.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 1, text
    assert "promotion.completed" not in text  # info events stay out of a person's way
    assert "run.summary" not in text  # no dump of the summary: the tables say it
    assert '{"' not in text  # no JSON lines
    assert "30 promotions in" in text
    assert "crossed --fail-on critical" in text
    assert "Failed the gate: --fail-on critical (first 20; 10 more in the report)" in text
    assert "Open policy violations" in text
    assert "Report: night.json" in text
    summary = text[text.index("✘ ") :]
    assert len(summary.splitlines()) < 60
