"""Realistic run reports for the renderer and baseline tests, built without a server.

:func:`sample_report` has every outcome, several organizations (with names that need
escaping), violations, an entry with no public id, and, by default, a comparison with
:func:`previous_report`. Named applications below behave the same in every sample, so tests
can look them up; the rest are seeded filler.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

from orchestrator.report.baseline import compare
from orchestrator.report.gate import Threshold, gate
from orchestrator.report.results import Outcome, PromotionResult, ViolationCounts
from orchestrator.report.run_report import RunReport, Summary

STARTED = datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
SERVER = "https://iq.example.test:8070"
BASELINE_PATH = "reports/nightly-previous.json"

ORGANIZATIONS = ("Payments", "Platform", "Retail | Web", "Data & <Analytics>")

KNOWN_APP = "payments-gateway"
"""COMPLETED build->release, 3 critical violations where the baseline had none."""
FIXED_APP = "payments-ledger"
"""COMPLETED, its 2 critical violations of the baseline now fixed."""
REGRESSED_APP = "web-storefront"
"""FAILED now (a reason with | and a newline), COMPLETED in the baseline."""
NEW_APP = "new-service"
"""Not in the baseline."""
MISSING_APP = "retired-app"
"""Only in the baseline."""
HOSTILE_REASON = '</script><script>alert("x")</script><b>bold</b> & more'
FAILED_REASON = "Policy evaluation failed | 2 components\nsee the server log"


def report_url(public_id: str, scan: str) -> str:
    return f"{SERVER}/ui/links/application/{public_id}/report/{scan}"


def result(
    public_id: str | None,
    status: Outcome,
    *,
    organization: str | None = "Payments",
    index: int = 0,
    source: str | None = "build",
    scan_id: str | None = None,
    target: str = "release",
    reason: str | None = None,
    start: float = 0.0,
    duration: float | None = 30.0,
    violations: ViolationCounts | None = None,
) -> PromotionResult:
    """One result; a COMPLETED one gets report links, a started one gets its times."""
    scan = hashlib.sha256(f"{public_id}/{target}".encode()).hexdigest()[:12]
    submitted = STARTED + timedelta(seconds=start) if duration is not None else None
    url = report_url(public_id, scan) if public_id and status is Outcome.COMPLETED else None
    return PromotionResult(
        public_id=public_id,
        application_id=f"id-{public_id}" if public_id else None,
        organization=organization,
        entry_index=index,
        transition_index=0,
        source_stage_id=None if scan_id else source,
        scan_id=scan_id,
        target_stage_id=target,
        status=status,
        reason=reason,
        status_url=f"api/v2/evaluation/applications/id-{public_id}/promotion/status/{scan}"
        if submitted
        else None,
        report_html_url=url,
        report_pdf_url=f"{url}/pdf" if url else None,
        attempts=1 if submitted else 0,
        polls=max(1, int((duration or 0) / 5)) if submitted else 0,
        submitted_at=submitted,
        finished_at=submitted + timedelta(seconds=duration)
        if submitted and duration is not None
        else None,
        duration_seconds=duration,
        evaluation_seconds=round(duration * 0.8, 3)
        if duration is not None and status in (Outcome.COMPLETED, Outcome.FAILED)
        else None,
        violations=violations,
    )


def _named() -> list[PromotionResult]:
    o = Outcome
    v = ViolationCounts
    return [
        result(
            KNOWN_APP,
            o.COMPLETED,
            start=1,
            duration=42.5,
            violations=v(critical=3, severe=5, moderate=2, low=1),
        ),
        result(FIXED_APP, o.COMPLETED, start=2, duration=18.0, violations=v(severe=2)),
        result(
            REGRESSED_APP,
            o.FAILED,
            organization="Retail | Web",
            index=1,
            target="stage-release",
            reason=FAILED_REASON,
            start=3,
            duration=75.0,
        ),
        result(
            "platform-auth",
            o.ERROR,
            organization="Platform",
            index=2,
            scan_id="4f1c0a9e2b7d",
            reason="HTTP 404: scan 4f1c0a9e2b7d was purged",
            start=4,
            duration=0.4,
        ),
        result(
            "platform-auth",
            o.SKIPPED,
            organization="Platform",
            index=2,
            source="release",
            target="operate",
            reason="an earlier transition of this chain did not complete",
            duration=None,
        ),
        result(
            "data-pipeline",
            o.TIMED_OUT,
            organization="Data & <Analytics>",
            index=3,
            reason="no final status after 600 s",
            start=5,
            duration=600.0,
        ),
        result(
            "data-lake",
            o.CANCELLED,
            organization="Data & <Analytics>",
            index=3,
            reason="the run was stopped (SIGTERM)",
            start=6,
            duration=120.0,
        ),
        result(
            None,
            o.ERROR,
            organization="Ghost Org",
            index=4,
            reason="unknown organization 'Ghost Org'",
            duration=None,
        ),
        result(
            "xss-probe",
            o.FAILED,
            organization="Platform",
            index=5,
            reason=HOSTILE_REASON,
            start=7,
            duration=12.0,
        ),
        result(
            NEW_APP,
            o.COMPLETED,
            organization="Platform",
            index=5,
            start=8,
            duration=25.0,
            violations=v(),
        ),
    ]


def _filler(size: int, seed: int) -> list[PromotionResult]:
    rng = random.Random(seed)
    weights = {Outcome.COMPLETED: 88, Outcome.FAILED: 5, Outcome.ERROR: 3, Outcome.TIMED_OUT: 2}
    out = []
    for i in range(size):
        status = rng.choices(list(weights), weights=list(weights.values()))[0]
        duration = round(rng.lognormvariate(3.2, 0.7), 3)
        violations = None
        if status is Outcome.COMPLETED:
            violations = ViolationCounts(
                critical=rng.choice((0, 0, 0, 1, 2)),
                severe=rng.randint(0, 6),
                moderate=rng.randint(0, 9),
                low=rng.randint(0, 4),
            )
        out.append(
            result(
                f"app-{i:05d}",
                status,
                organization=ORGANIZATIONS[i % len(ORGANIZATIONS)],
                index=10 + i // 50,
                reason=None if status is Outcome.COMPLETED else f"{status.lower()} in filler {i}",
                start=round(i * 1.7 + rng.random() * 20, 3),
                duration=duration,
                violations=violations,
            )
        )
    return out


def _report(results: list[PromotionResult], started: datetime) -> RunReport:
    ends = [r.finished_at for r in results if r.finished_at is not None]
    finished = max([started, *ends]) + timedelta(seconds=2)
    return RunReport(
        started_at=started,
        finished_at=finished,
        duration_seconds=(finished - started).total_seconds(),
        server_url=SERVER,
        manifest="manifests/nightly.yaml",
        summary=Summary.of(results),
        results=results,
    )


def previous_report(size: int = 40, seed: int = 7) -> RunReport:
    """The baseline: the night before, with the named applications' earlier state."""
    v = ViolationCounts
    now = sample_report(size=size, seed=seed, with_baseline=False).results
    before: list[PromotionResult] = []
    for r in now:
        if r.public_id == NEW_APP:
            continue
        if r.public_id == KNOWN_APP:
            r = r.model_copy(update={"violations": v(severe=4)})
        elif r.public_id == FIXED_APP:
            r = r.model_copy(update={"violations": v(critical=2, severe=2)})
        elif r.public_id == REGRESSED_APP:
            r = r.model_copy(update={"status": Outcome.COMPLETED, "reason": None})
        before.append(r)
    before.append(result(MISSING_APP, Outcome.COMPLETED, organization="Platform", index=6))
    return _report(before, STARTED - timedelta(days=1))


def sample_report(size: int = 40, seed: int = 7, *, with_baseline: bool = True) -> RunReport:
    """The named results followed by ``size`` seeded filler results."""
    report = _report(_named() + _filler(size, seed), STARTED)
    if not with_baseline:
        return report
    baseline = compare(report, previous_report(size, seed), BASELINE_PATH)
    return report.model_copy(update={"baseline": baseline})


def completed_report(size: int = 5, *, day: int = 0) -> RunReport:
    """A run in which every promotion completed, ``day`` days after the sample's."""
    results = [
        result(
            f"ok-{i}", Outcome.COMPLETED, start=i, duration=10.0 + i, violations=ViolationCounts()
        )
        for i in range(size)
    ]
    return _report(results, STARTED + timedelta(days=day))


GATED_APP = "billing-api"
"""COMPLETED with 2 critical violations: crosses ``--fail-on critical``."""
UNCHECKED_APP = "billing-batch"
"""COMPLETED, its policy data never read: the gate cannot call it clean."""


def gated_report(fail_on: Threshold = "critical") -> RunReport:
    """A night in which every promotion completed but the gate failed: one report crossed it,
    one could not be checked, one was clean. Exit code 1, as the run gives it."""
    results = [
        result(GATED_APP, Outcome.COMPLETED, violations=ViolationCounts(critical=2, severe=1)),
        result(UNCHECKED_APP, Outcome.COMPLETED, start=1, violations=None),
        result("billing-ui", Outcome.COMPLETED, start=2, violations=ViolationCounts(moderate=3)),
    ]
    report = _report(results, STARTED)
    return report.model_copy(update={"policy_gate": gate(results, fail_on), "exit_code": 1})
