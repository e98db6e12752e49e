"""Unicast routes of a routing table: listed, the default route, and the routes we
add (proto ``static``, so pruning ours never removes one the kernel made)."""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.linux.ipr import AF, handle, index_of, ip_text, kernel_error

MAIN_TABLE = 254
# Routes we add carry proto "static"; connected routes are the kernel's ("kernel"),
# so pruning our routes can never remove one the kernel made.
RTPROT_STATIC = 4


@dataclass(frozen=True)
class Route:
    """One route: ``dst`` as a CIDR (``default`` accepted), optional gateway and
    device.  ``proto`` is what the kernel reports and does not take part in equality."""

    dst: str
    gateway: str | None = None
    dev: str | None = None
    proto: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dst", _network(self.dst, self.gateway))
        if self.gateway is not None:
            object.__setattr__(self, "gateway", ip_text(self.gateway))

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.dst).version

    @property
    def is_default(self) -> bool:
        return ipaddress.ip_network(self.dst).prefixlen == 0


def _network(dst: str, gateway: str | None) -> str:
    if dst == "default":
        return "::/0" if gateway and ":" in gateway else "0.0.0.0/0"
    return str(ipaddress.ip_network(dst, strict=False))


def routes_of(ipr: IPRoute, family: int | None, table: int,
              dev: str | None = None) -> list[Route]:
    """The unicast routes of ``table``; with ``dev``, only those through it (and then
    no link dump: pyroute2 decodes every link of one at ~0.3 ms a link)."""
    if dev is None:
        names = {m["index"]: m.get("ifname") for m in ipr.link("dump")}
    else:
        names = {index_of(ipr, dev, "listing routes"): dev}
    found = []
    for version in (family,) if family else (4, 6):
        for msg in ipr.route("dump", family=AF[version], table=table):
            if msg["type"] != 1:  # unicast only: not local, broadcast, multicast…
                continue
            oif = msg.get("oif")
            if dev is not None and oif not in names:
                continue
            dst = msg.get("dst") or ("::" if version == 6 else "0.0.0.0")
            found.append(Route(f"{dst}/{msg['dst_len']}", gateway=msg.get("gateway"),
                               dev=names.get(oif) if oif else None, proto=msg["proto"]))
    return found


def list_routes(netns: str | None = None, *, family: int | None = None,
                table: int = MAIN_TABLE, dev: str | None = None) -> list[Route]:
    """Unicast routes of one table (main by default), IPv4 and IPv6 unless ``family``;
    only those through ``dev`` when given (cheap enough to poll)."""
    with handle(netns) as ipr:
        return routes_of(ipr, family, table, dev)


def _replace_route(ipr: IPRoute, route: Route, table: int) -> None:
    attrs: dict[str, Any] = {"dst": route.dst, "table": table, "proto": RTPROT_STATIC,
                             "family": AF[route.version]}
    if route.gateway:
        attrs["gateway"] = route.gateway
    if route.dev:
        attrs["oif"] = index_of(ipr, route.dev, f"route to {route.dst}")
    try:
        ipr.route("replace", **attrs)
    except NetlinkError as exc:
        raise kernel_error(f"route to {route.dst} via {route.gateway or route.dev}", exc) \
            from exc


def _delete_route(ipr: IPRoute, route: Route, table: int) -> bool:
    try:
        ipr.route("del", dst=route.dst, table=table, family=AF[route.version])
    except NetlinkError as exc:
        if exc.code == errno.ESRCH:
            return False
        raise kernel_error(f"deleting route to {route.dst}", exc) from exc
    return True


def ensure_default_route(gateway: str, *, dev: str | None = None, netns: str | None = None,
                         table: int = MAIN_TABLE) -> bool:
    """The default route of the gateway's family goes via ``gateway``."""
    want = Route("default", gateway=gateway, dev=dev)
    with handle(netns) as ipr:
        have = [r for r in routes_of(ipr, want.version, table) if r.is_default]
        if have == [want] or (dev is None and len(have) == 1 and have[0].gateway == want.gateway):
            return False
        _replace_route(ipr, want, table)
        return True


def delete_default_route(*, family: int = 4, netns: str | None = None,
                         table: int = MAIN_TABLE) -> bool:
    with handle(netns) as ipr:
        removed = False
        for route in [r for r in routes_of(ipr, family, table) if r.is_default]:
            removed = _delete_route(ipr, route, table) or removed
        return removed


def ensure_routes(routes: Iterable[Route], *, netns: str | None = None, prune: bool = True,
                  table: int = MAIN_TABLE) -> bool:
    """Add or fix each route (one route per destination).  With ``prune``, also remove
    the other non-default routes we added earlier (proto static) in the families
    given; the default route belongs to ``ensure_default_route`` and connected
    routes to the kernel, so neither is touched."""
    want = {r.dst: r for r in routes}
    assert not any(r.is_default for r in want.values()), "use ensure_default_route"
    with handle(netns) as ipr:
        have = routes_of(ipr, None, table)
        by_dst = {r.dst: r for r in have}
        changed = False
        for dst, route in want.items():
            current = by_dst.get(dst)
            if current is None or current.gateway != route.gateway or \
                    (route.dev is not None and current.dev != route.dev):
                _replace_route(ipr, route, table)
                changed = True
        if prune:
            families = {r.version for r in want.values()} or {4, 6}
            for route in have:
                if (route.proto == RTPROT_STATIC and not route.is_default
                        and route.dst not in want and route.version in families):
                    changed = _delete_route(ipr, route, table) or changed
        return changed

