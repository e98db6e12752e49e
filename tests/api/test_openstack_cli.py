"""The real ``openstack`` CLI against a real server (SQLite).

Each CLI invocation costs about a second (the client's import time), so the
tests here chain many checks on a few objects, set up what is not under test
over plain HTTP, and check the server's state over HTTP where that is cheaper
than another CLI call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Client, Server, start_server

pytestmark = pytest.mark.cli

OPENSTACK = Path(sys.executable).with_name("openstack")


class CliError(AssertionError):
    pass


class Cli:
    """Runs ``openstack`` against one cloud in a clouds.yaml."""

    def __init__(self, clouds_yaml: Path) -> None:
        # Nothing of the caller's own cloud settings may leak into the runs.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env.update(OS_CLIENT_CONFIG_FILE=str(clouds_yaml), OS_CLOUD="neutrino",
                        NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(OPENSTACK), *args], env=self.env, capture_output=True,
                              text=True, timeout=60)

    def __call__(self, *args: str) -> object:
        """Run a command that must succeed; parse its output when it is ``-f json``."""
        proc = self.run(*args)
        if proc.returncode != 0:
            raise CliError(f"openstack {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
        return json.loads(proc.stdout) if "json" in args else proc.stdout

    def fails(self, *args: str) -> str:
        """Run a command that must fail; return what it said on stderr."""
        proc = self.run(*args)
        assert proc.returncode != 0, f"openstack {' '.join(args)} succeeded:\n{proc.stdout}"
        return proc.stderr


def write_clouds_yaml(path: Path, url: str) -> Path:
    # the format ``neutrino up`` writes (neutrino.cli.main.write_clouds_yaml)
    path.write_text("clouds:\n  neutrino:\n    auth_type: none\n    auth:\n"
                    f"      endpoint: {url}\n    network_endpoint_override: {url}\n")
    return path


@pytest.fixture(scope="module")
def cli_server(database_factory: Callable[[str], str],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("cli-srv"), database_factory("sqlite"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cli(cli_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    if not OPENSTACK.exists():
        pytest.skip(f"the openstack CLI is not installed beside {sys.executable}")
    clouds = write_clouds_yaml(tmp_path_factory.mktemp("cli") / "clouds.yaml", cli_server.url)
    return Cli(clouds)


@pytest.fixture
def api(cli_server: Server) -> Client:
    return Client(cli_server.url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_network_create_set_unset_show_delete(cli: Cli, api: Client) -> None:
    name = unique("net")
    net = cli("network", "create", name, "--description", "first", "--mtu", "1400",
              "--disable-port-security", "--tag", "red", "--tag", "blue", "-f", "json")
    assert net["name"] == name and net["description"] == "first"
    assert net["mtu"] == 1400 and net["port_security_enabled"] is False
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True
    assert sorted(net["tags"]) == ["blue", "red"]
    assert net["provider:network_type"] == "vxlan"  # the CLI runs as admin (noauth)
    assert net["project_id"] == "fake_project_id"

    cli("network", "set", name, "--name", name + "-b", "--description", "second",
        "--disable", "--enable-port-security", "--tag", "green")
    cli("network", "unset", name + "-b", "--tag", "red")
    shown = cli("network", "show", net["id"], "-f", "json")
    assert shown["name"] == name + "-b" and shown["description"] == "second"
    assert shown["admin_state_up"] is False and shown["port_security_enabled"] is True
    assert sorted(shown["tags"]) == ["blue", "green"]
    assert shown["revision_number"] > net["revision_number"]

    # --no-tag replaces the whole set; the server saw the same thing the CLI printed
    cli("network", "set", net["id"], "--no-tag", "--tag", "only")
    assert api.get(f"/networks/{net['id']}").json()["network"]["tags"] == ["only"]

    cli("network", "delete", net["id"])
    assert api.get(f"/networks/{net['id']}").status_code == 404
    assert "No Network found" in cli.fails("network", "show", net["id"])


def test_network_list_filters_tags_sorting_and_paging(cli: Cli, api: Client) -> None:
    mark = unique("page")
    names = [f"{mark}-{n}" for n in ("c", "a", "e", "b", "d")]
    nets = {n: api.create("networks", name=n, tags=[mark, "even" if i % 2 == 0 else "odd"])
            for i, n in enumerate(names)}
    api.put(f"/networks/{nets[names[1]]['id']}", {"network": {"admin_state_up": False}})

    listed = cli("network", "list", "--tags", mark, "-f", "json", "--long",
                 "--sort-column", "Name", "--sort-descending")
    assert [n["Name"] for n in listed] == sorted(names, reverse=True)
    assert all(mark in n["Tags"] for n in listed)
    assert {n["State"] for n in listed} == {True, False}
    ascending = cli("network", "list", "--tags", f"{mark},odd", "-f", "json",
                    "--sort-column", "Name", "--sort-ascending")
    assert [n["Name"] for n in ascending] == sorted([names[1], names[3]])
    assert {n["Name"] for n in cli("network", "list", "--any-tags", f"{mark},nothing",
                                   "--not-tags", "odd", "--disable", "-f", "json")} == set()
    enabled_even = cli("network", "list", "--tags", mark, "--not-any-tags", "odd", "--enable",
                       "-f", "json")
    assert {n["Name"] for n in enabled_even} == {names[0], names[2], names[4]}
    assert [n["Name"] for n in cli("network", "list", "--name", names[2], "-f", "json")] \
        == [names[2]]

    # --limit is the page size: the client follows the next links to the end
    proc = cli.run("--debug", "network", "list", "--tags", mark, "--limit", "2", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert {n["Name"] for n in json.loads(proc.stdout)} == set(names)
    pages = [line for line in proc.stderr.splitlines()
             if '"GET /v2.0/networks?' in line and "limit=2" in line]
    # pages of 2, 2 and 1; after a page without a next link the SDK asks once more
    assert len(pages) == 4, pages
    assert "marker=" not in pages[0] and all("marker=" in p for p in pages[1:])
    ids = sorted(n["id"] for n in nets.values())  # the server's default order is by id
    capped = cli("network", "list", "--tags", mark, "--limit", "2", "--max-items", "3",
                 "-f", "json", "-c", "ID")
    assert [n["ID"] for n in capped] == ids[:3]
    after = cli("network", "list", "--tags", mark, "--marker", ids[1], "-f", "json", "-c", "ID")
    assert [n["ID"] for n in after] == ids[2:]


def test_subnet_create_list_show_set_unset_delete(cli: Cli, api: Client) -> None:
    net = api.create("networks", name=unique("subnets"))
    name = unique("sub")
    sub = cli("subnet", "create", name, "--network", net["name"],
              "--subnet-range", "10.31.0.0/24", "--gateway", "none",
              "--allocation-pool", "start=10.31.0.10,end=10.31.0.20",
              "--allocation-pool", "start=10.31.0.100,end=10.31.0.110",
              "--dns-nameserver", "8.8.8.8", "--dns-nameserver", "1.1.1.1",
              "--host-route", "destination=10.32.0.0/16,gateway=10.31.0.254",
              "--no-dhcp", "--tag", "v4", "-f", "json")
    assert sub["network_id"] == net["id"] and sub["cidr"] == "10.31.0.0/24"
    assert sub["ip_version"] == 4 and sub["gateway_ip"] is None
    assert sub["allocation_pools"] == [{"start": "10.31.0.10", "end": "10.31.0.20"},
                                       {"start": "10.31.0.100", "end": "10.31.0.110"}]
    assert sub["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]
    assert sub["host_routes"] == [{"destination": "10.32.0.0/16", "nexthop": "10.31.0.254"}]
    assert sub["enable_dhcp"] is False and sub["tags"] == ["v4"]

    v6 = cli("subnet", "create", unique("sub6"), "--network", net["id"], "--ip-version", "6",
             "--subnet-range", "fd00:31::/64", "--ipv6-ra-mode", "slaac",
             "--ipv6-address-mode", "slaac", "-f", "json")
    assert v6["ip_version"] == 6 and v6["cidr"] == "fd00:31::/64"
    assert v6["ipv6_ra_mode"] == v6["ipv6_address_mode"] == "slaac"
    assert v6["gateway_ip"] == "fd00:31::"  # upstream's default for IPv6
    assert v6["allocation_pools"] == [{"start": "fd00:31::1",
                                       "end": "fd00:31::ffff:ffff:ffff:ffff"}]

    listed = cli("subnet", "list", "--network", net["id"], "-f", "json",
                 "--sort-column", "Subnet", "--sort-ascending")
    assert [(s["ID"], s["Subnet"]) for s in listed] == [(sub["id"], "10.31.0.0/24"),
                                                        (v6["id"], "fd00:31::/64")]
    only6 = cli("subnet", "list", "--ip-version", "6", "--network", net["id"], "-f", "json")
    assert [s["ID"] for s in only6] == [v6["id"]]
    assert cli("subnet", "list", "--no-dhcp", "--tags", "v4", "--network", net["id"],
               "-f", "json", "-c", "ID") == [{"ID": sub["id"]}]

    # set adds to the lists; --no-* clears them first
    cli("subnet", "set", name, "--name", name + "-b", "--gateway", "10.31.0.1",
        "--dns-nameserver", "9.9.9.9", "--no-host-route",
        "--allocation-pool", "start=10.31.0.200,end=10.31.0.210", "--dhcp")
    shown = cli("subnet", "show", sub["id"], "-f", "json")
    assert shown["name"] == name + "-b" and shown["gateway_ip"] == "10.31.0.1"
    assert shown["dns_nameservers"] == ["9.9.9.9", "8.8.8.8", "1.1.1.1"]
    assert shown["host_routes"] == [] and shown["enable_dhcp"] is True
    assert len(shown["allocation_pools"]) == 3
    cli("subnet", "unset", sub["id"], "--dns-nameserver", "8.8.8.8",
        "--allocation-pool", "start=10.31.0.100,end=10.31.0.110", "--all-tag")
    got = api.get(f"/subnets/{sub['id']}").json()["subnet"]
    assert got["dns_nameservers"] == ["9.9.9.9", "1.1.1.1"]
    assert got["allocation_pools"] == [{"start": "10.31.0.10", "end": "10.31.0.20"},
                                       {"start": "10.31.0.200", "end": "10.31.0.210"}]
    assert got["tags"] == []

    # the server's reason reaches the user
    err = cli.fails("subnet", "create", unique("overlap"), "--network", net["id"],
                    "--subnet-range", "10.31.0.128/25")
    assert "overlaps with another subnet" in err

    cli("subnet", "delete", sub["id"], v6["id"])
    assert api.get(f"/networks/{net['id']}").json()["network"]["subnets"] == []


def test_port_create_list_show_set_unset_delete(cli: Cli, api: Client) -> None:
    net, sub = api.network_with_subnet("10.41.0.0/24")
    plain = api.create("ports", network_id=net["id"], name=unique("plain"))
    assert plain["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.41.0.2"}]
    other = api.create("subnets", network_id=net["id"], cidr="10.42.0.0/24", ip_version=4,
                       name=unique("other"))
    name = unique("port")
    port = cli("port", "create", name, "--network", net["id"],
               "--fixed-ip", f"subnet={sub['id']},ip-address=10.41.0.77",
               "--mac-address", "fa:16:3e:41:00:01",
               "--allowed-address", "ip-address=10.50.0.0/24",
               "--allowed-address", "ip-address=10.50.1.1,mac-address=fa:16:3e:41:00:99",
               "--extra-dhcp-option", "name=domain-name-servers,value=10.41.0.5",
               "--extra-dhcp-option", "name=ntp-server,value=fd00::5,ip-version=6",
               "--device-owner", "compute:nova", "--disable", "--tag", "web", "-f", "json")
    assert port["network_id"] == net["id"] and port["mac_address"] == "fa:16:3e:41:00:01"
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.41.0.77"}]
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.50.0.0/24", "mac_address": "fa:16:3e:41:00:01"},
        {"ip_address": "10.50.1.1", "mac_address": "fa:16:3e:41:00:99"}]
    assert sorted(port["extra_dhcp_opts"], key=lambda o: o["opt_name"]) == [
        {"opt_name": "domain-name-servers", "opt_value": "10.41.0.5", "ip_version": 4},
        {"opt_name": "ntp-server", "opt_value": "fd00::5", "ip_version": 6}]
    assert port["admin_state_up"] is False and port["status"] == "DOWN"
    assert port["device_owner"] == "compute:nova" and port["tags"] == ["web"]
    assert port["binding_vnic_type"] == "normal" and port["binding_vif_type"] == "unbound"

    by_ip = cli("port", "list", "--network", net["id"], "--fixed-ip", "ip-address=10.41.0.77",
                "-f", "json")
    assert [p["ID"] for p in by_ip] == [port["id"]]
    assert by_ip[0]["MAC Address"] == "fa:16:3e:41:00:01"
    by_subnet = cli("port", "list", "--fixed-ip", f"subnet={sub['id']}",
                    "--fixed-ip", "ip-substring=0.2", "-f", "json", "-c", "ID")
    assert by_subnet == [{"ID": plain["id"]}]
    long = cli("port", "list", "--network", net["id"], "--long", "-f", "json",
               "--sort-column", "Name", "--sort-descending")
    assert [p["Name"] for p in long] == sorted([name, plain["name"]], reverse=True)
    row = next(p for p in long if p["ID"] == port["id"])
    assert row["Device Owner"] == "compute:nova" and row["Tags"] == ["web"]
    assert cli("port", "list", "--device-owner", "compute:nova", "--tags", "web",
               "--mac-address", "fa:16:3e:41:00:01", "-f", "json", "-c", "ID") \
        == [{"ID": port["id"]}]
    paged = cli("port", "list", "--network", net["id"], "--limit", "1", "-f", "json", "-c", "ID")
    assert sorted(p["ID"] for p in paged) == sorted([port["id"], plain["id"]])

    cli("port", "set", name, "--name", name + "-b", "--enable",
        "--fixed-ip", f"subnet={other['id']}", "--no-allowed-address",
        "--allowed-address", "ip-address=10.50.2.2",
        "--extra-dhcp-option", "name=ntp-server,value=10.41.0.6",
        "--host", "compute-1", "--no-tag", "--tag", "db")
    shown = cli("port", "show", port["id"], "-f", "json")
    assert shown["name"] == name + "-b" and shown["admin_state_up"] is True
    assert {f["subnet_id"]: f["ip_address"] for f in shown["fixed_ips"]} == {
        sub["id"]: "10.41.0.77", other["id"]: "10.42.0.2"}
    assert shown["allowed_address_pairs"] == [{"ip_address": "10.50.2.2",
                                               "mac_address": "fa:16:3e:41:00:01"}]
    assert {(o["opt_name"], o["ip_version"]): o["opt_value"]
            for o in shown["extra_dhcp_opts"]} == {
        ("domain-name-servers", 4): "10.41.0.5", ("ntp-server", 4): "10.41.0.6",
        ("ntp-server", 6): "fd00::5"}
    assert shown["binding_host_id"] == "compute-1" and shown["tags"] == ["db"]
    assert shown["revision_number"] > port["revision_number"]

    cli("port", "unset", port["id"], "--fixed-ip", f"subnet={sub['id']},ip-address=10.41.0.77",
        # the CLI matches whole pairs, and the server filled in the port's MAC
        "--allowed-address", "ip-address=10.50.2.2,mac-address=fa:16:3e:41:00:01",
        "--tag", "db", "--host")
    got = api.get(f"/ports/{port['id']}").json()["port"]
    assert got["fixed_ips"] == [{"subnet_id": other["id"], "ip_address": "10.42.0.2"}]
    assert got["allowed_address_pairs"] == [] and got["tags"] == []
    assert got["binding:host_id"] == ""

    # a taken address or MAC is refused, and the server's reason reaches the user
    err = cli.fails("port", "create", unique("dup"), "--network", net["id"],
                    "--fixed-ip", f"subnet={sub['id']},ip-address=10.41.0.2")
    assert "already allocated" in err
    err = cli.fails("port", "create", unique("dup"), "--network", net["id"],
                    "--mac-address", "fa:16:3e:41:00:01")
    assert "in use" in err

    cli("port", "delete", port["id"], plain["id"])
    assert api.get(f"/ports?network_id={net['id']}").json()["ports"] == []
    assert api.delete(f"/networks/{net['id']}").status_code == 204


def test_subnet_pool_create_set_allocate_delete(cli: Cli, api: Client) -> None:
    name = unique("pool")
    pool = cli("subnet", "pool", "create", name, "--pool-prefix", "10.140.0.0/16",
               "--pool-prefix", "10.141.0.0/16", "--default-prefix-length", "24",
               "--min-prefix-length", "20", "--share", "--tag", "sp", "-f", "json")
    # the SDK reads upstream's string lengths as integers
    assert pool["prefixes"] == ["10.140.0.0/15"] and pool["default_prefixlen"] == 24
    assert pool["shared"] is True and pool["tags"] == ["sp"]
    cli("subnet", "pool", "set", name, "--pool-prefix", "10.150.0.0/16",
        "--max-prefix-length", "28")
    got = api.get(f"/subnetpools/{pool['id']}").json()["subnetpool"]
    assert got["prefixes"] == ["10.140.0.0/15", "10.150.0.0/16"]
    assert got["max_prefixlen"] == "28"
    net = api.create("networks", name=unique("pooled"))
    sub = cli("subnet", "create", unique("sub"), "--network", net["id"], "--subnet-pool", name,
              "--prefix-length", "26", "-f", "json")
    assert sub["cidr"] == "10.140.0.0/26" and sub["subnetpool_id"] == pool["id"]
    assert cli("subnet", "list", "--subnet-pool", name, "-f", "value", "-c", "ID").split() \
        == [sub["id"]]
    assert "existing allocations" in cli.fails("subnet", "pool", "delete", name)
    cli("subnet", "delete", sub["id"])
    cli("subnet", "pool", "delete", name)
    assert api.get(f"/subnetpools/{pool['id']}").status_code == 404
