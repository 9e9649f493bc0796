#!/usr/bin/env bash
# Create a virtual environment and install epochscope with the extras given as $1 (e.g. "demo",
# "all,test", or "test" for the core alone) into the folder $2 (default .venv).
# Shared by scripts/demo.sh and scripts/test.sh; safe to run again (it only adds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-demo}"
venv="${2:-.venv}"
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
# Prefer the CPU build of torch where this machine keeps one on local disk (only when an extra
# needs torch); elsewhere the extras below install torch the ordinary way. Users are never
# pinned to this version.
case ",$extras," in
  *,all,*|*,demo,*|*,torch,*|*,lightning,*)
    if ! "$py" -c "import torch" 2>/dev/null; then
      "$py" -m pip install -q "torch==2.13.0" 2>/dev/null || echo "note: no local CPU torch wheel; torch comes with the extras"
    fi ;;
esac
"$py" -m pip install -q -e ".[${extras}]"
