#!/usr/bin/env bash
# Run the upstream API test suites (tempest + neutron-tempest-plugin, from
# ../shared/conformance) against a fresh Neutrino with its embedded identity.
#   scripts/conformance.sh                  the classes of what Neutrino implements
#   REGEX='^tempest\.api\.network' scripts/conformance.sh     any selection
#   CONCURRENCY=2 KEEP=1 ...                parallel workers; keep the work dir
#   DATAPLANE=0 ...                         the API alone (default as root: with the agent)
#   OCTAVIA=1 ...                           then the load-balancer API's suite too
#                                           (scripts/conformance-octavia.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/conformance}
[[ -x $SHARED/run_tempest.sh || -f $SHARED/run_tempest.sh ]] || {
  echo "conformance suite not found at $SHARED" >&2; exit 2; }
# The classes covering what Neutrino implements: networks, subnets, subnet pools,
# ports, extensions, versions, tags, revisions, timestamps, quotas, paging and
# sorting (*SearchCriteria), routers, floating IPs, external networks, extra
# routes, security groups (+ default rules), allowed address pairs, extra DHCP
# options, port security and RBAC sharing.
T='tempest\.api\.network\.(admin\.)?test_(networks|networks_negative|ports|extensions|versions|tags|subnetpools_extensions|routers|routers_negative|routers_dvr|floating_ips|floating_ips_negative|floating_ips_admin_actions|security_groups|security_groups_negative|external_network_extension|external_networks_negative|allowed_address_pair|extra_dhcp_options)\.'
P='neutron_tempest_plugin\.api\.(admin\.)?test_(networks|networks_negative|subnets|subnetpools|subnetpools_negative|subnetpool_prefix_ops|ports|ports_negative|extensions|tag|revisions|timestamp|quotas|quotas_negative|routers|routers_negative|routers_ha|router_interface_fip|floating_ips|floating_ips_negative|floating_ips_admin_actions|security_groups|security_groups_negative|default_security_group_rules|external_network_extension|extension_driver_port_security|extension_driver_port_security_admin|shared_network_extension)\.'
DEFAULT_REGEX="^($T|$P)"
export REGEX=${REGEX:-$DEFAULT_REGEX}
export CONCURRENCY=${CONCURRENCY:-2}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d /tmp/neutrino-conformance.XXXXXX)
# The run reuses a few pre-provisioned projects for every class, so usage piles
# up across classes where upstream's gate gives each class a fresh project:
# routers get more room than the default 10.
export NEUTRINO_QUOTAS=${NEUTRINO_QUOTAS:-router=50}
# DATAPLANE=1 (the default as root): the host agent runs too, inside a namespace
# of its own, so ports and router interfaces really go ACTIVE (tests wait for
# that); DATAPLANE=0, or not root: the API runs alone and those tests fail.
DATAPLANE=${DATAPLANE:-$([[ $EUID == 0 ]] && echo 1 || echo 0)}
[[ $DATAPLANE == 1 ]] || echo "conformance: API only (no data plane): tests waiting for ACTIVE router ports will fail" >&2
DP=(--no-dataplane); HOSTNS=
if [[ $DATAPLANE == 1 ]]; then
  HOSTNS=nt-conformance-$PORT
  ip netns add "$HOSTNS"
  mkdir -p "$WORK/agent" && chmod 755 "$WORK" "$WORK/agent"
  export NEUTRINO_AGENT_NETNS=$HOSTNS NEUTRINO_AGENT_STATE_DIR=$WORK/agent
  DP=()
fi
"$ROOT/.venv/bin/neutrino" up --auth embedded "${DP[@]}" --port "$PORT" \
    --data-dir "$WORK/data" > "$WORK/neutrino.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  if [[ -n $HOSTNS ]]; then  # the agent's namespaces and daemons, nothing else
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^(qdhcp|qrouter)-'); do
      if [[ -n $(find "$WORK/agent" -name "${ns#*-}*" 2>/dev/null | head -1) ]]; then
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$ns"
      fi
    done
    ip netns pids "$HOSTNS" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$HOSTNS"
  fi
  [[ ${KEEP:-0} == 1 ]] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2
done
PASSWORD=$(awk '/password:/ {print $2; exit}' "$WORK/data/clouds.yaml")
# an external network with a subnet, so floating IP and gateway tests run
# (devstack's `public`, 172.24.4.0/24)
TOKEN=$(curl -si "http://127.0.0.1:$PORT/identity/v3/auth/tokens" -H 'Content-Type: application/json' \
  -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":\"$PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}" |
  tr -d '\r' | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}')
api() { curl -sf "http://127.0.0.1:$PORT/v2.0/$1" -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -d "$2"; }
PUBLIC_NETWORK_ID=$(curl -sf "http://127.0.0.1:$PORT/v2.0/networks?name=public&router:external=true" \
  -H "X-Auth-Token: $TOKEN" | python3 -c 'import json,sys; n=json.load(sys.stdin)["networks"]; print(n[0]["id"] if n else "")')
if [[ -z $PUBLIC_NETWORK_ID ]]; then
  PUBLIC_NETWORK_ID=$(api networks '{"network":{"name":"public","router:external":true,"provider:network_type":"flat","provider:physical_network":"public"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["network"]["id"])')
  api subnets "{\"subnet\":{\"network_id\":\"$PUBLIC_NETWORK_ID\",\"cidr\":\"172.24.4.0/24\",\"ip_version\":4,\"gateway_ip\":\"172.24.4.1\"}}" >/dev/null
fi
export PUBLIC_NETWORK_ID
export NET_PORT=$PORT IDENTITY_URL=http://127.0.0.1:$PORT/identity/v3 ADMIN_USER=admin \
       ADMIN_PASSWORD=$PASSWORD ADMIN_PROJECT=admin EXTENSIONS=${EXTENSIONS:-auto} \
       WS=${WS:-$WORK/tempest}
RC=0
bash "$SHARED/run_tempest.sh" || RC=$?
# OCTAVIA=1: then the load-balancer API's suite (it brings its own identity stub and
# server; docs/conformance.md)
if [[ ${OCTAVIA:-0} == 1 ]]; then
  unset WS REGEX
  bash "$ROOT/scripts/conformance-octavia.sh" || RC=$?
fi
exit $RC
