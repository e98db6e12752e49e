"""Fixtures for the data-plane suite: real namespaces, links, nftables, daemons.

Everything a test makes lives in network namespaces it creates (``nt-test-<hex>``);
traffic never leaves them and the host's own namespace is only ever read.  The
finalizers stop every process left in those namespaces and delete the namespaces,
which takes their links, addresses, routes and nft tables with them, whether the
test passed or not.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from neutrino import names
from neutrino.linux import addressing, devices, namespaces, nft, process, routing, sysctl
from neutrino.linux.run import run


def need(*tools: str) -> None:
    """Skip the calling test unless we are root and ``tools`` are installed."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces")
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: not installed")


def new_id() -> str:
    """A fresh UUID, as the API would give a network, port or router."""
    return str(uuid.uuid4())


def _host_state() -> dict[str, object]:
    """What the tests must never change in the host's own namespace (read only)."""
    links = devices.list_links()
    return {
        "links": links,
        "addresses": {link.name: addressing.list_addresses(link.name) for link in links},
        "routes": routing.list_routes(),
        "nft": nft.list_tables() if shutil.which("nft") else None,
        "forwarding": sysctl.get("net.ipv4.ip_forward"),
        "namespaces": [n for n in namespaces.list_namespaces() if not n.startswith("nt-test-")],
    }


@pytest.fixture(scope="session", autouse=True)
def host_untouched() -> Iterator[None]:
    """Fail the session if the host's namespace changed or a test namespace leaked."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        yield
        return
    ours_before = {n for n in namespaces.list_namespaces() if n.startswith("nt-test-")}
    before = _host_state()
    yield
    assert _host_state() == before, "a data-plane test changed the host's own namespace"
    leaked = {n for n in namespaces.list_namespaces() if n.startswith("nt-test-")} - ours_before
    assert not leaked, f"test namespaces left behind: {sorted(leaked)}"


@pytest.fixture
def make_ns() -> Iterator[Callable[[], str]]:
    """``make_ns()`` -> the name of a fresh namespace, removed at teardown."""
    need()
    made: list[str] = []

    def make() -> str:
        name = f"nt-test-{uuid.uuid4().hex[:10]}"
        made.append(name)  # before creating: a half-made one is cleaned up too
        assert namespaces.ensure_namespace(name)
        return name

    yield make
    errors = []
    for name in reversed(made):
        try:
            for pid in process.namespace_pids(name):
                process.terminate(pid, timeout=2)
            namespaces.delete_namespace(name)
        except Exception as exc:  # keep cleaning the others
            errors.append(f"{name}: {exc}")
    assert not errors, f"cleanup failed: {errors}"


def ping(netns: str, address: str, *, expect: bool = True) -> bool:
    """Ping from ``netns``.  When success is expected, retry a little (ARP, links
    coming up); when failure is expected, give it one short chance to answer."""
    if expect:
        for _ in range(3):
            if run(["ping", "-c", "1", "-W", "2", address], netns=netns, check=False).ok:
                return True
        return False
    return run(["ping", "-c", "2", "-i", "0.2", "-W", "1", address], netns=netns,
               check=False).ok


@dataclass
class Lan:
    """Two instance namespaces on one bridge in a third, like VMs on a hypervisor."""

    hub: str
    bridge: str
    a: str
    b: str
    ip_a: str
    ip_b: str


def plug(hub: str, bridge: str, instance: str, cidr: str, port_id: str | None = None) -> str:
    """Plug ``instance`` into ``bridge`` like Nova would: tap on the bridge, eth0 inside."""
    tap = names.tap(port_id or new_id())
    devices.ensure_veth(tap, "eth0", netns=hub, peer_netns=instance)
    devices.set_link(tap, master=bridge, netns=hub)
    addressing.ensure_addresses("eth0", [cidr], netns=instance)
    return tap


@pytest.fixture
def lan(make_ns: Callable[[], str]) -> Lan:
    need("ping")
    hub, a, b = make_ns(), make_ns(), make_ns()
    bridge = names.bridge(new_id())
    devices.ensure_bridge(bridge, netns=hub)
    plug(hub, bridge, a, "10.77.0.1/24")
    plug(hub, bridge, b, "10.77.0.2/24")
    return Lan(hub, bridge, a, b, "10.77.0.1", "10.77.0.2")
