"""The stock ``openstack loadbalancer`` CLI (python-octaviaclient) against a real server
with the embedded identity: it finds the ``load-balancer`` endpoint in the catalog and
``--wait`` sees each object through PENDING_CREATE to ACTIVE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.identity.store import Identity
from tests.api.test_identity import ADMIN_PASSWORD
from tests.api.test_openstack_cli import OPENSTACK, Cli
from tests.conftest import Server, start_server

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def lb_cli(database_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    if not OPENSTACK.exists():
        pytest.skip(f"the openstack CLI is not installed beside {OPENSTACK.parent}")
    tmp = tmp_path_factory.mktemp("lb-cli")
    server: Server = start_server(tmp, database_factory("sqlite"), auth="embedded")
    server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
    clouds = Path(tmp / "clouds.yaml")
    clouds.write_text(
        "clouds:\n  neutrino:\n    auth:\n"
        f"      auth_url: {server.url}/identity/v3\n"
        f"      username: admin\n      password: {ADMIN_PASSWORD}\n"
        "      project_name: admin\n      user_domain_name: Default\n"
        "      project_domain_name: Default\n    identity_api_version: 3\n")
    yield Cli(clouds)
    server.stop()


def test_create_wait_through_healthmonitor(lb_cli: Cli) -> None:
    cli = lb_cli
    cli("network", "create", "lbnet")
    cli("subnet", "create", "--network", "lbnet", "--subnet-range", "10.9.0.0/24", "lbsub")
    lb = cli("loadbalancer", "create", "--name", "lb1", "--vip-subnet-id", "lbsub",
             "--wait", "-f", "json")
    assert lb["provisioning_status"] in ("PENDING_CREATE", "ACTIVE")
    lb = cli("loadbalancer", "show", "lb1", "-f", "json")
    assert lb["provisioning_status"] == "ACTIVE"
    port = cli("port", "show", lb["vip_port_id"], "-f", "json")
    assert port["device_owner"] == "Octavia"
    cli("loadbalancer", "listener", "create", "--name", "l1", "--protocol", "HTTP",
        "--protocol-port", "80", "--insert-headers", "X-Forwarded-For=true", "--wait", "lb1")
    cli("loadbalancer", "pool", "create", "--name", "p1", "--listener", "l1", "--protocol",
        "HTTP", "--lb-algorithm", "ROUND_ROBIN", "--wait")
    cli("loadbalancer", "member", "create", "--subnet-id", "lbsub", "--address",
        "10.9.0.10", "--protocol-port", "8080", "--wait", "p1")
    cli("loadbalancer", "healthmonitor", "create", "--name", "hm1", "--delay", "3",
        "--timeout", "3", "--max-retries", "3", "--type", "HTTP", "--wait", "p1")
    monitor = cli("loadbalancer", "healthmonitor", "show", "hm1", "-f", "json")
    assert monitor["provisioning_status"] == "ACTIVE" and monitor["url_path"] == "/"
    tree = cli("loadbalancer", "status", "show", "lb1")
    assert '"health_monitor"' in tree and "10.9.0.10" in tree
    listed = cli("loadbalancer", "member", "list", "p1", "-f", "json")
    assert [m["address"] for m in listed] == ["10.9.0.10"]
    # a refusal reaches the user as Octavia's message
    err = cli.fails("loadbalancer", "healthmonitor", "create", "--delay", "3", "--timeout",
                    "3", "--max-retries", "3", "--type", "TCP", "p1")
    assert "already has a health monitor" in err
    cli("loadbalancer", "delete", "--cascade", "--wait", "lb1")
    assert cli("loadbalancer", "list", "-f", "json") == []
    assert cli.fails("port", "show", lb["vip_port_id"])


@pytest.fixture(scope="module")
def sdk_server(database_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("lb-sdk"), database_factory("sqlite"),
                          auth="embedded")
    server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
    yield server
    server.stop()


def test_openstacksdk_load_balancer_proxy(sdk_server: Server) -> None:
    """openstacksdk finds ``load-balancer`` in the embedded identity's catalog."""
    import openstack

    conn = openstack.connect(auth_url=f"{sdk_server.url}/identity/v3", username="admin",
                             password=ADMIN_PASSWORD, project_name="admin",
                             user_domain_name="Default", project_domain_name="Default")
    net = conn.network.create_network(name="sdknet")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        cidr="10.5.0.0/24")
    lb = conn.load_balancer.create_load_balancer(name="sdk-lb", vip_subnet_id=subnet.id)
    lb = conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.2, wait=20)
    assert lb.provisioning_status == "ACTIVE"
    listener = conn.load_balancer.create_listener(loadbalancer_id=lb.id, protocol="TCP",
                                                  protocol_port=443)
    conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.2, wait=20)
    pool = conn.load_balancer.create_pool(listener_id=listener.id, protocol="TCP",
                                          lb_algorithm="SOURCE_IP")
    conn.load_balancer.wait_for_load_balancer(lb.id, interval=0.2, wait=20)
    assert conn.load_balancer.get_pool(pool.id).lb_algorithm == "SOURCE_IP"
    assert [x.id for x in conn.load_balancer.load_balancers()] == [lb.id]
    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
    conn.load_balancer.wait_for_delete(lb, interval=0.2, wait=20)
    assert conn.network.find_port(lb.vip_port_id) is None
