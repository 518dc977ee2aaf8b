#!/usr/bin/env bash
# Set up a fresh machine and run the whole check: ruff, mypy --strict, import-linter, pytest.
# Needs only Python >= 3.11 with pip and venv; as root it also installs Debian's chromium
# for the HTML report's browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the HTML report test" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
fi
if command -v chromium >/dev/null 2>&1; then
    export IQ_PROMOTE_REQUIRE_BROWSER=1
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
