"""Routers and floating IPs on the real data plane: how fast a floating IP answers, and
what a router namespace costs a TCP stream.

    sudo .venv/bin/python bench/l3_bench.py [--fips 50] [--seconds 5]

What it does (as root; every packet stays inside namespaces it makes):

1. starts ``neutrino up --auth noauth`` on a free port with its data plane in a fresh
   namespace standing for the host (``agent_netns``): the external network ``public``
   (172.24.4.0/24) is made and realised as ``br-ex`` there, holding 172.24.4.1;
2. makes two tenant networks behind one router with its gateway on ``public``, and
   instances on them as a hypervisor would (a port bound to the host, a veth into a
   namespace, the port's address and the subnet's gateway as default route);
3. floating IPs: ``--fips`` times, a fresh floating IP is set on an instance's port
   (``PUT /v2.0/floatingips/<id>`` with ``port_id``: what ``openstack floating ip set
   --port`` sends) while the host pings its address every 5 ms; the time from the
   request to the first answered ping is one sample (the floating IP is moved off
   again before the next).  Prints p50, p90, p99 and the maximum;
4. throughput: a TCP stream for ``--seconds`` (iperf3 when installed, else a Python
   sender/receiver) over a plain veth pair between two namespaces, then between two
   instances through the router (bridge, veth, router namespace, veth, bridge), then
   from an instance to the host through the router's SNAT; prints each and its ratio
   to the plain veth pair;
5. removes everything it made.

Exit status 1 when a floating IP never answered or a stream failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from api_bench import Client, machine, neutrino_server

from neutrino import names
from neutrino.linux import addressing, devices, namespaces, process, routing

REPO = Path(__file__).resolve().parent.parent
HOST_IP = "172.24.4.1"

SINK = r"""
import json, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
total, start, buf = 0, None, bytearray(1 << 20)
while True:
    n = c.recv_into(buf)
    if not n:
        break
    if start is None:
        start = time.perf_counter()
    total += n
print(json.dumps({"bytes": total, "seconds": time.perf_counter() - (start or 0)}))
"""
SOURCE = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
chunk = b"x" * (1 << 20)
end = time.perf_counter() + float(sys.argv[3])
while time.perf_counter() < end:
    s.sendall(chunk)
s.close()
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ns_run(ns: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout, check=True)


@contextmanager
def made_namespaces() -> Iterator[list[str]]:
    made: list[str] = []
    try:
        yield made
    finally:
        for ns in reversed(made):
            remove_ns(ns)


def remove_ns(ns: str) -> None:
    """A namespace and every process still in it."""
    for pid in process.namespace_pids(ns):
        process.terminate(pid, timeout=2)
    namespaces.delete_namespace(ns)


def new_ns(made: list[str]) -> str:
    ns = f"nt-bench-{uuid.uuid4().hex[:8]}"
    made.append(ns)  # before creating: a half-made one is removed too
    namespaces.ensure_namespace(ns)
    return ns


def instance(client: Client, made: list[str], hostns: str, host: str, network_id: str,
             gateway: str) -> tuple[str, str, str]:
    """A port bound to the host, plugged into a namespace with its address:
    (namespace, address, port id)."""
    port = client.json("POST", "/v2.0/ports", {"port": {
        "network_id": network_id, "binding:host_id": host, "device_owner": "compute:bench",
        "device_id": str(uuid.uuid4())}}, expect=201)["port"]
    ns = new_ns(made)
    devices.ensure_veth(names.tap(port["id"]), "eth0", netns=hostns, peer_netns=ns)
    devices.set_link("eth0", netns=ns, mac=port["mac_address"], up=True)
    ip = port["fixed_ips"][0]["ip_address"]
    addressing.ensure_addresses("eth0", [f"{ip}/24"], netns=ns)
    routing.ensure_default_route(gateway, netns=ns)
    return ns, ip, port["id"]


def wait(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pings(ns: str, ip: str, timeout: float = 2.0) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", str(timeout),
                           ip], capture_output=True).returncode == 0


# -- floating IPs ------------------------------------------------------------------------

def fip_latency(client: Client, hostns: str, public: str, ports: list[str],
                count: int) -> list[float]:
    """Seconds from each association request to the first answered ping."""
    fips = [client.json("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public}}, expect=201)["floatingip"] for _ in range(count)]
    samples = []
    for i, fip in enumerate(fips):
        address = fip["floating_ip_address"]
        # the host keeps asking from before the request until the first answer
        prober = subprocess.Popen(["ip", "netns", "exec", hostns, "ping", "-n", "-q", "-c", "1",
                                   "-i", "0.005", "-w", "20", address],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05)  # the prober is sending
        start = time.perf_counter()
        client.json("PUT", f"/v2.0/floatingips/{fip['id']}",
                    {"floatingip": {"port_id": ports[i % len(ports)]}})
        code = prober.wait(30)
        elapsed = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"floating IP {address} never answered")
        samples.append(elapsed)
        log(f"floating IP {i + 1}/{count} {address}: {elapsed * 1000:.0f} ms")
        # moved off again, and gone from the data plane, before the next one
        client.json("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
        wait(lambda a=address: not pings(hostns, a, 0.2), 30, f"{address} to stop answering")
    for fip in fips:
        client.json("DELETE", f"/v2.0/floatingips/{fip['id']}", expect=204)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- throughput ------------------------------------------------------------------------------

def stream(src: str, dst: str, dst_ip: str, seconds: float) -> float:
    """Gbit/s of one TCP stream from namespace ``src`` to ``dst_ip`` (served in ``dst``)."""
    if shutil.which("iperf3"):
        server = subprocess.Popen(["ip", "netns", "exec", dst, "iperf3", "-s", "-1", "-p",
                                   "5201"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                if subprocess.run(["ip", "netns", "exec", dst, "ss", "-ltn", "sport = :5201"],
                                  capture_output=True, text=True).stdout.count("LISTEN"):
                    break
                time.sleep(0.05)
            out = ns_run(src, "iperf3", "-c", dst_ip, "-p", "5201", "-t", str(seconds), "-J",
                         timeout=seconds + 30).stdout
            return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
        finally:
            server.wait(10)
    sink = subprocess.Popen(["ip", "netns", "exec", dst, sys.executable, "-c", SINK, "5201"],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    ns_run(src, sys.executable, "-c", SOURCE, dst_ip, "5201", str(seconds),
           timeout=seconds + 30)
    result = json.loads(sink.communicate(timeout=30)[0])
    return result["bytes"] * 8 / result["seconds"] / 1e9


def veth_pair(made: list[str]) -> tuple[str, str, str]:
    a, b = new_ns(made), new_ns(made)
    devices.ensure_veth("eth0", "eth0", netns=a, peer_netns=b)
    addressing.ensure_addresses("eth0", ["10.99.0.1/24"], netns=a)
    addressing.ensure_addresses("eth0", ["10.99.0.2/24"], netns=b)
    return a, b, "10.99.0.2"


# -- the run ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fips", type=int, default=50, help="floating IPs to time (50)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each stream (5)")
    p.add_argument("--instances", type=int, default=5,
                   help="instances the floating IPs go to in turn (5)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        log("l3_bench needs root: it makes namespaces, bridges and routers")
        return 2
    for tool in ("ip", "nft", "dnsmasq", "ping"):
        if shutil.which(tool) is None:
            log(f"l3_bench needs {tool}: scripts/install-system-packages.sh")
            return 2
    data = Path(tempfile.mkdtemp(prefix="nt-bench-"))
    data.chmod(0o755)
    with made_namespaces() as made:
        hostns = new_ns(made)
        host = f"bench-{hostns}"
        env = {"NEUTRINO_AGENT_NETNS": hostns, "NEUTRINO_AGENT_HOST": host,
               "NEUTRINO_AGENT_STATE_DIR": str(data / "agent"),
               "NEUTRINO_AGENT_REPORT_INTERVAL": "1"}
        try:
            with neutrino_server(["up", "--data-dir", str(data / "data"), "--auth", "noauth"],
                                 log, env) as (url, pid):
                return run(args, Client(url), made, hostns, host, data, pid)
        finally:
            agent = data / "agent"
            for kind, name in (("l3", names.router_namespace), ("dhcp", names.dhcp_namespace)):
                if (agent / kind).exists():
                    for entry in (agent / kind).iterdir():
                        ns = name(entry.name)
                        for pid in process.namespace_pids(ns):
                            process.terminate(pid, timeout=2)
                        namespaces.delete_namespace(ns)
            shutil.rmtree(data, ignore_errors=True)


def run(args: argparse.Namespace, client: Client, made: list[str], hostns: str, host: str,
        data: Path, pid: int) -> int:
    log(f"neutrino up (pid {pid}), data plane in netns {hostns}")
    wait(lambda: any(a["agent_type"] == "L3 agent" and a["alive"] for a in client.json(
        "GET", "/v2.0/agents")["agents"]), 30, "the agents")
    public = client.json("GET", "/v2.0/networks?name=public")["networks"][0]["id"]
    client.json("PUT", "/v2.0/quotas/fake_project_id", {"quota": {
        "floatingip": -1, "port": -1, "router": -1}})
    router = client.json("POST", "/v2.0/routers", {"router": {
        "name": "bench", "external_gateway_info": {"network_id": public}}},
        expect=201)["router"]["id"]
    subnets = []
    for n, cidr in enumerate(("10.61.0.0/24", "10.62.0.0/24")):
        net = client.json("POST", "/v2.0/networks", {"network": {"name": f"bench-{n}"}},
                          expect=201)["network"]["id"]
        sub = client.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net, "cidr": cidr, "ip_version": 4, "enable_dhcp": False}},
            expect=201)["subnet"]
        client.json("PUT", f"/v2.0/routers/{router}/add_router_interface",
                    {"subnet_id": sub["id"]})
        subnets.append((net, sub["gateway_ip"]))
    # the host pings through the floating IPs: the default group admits its members only
    group = client.json("GET", "/v2.0/security-groups?name=default&project_id="
                        "fake_project_id")["security_groups"][0]["id"]
    client.json("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
        "protocol": "icmp"}}, expect=201)
    vms = [instance(client, made, hostns, host, *subnets[i % 2]) for i in range(
        max(2, args.instances))]
    for ns, _, _ in vms:
        wait(lambda ns=ns: pings(ns, HOST_IP, 0.5), 30, "instances reaching the host")
    log(f"{len(vms)} instances behind router {router}")

    samples = fip_latency(client, hostns, public, [v[2] for v in vms], args.fips)
    a, b, b_ip = veth_pair(made)
    plain = stream(a, b, b_ip, args.seconds)
    east_west = stream(vms[0][0], vms[1][0], vms[1][1], args.seconds)
    snat = stream(vms[0][0], hostns, HOST_IP, args.seconds)
    tool = "iperf3" if shutil.which("iperf3") else "python sockets"
    ms = [s * 1000 for s in samples]
    print(f"\n## Routers and floating IPs (bench/l3_bench.py)\n\n"
          f"Machine: {machine()}. One `neutrino up` (SQLite, in-process agent), its data "
          f"plane in a namespace; {args.fips} floating IPs over {len(vms)} instances; "
          f"streams of {args.seconds:g} s with {tool}.\n\n"
          f"| floating IP set -> first answered ping | ms |\n|---|---|\n"
          f"| p50 | {statistics.median(ms):.0f} |\n| p90 | {percentile(ms, 0.9):.0f} |\n"
          f"| p99 | {percentile(ms, 0.99):.0f} |\n| max | {max(ms):.0f} |\n\n"
          f"| one TCP stream | Gbit/s | ratio to a veth pair |\n|---|---|---|\n"
          f"| plain veth pair | {plain:.2f} | 1.00 |\n"
          f"| instance -> instance through the router | {east_west:.2f} | "
          f"{east_west / plain:.2f} |\n"
          f"| instance -> host through the router's SNAT | {snat:.2f} | {snat / plain:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
