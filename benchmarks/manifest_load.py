"""How long a large manifest takes to load and validate, the first thing every run does."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.manifest.model import load_manifest


def manifest_load_seconds(directory: Path, applications: int, repeats: int = 3) -> float:
    """The best of ``repeats`` loads of a manifest naming ``applications`` public ids,
    in entries of 500 applications, each with a two-step chain."""
    entries = []
    for start in range(0, applications, 500):
        ids = "\n".join(
            f"      - app-{i:05d}" for i in range(start, min(start + 500, applications))
        )
        entries.append(
            f"  - applications:\n{ids}\n    transitions:\n"
            "      - {from: build, to: stage-release}\n"
            "      - {from: stage-release, to: release}\n"
        )
    path = directory / f"manifest-{applications}.yaml"
    path.write_text("version: 1\nconcurrency: 50\npromotions:\n" + "".join(entries))
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        load_manifest(path)
        best = min(best, time.perf_counter() - began)
    return best
