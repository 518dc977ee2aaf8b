"""pydantic's validation errors as manifest problems: each at its line, in plain words.

pydantic reports where a value sits (its ``loc``); the source document knows the line that
wrote it. Unknown keys get a "did you mean" from the fields of the model that rejected them.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.errors import ManifestProblem
from orchestrator.manifest.source import DataPath, SourceDocument, field_name


def shown(value: object) -> str:
    """A value as an error message shows it: short, and never a whole structure."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a mapping"
    return f"a {type(value).__name__}"


def problems_from(
    exc: ValidationError, document: SourceDocument, root: type[BaseModel]
) -> list[ManifestProblem]:
    """One problem for each of pydantic's errors, at its line, unless already reported.

    A misspelt key is reported once, as unknown with a suggestion, and not again as the
    missing key it was meant to be."""
    errors = [
        (error, (*error["loc"], *error.get("ctx", {}).get("at", ())))
        for error in exc.errors(include_url=False)
    ]
    messages: dict[DataPath, str] = {}
    meant: set[DataPath] = set()
    for error, path in errors:
        if error["type"] == "extra_forbidden":
            suggestion = _suggestion(path, document.data, root)
            messages[path] = _unknown_field(path, suggestion, root)
            if suggestion is not None:
                meant.add((*path[:-1], suggestion))
    problems = []
    for error, path in errors:
        if document.already_reported(path) or _spurious(error):
            continue
        if error["type"] == "missing" and path in meant:
            continue
        message = messages.get(path) or _message(error, path, document)
        line = document.line_of(path)
        problems.append(ManifestProblem(document.source, line, field_name(path), message))
    return problems


def _spurious(error: ErrorDetails) -> bool:
    """pydantic also calls a tuple too short when only its items failed; that is noise."""
    value, minimum = error.get("input"), error.get("ctx", {}).get("min_length", 0)
    return error["type"] == "too_short" and isinstance(value, list) and len(value) >= minimum


_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys and values",
    "model_attributes_type": "must be a mapping of keys and values",
    "dict_type": "must be a mapping of keys and values",
}


def _message(error: ErrorDetails, path: DataPath, document: SourceDocument) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "quote_it":
        written = document.text_of(path) or shown(value)
        what = shown(value) if written != shown(value) else "a number, not as text"
        return f"YAML reads {written} as {what}: write it in quotes, '{written}'"
    if kind == "missing":
        return "required, but missing" + (
            ": start with 'version: 1'" if path == ("version",) else ""
        )
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, not {shown(value)}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()))
        bound = f"{bound:g}" if isinstance(bound, float) else bound
        relation = {
            "greater_than": "more than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        return f"must be {relation} {bound}, not {shown(value)}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, not {shown(value)}"
    message = error["msg"]
    return message.removeprefix("Value error, ") if kind == "value_error" else message


def _suggestion(path: DataPath, data: object, root: type[BaseModel]) -> str | None:
    """The known key most like the unknown one at ``path``, among those not given."""
    present = _value_at(path[:-1], data)
    candidates = [
        key
        for key in _keys_of(_model_at(path[:-1], root))
        if not isinstance(present, dict) or key not in present
    ]
    match = difflib.get_close_matches(str(path[-1]), candidates, n=1)
    return match[0] if match else None


def _unknown_field(path: DataPath, suggestion: str | None, root: type[BaseModel]) -> str:
    key = path[-1]
    if suggestion is not None:
        return f"unknown field '{key}' (did you mean '{suggestion}'?)"
    known = ", ".join(_keys_of(_model_at(path[:-1], root)))
    return f"unknown field '{key}'; the fields here are {known}"


def _model_at(path: DataPath, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model that validates the mapping at ``path``, following the fields' types."""
    model: type[BaseModel] | None = root
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        model = _model_in(field.annotation) if field is not None else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _value_at(path: DataPath, data: Any) -> object:
    try:
        for part in path:
            data = data[part]
    except (KeyError, IndexError, TypeError):
        return None
    return data
