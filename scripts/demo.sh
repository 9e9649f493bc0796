#!/usr/bin/env bash
# Fresh machine -> demo: install epochscope with the demo extras into .venv, then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh demo
export OMP_WAIT_POLICY=PASSIVE  # torch's busy-waiting OpenMP threads crawl on shared small machines
exec .venv/bin/epochscope demo --out demo-out "$@"
