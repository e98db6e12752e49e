"""Raw rtnetlink for the agent's hot paths, beside pyroute2 (``netlink``).

A host with a hundred instances has a few hundred links, and the agent looks at them
on every pass.  Two costs of pyroute2 dominated that (bench/instances_bench.py):

- ``IPRoute(netns=...)`` forks the whole process to open a socket in another
  namespace: tens of milliseconds in an agent that shares its process with the API
  server.  :func:`entered` instead moves only the calling thread into the namespace
  (setns(2) is per thread) while the socket is opened; a socket stays in the namespace
  it was opened in.
- decoding a link dump: pyroute2 decodes every attribute of every link (statistics,
  per-family settings, ...), ~0.4 ms a link.  :func:`dump_links` asks the kernel to
  leave the statistics out and reads only the attributes ``netlink`` looks at, into
  dicts keyed like pyroute2's messages (``msg["index"]``, ``msg.get("ifname")``,
  ``msg.get("linkinfo").get("data").get("vxlan_id")``), so ``netlink._link`` reads
  either.  Likewise :func:`fdb` has the kernel dump one device's forwarding entries,
  not the whole table (where every bridge port has a few).

:class:`LinkWatch` is the same parser on a socket subscribed to link events, for
waiting on a tap to appear instead of listing links over and over.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from neutrino.linux.errors import KernelError, LinuxError, NamespaceNotFound

NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFINFO = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
_RTA = struct.Struct("=HH")  # length, type
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_RTM_NEWLINK, _RTM_DELLINK, _RTM_GETLINK = 16, 17, 18
_RTM_NEWNEIGH, _RTM_GETNEIGH = 28, 30
_NDMSG = struct.Struct("=BxxxiHBB")  # family, (pads), ifindex, state, flags, type
_SOL_NETLINK, _NETLINK_GET_STRICT_CHK = 270, 12
_IFLA_IFNAME = 3
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_DUMP = 0x1, 0x4, 0x300
_IFLA_EXT_MASK = 29
_RTEXT_FILTER_SKIP_STATS = 1 << 3
_RTMGRP_LINK = 0x1
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER


# --- namespaces -------------------------------------------------------------------------

def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise LinuxError(f"setns into {what}: {os.strerror(code)} (errno {code})")


@contextmanager
def entered(netns: str | None) -> Iterator[None]:
    """The calling thread in network namespace ``netns`` for the block (None: stay).
    Only this thread moves; sockets opened in the block stay in ``netns``."""
    if netns is None:
        yield
        return
    assert netns and "/" not in netns, f"bad namespace name {netns!r}"
    try:
        target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist") from None
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(target, f"namespace {netns}")
            except LinuxError:
                # a plain file left where a namespace was (not an nsfs mount)
                raise NamespaceNotFound(f"network namespace {netns!r} does not exist") \
                    from None
            try:
                yield
            finally:
                # cannot fail in practice (our own namespace, with the rights we had);
                # if it did, this thread must not go on acting in the wrong namespace
                _setns(home, "this thread's own namespace")
        finally:
            os.close(home)
    finally:
        os.close(target)


def _socket(netns: str | None, groups: int = 0) -> socket.socket:
    with entered(netns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             socket.NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        # requests are checked strictly, and the kernel then filters dumps by their header
        sock.setsockopt(_SOL_NETLINK, _NETLINK_GET_STRICT_CHK, 1)
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


# --- parsing ------------------------------------------------------------------------------

def _attrs(data: bytes | memoryview, start: int, end: int) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    while start + 4 <= end:
        length, kind = _RTA.unpack_from(data, start)
        if length < 4:
            break
        yield kind & _NLA_TYPE_MASK, view[start + 4:start + length]
        start += (length + 3) & ~3


def _str(v: memoryview) -> str:
    return bytes(v).split(b"\0", 1)[0].decode()


def _u8(v: memoryview) -> int:
    return v[0]


def _u16(v: memoryview) -> int:
    return int(struct.unpack_from("=H", v)[0])


def _u32(v: memoryview) -> int:
    return int(struct.unpack_from("=I", v)[0])


def _s32(v: memoryview) -> int:
    return int(struct.unpack_from("=i", v)[0])


def _be16(v: memoryview) -> int:
    return int(struct.unpack_from("!H", v)[0])


def _mac(v: memoryview) -> str:
    return ":".join(f"{b:02x}" for b in bytes(v))


def _ip4(v: memoryview) -> str:
    return socket.inet_ntop(socket.AF_INET, bytes(v))


def _ip6(v: memoryview) -> str:
    return socket.inet_ntop(socket.AF_INET6, bytes(v))


Parser = Callable[[memoryview], Any]
#: IFLA_* read, under pyroute2's names
_LINK_ATTRS: dict[int, tuple[str, Parser]] = {
    1: ("address", _mac), 2: ("broadcast", _mac), 3: ("ifname", _str), 4: ("mtu", _u32),
    5: ("link", _u32), 6: ("qdisc", _str), 10: ("master", _u32), 13: ("txqlen", _u32),
    20: ("ifalias", _str), 27: ("group", _u32), 33: ("carrier", _u8),
    37: ("link_netnsid", _s32), 50: ("min_mtu", _u32), 51: ("max_mtu", _u32),
}
#: IFLA_INFO_DATA of the kinds ``netlink`` reads, under pyroute2's names
_INFO_DATA: dict[str, dict[int, tuple[str, Parser]]] = {
    "vxlan": {1: ("vxlan_id", _u32), 2: ("vxlan_group", _ip4), 3: ("vxlan_link", _u32),
              4: ("vxlan_local", _ip4), 5: ("vxlan_ttl", _u8), 7: ("vxlan_learning", _u8),
              15: ("vxlan_port", _be16), 16: ("vxlan_group6", _ip6),
              17: ("vxlan_local6", _ip6)},
    "vlan": {1: ("vlan_id", _u16), 5: ("vlan_protocol", _be16)},
}


def _linkinfo(v: memoryview) -> dict[str, Any]:
    info: dict[str, Any] = {}
    data = None
    for kind, value in _attrs(v, 0, len(v)):
        if kind == 1:  # IFLA_INFO_KIND
            info["kind"] = _str(value)
        elif kind == 2:  # IFLA_INFO_DATA
            data = value
    table = _INFO_DATA.get(info.get("kind", ""))
    if data is not None and table is not None:
        info["data"] = {table[k][0]: table[k][1](x) for k, x in _attrs(data, 0, len(data))
                        if k in table}
    return info


def _link(data: bytes, start: int, end: int) -> dict[str, Any]:
    family, ifi_type, index, flags, change = _IFINFO.unpack_from(data, start)
    msg: dict[str, Any] = {"family": family, "ifi_type": ifi_type, "index": index,
                           "flags": flags, "change": change}
    for kind, value in _attrs(data, start + _IFINFO.size, end):
        if kind == 18:  # IFLA_LINKINFO
            msg["linkinfo"] = _linkinfo(value)
        elif kind in _LINK_ATTRS:
            key, parse = _LINK_ATTRS[kind]
            msg[key] = parse(value)
    return msg


def _messages(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, start of the payload, end) of each netlink message in ``data``."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size:
            break
        yield kind, offset + _NLMSG.size, offset + length
        offset += (length + 3) & ~3


def _request(sock: socket.socket, kind: int, flags: int, body: bytes,
             what: str) -> Iterator[tuple[bytes, int, int, int]]:
    """Send one request; (data, type, start, end) of each message answering it, until
    the dump's end or the request's acknowledgement."""
    sock.send(_NLMSG.pack(_NLMSG.size + len(body), kind, flags, 1, 0) + body)
    while True:
        data = sock.recv(1 << 16)
        for msg_kind, start, end in _messages(data):
            if msg_kind == _NLMSG_DONE:
                return
            if msg_kind == _NLMSG_ERROR:
                code = -_s32(memoryview(data)[start:start + 4])
                if code:
                    raise KernelError(what, code, os.strerror(code))
                return  # the acknowledgement of a request that is not a dump
            yield data, msg_kind, start, end


def _attr(kind: int, payload: bytes) -> bytes:
    return _RTA.pack(_RTA.size + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


# --- links --------------------------------------------------------------------------------

def dump_links(netns: str | None = None) -> list[dict[str, Any]]:
    """Every link of the namespace (RTM_GETLINK dump, statistics left out), as dicts
    keyed like pyroute2's messages."""
    sock = _socket(netns)
    try:
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) \
            + _attr(_IFLA_EXT_MASK, struct.pack("=I", _RTEXT_FILTER_SKIP_STATS))
        return [_link(data, start, end) for data, kind, start, end in _request(
            sock, _RTM_GETLINK, _NLM_F_REQUEST | _NLM_F_DUMP, body, "dumping links")
            if kind == _RTM_NEWLINK]
    finally:
        sock.close()


def _index(sock: socket.socket, name: str) -> int | None:
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(_IFLA_IFNAME, name.encode() + b"\0")
    try:
        # read to the acknowledgement: nothing of this answer may be left for the next
        found = [int(_IFINFO.unpack_from(data, start)[2]) for data, kind, start, _ in _request(
            sock, _RTM_GETLINK, _NLM_F_REQUEST | _NLM_F_ACK, body, f"finding link {name!r}")
            if kind == _RTM_NEWLINK]
    except KernelError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise
    return found[0] if found else None


#: NDA_* read, under pyroute2's names
_NEIGH_ATTRS: dict[int, tuple[str, Parser]] = {
    1: ("dst", lambda v: _ip4(v) if len(v) == 4 else _ip6(v)), 2: ("lladdr", _mac),
    9: ("master", _u32),
}


def fdb(dev: str, netns: str | None = None) -> list[dict[str, Any]] | None:
    """The forwarding entries of device ``dev`` (the bridge's for it as a port, and its
    own, e.g. a VXLAN device's remote VTEPs), keyed like pyroute2's messages; None when
    there is no such device."""
    sock = _socket(netns)
    try:
        index = _index(sock, dev)
        if index is None:
            return None
        body = _NDMSG.pack(socket.AF_BRIDGE, index, 0, 0, 0)
        entries = []
        for data, kind, start, end in _request(sock, _RTM_GETNEIGH,
                                                _NLM_F_REQUEST | _NLM_F_DUMP, body,
                                                f"dumping the FDB of {dev!r}"):
            if kind != _RTM_NEWNEIGH:
                continue
            family, ifindex, state, flags, _ = _NDMSG.unpack_from(data, start)
            if ifindex != index:
                continue
            entry: dict[str, Any] = {"family": family, "ifindex": ifindex, "state": state,
                                     "flags": flags}
            for attr, value in _attrs(data, start + _NDMSG.size, end):
                if attr in _NEIGH_ATTRS:
                    key, parse = _NEIGH_ATTRS[attr]
                    entry[key] = parse(value)
            entries.append(entry)
        return entries
    finally:
        sock.close()


# --- addresses ---------------------------------------------------------------------------

_RTM_NEWADDR, _RTM_GETADDR = 20, 22
_IFADDR = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_IFA_ADDRESS = 1


def addresses(dev: str, netns: str | None = None) -> list[str] | None:
    """The addresses of device ``dev`` as ``ip/prefixlen`` (IFA_ADDRESS, as pyroute2's
    ``address``), the kernel filtering the dump (strict checking, ``ifa_index``): the
    namespace's other addresses are neither sent nor decoded.  None when there is no
    such device."""
    sock = _socket(netns)
    try:
        index = _index(sock, dev)
        if index is None:
            return None
        found = []
        for data, kind, start, end in _request(
                sock, _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP,
                _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, index), f"dumping addresses of {dev!r}"):
            if kind != _RTM_NEWADDR:
                continue
            family, prefixlen, _, _, ifindex = _IFADDR.unpack_from(data, start)
            if ifindex != index:
                continue
            for attr, value in _attrs(data, start + _IFADDR.size, end):
                if attr == _IFA_ADDRESS:
                    ip = _ip4(value) if family == socket.AF_INET else _ip6(value)
                    found.append(f"{ip}/{prefixlen}")
        return found
    finally:
        sock.close()


class LinkWatch:
    """Link events (RTM_NEWLINK, RTM_DELLINK) of one namespace as they happen.  The
    socket is opened at once: what changes after the constructor returns is seen."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._sock = _socket(netns, _RTMGRP_LINK)
        self._sock.setblocking(False)

    def read(self, timeout: float | None) -> tuple[list[dict[str, Any]], bool]:
        """The events that arrived, waiting up to ``timeout`` for the first; each a
        link dict (see :func:`dump_links`) with ``"event"``: "new" or "del".  True as
        the second item when the kernel dropped events (the socket overran): look at
        everything then."""
        ready, _, _ = select.select([self._sock], [], [], timeout)
        events: list[dict[str, Any]] = []
        if not ready:
            return events, False
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return events, False
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    return events, True
                raise
            for kind, start, end in _messages(data):
                if kind in (_RTM_NEWLINK, _RTM_DELLINK):
                    msg = _link(data, start, end)
                    msg["event"] = "new" if kind == _RTM_NEWLINK else "del"
                    events.append(msg)

    def close(self) -> None:
        self._sock.close()
