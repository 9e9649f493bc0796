#!/usr/bin/env bash
# Fresh machine -> tests. With no arguments (what CI runs):
#   1. ruff (lint rules in pyproject.toml);
#   2. the suite in .venv-core, epochscope with no optional extra (what `pip install epochscope`
#      gives): tests that need an extra must skip with a reason, the rest must pass;
#   3. the whole suite in .venv with every extra.
# With arguments, only step 3, passing them to pytest (e.g. `bash scripts/test.sh tests/maps -x`).
# Steps 2 and 3 run on EPOCHSCOPE_TEST_WORKERS processes (pytest-xdist, default 2, one test file per
# worker at a time): measured on 2 cores, the whole suite 546 s instead of 820 s in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh all,test
bash scripts/install-browser.sh  # Debian chromium for the HTML report tests (skipped with a reason if impossible)
export OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg KERAS_BACKEND=torch
workers="${EPOCHSCOPE_TEST_WORKERS:-2}"
if [ "$#" -eq 0 ]; then
  .venv/bin/ruff check src tests benchmarks examples
  bash scripts/setup-env.sh test .venv-core
  echo "== core only (no optional extra installed) =="
  .venv-core/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile --durations=15 -m "not slow and not browser"
  echo "== every extra =="
  exec .venv/bin/python -m pytest -p no:cacheprovider -n "$workers" --dist loadfile --durations=25
fi
exec .venv/bin/python -m pytest "$@"
