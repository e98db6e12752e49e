"""auth = keystone: tokens issued by an external Keystone are validated against it,
with caching.  Two Keystones stand for the external one: another Neutrino's embedded
identity (a real Keystone v3 API, always here), and the conformance suite's
stub_keystone.py when ../shared is beside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from starlette.types import ASGIApp, Receive, Scope, Send

from neutrino.identity.store import Identity
from tests.conftest import Server, free_port, start_server

STUB = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "stub_keystone.py"
NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # the stub's deterministic ids
ADMIN_PASSWORD = "admin-secret"


@dataclass
class Keystone:
    """The external identity service as the tests see it."""

    url: str  # .../v3
    #: how many token validations (GET /v3/auth/tokens) it has answered so far
    validations: Callable[[], int]
    #: project name -> its id in this Keystone
    project_id: Callable[[str], str]


class CountValidations:
    """ASGI middleware counting GET .../v3/auth/tokens, the validation Neutrino makes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.count = app, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" \
                and scope["path"].endswith("/v3/auth/tokens"):
            self.count += 1
        await self.app(scope, receive, send)


def _embedded(tmp: Path, database_url: str) -> Iterator[Keystone]:
    counter: list[CountValidations] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        counter.append(CountValidations(app))
        return counter[0]

    idp = start_server(tmp, database_url, auth="embedded", wrap=wrap)
    try:
        idp.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
        url = idp.url + "/identity/v3"
        admin = {"X-Auth-Token": token(url, "admin", "admin", ADMIN_PASSWORD)}
        projects: dict[str, str] = {}

        def call(method: str, path: str, body: dict | None = None) -> dict:
            r = requests.request(method, url + path, json=body, headers=admin, timeout=10)
            assert r.status_code in (200, 201, 204), r.text
            return r.json() if r.content else {}

        for user, project, role, password in (("neutron", "service", "admin", "secret"),
                                              ("alice", "alpha", "member", "pw"),
                                              ("bob", "beta", "member", "pw")):
            pid = call("POST", "/projects", {"project": {"name": project}})["project"]["id"]
            uid = call("POST", "/users", {"user": {"name": user, "password": password,
                                                   "default_project_id": pid}})["user"]["id"]
            rid = call("GET", f"/roles?name={role}")["roles"][0]["id"]
            call("PUT", f"/projects/{pid}/users/{uid}/roles/{rid}")
            projects[project] = pid
        yield Keystone(url, lambda: counter[0].count, projects.__getitem__)
    finally:
        idp.stop()


def _stub(tmp: Path) -> Iterator[Keystone]:
    if not STUB.exists():
        pytest.skip(f"the conformance suite's Keystone stand-in is not at {STUB}")
    accounts = tmp / "accounts.yaml"
    accounts.write_text(
        "- username: 'neutron'\n  project_name: 'service'\n  password: 'secret'\n"
        "  roles: ['admin']\n"
        "- username: 'alice'\n  project_name: 'alpha'\n  password: 'pw'\n"
        "  roles: ['member']\n"
        "- username: 'bob'\n  project_name: 'beta'\n  password: 'pw'\n  roles: ['member']\n")
    port = free_port()
    log = tmp / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, str(STUB), "--port", str(port), "--accounts",
                             str(accounts), "--log", str(log), "--check-passwords",
                             "--network-url", "http://127.0.0.1:1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v3"
    try:
        for _ in range(100):
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)

        def validations() -> int:
            return sum(1 for line in log.read_text().splitlines()
                       if (rec := json.loads(line))["method"] == "GET"
                       and rec["path"] == "/v3/auth/tokens")

        yield Keystone(url, validations, lambda name: uuid.uuid5(NS, f"project:{name}").hex)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module", params=["embedded", "stub"])
def keystone(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             database_factory) -> Iterator[Keystone]:
    tmp = tmp_path_factory.mktemp(f"keystone-{request.param}")
    if request.param == "embedded":
        yield from _embedded(tmp, database_factory("sqlite"))
    else:
        yield from _stub(tmp)


@pytest.fixture(scope="module")
def server(keystone: Keystone, tmp_path_factory: pytest.TempPathFactory,
           database_factory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("ext"), database_factory("sqlite"),
                       auth="keystone", keystone_url=keystone.url, keystone_password="secret",
                       token_cache_seconds=60)
    yield srv
    srv.stop()


def token(url: str, user: str, project: str, password: str = "pw") -> str:
    r = requests.post(url + "/auth/tokens", timeout=10, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def test_external_tokens_scope_requests(keystone: Keystone, server: Server) -> None:
    url = keystone.url
    alice = token(url, "alice", "alpha")
    bob = token(url, "bob", "beta")
    net = requests.post(f"{server.url}/v2.0/networks", json={"network": {"name": "a"}},
                        headers={"X-Auth-Token": alice}, timeout=10)
    assert net.status_code == 201
    assert net.json()["network"]["project_id"] == keystone.project_id("alpha")
    net_id = net.json()["network"]["id"]
    r = requests.get(f"{server.url}/v2.0/networks/{net_id}", headers={"X-Auth-Token": bob},
                     timeout=10)
    assert r.status_code == 404
    # validated once, then served from the cache
    before = keystone.validations()
    assert before >= 1  # alice's token was checked with the Keystone
    for _ in range(3):
        assert requests.get(f"{server.url}/v2.0/networks", headers={"X-Auth-Token": alice},
                            timeout=10).status_code == 200
    assert keystone.validations() == before


def test_unknown_tokens_are_refused(server: Server) -> None:
    for headers in ({}, {"X-Auth-Token": "gAAAAbogus"}):
        r = requests.get(f"{server.url}/v2.0/networks", headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == 401
