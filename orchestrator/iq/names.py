"""Names a person types for IQ's enumerations: any case, with or without the prefix
(``open`` for ``VIOLATION_STATE_OPEN``), and a near miss answered with the closest valid name.

The manifest's ``repositoryResults:`` section and the ``repository-results`` command read the
same names through these functions, so they accept and refuse exactly the same things.
"""

from __future__ import annotations

import difflib
from enum import StrEnum
from typing import TypeVar

from orchestrator.errors import UsageError
from orchestrator.iq.firewall_models import MatchState, ViolationState

EnumT = TypeVar("EnumT", bound=StrEnum)

MIN_THREAT_LEVEL = 0
MAX_THREAT_LEVEL = 10

_PREFIXES: dict[type[StrEnum], str] = {
    MatchState: "MATCH_STATE_",
    ViolationState: "VIOLATION_STATE_",
}


def parse_match_state(text: str) -> MatchState:
    """``MATCH_STATE_EXACT`` or just ``exact`` (any case)."""
    return resolve_name(MatchState, text, what="match state")


def parse_violation_state(text: str) -> ViolationState:
    """``VIOLATION_STATE_OPEN`` or just ``open`` (any case; ``not-violating`` too)."""
    return resolve_name(ViolationState, text, what="violation state")


def parse_threat_levels(text: str) -> tuple[int, int]:
    """``LO-HI`` (``7-10``), or one level ``N`` meaning ``N-N``; both within 0..10."""
    lo_text, sep, hi_text = text.strip().partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        raise UsageError(
            f"threat levels {text!r} are not LO-HI, e.g. 7-10 (whole numbers 0 to 10)"
        ) from None
    return check_threat_levels(lo, hi)


def check_threat_levels(lo: int, hi: int) -> tuple[int, int]:
    if not MIN_THREAT_LEVEL <= lo <= hi <= MAX_THREAT_LEVEL:
        raise UsageError(
            f"threat levels {lo}-{hi} must satisfy "
            f"{MIN_THREAT_LEVEL} <= LO <= HI <= {MAX_THREAT_LEVEL}"
        )
    return lo, hi


def resolve_name(enum: type[EnumT], text: str, *, what: str) -> EnumT:
    """The member ``text`` names, case-insensitively and with or without the enum's prefix
    (``open`` for ``VIOLATION_STATE_OPEN``); a near miss gets the closest name suggested."""
    names = _accepted_names(enum)
    key = _normalise(text)
    if key in names:
        return names[key]
    valid = ", ".join(member.value for member in enum)
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    hint = f"; did you mean {names[close[0]].value}?" if close else ""
    raise UsageError(f"unknown {what} {text!r}{hint} (valid: {valid})")


def _accepted_names(enum: type[EnumT]) -> dict[str, EnumT]:
    prefix = _PREFIXES.get(enum)
    names: dict[str, EnumT] = {}
    for member in enum:
        names[_normalise(member.value)] = member
        if prefix and member.value.startswith(prefix):
            names[_normalise(member.value.removeprefix(prefix))] = member
    return names


def _normalise(text: str) -> str:
    return text.strip().upper().replace("-", "_").replace(" ", "_")
