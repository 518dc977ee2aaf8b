"""The values a manifest holds, each checked with a message a person can act on: stages,
public ids, scan ids, seconds, durations, concurrency, the server URL and the password
reference. The models (:mod:`orchestrator.manifest.model`,
:mod:`orchestrator.manifest.promotions`) are built from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    HttpUrl,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from orchestrator.iq.models import Stage
from orchestrator.manifest.problems import shown

__all__ = [
    "Concurrency",
    "Duration",
    "DurationText",
    "MaybeText",
    "OnlyTrue",
    "PasswordReference",
    "PublicId",
    "ScanId",
    "Seconds",
    "ServerUrl",
    "StageName",
    "Text",
    "Version",
    "fail",
]


def fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    """A validation error; ``at`` in ``context`` names the place below the current model."""
    return PydanticCustomError(kind, message, context or None)


def _no_bool(value: object) -> object:
    """YAML reads ``yes``/``true`` as booleans, which pydantic would take for 1."""
    if isinstance(value, bool):
        raise fail("number_type", "must be a number, not {got}", got=shown(value))
    return value


def _written_as_text(value: object) -> object:
    """An id or a name must be text as written: YAML reads ``012`` as 10 and ``3.10`` as
    3.1, and ``on`` as true, and taking those for text would name something else."""
    if isinstance(value, bool | int | float):
        raise fail(
            "quote_it",
            "YAML reads this as {got}, not as text: write it in quotes",
            got=shown(value),
        )
    return value


def _blank_is_none(value: object) -> object:
    """``${VAR:-}`` gives an empty string: that means "not set here"."""
    return None if isinstance(value, str) and not value.strip() else value


def _version(value: object) -> object:
    if (value == 1 and not isinstance(value, bool | float)) or value == "1":
        return 1
    raise fail(
        "version", "unsupported version {got}: this iq-promote reads version 1", got=shown(value)
    )


_STAGES = tuple(stage.value for stage in Stage)


def _only_true(value: object) -> object:
    if value is not True:
        raise fail("all", "can only be true: 'all: true' selects every application")
    return value


def _stage(value: object) -> object:
    if isinstance(value, Stage) or value in _STAGES:
        return value
    stages = ", ".join(_STAGES)
    if isinstance(value, str):
        raise fail("stage", "'{value}' is not one of {stages}", value=value, stages=stages)
    raise fail("stage", "must be one of {stages}, not {got}", stages=stages, got=shown(value))


_SCAN_ID = re.compile(r"[0-9a-fA-F]{32}")


def _scan_id(value: str) -> str:
    if not _SCAN_ID.fullmatch(value):
        raise fail(
            "scan_id",
            "'{value}' is not a scan id (32 hexadecimal characters, as in a report's URL)",
            value=value,
        )
    return value


def _public_id(value: str) -> str:
    if any(c.isspace() for c in value):
        raise fail(
            "public_id",
            "'{value}' is not a public id (no spaces; separate ids with commas)",
            value=value,
        )
    return value


def _concurrency(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # from ${VAR}
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000:
        return value
    raise fail(
        "concurrency",
        "must be a whole number from 1 to 1000, or 'auto', not {got}",
        got=shown(value),
    )


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _server_url(value: str) -> str:
    value = value.strip()
    try:
        url = _HTTP_URL.validate_python(value)
    except ValidationError:
        # The text is not echoed: a mistyped URL may hold a password.
        raise fail(
            "url", "must be an http:// or https:// URL, such as https://iq.example.com"
        ) from None
    if url.username or url.password:
        raise fail(
            "url",
            "credentials do not belong in the URL: set IQ_USERNAME and IQ_PASSWORD instead",
        )
    return value


_PASSWORD_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _password_reference(value: str) -> str:
    if not _PASSWORD_REFERENCE.fullmatch(value.strip()):
        # Never echo the value: it may be the password itself.
        raise fail(
            "plain_password",
            "a password must not be written in the manifest: write ${IQ_PASSWORD} "
            "(or another ${VARIABLE}) and set it in the environment",
        )
    return value.strip()


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time as a manifest writes it (``30m``, ``12h``, ``7d``); kept as written, so
    that a message says "within 24h" where the manifest said 24h."""

    text: str
    delta: timedelta

    def __str__(self) -> str:
        return self.text


_DURATION = re.compile(r"\s*([0-9]+)\s*([mhd])\s*")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def _duration(value: object) -> object:
    if isinstance(value, Duration):
        return value
    found = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise fail(
            "duration",
            "{got} is not a duration: write a whole number and m (minutes), h (hours) or "
            "d (days), such as 30m, 12h or 7d",
            got=shown(value),
        )
    amount, unit = found.groups()
    return Duration(f"{int(amount)}{unit}", int(amount) * _UNITS[unit])


Seconds = Annotated[float, Field(gt=0), BeforeValidator(_no_bool)]
StageName = Annotated[Stage, BeforeValidator(_stage)]
PublicId = Annotated[
    str, Field(min_length=1), BeforeValidator(_written_as_text), AfterValidator(_public_id)
]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), BeforeValidator(_written_as_text)
]
ScanId = Annotated[
    str,
    BeforeValidator(_written_as_text),
    AfterValidator(_scan_id),
    Field(json_schema_extra={"pattern": "^[0-9a-fA-F]{32}$"}),
]
Concurrency = Annotated[
    Annotated[int, Field(ge=1, le=1000)] | Literal["auto"], BeforeValidator(_concurrency)
]
DurationText = Annotated[
    Duration,
    BeforeValidator(_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]+[mhd]$", "examples": ["12h", "7d"]}),
]
Version = Annotated[Literal[1], BeforeValidator(_version)]
OnlyTrue = Annotated[Literal[True], BeforeValidator(_only_true)]
MaybeText = Annotated[str | None, BeforeValidator(_blank_is_none)]
"""Text that may be left unset, also by an empty ``${VAR:-}``."""
ServerUrl = Annotated[
    Annotated[str, AfterValidator(_server_url)] | None, BeforeValidator(_blank_is_none)
]
PasswordReference = Annotated[str, AfterValidator(_password_reference)]
