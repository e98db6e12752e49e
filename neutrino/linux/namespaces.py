"""Network namespaces: listed, made (with ``lo`` up) and removed by name, and a whole
namespace's links, addresses and routes read at once (``view``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyroute2 import netns as _netns

from neutrino.linux.addressing import sorted_addresses
from neutrino.linux.devices import Link, dump_links, set_link
from neutrino.linux.ipr import NETNS_DIR, handle, namespace_exists, ns_path
from neutrino.linux.routing import MAIN_TABLE, Route, routes_of


def list_namespaces() -> list[str]:
    return sorted(n for n in _netns.listnetns(NETNS_DIR) if namespace_exists(n))


def ensure_namespace(name: str) -> bool:
    """Create the namespace (with ``lo`` up, as upstream does) unless it exists."""
    if namespace_exists(name):
        return False
    path = ns_path(name)
    if os.path.exists(path):
        os.unlink(path)  # stale mount point from a crashed `ip netns add`
    try:
        _netns.create(name)
    except FileExistsError:
        return False  # someone created it between our check and now
    set_link("lo", up=True, netns=name)
    return True


def delete_namespace(name: str) -> bool:
    """Remove the namespace's name.  Links in it die with it once no process holds
    it, so stop its daemons first."""
    path = ns_path(name)
    if not os.path.exists(path):
        return False
    try:
        _netns.remove(name)
    except FileNotFoundError:
        return False
    return True



@dataclass(frozen=True)
class NamespaceView:
    links: list[Link]
    #: link name -> its addresses (``ip/prefixlen``), IPv4 first
    addresses: dict[str, list[str]]
    routes: list[Route]  # the main table's unicast routes


def view(netns: str | None = None) -> NamespaceView:
    """Links, addresses and the main table's routes over one socket: a reconciler that
    looks at a whole namespace pays for one netlink socket, not one per link (in another
    namespace each costs a fork)."""
    with handle(netns) as ipr:
        links = dump_links(ipr)
        names = {lk.index: lk.name for lk in links}
        found: dict[str, set[str]] = {}
        for msg in ipr.addr("dump"):
            name = names.get(msg["index"])
            if name is not None:
                found.setdefault(name, set()).add(f"{msg.get('address')}/{msg['prefixlen']}")
        routes = routes_of(ipr, None, MAIN_TABLE)
    addresses = {name: sorted_addresses(a) for name, a in found.items()}
    return NamespaceView(links, addresses, routes)

