"""Quotas hold exactly under concurrent creates, on every backend and across processes.

Sixteen clients (each its own HTTP session) wait behind a barrier and then all
create the same kind of resource for one project at once.  However the database
interleaves them, the project must end with exactly its limit: every surplus
request refused with a clean 409 ``OverQuota``, never a 5xx, never one too many.

Reproduced before the fix with 16 clients against ``neutrino serve --workers 2`` on
PostgreSQL: 11-13 networks of a quota of 10 and up to 12 routers of 5 (counting
after the insert at READ COMMITTED does not see a concurrent uncommitted insert).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.backends.serving import serve
from tests.conftest import Client, Server, start_server

CLIENTS = 16
#: requests per client: 4x the limit in all, so most of them race for the last slots
PER_CLIENT = 3
LIMITS = {"network": 10, "router": 5, "port": 12, "security_group": 4, "subnet": 6,
          "floatingip": 3, "rbac_policy": 4}


def race(urls: list[str], make: Callable[[requests.Session, str, int], requests.Response]) \
        -> list[requests.Response]:
    """CLIENTS threads, each with its own session, released at once; client k talks to
    ``urls[k % len(urls)]`` (several servers or workers)."""
    start = threading.Barrier(CLIENTS)

    def client(k: int) -> list[requests.Response]:
        session = requests.Session()
        url = urls[k % len(urls)]
        session.get(f"{url}/v2.0/networks?limit=1", timeout=30)  # connected before the race
        start.wait(60)
        return [make(session, url, k * PER_CLIENT + n) for n in range(PER_CLIENT)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [r for f in [pool.submit(client, k) for k in range(CLIENTS)] for r in f.result()]


def outcome(responses: list[requests.Response], limit: int) -> None:
    statuses = Counter(r.status_code for r in responses)
    server_errors = [f"{r.status_code} {r.text[:300]}" for r in responses
                     if r.status_code >= 500]
    assert not server_errors, server_errors[:3]
    assert statuses == {201: limit, 409: len(responses) - limit}, statuses
    refused = {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409}
    assert refused == {"OverQuota"}, refused


class Project:
    """A fresh member project with the test's limits, set by an admin."""

    def __init__(self, url: str) -> None:
        self.id = f"quota-race-{uuid.uuid4().hex[:12]}"
        self.headers = {"X-Project-Id": self.id, "X-Roles": "member"}
        self.admin = Client(url)
        r = self.admin.put(f"/quotas/{self.id}", {"quota": LIMITS})
        assert r.status_code == 200, r.text
        self.member = Client(url, self.id)

    def count(self, collection: str) -> int:
        r = self.admin.get(f"/{collection}?project_id={self.id}&fields=id")
        assert r.status_code == 200, r.text
        return len(r.json()[collection.replace("-", "_")])


def post(collection: str, body: Callable[[int], dict], headers: dict) \
        -> Callable[[requests.Session, str, int], requests.Response]:
    def make(session: requests.Session, url: str, n: int) -> requests.Response:
        return session.post(f"{url}/v2.0/{collection}", json=body(n), headers=headers,
                            timeout=120)
    return make


def check_networks(urls: list[str]) -> None:
    project = Project(urls[0])
    outcome(race(urls, post("networks", lambda n: {"network": {"name": f"n{n}"}},
                            project.headers)), LIMITS["network"])
    assert project.count("networks") == LIMITS["network"]


def check_routers(urls: list[str]) -> None:
    project = Project(urls[0])
    outcome(race(urls, post("routers", lambda n: {"router": {"name": f"r{n}"}},
                            project.headers)), LIMITS["router"])
    assert project.count("routers") == LIMITS["router"]


def check_ports(urls: list[str]) -> None:
    project = Project(urls[0])
    net = project.member.create("networks", name="ports-race")
    project.member.create("subnets", network_id=net["id"], cidr="10.77.0.0/24", ip_version=4)
    outcome(race(urls, post("ports", lambda n: {"port": {"network_id": net["id"]}},
                            project.headers)), LIMITS["port"])
    assert project.count("ports") == LIMITS["port"]


def check_bulk_ports(urls: list[str]) -> None:
    """Bulk creates of two ports race too: all-or-nothing against the limit (12 = 6 x 2)."""
    project = Project(urls[0])
    net = project.member.create("networks", name="bulk-race")
    outcome(race(urls, post("ports", lambda n: {"ports": [{"network_id": net["id"]}] * 2},
                            project.headers)), LIMITS["port"] // 2)
    assert project.count("ports") == LIMITS["port"]


def check_security_groups(urls: list[str]) -> None:
    project = Project(urls[0])
    outcome(race(urls, post("security-groups", lambda n: {"security_group": {"name": f"g{n}"}},
                            project.headers)), LIMITS["security_group"] - 1)  # + default
    assert project.count("security-groups") == LIMITS["security_group"]


def check_subnets(urls: list[str]) -> None:
    project = Project(urls[0])
    net = project.member.create("networks", name="subnets-race")
    outcome(race(urls, post("subnets", lambda n: {"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": f"10.{n}.0.0/24"}},
        project.headers)), LIMITS["subnet"])
    assert project.count("subnets") == LIMITS["subnet"]


CHECKS = {"networks": check_networks, "routers": check_routers, "ports": check_ports,
          "bulk_ports": check_bulk_ports, "security_groups": check_security_groups,
          "subnets": check_subnets}


@pytest.mark.parametrize("what", sorted(CHECKS))
def test_quota_is_exact_under_concurrent_creates(server: Server, what: str) -> None:
    CHECKS[what]([server.url])


@pytest.fixture(scope="module")
def two_servers(database_factory, tmp_path_factory: pytest.TempPathFactory) \
        -> Iterator[list[Server]]:
    """Two servers (processes' worth of pools) on one MariaDB database."""
    url = database_factory("mariadb")
    first = start_server(tmp_path_factory.mktemp("a"), url)
    second = start_server(tmp_path_factory.mktemp("b"), url)
    yield [first, second]
    first.stop()
    second.stop()


@pytest.mark.parametrize("what", ["networks", "routers", "ports"])
def test_quota_is_exact_across_two_servers_on_mariadb(two_servers: list[Server],
                                                      what: str) -> None:
    CHECKS[what]([s.url for s in two_servers])


@pytest.fixture(scope="module")
def serve_workers(database_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``neutrino serve --workers 2`` on PostgreSQL, as the report ran it."""
    with serve(tmp_path_factory.mktemp("serve"), database_factory("postgresql"),
               workers=2) as served:
        yield served.url


@pytest.mark.parametrize("what", ["networks", "routers", "ports", "bulk_ports"])
def test_quota_is_exact_with_two_workers_on_postgresql(serve_workers: str, what: str) -> None:
    CHECKS[what]([serve_workers])
