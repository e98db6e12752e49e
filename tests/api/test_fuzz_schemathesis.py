"""Schemathesis fuzzes the operations of the served OpenAPI document.

The document the server serves at ``/openapi.json`` is checked against the
OpenAPI 3.1 meta-schema, and every core operation in it (networks, subnets, ports,
their tags, quotas, discovery; FWaaS's rules, policies, groups and policy actions) gets a
bounded, deterministic run of generated requests, valid and invalid.  Whatever comes in,
the server must never answer 5xx, every 4xx must be the ``NeutronError`` envelope, and
status codes, content types and response bodies must be the ones the document declares.

Only the core resources are fuzzed by default (``NEUTRINO_FUZZ_ALL=1`` takes
every resource of the document).  Run it on another backend with
``NEUTRINO_FUZZ_BACKEND=postgresql`` (or ``mariadb``): PostgreSQL found NUL
characters and 32-bit overflows that SQLite lets by.

Random UUIDs never name a real resource, so most generated cases would stop
at a 404.  To reach the deep code (IPAM, pools, address pairs, tags,
revisions), a case is "deepened" before it is sent: a stable share of the path
ids, markers and body ``network_id``/``subnet_id`` values are replaced with
real resources made for the run (and a DELETE gets a fresh throwaway one).

The stateful run follows the document's OpenAPI links instead: a create's response
feeds the show, update, tag and delete of what it made, and a network feeds a
subnet's and a port's create (a subnet a port's fixed IP, a security group a rule);
schemathesis chains them into sequences (create -> update -> delete, network ->
subnet -> port -> ...).  The threat model is any caller with a token: no sequence
may bring a 5xx, and every refusal is the envelope.  By default it covers the core
and L3/security collections in a bounded run; ``NEUTRINO_FUZZ_ALL=1`` takes every
resource and runs longer.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from neutrino.schema.openapi import ADMIN_ONLY, openapi_document
from tests.conftest import Client, Server, start_server

FUZZ_ALL = bool(os.environ.get("NEUTRINO_FUZZ_ALL"))
#: examples per operation; with ~45 operations the module runs in well under a minute
MAX_EXAMPLES = 40
CORE_PATHS = (r"^/($|v2\.0/($|extensions|quotas|(networks|subnets|subnetpools|ports"
              r"|fwaas/firewall_(rules|policies|groups))(/|$)))")
#: what the default stateful run chains (NEUTRINO_FUZZ_ALL=1: everything)
#: (FWaaS is fuzzed by the stateless run; its links join the stateful one with
#: NEUTRINO_FUZZ_ALL=1, so the default budget still reaches subnets and ports)
STATEFUL_PATHS = (r"^/v2\.0/(networks|subnets|ports|routers|security-groups"
                  r"|security-group-rules)(/|$)")
#: sequences, their length, and the most time the run may take (it ends sooner once
#: the budget is spent and the links were followed deep enough: ~30 s on a quiet machine)
STATEFUL_EXAMPLES, STATEFUL_STEPS = (300, 20) if FUZZ_ALL else (100, 12)
STATEFUL_SECONDS = 900 if FUZZ_ALL else 180
#: the quotas the run lifts (bulk creates can make hundreds of resources)
UNLIMITED = ("network", "subnet", "port", "router", "security_group", "security_group_rule",
             "rbac_policy", "floatingip", "firewall_group", "firewall_policy", "firewall_rule")
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(database_factory: Callable[[str], str],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = os.environ.get("NEUTRINO_FUZZ_BACKEND", "sqlite")
    srv = start_server(tmp_path_factory.mktemp("fuzz"), database_factory(backend))
    yield srv
    srv.stop()


class Seeds:
    """Real resources that deepened cases point at."""

    def __init__(self, url: str) -> None:
        self.api = Client(url)
        # bulk creates can make hundreds of resources: no quota may cut the run short
        r = self.api.put("/quotas/fake_project_id", {"quota": {
            name: -1 for name in UNLIMITED}})
        assert r.status_code == 200, r.text
        self.network, self.subnet = self.api.network_with_subnet("10.99.0.0/16")
        self.subnet6 = self.api.create("subnets", network_id=self.network["id"], ip_version=6,
                                       cidr="fd00:99::/64", ipv6_ra_mode="slaac",
                                       ipv6_address_mode="slaac")
        self.port = self.api.create("ports", network_id=self.network["id"], tags=["seed"],
                                    allowed_address_pairs=[{"ip_address": "10.98.0.0/24"}])

    def ids(self, collection: str) -> list[str]:
        return {"networks": [self.network["id"]],
                "subnets": [self.subnet["id"], self.subnet6["id"]],
                "ports": [self.port["id"]]}[collection]

    def fresh_network(self) -> dict:
        return self.api.create("networks", name="throwaway")

    def throwaway(self, collection: str) -> str:
        """A fresh resource for a DELETE to remove (the seeds must stay)."""
        if collection == "networks":
            return self.api.create("networks", name="throwaway")["id"]
        if collection == "subnets":
            net = self.api.create("networks", name="throwaway")
            return self.api.create("subnets", network_id=net["id"], ip_version=4,
                                   cidr="10.97.0.0/24")["id"]
        net = self.api.create("networks", name="throwaway")
        return self.api.create("ports", network_id=net["id"], name="throwaway")["id"]


@pytest.fixture(scope="module")
def seeds(fuzz_server: Server) -> Seeds:
    return Seeds(fuzz_server.url)


# The document is built in-process to parametrise at collection time (schemathesis'
# lazy fixture loader does not work with this pytest); the first test proves the
# server serves exactly this document.
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(openapi_document())))
if not FUZZ_ALL:
    # the core resources and what they lean on; NEUTRINO_FUZZ_ALL=1 fuzzes every resource
    schema = schema.include(path_regex=CORE_PATHS)


def test_document_is_valid_openapi_and_served_as_built(fuzz_server: Server) -> None:
    served_schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    served_schema.validate()  # raises on a document the OpenAPI 3.1 meta-schema refuses
    served = served_schema.raw_schema
    assert served == schema.raw_schema
    paths = served["paths"]
    for collection in ("networks", "subnets", "ports"):
        assert {"get", "post"} <= set(paths[f"/v2.0/{collection}"])
        assert {"get", "put", "delete"} <= set(paths[f"/v2.0/{collection}/{{id}}"])
    port_create = paths["/v2.0/ports"]["post"]["requestBody"]["content"]["application/json"]
    single = port_create["schema"]["oneOf"][0]["properties"]["port"]
    assert single["required"] == ["network_id"] and single["additionalProperties"] is False
    assert "id" not in single["properties"] and "status" not in single["properties"]
    update = paths["/v2.0/subnets/{id}"]["put"]["requestBody"]["content"]["application/json"]
    assert "cidr" not in update["schema"]["properties"]["subnet"]["properties"]


def _stable(case: Any) -> int:
    """A number fixed by the case's content, so a replayed case is deepened the same way."""
    text = repr((case.method, case.path, case.path_parameters, case.query, case.body))
    return zlib.crc32(text.encode())


def deepen(case: Any, seeds: Seeds) -> None:
    roll = _stable(case)
    if roll % 4 == 0:
        return  # a quarter of the cases go as generated
    collection = case.path.split("/")[2] if case.path.startswith("/v2.0/") else ""
    if collection in ("networks", "subnets", "ports") and case.path_parameters \
            and "id" in case.path_parameters:
        if case.method.upper() == "DELETE" and case.path.endswith("{id}"):
            case.path_parameters["id"] = seeds.throwaway(collection)
        else:
            ids = seeds.ids(collection)
            case.path_parameters["id"] = ids[roll % len(ids)]
    if case.query and "marker" in case.query and collection in ("networks", "subnets", "ports"):
        case.query["marker"] = seeds.ids(collection)[0]
    body = case.body
    if isinstance(body, dict):
        items = [v for v in body.values() if isinstance(v, dict)]
        items += [i for v in body.values() if isinstance(v, list) for i in v
                  if isinstance(i, dict)]
        for item in items:
            if "network_id" in item:
                # each generated subnet gets a network of its own (no overlap stops it
                # early), and the ports' subnets stay as they are
                network = seeds.fresh_network() if collection == "subnets" else seeds.network
                item["network_id"] = network["id"]
            # what a schema cannot say: the legacy tenant_id must equal project_id, the
            # ip_version must be the cidr's, and there are no subnet pools to name
            if isinstance(item.get("project_id"), str) and "tenant_id" in item:
                item["tenant_id"] = item["project_id"]
            if isinstance(item.get("cidr"), str) and item.get("ip_version") in (4, 6):
                item["ip_version"] = 6 if ":" in item["cidr"] else 4
            item.pop("subnetpool_id", None)
            fixed = item.get("fixed_ips")
            if isinstance(fixed, list):
                del fixed[2:]  # past max_fixed_ips_per_port (a setting) all is refused
                for n, ip in enumerate(fixed):
                    if isinstance(ip, dict) and "subnet_id" in ip:
                        ip["subnet_id"] = seeds.ids("subnets")[(roll + n) % 2]


def assert_neutron_error(what: str, response: Any) -> None:
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"{what}: the error body is not JSON: {response.text[:200]!r}")
    assert isinstance(body, dict) and set(body) == {"NeutronError"}, f"{what}: {body}"
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, f"{what}: {body}"
    assert all(isinstance(v, str) for v in err.values()), f"{what}: {body}"
    assert err["type"] and err["message"], f"{what}: {body}"


def check_response(case: Any, response: Any) -> None:
    """No 5xx, every 4xx the envelope, and what the document declares."""
    what = (f"{case.method} {case.formatted_path} query={case.query} body={case.body!r} -> "
            f"{response.status_code}")
    assert response.status_code < 500, f"{what} {response.text[:500]}"
    if 400 <= response.status_code < 500:
        assert_neutron_error(what, response)
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzz(case: Any, fuzz_server: Server, seeds: Seeds) -> None:
    deepen(case, seeds)
    check_response(case, case.call(base_url=fuzz_server.url, timeout=30))


def test_links_chain_every_resource() -> None:
    """Each resource's create links to its show, update and delete by id, and the
    network's to the subnet's and port's creates (what the stateful run follows)."""
    paths = openapi_document()["paths"]
    for resource in ("network", "subnet", "port", "router", "security_group",
                     "floatingip", "subnetpool"):
        collection = next(p for p, ops in paths.items()
                          if ops.get("post", {}).get("operationId") == f"create_{resource}")
        links = paths[collection]["post"]["responses"]["201"]["links"]
        targets = {link["operationId"] for link in links.values()}
        assert {f"show_{resource}", f"update_{resource}", f"delete_{resource}"} <= targets
    network = paths["/v2.0/networks"]["post"]["responses"]["201"]["links"]
    assert network["CreateSubnetFromNetwork"]["requestBody"] == {
        "subnet": {"network_id": "$response.body#/network/id"}}
    assert "CreatePortFromNetwork" in network


@pytest.fixture(scope="module")
def member(fuzz_server: Server) -> dict[str, str]:
    """A member of a project without limits: the caller the threat model fears (any
    token), whose creates never run into a quota."""
    project = "fuzz-member"
    r = Client(fuzz_server.url).put(f"/quotas/{project}", {"quota": {
        name: -1 for name in UNLIMITED}})
    assert r.status_code == 200, r.text
    return {"X-Project-Id": project, "X-Roles": "member"}


def test_stateful_sequences(fuzz_server: Server, member: dict[str, str]) -> None:
    """Chains of linked calls (create -> update -> delete, network -> subnet -> port), as
    a project member."""
    document = json.loads(json.dumps(openapi_document()))
    for operations in document["paths"].values():
        for method in ("post", "put"):
            content = operations.get(method, {}).get("requestBody", {}).get("content", {})
            for media in content.values():
                if "oneOf" in media["schema"]:  # a create: one at a time, so links resolve
                    media["schema"] = media["schema"]["oneOf"][0]
                for body in media["schema"].get("properties", {}).values():
                    # the document as a member reads it: without what only admins set
                    props = body.get("properties", {})
                    for name in [n for n, p in props.items() if p.get(ADMIN_ONLY)]:
                        del props[name]
    # there are no subnet pools to allocate from: a subnet names its cidr
    subnet = document["paths"]["/v2.0/subnets"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["subnet"]
    subnet["required"].append("cidr")
    for name in ("subnetpool_id", "prefixlen", "use_default_subnetpool"):
        subnet["properties"].pop(name)
    # agents register over the bus: their create is always refused, and a root that
    # always fails would take every sequence's first step
    linked = schemathesis.openapi.from_dict(document).exclude(operation_id="create_agent")
    if not FUZZ_ALL:
        linked = linked.include(path_regex=STATEFUL_PATHS)
    # the document's links only (no guessed ones), and valid bodies to make things with
    # (no NUL, which nothing stores): invalid ones are the stateless run's business
    linked.config.phases.stateful.inference.algorithms = []
    for generation in (linked.config.generation, linked.config.phases.stateful.generation):
        generation.update(modes=[GenerationMode.POSITIVE], allow_x00=False)

    seen: Counter = Counter()
    failures: list[BaseException] = []

    class Sequences(linked.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzz_server.url, "timeout": 30, "headers": member}

        def before_call(self, case: Any) -> None:
            # what a schema cannot say: a member names only its own project (in both
            # spellings), which the stateless run, as an admin, varies
            item = next(iter(case.body.values()), None) if isinstance(case.body, dict) \
                else None
            if isinstance(item, dict):
                for key in ("project_id", "tenant_id"):
                    if key in item:
                        item[key] = member["X-Project-Id"]
                if isinstance(item.get("cidr"), str) and item.get("ip_version") in (4, 6):
                    item["ip_version"] = 6 if ":" in item["cidr"] else 4

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            seen[(case.operation.definition.raw["operationId"], response.status_code)] += 1
            try:
                check_response(case, response)
            except AssertionError as exc:
                failures.append(exc)
                raise

    def deep_enough() -> bool:
        ok = {op for (op, status) in seen if status < 300}
        return {"create_network", "create_subnet", "create_port"} <= ok and all(
            any(op.startswith(f"{verb}_") for op in ok) for verb in ("show", "update", "delete"))

    deadline = time.monotonic() + STATEFUL_SECONDS
    derandomize = True
    # explore until both the budget of calls is spent and the links were followed deep
    # enough (what a sequence reaches is drawn at random: under load a budget alone
    # may run out before any sequence went network -> subnet -> port)
    while (sum(seen.values()) < STATEFUL_EXAMPLES * STATEFUL_STEPS // 2 or not deep_enough()) \
            and time.monotonic() < deadline:
        try:
            Sequences.run(settings=settings(
                max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS,
                derandomize=derandomize, deadline=None, database=None,
                suppress_health_check=list(HealthCheck)))
        except hypothesis.errors.Flaky:
            if failures:
                raise failures[0] from None
            # a replayed prefix met state an earlier sequence changed (a VLAN taken, a
            # rule made): go on with fresh sequences, as schemathesis' own runner does
        if failures:
            raise failures[0]
        derandomize = False  # a second run replaying the first would reach nothing new
    # the links were followed: what creates made was shown, changed, tagged and removed,
    # and networks went on to carry subnets and ports
    # (which ones exactly depends on what the sequences drew)
    ok = {op for (op, status) in seen if status < 300}
    assert {"create_network", "create_subnet", "create_port"} <= ok, seen
    for verb in ("show", "update", "delete"):
        assert any(op.startswith(f"{verb}_") for op in ok), (verb, seen)
