"""``fields=`` reads only what it shows; every declared sort key sorts.

A list or show asking for some attributes reads only the tables those come from
(proved by the SQL the server runs: the server lives in this process, so its engine
can be watched), and answers exactly what the whole object would show for them.
The contract's sortable attributes are the ones that sort (what OpenAPI and the
400s say agree), as upstream has them.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import event

from neutrino.rpc.publisher import THREAD_NAME as PUBLISHER_THREAD
from neutrino.schema.resources import RESOURCES
from tests.conftest import Client, Server, assert_error

#: the attributes of each collection stored outside its own table
CHILDREN = {
    "networks": ("subnets", "shared", "tags", "provider:network_type"),
    "subnets": ("allocation_pools", "dns_nameservers", "host_routes", "subnetpool_id",
                "router:external", "tags"),
    "ports": ("fixed_ips", "allowed_address_pairs", "extra_dhcp_opts", "security_groups",
              "tags"),
}


@contextmanager
def statements(server: Server) -> Iterator[list[str]]:
    """The SQL statements the server runs meanwhile for requests (not those of its
    outbox publisher, whose sweeps run on their own thread whenever they are due)."""
    seen: list[str] = []

    def hook(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if threading.current_thread().name != PUBLISHER_THREAD:
            seen.append(statement)

    event.listen(server.db.engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(server.db.engine, "before_cursor_execute", hook)


def tables_read(server: Server, client: Client, path: str) -> set[str]:
    with statements(server) as seen:
        r = client.get(path)
        assert r.status_code == 200, r.text
    return {name.lower() for text in seen
            for name in re.findall(r"""\b(?:FROM|JOIN)\s+[`"]?(\w+)""", text, re.I)}


@dataclass
class Data:
    admin: Client
    member: Client
    port: dict


@pytest.fixture(scope="module")
def data(server: Server) -> Data:
    """A member's network, subnets (one from a shared pool) and ports with something in
    every list attribute; an admin's shared VLAN network beside them."""
    admin = Client(server.url)
    member = Client(server.url, project=f"p-{uuid.uuid4().hex[:8]}")
    admin.create("networks", name="shared-vlan", shared=True, tags=["t"],
                 **{"provider:network_type": "vlan"})
    pool = admin.create("subnetpools", name="pool", prefixes=["10.80.0.0/16"],
                        default_prefixlen=24, shared=True)
    net = member.create("networks", name="mine", tags=["b", "a"])
    sub = member.create("subnets", network_id=net["id"], cidr="10.81.0.0/24", ip_version=4,
                        dns_nameservers=["10.0.0.53"], tags=["s"],
                        host_routes=[{"destination": "10.90.0.0/16",
                                      "nexthop": "10.81.0.254"}])
    other = member.create("networks", name="pooled")  # one pool per network
    member.create("subnets", network_id=other["id"], subnetpool_id=pool["id"], ip_version=4)
    port = member.create("ports", network_id=net["id"], name="full", tags=["p"],
                         allowed_address_pairs=[{"ip_address": "10.99.0.1"}],
                         extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}],
                         fixed_ips=[{"subnet_id": sub["id"]}])
    member.create("ports", network_id=net["id"], name="plain")
    return Data(admin, member, port)


@pytest.mark.parametrize("path,extra", [
    ("/ports?fields=id&fields=name", set()),
    ("/ports?fields=mac_address&fields=binding:host_id", set()),
    ("/ports?fields=fixed_ips", {"ip_allocations"}),
    ("/ports?fields=allowed_address_pairs", {"address_pairs"}),
    ("/ports?fields=extra_dhcp_opts", {"dhcp_options"}),
    ("/ports?fields=security_groups&fields=tags", {"port_security_groups", "tags"}),
    ("/ports", {"ip_allocations", "address_pairs", "dhcp_options", "port_security_groups",
                "tags"}),
    ("/networks?fields=id&fields=mtu", set()),
    ("/networks?fields=subnets", {"subnets"}),
    ("/networks?fields=shared", {"network_rbacs"}),
    ("/networks?fields=provider:segmentation_id", {"segments"}),
    ("/networks?fields=tags", {"tags"}),
    ("/networks", {"subnets", "network_rbacs", "segments", "tags"}),
    ("/subnets?fields=id&fields=cidr", set()),
    ("/subnets?fields=allocation_pools", {"allocation_pools"}),
    ("/subnets?fields=dns_nameservers&fields=host_routes",
     {"dns_nameservers", "host_routes"}),
    ("/subnets?fields=subnetpool_id", {"subnet_pool_allocations"}),
    ("/subnets?fields=router:external", {"networks"}),
    ("/subnets", {"allocation_pools", "dns_nameservers", "host_routes",
                  "subnet_pool_allocations", "networks", "tags"}),
])
def test_fields_read_only_the_tables_they_show(server: Server, data: Data, path: str,
                                               extra: set[str]) -> None:
    main = path.split("?")[0].strip("/")
    assert tables_read(server, data.admin, path) == {main} | extra


def test_show_with_fields_reads_only_what_it_shows(server: Server, data: Data) -> None:
    port = data.port["id"]
    assert tables_read(server, data.admin, f"/ports/{port}?fields=id&fields=name") == {
        "ports"}
    assert tables_read(server, data.admin, f"/ports/{port}?fields=fixed_ips") == {
        "ports", "ip_allocations"}


def test_admin_only_attributes_are_never_read_for_others(server: Server, data: Data) -> None:
    # the member's scope reads sharing policies; the segments stay unread
    read = tables_read(server, data.member, "/networks?fields=id&fields=provider:network_type")
    assert "segments" not in read
    assert "segments" not in tables_read(server, data.member, "/networks")


def _expected(items: list[dict], fields: tuple[str, ...]) -> list[dict]:
    return [{f: item[f] for f in fields if f in item} for item in items]


@pytest.mark.parametrize("collection", ["networks", "subnets", "ports"])
@pytest.mark.parametrize("who", ["admin", "member"])
def test_fields_answer_what_the_whole_object_shows(data: Data, collection: str,
                                                   who: str) -> None:
    client = data.admin if who == "admin" else data.member
    whole = client.get(f"/{collection}").json()[collection]
    assert len(whole) >= 2
    names = [f.name for f in RESOURCES[collection].fields] + ["no-such-attribute"]
    # each attribute alone, each pair of attributes stored elsewhere, and with a column
    wanted = [(name,) for name in names]
    wanted += list(itertools.combinations(CHILDREN[collection], 2))
    wanted += [("id", *CHILDREN[collection])]
    for fields in wanted:
        got = client.get(f"/{collection}", params={"fields": list(fields)})
        assert got.json()[collection] == _expected(whole, fields), fields
        one = client.get(f"/{collection}/{whole[0]['id']}", params={"fields": list(fields)})
        assert one.json()[collection[:-1]] == _expected(whole[:1], fields)[0], fields


def test_paging_links_with_fields_that_leave_out_id(data: Data) -> None:
    """The links of a page name its last id even when ``id`` is not shown."""
    r = data.member.get("/ports", params={"fields": "name", "limit": 1})
    body = r.json()
    assert len(body["ports"]) == 1 and set(body["ports"][0]) == {"name"}
    (nxt,) = [link["href"] for link in body["ports_links"] if link["rel"] == "next"]
    assert "marker=" in nxt


# -- sorting ---------------------------------------------------------------------------

SORTABLE = [(path, f.name) for path, resource in RESOURCES.items() for f in resource.fields
            if f.sort]


@pytest.mark.parametrize("path,key", SORTABLE)
def test_every_declared_sort_key_sorts(data: Data, path: str, key: str) -> None:
    """What the contract (and so OpenAPI) calls sortable sorts, and pages."""
    client = data.admin
    resource = RESOURCES[path]
    for direction in ("asc", "desc"):
        r = client.get(f"/{resource.url_path}", params={"sort_key": key, "sort_dir": direction,
                                                         "limit": 1})
        assert r.status_code == 200, (key, r.text)
        links = {link["rel"]: link["href"] for link in r.json()[f"{resource.collection}_links"]}
        if r.json()[resource.collection]:  # the marker's position is read by its key too
            r = client.session.get(links["next"], timeout=30)
            assert r.status_code == 200, (key, r.text)


@pytest.mark.parametrize("key", ["provider:network_type", "provider:physical_network",
                                 "provider:segmentation_id"])
def test_provider_attributes_filter_but_do_not_sort(server: Server, data: Data,
                                                    key: str) -> None:
    # as upstream: they are no sort keys
    r = data.admin.get("/networks", params={"sort_key": key, "sort_dir": "asc"})
    assert_error(r, 400, "HTTPBadRequest", f"['{key}'] is invalid attribute for sort_keys")
    document = Client(server.url).session.get(f"{server.url}/openapi.json", timeout=30).json()
    params = document["paths"]["/v2.0/networks"]["get"]["parameters"]
    (sort_key,) = [p for p in params if p["name"] == "sort_key"]
    assert key not in sort_key["schema"]["items"]["enum"]
    assert "mtu" in sort_key["schema"]["items"]["enum"]
    (filter_,) = [p for p in params if p["name"] == key]
    assert filter_


def test_subnets_sort_and_page_by_their_pool(data: Data) -> None:
    """As upstream, subnets sort by ``subnetpool_id`` (null first ascending)."""
    admin = data.admin
    tag = f"sort-{uuid.uuid4().hex[:8]}"
    pools = sorted((admin.create("subnetpools", name=f"sort-{i}",
                                 prefixes=[f"10.{70 + i}.0.0/16"], default_prefixlen=24)
                    for i in range(2)), key=lambda p: p["id"])

    def subnet(**attrs: object) -> dict:  # a network each: one pool per network
        net = admin.create("networks", name=tag)
        return admin.create("subnets", network_id=net["id"], ip_version=4, tags=[tag],
                            **attrs)

    made = [subnet(subnetpool_id=pool["id"]) for pool in (pools[1], pools[0], pools[1])]
    made.append(subnet(cidr="10.79.0.0/24"))
    expected = sorted(made, key=lambda s: (s["subnetpool_id"] is not None,
                                           s["subnetpool_id"] or "", s["id"]))
    base = f"/subnets?tags={tag}&sort_key=subnetpool_id"
    r = admin.get(f"{base}&sort_dir=asc")
    assert [s["id"] for s in r.json()["subnets"]] == [s["id"] for s in expected]
    r = admin.get(f"{base}&sort_dir=desc")  # ties still by id, ascending
    descending = sorted(sorted(made, key=lambda s: s["id"]), reverse=True,
                        key=lambda s: (s["subnetpool_id"] is not None, s["subnetpool_id"] or ""))
    assert [s["id"] for s in r.json()["subnets"]] == [s["id"] for s in descending]
    # keyset paging over the subquery key, forward through the links
    seen: list[str] = []
    url = f"{admin.base}/v2.0{base}&sort_dir=asc&limit=1"
    for _ in range(10):
        body = admin.session.get(url, timeout=30).json()
        seen += [s["id"] for s in body["subnets"]]
        nxt = [link["href"] for link in body["subnets_links"] if link["rel"] == "next"]
        if not body["subnets"] or not nxt:
            break
        url = nxt[0]
    assert seen == [s["id"] for s in expected]
