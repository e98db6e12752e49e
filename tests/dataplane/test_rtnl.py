"""The raw rtnetlink paths (``neutrino.linux.rtnl``) against pyroute2 and the kernel:
the same links and FDB entries as pyroute2 decodes them, link events as they happen,
sockets opened in a namespace without leaving the calling thread there."""

from __future__ import annotations

import os
from collections.abc import Callable

from neutrino.linux import addressing, devices, fdb, rtnl
from neutrino.linux.ipr import handle, index_of
from neutrino.linux.run import run

from .conftest import need


def _ip(ns: str, *argv: str) -> None:
    run(["ip", "-n", ns, *argv])


def test_links_and_fdb_read_as_pyroute2_reads_them(make_ns: Callable[[], str]) -> None:
    need()
    ns, other = make_ns(), make_ns()
    _ip(ns, "link", "add", "brq-t", "type", "bridge")
    _ip(ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
    _ip(ns, "link", "add", "tap-t", "type", "veth", "peer", "name", "eth0", "netns", other)
    _ip(ns, "link", "add", "vxlan-7", "type", "vxlan", "id", "7", "dstport", "4789",
        "local", "192.0.2.1", "nolearning")
    _ip(ns, "link", "add", "vxlan-8", "type", "vxlan", "id", "8", "dstport", "4789")
    _ip(ns, "link", "set", "tap-t", "master", "brq-t", "mtu", "1450", "alias", "hello", "up")
    _ip(ns, "link", "set", "vxlan-7", "master", "brq-t", "up")
    fdb.fdb_append("vxlan-7", fdb.FLOOD_MAC, "192.0.2.9", ns)
    for where in (ns, other):
        with handle(where) as ipr:
            decoded = devices.dump_links(ipr)  # pyroute2's full decoding
        assert devices.list_links(where) == decoded
        for link in decoded:
            assert devices.get_link(link.name, where) == link
    assert devices.get_link("nothing", ns) is None
    assert fdb.list_fdb("vxlan-7", ns) == _pyroute2_fdb(ns, "vxlan-7")
    assert fdb.FdbEntry(fdb.FLOOD_MAC, "192.0.2.9") in fdb.list_fdb("vxlan-7", ns)
    tap_entries = fdb.list_fdb("tap-t", ns)
    assert tap_entries and sorted(map(str, tap_entries)) == \
        sorted(map(str, _pyroute2_fdb(ns, "tap-t"))), "the bridge's entries for that port"
    assert rtnl.fdb("nothing", ns) is None


def _pyroute2_fdb(ns: str, dev: str) -> list[fdb.FdbEntry]:
    with handle(ns) as ipr:
        return fdb._fdb(ipr, index_of(ipr, dev, "test"))


def test_one_devices_addresses_read_as_pyroute2_reads_them(
        make_ns: Callable[[], str]) -> None:
    """The kernel filters the dump by device: only that device's addresses (v4 and v6,
    the kernel's link-local too), as pyroute2 lists them."""
    need()
    ns = make_ns()
    devices.ensure_veth("qr-a", "qr-b", netns=ns)
    addressing.ensure_addresses("qr-a", ["10.7.0.1/24", "10.8.0.1/30", "2001:db8::1/64"],
                                netns=ns)
    addressing.ensure_addresses("qr-b", ["10.9.0.1/24"], netns=ns)
    for dev in ("qr-a", "qr-b", "lo"):
        with handle(ns) as ipr:
            theirs = addressing._addresses(ipr, index_of(ipr, dev, "test"))
        assert set(rtnl.addresses(dev, ns) or ()) == theirs, dev
        assert addressing.list_addresses(dev, ns) == addressing.sorted_addresses(theirs)
    assert "10.9.0.1/24" not in addressing.list_addresses("qr-a", ns)
    assert rtnl.addresses("nothing", ns) is None


def test_link_events_as_they_happen(make_ns: Callable[[], str]) -> None:
    need()
    ns, other = make_ns(), make_ns()
    home = os.stat("/proc/thread-self/ns/net").st_ino
    watch = rtnl.LinkWatch(ns)
    try:
        assert os.stat("/proc/thread-self/ns/net").st_ino == home, "this thread stayed home"
        assert watch.read(0) == ([], False)
        _ip(ns, "link", "add", "tap-e", "type", "veth", "peer", "name", "eth0", "netns", other)
        _ip(ns, "link", "set", "tap-e", "up")
        events, lost = watch.read(2)
        seen = {e.get("ifname") for e in events}
        while "tap-e" not in seen or not any(e["flags"] & 1 for e in events
                                              if e.get("ifname") == "tap-e"):
            more, lost = watch.read(2)
            assert more, f"no up event for tap-e: {events}"
            events += more
            seen |= {e.get("ifname") for e in more}
        assert not lost and all(e["event"] == "new" for e in events)
        _ip(ns, "link", "del", "tap-e")
        gone: list[dict] = []
        while not any(e["event"] == "del" and e.get("ifname") == "tap-e" for e in gone):
            more, _ = watch.read(2)
            assert more, "no del event for tap-e"
            gone += more
    finally:
        watch.close()
