#!/usr/bin/env bash
# Create .venv and install the pinned requirements (again only when a requirements file changed).
# Usage: scripts/install.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-runtime}
file=requirements.txt
[ "$kind" = dev ] && file=requirements-dev.txt
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -n "$python" ] || { echo "Python 3.11+ is needed (python3.11 not found)" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "Python 3.11+ is needed ($python is $("$python" --version 2>&1))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "· creating .venv with $python"
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$kind
wanted=$(cat requirements.txt "$file" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "· installing $file into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$file"
  echo "$wanted" > "$stamp"
fi
