"""Concurrent writers on every backend: no address, MAC or VNI is ever handed out twice.

Eight clients (threads, each with its own HTTP session, so eight connections)
race on the same network.  Whatever the database's isolation and locking, the
outcome must be as if the requests had run one by one: every free address used
exactly once, the surplus refused with a clean 409, and never a 5xx.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import Client, Server

CLIENTS = 8
PORTS = 400
NETWORKS_PER_CLIENT = 25


def race(jobs: int, request: Callable[[requests.Session, int], requests.Response]) \
        -> list[requests.Response]:
    """Run ``jobs`` requests from CLIENTS threads, each thread on its own session."""
    local = threading.local()
    start = threading.Barrier(CLIENTS)

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            start.wait(30)  # all clients connected before the first write
        return local.session

    def one(n: int) -> requests.Response:
        return request(session(), n)

    with ThreadPoolExecutor(CLIENTS) as pool:
        # each thread takes every CLIENTS-th job, so all of them reach the barrier
        futures = [pool.submit(lambda k=k: [one(n) for n in range(k, jobs, CLIENTS)])
                   for k in range(CLIENTS)]
        return [r for f in futures for r in f.result()]


def no_server_errors(responses: list[requests.Response]) -> Counter:
    statuses = Counter(r.status_code for r in responses)
    errors = [f"{r.status_code} {r.text[:300]}" for r in responses if r.status_code >= 500]
    assert not errors, f"{len(errors)} server errors, e.g. {errors[:3]}"
    return statuses


@pytest.fixture
def unlimited(admin: Client) -> Client:
    r = admin.put("/quotas/fake_project_id",
                  {"quota": {"network": -1, "subnet": -1, "port": -1}})
    assert r.status_code == 200, r.text
    return admin


def test_concurrent_ports_use_every_address_once(server: Server, unlimited: Client) -> None:
    net, sub = unlimited.network_with_subnet("10.200.0.0/24")
    url = f"{server.url}/v2.0/ports"

    def create(session: requests.Session, n: int) -> requests.Response:
        return session.post(url, json={"port": {"network_id": net["id"], "name": f"p{n}"}},
                            timeout=120)

    responses = race(PORTS, create)
    statuses = no_server_errors(responses)
    free = 253  # a /24 without network, broadcast and gateway (.1)
    assert statuses == {201: free, 409: PORTS - free}, statuses
    refused = {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409}
    assert refused == {"IpAddressGenerationFailure"}

    created = [r.json()["port"] for r in responses if r.status_code == 201]
    listed = unlimited.get(f"/ports?network_id={net['id']}").json()["ports"]
    assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in created)
    addresses = [ip["ip_address"] for p in listed for ip in p["fixed_ips"]]
    assert all(len(p["fixed_ips"]) == 1 and p["fixed_ips"][0]["subnet_id"] == sub["id"]
               for p in listed)
    pool = [str(ip) for ip in ipaddress.ip_network("10.200.0.0/24").hosts()][1:]
    assert sorted(addresses, key=ipaddress.ip_address) == pool  # each exactly once
    assert {p["id"]: p["fixed_ips"] for p in created} == \
        {p["id"]: p["fixed_ips"] for p in listed}  # what a client was told is what holds
    macs = [p["mac_address"] for p in listed]
    assert len(set(macs)) == len(macs)

    # the network is full: one more is refused, and a freed address is handed out again
    r = unlimited.post("/ports", {"port": {"network_id": net["id"]}})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == \
        "IpAddressGenerationFailure"
    victim = next(p for p in listed if p["fixed_ips"][0]["ip_address"] == "10.200.0.77")
    assert unlimited.delete(f"/ports/{victim['id']}").status_code == 204
    again = unlimited.create("ports", network_id=net["id"])
    assert again["fixed_ips"][0]["ip_address"] == "10.200.0.77"


def test_concurrent_networks_get_distinct_vnis(server: Server, unlimited: Client) -> None:
    url = f"{server.url}/v2.0/networks"
    mark = f"vni-race-{server.settings.port}"

    def create(session: requests.Session, n: int) -> requests.Response:
        return session.post(url, json={"network": {"name": f"{mark}-{n}"}}, timeout=120)

    jobs = CLIENTS * NETWORKS_PER_CLIENT
    responses = race(jobs, create)
    refused = [r.text for r in responses if r.status_code != 201]
    assert no_server_errors(responses) == {201: jobs}, refused[:3]
    told = [r.json()["network"]["provider:segmentation_id"] for r in responses]
    assert len(set(told)) == jobs, Counter(told).most_common(3)

    listed = [n for n in unlimited.get("/networks").json()["networks"]
              if n["name"].startswith(mark)]
    assert len(listed) == jobs
    assert {n["provider:network_type"] for n in listed} == {"vxlan"}
    vnis = [n["provider:segmentation_id"] for n in listed]
    assert len(set(vnis)) == jobs
    # and no VNI of these is shared with any other network either
    everyone = [n["provider:segmentation_id"] for n in unlimited.get("/networks").json()
                ["networks"] if n["provider:network_type"] == "vxlan"]
    assert len(set(everyone)) == len(everyone)
