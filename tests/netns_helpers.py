"""Network namespaces as the data-plane and end-to-end tests use them (root only).

Tiny TCP servers and clients run inside namespaces, a namespace stands for a machine
"outside" on the external bridge, and whatever a test made is removed by name.
Shared by tests/dataplane (L3 fixtures) and tests/e2e (``neutrino up`` with L3).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from neutrino.linux import addressing, devices, namespaces, process
from neutrino.linux.run import run

#: a TCP server that tells who it is and who called: ``<name> <peer address>``
SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    try:
        c.sendall(f"{sys.argv[2]} {peer[0]}\n".encode())
    finally:
        c.close()
"""
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
print(s.makefile().readline().strip())
"""


def serve(ns: str, port: int, name: str) -> subprocess.Popen:
    """A TCP server in ``ns``, listening once this returns (it ends with the
    namespace's processes at teardown)."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER,
                             str(port), name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    return proc


def call(ns: str, ip: str, port: int, timeout: float = 2.0) -> str | None:
    """Connect from ``ns``: the server's line, or None if nothing answered."""
    done = run([sys.executable, "-c", CLIENT, ip, str(port), str(timeout)], netns=ns,
               check=False, timeout=timeout + 10)
    return done.stdout.strip() if done.ok else None


def plug_outside(ns: str, hostns: str, ip: str, mac: str | None = None,
                 bridge: str = "br-ex") -> None:
    """Make ``ns`` a machine on ``bridge`` (in the "hypervisor" ``hostns``): its
    ``eth0`` holds ``ip``/24 (and ``mac``: the address of the port reserving ``ip``)."""
    dev = f"out{uuid.uuid4().hex[:8]}"  # not a tap: the agent leaves it on the bridge
    devices.ensure_veth(dev, "eth0", netns=hostns, peer_netns=ns)
    devices.set_link(dev, master=bridge, up=True, netns=hostns)
    addressing.ensure_addresses("eth0", [f"{ip}/24"], netns=ns)
    devices.set_link("eth0", mac=mac, up=True, netns=ns)


def remove_namespace(ns: str) -> None:
    """End the namespace's processes (dnsmasq, test servers), then remove it."""
    for pid in process.namespace_pids(ns):
        process.terminate(pid, timeout=2)
    namespaces.delete_namespace(ns)


def names_in(directory: Path) -> set[str]:
    """The names in an agent's state directory (one per router or network it made)."""
    return {p.name for p in directory.iterdir()} if directory.exists() else set()
