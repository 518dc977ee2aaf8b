"""Whether a chain applies to an application, decided before anything is sent: an entry that
selects may choose an application without a scan at the source stage (nothing to promote),
and ``skipIfEvaluatedWithin`` passes over one whose target stage was evaluated lately.

One listing answers both for every application: ``GET api/v2/reports/applications``, the
latest report of every application at every stage, with its evaluation date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.iq.report_models import LatestReport
from orchestrator.manifest.promotions import Transition
from orchestrator.manifest.values import Duration
from orchestrator.report.results import NotApplicable

__all__ = ["Applicability", "LatestEvaluations", "Skip", "spoken_age"]


@dataclass(frozen=True, slots=True)
class Skip:
    """Why a chain does not apply to an application."""

    cause: NotApplicable
    reason: str
    """For the result: ``no operate scan``, ``evaluated at operate 3h 12m ago, ...``."""
    summary: str
    """What the plan counts by: the reason without the particular age."""


class LatestEvaluations:
    """When each application was last evaluated at each stage, from the latest-reports
    listing; a stage absent from it has no scan."""

    def __init__(self, reports: Iterable[LatestReport]) -> None:
        self._dates: dict[tuple[str, str], datetime | None] = {}
        for report in reports:
            key = (report.application_id, report.stage)
            known = self._dates.get(key)
            date = report.evaluation_date
            if key not in self._dates or (date is not None and (known is None or date > known)):
                self._dates[key] = date

    def scanned(self, application_id: str, stage: str) -> bool:
        return (application_id, stage) in self._dates

    def evaluated_at(self, application_id: str, stage: str) -> datetime | None:
        """The latest report's date; None when there is none, or the server gave no date."""
        return self._dates.get((application_id, stage))


@dataclass(frozen=True, slots=True)
class Applicability:
    """Decides, for the first transition of a chain, whether it applies; the later ones
    depend on it and are not checked."""

    latest: LatestEvaluations
    now: datetime

    def skip(
        self,
        application_id: str,
        transition: Transition,
        *,
        selected: bool,
        window: Duration | None,
    ) -> Skip | None:
        """Why the chain starting with ``transition`` does not apply, or None when it does.
        Only an application an entry ``selected`` (rather than named) is checked for a scan
        at the source stage: for a named one, the server's refusal is the answer."""
        source = transition.source_stage
        if selected and source is not None and not self.latest.scanned(application_id, source):
            why = f"no {source} scan"
            return Skip(NotApplicable.NO_SOURCE_SCAN, why, why)
        if window is None:
            return None
        target = transition.target_stage
        when = self.latest.evaluated_at(application_id, target)
        if when is None or self.now - when >= window.delta:
            return None
        return Skip(
            NotApplicable.RECENTLY_EVALUATED,
            f"evaluated at {target} {spoken_age(self.now - when)} ago, within "
            f"skipIfEvaluatedWithin {window}",
            f"evaluated at {target} within {window}",
        )


def spoken_age(age: timedelta) -> str:
    """An age as people say it, to the minute: ``45m``, ``3h 12m``, ``2d 4h``."""
    minutes = max(0, int(age.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"
