"""Shared pieces of the L3 data-plane tests: a cloud with the external network
``public`` realised as ``br-ex`` in the test's "hypervisor" namespace (holding
172.24.4.1, as `neutrino up` gives the host), an "outside" namespace attached to it,
and tiny TCP servers and clients run inside namespaces (tests/netns_helpers.py).

Every router namespace the agent made is removed at teardown (the agent stopped
first, so nothing makes them again), pass or fail; the ``cloud`` fixture then
removes the rest.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neutrino import names
from neutrino.agent.l3 import external
from neutrino.api.auth import NOAUTH_PROJECT
from neutrino.linux import devices, namespaces
from tests.conftest import Client, start_server
from tests.netns_helpers import (  # serve and call: the L3 tests import them from here
    call,
    names_in,
    plug_outside,
    remove_namespace,
    serve,  # noqa: F401
)

from .conftest import need
from .test_agent_dataplane import Cloud, wait_for

PUBLIC_CIDR = "172.24.4.0/24"
HOST_IP = "172.24.4.1"
BRIDGE = "br-ex"


def need_l3() -> None:
    need("nft", "dnsmasq", "busybox", "ping", "sysctl")


def wait_call(ns: str, ip: str, port: int, timeout: float = 15.0) -> str:
    return str(wait_for(lambda: call(ns, ip, port, 1.0), timeout, f"{ip}:{port} from {ns}"))


@dataclass
class L3Cloud:
    cloud: Cloud
    public: dict
    public_subnet: dict
    routers: list[str] = field(default_factory=list)

    @property
    def api(self) -> Client:
        return self.cloud.api

    @property
    def hostns(self) -> str:
        return self.cloud.hostns

    def start_agent(self, **overrides: object) -> object:
        return self.cloud.start_agent(bridge_mappings={"public": BRIDGE}, **overrides)

    def router(self, *, gateway: bool = True, project: str | None = None,
               **attrs: object) -> dict:
        body: dict = {"name": f"r-{uuid.uuid4().hex[:6]}", **attrs}
        if project:
            body["project_id"] = project
        if gateway:
            body["external_gateway_info"] = {"network_id": self.public["id"]}
        router = self.api.create("routers", **body)
        self.routers.append(router["id"])
        return router

    def add_subnet(self, router_id: str, subnet_id: str) -> dict:
        r = self.api.put(f"/routers/{router_id}/add_router_interface", {"subnet_id": subnet_id})
        assert r.status_code == 200, r.text
        return r.json()

    def remove_subnet(self, router_id: str, subnet_id: str) -> None:
        r = self.api.put(f"/routers/{router_id}/remove_router_interface",
                         {"subnet_id": subnet_id})
        assert r.status_code == 200, r.text

    def get(self, collection: str, ident: str) -> dict:
        r = self.api.get(f"/{collection}/{ident}")
        assert r.status_code == 200, r.text
        return r.json()[collection[:-1]]

    def status(self, collection: str, ident: str) -> str:
        return self.get(collection, ident)["status"]

    def floating_ip(self, port_id: str | None = None) -> dict:
        body: dict = {"floating_network_id": self.public["id"]}
        if port_id:
            body["port_id"] = port_id
        return self.api.create("floatingips", **body)

    def associate(self, fip_id: str, port_id: str | None) -> dict:
        r = self.api.put(f"/floatingips/{fip_id}", {"floatingip": {"port_id": port_id}})
        assert r.status_code == 200, r.text
        return r.json()["floatingip"]

    def allow_ingress(self, project: str | None = None, **rule: object) -> None:
        """Open the project's default security group to ``rule`` from anywhere (IPv4):
        traffic that comes through a floating IP is not from the group's members."""
        project = project or NOAUTH_PROJECT
        r = self.api.get(f"/security-groups?name=default&project_id={project}")
        (group,) = r.json()["security_groups"]
        r = self.api.post("/security-group-rules", {"security_group_rule": {
            "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
            "project_id": project, **rule}})
        assert r.status_code in (201, 409), r.text

    def outside(self) -> tuple[str, str]:
        """A namespace standing for a machine on the external network: plugged into
        br-ex, with an address reserved by a port of the public network."""
        ns = self.cloud.make_ns()
        holder = self.api.create("ports", network_id=self.public["id"], name="outside")
        ip = holder["fixed_ips"][0]["ip_address"]
        plug_outside(ns, self.hostns, ip, holder["mac_address"], BRIDGE)
        return ns, ip

    def router_objects(self, router_id: str) -> tuple[bool, set[str]]:
        """Whether the router's namespace exists, and the agent namespace's taps of its
        ports (as their peers would be named)."""
        ns = names.router_namespace(router_id)
        return namespaces.namespace_exists(ns), {lk.name for lk in devices.list_links(self.hostns)}


@pytest.fixture(name="l3")
def l3_cloud(make_ns: Callable[[], str]) -> Iterator[L3Cloud]:
    """A server, an agent's "hypervisor" namespace with br-ex (the ``cloud`` of the L2
    tests, plus the external network); used as the ``l3`` fixture."""
    need_l3()
    state = Path(tempfile.mkdtemp(prefix="nt-test-"))
    state.chmod(0o755)  # dnsmasq, no longer root, re-reads its files from here
    server = start_server(state, f"sqlite:///{state / 'db.sqlite'}", agent_down_time=2,
                          agent_report_interval=0.3)
    cloud = Cloud(server, Client(server.url), make_ns(), state, make_ns)
    routers: list[str] = []
    try:
        public = cloud.api.create("networks", name="public", **{
            "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "public"})
        cloud.networks.append(public["id"])
        subnet = cloud.api.create("subnets", network_id=public["id"], cidr=PUBLIC_CIDR,
                                  ip_version=4, gateway_ip=HOST_IP, enable_dhcp=False)
        external.ensure_bridge(BRIDGE, HOST_IP, PUBLIC_CIDR, netns=cloud.hostns)
        yield L3Cloud(cloud, public, subnet, routers)
    finally:
        cloud.stop_agent()  # first: nothing makes namespaces again meanwhile
        server.stop()
        agent_dir = state / "agent"
        made = set(routers) | names_in(agent_dir / "l3")
        for rid in made:
            remove_namespace(names.router_namespace(rid))
        for net in set(cloud.networks) | names_in(agent_dir / "dhcp"):
            remove_namespace(names.dhcp_namespace(net))
        shutil.rmtree(state, ignore_errors=True)


def have_sg_reconciler() -> str | None:
    """None when security groups are enforced by the agent, else why not."""
    import importlib.util

    for module in ("neutrino.agent.security_groups", "neutrino.agent.sg",
                   "neutrino.agent.firewall.filters"):
        if importlib.util.find_spec(module) is not None:
            return None
    return "security groups are not enforced yet (no security-group reconciler in the agent)"
