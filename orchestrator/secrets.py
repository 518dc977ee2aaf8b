"""Keeping secrets out of everything iq-promote writes: logs, reports, renderings, the
journal, exports and messages.

A secret is registered once (the password, with its user; a webhook secret; a proxy's
password) before the first request. Every form it can take in what is written is scrubbed:
the text itself, the base64 of ``user:password`` that a Basic ``Authorization`` header
carries, and the secret as JSON, a URL and HTML escape it. Each is replaced only as a whole
value, never inside a longer word, so a password ``payments`` neither garbles
``payments-api`` nor tells a reader, by the hole it leaves, what the password is; but a
``.`` or ``-`` glues only when another word character follows it (or, before the secret,
precedes it), so a secret that ends a sentence (``bad password s3cretpass.``) is replaced.
The base64 form is one token of the base64 alphabet, whatever punctuation surrounds it. A
secret shorter than :data:`MIN_SECRET` is refused where it is read (it cannot be told apart
from ordinary words).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

REDACTED = "***"
MIN_SECRET = 8
"""Characters a secret needs to be scrubbed reliably from free text."""

SENSITIVE_KEYS = frozenset({"password", "authorization", "auth", "token", "secret"})
"""Keys of log fields whose values are dropped whatever they hold."""

_WORD = re.compile(r"\w")
_TEXT_BEFORE = r"(?<!\w)(?<!\w[.\-])"
_TEXT_AFTER = r"(?!\w)(?![.\-]\w)"
"""A secret that begins (ends) with a word character must not be glued to another word, nor
to one through a ``.`` or ``-`` (``payments-api``, ``v2.payments``); a ``.`` or ``-`` with no
word beyond it is punctuation (``payments.``), and the secret is replaced."""
_BASE64_BEFORE = r"(?<![A-Za-z0-9+/])"
_BASE64_AFTER = r"(?![A-Za-z0-9+/=])"
"""The base64 of a Basic pair is a whole token when no base64 character touches it."""

ModelT = TypeVar("ModelT", bound=BaseModel)


def forms(secret: str) -> set[str]:
    """The forms ``secret`` can take in text iq-promote writes."""
    found = {
        secret,
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        html.escape(secret),
    }
    return {f for f in found if f}


def basic_forms(username: str, password: str) -> set[str]:
    """The forms a user's credentials take in a Basic ``Authorization`` header: its base64,
    as the header carries it and as a URL escapes it."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {encoded, quote(encoded, safe="")}


def _text_pattern(form: str) -> str:
    """``form`` as a whole value: guarded only at an edge that is a word character, since a
    secret that ends in ``!`` is not a prefix of any word."""
    before = _TEXT_BEFORE if _WORD.match(form[0]) else ""
    after = _TEXT_AFTER if _WORD.match(form[-1]) else ""
    return f"{before}{re.escape(form)}{after}"


def _base64_pattern(form: str) -> str:
    return f"{_BASE64_BEFORE}{re.escape(form)}{_BASE64_AFTER}"


class SecretScrubber:
    """Replaces every registered secret, in every form, with ``***``; also a structlog
    processor (:meth:`__call__`) that also drops the values of sensitive keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: dict[str, str] = {}
        """Each form registered, and its pattern as a whole value."""
        self._pattern: re.Pattern[str] | None = None
        self._literals: tuple[str, ...] = ()
        """The forms, longest first: a text holding none of them needs no pattern run."""
        self._in_json: tuple[str, ...] | None = None
        """Any form as a JSON string holds it, as plain text: where none is found in a
        model's JSON, no string in the model holds a secret (see :meth:`_json_clean`)."""
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str, *, username: str | None = None) -> None:
        """Register ``secret`` (and, given its ``username``, the Basic pair they make)."""
        if not secret:
            return
        for form in forms(secret):
            self._forms.setdefault(form, _text_pattern(form))
        if username is not None:
            for form in basic_forms(username, secret):
                self._forms[form] = _base64_pattern(form)
        longest_first = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(self._forms[f] for f in longest_first))
        self._literals = tuple(longest_first)
        in_json = {to_json(f).decode()[1:-1] for f in longest_first}
        self._in_json = tuple(sorted(in_json, key=len, reverse=True))

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret replaced, through strings, lists, tuples and dicts."""
        if isinstance(value, str):
            if self._pattern is None or not self._may_hold(value):
                return value
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, dict):
            return {k: self._scrub_item(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        return value

    def scrub_model(self, model: ModelT) -> ModelT:
        """``model`` with every string in it scrubbed: what is written of a report, a result
        or a journal row never holds a secret a server (or proxy) echoed back. Only what holds
        a secret is copied: a report of 100,000 results is not rebuilt to find none."""
        if self._pattern is None:
            return model
        scrubbed: ModelT = self._scrub_values(model, top_level=True)
        return scrubbed

    def dump_json(self, model: BaseModel) -> str:
        """``model``'s JSON, with no secret in it. It is written once; only when it holds a
        form of a secret is the model scrubbed and written again."""
        text = model.model_dump_json()
        if self._pattern is None or self._json_clean(text):
            return text
        return self.scrub_model(model).model_dump_json()

    def _surely_clean(self, model: BaseModel) -> bool:
        """Whether ``model`` surely holds no secret, by its JSON (every field of what it
        holds, as it is, not as the field's type declares), which pydantic writes in compiled
        code at a fraction of the cost of walking the fields here."""
        try:
            return self._json_clean(model.model_dump_json(serialize_as_any=True))
        except PydanticSerializationError:
            return False

    def _may_hold(self, text: str) -> bool:
        """Whether ``text`` holds a form of a secret anywhere, whole value or not: a substring
        search for each is a fraction of the cost of the pattern, whose lookarounds are tried
        at every character (7 us a status URL, scrubbed twice a promotion)."""
        return any(form in text for form in self._literals)

    def _json_clean(self, text: str) -> bool:
        """Whether the JSON ``text`` surely holds no secret. A JSON string escapes each
        character on its own, so a string holding a form holds the form's JSON; the forms
        are looked for as plain text, without the lookarounds that decide whether a form
        is a whole value, each as a substring (faster than one pattern of them all)."""
        return self._in_json is not None and not any(form in text for form in self._in_json)

    def _scrub_values(self, value: Any, *, top_level: bool = False) -> Any:
        """Like :meth:`scrub`, but through models too, keeping every value's place (a model's
        fields are not log fields), and returning ``value`` itself when nothing in it changed.
        Keys are scrubbed too, since a mapping's keys may come from the server (the firewall
        summary counts rows by policy name, and keeps rows' coordinates), and so are the fields
        a model keeps beyond those it declares (the server's). The ``top_level`` model is
        walked field by field, and each model in it is looked at by its own JSON first: the
        JSON of a report of 100,000 results, at once, would double its memory."""
        if isinstance(value, str):
            if (
                self._pattern is None
                or not self._may_hold(value)
                or not self._pattern.search(value)
            ):
                return value
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, BaseModel):
            if not top_level and self._surely_clean(value):
                return value
            update = {}
            for name in type(value).model_fields:
                item = getattr(value, name)
                if (scrubbed := self._scrub_values(item)) is not item:
                    update[name] = scrubbed
            extra = value.__pydantic_extra__
            kept = self._scrub_values(extra) if extra else extra
            if not update and kept is extra:
                return value
            copy = value.model_copy(update=update)
            if kept is not extra:
                object.__setattr__(copy, "__pydantic_extra__", kept)
            return copy
        if isinstance(value, dict):
            items = {self._scrub_values(k): self._scrub_values(v) for k, v in value.items()}
            unchanged = len(items) == len(value) and all(
                k in items and items[k] is v for k, v in value.items()
            )
            return value if unchanged else items
        if isinstance(value, list | tuple):
            parts = [self._scrub_values(v) for v in value]
            return (
                value
                if all(a is b for a, b in zip(parts, value, strict=True))
                else type(value)(parts)
            )
        return value

    def _scrub_item(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and key.lower() in SENSITIVE_KEYS:
            return REDACTED
        return self.scrub(value)

    def __call__(self, logger: object, method_name: str, event_dict: Any) -> Any:
        return {key: self._scrub_item(key, value) for key, value in event_dict.items()}


SCRUBBER = SecretScrubber()
"""The process-wide scrubber: credentials are registered with it before any request."""
