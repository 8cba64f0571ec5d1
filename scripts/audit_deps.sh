#!/usr/bin/env bash
# Check every installed dependency of .venv (built by install.sh from the pinned requirements*.txt)
# against the PyPI vulnerability data (pip-audit; `--vulnerability-service osv` for OSV). Needs the
# network, so it is not part of the test suite. --strict: a package that could not be checked is a
# failure too, never a silent "no known vulnerabilities". Extra arguments go to pip-audit.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pip-audit --strict --progress-spinner off "$@"
