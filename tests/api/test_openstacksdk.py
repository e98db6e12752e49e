"""openstacksdk, unchanged, against a real server on every backend.

The SDK is what Ansible, the ``openstack`` CLI and many scripts sit on: its
resource classes, pagination, tag mixins, If-Match support and exception
mapping must all work against Neutrino as they do against Neutron.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import openstack
import pytest
from openstack import exceptions
from openstack.connection import Connection

from tests.conftest import Client, Server

# the SDK's own deprecation notices (influxdb, service_type, ...) are not ours
pytestmark = pytest.mark.filterwarnings("ignore::Warning:openstack")


def connect(url: str, project: str | None = None) -> Connection:
    conn = openstack.connect(auth_type="none", auth={"endpoint": url},
                             network_endpoint_override=url)
    if project is not None:
        # noauth identity headers: a member of ``project`` instead of the admin
        conn.session.additional_headers.update({"X-Project-Id": project, "X-Roles": "member"})
    return conn


@pytest.fixture
def conn(server: Server) -> Connection:
    return connect(server.url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_connect_through_clouds_yaml(server: Server, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  neutrino:\n    auth_type: none\n    auth:\n"
                      f"      endpoint: {server.url}\n"
                      f"    network_endpoint_override: {server.url}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    conn = openstack.connect(cloud="neutrino")
    extensions = {e.alias for e in conn.network.extensions()}
    assert {"standard-attr-tag", "pagination", "sorting", "quotas"} <= extensions
    net = conn.network.create_network(name=unique("yaml"))
    assert conn.network.get_network(net.id).name == net.name
    conn.network.delete_network(net, ignore_missing=False)


def test_network_lifecycle_and_find(conn: Connection) -> None:
    name = unique("sdk-net")
    net = conn.network.create_network(name=name, description="d", mtu=1400,
                                      is_port_security_enabled=False)
    assert net.name == name and net.description == "d" and net.mtu == 1400
    assert net.is_port_security_enabled is False and net.is_admin_state_up is True
    assert net.status == "ACTIVE" and net.project_id == "fake_project_id"
    assert net.provider_network_type == "vxlan" and net.provider_segmentation_id
    assert isinstance(net.revision_number, int) and net.created_at

    assert conn.network.find_network(name).id == net.id
    assert conn.network.find_network(net.id).id == net.id
    assert conn.network.find_network(unique("missing")) is None
    with pytest.raises(exceptions.NotFoundException):
        conn.network.find_network(unique("missing"), ignore_missing=False)
    twin = conn.network.create_network(name=name)
    with pytest.raises(exceptions.DuplicateResource):
        conn.network.find_network(name)
    conn.network.delete_network(twin)

    before = net.revision_number  # the SDK updates resources in place
    updated = conn.network.update_network(net, name=name + "-b", is_admin_state_up=False)
    assert updated.name == name + "-b" and updated.is_admin_state_up is False
    assert updated.revision_number == before + 1
    assert [n.id for n in conn.network.networks(name=name + "-b")] == [net.id]
    assert [n.id for n in conn.network.networks(name=name + "-b", is_admin_state_up=True)] == []

    conn.network.delete_network(net, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException) as info:
        conn.network.get_network(net.id)
    assert info.value.details == f"Network {net.id} could not be found."
    assert conn.network.delete_network(net.id) is None  # ignore_missing by default
    with pytest.raises(exceptions.NotFoundException):
        conn.network.delete_network(net.id, ignore_missing=False)


def test_subnets(conn: Connection) -> None:
    net = conn.network.create_network(name=unique("sdk-subnets"))
    sub = conn.network.create_subnet(
        network_id=net.id, name="v4", ip_version=4, cidr="10.60.0.0/24", gateway_ip=None,
        allocation_pools=[{"start": "10.60.0.10", "end": "10.60.0.99"}],
        dns_nameservers=["10.60.0.2", "8.8.8.8"], is_dhcp_enabled=False,
        host_routes=[{"destination": "10.61.0.0/16", "nexthop": "10.60.0.254"}])
    assert sub.cidr == "10.60.0.0/24" and sub.gateway_ip is None
    assert sub.allocation_pools == [{"start": "10.60.0.10", "end": "10.60.0.99"}]
    assert sub.dns_nameservers == ["10.60.0.2", "8.8.8.8"] and sub.is_dhcp_enabled is False
    assert sub.host_routes == [{"destination": "10.61.0.0/16", "nexthop": "10.60.0.254"}]
    v6 = conn.network.create_subnet(network_id=net.id, name="v6", ip_version=6,
                                    cidr="fd00:60::/64", ipv6_ra_mode="dhcpv6-stateful",
                                    ipv6_address_mode="dhcpv6-stateful")
    assert v6.ipv6_ra_mode == v6.ipv6_address_mode == "dhcpv6-stateful"
    assert v6.gateway_ip == "fd00:60::"

    assert sorted(conn.network.get_network(net.id).subnet_ids) == sorted([sub.id, v6.id])
    assert [s.id for s in conn.network.subnets(network_id=net.id, ip_version=6)] == [v6.id]
    assert [s.id for s in conn.network.subnets(network_id=net.id, cidr="10.60.0.0/24")] \
        == [sub.id]
    assert conn.network.find_subnet("v6", network_id=net.id).id == v6.id

    sub = conn.network.update_subnet(sub, gateway_ip="10.60.0.1", dns_nameservers=[],
                                     allocation_pools=[{"start": "10.60.0.20",
                                                        "end": "10.60.0.30"}])
    assert sub.gateway_ip == "10.60.0.1" and sub.dns_nameservers == []
    assert sub.allocation_pools == [{"start": "10.60.0.20", "end": "10.60.0.30"}]
    with pytest.raises(exceptions.ConflictException) as info:
        conn.network.update_subnet(sub, gateway_ip="10.60.0.25")
    assert "conflicts with allocation pool" in info.value.details
    with pytest.raises(exceptions.BadRequestException) as bad:
        conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.60.0.0/33")
    assert "cidr" in bad.value.details.lower()

    conn.network.delete_subnet(sub, ignore_missing=False)
    conn.network.delete_network(net, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        conn.network.get_subnet(v6.id)  # went with its network


def test_ports(conn: Connection) -> None:
    net = conn.network.create_network(name=unique("sdk-ports"))
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.70.0.0/24")
    port = conn.network.create_port(
        network_id=net.id, name="p1", mac_address="fa:16:3e:70:00:01",
        fixed_ips=[{"subnet_id": sub.id, "ip_address": "10.70.0.50"}],
        allowed_address_pairs=[{"ip_address": "10.71.0.0/24"}],
        extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}],
        binding_host_id="compute-1", device_owner="compute:nova", device_id="vm-1")
    assert port.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.70.0.50"}]
    assert port.mac_address == "fa:16:3e:70:00:01"
    assert port.allowed_address_pairs == [{"ip_address": "10.71.0.0/24",
                                           "mac_address": "fa:16:3e:70:00:01"}]
    assert port.extra_dhcp_opts == [{"opt_name": "mtu", "opt_value": "1400", "ip_version": 4}]
    assert port.binding_host_id == "compute-1" and port.binding_vif_type == "binding_failed"
    assert port.status == "DOWN" and port.binding_vnic_type == "normal"
    other = conn.network.create_port(network_id=net.id, name="p2")
    assert other.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.70.0.2"}]

    assert [p.id for p in conn.network.ports(fixed_ips=["ip_address=10.70.0.50"])] == [port.id]
    assert [p.id for p in conn.network.ports(network_id=net.id, device_id="vm-1")] == [port.id]
    assert [p.id for p in conn.network.ports(network_id=net.id,
                                             fixed_ips=[f"subnet_id={sub.id}",
                                                        "ip_address_substr=0.2"])] == [other.id]
    assert {p.id for p in conn.network.ports(network_id=net.id)} == {port.id, other.id}
    assert conn.network.find_port("p2", network_id=net.id).id == other.id

    port = conn.network.update_port(port, fixed_ips=[{"subnet_id": sub.id}],
                                    allowed_address_pairs=[], binding_host_id=None,
                                    extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": None}])
    assert port.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.70.0.50"}]  # kept
    assert port.allowed_address_pairs == [] and port.extra_dhcp_opts == []
    assert port.binding_host_id == "" and port.binding_vif_type == "unbound"

    with pytest.raises(exceptions.ConflictException) as info:
        conn.network.create_port(network_id=net.id,
                                 fixed_ips=[{"ip_address": "10.70.0.2"}])
    assert "already allocated" in info.value.details
    with pytest.raises(exceptions.ConflictException) as info:
        conn.network.delete_network(net)
    assert "still in use" in info.value.details

    conn.network.delete_port(port, ignore_missing=False)
    conn.network.delete_port(other, ignore_missing=False)
    conn.network.delete_network(net, ignore_missing=False)


def test_pagination_and_sorting(conn: Connection, caplog: pytest.LogCaptureFixture) -> None:
    net = conn.network.create_network(name=unique("sdk-paging"))
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.80.0.0/24")
    names = [f"port-{i:02d}" for i in range(7)]
    made = [conn.network.create_port(network_id=net.id, name=n) for n in reversed(names)]

    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        caplog.clear()
        paged = list(conn.network.ports(network_id=net.id, paginated=True, limit=3))
        requests_made = [r.getMessage() for r in caplog.records
                         if "GET /v2.0/ports?" in r.getMessage()]
    assert sorted(p.id for p in paged) == sorted(p.id for p in made)
    assert len(paged) == 7  # no duplicates across pages
    # 3 + 3 + 1, then the SDK asks once more after a page without a next link
    assert len(requests_made) == 4, requests_made
    assert all("limit=3" in r for r in requests_made)

    by_name = list(conn.network.ports(network_id=net.id, sort_key="name", sort_dir="desc",
                                      limit=2))
    assert [p.name for p in by_name] == sorted(names, reverse=True)
    first_three = []
    for port in conn.network.ports(network_id=net.id, sort_key="name", sort_dir="asc",
                                   limit=2):
        first_three.append(port.name)
        if len(first_three) == 3:  # a lazy generator: stop early, fetch no more
            break
    assert first_three == names[:3]
    page = conn.network.get("/ports", params={"network_id": net.id, "limit": 3,
                                              "sort_key": "name", "sort_dir": "asc",
                                              "marker": by_name[-1].id}).json()
    assert [p["name"] for p in page["ports"]] == names[1:4]
    assert [link["rel"] for link in page["ports_links"]] == ["next", "previous"]
    assert list(conn.network.ports(network_id=net.id, max_items=4, limit=3)).__len__() == 4

    for port in made:
        conn.network.delete_port(port)
    conn.network.delete_network(net)


def test_tags(conn: Connection) -> None:
    mark = unique("tag")
    nets = [conn.network.create_network(name=f"{mark}-{i}", tags=[mark]) for i in range(3)]
    assert nets[0].tags == [mark]
    before = nets[0].revision_number
    tagged = conn.network.set_tags(nets[0], [mark, "red", "blue"])
    assert sorted(tagged.tags) == sorted([mark, "red", "blue"])
    conn.network.add_tag(nets[1], "red")
    conn.network.remove_tag(nets[0], "blue")
    assert sorted(conn.network.get_tags(nets[0])) == sorted([mark, "red"])
    assert conn.network.get_network(nets[0].id).revision_number > before

    def names(**query: str) -> set[str]:
        return {n.name for n in conn.network.networks(**query)}

    assert names(tags=f"{mark},red") == {nets[0].name, nets[1].name}
    assert names(any_tags=f"red,{mark}") == {n.name for n in nets}
    assert names(tags=mark, not_tags="red") == {nets[2].name}
    assert names(tags=mark, not_any_tags="red,blue") == {nets[2].name}

    port = conn.network.create_port(network_id=nets[2].id, tags=["a"])
    conn.network.set_tags(port, ["b", "c"])
    assert sorted(conn.network.get_port(port.id).tags) == ["b", "c"]
    conn.network.remove_all_tags(port)
    assert conn.network.get_port(port.id).tags == []
    with pytest.raises(exceptions.BadRequestException):
        conn.network.set_tags(nets[2], ["no,commas"])

    conn.network.delete_port(port)
    for net in nets:
        conn.network.delete_network(net)


def test_if_revision(conn: Connection) -> None:
    net = conn.network.create_network(name=unique("sdk-rev"))
    stale = net.revision_number
    net = conn.network.update_network(net, description="one", if_revision=stale)
    assert net.description == "one" and net.revision_number == stale + 1
    with pytest.raises(exceptions.PreconditionFailedException) as info:
        # by id: the SDK sends an If-Match header only when it changed on the object
        conn.network.update_network(net.id, description="two", if_revision=stale)
    assert "current revision is" in info.value.details
    assert conn.network.get_network(net.id).description == "one"

    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.90.0.0/24")
    with pytest.raises(exceptions.PreconditionFailedException):
        conn.network.update_subnet(sub.id, name="x", if_revision=sub.revision_number + 5)
    sub = conn.network.update_subnet(sub, name="x", if_revision=sub.revision_number)
    assert sub.name == "x"
    port = conn.network.create_port(network_id=net.id)
    port = conn.network.update_port(port, name="y", if_revision=port.revision_number)
    with pytest.raises(exceptions.PreconditionFailedException):
        conn.network.update_port(port.id, name="z", if_revision=port.revision_number - 1)
    assert conn.network.get_port(port.id).name == "y"
    conn.network.delete_port(port)
    with pytest.raises(exceptions.PreconditionFailedException):
        conn.network.delete_network(net.id, if_revision=stale)
    conn.network.delete_network(net.id, if_revision=conn.network.get_network(net.id)
                                .revision_number, ignore_missing=False)
    assert conn.network.find_network(net.id) is None


def test_quotas(server: Server, conn: Connection) -> None:
    project = f"quota-{uuid.uuid4().hex[:8]}"
    default = conn.network.get_quota_default(project)
    quota = conn.network.get_quota(project)
    assert (quota.networks, quota.subnets, quota.ports) == \
        (default.networks, default.subnets, default.ports)

    quota = conn.network.update_quota(project, networks=2, ports=1)
    assert quota.networks == 2 and quota.ports == 1
    assert conn.network.get_quota(project).networks == 2
    assert project in {q.project_id for q in conn.network.quotas()}

    member = connect(server.url, project)
    net = member.network.create_network(name="one")
    assert net.project_id == project
    member.network.create_network(name="two")
    with pytest.raises(exceptions.ConflictException) as info:
        member.network.create_network(name="three")
    assert "Quota exceeded for resources: ['network']" in info.value.details
    member.network.create_port(network_id=net.id)
    with pytest.raises(exceptions.ConflictException):
        member.network.create_port(network_id=net.id)

    details = conn.network.get_quota(project, details=True)
    assert details.networks == {"limit": 2, "used": 2, "reserved": 0}
    assert details.ports == {"limit": 1, "used": 1, "reserved": 0}
    with pytest.raises(exceptions.ForbiddenException):
        member.network.update_quota(project, networks=50)
    with pytest.raises(exceptions.ForbiddenException):
        member.network.get_quota("someone-else")

    conn.network.delete_quota(project)
    assert conn.network.get_quota(project).networks == default.networks
    member.network.create_network(name="three")  # back to the default limit


def test_member_sees_only_its_own(server: Server, conn: Connection, admin: Client) -> None:
    member = connect(server.url, f"p-{uuid.uuid4().hex[:8]}")
    theirs = conn.network.create_network(name=unique("admins"))
    mine = member.network.create_network(name=unique("mine"))
    assert mine.provider_network_type is None  # admin-only attributes are hidden
    assert {n.id for n in member.network.networks()} == {mine.id}
    assert member.network.find_network(theirs.name) is None
    with pytest.raises(exceptions.NotFoundException):
        member.network.update_network(theirs.id, name="stolen")
    with pytest.raises(exceptions.ForbiddenException):
        member.network.update_network(mine, is_shared=True)
    assert admin.get(f"/networks/{mine.id}").json()["network"]["provider:network_type"]
    conn.network.delete_network(theirs)
    member.network.delete_network(mine)
