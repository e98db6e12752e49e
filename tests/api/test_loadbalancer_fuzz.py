"""Schemathesis fuzzes every operation of the load-balancer API's OpenAPI document
(``/load-balancer/openapi.json``, made from the declarations the request checks use).

Whatever comes in, the server must never answer 5xx, and every 4xx must be Octavia's
``faultcode``/``faultstring``/``debuginfo`` envelope (a bad token: keystonemiddleware's
shape).  Random UUIDs name nothing, so a stable share of each case is "deepened"
first: path ids and body references (``loadbalancer_id``, ``listener_id``,
``pool_id``, ``vip_subnet_id``, member ``subnet_id``) are replaced with real objects
made for the run; a DELETE gets a fresh throwaway.  Cases go as the admin, or (one
in four) as a member of another project.  ``NEUTRINO_FUZZ_BACKEND=postgresql`` (or
``mariadb``) runs it on another backend.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from neutrino.api.loadbalancer.openapi import document
from tests.api.lb_helpers import LbClient
from tests.conftest import Server, start_server

MAX_EXAMPLES = int(os.environ.get("NEUTRINO_FUZZ_EXAMPLES", "30"))
CHECKS = [status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzz_server(database_factory: Callable[[str], str],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = os.environ.get("NEUTRINO_FUZZ_BACKEND", "sqlite")
    srv = start_server(tmp_path_factory.mktemp("fuzz-lb"), database_factory(backend))
    yield srv
    srv.stop()


class Seeds:
    """Real load-balancer objects that deepened cases point at."""

    def __init__(self, url: str) -> None:
        self.c = LbClient(url)  # the admin (noauth without headers)
        self.subnet = self.c.subnet("10.96.0.0/16")
        self.lb = self.c.loadbalancer(self.subnet["id"])
        lb_id = self.lb["id"]
        self.listener = self.c.make("/listeners", "listener", loadbalancer_id=lb_id,
                                    protocol="HTTP", protocol_port=80)
        self.c.active(lb_id)
        self.pool = self.c.make("/pools", "pool", listener_id=self.listener["id"],
                                protocol="HTTP", lb_algorithm="ROUND_ROBIN")
        self.c.active(lb_id)
        self.member = self.c.make(f"/pools/{self.pool['id']}/members", "member",
                                  address="10.96.0.10", protocol_port=80)
        self.c.active(lb_id)
        self.policy = self.c.make("/l7policies", "l7policy", listener_id=self.listener["id"],
                                  action="REJECT")
        self.c.active(lb_id)
        self.rule = self.c.make(f"/l7policies/{self.policy['id']}/rules", "rule",
                                type="PATH", compare_type="STARTS_WITH", value="/x")
        self.c.active(lb_id)
        self.other = LbClient.fresh(url).session.headers

    def ids(self, collection: str) -> str | None:
        return {"loadbalancers": self.lb["id"], "listeners": self.listener["id"],
                "pools": self.pool["id"], "members": self.member["id"],
                "l7policies": self.policy["id"], "rules": self.rule["id"]}.get(collection)

    def throwaway(self) -> str:
        return self.c.make("/loadbalancers", "loadbalancer",
                           vip_subnet_id=self.subnet["id"])["id"]


@pytest.fixture(scope="module")
def seeds(fuzz_server: Server) -> Seeds:
    return Seeds(fuzz_server.url)


schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document())))


def test_document_is_valid_openapi_and_served_as_built(fuzz_server: Server) -> None:
    served = schemathesis.openapi.from_url(f"{fuzz_server.url}/load-balancer/openapi.json")
    served.validate()
    assert served.raw_schema == schema.raw_schema
    paths = served.raw_schema["paths"]
    create = paths["/load-balancer/v2/lbaas/healthmonitors"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]["healthmonitor"]["required"]) == {
        "pool_id", "type", "delay", "timeout", "max_retries"}


def _stable(case: Any) -> int:
    text = repr((case.method, case.path, case.path_parameters, case.query, case.body))
    return zlib.crc32(text.encode())


REFS = {"loadbalancer_id": "loadbalancers", "listener_id": "listeners", "pool_id": "pools",
        "default_pool_id": "pools", "redirect_pool_id": "pools"}


def deepen(case: Any, seeds: Seeds) -> None:
    roll = _stable(case)
    if roll % 4 == 3:
        case.headers = {**(case.headers or {}), **seeds.other}
    if roll % 5 == 0:
        return  # some go as generated
    params = case.path_parameters or {}
    parts = case.path.split("/")
    if "pool_id" in params:
        params["pool_id"] = seeds.pool["id"]
    if "l7policy_id" in params:
        params["l7policy_id"] = seeds.policy["id"]
    if "id" in params:
        collection = parts[parts.index("{id}") - 1]
        if case.method.upper() == "DELETE" and collection == "loadbalancers":
            params["id"] = seeds.throwaway()
        elif case.method.upper() != "DELETE" and seeds.ids(collection):
            params["id"] = seeds.ids(collection)  # type: ignore[assignment]
    body = case.body
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict):
            for key, collection in REFS.items():
                if key in inner and roll % 3:
                    inner[key] = seeds.ids(collection)
            for key in ("vip_subnet_id", "subnet_id"):
                if key in inner and roll % 3:
                    inner[key] = seeds.subnet["id"]


def assert_fault(what: str, response: requests.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"{what}: the error body is not JSON: {response.text[:200]!r}")
    assert isinstance(body, dict) and set(body) == {"faultcode", "faultstring",
                                                    "debuginfo"}, f"{what}: {body}"
    assert body["faultcode"] == "Client" and body["faultstring"], f"{what}: {body}"


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzz(case: Any, fuzz_server: Server, seeds: Seeds) -> None:
    deepen(case, seeds)
    response = case.call(base_url=fuzz_server.url, timeout=30)
    what = (f"{case.method} {case.formatted_path} query={case.query} body={case.body!r} "
            f"-> {response.status_code}")
    assert response.status_code < 500, f"{what} {response.text[:500]}"
    if 400 <= response.status_code < 500 and response.status_code not in (401, 405):
        assert_fault(what, response)
    case.validate_response(response, checks=CHECKS)
