"""Writing files so that a crash never leaves half of one behind, and so that files and
folders another user prepared cannot be turned against the user running iq-promote.

- Outputs (reports and renderings) are written to a temporary file beside them and renamed
  over them, with the mode the umask gives, as any other tool's files.
- State (journal, lock, kept report) is private: its folder is 0700 and must be the user's
  own and writable by nobody else; its files are 0600 and never opened through a symlink.
- Whether an output can be written is checked before a run sends anything
  (:func:`check_writable`), so a wrong path costs no promotion.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from orchestrator.errors import UsageError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


@contextmanager
def atomic_stream(path: Path, *, newline: str = "\n", private: bool = False) -> Iterator[TextIO]:
    """A text stream to a temporary file beside ``path``, flushed to disk and renamed over it
    when the block ends without an error, removed otherwise.

    A reader sees the old file or the new one, never a torn mix, whatever happens mid-write;
    a stream lets an export of a million rows reach the disk without sitting in memory. The
    rename replaces a symlink at ``path`` rather than following it. The file gets the mode the
    umask gives (0600 when ``private``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(PRIVATE_FILE if private else 0o666 & ~umask())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, private: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_stream`)."""
    with atomic_stream(path, private=private) as handle:
        handle.write(text)


def check_outputs(
    outputs: Mapping[str, Path],
    inputs: Mapping[str, Path],
    protected: Mapping[str, Path] | None = None,
) -> None:
    """Refuse, before any work, outputs (by option, e.g. ``--html``) that would overwrite an
    input (by name: the manifest, ``--baseline``), that two options both write, that fall
    inside a protected folder (the state directory), or that cannot be written."""
    taken = {path.resolve(): name for name, path in inputs.items()}
    folders = {name: path.resolve() for name, path in (protected or {}).items()}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        where = path.resolve()
        if where in taken:
            raise UsageError(f"{option} {path} would overwrite {taken[where]}; choose another path")
        if where in seen:
            raise UsageError(f"{option} and {seen[where]} both write {path}; choose two paths")
        for name, folder in folders.items():
            if where.is_relative_to(folder):
                raise UsageError(
                    f"{option} {path} is inside {name} {folder}, which iq-promote keeps for "
                    "itself; choose a path outside it"
                )
        seen[where] = option
        check_writable(path, option)


def check_writable(path: Path, option: str) -> None:
    """Refuse, before any work, an output ``path`` (named by its ``option``) that cannot be
    written: its folder missing and not creatable, not writable, or the path a folder."""
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file path")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(
            f"{option} {path} cannot be written ({reason} in {folder}); choose a folder you "
            "can write to"
        ) from None
    os.close(probe_fd)
    Path(probe).unlink(missing_ok=True)


def ensure_private_dir(path: Path, what: str) -> None:
    """Make ``path`` a private folder (0700) if missing; refuse one that is a symlink, not
    the user's own, or writable by anyone else, since files planted in it could be turned
    against the user (a symlink in place of a state file, a journal of someone else's). One
    of the user's own that others may read (an earlier version's, made under the umask) is
    made private: the journal in it names every promotion's status URL."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        found = path.lstat()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"{what} {path} cannot be used ({reason}); choose another") from None
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        raise UsageError(f"{what} {path} is not a folder of its own (a symlink?); choose another")
    if found.st_uid != os.getuid():
        raise UsageError(f"{what} {path} belongs to another user; use a folder of your own")
    if found.st_mode & 0o022:
        raise UsageError(
            f"{what} {path} can be written by others (mode {stat.S_IMODE(found.st_mode):o}): "
            f"make it private (chmod 700 {path}) or choose another"
        )
    if stat.S_IMODE(found.st_mode) != PRIVATE_DIR:
        try:
            path.chmod(PRIVATE_DIR)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(
                f"{what} {path} cannot be made private ({reason}): chmod 700 {path}"
            ) from None
    try:
        probe_fd, probe = tempfile.mkstemp(prefix=".probe.", dir=path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"{what} {path} cannot be written ({reason}); choose another") from None
    os.close(probe_fd)
    Path(probe).unlink(missing_ok=True)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` for a state file: created 0600, never through a symlink; one that exists
    with a wider mode (an earlier version's, made under the umask) is made 0600."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(
                f"{path} is a symlink; state files are never opened through one: remove it"
            ) from None
        raise
    try:
        found = os.fstat(fd)
        if found.st_uid == os.getuid() and stat.S_IMODE(found.st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private_file(path: Path) -> None:
    """Refuse a state file that exists as a symlink or as another user's file; make one of
    the user's own with a wider mode 0600 (the folder is private: nobody swaps it between)."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISREG(found.st_mode):
        raise UsageError(f"{path} is not a plain file (a symlink?): remove it")
    if found.st_uid != os.getuid():
        raise UsageError(f"{path} belongs to another user: remove it or use another --state-dir")
    if stat.S_IMODE(found.st_mode) != PRIVATE_FILE:
        path.chmod(PRIVATE_FILE)
