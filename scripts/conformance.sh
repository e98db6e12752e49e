#!/usr/bin/env bash
# Run the upstream API test suites (tempest + neutron-tempest-plugin, from
# ../shared/conformance) against a fresh Neutrino with its embedded identity.
#   scripts/conformance.sh                  the classes of what Neutrino implements
#   REGEX='^tempest\.api\.network' scripts/conformance.sh     any selection
#   CONCURRENCY=2 KEEP=1 ...                parallel workers; keep the work dir
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/conformance}
[[ -x $SHARED/run_tempest.sh || -f $SHARED/run_tempest.sh ]] || {
  echo "conformance suite not found at $SHARED" >&2; exit 2; }
# The classes covering networks, subnets, subnet pools, ports, extensions, versions,
# tags, revisions, timestamps, quotas and paging/sorting (*SearchCriteria).
DEFAULT_REGEX='^(tempest\.api\.network\.(admin\.)?test_(networks|networks_negative|ports|extensions|versions|tags|subnetpools_extensions)\.|neutron_tempest_plugin\.api\.(admin\.)?test_(networks|networks_negative|subnets|subnetpools|subnetpools_negative|subnetpool_prefix_ops|ports|ports_negative|extensions|tag|revisions|timestamp|quotas|quotas_negative)\.)'
export REGEX=${REGEX:-$DEFAULT_REGEX}
export CONCURRENCY=${CONCURRENCY:-2}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d /tmp/neutrino-conformance.XXXXXX)
"$ROOT/.venv/bin/neutrino" up --auth embedded --no-dataplane --port "$PORT" \
    --data-dir "$WORK/data" > "$WORK/neutrino.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2
done
PASSWORD=$(awk '/password:/ {print $2; exit}' "$WORK/data/clouds.yaml")
export NET_PORT=$PORT IDENTITY_URL=http://127.0.0.1:$PORT/identity/v3 ADMIN_USER=admin \
       ADMIN_PASSWORD=$PASSWORD ADMIN_PROJECT=admin EXTENSIONS=${EXTENSIONS:-auto} \
       WS=${WS:-$WORK/tempest}
bash "$SHARED/run_tempest.sh"
