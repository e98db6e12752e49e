"""auth = keystone: tokens issued by an external Keystone (the conformance suite's
stub_keystone.py stands for it) are validated against it, with caching."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import Server, free_port, start_server

STUB = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "stub_keystone.py"
NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # the stub's deterministic ids


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not STUB.exists():
        pytest.skip(f"the Keystone stand-in is not at {STUB}")
    tmp = tmp_path_factory.mktemp("stub")
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
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield url, log
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def server(stub: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory,
           database_factory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("ext"), database_factory("sqlite"),
                       auth="keystone", keystone_url=stub[0], keystone_password="secret",
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


def validations(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines()
               if (rec := json.loads(line))["method"] == "GET"
               and rec["path"] == "/v3/auth/tokens")


def test_external_tokens_scope_requests(stub: tuple[str, Path], server: Server) -> None:
    url, log = stub
    alice = token(url, "alice", "alpha")
    bob = token(url, "bob", "beta")
    net = requests.post(f"{server.url}/v2.0/networks", json={"network": {"name": "a"}},
                        headers={"X-Auth-Token": alice}, timeout=10)
    assert net.status_code == 201
    assert net.json()["network"]["project_id"] == uuid.uuid5(NS, "project:alpha").hex
    net_id = net.json()["network"]["id"]
    r = requests.get(f"{server.url}/v2.0/networks/{net_id}", headers={"X-Auth-Token": bob},
                     timeout=10)
    assert r.status_code == 404
    # validated once, then served from the cache
    before = validations(log)
    for _ in range(3):
        assert requests.get(f"{server.url}/v2.0/networks", headers={"X-Auth-Token": alice},
                            timeout=10).status_code == 200
    assert validations(log) == before


def test_unknown_tokens_are_refused(server: Server) -> None:
    for headers in ({}, {"X-Auth-Token": "gAAAAbogus"}):
        r = requests.get(f"{server.url}/v2.0/networks", headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == 401
