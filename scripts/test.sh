#!/usr/bin/env bash
# Lint and test: ruff, the import-layer contracts, then the whole pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/system-deps.sh
.venv/bin/ruff check amms_cli tests benchmarks examples
.venv/bin/ruff format --check amms_cli tests benchmarks examples
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
