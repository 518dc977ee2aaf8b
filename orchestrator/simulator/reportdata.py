"""Report data for an application report: its components, their violations and threat levels.

Each application has a stable bill of materials (seeded by application); each report varies it a
little, as a re-evaluation against newer vulnerability data would. The same report always
answers the same data.
"""

from __future__ import annotations

import hashlib
import random

from orchestrator.iq.models import (
    Application,
    PolicyViolation,
    ReportComponent,
    ReportData,
)
from orchestrator.simulator.catalogue import FORMATS, POLICIES, Component, Policy, components
from orchestrator.simulator.portfolio import Report

SECURITY = [p for p in POLICIES if p.category == "SECURITY"]


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


def _violation(report: Report, component: Component, policy: Policy) -> PolicyViolation:
    key = f"{report.report_id}:{component.hash}:{policy.id}"
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
    return PolicyViolation(
        policy_id=policy.id,
        policy_name=policy.name,
        policy_threat_level=policy.threat_level,
        policy_threat_category=policy.category,
        policy_violation_id=digest[:32],
        waived=int(digest[-2:], 16) < 13,  # about one in twenty
        grandfathered=False,
    )


def report_data(seed: int, application: Application, report: Report) -> ReportData:
    """The data behind ``reportDataUrl``, deterministic per report."""
    rng = random.Random(f"report:{seed}:{report.report_id}")
    found: list[ReportComponent] = []
    for component, policies in _bill_of_materials(seed, application):
        current = list(policies)
        if current and rng.random() < 0.05:
            current.pop()  # a finding withdrawn since the last evaluation
        if rng.random() < 0.1:
            newest = rng.choice(SECURITY)
            if newest not in current:
                current.append(newest)  # a vulnerability published since
        match_state = "unknown" if rng.random() < 0.03 else "exact"
        found.append(
            ReportComponent(
                hash=component.hash,
                display_name=component.display_text,
                package_url=component.package_url,
                component_identifier=component.identifier,
                match_state=match_state,
                proprietary=False,
                pathnames=[f"lib/{component.pathname.rsplit('/', 1)[-1]}"],
                violations=[_violation(report, component, p) for p in current],
            )
        )
    return ReportData(
        application={
            "id": application.id,
            "publicId": application.public_id,
            "name": application.name,
            "organizationId": application.organization_id,
        },
        report_time=int(report.evaluation_date.timestamp() * 1000),
        report_title=f"Report-{report.stage}",
        initiator="admin",
        components=found,
    )
