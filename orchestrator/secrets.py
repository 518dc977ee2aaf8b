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
from pydantic_core import PydanticSerializationError

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
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')
"""What JSON writes other than as itself: a form free of these appears in a model's JSON
exactly as it appears in the model."""
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
        self._literal: re.Pattern[str] | None = None
        """Any form as plain text, for a model's JSON: where none is found, no string in
        the model holds a secret, and the model is not walked (see :meth:`_clean`). None
        when some form holds what JSON escapes; every model is then walked."""
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
        verbatim = not any(_JSON_ESCAPED.search(f) for f in longest_first)
        self._literal = re.compile("|".join(map(re.escape, longest_first))) if verbatim else None

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret replaced, through strings, lists, tuples and dicts."""
        if isinstance(value, str):
            if self._pattern is None:
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
        scrubbed: ModelT = self._scrub_values(model, whole=True)
        return scrubbed

    def dump_json(self, model: BaseModel) -> str:
        """``model``'s JSON, with no secret in it: written once, and once more, scrubbed,
        only when it holds a form of one."""
        text = model.model_dump_json()
        if self._pattern is None or self._plain(text):
            return text
        return self.scrub_model(model).model_dump_json()

    def _clean(self, model: BaseModel) -> bool:
        """Whether ``model`` surely holds no secret, by its JSON, which pydantic writes in C,
        at a fraction of the cost of walking its fields here."""
        try:
            return self._plain(model.model_dump_json())
        except PydanticSerializationError:
            return False

    def _plain(self, text: str) -> bool:
        """Whether the JSON ``text`` surely holds no secret. The JSON holds every field and
        key of its model; a string holding a secret's form holds it verbatim there (when the
        form has nothing JSON escapes), so the forms are looked for as plain text, without
        the lookarounds that decide whether a form is a whole value."""
        return self._literal is not None and self._literal.search(text) is None

    def _scrub_values(self, value: Any, *, whole: bool = False) -> Any:
        """Like :meth:`scrub`, but through models too, keeping every value's place (a model's
        fields are not log fields), and returning ``value`` itself when nothing in it changed.
        Keys are scrubbed too, since a mapping's keys may come from the server (the firewall
        summary counts rows by policy name, and keeps rows' coordinates). The ``whole`` model
        asked for is walked field by field, and each model in it is looked at by its own JSON
        first: a report's JSON of 100,000 results at once would double its memory."""
        if isinstance(value, str):
            if self._pattern is None or self._pattern.search(value) is None:
                return value
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, BaseModel):
            if not whole and self._clean(value):
                return value
            update = {}
            for name in type(value).model_fields:
                item = getattr(value, name)
                if (scrubbed := self._scrub_values(item)) is not item:
                    update[name] = scrubbed
            return value.model_copy(update=update) if update else value
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
