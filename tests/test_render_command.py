"""``iq-promote render`` on saved reports, through click's CliRunner."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from sample_reports import KNOWN_APP, MISSING_APP, previous_report, sample_report

from orchestrator.cli.render import render
from orchestrator.report.run_report import write_report


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(render, [str(a) for a in args])


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "run.json"
    write_report(sample_report(with_baseline=False), path)
    return path


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    path = tmp_path / "previous.json"
    write_report(previous_report(), path)
    return path


def test_renders_every_format(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _invoke(
        saved,
        "--junit",
        out / "junit.xml",
        "--markdown",
        out / "summary.md",
        "--metrics",
        out / "iq_promote.prom",
        "--html",
        out / "report.html",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "iq_promote.prom",
        "junit.xml",
        "report.html",
        "summary.md",
    ]
    assert result.output.splitlines() == [
        f"wrote {out / name}"
        for name in ("junit.xml", "summary.md", "iq_promote.prom", "report.html")
    ]
    assert (out / "junit.xml").read_text().startswith("<?xml")
    assert KNOWN_APP in (out / "report.html").read_text()
    assert "baseline" not in (out / "summary.md").read_text()
    families = {
        f.name for f in text_string_to_metric_families((out / "iq_promote.prom").read_text())
    }
    assert "iq_promote_promotions" in families


def test_baseline_is_compared(saved: Path, previous: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "summary.md"
    junit = tmp_path / "junit.xml"
    result = _invoke(saved, "--markdown", markdown, "--junit", junit, "--baseline", previous)
    assert result.exit_code == 0, result.output
    text = markdown.read_text()
    assert "### Changes since the baseline" in text
    assert MISSING_APP in text
    assert f'name="baseline" value="{previous}"' in junit.read_text()


def test_no_output_option_is_a_usage_error(saved: Path) -> None:
    result = _invoke(saved)
    assert result.exit_code == 2
    assert "give at least one of --junit, --markdown, --metrics, --html" in result.output


def test_missing_report(tmp_path: Path) -> None:
    result = _invoke(tmp_path / "nope.json", "--html", tmp_path / "r.html")
    assert result.exit_code == 2
    assert "iq-promote: error: cannot read report" in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "content", ["not json at all", '{"schemaVersion": "1.0"}', '["a list"]', ""]
)
def test_not_a_report(tmp_path: Path, content: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)
    result = _invoke(path, "--junit", tmp_path / "junit.xml")
    assert result.exit_code == 2
    assert f"{path} is not an iq-promote report" in result.output
    assert not (tmp_path / "junit.xml").exists()


def test_bad_baseline(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = _invoke(saved, "--markdown", tmp_path / "s.md", "--baseline", bad)
    assert result.exit_code == 2
    assert "is not an iq-promote report" in result.output
    missing = _invoke(saved, "--markdown", tmp_path / "s.md", "--baseline", tmp_path / "x.json")
    assert missing.exit_code == 2
    assert "cannot read report" in missing.output


def test_refuses_to_overwrite_the_report(saved: Path) -> None:
    before = saved.read_text()
    result = _invoke(saved, "--html", saved)
    assert result.exit_code == 2
    assert "would overwrite REPORT" in result.output
    assert saved.read_text() == before


def test_refuses_two_formats_in_one_file(saved: Path, tmp_path: Path) -> None:
    result = _invoke(saved, "--junit", tmp_path / "x", "--markdown", tmp_path / "x")
    assert result.exit_code == 2
    assert "--markdown and --junit both write" in result.output


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(render, ["--help"])
    assert result.exit_code == 0
    for option in ("--junit", "--markdown", "--metrics", "--html", "--baseline"):
        assert option in result.output


def test_public_names_exist_and_are_documented() -> None:
    import orchestrator.render as package
    from orchestrator.render import RENDERERS, RenderOutputs

    for name in package.__all__:
        value = getattr(package, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), name
    assert list(RENDERERS) == [name for name, _ in RenderOutputs(*[Path("x")] * 4).items()]
