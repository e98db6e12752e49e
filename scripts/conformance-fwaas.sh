#!/usr/bin/env bash
# neutron-tempest-plugin's FWaaS v2 API tests (../shared/peer/run-fwaas-tempest.sh)
# against a fresh Neutrino that validates tokens against the conformance stub
# Keystone (service user neutron/secret), as the upstream peer runs them.
#   scripts/conformance-fwaas.sh        KS_PORT=15097 (the stub's port)   KEEP=1
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER:-$ROOT/../shared/peer}
KS_PORT=${KS_PORT:-15097}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d /tmp/neutrino-fwaas-conformance.XXXXXX)
cat > "$WORK/neutrino.toml" <<TOML
host = "127.0.0.1"
port = $PORT
data_dir = "$WORK/data"
auth = "keystone"
keystone_url = "http://127.0.0.1:$KS_PORT/v3"
keystone_password = "secret"
TOML
"$ROOT/.venv/bin/neutrino" serve --config "$WORK/neutrino.toml" > "$WORK/neutrino.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2
done
# tokens are validated when requests come, so the stub may start after the server
NET_PORT=$PORT START_PEER=0 KS_PORT=$KS_PORT WS=$WORK/tempest bash "$PEER/run-fwaas-tempest.sh"
