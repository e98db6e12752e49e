#!/usr/bin/env bash
# The hands-on lab, with the real `openstack` CLI against a running `neutrino up`:
# a private network behind a router to `public`, a jump host with a floating IP and
# two web servers only the jump host may reach.
#
#   sudo neutrino up                               # in another terminal (as root)
#   export OS_CLIENT_CONFIG_FILE=data/clouds.yaml OS_CLOUD=neutrino
#   sudo -E examples/lab.sh                        # run the lab, print each step's result
#   sudo -E examples/lab.sh clean                  # remove everything the lab made
#
# Settings (environment):
#   LAB_PREFIX      prefix of every name the lab makes (default "lab-")
#   LAB_CIDR        the private subnet (default 10.10.10.0/24)
#   LAB_HOST_NETNS  where "the host" runs its checks: empty is this shell's namespace;
#                   `neutrino up` with agent_netns puts the host's br-ex in that one
#   NEUTRINO        the neutrino command (default: `neutrino` on PATH)
# Exit status: 0 when every step passed or was skipped (with its reason), 1 otherwise.
set -uo pipefail

P=${LAB_PREFIX-lab-}
CIDR=${LAB_CIDR:-10.10.10.0/24}
HOSTNS=${LAB_HOST_NETNS:-}
NEUTRINO=${NEUTRINO:-neutrino}
OS=${OPENSTACK:-openstack}
PY=$(head -1 "$(command -v "$NEUTRINO")" | sed -n 's/^#!//p')
PY=${PY:-python3}
WEBROOT=${TMPDIR:-/tmp}/${P}web
failed=0

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   [ok]   %s\n' "$*"; }
fail() { printf '   [FAIL] %s\n' "$*"; failed=1; }
skip() { printf '   [skip] %s\n' "$*"; }
run() { # show a command, run it, keep its output quiet unless it fails
  printf '   $ %s\n' "$*"
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/     /'
    return 1
  fi
}
host() { if [[ -n $HOSTNS ]]; then ip netns exec "$HOSTNS" "$@"; else "$@"; fi; }
in_vm() { local vm=$1; shift; "$NEUTRINO" instance exec "$P$vm" -- "$@"; }
address_of() { # the fixed IPv4 address of port NAME
  "$OS" port show "$1" -f json | "$PY" -c \
    'import json,sys; print([f["ip_address"] for f in json.load(sys.stdin)["fixed_ips"] if ":" not in f["ip_address"]][0])'
}
sg_enforced() { # the agent enforces security groups once it has their reconciler
  "$PY" - <<'EOF'
import importlib.util, sys
mods = ("neutrino.agent.security_groups", "neutrino.agent.sg", "neutrino.agent.firewall.filters")
sys.exit(0 if any(importlib.util.find_spec(m) for m in mods) else 1)
EOF
}

clean() {
  step "clean up everything the lab made"
  for vm in jumphost web1 web2; do "$NEUTRINO" instance delete "$P$vm" >/dev/null 2>&1; done
  for fip in $("$OS" floating ip list --tags "${P}lab" -f value -c ID 2>/dev/null); do
    "$OS" floating ip delete "$fip" >/dev/null 2>&1
  done
  "$OS" router remove subnet "${P}router" "${P}subnet" >/dev/null 2>&1
  "$OS" router delete "${P}router" >/dev/null 2>&1
  "$OS" security group delete "${P}web" "${P}jumphost" >/dev/null 2>&1
  "$OS" network delete "${P}private" >/dev/null 2>&1
  rm -rf "$WEBROOT"1 "$WEBROOT"2
  ok "removed"
}

if [[ ${1:-} == clean ]]; then
  clean
  exit 0
fi

step "1. a private network and subnet"
run "$OS" network create "${P}private" &&
  run "$OS" subnet create --network "${P}private" --subnet-range "$CIDR" "${P}subnet" &&
  ok "network ${P}private with $CIDR" || fail "network"

step "2. a router with its gateway on public, and the private subnet attached"
run "$OS" router create "${P}router" &&
  run "$OS" router set --external-gateway public "${P}router" &&
  run "$OS" router add subnet "${P}router" "${P}subnet" &&
  ok "router ${P}router: $("$OS" router show "${P}router" -f value -c external_gateway_info \
      | grep -oE "'ip_address': '[0-9.]+'" | head -1)" || fail "router"

step "3. security groups: jumphost (ICMP, SSH) and web (ICMP, SSH, HTTP from jumphost members)"
run "$OS" security group create "${P}jumphost" &&
  run "$OS" security group rule create --protocol icmp "${P}jumphost" &&
  run "$OS" security group rule create --protocol tcp --dst-port 22 "${P}jumphost" &&
  run "$OS" security group create "${P}web" &&
  for rule in "--protocol icmp" "--protocol tcp --dst-port 22" "--protocol tcp --dst-port 80"; do
    # shellcheck disable=SC2086
    run "$OS" security group rule create $rule --remote-group "${P}jumphost" "${P}web" || exit 1
  done && ok "groups ${P}jumphost and ${P}web" || fail "security groups"

step "4. instances: a jump host and two web servers"
run "$NEUTRINO" instance boot "${P}jumphost" --network "${P}private" \
    --security-group "${P}jumphost" || fail "jumphost"
for web in web1 web2; do
  run "$NEUTRINO" instance boot "$P$web" --network "${P}private" --security-group "${P}web" \
    || fail "$web"
done
"$NEUTRINO" instance list | sed 's/^/   /'

step "5. web servers: busybox httpd on port 80 inside web1 and web2"
for n in 1 2; do
  mkdir -p "$WEBROOT$n" && echo "hello from ${P}web$n" > "$WEBROOT$n/index.html"
  run in_vm "web$n" busybox httpd -p 80 -h "$WEBROOT$n" && ok "web$n serves" || fail "httpd web$n"
done

step "6. a floating IP for the jump host"
jump_port=$("$OS" port list --device-owner compute:neutrino --name "${P}jumphost" -f value -c ID)
fip=$("$OS" floating ip create public --tag "${P}lab" -f value -c floating_ip_address)
if [[ -n $fip && -n $jump_port ]] && run "$OS" floating ip set --port "$jump_port" "$fip"; then
  ok "jumphost is reachable as $fip"
else
  fail "floating IP"
fi

step "7. checks"
web1=$(address_of "${P}web1")
web2=$(address_of "${P}web2")
for i in $(seq 50); do  # the floating IP answers once the router has its NAT
  host ping -c 1 -W 1 "$fip" >/dev/null 2>&1 && break
  sleep 0.2
done
if host ping -c 2 -W 2 "$fip" >/dev/null 2>&1; then
  ok "the host pings the jump host's floating IP $fip"
else
  fail "the host cannot ping $fip"
fi
status=$("$OS" floating ip show "$fip" -f value -c status)
[[ $status == ACTIVE ]] && ok "floating IP status ACTIVE" || fail "floating IP status $status"
for n in 1 2; do
  ip=web$n; ip=${!ip}
  got=$(in_vm jumphost curl -s -m 5 "http://$ip/" 2>&1)
  [[ $got == "hello from ${P}web$n" ]] && ok "jumphost -> web$n ($ip) port 80: \"$got\"" \
    || fail "jumphost -> web$n ($ip) port 80: $got"
done
if in_vm jumphost ping -c 1 -W 2 172.24.4.1 >/dev/null 2>&1; then
  ok "the jump host reaches the outside (172.24.4.1) through the router's SNAT"
else
  fail "the jump host cannot reach 172.24.4.1"
fi
step "8. only the jump host reaches the web servers"
if sg_enforced; then
  if in_vm web1 curl -s -m 3 "http://$web2/" >/dev/null 2>&1; then
    fail "web1 reached web2 port 80: only members of ${P}jumphost may"
  else
    ok "web1 -> web2 port 80 refused (web1 is not a member of ${P}jumphost)"
  fi
  # even with a floating IP of its own, a web server stays closed to the outside
  web1_port=$("$OS" port list --device-owner compute:neutrino --name "${P}web1" -f value -c ID)
  probe=$("$OS" floating ip create public --tag "${P}lab" --port "$web1_port" \
            -f value -c floating_ip_address)
  for i in $(seq 50); do  # until its NAT is in place
    [[ $("$OS" floating ip show "$probe" -f value -c status) == ACTIVE ]] && break
    sleep 0.2
  done
  if host curl -s -m 3 "http://$probe/" >/dev/null 2>&1; then
    fail "not from outside: the host reached web1's port 80 through $probe"
  else
    ok "not from outside: web1's port 80 is closed to the host even through $probe"
  fi
  "$OS" floating ip delete "$probe" >/dev/null 2>&1
else
  skip "not from outside / not from other members: security groups are not enforced by" \
       "the agent yet (no security-group reconciler)"
fi

printf '\n'
if ((failed)); then
  echo "lab: some steps FAILED"
  exit 1
fi
echo "lab: all steps passed; \`$0 clean\` removes everything"
