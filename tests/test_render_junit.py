"""JUnit XML: valid against the schema CI servers read, one testcase per promotion."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from sample_reports import (
    FAILED_REASON,
    HOSTILE_REASON,
    KNOWN_APP,
    REGRESSED_APP,
    completed_report,
    report_url,
    result,
    sample_report,
)

from orchestrator.render import render_junit
from orchestrator.report.results import Outcome
from orchestrator.report.run_report import RunReport, Summary

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMA)


def _parse(xml: str) -> ET.Element:
    return ET.fromstring(xml.encode())  # noqa: S314  # our own output, not untrusted input


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in root.iter("testcase")}


def test_sample_is_valid_junit(schema: xmlschema.XMLSchema) -> None:
    schema.validate(render_junit(sample_report()))


def test_the_schema_is_strict(schema: xmlschema.XMLSchema) -> None:
    bad = (
        '<testsuites><testsuite name="x" tests="1" failures="0" errors="0" colour="red"/>'
        "</testsuites>"
    )
    assert not schema.is_valid(bad)


def test_counts() -> None:
    report = sample_report()
    root = _parse(render_junit(report))
    by = report.summary.by_status
    [suite] = root.findall("testsuite")
    failures = by[Outcome.FAILED] + by[Outcome.ERROR] + by[Outcome.TIMED_OUT]
    for element in (root, suite):
        assert element.attrib["tests"] == str(report.summary.total)
        assert element.attrib["failures"] == str(failures)
        assert element.attrib["errors"] == str(by[Outcome.CANCELLED])
    assert suite.attrib["skipped"] == str(by[Outcome.SKIPPED])
    assert len(suite.findall("testcase")) == report.summary.total
    assert len(suite.findall("testcase/failure")) == failures
    assert len(suite.findall("testcase/error")) == by[Outcome.CANCELLED]
    assert len(suite.findall("testcase/skipped")) == by[Outcome.SKIPPED]


def test_testcase_names_classnames_and_times() -> None:
    cases = _cases(_parse(render_junit(sample_report())))
    known = cases[f"{KNOWN_APP}: build -> release"]
    assert known.attrib["classname"] == "Payments"
    assert known.attrib["time"] == "42.500"
    assert list(known) == [known.find("system-out")]
    assert report_url(KNOWN_APP, "") in (known.findtext("system-out") or "")
    assert "platform-auth: scan 4f1c0a9e2b7d -> release" in cases
    # An entry that named an unknown organization has no public id and no start time.
    nameless = cases["promotions[4]: build -> release"]
    assert nameless.attrib["classname"] == "Ghost Org"
    assert "time" not in nameless.attrib


def test_outcomes_map_to_failure_skipped_and_error() -> None:
    cases = _cases(_parse(render_junit(sample_report())))
    failed = cases[f"{REGRESSED_APP}: build -> stage-release"].find("failure")
    assert failed is not None
    assert failed.attrib == {"message": FAILED_REASON, "type": "FAILED"}
    timed_out = cases["data-pipeline: build -> release"].find("failure")
    assert timed_out is not None
    assert timed_out.attrib["type"] == "TIMED_OUT"
    error = cases["platform-auth: scan 4f1c0a9e2b7d -> release"].find("failure")
    assert error is not None
    assert error.attrib["type"] == "ERROR"
    skipped = cases["platform-auth: release -> operate"].find("skipped")
    assert skipped is not None
    assert "earlier transition" in skipped.attrib["message"]
    cancelled = cases["data-lake: build -> release"].find("error")
    assert cancelled is not None
    assert cancelled.attrib["type"] == "CANCELLED"
    hostile = cases["xss-probe: build -> release"].find("failure")
    assert hostile is not None
    assert hostile.attrib["message"] == HOSTILE_REASON


def test_organization_defaults_to_iq_promote() -> None:
    report = completed_report(1)
    report.results[0].organization = None
    [case] = _parse(render_junit(report)).iter("testcase")
    assert case.attrib["classname"] == "iq-promote"


def test_control_characters_in_a_reason_keep_the_xml_valid(schema: xmlschema.XMLSchema) -> None:
    results = [result("app", Outcome.FAILED, reason="bad\x00byte\x1b[31m and \ud800 tail")]
    report = RunReport(
        started_at=completed_report().started_at,
        finished_at=completed_report().finished_at,
        duration_seconds=1.0,
        server_url="http://127.0.0.1:8070",
        manifest="m.yaml",
        summary=Summary.of(results),
        results=results,
    )
    xml = render_junit(report)
    schema.validate(xml)
    failure = _parse(xml).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.attrib["message"].startswith("bad\ufffdbyte\ufffd[31m")


def test_baseline_appears_as_properties_and_output() -> None:
    root = _parse(render_junit(sample_report()))
    props = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert props["baseline"] == "reports/nightly-previous.json"
    assert props["baseline.newCritical"] == "1"
    assert props["baseline.missingApplications"] == "1"
    suite_out = root.findtext("testsuite/system-out") or ""
    assert "new critical: payments-gateway release (3)" in suite_out
    known = _cases(root)[f"{KNOWN_APP}: build -> release"]
    assert "new critical violations (0 -> 3)" in (known.findtext("system-out") or "")


def test_without_baseline_nothing_is_said_about_one(schema: xmlschema.XMLSchema) -> None:
    xml = render_junit(sample_report(with_baseline=False))
    schema.validate(xml)
    assert "baseline" not in xml


def test_empty_run_is_valid(schema: xmlschema.XMLSchema) -> None:
    xml = render_junit(completed_report(0))
    schema.validate(xml)
    assert _parse(xml).attrib["tests"] == "0"
