"""The one rtnetlink handle every netlink module uses, and its errors.

No state is kept between calls (no IPDB-style mirror of the kernel): each public call
of :mod:`namespaces`, :mod:`links`, :mod:`vlans`, :mod:`addresses`, :mod:`routes`,
:mod:`fdb` and :mod:`neighbours` opens one socket in the namespace (``handle``), does
its work and closes it; pyroute2's errors never leave this package (``kernel_error``).
Internal to ``neutrino.linux``: the agent calls the modules named above.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.linux import rtnl
from neutrino.linux.errors import KernelError, NamespaceNotFound

NETNS_DIR = "/run/netns"
AF = {4: 2, 6: 10}  # AF_INET, AF_INET6


def kernel_error(what: str, exc: NetlinkError) -> KernelError:
    return KernelError(what, exc.code, os.strerror(exc.code) if exc.code else str(exc))



def ns_path(name: str) -> str:
    assert name and "/" not in name, f"bad namespace name {name!r}"
    return os.path.join(NETNS_DIR, name)


def namespace_exists(name: str) -> bool:
    # A namespace is a bind mount of nsfs; a plain file left by a crash is not one.
    return os.path.ismount(ns_path(name))



@contextmanager
def handle(netns: str | None) -> Iterator[IPRoute]:
    """One rtnetlink socket in ``netns`` for the duration of one public call."""
    if netns is not None and not namespace_exists(netns):
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist")
    # opened with this thread inside the namespace: IPRoute(netns=) would fork the
    # process for it (tens of ms in an agent that shares it with the API server)
    with rtnl.entered(netns):
        ipr = IPRoute()
    try:
        yield ipr
    except NetlinkError as exc:
        # Callers see our errors only, never pyroute2's.
        raise kernel_error(f"netlink request{f' in netns {netns}' if netns else ''}", exc) \
            from exc
    finally:
        ipr.close()



def index_of(ipr: IPRoute, name: str, what: str) -> int:
    # RTM_GETLINK by name: link_lookup dumps (and decodes) every link to find one
    try:
        return int(ipr.link("get", ifname=name)[0]["index"])
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            raise KernelError(f"{what}: no link {name!r}", errno.ENODEV,
                              "No such device") from exc
        raise



def ip_text(ip: str) -> str:
    return str(ipaddress.ip_address(ip))

