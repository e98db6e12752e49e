"""The embedded Keystone v3: tokens, catalog, the admin API, and their effect on the
Networking API (project scope, roles, revocation, expiry)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from neutrino.db import tables as t
from neutrino.identity.bootstrap import ensure_admin
from neutrino.identity.store import Identity
from tests.conftest import Server, start_server

ADMIN_PASSWORD = "admin-secret"


class Keystone:
    """A client of the embedded identity service of one server."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.url + "/identity/v3"
        self.admin_token = self.token("admin", ADMIN_PASSWORD, "admin")

    def issue(self, body: dict) -> requests.Response:
        return requests.post(self.url + "/auth/tokens", json={"auth": body}, timeout=30)

    def token(self, user: str, password: str, project: str | None) -> str:
        auth: dict = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
        r = self.issue(auth)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def admin(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, self.url + path, json=body, timeout=30,
                                headers={"X-Auth-Token": self.admin_token})

    def member(self, role: str = "member") -> tuple[str, str, str]:
        """A new project with a new user holding ``role``: (project id, user id, token)."""
        name = f"p-{uuid.uuid4().hex[:8]}"
        project = self.admin("POST", "/projects", {"project": {"name": name}}).json()["project"]
        user = self.admin("POST", "/users", {"user": {
            "name": f"u-{name}", "password": "pw", "default_project_id": project["id"]}})
        user_id = user.json()["user"]["id"]
        role_id = self.admin("GET", f"/roles?name={role}").json()["roles"][0]["id"]
        r = self.admin("PUT", f"/projects/{project['id']}/users/{user_id}/roles/{role_id}")
        assert r.status_code == 204
        return project["id"], user_id, self.token(f"u-{name}", "pw", name)

    def net(self, token: str, method: str, path: str, body: dict | None = None) \
            -> requests.Response:
        return requests.request(method, f"{self.server.url}/v2.0{path}", json=body, timeout=30,
                                headers={"X-Auth-Token": token})

    def role_id(self, name: str) -> str:
        return self.admin("GET", f"/roles?name={name}").json()["roles"][0]["id"]

    def make(self, kind: str, **attrs: object) -> dict:
        """POST /v3/{kind} as admin; the new entity."""
        r = self.admin("POST", f"/{kind}", {kind[:-1]: attrs})
        assert r.status_code == 201, r.text
        return r.json()[kind[:-1]]

    def person(self, *roles: str, domain: str = "default", password: str = "pw") -> dict:
        """A new project and user (in ``domain``) holding ``roles`` there:
        ``{"project", "user", "name", "password", "token"}``."""
        tag = uuid.uuid4().hex[:8]
        project = self.make("projects", name=f"p-{tag}", domain_id=domain)
        user = self.make("users", name=f"u-{tag}", password=password, domain_id=domain,
                         default_project_id=project["id"])
        for role in roles or ("member",):
            r = self.admin("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/"
                                  f"{self.role_id(role)}")
            assert r.status_code == 204, r.text
        r = self.issue(password_auth({"id": user["id"]}, password,
                                     {"project": {"id": project["id"]}}))
        assert r.status_code == 201, r.text
        return {"project": project["id"], "user": user["id"], "name": user["name"],
                "password": password, "token": r.headers["X-Subject-Token"]}


def password_auth(user: dict, password: str, scope: object = None) -> dict:
    """The ``auth`` of a password authentication; ``user`` is ``{"id"}`` or
    ``{"name", "domain"}``."""
    auth: dict = {"identity": {"methods": ["password"],
                               "password": {"user": {**user, "password": password}}}}
    if scope is not None:
        auth["scope"] = scope
    return auth


@pytest.fixture(scope="module")
def keystone(tmp_path_factory: pytest.TempPathFactory, database_factory) -> Iterator[Keystone]:
    tmp = tmp_path_factory.mktemp("ks")
    server = start_server(tmp, database_factory("sqlite"), auth="embedded", token_ttl=3600)
    identity = Identity()
    server.db.write(lambda conn: identity.bootstrap(conn, ADMIN_PASSWORD))
    yield Keystone(server)
    server.stop()


def test_discovery(keystone: Keystone) -> None:
    root = requests.get(keystone.server.url + "/identity", timeout=10)
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"].startswith("v3")
    v3 = requests.get(keystone.url, timeout=10).json()["version"]
    assert v3["links"][0]["href"].endswith("/identity/v3/")
    assert requests.get(keystone.server.url + "/v3", timeout=10).status_code == 200


def test_token_by_name_and_by_id_carries_catalog_and_roles(keystone: Keystone) -> None:
    r = keystone.issue({"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}})
    assert r.status_code == 201
    token = r.json()["token"]
    assert {role["name"] for role in token["roles"]} == {"admin", "member", "reader"}
    assert token["project"]["name"] == "admin"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    types = {s["type"]: s for s in token["catalog"]}
    network = next(e for e in types["network"]["endpoints"] if e["interface"] == "public")
    assert network["url"] == keystone.server.url and network["region"] == "RegionOne"
    assert token["expires_at"].endswith("Z")
    by_id = keystone.issue({"identity": {"methods": ["password"], "password": {"user": {
        "id": token["user"]["id"], "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"id": token["project"]["id"]}}})
    assert by_id.status_code == 201
    assert by_id.headers["X-Subject-Token"] != r.headers["X-Subject-Token"]


@pytest.mark.parametrize("password", ["wrong", ""])
def test_bad_password_is_401_in_keystone_shape(keystone: Keystone, password: str) -> None:
    r = keystone.issue({"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}}})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401 and r.json()["error"]["message"]
    assert "WWW-Authenticate" in r.headers


def test_passwords_are_stored_hashed(keystone: Keystone) -> None:
    with keystone.server.db.read() as conn:
        stored = conn.scalar(sa.select(t.identity_users.c.password_hash).where(
            t.identity_users.c.name == "admin"))
        tokens = conn.scalars(sa.select(t.identity_tokens.c.token_hash)).all()
    assert stored.startswith("$argon2id$") and ADMIN_PASSWORD not in stored
    assert keystone.admin_token not in tokens


def test_validate_and_revoke(keystone: Keystone) -> None:
    _, _, token = keystone.member()
    check = requests.get(keystone.url + "/auth/tokens", timeout=10, headers={
        "X-Auth-Token": keystone.admin_token, "X-Subject-Token": token})
    assert check.status_code == 200 and check.json()["token"]["project"]
    head = requests.head(keystone.url + "/auth/tokens", timeout=10, headers={
        "X-Auth-Token": keystone.admin_token, "X-Subject-Token": token})
    assert head.status_code == 200
    assert keystone.net(token, "GET", "/networks").status_code == 200
    gone = requests.delete(keystone.url + "/auth/tokens", timeout=10, headers={
        "X-Auth-Token": keystone.admin_token, "X-Subject-Token": token})
    assert gone.status_code == 204
    r = keystone.net(token, "GET", "/networks")
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    check = requests.get(keystone.url + "/auth/tokens", timeout=10, headers={
        "X-Auth-Token": keystone.admin_token, "X-Subject-Token": token})
    assert check.status_code == 404


def test_token_expiry(tmp_path: Path, database_factory) -> None:
    server = start_server(tmp_path, database_factory("sqlite"), auth="embedded", token_ttl=1,
                          token_cache_seconds=0)
    try:
        server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
        ks = Keystone(server)
        assert ks.net(ks.admin_token, "GET", "/networks").status_code == 200
        time.sleep(1.5)
        assert ks.net(ks.admin_token, "GET", "/networks").status_code == 401
    finally:
        server.stop()


def test_network_calls_need_a_project_scoped_token(keystone: Keystone) -> None:
    assert keystone.net("", "GET", "/networks").status_code == 401
    assert keystone.net("not-a-token", "GET", "/networks").status_code == 401
    unscoped = keystone.issue({"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": "unscoped"})
    assert unscoped.status_code == 201 and "project" not in unscoped.json()["token"]
    assert "catalog" not in unscoped.json()["token"]
    assert keystone.net(unscoped.headers["X-Subject-Token"], "GET", "/networks").status_code \
        == 401


def test_projects_are_isolated_and_admin_sees_all(keystone: Keystone) -> None:
    pa, _, ta = keystone.member()
    pb, _, tb = keystone.member()
    net = keystone.net(ta, "POST", "/networks", {"network": {"name": "a-net"}})
    assert net.status_code == 201
    net_id = net.json()["network"]["id"]
    assert net.json()["network"]["project_id"] == pa
    assert "provider:network_type" not in net.json()["network"]
    assert keystone.net(tb, "GET", f"/networks/{net_id}").status_code == 404
    assert keystone.net(tb, "PUT", f"/networks/{net_id}", {"network": {"name": "x"}}) \
        .status_code == 404
    assert keystone.net(tb, "DELETE", f"/networks/{net_id}").status_code == 404
    assert net_id not in [n["id"] for n in keystone.net(tb, "GET", "/networks").json()
                          ["networks"]]
    assert keystone.net(tb, "GET", f"/networks?project_id={pa}").json()["networks"] == []
    # admin sees it with its segment, and may create on behalf of a project
    got = keystone.net(keystone.admin_token, "GET", f"/networks/{net_id}").json()["network"]
    assert got["provider:network_type"] == "vxlan"
    made = keystone.net(keystone.admin_token, "POST", "/networks",
                        {"network": {"name": "for-b", "project_id": pb}})
    assert made.status_code == 201
    assert keystone.net(tb, "GET", f"/networks/{made.json()['network']['id']}") \
        .status_code == 200
    # a member may not create on behalf of another project (upstream: 400, not 403)
    r = keystone.net(ta, "POST", "/networks", {"network": {"name": "x", "project_id": pb}})
    assert r.status_code == 400


def test_reader_role_reads_only(keystone: Keystone) -> None:
    project, user, _ = keystone.member()
    reader_id = keystone.admin("GET", "/roles?name=reader").json()["roles"][0]["id"]
    member_id = keystone.admin("GET", "/roles?name=member").json()["roles"][0]["id"]
    keystone.admin("PUT", f"/projects/{project}/users/{user}/roles/{reader_id}")
    r = keystone.admin("DELETE", f"/projects/{project}/users/{user}/roles/{member_id}")
    assert r.status_code == 204
    name = keystone.admin("GET", f"/users/{user}").json()["user"]["name"]
    pname = keystone.admin("GET", f"/projects/{project}").json()["project"]["name"]
    token = keystone.token(name, "pw", pname)
    assert keystone.net(token, "GET", "/networks").status_code == 200
    r = keystone.net(token, "POST", "/networks", {"network": {"name": "no"}})
    assert r.status_code == 403
    assert r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"


def test_admin_api_needs_admin(keystone: Keystone) -> None:
    _, _, token = keystone.member()
    r = requests.get(keystone.url + "/users", headers={"X-Auth-Token": token}, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == 403
    r = requests.get(keystone.url + "/users", timeout=10)
    assert r.status_code == 401


def test_admin_api_shapes_tempest_relies_on(keystone: Keystone) -> None:
    domains = keystone.admin("GET", "/domains?name=Default").json()["domains"]
    assert domains[0]["id"] == "default"
    made = keystone.admin("POST", "/projects", {"project": {"name": "tmp-proj",
                                                            "domain_id": "default"}})
    assert made.status_code == 201
    pid = made.json()["project"]["id"]
    assert keystone.admin("POST", "/projects", {"project": {"name": "tmp-proj"}}) \
        .status_code == 409
    user = keystone.admin("POST", "/users", {"user": {"name": "tmp-user", "password": "x",
                                                      "domain_id": "default"}})
    assert user.status_code == 201 and "password" not in user.json()["user"]
    uid = user.json()["user"]["id"]
    roles = keystone.admin("GET", "/roles").json()["roles"]
    assert {"admin", "member", "reader"} <= {r["name"] for r in roles}
    rid = next(r["id"] for r in roles if r["name"] == "member")
    assert keystone.admin("PUT", f"/projects/{pid}/users/{uid}/roles/{rid}").status_code == 204
    assert keystone.admin("HEAD", f"/projects/{pid}/users/{uid}/roles/{rid}").status_code \
        == 204
    listed = keystone.admin("GET", f"/role_assignments?user.id={uid}").json()
    assert listed["role_assignments"] == [{"role": {"id": rid}, "user": {"id": uid},
                                          "scope": {"project": {"id": pid}}}]
    assert keystone.admin("DELETE", f"/users/{uid}").status_code == 204
    assert keystone.admin("DELETE", f"/projects/{pid}").status_code == 204
    assert keystone.admin("GET", f"/projects/{pid}").status_code == 404


def test_bootstrap_writes_working_client_files(tmp_path: Path, database_factory) -> None:
    server = start_server(tmp_path, database_factory("sqlite"), auth="embedded")
    try:
        clouds = ensure_admin(server.db, Identity(), tmp_path, server.url)
        text = clouds.read_text()
        assert f"auth_url: {server.url}/identity" in text
        assert oct(clouds.stat().st_mode & 0o777) == "0o600"
        password = text.split("password: ")[1].split()[0]
        openrc = (tmp_path / "admin-openrc").read_text()
        assert f"OS_PASSWORD={password}" in openrc
        ks_url = server.url + "/identity/v3/auth/tokens"
        r = requests.post(ks_url, timeout=30, json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": password}}}}})
        # no scope asked: the admin's default project is used
        assert r.status_code == 201 and r.json()["token"]["project"]["name"] == "admin"
        # a second start keeps the password
        ensure_admin(server.db, Identity(), tmp_path, server.url)
        assert clouds.read_text() == text
    finally:
        server.stop()
