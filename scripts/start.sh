#!/usr/bin/env bash
# Install, then start the whole product: the Streamlit UI on http://localhost:8501 and the worker.
# First start creates data/channeldesk.db, migrates it and fills it with demo data. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh runtime
py=.venv/bin/python
$py -m core.cli init
$py -m core.cli seed --demo --if-empty
$py -m core.worker &
worker=$!
cleanup() {
  trap - INT TERM EXIT
  kill "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap cleanup INT TERM EXIT
echo "· ChannelDesk: http://localhost:${PORT:-8501}  (demo logins: owner / cs / staff, password: channeldesk)"
$py -m streamlit run server.py --server.port "${PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false
