"""100 instances on one host's real data plane: port create -> ACTIVE and -> first ping,
a full agent resync that must change nothing, an agent restart, and security-group rule
create -> enforced.

    sudo .venv/bin/python bench/instances_bench.py [--instances 100] [--rules 20]

What it does (as root; every packet stays inside namespaces it makes):

1. starts what ``neutrino up --auth noauth`` runs (``server.build``: the API and the
   in-process bus; one ``Agent`` in the same process; uvicorn), in a child process of
   its own with a control pipe, the agent's "hypervisor" in a fresh namespace
   (``agent_netns``); one VXLAN network with a DHCP subnet (/22);
2. boots a *prober* instance (the default group) and a *target* instance (a group
   without ingress rules), untimed;
3. boots ``--instances`` instances one after the other as a hypervisor plugs a VM:
   ``POST /v2.0/ports`` with ``binding:host_id``, then a namespace with a veth whose
   outer end is ``tap<port[:11]>`` in the host namespace and whose inner end has the
   port's MAC and address.  From the POST it times the port's ``status`` turning
   ``ACTIVE`` (``GET`` every 10 ms) and the first ping answered from the prober
   (which pings every 5 ms, its ARP retried every 10 ms, so the figure is the data
   plane's and not the kernel's 1 s ARP timer).  Once ACTIVE the instance asks for a
   DHCP lease (``udhcpc``, one DISCOVER a second): the lease must be the port's
   address and come at the first try;
4. full resync: the kernel state (links with their details in the host namespace, its
   nft ruleset with handles, the DHCP namespace's addresses, dnsmasq's files with their
   inodes and mtimes, its pid, start time and log size) is taken before and after
   ``Agent.resync()`` and its pass; the pass must plan no step and the state must be
   byte-identical.  Repeated ``--resyncs`` times;
5. restart: the child is stopped (the data plane stays) and started again; the time
   from the new process to its agent's first full pass done, which again must plan
   nothing and leave the kernel state identical;
6. ``--rules`` TCP rules, each created on the target's group while the prober keeps
   trying to connect to that port (a fresh connection every ~10 ms): time from the
   POST to the first connection that gets through;
7. burst: the instances are deleted (and the agent left to settle), then ``--instances``
   ports are created back to back, then all plugged; each port's POST -> ACTIVE;
8. prints the table and removes everything it made, also on failure or Ctrl-C.

Exit status 1 when a target is missed (port -> ACTIVE p99 < 500 ms, resync < 1 s), a
resync or restart changed anything, or an instance never answered.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from api_bench import Client, free_port, machine, percentile, unlimited_quotas, wait_healthy
from l3_bench import made_namespaces, new_ns, remove_ns

from neutrino import names

REPO = Path(__file__).resolve().parent.parent
ACTIVE_P99_MS = 500.0
RESYNC_S = 1.0
CIDR, PREFIX = "10.70.0.0/22", 22

#: the target's listener: accepts on the given ports and closes at once
LISTENER = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept()
        conn.close()
"""
#: the prober's side of a rule: a fresh connection every ~10 ms (a SYN that was dropped
#: would be retried by the kernel only after 1 s); says "ready" once one was refused,
#: then the CLOCK_MONOTONIC time of the first that got through
CONNECTOR = r"""
import socket, sys, time
ip, port, ready = sys.argv[1], int(sys.argv[2]), False
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    s = socket.socket()
    s.settimeout(0.01)
    try:
        s.connect((ip, port))
    except OSError:
        if not ready:
            print("ready", flush=True)
            ready = True
        time.sleep(0.002)
        continue
    finally:
        s.close()
    print(time.monotonic() if ready else "open", flush=True)
    sys.exit(0)
sys.exit(1)
"""
#: udhcpc calls this; it only records the lease (the address is configured already)
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "$ip" > "$BENCH_LEASE"
exit 0
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the server and its agent, in a child process -----------------------------------------

def serve(port: int, data: Path) -> int:
    """The child: `neutrino up --auth noauth` (its agent settings from NEUTRINO_*) plus a
    control pipe: a line on stdin, a JSON line back on stdout."""
    import uvicorn

    from neutrino import config
    from neutrino.agent.agent import Agent
    from neutrino.server import build

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # nothing else may write to the control pipe
    settings = config.load(None, host="127.0.0.1", port=port, data_dir=data, auth="noauth",
                           log_level="warning")
    app, db = build(settings, migrate_in_child=True)
    agent = Agent(app.state.bus, settings)  # type: ignore[attr-defined]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="uvloop",
                                           http="httptools", access_log=False,
                                           log_level="warning"))

    def wait_pass(after: int, full: bool, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            stats = agent.last_pass
            if agent.passes > after and stats is not None and (stats.full or not full):
                return {"seconds": stats.seconds, "full": stats.full,
                        "planned": dict(stats.planned), "at": time.monotonic()}
            if time.monotonic() > deadline:
                return {"error": "no pass"}
            time.sleep(0.001)

    def control() -> None:
        # the first full pass, timed by the parent from its spawn
        print(json.dumps(wait_pass(0, True)), file=out)
        for line in sys.stdin:
            if line.strip() == "resync":
                before = agent.passes
                started = time.monotonic()
                agent.resync()
                reply = wait_pass(before, True)
                reply["wall"] = time.monotonic() - started
                print(json.dumps(reply), file=out)
            elif line.strip() == "settle":  # idle for a second on end
                since = time.monotonic()
                while time.monotonic() - since < 1.0:
                    time.sleep(0.05)
                    if not agent.idle:
                        since = time.monotonic()
                print(json.dumps({"passes": agent.passes}), file=out)
        server.should_exit = True  # the parent went away

    agent.start()
    threading.Thread(target=control, daemon=True).start()
    try:
        server.run()
    finally:
        agent.stop()  # the data plane itself keeps running
        app.state.bus.close()  # type: ignore[attr-defined]
        db.dispose()
    return 0


@dataclass
class Child:
    proc: subprocess.Popen
    url: str
    spawned: float
    replies: queue.Queue = field(default_factory=queue.Queue)

    def read(self, timeout: float = 90) -> dict[str, Any]:
        reply = self.replies.get(timeout=timeout)
        if "error" in reply:
            raise RuntimeError(f"agent: {reply['error']}")
        return reply

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()


@contextmanager
def child(data: Path, env: dict[str, str], logfile: IO[bytes]) -> Iterator[Child]:
    port = free_port()
    spawned = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(data)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=logfile, text=True, env={**os.environ, **env})
    c = Child(proc, f"http://127.0.0.1:{port}", spawned)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            c.replies.put(json.loads(line))
        c.replies.put({"error": "the server exited"})

    threading.Thread(target=pump, daemon=True).start()
    try:
        wait_healthy(c.url, proc, 60)
        yield c
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- namespaces and instances -----------------------------------------------------------------

def ns_run(ns: str, *argv: str, timeout: float = 60, check: bool = True,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout, check=check, env={**os.environ, **(env or {})})


def batch(ns: str, *commands: str) -> None:
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n",
                   text=True, check=True, capture_output=True)


@dataclass
class Vm:
    ns: str
    port: dict[str, Any]

    @property
    def ip(self) -> str:
        return self.port["fixed_ips"][0]["ip_address"]


@dataclass
class Cloud:
    client: Client
    made: list[str]
    hostns: str
    host: str
    network: str
    mtu: int

    def create_port(self, **attrs: Any) -> dict[str, Any]:
        return self.client.json("POST", "/v2.0/ports", {"port": {
            "network_id": self.network, "binding:host_id": self.host,
            "device_owner": "compute:bench", "device_id": str(uuid.uuid4()), **attrs}},
            expect=201)["port"]

    def plug(self, port: dict[str, Any]) -> Vm:
        """As a hypervisor plugs a VM (and cloud-init configures its address): three
        ``ip`` runs, a few milliseconds, where a pyroute2 socket in another namespace
        costs a fork of this process each."""
        vm = Vm(f"nt-bench-{uuid.uuid4().hex[:8]}", port)
        self.made.append(vm.ns)
        tap, mac, mtu = names.tap(port["id"]), port["mac_address"], str(self.mtu)
        subprocess.run(["ip", "netns", "add", vm.ns], check=True)
        batch(self.hostns, f"link add {tap} mtu {mtu} type veth peer name eth0 netns {vm.ns} "
                           f"address {mac} mtu {mtu}", f"link set {tap} up")
        batch(vm.ns, "link set lo up", "link set eth0 up",
              f"addr add {vm.ip}/{PREFIX} dev eth0")
        return vm

    def status(self, port_id: str) -> str:
        return self.client.json("GET", f"/v2.0/ports/{port_id}")["port"]["status"]

    def unplug(self, vm: Vm) -> None:
        self.client.json("DELETE", f"/v2.0/ports/{vm.port['id']}", expect=204)
        remove_ns(vm.ns)  # the tap goes with its peer
        self.made.remove(vm.ns)


def wait(cond: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


class Pinger:
    """Pings ``ip`` from ``src`` every 5 ms until the first answer; ``-D`` stamps each
    line with the wall-clock time.  Neither ``-c`` nor ``-w``: with either, ping stops at
    the first "host unreachable" (an ARP that went unanswered); it is ended here."""

    def __init__(self, src: str, ip: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", src, "ping", "-D", "-n", "-i",
                                      "0.005", ip], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.at: float | None = None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("[") and "bytes from" in line:
                self.at = float(line[1:line.index("]")])
                self.proc.terminate()
                break

    def answered_at(self) -> float | None:
        """The wall-clock time of the first answer, or None (after 20 s)."""
        self._thread.join(20)
        self.proc.kill()
        self.proc.wait()
        return self.at


def lease(cloud: Cloud, vm: Vm, data: Path) -> tuple[str, float]:
    """(address, seconds) of a DHCP lease taken now; the address is not applied."""
    script, result = data / "udhcpc.sh", data / f"lease-{vm.port['id']}"
    if not script.exists():
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
    started = time.monotonic()
    ns_run(vm.ns, "busybox", "udhcpc", "-q", "-n", "-i", "eth0", "-s", str(script), "-t", "3",
           "-T", "1", "-A", "1", check=False, env={"BENCH_LEASE": str(result)})
    took = time.monotonic() - started
    address = result.read_text().strip() if result.exists() else ""
    result.unlink(missing_ok=True)
    return address, took


# -- kernel state ------------------------------------------------------------------------------

def _stable(obj: Any) -> Any:
    """``ip -d -j`` output without what the kernel changes on its own: the bridge
    timers, and an IPv6 address's ``tentative`` flag, which DAD clears a second or two
    after the address appears (a short run can snapshot a new DHCP port inside that)."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items()
                if not k.endswith("_timer") and k != "tentative"}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def kernel_state(hostns: str, agent_dir: Path) -> dict[str, str]:
    """What a pass that changes nothing must leave byte-identical."""
    state = {
        "host links": json.dumps(_stable(json.loads(
            ns_run(hostns, "ip", "-d", "-j", "link", "show").stdout)), indent=1),
        "host nft ruleset": ns_run(hostns, "nft", "-a", "list", "ruleset").stdout,
    }
    for d in sorted((agent_dir / "dhcp").iterdir()):
        ns = names.dhcp_namespace(d.name)
        state[f"{ns} addresses"] = json.dumps(_stable(json.loads(
            ns_run(ns, "ip", "-d", "-j", "addr", "show").stdout)), indent=1)
        for f in sorted(d.iterdir()):
            st = f.stat()
            # a rewrite changes inode and mtime; a SIGHUP makes dnsmasq log a "read ..."
            meta = f"inode {st.st_ino} mtime {st.st_mtime_ns} size {st.st_size}"
            state[f"{d.name}/{f.name}"] = meta if f.name in ("log", "leases") \
                else f"{meta}\n{f.read_text()}"
        pid = (d / "pid").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        state[f"{d.name} dnsmasq"] = f"pid {pid} started {stat[19]} " \
            f"{Path(f'/proc/{pid}/cmdline').read_bytes()!r}"
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# -- the phases --------------------------------------------------------------------------------

@dataclass
class Results:
    active: list[float] = field(default_factory=list)
    ping: list[float] = field(default_factory=list)
    plug: list[float] = field(default_factory=list)
    dhcp: list[float] = field(default_factory=list)
    resync: list[dict[str, Any]] = field(default_factory=list)
    restart: dict[str, Any] = field(default_factory=dict)
    rules: list[float] = field(default_factory=list)
    burst: list[float] = field(default_factory=list)
    burst_all: float = 0.0
    failures: list[str] = field(default_factory=list)


def boot_timed(cloud: Cloud, prober: Vm, data: Path, res: Results, i: int, n: int) -> Vm:
    started, wall = time.monotonic(), time.time()
    port = cloud.create_port()
    ping = Pinger(prober.ns, port["fixed_ips"][0]["ip_address"])
    plug_start = time.monotonic()
    vm = cloud.plug(port)
    res.plug.append(time.monotonic() - plug_start)
    deadline = started + 30
    while cloud.status(port["id"]) != "ACTIVE":
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port['id']} not ACTIVE after 30 s")
        time.sleep(0.01)
    res.active.append(time.monotonic() - started)
    at = ping.answered_at()
    if at is None:
        res.failures.append(f"instance {vm.ip} never answered a ping: {ping.lines[-3:]}")
    else:
        res.ping.append(at - wall)
    address, took = lease(cloud, vm, data)
    if address != vm.ip:
        res.failures.append(f"instance {vm.ip}: DHCP gave {address or 'nothing'}")
    elif took >= 1.0:  # udhcpc sends its next DISCOVER after 1 s
        res.failures.append(f"instance {vm.ip}: DHCP answered only a later DISCOVER")
    res.dhcp.append(took)
    log(f"instance {i + 1}/{n} {vm.ip}: ACTIVE {res.active[-1] * 1000:.0f} ms, ping "
        f"{(at - wall) * 1000 if at else float('nan'):.0f} ms, plug {res.plug[-1] * 1000:.0f}"
        f" ms, DHCP {took * 1000:.0f} ms")
    return vm


def resyncs(c: Child, hostns: str, agent_dir: Path, count: int, res: Results) -> None:
    for i in range(count):
        before = kernel_state(hostns, agent_dir)
        reply = c.ask("resync")
        diff = changes(before, kernel_state(hostns, agent_dir))
        reply["changed"] = diff
        res.resync.append(reply)
        if reply["planned"] and sum(reply["planned"].values()):
            res.failures.append(f"resync {i + 1} planned steps: {reply['planned']}")
        if diff:
            res.failures.append(f"resync {i + 1} changed the kernel state: {diff}")
        log(f"full resync {i + 1}/{count}: pass {reply['seconds'] * 1000:.0f} ms (wall "
            f"{reply['wall'] * 1000:.0f} ms), planned {reply['planned']}, changed {diff}")


def sg_rules(cloud: Cloud, prober: Vm, target: Vm, group: str, count: int,
             res: Results) -> None:
    ports = [2000 + i for i in range(count)]
    listener = subprocess.Popen(["ip", "netns", "exec", target.ns, sys.executable, "-c",
                                 LISTENER, *map(str, ports)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        for i, port in enumerate(ports):
            probe = subprocess.Popen(["ip", "netns", "exec", prober.ns, sys.executable, "-c",
                                      CONNECTOR, target.ip, str(port)],
                                     stdout=subprocess.PIPE, text=True)
            assert probe.stdout is not None
            first = probe.stdout.readline().strip()
            if first != "ready":
                probe.kill()
                raise RuntimeError(f"tcp {port} to the target was open before its rule")
            started = time.monotonic()
            cloud.client.json("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
                "protocol": "tcp", "port_range_min": port, "port_range_max": port}},
                expect=201)
            line = probe.stdout.readline().strip()
            probe.wait(30)
            if not line:
                res.failures.append(f"tcp {port}: never got through after its rule")
                continue
            res.rules.append(float(line) - started)
            log(f"rule {i + 1}/{count} tcp {port}: enforced after "
                f"{res.rules[-1] * 1000:.0f} ms")
    finally:
        listener.kill()
        listener.wait()


def burst(cloud: Cloud, count: int, res: Results) -> list[Vm]:
    started: dict[str, float] = {}
    ports = []
    for _ in range(count):
        t = time.monotonic()
        port = cloud.create_port()
        started[port["id"]] = t
        ports.append(port)
    vms = [cloud.plug(p) for p in ports]
    log(f"burst: {count} ports created and plugged in "
        f"{time.monotonic() - min(started.values()):.2f} s")
    active: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(active) < count and time.monotonic() < deadline:
        listed = cloud.client.json("GET", f"/v2.0/ports?network_id={cloud.network}"
                                   "&fields=id&fields=status")["ports"]
        now = time.monotonic()
        for p in listed:
            if p["id"] in started and p["status"] == "ACTIVE" and p["id"] not in active:
                active[p["id"]] = now - started[p["id"]]
        time.sleep(0.02)
    if len(active) < count:
        res.failures.append(f"burst: {count - len(active)} ports never ACTIVE")
    res.burst = list(active.values())
    res.burst_all = max(started[p] + t for p, t in active.items()) - min(started.values()) \
        if active else float("nan")
    return vms


_MAIN_PID = os.getpid()


def _interrupted(*_: object) -> None:
    if os.getpid() != _MAIN_PID:
        os._exit(143)  # a fork (pyroute2 opens sockets in namespaces so): end it as usual
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the finally clauses undo everything


# -- the run ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve(int(argv[1]), Path(argv[2]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=100, help="instances to boot (100)")
    p.add_argument("--rules", type=int, default=20, help="security-group rules to time (20)")
    p.add_argument("--resyncs", type=int, default=5, help="full resyncs to time (5)")
    p.add_argument("--no-burst", action="store_true", help="skip the burst phase")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        log("instances_bench needs root: it makes namespaces, bridges and instances")
        return 2
    for tool in ("ip", "nft", "dnsmasq", "ping", "busybox", "conntrack"):
        if shutil.which(tool) is None:
            log(f"instances_bench needs {tool}: scripts/install-system-packages.sh")
            return 2
    signal.signal(signal.SIGTERM, _interrupted)
    data = Path(tempfile.mkdtemp(prefix="nt-bench-"))
    data.chmod(0o755)
    agent_dir = data / "agent"
    with made_namespaces() as made:
        try:
            hostns = new_ns(made)
            host = f"bench-{hostns}"
            env = {"NEUTRINO_AGENT_NETNS": hostns, "NEUTRINO_AGENT_HOST": host,
                   "NEUTRINO_AGENT_STATE_DIR": str(agent_dir),
                   "NEUTRINO_AGENT_REPORT_INTERVAL": "1"}
            with (data / "server.log").open("wb") as logfile:
                try:
                    return run(args, data, made, hostns, host, env, logfile)
                except BaseException:
                    logfile.flush()
                    log("server log (tail):\n" + (data / "server.log").read_text(
                        errors="replace")[-3000:])
                    raise
        finally:
            if (agent_dir / "dhcp").exists():
                for entry in (agent_dir / "dhcp").iterdir():
                    remove_ns(names.dhcp_namespace(entry.name))
            shutil.rmtree(data, ignore_errors=True)


def run(args: argparse.Namespace, data: Path, made: list[str], hostns: str, host: str,
        env: dict[str, str], logfile: IO[bytes]) -> int:
    res = Results()
    load_before = os.getloadavg()
    with child(data / "db", env, logfile) as c:
        first = c.read()
        log(f"server + agent (pid {c.proc.pid}), data plane in netns {hostns}; first pass "
            f"{first['seconds'] * 1000:.0f} ms")
        client = Client(c.url)
        unlimited_quotas(c.url)
        wait(lambda: sum(a["alive"] for a in client.json("GET", "/v2.0/agents")["agents"])
             >= 2, 30, "the agents")
        net = client.json("POST", "/v2.0/networks", {"network": {"name": "bench"}},
                          expect=201)["network"]
        client.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": CIDR, "ip_version": 4}}, expect=201)
        cloud = Cloud(client, made, hostns, host, net["id"], net["mtu"])
        agent_dir = Path(env["NEUTRINO_AGENT_STATE_DIR"])
        wait(lambda: any((agent_dir / "dhcp").glob("*/pid")), 30, "the DHCP server")
        group = client.json("POST", "/v2.0/security-groups", {"security_group": {
            "name": "bench-rules"}}, expect=201)["security_group"]["id"]
        prober = cloud.plug(cloud.create_port(name="prober"))
        target = cloud.plug(cloud.create_port(name="target", security_groups=[group]))
        # the prober re-sends ARP every 10 ms, not every second: a new instance is
        # reachable as soon as the data plane lets it be
        ns_run(prober.ns, "sysctl", "-qw", "net.ipv4.neigh.eth0.retrans_time_ms=10")
        for vm in (prober, target):
            wait(lambda vm=vm: cloud.status(vm.port["id"]) == "ACTIVE", 30, "warm-up ports")

        vms = [boot_timed(cloud, prober, data, res, i, args.instances)
               for i in range(args.instances)]
        resyncs(c, hostns, agent_dir, args.resyncs, res)
        before = kernel_state(hostns, agent_dir)
        client.close()
    # the data plane stays while no agent runs; a new process resyncs it
    with child(data / "db", env, logfile) as c:
        first = c.read()
        log(f"server + agent restarted (pid {c.proc.pid})")
        diff = changes(before, kernel_state(hostns, agent_dir))
        res.restart = {**first, "since_spawn": first["at"] - c.spawned, "changed": diff}
        log(f"restart: first full pass done {res.restart['since_spawn']:.2f} s after the "
            f"spawn (pass {first['seconds'] * 1000:.0f} ms), planned {first['planned']}, "
            f"changed {diff}")
        if sum(first["planned"].values()) or diff:
            res.failures.append(f"the restart changed something: {first['planned']} {diff}")
        client = Client(c.url)
        cloud.client = client
        sg_rules(cloud, prober, target, group, args.rules, res)
        if not args.no_burst:
            for vm in vms:
                cloud.unplug(vm)
            c.ask("settle")  # the teardown's passes are done before the burst
            log(f"burst: {args.instances} instances deleted, the agent settled")
            burst(cloud, args.instances, res)
        client.close()
    report(args, res, load_before, os.getloadavg())
    return 1 if res.failures or not met(res) else 0


def met(res: Results) -> bool:
    return bool(res.active) and percentile(res.active, 99) * 1000 < ACTIVE_P99_MS \
        and bool(res.resync) and max(r["seconds"] for r in res.resync) < RESYNC_S


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"{statistics.median(values) * 1000:.0f} / {percentile(values, 99) * 1000:.0f} / "
            f"{max(values) * 1000:.0f}")


def report(args: argparse.Namespace, res: Results, load_before: tuple[float, ...],
           load_after: tuple[float, ...]) -> None:
    n = args.instances
    active_p99 = percentile(res.active, 99) * 1000 if res.active else float("nan")
    resync = [r["seconds"] for r in res.resync]
    resync_max = max(resync) if resync else float("nan")
    steps = sum(sum(r["planned"].values()) for r in res.resync)
    identical = all(not r["changed"] for r in res.resync)
    rows = [
        (f"port create -> ACTIVE, {n} sequential (p50 / p99 / max ms)", _ms(res.active),
         f"p99 < {ACTIVE_P99_MS:.0f}", "yes" if active_p99 < ACTIVE_P99_MS else "NO"),
        ("port create -> first answered ping (p50 / p99 / max ms)", _ms(res.ping), "-", ""),
        ("  of which the plug, namespace + veth (p50 / p99 / max ms)", _ms(res.plug), "-", ""),
        ("DHCP lease once ACTIVE (p50 / p99 / max ms)", _ms(res.dhcp), "-", ""),
        (f"full resync of {n + 3} unchanged ports, pass (median / max ms)",
         f"{statistics.median(resync) * 1000:.0f} / {resync_max * 1000:.0f}" if resync else "-",
         f"< {RESYNC_S * 1000:.0f}", "yes" if resync_max < RESYNC_S else "NO"),
        (f"  steps planned over {len(resync)} resyncs; kernel state identical",
         f"{steps}; {'yes' if identical else 'NO'}", "0; yes",
         "yes" if not steps and identical else "NO"),
        ("restart: new process -> first full pass done (s)",
         f"{res.restart.get('since_spawn', float('nan')):.2f}", "-", ""),
        ("  that pass (ms); steps; kernel state identical",
         f"{res.restart.get('seconds', float('nan')) * 1000:.0f}; "
         f"{sum(res.restart.get('planned', {}).values())}; "
         f"{'yes' if not res.restart.get('changed', True) else 'NO'}", "-; 0; yes", ""),
        (f"SG rule create -> enforced, {len(res.rules)} rules (median / max ms)",
         f"{statistics.median(res.rules) * 1000:.0f} / {max(res.rules) * 1000:.0f}"
         if res.rules else "-", "-", ""),
    ]
    if res.burst:
        rows.append((f"burst: {n} ports created, then plugged -> ACTIVE (p50 / p99 / max ms)",
                     _ms(res.burst), "-", ""))
        rows.append(("  first POST -> last port ACTIVE (s)", f"{res.burst_all:.2f}", "-", ""))
    head = ("measure", "value", "target", "met?")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in rows]
    print(f"\n## Instances on the data plane (bench/instances_bench.py)\n\n"
          f"Machine: {machine()}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after.\n\n" + "\n".join(lines))
    if res.resync:
        planned = res.resync[-1]["planned"]
        print(f"\nlast resync's plan per reconciler: {planned}")
    for f in res.failures:
        print(f"FAILED: {f}")


if __name__ == "__main__":
    sys.exit(main())
