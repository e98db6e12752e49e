"""The stock ``openstack firewall group ...`` commands (python-openstackclient's FWaaS
v2 commands) against a real server: rules, policies and their rule order, groups on a
router's interface, the default group, and the refusals the CLI reports."""

from __future__ import annotations

import pytest

from tests.api.test_openstack_cli import Cli, cli, cli_server  # noqa: F401  (fixtures)
from tests.conftest import Client, Server

pytestmark = pytest.mark.cli


def test_firewall_group_commands(cli: Cli, cli_server: Server) -> None:  # noqa: F811
    api = Client(cli_server.url)
    # the first call makes the project's default group (upstream's behaviour)
    groups = cli("firewall", "group", "list", "-f", "json")
    assert [g["Name"] for g in groups] == ["default"]

    ssh = cli("firewall", "group", "rule", "create", "ssh", "--protocol", "tcp",
              "--destination-port", "22", "--action", "allow", "-f", "json")
    assert (ssh["Protocol"], ssh["Destination Port"], ssh["Action"]) == ("tcp", "22", "allow")
    web = cli("firewall", "group", "rule", "create", "web", "--protocol", "tcp",
              "--destination-port", "8000:8080", "--action", "allow", "-f", "json")
    drop = cli("firewall", "group", "rule", "create", "drop-v6", "--ip-version", "6",
               "--source-ip-address", "2001:db8::/32", "--action", "reject", "-f", "json")
    assert (drop["IP Version"], drop["Source IP Address"]) == (6, "2001:db8::/32")
    cli("firewall", "group", "rule", "set", "web", "--disable-rule")
    assert cli("firewall", "group", "rule", "show", "web", "-f", "json")["Enabled"] is False

    policy = cli("firewall", "group", "policy", "create", "p1", "--firewall-rule", "ssh",
                 "-f", "json")
    assert policy["Firewall Rules"] == [ssh["ID"]]
    cli("firewall", "group", "policy", "add", "rule", "p1", "web",
        "--insert-after", "ssh")
    cli("firewall", "group", "policy", "add", "rule", "p1", "drop-v6",
        "--insert-before", "ssh")
    shown = cli("firewall", "group", "policy", "show", "p1", "-f", "json")
    assert shown["Firewall Rules"] == [drop["ID"], ssh["ID"], web["ID"]]
    cli("firewall", "group", "policy", "remove", "rule", "p1", "ssh")
    shown = cli("firewall", "group", "policy", "show", "p1", "-f", "json")
    assert shown["Firewall Rules"] == [drop["ID"], web["ID"]]
    cli("firewall", "group", "policy", "set", "p1", "--audited")
    assert cli("firewall", "group", "policy", "show", "p1", "-f", "json")["Audited"] is True

    # a group on a router's interface, as the seed lab does
    net = api.create("networks", name="fw-net")
    sub = api.create("subnets", network_id=net["id"], cidr="10.61.0.0/24", ip_version=4)
    router = api.create("routers", name="fw-router")
    port = api.put(f"/routers/{router['id']}/add_router_interface",
                   {"subnet_id": sub["id"]}).json()["port_id"]
    group = cli("firewall", "group", "create", "g1", "--ingress-firewall-policy", "p1",
                "--port", port, "-f", "json")
    assert group["Ingress Policy ID"] == shown["ID"] and group["Ports"] == [port]
    assert cli("firewall", "group", "show", "g1", "-f", "json")["Status"] == "ACTIVE"
    listed = {g["Name"] for g in cli("firewall", "group", "list", "-f", "json")}
    assert listed == {"default", "g1"}

    # refusals reach the user with upstream's words
    err = cli.fails("firewall", "group", "create", "default")
    assert "reserved name" in err
    err = cli.fails("firewall", "group", "create", "g2", "--port", port)
    assert "already associated with other firewall group" in err
    err = cli.fails("firewall", "group", "rule", "delete", "web")
    assert "is being used" in err
    err = cli.fails("firewall", "group", "policy", "delete", "p1")
    assert "is being used" in err
    err = cli.fails("firewall", "group", "delete", "g1")
    assert "still active" in err

    # taken apart in order: ports, group, policy, rules
    cli("firewall", "group", "unset", "g1", "--port", port)
    assert cli("firewall", "group", "show", "g1", "-f", "json")["Status"] == "INACTIVE"
    cli("firewall", "group", "delete", "g1")
    cli("firewall", "group", "policy", "delete", "p1")
    cli("firewall", "group", "rule", "delete", "ssh", "web", "drop-v6")
    names = {r["Name"] for r in cli("firewall", "group", "rule", "list", "-f", "json")}
    assert names == {"default ingress ipv4", "default ingress ipv6", "default egress ipv4",
                     "default egress ipv6"}
