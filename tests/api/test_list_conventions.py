"""List conventions: filters, fields, sorting and paging, as upstream has them.

One data set is made per server (module) and only read by the filter tests; the
paging tests work in projects of their own so their counts are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from neutrino.schema.resources import RESOURCES
from tests.conftest import Client, Server, assert_error


class Data:
    """Named networks, subnets and ports with known attribute values."""

    def __init__(self, admin: Client) -> None:
        c = admin.create
        self.n = {
            "alpha": c("networks", name="alpha", mtu=1400, description="first",
                       tags=["red", "blue"]),
            "beta": c("networks", name="beta", admin_state_up=False, tags=["red"]),
            "gamma": c("networks", name="gamma", mtu=1300, shared=True,
                       tags=["blue", "green"]),
            "delta": c("networks", name="delta", **{"router:external": True}),
            "alpha2": c("networks", name="alpha", mtu=1400,
                        **{"provider:network_type": "vlan"}),
            "unnamed": c("networks"),
        }
        alpha = self.n["alpha"]["id"]
        self.s = {
            "v4": c("subnets", network_id=alpha, cidr="10.60.1.0/24", ip_version=4,
                    enable_dhcp=False, tags=["sub"]),
            "v6": c("subnets", network_id=alpha, cidr="2001:db8:60::/64", ip_version=6,
                    ipv6_address_mode="slaac", ipv6_ra_mode="slaac"),
            "beta": c("subnets", network_id=self.n["beta"]["id"], cidr="10.60.2.0/24",
                      ip_version=4, gateway_ip="10.60.2.254"),
        }
        self.p = {
            "vm": c("ports", network_id=alpha, device_owner="compute:nova", device_id="vm-1",
                    **{"binding:host_id": "host-1"}),
            "dhcp": c("ports", network_id=alpha, device_owner="network:dhcp"),
            "down": c("ports", network_id=alpha, admin_state_up=False,
                      mac_address="fa:16:3e:60:00:03",
                      fixed_ips=[{"ip_address": "10.60.1.33"}], tags=["red"]),
        }
        self.names = {
            kind: {item["id"]: key for key, item in items.items()}
            for kind, items in (("networks", self.n), ("subnets", self.s), ("ports", self.p))}

    def ids(self, client: Client, collection: str, query: str) -> set[str]:
        r = client.get(f"/{collection}?{query}")
        assert r.status_code == 200, r.text
        return {self.names[collection][i["id"]] for i in r.json()[collection]}


@pytest.fixture(scope="module")
def data(server: Server) -> Data:
    return Data(Client(server.url))


ALL_NETS = {"alpha", "beta", "gamma", "delta", "alpha2", "unnamed"}


@pytest.mark.parametrize("query,expected", [
    ("name=alpha", {"alpha", "alpha2"}),
    ("name=alpha&name=beta", {"alpha", "alpha2", "beta"}),  # repeated: any of them
    ("name=", {"unnamed"}),  # empty-string filtering
    ("name=nothing", set()),
    ("admin_state_up=false", {"beta"}),
    ("admin_state_up=False", {"beta"}),
    ("admin_state_up=0", {"beta"}),
    ("admin_state_up=true", ALL_NETS - {"beta"}),
    ("mtu=1400", {"alpha", "alpha2"}),
    ("mtu=1400&mtu=1300", {"alpha", "alpha2", "gamma"}),
    ("mtu=99999", set()),
    ("shared=true", {"gamma"}),
    ("shared=false", ALL_NETS - {"gamma"}),
    ("router:external=true", {"delta"}),
    ("router:external=false", ALL_NETS - {"delta"}),
    ("description=first", {"alpha"}),
    ("status=ACTIVE", ALL_NETS),
    ("status=DOWN", set()),
    ("project_id=fake_project_id", ALL_NETS),
    ("tenant_id=fake_project_id&name=beta", {"beta"}),
    ("project_id=someone-else", set()),
    ("provider:network_type=vlan", {"alpha2"}),
    ("provider:network_type=vxlan", ALL_NETS - {"alpha2"}),
    ("provider:physical_network=physnet1", {"alpha2"}),
    ("revision_number=1", {"gamma", "delta", "alpha2", "unnamed"}),
    ("revision_number=3", {"alpha"}),  # two subnets made it change twice
    ("name=alpha&mtu=1400&provider:network_type=vlan", {"alpha2"}),  # all must hold
    ("id=not-a-uuid", set()),
    ("tags=red", {"alpha", "beta"}),
    ("tags=red,blue", {"alpha"}),  # all of them
    ("tags=red&tags=blue", {"alpha"}),
    ("tags-any=red,green", {"alpha", "beta", "gamma"}),
    ("tags-any=red&tags-any=green", {"alpha", "beta", "gamma"}),
    ("not-tags=red,blue", ALL_NETS - {"alpha"}),
    ("not-tags-any=red,green", {"delta", "alpha2", "unnamed"}),
    ("tags=blue&not-tags=green", {"alpha"}),
    ("tags=purple", set()),
])
def test_network_filters(admin: Client, data: Data, query: str, expected: set[str]) -> None:
    assert data.ids(admin, "networks", query) == expected


@pytest.mark.parametrize("collection", ["networks", "subnets", "ports"])
def test_every_filterable_attribute(admin: Client, data: Data, collection: str) -> None:
    """For each attribute the contract declares filterable, filtering by an object's value
    finds it, and finds only objects with that value."""
    items = admin.get(f"/{collection}").json()[collection]
    tried = set()
    for spec in RESOURCES[collection].fields:
        if not spec.filter or spec.name in RESOURCES[collection].extra_filters:
            continue
        for item in items:
            value = item.get(spec.name)
            if value is None or isinstance(value, list | dict):
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            r = admin.get(f"/{collection}", params={spec.name: text})
            assert r.status_code == 200, (spec.name, r.text)
            got = r.json()[collection]
            assert item["id"] in {g["id"] for g in got}, (spec.name, text)
            assert all(g[spec.name] == value for g in got), (spec.name, text)
            tried.add(spec.name)
    expected = {"networks": {"id", "name", "mtu", "shared", "provider:network_type",
                             "revision_number", "router:external", "status"},
                "subnets": {"cidr", "gateway_ip", "ip_version", "enable_dhcp", "network_id"},
                "ports": {"mac_address", "device_owner", "binding:host_id", "status"}}
    assert expected[collection] <= tried


def test_filter_by_ids_and_segments(admin: Client, data: Data) -> None:
    a, g = data.n["alpha"]["id"], data.n["gamma"]["id"]
    assert data.ids(admin, "networks", f"id={a}&id={g}") == {"alpha", "gamma"}
    seg = data.n["alpha2"]["provider:segmentation_id"]
    assert data.ids(admin, "networks", f"provider:segmentation_id={seg}") == {"alpha2"}


def test_subnet_filters(admin: Client, data: Data) -> None:
    ids = data.ids
    alpha = data.n["alpha"]["id"]
    assert ids(admin, "subnets", f"network_id={alpha}") == {"v4", "v6"}
    assert ids(admin, "subnets", "ip_version=6") == {"v6"}
    assert ids(admin, "subnets", "ip_version=4&ip_version=6") == {"v4", "v6", "beta"}
    assert ids(admin, "subnets", "ip_version=7") == set()
    assert ids(admin, "subnets", "cidr=10.60.2.0/24") == {"beta"}
    assert ids(admin, "subnets", "cidr=2001:db8:60::/64") == {"v6"}
    assert ids(admin, "subnets", "gateway_ip=10.60.2.254") == {"beta"}
    assert ids(admin, "subnets", "gateway_ip=bogus") == set()
    assert ids(admin, "subnets", "enable_dhcp=false") == {"v4"}
    assert ids(admin, "subnets", "ipv6_address_mode=slaac") == {"v6"}
    assert ids(admin, "subnets", "ipv6_ra_mode=nonsense") == set()
    assert ids(admin, "subnets", "router:external=false") == {"v4", "v6", "beta"}
    assert ids(admin, "subnets", "tags=sub") == {"v4"}
    assert ids(admin, "subnets", "subnetpool_id=0a0a0a0a-0000-4000-8000-000000000000") == set()


def test_port_filters(admin: Client, data: Data) -> None:
    ids = data.ids
    v4, v6 = data.s["v4"]["id"], data.s["v6"]["id"]
    assert ids(admin, "ports", "device_owner=network:dhcp") == {"dhcp"}
    assert ids(admin, "ports", "device_owner=network:dhcp&device_owner=compute:nova") == {
        "dhcp", "vm"}
    assert ids(admin, "ports", "device_id=vm-1") == {"vm"}
    assert ids(admin, "ports", "mac_address=fa:16:3e:60:00:03") == {"down"}
    assert ids(admin, "ports", "mac_address=bogus") == set()
    assert ids(admin, "ports", "admin_state_up=false") == {"down"}
    assert ids(admin, "ports", "binding:host_id=host-1") == {"vm"}
    assert ids(admin, "ports", f"network_id={data.n['beta']['id']}") == set()
    assert ids(admin, "ports", "fixed_ips=ip_address=10.60.1.33") == {"down"}
    assert ids(admin, "ports", "fixed_ips=ip_address=10.60.1.33"
                               "&fixed_ips=ip_address=10.60.1.2") == {"down", "vm"}
    assert ids(admin, "ports", f"fixed_ips=subnet_id={v6}") == {"vm", "dhcp", "down"}
    assert ids(admin, "ports", f"fixed_ips=subnet_id={v4}"
                               "&fixed_ips=ip_address=10.60.1.33") == {"down"}
    assert ids(admin, "ports", "fixed_ips=ip_address_substr=1.33") == {"down"}
    assert ids(admin, "ports", "fixed_ips=ip_address_substr=10.60.1."
                               "&fixed_ips=ip_address=10.60.1.3") == {"dhcp"}
    assert ids(admin, "ports", "fixed_ips=ip_address=10.99.9.9") == set()
    assert ids(admin, "ports", "tags-any=red") == {"down"}


@pytest.mark.parametrize("path,type_,message", [
    ("/networks?foo=bar", "HTTPBadRequest", "['foo'] is invalid attribute for filtering"),
    ("/networks?subnets=x", "HTTPBadRequest", "['subnets'] is invalid attribute for filtering"),
    ("/networks?created_at=x", "HTTPBadRequest", "['created_at'] is invalid attribute"),
    ("/networks?port_security_enabled=true", "HTTPBadRequest", "invalid attribute for "
     "filtering"),
    ("/subnets?allocation_pools=x", "HTTPBadRequest", "['allocation_pools'] is invalid"),
    ("/subnets?dns_nameservers=1.1.1.1", "HTTPBadRequest", "['dns_nameservers'] is invalid"),
    ("/ports?binding:vnic_type=normal", "HTTPBadRequest", "['binding:vnic_type'] is invalid"),
    ("/ports?binding:profile=x", "HTTPBadRequest", "['binding:profile'] is invalid"),
    ("/networks?admin_state_up=maybe", "InvalidInput", "'maybe' cannot be converted to "
     "boolean."),
    ("/networks?shared=perhaps", "InvalidInput", "'perhaps' cannot be converted to boolean."),
    ("/networks?mtu=big", "InvalidInput", "'big' is not an integer."),
    ("/subnets?ip_version=four", "InvalidInput", "'four' is not an integer."),
    ("/subnets?cidr=bad", "InvalidInput", "bad is not in a CIDR format."),
    ("/ports?fixed_ips=foo", "InvalidInput", "'foo' is not of the form <key>=[value]."),
    ("/ports?fixed_ips=mac=1", "HTTPBadRequest", "Invalid fixed_ips filter 'mac=1'"),
    ("/networks?sort_key=name", "HTTPBadRequest",
     "The number of sort_keys and sort_dirs must be same"),
    ("/networks?sort_dir=asc", "HTTPBadRequest", "The number of sort_keys and sort_dirs"),
    ("/networks?sort_key=name&sort_key=mtu&sort_dir=asc", "HTTPBadRequest",
     "The number of sort_keys and sort_dirs must be same"),
    ("/networks?sort_key=foo&sort_dir=asc", "HTTPBadRequest",
     "['foo'] is invalid attribute for sort_keys"),
    ("/networks?sort_key=tags&sort_dir=asc", "HTTPBadRequest",
     "['tags'] is invalid attribute for sort_keys"),
    ("/networks?sort_key=shared&sort_dir=asc", "HTTPBadRequest",
     "['shared'] is invalid attribute for sort_keys"),
    ("/networks?sort_key=name&sort_dir=up", "HTTPBadRequest",
     "['up'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'"),
    ("/networks?limit=abc", "BadRequest",
     "Bad limit request: Limit must be an integer 0 or greater and not 'abc'."),
    ("/networks?limit=-1", "BadRequest", "Limit must be an integer 0 or greater and not '-1'"),
    ("/networks?limit=1&marker=0b0b0b0b-0000-4000-8000-000000000000", "NetworkNotFound",
     "Network 0b0b0b0b-0000-4000-8000-000000000000 could not be found."),
])
def test_invalid_list_queries(admin: Client, data: Data, path: str, type_: str,
                              message: str) -> None:
    status = 404 if type_.endswith("NotFound") else 400
    assert_error(admin.get(path), status, type_, message)


def test_fields(admin: Client, data: Data) -> None:
    alpha = data.n["alpha"]["id"]
    r = admin.get("/networks", params={"fields": ["id", "name"], "id": alpha})
    assert r.json()["networks"] == [{"id": alpha, "name": "alpha"}]
    r = admin.get(f"/networks?id={alpha}&fields=name&fields=mtu&fields=name")
    assert r.json()["networks"] == [{"name": "alpha", "mtu": 1400}]
    r = admin.get(f"/networks/{alpha}?fields=tenant_id&fields=tags")
    assert r.json()["network"] == {"tenant_id": "fake_project_id", "tags": ["blue", "red"]}
    r = admin.get(f"/networks?id={alpha}&fields=nonexistent")
    assert r.json()["networks"] == [{}]
    r = admin.get(f"/subnets/{data.s['v4']['id']}?fields=allocation_pools")
    assert r.json()["subnet"] == {"allocation_pools": [{"start": "10.60.1.2",
                                                        "end": "10.60.1.254"}]}
    r = admin.get(f"/ports?id={data.p['vm']['id']}&fields=binding:host_id&fields=fixed_ips")
    assert r.json()["ports"] == [{"binding:host_id": "host-1",
                                  "fixed_ips": data.p["vm"]["fixed_ips"]}]


def names(r: requests.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [n["name"] for n in r.json()["networks"]]


def test_sorting(admin: Client, data: Data) -> None:
    base = "/networks?fields=name&fields=mtu&name=alpha&name=beta&name=gamma&name=delta"
    assert names(admin.get(f"{base}&sort_key=name&sort_dir=asc")) == [
        "alpha", "alpha", "beta", "delta", "gamma"]
    assert names(admin.get(f"{base}&sort_key=name&sort_dir=desc")) == [
        "gamma", "delta", "beta", "alpha", "alpha"]
    r = admin.get(f"{base}&sort_key=mtu&sort_dir=asc&sort_key=name&sort_dir=desc")
    assert [(n["mtu"], n["name"]) for n in r.json()["networks"]] == [
        (1300, "gamma"), (1400, "alpha"), (1400, "alpha"), (1450, "delta"), (1450, "beta")]
    # ties are broken by id, so the order is stable
    r = admin.get(f"{base}&sort_key=name&sort_dir=asc&fields=id")
    pair = [n["id"] for n in r.json()["networks"] if n["name"] == "alpha"]
    assert pair == sorted([data.n["alpha"]["id"], data.n["alpha2"]["id"]])
    ids = [n["id"] for n in admin.get("/networks").json()["networks"]]
    assert ids == sorted(ids)  # default order: by id
    r = admin.get("/subnets?sort_key=cidr&sort_dir=desc&sort_key=ip_version&sort_dir=asc")
    assert [s["cidr"] for s in r.json()["subnets"]] == [
        "2001:db8:60::/64", "10.60.2.0/24", "10.60.1.0/24"]


def links(body: dict, collection: str = "networks") -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body.get(f"{collection}_links", [])}


def walk(client: Client, url: str, rel: str) -> Iterator[tuple[list[dict], dict[str, str]]]:
    """Follow ``rel`` links from ``url``; yield each page and its links."""
    for _ in range(50):
        r = client.session.get(url, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        page_links = links(body)
        yield body["networks"], page_links
        if rel not in page_links:
            return
        url = page_links[rel]
    raise AssertionError("paging did not end")


@pytest.fixture
def seven(project_client) -> tuple[Client, list[dict], str]:
    """A project with seven networks, and the filter that lists only them (it also
    sees the shared and external networks of others)."""
    client = project_client()
    made = [client.create("networks", name=f"page-{i % 3}", mtu=1400 + i % 2)
            for i in range(7)]
    return client, made, f"project_id={client.session.headers['X-Project-Id']}"


@pytest.mark.parametrize("limit", [1, 2, 7])
def test_paging_forward_and_back_by_links(seven: tuple[Client, list[dict], str],
                                          limit: int) -> None:
    client, made, mine = seven
    everything = [n["id"] for n in client.get(f"/networks?{mine}").json()["networks"]]
    assert sorted(everything) == sorted(n["id"] for n in made)
    pages = list(walk(client, f"{client.base}/v2.0/networks?{mine}&limit={limit}&fields=id",
                      "next"))
    forward = [n["id"] for page, _ in pages for n in page]
    assert forward == everything
    assert all(len(page) == limit for page, _ in pages[:-1])
    last, last_links = pages[-1]
    assert len(last) < limit  # upstream's rule: a full page always has a "next"
    assert "next" not in last_links and "previous" in last_links
    # the first page has a "previous" too (to an empty page), as upstream
    assert "previous" in pages[0][1]
    href = urlsplit(pages[0][1]["next"])
    assert parse_qs(href.query)["fields"] == ["id"] and parse_qs(href.query)["limit"] == [
        str(limit)] and parse_qs(href.query)["project_id"] == [mine.split("=")[1]]
    # back from the last page: everything before it, page by page
    back = list(walk(client, last_links["previous"], "previous"))
    backward = [n["id"] for page, _ in back for n in reversed(page)]
    assert backward == list(reversed(everything[:len(everything) - len(last)]))
    assert len(back[-1][0]) < limit and "next" in back[-1][1]


def test_paging_with_several_sort_keys(seven: tuple[Client, list[dict], str]) -> None:
    client, _, mine = seven
    query = f"{mine}&sort_key=name&sort_dir=desc&sort_key=mtu&sort_dir=asc&fields=id&fields=name"
    everything = client.get(f"/networks?{query}").json()["networks"]
    assert [n["name"] for n in everything] == ["page-2"] * 2 + ["page-1"] * 2 + ["page-0"] * 3
    pages = list(walk(client, f"{client.base}/v2.0/networks?{query}&limit=2", "next"))
    assert [n for page, _ in pages for n in page] == everything
    back = list(walk(client, pages[-1][1]["previous"], "previous"))
    assert [n for page, _ in reversed(back) for n in page] + pages[-1][0] == everything


def test_marker_and_page_reverse(seven: tuple[Client, list[dict], str]) -> None:
    client, _, mine = seven
    ids = [n["id"] for n in client.get(f"/networks?{mine}").json()["networks"]]

    def page(query: str) -> list[str]:
        r = client.get(f"/networks?{mine}&fields=id&{query}")
        assert r.status_code == 200, r.text
        return [n["id"] for n in r.json()["networks"]]

    assert page(f"limit=2&marker={ids[1]}") == ids[2:4]
    assert page(f"limit=3&marker={ids[5]}") == ids[6:]
    assert page(f"limit=2&marker={ids[4]}&page_reverse=True") == ids[2:4]
    assert page("limit=2&page_reverse=true") == ids[-2:]
    assert page(f"limit=10&marker={ids[0]}&page_reverse=true") == []
    # without a limit a marker still counts (upstream ignores it: a deliberate difference)
    assert page(f"marker={ids[3]}") == ids[4:]
    assert page(f"marker={ids[3]}&page_reverse=true") == ids[:3]
    assert page("page_reverse=true") == ids
    assert page("limit=2&page_reverse=maybe") == ids[:2]  # only "true" is true, as upstream
    assert page("limit=0") == ids and "networks_links" not in client.get(
        f"/networks?{mine}&limit=0").json()
    # a marker from a list filtered away still places the page
    assert page(f"limit=2&marker={ids[2]}&name=page-0") == [
        i for i in ids[3:] if i in page("name=page-0")][:2]


@pytest.mark.parametrize("key", ["gateway_ip", "ipv6_address_mode", "enable_dhcp", "name"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_paging_over_nullable_and_boolean_keys(project_client, key: str,
                                               direction: str) -> None:
    """Keyset paging holds on columns with NULLs and booleans, on every backend."""
    client = project_client()
    net = client.create("networks")
    specs = [("10.110.0.0/24", {"gateway_ip": None, "enable_dhcp": False}),
             ("10.111.0.0/24", {}),
             ("2001:db8:110::/64", {"ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"}),
             ("10.112.0.0/24", {"gateway_ip": None, "name": "z"}),
             ("2001:db8:111::/64", {"gateway_ip": None, "enable_dhcp": False})]
    for cidr, extra in specs:
        client.create("subnets", network_id=net["id"], cidr=cidr,
                      ip_version=6 if ":" in cidr else 4, **extra)
    query = f"network_id={net['id']}&sort_key={key}&sort_dir={direction}&fields=id&fields={key}"
    everything = client.get(f"/subnets?{query}").json()["subnets"]
    values = [s[key] for s in everything]
    if key in ("gateway_ip", "ipv6_address_mode"):  # NULLs first ascending, last descending
        nulls = values.count(None)
        edge = values[:nulls] if direction == "asc" else values[len(values) - nulls:]
        assert nulls and edge == [None] * nulls
    collected, url = [], f"{client.base}/v2.0/subnets?{query}&limit=1"
    for _ in range(10):
        body = client.session.get(url, timeout=30).json()
        collected += body["subnets"]
        hrefs = {link["rel"]: link["href"] for link in body["subnets_links"]}
        if "next" not in hrefs:
            break
        url = hrefs["next"]
    assert collected == everything
