"""The manifest: YAML in, a validated model or every problem with its file, line and field."""

from __future__ import annotations

import importlib
import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestrator.manifest.model
from orchestrator.errors import ManifestError, ManifestProblem
from orchestrator.iq.models import Stage
from orchestrator.manifest.model import (
    MAX_MANIFEST_BYTES,
    Duration,
    Manifest,
    Transition,
    load_manifest,
    manifest_digest,
    parse_manifest,
)

jsonschema = importlib.import_module("jsonschema")  # untyped: no stubs among the dev dependencies

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "manifests").glob("*.yaml"))
SCHEMA_FILE = ROOT / "docs" / "schema" / "manifest.schema.json"

ENTRY = """\
promotions:
  - applications: [payments-api]
    transitions: [{from: build, to: stage-release}]
"""
"""A valid promotions section, for tests about the other keys."""


def parse(text: str, **env: str) -> Manifest:
    return parse_manifest(textwrap.dedent(text), source="m.yaml", env=env)


def problems(text: str, **env: str) -> list[tuple[int | None, str, str]]:
    """(line, field, message) of each problem ``text`` has; it must have some."""
    with pytest.raises(ManifestError) as caught:
        parse(text, **env)
    assert all(p.file == "m.yaml" for p in caught.value.problems)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def only_problem(text: str, **env: str) -> tuple[int | None, str, str]:
    found = problems(text, **env)
    assert len(found) == 1, found
    return found[0]


# --- Valid manifests -----------------------------------------------------------------------

QUICKSTART = """\
version: 1
server:
  url: ${IQ_SERVER_URL}            # ${VAR} read from the environment
concurrency: 20
promotions:
  - applications: [payments-api, ledger]
    transitions:
      - {from: build, to: stage-release}
      - {from: stage-release, to: release}
  - applications: [web-portal]
    transitions:
      - {scanId: 896791eb6a484d51bb570dca94dc2c67, to: stage-release}
  - organization: Payments
    transitions: [{from: release, to: release}]
  - all: true
    transitions: [{from: operate, to: operate}]
"""


def test_the_quickstart_manifest_reads_as_written() -> None:
    manifest = parse(QUICKSTART, IQ_SERVER_URL="https://iq.example.com")

    assert manifest.version == 1
    assert manifest.server is not None
    assert manifest.server.url == "https://iq.example.com"
    assert manifest.concurrency == 20
    first, by_scan, organization, everything = manifest.promotions
    assert first.applications == ("payments-api", "ledger")
    assert [(t.source_stage, t.target_stage) for t in first.transitions] == [
        (Stage.BUILD, Stage.STAGE_RELEASE),
        (Stage.STAGE_RELEASE, Stage.RELEASE),
    ]
    assert by_scan.transitions[0].scan_id == "896791eb6a484d51bb570dca94dc2c67"
    assert by_scan.transitions[0].source_stage is None
    assert organization.organization == "Payments"
    assert organization.applications is None
    assert everything.all is True
    assert everything.transitions == (Transition(source_stage="operate", target_stage="operate"),)


def test_defaults() -> None:
    manifest = parse("version: 1\n" + ENTRY)

    assert manifest.server is None
    assert manifest.concurrency is None
    assert manifest.promotion_timeout == 1800
    assert (manifest.polling.initial_interval, manifest.polling.max_interval) == (1.0, 15.0)
    entry = manifest.promotions[0]
    assert (entry.name, entry.organization, entry.all, entry.exclude) == (None, None, None, ())


def test_every_setting() -> None:
    manifest = parse(
        """\
        version: 1
        server:
          url: https://iq.example.com/iq
          username: ci-bot
          password: ${CI_IQ_TOKEN}
          verifyTls: false
          caBundle: /etc/ssl/corp.pem
          timeoutSeconds: 30
        concurrency: auto
        promotionTimeout: 600
        polling: {initialInterval: 0.5, maxInterval: 20}
        promotions:
          - name: retail nightly
            organization: Retail
            exclude: [legacy-pos]
            transitions: [{from: operate, to: operate}]
        """
    )

    server = manifest.server
    assert server is not None
    assert (server.url, server.username, server.verify_tls) == (
        "https://iq.example.com/iq",
        "ci-bot",
        False,
    )
    assert (server.ca_bundle, server.timeout_seconds) == ("/etc/ssl/corp.pem", 30)
    assert (manifest.concurrency, manifest.promotion_timeout) == ("auto", 600)
    assert (manifest.polling.initial_interval, manifest.polling.max_interval) == (0.5, 20)
    assert manifest.promotions[0].name == "retail nightly"
    assert manifest.promotions[0].exclude == ("legacy-pos",)


def test_the_model_is_frozen() -> None:
    manifest = parse("version: 1\n" + ENTRY)
    with pytest.raises(ValueError, match="frozen"):
        manifest.concurrency = 3  # type: ignore[misc]


def test_quoted_numeric_ids_are_read_as_written() -> None:
    manifest = parse(
        """\
        version: "1"
        promotions:
          - applications: ["012", '3.10']
            transitions: [{from: build, to: release}]
          - organization: "2024"
            transitions: [{from: build, to: build}]
          - applications: ['0012']
            transitions: [{scanId: "12345678901234567890123456789012", to: release}]
        """
    )
    assert manifest.version == 1
    assert manifest.promotions[0].applications == ("012", "3.10")
    assert manifest.promotions[1].organization == "2024"
    assert manifest.promotions[2].transitions[0].scan_id == "12345678901234567890123456789012"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("012", "YAML reads 012 as 10: write it in quotes, '012'"),
        ("3.10", "YAML reads 3.10 as 3.1: write it in quotes, '3.10'"),
        ("on", "YAML reads on as true: write it in quotes, 'on'"),
        ("1234", "YAML reads 1234 as a number, not as text: write it in quotes, '1234'"),
    ],
)
def test_unquoted_ids_that_yaml_reads_as_numbers_are_refused(written: str, message: str) -> None:
    """Another application would be promoted: 012 is 10 to YAML, 3.10 is 3.1."""
    assert problems(
        f"""\
        version: 1
        promotions:
          - applications: [payments-api, {written}]
            transitions: [{{from: build, to: build}}]
        """
    ) == [(3, "promotions[0].applications[1]", message)]


def test_an_unquoted_numeric_organization_or_scan_id_is_refused() -> None:
    found = problems(
        """\
        version: 1
        promotions:
          - organization: 2024
            transitions: [{from: build, to: build}]
          - applications: [a]
            transitions: [{scanId: 12345678901234567890123456789012, to: release}]
          - organizations: [Payments, 2025]
            excludeOrganizations: [0755]
            categories: [3.10]
            transitions: [{from: build, to: build}]
        """
    )
    assert [(line, field) for line, field, _ in found] == [
        (3, "promotions[0].organization"),
        (6, "promotions[1].transitions[0].scanId"),
        (7, "promotions[2].organizations[1]"),
        (8, "promotions[2].excludeOrganizations[0]"),
        (9, "promotions[2].categories[0]"),
    ]
    assert all("write it in quotes" in message for _, _, message in found)


def test_a_manifest_past_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("w", encoding="utf-8") as out:
        out.write("version: 1\npromotions:\n  - applications:\n")
        line = "      - application-with-a-long-public-id-number-0000000\n"
        out.write(line * ((MAX_MANIFEST_BYTES // len(line)) + 10))
    with pytest.raises(ManifestError, match="more than the 16 MiB"):
        load_manifest(huge)


def test_anchors_merge_keys_and_extension_keys_share_settings() -> None:
    manifest = parse(
        """\
        version: 1
        x-release-chain: &release-chain
          - {from: build, to: stage-release}
          - {from: stage-release, to: release}
        x-nightly: &nightly
          transitions: [{from: operate, to: operate}]
        promotions:
          - applications: [payments-api]
            transitions: *release-chain
          - applications: [ledger]
            transitions: *release-chain
          - <<: *nightly
            organization: Retail
          - <<: *nightly
            all: true
            transitions: [{from: release, to: release}]
        """
    )
    chains = [entry.transitions for entry in manifest.promotions]
    assert chains[0] == chains[1]
    assert len(chains[0]) == 2
    assert chains[2][0].target_stage == Stage.OPERATE
    assert chains[3][0].target_stage == Stage.RELEASE  # the entry's own key wins the merge


def test_validation_by_python_name_is_for_python_only() -> None:
    assert Transition(source_stage="build", target_stage="release").source_stage == Stage.BUILD
    found = only_problem(
        """\
        version: 1
        promotions:
          - applications: [a]
            transitions: [{source_stage: build, to: release}]
        """
    )
    assert found[:2] == (4, "promotions[0].transitions[0].source_stage")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_manifests_load(path: Path) -> None:
    manifest = load_manifest(path, env={})
    assert manifest.promotions
    assert manifest.server is not None
    assert manifest.server.url == "http://localhost:8070"


def test_the_examples_cover_the_documented_use_cases() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "example.yaml",
        "nightly.yaml",
        "release-window.yaml",
        "policy-change.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_manifests_match_the_json_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), Manifest.json_schema())


# --- Environment references --------------------------------------------------------------


def test_environment_references_are_substituted() -> None:
    manifest = parse(
        """\
        version: 1
        server:
          url: ${SCHEME:-https}://${IQ_HOST}/iq
          username: ${IQ_USERNAME:-ci-bot}
        concurrency: ${IQ_CONCURRENCY:-12}
        promotions:
          - name: $${literal} and $$HOME and ${EMPTY:-fallback}
            organization: ${ORG}
            transitions: [{from: build, to: release}]
        """,
        IQ_HOST="iq.example.com",
        ORG="Payments",
        EMPTY="",
    )
    assert manifest.server is not None
    assert manifest.server.url == "https://iq.example.com/iq"
    assert manifest.server.username == "ci-bot"
    assert manifest.concurrency == 12
    assert manifest.promotions[0].name == "${literal} and $$HOME and fallback"
    assert manifest.promotions[0].organization == "Payments"


def test_an_empty_default_leaves_an_optional_server_setting_unset() -> None:
    manifest = parse("version: 1\nserver: {url: '${IQ_SERVER_URL:-}'}\n" + ENTRY)
    assert manifest.server is not None
    assert manifest.server.url is None


def test_load_manifest_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nserver: {url: '${IQ_SERVER_URL}'}\n" + ENTRY, encoding="utf-8")
    monkeypatch.setenv("IQ_SERVER_URL", "https://iq.example.com")

    manifest = load_manifest(path)

    assert manifest.server is not None
    assert manifest.server.url == "https://iq.example.com"


def test_an_unset_variable_names_line_and_field() -> None:
    assert problems(
        """\
        version: 1
        server:
          caBundle: ${CA_FILE}
        promotions:
          - organization: ${ORG}
            transitions: [{from: build, to: release}]
        """
    ) == [
        (3, "server.caBundle", "environment variable CA_FILE is not set"),
        (5, "promotions[0].organization", "environment variable ORG is not set"),
    ]


def test_an_unset_url_or_user_is_left_to_the_options_and_remembered() -> None:
    """The command line and the environment come before the manifest for these: an unset
    ${VAR} there means "not set here", and is named only if nothing else gives the value."""
    manifest = parse_manifest(
        "version: 1\nserver:\n  url: ${IQ_SERVER_URL}\n  username: ${IQ_USERNAME}\n" + ENTRY,
        source="m.yaml",
        env={},
    )
    assert manifest.server is not None
    assert (manifest.server.url, manifest.server.username) == (None, None)
    reference = manifest.server.unset_reference("url")
    assert str(reference) == "m.yaml:3: server.url is ${IQ_SERVER_URL}, which is not set"
    assert manifest.server.unset_reference("username") is not None
    partly = "version: 1\nserver:\n  url: https://${IQ_HOST}/iq\n" + ENTRY
    assert [(line, field) for line, field, _ in problems(partly)] == [(3, "server.url")]


def test_a_malformed_reference_is_a_problem() -> None:
    line, field, message = only_problem("version: 1\nserver: {username: '${IQ USER}'}\n" + ENTRY)
    assert (line, field) == (2, "server.username")
    assert "write $${ for a literal ${" in message


def test_the_password_stays_a_reference_until_used(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = parse("version: 1\nserver: {password: '${CI_IQ_TOKEN}'}\n" + ENTRY)
    server = manifest.server
    assert server is not None

    assert server.password_reference == "${CI_IQ_TOKEN}"
    assert server.password_variable == "CI_IQ_TOKEN"
    assert "s3cret" not in server.model_dump_json()
    assert server.resolve_password({"CI_IQ_TOKEN": "s3cret"}) == "s3cret"
    assert server.resolve_password({}) is None
    monkeypatch.setenv("CI_IQ_TOKEN", "from-env")
    assert server.password == "from-env"
    monkeypatch.delenv("CI_IQ_TOKEN")
    assert server.password is None


def test_an_unset_password_variable_is_not_a_manifest_error() -> None:
    """Commands that send nothing (validate, --dry-run, --simulate) need no password."""
    manifest = parse("version: 1\nserver: {password: '${IQ_PASSWORD}'}\n" + ENTRY)
    assert manifest.server is not None
    assert manifest.server.password_variable == "IQ_PASSWORD"


@pytest.mark.parametrize(
    "written",
    ["admin123", "'${IQ_PASSWORD:-admin123}'", "'x${IQ_PASSWORD}'", "12345"],
)
def test_a_password_in_plain_text_is_refused_without_echoing_it(written: str) -> None:
    line, field, message = only_problem(
        f"version: 1\nserver:\n  password: {written}\n" + ENTRY, IQ_PASSWORD="secret"
    )
    assert (line, field) == (3, "server.password")
    assert "write ${IQ_PASSWORD}" in message
    assert "admin123" not in message
    assert "12345" not in message


# --- Every kind of problem, located --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 2\n" + ENTRY,
            (1, "version", "unsupported version 2: this iq-promote reads version 1"),
            id="version",
        ),
        pytest.param(
            "version: true\n" + ENTRY,
            (1, "version", "unsupported version true: this iq-promote reads version 1"),
            id="version-bool",
        ),
        pytest.param(
            ENTRY,
            (1, "version", "required, but missing: start with 'version: 1'"),
            id="version-missing",
        ),
        pytest.param(
            "version: 1\n",
            (1, "promotions", "required, but missing"),
            id="promotions-missing",
        ),
        pytest.param(
            "version: 1\npromotions: []\n",
            (2, "promotions", "must not be empty"),
            id="promotions-empty",
        ),
        pytest.param(
            "version: 1\npromotions: {applications: [a]}\n",
            (2, "promotions", "must be a list, not a mapping"),
            id="promotions-mapping",
        ),
        pytest.param(
            "version: 1\nconcurrency: 0\n" + ENTRY,
            (2, "concurrency", "must be a whole number from 1 to 1000, or 'auto', not 0"),
            id="concurrency-zero",
        ),
        pytest.param(
            "version: 1\nconcurrency: 1001\n" + ENTRY,
            (2, "concurrency", "must be a whole number from 1 to 1000, or 'auto', not 1001"),
            id="concurrency-high",
        ),
        pytest.param(
            "version: 1\nconcurrency: fast\n" + ENTRY,
            (2, "concurrency", "must be a whole number from 1 to 1000, or 'auto', not 'fast'"),
            id="concurrency-word",
        ),
        pytest.param(
            "version: 1\nconcurrency: yes\n" + ENTRY,
            (2, "concurrency", "must be a whole number from 1 to 1000, or 'auto', not true"),
            id="concurrency-bool",
        ),
        pytest.param(
            "version: 1\nconcurrency: 2.5\n" + ENTRY,
            (2, "concurrency", "must be a whole number from 1 to 1000, or 'auto', not 2.5"),
            id="concurrency-fraction",
        ),
        pytest.param(
            "version: 1\npromotionTimeout: 0\n" + ENTRY,
            (2, "promotionTimeout", "must be more than 0, not 0"),
            id="timeout-zero",
        ),
        pytest.param(
            "version: 1\npromotionTimeout: soon\n" + ENTRY,
            (2, "promotionTimeout", "must be a number, not 'soon'"),
            id="timeout-word",
        ),
        pytest.param(
            "version: 1\npromotionTimeout: true\n" + ENTRY,
            (2, "promotionTimeout", "must be a number, not true"),
            id="timeout-bool",
        ),
        pytest.param(
            "version: 1\npolling:\n  initialInterval: 10\n  maxInterval: 2\n" + ENTRY,
            (4, "polling.maxInterval", "must be at least initialInterval (10)"),
            id="polling-order",
        ),
        pytest.param(
            "version: 1\npolling: every minute\n" + ENTRY,
            (2, "polling", "must be a mapping of keys and values, not 'every minute'"),
            id="polling-scalar",
        ),
        pytest.param(
            "version: 1\nserver:\n  url: ftp://iq.example.com\n" + ENTRY,
            (3, "server.url", "must be an http:// or https:// URL, such as https://iq.example.com"),
            id="url-scheme",
        ),
        pytest.param(
            "version: 1\nserver:\n  url: https://admin:admin123@iq.example.com\n" + ENTRY,
            (
                3,
                "server.url",
                "credentials do not belong in the URL: set IQ_USERNAME and IQ_PASSWORD instead",
            ),
            id="url-credentials",
        ),
        pytest.param(
            "version: 1\nserver:\n  verifyTls: maybe\n" + ENTRY,
            (3, "server.verifyTls", "must be true or false, not 'maybe'"),
            id="verify-tls",
        ),
        pytest.param(
            "version: 1\nserver:\n  timeoutSeconds: -1\n" + ENTRY,
            (3, "server.timeoutSeconds", "must be more than 0, not -1"),
            id="request-timeout",
        ),
        pytest.param(
            "version: 1\nserver: https://iq.example.com\n" + ENTRY,
            (2, "server", "must be a mapping of keys and values, not 'https://iq.example.com'"),
            id="server-scalar",
        ),
        pytest.param(
            "version: 1\nserver:\n  verifyTLS: false\n" + ENTRY,
            (3, "server.verifyTLS", "unknown field 'verifyTLS' (did you mean 'verifyTls'?)"),
            id="unknown-server-key",
        ),
        pytest.param(
            "version: 1\nconcurency: 4\n" + ENTRY,
            (2, "concurency", "unknown field 'concurency' (did you mean 'concurrency'?)"),
            id="unknown-top-key",
        ),
        pytest.param(
            "version: 1\nretries: 4\n" + ENTRY,
            (
                2,
                "retries",
                "unknown field 'retries'; the fields here are version, server, concurrency, "
                "promotionTimeout, polling, skipIfEvaluatedWithin, promotions, repositoryResults, "
                "webhook",
            ),
            id="unknown-top-key-far",
        ),
    ],
)
def test_top_level_problems(text: str, expected: tuple[int, str, str]) -> None:
    assert only_problem(text) == expected


def entry(body: str) -> str:
    """A manifest whose only entry is ``body`` (indented as an entry's keys); line 3 on."""
    return "version: 1\npromotions:\n" + textwrap.indent(textwrap.dedent(body), "  ")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            """\
            - applications: [payments-api]
              tranistions:
                - {from: build, to: release}
            """,
            [
                (
                    4,
                    "promotions[0].tranistions",
                    "unknown field 'tranistions' (did you mean 'transitions'?)",
                ),
            ],
            id="unknown-entry-key",
        ),
        pytest.param(
            """\
            - applications: [payments-api]
              transitions:
                - {from: built, to: stage-release}
            """,
            [
                (
                    5,
                    "promotions[0].transitions[0].from",
                    "'built' is not one of build, stage-release, release, operate",
                )
            ],
            id="bad-stage",
        ),
        pytest.param(
            """\
            - applications: [payments-api]
              transitions:
                - from: build
                  to: 3
            """,
            [
                (
                    6,
                    "promotions[0].transitions[0].to",
                    "must be one of build, stage-release, release, operate, not 3",
                )
            ],
            id="stage-number",
        ),
        pytest.param(
            """\
            - applications: [web-portal]
              transitions:
                - {scanId: 896791eb6a484d51bb570dca94dc2c67, from: build, to: stage-release}
            """,
            [(5, "promotions[0].transitions[0]", "give either 'from' or 'scanId', not both")],
            id="both-sources",
        ),
        pytest.param(
            """\
            - applications: [web-portal]
              transitions:
                - {to: stage-release}
            """,
            [
                (
                    5,
                    "promotions[0].transitions[0]",
                    "give 'from' (a stage) or 'scanId' (a scan) to promote",
                )
            ],
            id="no-source",
        ),
        pytest.param(
            """\
            - applications: [web-portal]
              transitions:
                - {from: build}
            """,
            [(5, "promotions[0].transitions[0].to", "required, but missing")],
            id="no-target",
        ),
        pytest.param(
            """\
            - applications: [web-portal]
              transitions: [build]
            """,
            [
                (
                    4,
                    "promotions[0].transitions[0]",
                    "must be a mapping of keys and values, not 'build'",
                )
            ],
            id="transition-scalar",
        ),
        pytest.param(
            """\
            - applications: [web-portal]
              transitions:
                - {scanId: not-a-scan, to: release}
            """,
            [
                (
                    5,
                    "promotions[0].transitions[0].scanId",
                    "'not-a-scan' is not a scan id (32 hexadecimal characters, "
                    "as in a report's URL)",
                )
            ],
            id="bad-scan-id",
        ),
        pytest.param(
            """\
            - applications: [web-portal, ledger]
              transitions:
                - {from: build, to: stage-release}
                - {scanId: 896791eb6a484d51bb570dca94dc2c67, to: release}
            """,
            [
                (
                    6,
                    "promotions[0].transitions[1].scanId",
                    "a scan belongs to one application: promote a scanId in an entry whose "
                    "'applications' lists exactly one",
                )
            ],
            id="scan-id-for-many",
        ),
        pytest.param(
            """\
            - applications: []
              transitions: [{from: build, to: release}]
            """,
            [(3, "promotions[0].applications", "must not be empty")],
            id="applications-empty",
        ),
        pytest.param(
            """\
            - applications: [payments-api]
              transitions: []
            """,
            [(4, "promotions[0].transitions", "must not be empty")],
            id="transitions-empty",
        ),
        pytest.param(
            """\
            - applications:
                - payments-api
                - ledger
                - payments-api
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    6,
                    "promotions[0].applications[2]",
                    "'payments-api' is listed twice (also applications[0])",
                )
            ],
            id="applications-repeated",
        ),
        pytest.param(
            """\
            - applications: [payments-api ledger]
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    3,
                    "promotions[0].applications[0]",
                    "'payments-api ledger' is not a public id (no spaces; separate ids with "
                    "commas)",
                )
            ],
            id="public-id-space",
        ),
        pytest.param(
            """\
            - applications: payments-api
              transitions: [{from: build, to: release}]
            """,
            [(3, "promotions[0].applications", "must be a list, not 'payments-api'")],
            id="applications-scalar",
        ),
        pytest.param(
            """\
            - name: nothing selected
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    3,
                    "promotions[0]",
                    "give one of 'applications', 'organization', 'organizations', "
                    "'categories' or 'all: true'",
                )
            ],
            id="no-selector",
        ),
        pytest.param(
            """\
            - organization: Payments
              all: true
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    3,
                    "promotions[0]",
                    "give only one of 'applications', 'organization', 'organizations' and "
                    "'all' (found 'organization' and 'all')",
                )
            ],
            id="two-selectors",
        ),
        pytest.param(
            """\
            - all: false
              transitions: [{from: build, to: release}]
            """,
            [(3, "promotions[0].all", "can only be true: 'all: true' selects every application")],
            id="all-false",
        ),
        pytest.param(
            """\
            - organization: ''
              transitions: [{from: build, to: release}]
            """,
            [(3, "promotions[0].organization", "must not be empty")],
            id="organization-empty",
        ),
        pytest.param(
            """\
            - applications: [payments-api]
              exclude: [ledger]
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    4,
                    "promotions[0].exclude",
                    "'exclude' goes with 'organization', 'organizations', 'categories' or "
                    "'all'; leave the application out of 'applications' instead",
                )
            ],
            id="exclude-with-applications",
        ),
        pytest.param(
            """\
            - 3
            """,
            [(3, "promotions[0]", "must be a mapping of keys and values, not 3")],
            id="entry-scalar",
        ),
        pytest.param(
            """\
            - organization: Payments
              organizations: [Retail]
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    3,
                    "promotions[0]",
                    "give only one of 'applications', 'organization', 'organizations' and "
                    "'all' (found 'organization' and 'organizations')",
                )
            ],
            id="organization-and-organizations",
        ),
        pytest.param(
            """\
            - applications: [payments-api]
              categories: [Tier-1]
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    4,
                    "promotions[0].categories",
                    "'categories' chooses among an organization's applications or all of them; "
                    "with 'applications', list only the ones you want",
                )
            ],
            id="categories-with-applications",
        ),
        pytest.param(
            """\
            - applications: [payments-api]
              excludeOrganizations: [Payments Sandbox]
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    4,
                    "promotions[0].excludeOrganizations",
                    "'excludeOrganizations' goes with 'organization', 'organizations', "
                    "'categories' or 'all'; leave the application out of 'applications' instead",
                )
            ],
            id="exclude-organizations-with-applications",
        ),
        pytest.param(
            """\
            - all: true
              includeSubOrganizations: false
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    4,
                    "promotions[0].includeSubOrganizations",
                    "'includeSubOrganizations' goes with 'organization' or 'organizations'",
                )
            ],
            id="sub-organizations-without-organization",
        ),
        pytest.param(
            """\
            - organizations: [Payments, Retail, Payments]
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    3,
                    "promotions[0].organizations[2]",
                    "'Payments' is listed twice (also organizations[0])",
                )
            ],
            id="organizations-repeated",
        ),
        pytest.param(
            """\
            - categories: []
              transitions: [{from: build, to: release}]
            """,
            [(3, "promotions[0].categories", "must not be empty")],
            id="categories-empty",
        ),
        pytest.param(
            """\
            - all: true
              skipIfEvaluatedWithin: 24
              transitions: [{from: build, to: release}]
            """,
            [
                (
                    4,
                    "promotions[0].skipIfEvaluatedWithin",
                    "24 is not a duration: write a whole number and m (minutes), h (hours) or "
                    "d (days), such as 30m, 12h or 7d",
                )
            ],
            id="duration-without-unit",
        ),
    ],
)
def test_entry_problems(body: str, expected: list[tuple[int, str, str]]) -> None:
    assert problems(entry(body)) == expected


SELECTING = """\
version: 1
skipIfEvaluatedWithin: 12h
promotions:
  - name: payments tier-1
    organizations: [Payments, Retail/Checkout]
    excludeOrganizations: [Payments Sandbox]
    categories: [Tier-1, PCI]
    includeSubOrganizations: false
    exclude: [legacy-pos]
    transitions: [{from: release, to: release}]
  - categories: [Internal]
    skipIfEvaluatedWithin: 7d
    transitions: [{from: operate, to: operate}]
  - organization: Platform
    skipIfEvaluatedWithin: 0m
    transitions: [{from: build, to: build}]
"""


def test_entries_select_by_organizations_and_categories_and_know_their_lines() -> None:
    manifest = parse_manifest(SELECTING, source="select.yaml", env={})
    first, second, third = manifest.promotions
    assert first.organizations == ("Payments", "Retail/Checkout")
    assert first.exclude_organizations == ("Payments Sandbox",)
    assert first.categories == ("Tier-1", "PCI")
    assert first.include_sub_organizations is False
    assert second.include_sub_organizations is True, "sub-organizations are in by default"
    assert [e.selects for e in manifest.promotions] == [True, True, True]
    assert [e.line for e in manifest.promotions] == [4, 11, 14]
    assert manifest.source == "select.yaml"
    assert manifest.skip_window(first) == Duration("12h", timedelta(hours=12)), "the top level's"
    assert manifest.skip_window(second) == Duration("7d", timedelta(days=7)), "the entry's own"
    assert manifest.skip_window(third) is None, "0m never skips"
    assert str(second.skip_if_evaluated_within) == "7d"


def test_a_problem_the_server_reveals_points_at_the_entry() -> None:
    manifest = parse_manifest(SELECTING, source="select.yaml", env={})
    error = manifest.problem(1, "categories[0]", "something the server said")
    assert [str(p) for p in error.problems] == [
        "select.yaml:11: promotions[1].categories[0]: something the server said"
    ]
    assert error.exit_code == 2


def test_lines_survive_loading_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "select.yaml"
    path.write_text(SELECTING, encoding="utf-8")
    manifest = load_manifest(path, env={})
    assert manifest.source == str(path)
    assert [e.line for e in manifest.promotions] == [4, 11, 14]


@pytest.mark.parametrize(
    ("written", "expected", "shown_as"),
    [
        ("30m", timedelta(minutes=30), "30m"),
        ("12h", timedelta(hours=12), "12h"),
        ("7d", timedelta(days=7), "7d"),
        (" 24 h ", timedelta(hours=24), "24h"),
        ("0m", timedelta(0), "0m"),
    ],
)
def test_durations(written: str, expected: timedelta, shown_as: str) -> None:
    manifest = parse(f"version: 1\nskipIfEvaluatedWithin: '{written}'\n" + ENTRY)
    assert manifest.skip_if_evaluated_within is not None
    assert manifest.skip_if_evaluated_within.delta == expected
    assert str(manifest.skip_if_evaluated_within) == shown_as


@pytest.mark.parametrize("written", ["1w", "1.5h", "-1h", "h", "24 hours", "''", "[12h]"])
def test_what_is_not_a_duration(written: str) -> None:
    line, field, message = only_problem(f"version: 1\nskipIfEvaluatedWithin: {written}\n" + ENTRY)
    assert (line, field) == (2, "skipIfEvaluatedWithin")
    assert message.endswith(
        "is not a duration: write a whole number and m (minutes), h (hours) or d (days), "
        "such as 30m, 12h or 7d"
    )


def test_duplicate_keys_are_reported_where_repeated() -> None:
    assert problems(
        """\
        version: 1
        concurrency: 4
        promotions:
          - applications: [payments-api]
            transitions:
              - {from: build, to: stage-release, to: release}
        concurrency: 8
        """
    ) == [
        (
            6,
            "promotions[0].transitions[0].to",
            "'to' is given twice (first at line 6); give each key once",
        ),
        (7, "concurrency", "'concurrency' is given twice (first at line 2); give each key once"),
    ]


def test_every_problem_is_reported_at_once_sorted_by_line() -> None:
    found = problems(
        """\
        version: 1
        server:
          url: ${IQ_SERVER_URL}x
          password: admin123
        concurrency: many
        promotions:
          - applications: [payments-api]
            transitions:
              - {from: built, to: stage-release}
          - organization: Payments
            transitions:
              - {from: release, too: release}
          - all: true
            transitions: [{from: operate}]
        """
    )
    assert [(line, field) for line, field, _ in found] == [
        (3, "server.url"),
        (4, "server.password"),
        (5, "concurrency"),
        (9, "promotions[0].transitions[0].from"),
        (12, "promotions[1].transitions[0].too"),  # not also "'to' is missing"
        (14, "promotions[2].transitions[0].to"),  # missing: the line of its mapping
    ]


def test_a_problem_reads_as_file_line_field_message() -> None:
    text = "version: 1\n" + entry(
        """\
        - applications: [payments-api]
          transitions:
            - {from: built, to: stage-release}
        """
    ).removeprefix("version: 1\n")
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, source="nightly.yaml", env={})
    assert str(caught.value) == (
        "nightly.yaml:5: promotions[0].transitions[0].from: "
        "'built' is not one of build, stage-release, release, operate"
    )
    assert caught.value.exit_code == 2


# --- Text that is not a manifest -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("", None, "the manifest is empty", id="empty"),
        pytest.param("# nothing yet\n\n", None, "the manifest is empty", id="comments-only"),
        pytest.param("- version: 1\n", 1, "the manifest is a list, not a mapping", id="list"),
        pytest.param("promote everything\n", 1, "the manifest is 'promote", id="scalar"),
        pytest.param(
            "version: 1\npromotions: [\n  {all: true\n",
            4,
            "not valid YAML at column 1: did not find expected ',' or '}'",
            id="unclosed",
        ),
        pytest.param(
            "version: 1\n  promotions: []\n",
            2,
            "not valid YAML at column 13: mapping values are not allowed",
            id="indentation",
        ),
        pytest.param(
            "version: 1\n---\nversion: 1\n",
            2,
            "a manifest is one YAML document: remove '---'",
            id="two-documents",
        ),
        pytest.param(
            "version: 1\nconcurrency: \x07\n", 2, "character 0x0007 is not allowed", id="control"
        ),
        pytest.param(
            "version: !!python/object/apply:os.system [true]\n",
            1,
            "YAML tag tag:yaml.org,2002:python/object/apply:os.system is not supported here",
            id="python-tag",
        ),
        pytest.param("version: *nowhere\n", 1, "found undefined alias", id="undefined-alias"),
        pytest.param(
            "version: 1\npromotions: &loop [*loop]\n",
            2,
            "an alias refers to the list or mapping it is in",
            id="recursive-alias",
        ),
        pytest.param(
            "version: 1\nx-deep: " + "[" * 40 + "]" * 40 + "\n",
            2,
            "lists and mappings nest more than 32 levels deep",
            id="deep",
        ),
        pytest.param(
            "version: 1\nx-deep: " + "[" * 100_000 + "]" * 100_000 + "\n",
            2,
            "lists and mappings nest more than 32 levels deep",
            id="very-deep",
        ),
        pytest.param(
            "version: 1\npromotions:\n  - organization: 2024-02-30\n",
            3,
            "cannot read '2024-02-30': day is out of range for month",
            id="impossible-date",
        ),
        pytest.param(
            "version: 1\n? [a, b]\n: c\n" + ENTRY,
            2,
            "a key must be a plain name, not a list or mapping",
            id="complex-key",
        ),
        pytest.param(
            "version: 1\npromotions: !!set {a}\n",
            2,
            "YAML tag tag:yaml.org,2002:set is not supported here",
            id="set-tag",
        ),
    ],
)
def test_text_that_is_not_a_manifest(text: str, line: int | None, message: str) -> None:
    found = problems(text)
    assert found[0][0] == line
    assert message in found[0][2], found


def test_alias_bombs_stop_early() -> None:
    lines = ["version: 1", "x-0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"x-{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 10)]
    line, field, message = problems("\n".join(lines) + "\n" + ENTRY)[0]
    assert message == "aliases repeat more than 100000 values; write them out"
    assert line is not None
    assert field.startswith("x-")


def test_a_missing_file() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest("no/such/manifest.yaml")
    assert caught.value.problems == [
        ManifestProblem("no/such/manifest.yaml", None, "", "cannot read: No such file or directory")
    ]


def test_a_directory_is_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read: Is a directory"):
        load_manifest(tmp_path)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\npromotions:\n  - organization: Z\xfcrich\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert caught.value.problems == [
        ManifestProblem(str(path), 3, "", "not UTF-8 text (byte 0xfc); save the file as UTF-8")
    ]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\n" + ENTRY.encode())
    assert load_manifest(path, env={}).version == 1


def test_load_manifest_names_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text("version: 3\n" + ENTRY, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(str(path), env={})
    assert str(caught.value).startswith(f"{path}:1: version: unsupported version 3")


def test_a_relative_ca_bundle_is_found_beside_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nserver: {caBundle: certs/corp.pem}\n" + ENTRY, encoding="utf-8")
    manifest = load_manifest(path, env={})
    assert manifest.server is not None
    assert manifest.server.ca_bundle == str(tmp_path / "certs" / "corp.pem")


# --- Scale -------------------------------------------------------------------------------


def test_twenty_thousand_applications_load() -> None:
    """Loads in well under a second (0.1 s in one list, 0.9 s as 20,000 flow-style entries):
    nothing is done per value that grows with the size of the manifest."""
    names = [f"app-{i:05d}" for i in range(20_000)]
    listed = "\n".join(f"      - {name}" for name in names[:10_000])
    one_each = "".join(
        f"  - applications: [{name}]\n    transitions: [{{from: operate, to: operate}}]\n"
        for name in names[10_000:]
    )
    text = (
        "version: 1\npromotions:\n  - applications:\n"
        f"{listed}\n    transitions:\n      - {{from: build, to: stage-release}}\n{one_each}"
    )

    manifest = parse_manifest(text, env={})

    selected = [a for e in manifest.promotions for a in e.applications or ()]
    assert selected == names


def test_errors_in_a_large_manifest_still_name_their_lines() -> None:
    listed = "".join(f"      - app-{i}\n" for i in range(5_000))
    text = f"version: 1\npromotions:\n  - applications:\n{listed}      - bad id\n"
    found = problems(text + "    transitions: [{from: build, to: release}]\n")
    assert found == [
        (
            5_004,
            "promotions[0].applications[5000]",
            "'bad id' is not a public id (no spaces; separate ids with commas)",
        )
    ]


# --- Schema and public surface -------------------------------------------------------------


def test_the_committed_json_schema_is_current() -> None:
    generated = json.dumps(Manifest.json_schema(), indent=2) + "\n"
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert committed == generated, (
        f"{SCHEMA_FILE.relative_to(ROOT)} is out of date; regenerate it with\n"
        f"  iq-promote schema manifest > {SCHEMA_FILE.relative_to(ROOT)}\n"
        "and commit it with the model change"
    )


def test_the_json_schema_describes_the_yaml_keys() -> None:
    schema = Manifest.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["version", "promotions"]
    assert set(schema["properties"]) == {
        "version",
        "server",
        "concurrency",
        "promotionTimeout",
        "polling",
        "skipIfEvaluatedWithin",
        "promotions",
        "repositoryResults",
        "webhook",
    }
    transition = schema["$defs"]["Transition"]
    assert set(transition["properties"]) == {"from", "scanId", "to"}
    for definition in schema["$defs"].values():
        assert definition.get("description"), definition
        for key, field in definition.get("properties", {}).items():
            assert field.get("description"), key
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_public_names_exist_and_are_documented() -> None:
    for name in orchestrator.manifest.model.__all__:
        assert getattr(orchestrator.manifest.model, name).__doc__, name


# --- Fuzzing: nothing but ManifestError, ever ----------------------------------------------

YAML_TOKENS = [
    *"abc01 \n\t-:,[]{}&*!|>'\"#%@`$?<=~.",
    *["version", "promotions", "transitions", "from", "to", "${X}", "<<", "---", "  "],
]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join)

KEYS = st.sampled_from(
    [
        "version",
        "server",
        "url",
        "password",
        "concurrency",
        "promotions",
        "applications",
        "organization",
        "all",
        "exclude",
        "transitions",
        "from",
        "to",
        "scanId",
        "polling",
        "x-y",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.sampled_from(["build", "release", "auto", "${X}", "${X:-1}", "$${", "1", "a b", ""])
    | st.text(max_size=20)
)
STRUCTURES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=5), inner),
    max_leaves=30,
)


def parses_or_explains(text: str) -> None:
    try:
        parse_manifest(text, source="fuzz.yaml", env={"X": "3"})
    except ManifestError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    lines = text.count("\n") + 2
    for problem in problems:
        assert problem.file == "fuzz.yaml"
        assert problem.line is None or 1 <= problem.line <= lines
        assert problem.message


@given(st.text(max_size=300))
def test_any_text_is_a_manifest_or_a_manifest_error(text: str) -> None:
    parses_or_explains(text)


@given(YAMLISH)
def test_yaml_like_text_is_a_manifest_or_a_manifest_error(text: str) -> None:
    parses_or_explains(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, 1, 2, "1", None]), "promotions": STRUCTURES},
        optional={"server": STRUCTURES, "concurrency": SCALARS, "polling": STRUCTURES},
    )
    | STRUCTURES
)
def test_any_structure_is_a_manifest_or_a_manifest_error(data: Any) -> None:
    parses_or_explains(yaml.safe_dump(data))


PUBLIC_IDS = st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True)
STAGES = st.sampled_from([stage.value for stage in Stage])
TRANSITIONS = st.one_of(
    st.builds(lambda s, t: {"from": s, "to": t}, STAGES, STAGES),
    st.builds(
        lambda i, t: {"scanId": i, "to": t}, st.from_regex(r"[0-9a-f]{32}", fullmatch=True), STAGES
    ),
)


SELECTORS = ["applications", "organization", "all"]


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    transitions = draw(st.lists(TRANSITIONS, min_size=1, max_size=4))
    by_scan = any("scanId" in t for t in transitions)
    kind = "applications" if by_scan else draw(st.sampled_from(SELECTORS))
    if kind == "applications":
        size = 1 if by_scan else draw(st.integers(1, 5))
        selector: Any = draw(st.lists(PUBLIC_IDS, min_size=size, max_size=size, unique=True))
    elif kind == "organization":
        names = st.text(min_size=1, max_size=20).map(str.strip).filter(lambda s: s and "$" not in s)
        selector = draw(names)
    else:
        selector = True
    return {kind: selector, "transitions": transitions}


@given(
    st.lists(entries(), min_size=1, max_size=5),
    st.one_of(st.none(), st.integers(1, 1000), st.just("auto")),
)
def test_valid_manifests_parse_to_what_was_written(
    promotions: list[dict[str, Any]], concurrency: int | str | None
) -> None:
    data: dict[str, Any] = {"version": 1, "promotions": promotions}
    if concurrency is not None:
        data["concurrency"] = concurrency

    manifest = parse_manifest(yaml.safe_dump(data), env={})

    assert manifest.concurrency == concurrency
    for written, read in zip(promotions, manifest.promotions, strict=True):
        assert read.model_dump(by_alias=True, exclude_defaults=True, mode="json") == {
            k: (list(v) if isinstance(v, list) else v) for k, v in written.items()
        }


def test_lines_are_numbered_as_an_editor_shows_them() -> None:
    """YAML also breaks lines at U+0085, U+2028 and U+2029; an editor does not, so neither do
    the line numbers of a manifest's problems."""
    assert problems("\x85\x850") == [(1, "", problems("0")[0][2])]
    text = (
        "version: 1\u2028\u2028\npromotions:\n  - applications: [a]\n    transitions: [{to: x}]\n"
    )
    lines = {line for line, _, _ in problems(text)}
    assert lines == {4}


MEANING = """\
version: 1
concurrency: 4
promotions:
  - applications: [a, b]
    transitions: [{from: build, to: release}]
"""


@pytest.mark.parametrize(
    "same",
    [
        MEANING.replace("version: 1", "# nightly\nversion: 1"),
        MEANING.replace("concurrency: 4", "concurrency: 9\npolling: {initialInterval: 2}"),
        MEANING.replace("[a, b]", "\n      - 'a'\n      - \"b\""),
        MEANING.replace("{from: build, to: release}", "{to: release, from: build}"),
        "x-common: &t {from: build, to: release}\n"
        + MEANING.replace("{from: build, to: release}", "*t"),
    ],
    ids=["comment", "settings", "quoting", "key-order", "anchor"],
)
def test_what_a_manifest_means_survives_edits_that_change_no_step(same: str) -> None:
    assert manifest_digest(parse(same)) == manifest_digest(parse(MEANING))


@pytest.mark.parametrize(
    "other",
    [
        MEANING.replace("[a, b]", "[b, a]"),
        MEANING.replace("to: release", "to: operate"),
        MEANING.replace("[a, b]", "[a, b, c]"),
    ],
    ids=["order", "target", "application"],
)
def test_what_a_manifest_means_changes_with_its_steps(other: str) -> None:
    assert manifest_digest(parse(other)) != manifest_digest(parse(MEANING))
