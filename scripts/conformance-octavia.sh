#!/usr/bin/env bash
# octavia-tempest-plugin's API tests (632 in octavia_tempest_plugin.tests.api.v2)
# against Neutrino's load-balancer API, through ../shared/peer/run-octavia-tempest.sh.
#   bash scripts/conformance-octavia.sh                 everything (~15 min on 2 cores)
#   REGEX='^octavia_tempest_plugin\.tests\.api\.v2\.test_pool' bash scripts/conformance-octavia.sh
#   OCTAVIA=1 make conformance                          after the Networking API suite
#   DATABASE_URL=postgresql+psycopg://... bash scripts/conformance-octavia.sh   (an empty
#        database of its own; default: SQLite in the work dir)
# The runner validates tokens against its own identity stub (KS_PORT, default 15098;
# service user octavia/secret), so Neutrino runs here in external-Keystone mode with
# the no-op VIP network (lb_network = "noop": the tests' networks are random UUIDs,
# as upstream's run with no-op drivers) and the three providers the tests expect.
# Excluded (docs/conformance.md says why): the amphora tests (there are no amphorae)
# and the two capability tests that compare against upstream's own description text.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER:-$ROOT/../shared/peer}
[[ -f $PEER/run-octavia-tempest.sh ]] || { echo "no $PEER/run-octavia-tempest.sh" >&2; exit 2; }
KS_PORT=${KS_PORT:-15098}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d /tmp/neutrino-octavia.XXXXXX)
cat > "$WORK/neutrino.toml" <<TOML
host = "127.0.0.1"
port = $PORT
data_dir = "$WORK/data"
database_url = "${DATABASE_URL:-}"
auth = "keystone"
keystone_url = "http://127.0.0.1:$KS_PORT/v3"
keystone_username = "octavia"
keystone_password = "secret"
keystone_project = "service"
lb_network = "noop"
lb_default_provider = "amphora"
[lb_providers]
amphora = "The Octavia Amphora driver."
octavia = "Deprecated alias of the Octavia Amphora driver."
noop_driver = "The no-op driver."
TOML
"$ROOT/.venv/bin/neutrino" serve --config "$WORK/neutrino.toml" > "$WORK/neutrino.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 300); do   # a first migration on PostgreSQL/MariaDB takes a while
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/load-balancer/" && break; sleep 0.2
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/load-balancer/" || {
  echo "neutrino did not start; its log:" >&2; cat "$WORK/neutrino.log" >&2; exit 2; }
export LB_URL=http://127.0.0.1:$PORT/load-balancer START_OCTAVIA=0 KS_PORT
export WS=${WS:-$WORK/tempest}
export EXCLUDE_REGEX=${EXCLUDE_REGEX:-'test_amphora\.|test_(flavor|availability_zone)_capabilities_list'}
# KEEP is this script's (the work dir); the runner's KEEP would leave its stub running
KEEP=0 bash "$PEER/run-octavia-tempest.sh"
