#!/usr/bin/env bash
# Fresh machine -> tests: install epochscope with every extra into .venv, then run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh all,test
bash scripts/install-browser.sh  # Debian chromium for the HTML report tests (skipped with a reason if impossible)
export OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg KERAS_BACKEND=torch
exec .venv/bin/python -m pytest "$@"
