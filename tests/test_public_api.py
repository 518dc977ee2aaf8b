"""``orchestrator.__all__`` is the public API: importable, documented, and nothing private."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest

import orchestrator

PUBLIC = [name for name in orchestrator.__all__ if name != "__version__"]


def test_all_lists_each_name_once_in_order() -> None:
    assert len(set(orchestrator.__all__)) == len(orchestrator.__all__)
    assert orchestrator.__all__ == sorted(orchestrator.__all__)


def test_every_name_in_all_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from orchestrator import *", namespace)  # noqa: S102 - a fixed statement
    missing = [name for name in orchestrator.__all__ if name not in namespace]
    assert missing == []


@pytest.mark.parametrize(
    "name",
    PUBLIC,
)
def test_every_public_name_is_documented(name: str) -> None:
    obj = getattr(orchestrator, name)
    doc = obj.__doc__
    assert doc is not None
    assert doc.strip()
    # a dataclass without a docstring gets its signature as one; that documents nothing
    assert not doc.startswith(f"{name}("), f"{name} has only its generated signature as a doc"


def test_the_version_is_the_installed_distributions() -> None:
    assert orchestrator.__version__ == importlib.metadata.version("iq-promote")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", orchestrator.__version__)


def test_nothing_private_is_exported() -> None:
    assert [n for n in PUBLIC if n.startswith("_")] == []
    for name in PUBLIC:
        obj = getattr(orchestrator, name)
        module = inspect.getmodule(obj)
        assert module is not None, name
        assert module.__name__.startswith("orchestrator."), f"{name} is not ours"
        private = [part for part in module.__name__.split(".") if part.startswith("_")]
        assert private == [], f"{name} comes from the private module {module.__name__}"


def test_the_readme_python_example_uses_only_public_names() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    imports = re.findall(r"^from orchestrator import (.+)$", readme, flags=re.MULTILINE)
    assert imports, "the README's 'From Python' example imports from orchestrator"
    names = {n.strip() for line in imports for n in line.split(",")}
    assert names <= set(orchestrator.__all__)
