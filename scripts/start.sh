#!/usr/bin/env bash
# Install, then start the whole product: the UI on http://localhost:8501 (server.py: Streamlit's
# st.App with the login routes) and the worker. Ctrl-C stops both.
#   scripts/start.sh          a real shop: the first start on an empty store asks for the owner's
#                             password (or reads OWNER_PASSWORD); there is no default password
#   scripts/start.sh --demo   a demo shop: an empty store is filled with demo data and demo logins
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh runtime
py=.venv/bin/python
$py -m core.cli init
if [[ "${1:-}" == "--demo" ]]; then
  $py -m core.cli seed --demo --if-empty
  echo "· 데모 매장: 로그인 화면에 데모 계정이 표시됩니다 (demo logins are shown on the login page)"
else
  $py -m core.cli user first-owner
fi
$py -m core.worker &
worker=$!
cleanup() {
  trap - INT TERM EXIT
  kill "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap cleanup INT TERM EXIT
echo "· ChannelDesk: http://localhost:${PORT:-8501}"
$py -m streamlit run server.py --server.port "${PORT:-8501}" --server.headless true \
  --browser.gatherUsageStats false
