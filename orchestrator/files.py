"""Writing output files so that a crash never leaves half of one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_stream(path: Path, *, newline: str = "\n") -> Iterator[TextIO]:
    """A text stream to a temporary file beside ``path``, flushed to disk and renamed over it
    when the block ends without an error, removed otherwise.

    A reader sees the old file or the new one, never a torn mix, whatever happens mid-write;
    and a stream lets an export of a million rows reach the disk without sitting in memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_stream`)."""
    with atomic_stream(path) as handle:
        handle.write(text)
