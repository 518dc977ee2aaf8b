"""The three output formats parse back to the rows written, and a failed export leaves no file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from orchestrator.firewall.writers import (
    CSV_COLUMNS,
    OutputFormat,
    epoch_millis_to_iso,
    make_writer,
    open_rows,
)
from orchestrator.iq.firewall_models import ComponentIdentifier, RepositoryResult


def sample_rows() -> list[RepositoryResult]:
    maven = ComponentIdentifier(
        format="maven",
        coordinates={
            "artifactId": "ant",
            "classifier": "",
            "extension": "jar",
            "groupId": "ant",
            "version": "1.6.1",
        },
    )
    npm = ComponentIdentifier(format="npm", coordinates={"packageId": "left-pad", "version": "1"})
    return [
        RepositoryResult(
            threat_level=7,
            policy_name="Security-Medium",
            repository_manager_id="6d27e83a",
            repository_id="99285af9",
            component_display_text="ant : ant : 1.6.1",
            pathname="ant/ant/1.6.1/ant-1.6.1.jar",
            component_identifier=maven,
            hash="684aeca90db2a55234f5",
            match_state_id="exact",
            quarantine_time=1711040046780,
            waived=False,
        ),
        RepositoryResult(
            threat_level=1,
            policy_name=None,
            component_display_text='left-pad, "quoted"\nline',
            pathname="left-pad/-/left-pad-1.tgz",
            component_identifier=npm,
            hash="8f91f60f628075701fde",
            match_state_id="unknown",
            quarantine_time=None,
            waived=True,
        ),
    ]


def render(fmt: OutputFormat, rows: list[RepositoryResult]) -> str:
    stream = io.StringIO(newline="")
    writer = make_writer(fmt, stream)
    for row in rows:
        writer.write(row)
    writer.finish()
    return stream.getvalue()


def test_ndjson_is_one_complete_row_per_line() -> None:
    rows = sample_rows()
    lines = render(OutputFormat.NDJSON, rows).splitlines()
    assert [RepositoryResult.model_validate(json.loads(line)) for line in lines] == rows
    first = json.loads(lines[1])
    assert first["repositoryId"] is None  # every field present, absent ones null
    assert first["policyName"] is None


@pytest.mark.parametrize("count", [0, 1, 2])
def test_json_is_one_array(count: int) -> None:
    rows = sample_rows()[:count]
    document = json.loads(render(OutputFormat.JSON, rows))
    assert [RepositoryResult.model_validate(item) for item in document] == rows


def test_csv_has_fixed_columns_and_coordinates_as_json() -> None:
    text = render(OutputFormat.CSV, sample_rows())
    records = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(records[0]) == CSV_COLUMNS
    first, second = records
    assert first["format"] == "maven"
    assert json.loads(first["coordinates"])["groupId"] == "ant"
    assert first["quarantineTime"] == "1711040046780"
    assert first["quarantineDate"] == "2024-03-21T16:54:06.780Z"
    assert first["waived"] == "false"
    assert second["componentDisplayText"] == 'left-pad, "quoted"\nline'
    assert second["policyName"] == ""
    assert second["quarantineDate"] == ""
    assert second["waived"] == "true"


def test_csv_of_nothing_is_just_the_header() -> None:
    assert render(OutputFormat.CSV, []) == ",".join(CSV_COLUMNS) + "\r\n"


def test_epoch_millis_to_iso() -> None:
    assert epoch_millis_to_iso(0) == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_a_file_appears_only_when_complete(tmp_path: Path, fmt: OutputFormat) -> None:
    target = tmp_path / "out" / f"results.{fmt.value}"
    with open_rows(fmt, target) as writer:
        for row in sample_rows():
            writer.write(row)
        assert not target.exists()
    assert target.exists()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_failed_export_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("previous\n", encoding="utf-8")

    def interrupted_export() -> None:
        with open_rows(OutputFormat.JSON, target) as writer:
            writer.write(sample_rows()[0])
            raise RuntimeError("server went away")

    with pytest.raises(RuntimeError):
        interrupted_export()
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
