"""``neutrino instance``: instances to try a network with, plugged as a hypervisor would.

An instance is a network namespace ``nt-inst-<name>`` with an ``eth0`` whose MAC is
its port's; the other end of the veth is ``tap<port[:11]>`` in the agent's host
namespace, where the agent plugs it into the network's bridge.  Its address comes
from the network's DHCP (busybox ``udhcpc``), like a guest's would.

The API is found the way the ``openstack`` CLI finds it: ``OS_CLOUD`` and a
clouds.yaml, or ``OS_*`` variables (an openrc); failing both, the clouds.yaml that
``neutrino up`` wrote in the data directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from neutrino import config, files, names
from neutrino.config import Settings
from neutrino.linux import process
from neutrino.linux.run import passthrough, run

OWNER = "compute:neutrino"
#: udhcpc calls this on each DHCP event; it configures eth0 and records the lease
UDHCPC_SCRIPT = r"""#!/bin/sh
# written by `neutrino instance boot`
state="$(dirname "$0")"
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip link set "$interface" up
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    [ "$1" = bound ] && ip -4 addr flush dev "$interface"
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$1" = 0.0.0.0/0 ]; then ip route replace default via "$2" dev "$interface"
            else ip route replace "$1" via "$2" dev "$interface"; fi
            shift 2
        done
    elif [ -n "$router" ]; then
        set -- $router
        ip route replace default via "$1" dev "$interface"
    fi
    printf 'ip=%s\nmask=%s\nrouter=%s\ndns=%s\nmtu=%s\nstaticroutes=%s\nlease=%s\n' \
        "$ip" "$mask" "$router" "$dns" "$mtu" "$staticroutes" "$lease" > "$state/lease.tmp"
    mv "$state/lease.tmp" "$state/lease"
    ;;
esac
exit 0
"""


class InstanceError(Exception):
    pass


def connect(settings: Settings) -> Any:
    """An openstacksdk connection, found as the ``openstack`` CLI finds its cloud."""
    try:
        import openstack
    except ImportError:
        raise InstanceError("`neutrino instance` needs openstacksdk: pip install "
                            "openstacksdk") from None
    if not os.environ.get("OS_CLOUD") and not os.environ.get("OS_AUTH_URL") \
            and not os.environ.get("OS_ENDPOINT"):
        clouds = settings.data_dir / "clouds.yaml"
        if clouds.exists():  # the one `neutrino up` wrote
            os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(clouds.resolve()))
            os.environ["OS_CLOUD"] = "neutrino"
    return openstack.connect()


def host_of(settings: Settings) -> str:
    return settings.agent_host or socket.gethostname()


def state_dir(settings: Settings, name: str) -> Path:
    return (settings.data_dir / "instances" / name).resolve()


def _find_port(conn: Any, name: str, host: str) -> Any | None:
    for port in conn.network.ports(device_owner=OWNER, name=name):
        if port.binding_host_id in (host, None, ""):
            return port
    return None


def boot(settings: Settings, name: str, network: str, security_groups: list[str],
         fixed_ip: str | None, wait: float = 60.0) -> dict:
    from neutrino.linux import namespaces  # pyroute2 is heavy: only where needed
    ns = names.instance_namespace(name)
    if namespaces.namespace_exists(ns):
        raise InstanceError(f"instance {name} exists (namespace {ns})")
    if shutil.which("busybox") is None:
        raise InstanceError("instances take their address by DHCP with busybox udhcpc: "
                            "apt-get install busybox")
    conn = connect(settings)
    net = conn.network.find_network(network, ignore_missing=True)
    if net is None:
        raise InstanceError(f"no network {network!r}")
    attrs: dict[str, Any] = {"network_id": net.id, "name": name, "device_owner": OWNER,
                             "device_id": str(uuid.uuid4()),
                             "binding_host_id": host_of(settings)}
    if security_groups:
        attrs["security_group_ids"] = [
            conn.network.find_security_group(sg, ignore_missing=False).id
            for sg in security_groups]
    if fixed_ip:
        attrs["fixed_ips"] = [{"ip_address": fixed_ip}]
    port = conn.network.create_port(**attrs)
    try:
        _plug(settings, name, ns, port.id, port.mac_address)
        lease = _dhcp(settings, name, ns, wait)
    except BaseException:
        _unplug(settings, name, ns, port.id)
        conn.network.delete_port(port.id, ignore_missing=True)
        raise
    deadline = time.monotonic() + wait
    while (port := conn.network.get_port(port.id)).status != "ACTIVE" \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    return {"name": name, "port": port.id, "namespace": ns, "status": port.status,
            "addresses": [f["ip_address"] for f in port.fixed_ips], "lease": lease}


def _plug(settings: Settings, name: str, ns: str, port_id: str, mac: str) -> None:
    from neutrino.linux import devices, namespaces  # pyroute2 is heavy: only where needed
    namespaces.ensure_namespace(ns)
    tap = names.tap(port_id)
    # the inside keeps the kernel's default MTU: the network's comes by DHCP (option 26)
    devices.ensure_veth(tap, "eth0", netns=settings.agent_netns or None, peer_netns=ns)
    # down first: the link-local address made when it came up is of the veth's random MAC,
    # which anti-spoofing drops; up again with the port's MAC, the kernel makes the right one
    devices.set_link("eth0", netns=ns, up=False)
    devices.set_link("eth0", netns=ns, mac=mac, up=True)


def _dhcp(settings: Settings, name: str, ns: str, wait: float) -> dict[str, str]:
    d = state_dir(settings, name)
    d.mkdir(parents=True, exist_ok=True)
    script = d / "udhcpc.sh"
    files.write_atomic(script, UDHCPC_SCRIPT, mode=0o755)
    files.remove(d / "lease")
    tries = max(3, int(wait))
    # udhcpc stays in the background after its lease (to renew it); its output goes to a
    # file so that nothing waits on our pipes
    command = (f"exec busybox udhcpc -i eth0 -s {script} -p {d / 'udhcpc.pid'} -t {tries} "
               f"-T 1 -A 1 -n -O mtu -O staticroutes -x hostname:{name} "
               f"> {d / 'udhcpc.log'} 2>&1")
    result = run(["sh", "-c", command], netns=ns, timeout=tries + 30, check=False)
    lease = lease_of(settings, name)
    if result.returncode != 0 or not lease:
        log = files.read(d / "udhcpc.log") or ""
        raise InstanceError(f"instance {name} got no DHCP lease: {log.strip()[-500:]}")
    return lease


def lease_of(settings: Settings, name: str) -> dict[str, str]:
    text = files.read(state_dir(settings, name) / "lease") or ""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _unplug(settings: Settings, name: str, ns: str, port_id: str | None) -> None:
    from neutrino.linux import devices, namespaces  # pyroute2 is heavy: only where needed
    if namespaces.namespace_exists(ns):
        for pid in process.namespace_pids(ns):
            process.terminate(pid, timeout=2)  # udhcpc and whatever ran in the instance
    if port_id:
        devices.delete_link(names.tap(port_id), netns=settings.agent_netns or None)
    namespaces.delete_namespace(ns)
    shutil.rmtree(state_dir(settings, name), ignore_errors=True)


def delete(settings: Settings, name: str) -> bool:
    from neutrino.linux import namespaces  # pyroute2 is heavy: only where needed
    ns = names.instance_namespace(name)
    conn = connect(settings)
    port = _find_port(conn, name, host_of(settings))
    found = port is not None or namespaces.namespace_exists(ns)
    _unplug(settings, name, ns, port.id if port else None)
    if port is not None:
        conn.network.delete_port(port.id, ignore_missing=True)
    return found


def listing(settings: Settings) -> list[dict]:
    from neutrino.linux import namespaces  # pyroute2 is heavy: only where needed
    conn = connect(settings)
    host = host_of(settings)
    out = []
    for port in conn.network.ports(device_owner=OWNER):
        if port.binding_host_id not in (host, None, ""):
            continue
        out.append({"name": port.name, "port": port.id,
                    "addresses": ", ".join(f["ip_address"] for f in port.fixed_ips),
                    "status": port.status,
                    "plugged": namespaces.namespace_exists(names.instance_namespace(port.name))
                    if port.name else False})
    return sorted(out, key=lambda i: i["name"])


# -- the command line ---------------------------------------------------------------------

def add_parser(sub: Any) -> None:
    p = sub.add_parser("instance", help="instances (namespaces) on this host's networks")
    p.add_argument("--config", type=Path, default=None, help="TOML settings file")
    isub = p.add_subparsers(dest="instance_command", required=True)
    b = isub.add_parser("boot", help="make an instance with a port on a network")
    b.add_argument("name")
    b.add_argument("--network", required=True, help="network name or id")
    b.add_argument("--security-group", action="append", default=[], dest="security_groups",
                   help="security group name or id (repeatable)")
    b.add_argument("--fixed-ip", default=None, help="ask for this address")
    b.add_argument("--wait", type=float, default=60.0, help="seconds to wait for DHCP")
    isub.add_parser("list", help="the instances of this host")
    e = isub.add_parser("exec", help="run a command inside an instance")
    e.add_argument("name")
    e.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")
    d = isub.add_parser("delete", help="remove an instance and its port")
    d.add_argument("name")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    try:
        if args.instance_command == "boot":
            made = boot(settings, args.name, args.network, args.security_groups,
                        args.fixed_ip, args.wait)
            lease = made["lease"]
            print(f"{made['name']}: port {made['port']} {made['status']}, "
                  f"addresses {', '.join(made['addresses'])} (DHCP: {lease.get('ip')}, "
                  f"mtu {lease.get('mtu') or '-'}, router {lease.get('router') or '-'}); "
                  f"namespace {made['namespace']}")
            return 0
        if args.instance_command == "list":
            rows = listing(settings)
            head = ("name", "port", "addresses", "status", "plugged")
            widths = [max([len(h)] + [len(str(r[h])) for r in rows]) for h in head]
            for line in [dict(zip(head, head, strict=True)), *rows]:
                print("  ".join(str(line[h]).ljust(w) for h, w in zip(head, widths,
                                                                      strict=True)).rstrip())
            return 0
        if args.instance_command == "exec":
            argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not argv:
                raise InstanceError("nothing to run: neutrino instance exec NAME -- CMD ...")
            return passthrough(argv, netns=names.instance_namespace(args.name))
        if args.instance_command == "delete":
            if not delete(settings, args.name):
                raise InstanceError(f"no instance {args.name}")
            print(f"{args.name}: deleted")
            return 0
    except (InstanceError, AssertionError) as exc:
        print(f"neutrino instance: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.instance_command)
