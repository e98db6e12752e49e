"""Fail closed: a port whose filter cannot be installed passes nothing and stays DOWN.

The fault is injected where a real one cannot be produced: the agent (in this process)
gets every ``nft`` batch that would change its firewall tables refused, as a broken
nft or a kernel refusing the ruleset would.  Everything else is real: the server and
its API, the bridges, the taps, the instances in namespaces and the packets between
them.  Then the fault goes, and the port becomes ACTIVE and answers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from neutrino import names
from neutrino.agent.firewall import filters as firewall
from neutrino.cli import instance as inst
from neutrino.linux import addressing, devices, nft
from neutrino.linux.errors import CommandError

from .conftest import ping
from .test_agent_dataplane import HOST, Cloud, cloud, wait_for  # noqa: F401


@contextmanager
def nft_refused(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every change of the firewall tables fails as ``nft -f`` failing would; yields the
    list of the calls refused."""
    refused: list[str] = []

    def refuse(what: str) -> Callable[..., None]:
        def call(*args: object, **kwargs: object) -> None:
            refused.append(what)
            raise CommandError(["nft", "-j", "-f", "-"], 1, "Error: injected fault")
        return call

    with monkeypatch.context() as patch:
        for name in ("apply_tables", "patch_tables", "change_elements"):
            patch.setattr(firewall.nft, name, refuse(name))
        yield refused


def _boot_static(c: Cloud, network_id: str, cidr_len: int) -> tuple[dict, str, str]:
    """An instance plugged as a hypervisor plugs one, its address set by hand (no DHCP
    can answer a port that passes nothing)."""
    port = c.api.create("ports", network_id=network_id, device_owner=inst.OWNER,
                        **{"binding:host_id": HOST, "device_id": str(uuid.uuid4())})
    ns = c.make_ns()
    inst._plug(c.settings(), ns.removeprefix("nt-test-"), ns, port["id"], port["mac_address"])
    ip = port["fixed_ips"][0]["ip_address"]
    addressing.ensure_addresses("eth0", [f"{ip}/{cidr_len}"], netns=ns)
    return port, ns, ip


def test_a_port_whose_filter_cannot_be_installed_passes_nothing_and_stays_down(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    c = cloud
    agent = c.start_agent()
    net, _ = c.network("10.0.0.0/24")
    vm1 = c.boot(net["id"])  # before the fault: filtered, plugged, ACTIVE
    wait_for(lambda: c.active(vm1.port["id"]), what="the first port ACTIVE")
    bridge = names.bridge(net["id"])

    with nft_refused(monkeypatch) as refused:
        port, ns, ip = _boot_static(c, net["id"], 24)
        tap = names.tap(port["id"])
        wait_for(lambda: refused, what="the agent trying to filter the new port")
        time.sleep(2.0)  # several passes and retries
        assert c.port(port["id"])["status"] == "DOWN"
        link = devices.get_link(tap, agent.netns)
        assert link is not None and link.master is None, "a tap without a filter got plugged"
        assert not ping(ns, vm1.ip, expect=False)
        assert not ping(vm1.ns, ip, expect=False)
        # a hypervisor that plugs the tap itself gets nothing through either: the bridge
        # drops what comes from a tap it has no filter decision for
        devices.set_link(tap, master=bridge, up=True, netns=agent.netns)
        assert not ping(ns, vm1.ip, expect=False)
        assert not ping(vm1.ns, ip, expect=False)
        time.sleep(1.0)
        assert c.port(port["id"])["status"] == "DOWN", "a port with no filter went ACTIVE"
        # the port that was filtered before the fault keeps working
        assert c.active(vm1.port["id"])

    # the fault is gone: the retries install the filter, the port goes ACTIVE and answers
    wait_for(lambda: c.active(port["id"]), timeout=40, what="the port ACTIVE after the fault")
    link = devices.get_link(tap, agent.netns)
    assert link is not None and link.master == bridge and link.up
    assert ping(ns, vm1.ip)
    assert ping(vm1.ns, ip)
    table = nft.list_table("bridge", firewall.TABLE, netns=agent.netns)
    assert table is not None and any(r.comment == f"from port {port['id']}"
                                     for ch in table.chains for r in ch.rules)


def test_a_new_tap_waits_unplugged_until_the_firewall_recovers(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The first port of a host while the firewall cannot be applied at all (no table
    ever made): unplugged and DOWN, then plugged and ACTIVE once nft works."""
    c = cloud
    agent = c.start_agent()
    net, _ = c.network("10.0.0.0/24")
    with nft_refused(monkeypatch) as refused:
        port, ns, ip = _boot_static(c, net["id"], 24)
        wait_for(lambda: refused, what="the agent trying to make its tables")
        time.sleep(1.5)
        assert c.port(port["id"])["status"] == "DOWN"
        link = devices.get_link(names.tap(port["id"]), agent.netns)
        assert link is not None and link.master is None
    wait_for(lambda: c.active(port["id"]), timeout=40, what="the port ACTIVE after the fault")
    other = c.boot(net["id"])  # another instance, by DHCP: the two talk
    assert ping(other.ns, ip)
    assert ping(ns, other.ip)
