#!/usr/bin/env bash
# Mutation testing (mutmut) of compliance, the refund path, SLA, billing dates, the gateway answer
# classification, the segment rules and the analytics figures. Not part of the every-commit suite.
#   scripts/mutation.sh              every configured module (see bench/README.md for the time)
#   scripts/mutation.sh BASE_COMMIT  only the modules whose source or tests changed since BASE_COMMIT
# One module at a time; MUTATION_JOBS=2 runs two mutants at once (default 1). Exits 1 when a module
# scores below 90%. PYTHON overrides the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if ! "$PY" -c "import mutmut" 2>/dev/null; then
  echo "mutmut is not installed: $PY -m pip install -r requirements-dev.txt" >&2
  exit 2
fi
if [ $# -gt 0 ]; then
  exec "$PY" scripts/mutation.py --since "$1" "${@:2}"
fi
exec "$PY" scripts/mutation.py
