"""Where and how the benchmarks write what they measured, and what they say of the machine."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import shlex
import socket
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine(reference_before: float) -> str:
    """What the figures were measured on, and how fast it was: the CPU seconds of
    :func:`reference_work` before the runs (``reference_before``) and now."""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; reference work {reference_before:.2f} s of CPU "
        f"before the runs, {reference_work():.2f} s after"
    )


def reference_work(rounds: int = 150_000) -> float:
    """CPU seconds of a fixed piece of work of the kinds a run does (JSON in and out, an
    HMAC, a SQLite write, a loopback round trip), in this process: the same code measured
    a third slower at some hours than at others on the same machine, and this says how fast
    the machine was beside the figures."""
    document = {"status": "COMPLETED", "reportHtmlUrl": "ui/links/application/app/report/x"}
    began = time.process_time()
    left, right = socket.socketpair()
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        for n in range(rounds):
            body = json.dumps(document | {"n": n}).encode()
            hmac.new(b"reference", body, hashlib.sha1).hexdigest()
            left.sendall(body)
            json.loads(right.recv(4096))
            if not n % 10:
                db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 1000, body))
    finally:
        left.close()
        right.close()
        db.close()
    return time.process_time() - began


def command() -> str:
    """The command that produced the figures, as typed."""
    return shlex.join(["python", "-m", "benchmarks", *sys.argv[1:]])


def write_results(output_dir: Path, name: str, document: dict[str, object], table: str) -> None:
    """``name.json`` (every run) and ``name.md`` (the table the README quotes)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    (output_dir / f"{name}.md").write_text(table)
    click.echo(table)
