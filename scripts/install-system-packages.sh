#!/usr/bin/env bash
# Install the Debian packages Neutrino needs, only those missing (idempotent).
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
# the data plane: nftables, dnsmasq for DHCP; ping for the tests' real packets
command -v nft >/dev/null || need+=(nftables)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v ping >/dev/null || need+=(iputils-ping)
# routers announce new floating IPs with gratuitous ARP (arping -U)
command -v arping >/dev/null || need+=(iputils-arping)
# `neutrino instance` takes its address by DHCP like a guest would: busybox's udhcpc
command -v busybox >/dev/null || need+=(busybox)
# security groups cut the flows a removed rule no longer allows (conntrack -D)
command -v conntrack >/dev/null || need+=(conntrack)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "missing system packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Neutrino needs Python >= 3.11, found {sys.version.split()[0]}")
PY
