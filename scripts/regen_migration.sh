#!/usr/bin/env bash
# Regenerate migrations/versions/0001_initial.py from core/models (only before the first release:
# after that, add a new revision with `alembic revision --autogenerate -m "..."`).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
DATABASE_URL="sqlite:///$tmp/empty.db" .venv/bin/python - <<'PY'
import os, glob
from alembic import command
from core.db import alembic_config
config = alembic_config(os.environ["DATABASE_URL"])
for f in glob.glob("migrations/versions/0001_*.py"):
    os.remove(f)
command.revision(config, message="initial", autogenerate=True, rev_id="0001")
PY
.venv/bin/ruff format -q migrations/versions/ || true
rm -rf "$tmp"
echo "regenerated migrations/versions/0001_initial.py"
