"""One run per state directory: an exclusive lock that dies with its process.

The lock is an ``flock`` on the state directory itself, which a second run cannot unlink away
from the holder (deleting ``run.lock`` frees nothing); the kernel releases it when the holding
process ends, however it ends (even ``kill -9``), so a lock left behind never blocks the next
run. ``run.lock`` only says who holds it, and is opened without following symlinks.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.errors import LockedError
from orchestrator.files import open_private

LOCK_NAME = "run.lock"


class StateLock:
    """Hold the state directory for the life of a run; ``with StateLock(dir):``."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir
        self.path = state_dir / LOCK_NAME
        self._dir_fd: int | None = None

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise LockedError(
                f"another iq-promote run ({self._holder()}) is using the state directory "
                f"{self.directory}; wait for it to finish, or use another --state-dir"
            ) from None
        self._dir_fd = dir_fd
        self._say_who()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._dir_fd is not None:
            try:
                fd = open_private(self.path, os.O_WRONLY | os.O_TRUNC)
                os.close(fd)
            except OSError:
                pass  # the note is gone or cannot be emptied: the lock itself still ends here
            fcntl.flock(self._dir_fd, fcntl.LOCK_UN)
            os.close(self._dir_fd)
            self._dir_fd = None

    def _say_who(self) -> None:
        fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as note:
            note.write(f"pid {os.getpid()} on {socket.gethostname()}\n")

    def _holder(self) -> str:
        try:
            fd = open_private(self.path, os.O_RDONLY)
        except OSError:
            return "another process"
        with os.fdopen(fd, encoding="utf-8", errors="replace") as note:
            return note.read(200).strip() or "another process"
