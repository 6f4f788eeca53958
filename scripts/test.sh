#!/usr/bin/env bash
# Lint and test: ruff, the import-layer contracts, mypy, then the whole pytest suite on two workers. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/system-deps.sh
.venv/bin/ruff check amms_cli tests benchmarks examples
.venv/bin/ruff format --check amms_cli tests benchmarks examples
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python -m pytest -n 2 "$@"  # two workers (pytest-xdist): tests/conftest.py schedules them
