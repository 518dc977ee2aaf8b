"""A report's data, raw and policy: its components, their security and license data, and
their policy violations with threat levels.

Each application has a stable bill of materials (seeded by application); each report varies
it a little, as a re-evaluation against newer vulnerability data would. The same report always
answers the same data. As on a real server, the raw data carries no violations: they are only
in the policy data.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from orchestrator.iq.models import Application
from orchestrator.iq.report_models import (
    LicenseData,
    LicenseRef,
    PolicyComponent,
    PolicyReport,
    PolicyViolation,
    RawComponent,
    RawReport,
    ReportComponentIdentifier,
    SecurityData,
    SecurityIssue,
)
from orchestrator.simulator.catalogue import FORMATS, POLICIES, Component, Policy, components
from orchestrator.simulator.portfolio import Report

SECURITY = [p for p in POLICIES if p.category == "SECURITY"]
_LICENSES = ("Apache-2.0", "MIT", "BSD-3-Clause", "GPL-3.0-only", "LGPL-2.1-only")


@dataclass(frozen=True, slots=True)
class _Finding:
    """One component of one report, and the policies it violates there."""

    component: Component
    policies: tuple[Policy, ...]
    match_state: str


def _bill_of_materials(seed: int, application: Application) -> list[tuple[Component, list[Policy]]]:
    rng = random.Random(f"components:{seed}:{application.id}")
    primary = rng.choice(FORMATS)
    pool = components(primary) + rng.sample(components(rng.choice(FORMATS)), 4)
    chosen = rng.sample(pool, min(len(pool), rng.randint(8, 30)))
    bom: list[tuple[Component, list[Policy]]] = []
    for component in chosen:
        count = rng.choices((0, 1, 2, 3), weights=(45, 35, 15, 5))[0]
        bom.append((component, rng.sample(POLICIES, count)))
    return bom


def _findings(seed: int, application: Application, report: Report) -> list[_Finding]:
    rng = random.Random(f"report:{seed}:{report.report_id}")
    found: list[_Finding] = []
    for component, policies in _bill_of_materials(seed, application):
        current = list(policies)
        if current and rng.random() < 0.05:
            current.pop()  # a finding withdrawn since the last evaluation
        if rng.random() < 0.1:
            newest = rng.choice(SECURITY)
            if newest not in current:
                current.append(newest)  # a vulnerability published since
        match_state = "unknown" if rng.random() < 0.03 else "exact"
        found.append(_Finding(component, tuple(current), match_state))
    return found


def _identifier(component: Component) -> ReportComponentIdentifier:
    return ReportComponentIdentifier(
        format=component.identifier.format, coordinates=component.identifier.coordinates
    )


def _violation(report: Report, component: Component, policy: Policy) -> PolicyViolation:
    key = f"{report.report_id}:{component.hash}:{policy.id}"
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
    draw = int(digest[-2:], 16)
    return PolicyViolation(
        policy_id=policy.id,
        policy_name=policy.name,
        policy_threat_level=policy.threat_level,
        policy_threat_category=policy.category,
        policy_violation_id=digest[:32],
        waived=draw < 13,  # about one in twenty
        grandfathered=13 <= draw < 21,  # about one in thirty
        legacy_violation=21 <= draw < 26,  # about one in fifty
    )


def policy_report(seed: int, application: Application, report: Report) -> PolicyReport:
    """The data behind ``.../reports/{scanId}/policy``, every component, deterministic."""
    return PolicyReport(
        report_title=f"Report-{report.stage}",
        initiator="admin",
        report_time=int(report.evaluation_date.timestamp() * 1000),
        components=[
            PolicyComponent(
                hash=f.component.hash,
                display_name=f.component.display_text,
                package_url=f.component.package_url,
                component_identifier=_identifier(f.component),
                match_state=f.match_state,
                proprietary=False,
                pathnames=[f"lib/{f.component.pathname.rsplit('/', 1)[-1]}"],
                violations=[_violation(report, f.component, p) for p in f.policies],
            )
            for f in _findings(seed, application, report)
        ],
    )


def raw_report(seed: int, application: Application, report: Report) -> RawReport:
    """The data behind ``.../reports/{scanId}/raw``: the same components, their security
    issues and licenses, and no violations."""
    rows = []
    for f in _findings(seed, application, report):
        digest = hashlib.sha1(f.component.hash.encode(), usedforsecurity=False).hexdigest()
        license_ref = LicenseRef(license_id=_LICENSES[int(digest[:2], 16) % len(_LICENSES)])
        issues = [
            SecurityIssue(
                reference=f"CVE-2024-{int(digest[2:6], 16) % 90000 + 10000}",
                severity=float(p.threat_level),
                source="cve",
                status="Open",
                threat_category="critical" if p.threat_level >= 8 else "severe",
            )
            for p in f.policies
            if p.category == "SECURITY"
        ]
        rows.append(
            RawComponent(
                hash=f.component.hash,
                display_name=f.component.display_text,
                package_url=f.component.package_url,
                component_identifier=_identifier(f.component),
                match_state=f.match_state,
                proprietary=False,
                pathnames=[f"lib/{f.component.pathname.rsplit('/', 1)[-1]}"],
                license_data=LicenseData(
                    declared_licenses=[license_ref],
                    effective_licenses=[license_ref],
                    status="Open",
                ),
                security_data=SecurityData(security_issues=issues),
            )
        )
    return RawReport(components=rows)
