#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# `pytest`, not `python -m pytest`: the latter would import the source folder intinfer/
# (which lacks the compiled core) instead of the installed package. Exit 5 (no tests
# collected) fails like any other non-zero status.
exec pytest -q -ra "$@"
