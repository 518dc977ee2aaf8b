"""Streaming Repository Results rows out as NDJSON, a JSON array or CSV.

Each row is written as soon as it arrives, so an export of a million rows needs the memory of
one page. A file is written beside its destination and renamed over it only once the last row
is in, so a failed or interrupted export never leaves half a file where the whole was expected.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

from orchestrator.files import atomic_stream
from orchestrator.iq.firewall_models import RepositoryResult
from orchestrator.secrets import SCRUBBER


class OutputFormat(StrEnum):
    """The export formats; the docs list what each holds."""

    NDJSON = "ndjson"
    JSON = "json"
    CSV = "csv"


CSV_COLUMNS = (
    "threatLevel",
    "policyName",
    "repositoryManagerId",
    "repositoryId",
    "componentDisplayText",
    "format",
    "coordinates",
    "pathname",
    "hash",
    "matchStateId",
    "quarantineTime",
    "quarantineDate",
    "waived",
)
"""Fixed columns, so the header can be written before the first row: coordinates differ by
format (maven has groupId, npm has packageId...), so they stay one JSON object column."""


class RowWriter(Protocol):
    """Writes rows one by one; ``finish`` closes the document (the JSON array's bracket)."""

    def write(self, row: RepositoryResult) -> None: ...

    def finish(self) -> None: ...


def row_document(row: RepositoryResult) -> dict[str, Any]:
    """A row as JSON, every field present (null when absent), extra server fields kept."""
    return row.model_dump(mode="json", by_alias=True)


class NdjsonWriter:
    """One JSON object per line: ``jq``, ``grep`` and line-by-line readers take it as is."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, row: RepositoryResult) -> None:
        self._stream.write(json.dumps(row_document(row), separators=(",", ":")) + "\n")

    def finish(self) -> None:
        self._stream.flush()


class JsonArrayWriter:
    """One JSON array, opened at the first write and closed by ``finish``: ``[]`` when empty."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._rows = 0

    def write(self, row: RepositoryResult) -> None:
        self._stream.write("[\n  " if self._rows == 0 else ",\n  ")
        self._stream.write(json.dumps(row_document(row), separators=(",", ":")))
        self._rows += 1

    def finish(self) -> None:
        self._stream.write("[]\n" if self._rows == 0 else "\n]\n")
        self._stream.flush()


class CsvWriter:
    """RFC 4180 CSV with a header row; see :data:`CSV_COLUMNS` for what each column holds."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._csv = csv.writer(stream, lineterminator="\r\n")
        self._csv.writerow(CSV_COLUMNS)

    def write(self, row: RepositoryResult) -> None:
        self._csv.writerow(csv_record(row))

    def finish(self) -> None:
        self._stream.flush()


def csv_record(row: RepositoryResult) -> list[str]:
    """A row's cells in :data:`CSV_COLUMNS` order; absent values are empty cells."""
    identifier = row.component_identifier
    when = row.quarantine_time
    return [
        str(row.threat_level),
        row.policy_name or "",
        row.repository_manager_id or "",
        row.repository_id or "",
        row.component_display_text,
        identifier.format,
        json.dumps(identifier.coordinates, sort_keys=True, separators=(",", ":")),
        row.pathname,
        row.hash,
        row.match_state_id,
        "" if when is None else str(when),
        "" if when is None else epoch_millis_to_iso(when),
        "true" if row.waived else "false",
    ]


def epoch_millis_to_iso(millis: int) -> str:
    """IQ's quarantineTime (milliseconds since the epoch) as ISO 8601 UTC."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_WRITERS: dict[OutputFormat, type[NdjsonWriter | JsonArrayWriter | CsvWriter]] = {
    OutputFormat.NDJSON: NdjsonWriter,
    OutputFormat.JSON: JsonArrayWriter,
    OutputFormat.CSV: CsvWriter,
}


class _Scrubbed(io.TextIOBase):
    """Writes through to ``stream`` with every secret replaced: rows come from the server,
    and a server (or proxy) that echoes a request must not put the password in an export."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(SCRUBBER.scrub(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def make_writer(fmt: OutputFormat, stream: TextIO) -> RowWriter:
    return _WRITERS[fmt](cast(TextIO, _Scrubbed(stream)))


@contextmanager
def open_rows(fmt: OutputFormat, path: Path | None) -> Iterator[RowWriter]:
    """A writer to ``path`` (atomically) or to stdout; the document is finished on success."""
    if path is None:
        writer = make_writer(fmt, sys.stdout)
        yield writer
        writer.finish()
        return
    with atomic_stream(path, newline="" if fmt is OutputFormat.CSV else "\n") as stream:
        writer = make_writer(fmt, stream)
        yield writer
        writer.finish()
