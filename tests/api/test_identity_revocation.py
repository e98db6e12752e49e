"""Revocation as Keystone does it: the changes that end a token end it at once, in every
server process on the database (two real servers share one here, on each backend; the
second caches validations for minutes, so only a check against the database helps)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from neutrino.identity.store import Identity
from tests.api.test_identity import ADMIN_PASSWORD, Keystone, password_auth
from tests.conftest import BACKENDS, Server, start_server


@dataclass
class Pair:
    """Two server processes' worth of Neutrino on one database."""

    ks: Keystone  # the identity API of the first
    other: Server  # the second: it validates the tokens the tests then use

    def net(self, token: str) -> int:
        """GET /v2.0/networks on the second server, with ``token``."""
        return requests.get(f"{self.other.url}/v2.0/networks", timeout=30,
                            headers={"X-Auth-Token": token}).status_code

    def valid(self, token: str) -> int:
        """What the first server's identity API says of ``token``, asked by the admin."""
        return requests.get(self.ks.url + "/auth/tokens", timeout=30, headers={
            "X-Auth-Token": self.ks.admin_token, "X-Subject-Token": token}).status_code


@pytest.fixture(scope="module", params=BACKENDS)
def pair(request: pytest.FixtureRequest, database_factory,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    url = database_factory(request.param)
    first = start_server(tmp_path_factory.mktemp("a"), url, auth="embedded")
    first.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
    second = start_server(tmp_path_factory.mktemp("b"), url, auth="embedded",
                          token_cache_seconds=600)
    yield Pair(Keystone(first), second)
    second.stop()
    first.stop()


def _password_patch(ks: Keystone, who: dict) -> requests.Response:
    return ks.admin("PATCH", f"/users/{who['user']}", {"user": {"password": "new-pw"}})


def _self_service(ks: Keystone, who: dict) -> requests.Response:
    return requests.post(f"{ks.url}/users/{who['user']}/password", timeout=30, json={
        "user": {"original_password": who["password"], "password": "new-pw"}})


REVOKING: dict[str, Callable[[Keystone, dict], requests.Response]] = {
    "password set by an admin": _password_patch,
    "password changed by its user": _self_service,
    "user disabled": lambda ks, who: ks.admin("PATCH", f"/users/{who['user']}",
                                              {"user": {"enabled": False}}),
    "user deleted": lambda ks, who: ks.admin("DELETE", f"/users/{who['user']}"),
    "role assignment removed": lambda ks, who: ks.admin(
        "DELETE", f"/projects/{who['project']}/users/{who['user']}/roles/"
                  f"{ks.role_id('member')}"),
    "project disabled": lambda ks, who: ks.admin("PATCH", f"/projects/{who['project']}",
                                                 {"project": {"enabled": False}}),
    "project deleted": lambda ks, who: ks.admin("DELETE", f"/projects/{who['project']}"),
    "token revoked": lambda ks, who: requests.delete(ks.url + "/auth/tokens", timeout=30,
                                                     headers={"X-Auth-Token": who["token"],
                                                              "X-Subject-Token": who["token"]}),
}


@pytest.mark.parametrize("change", list(REVOKING))
def test_change_ends_the_token_at_once_in_every_process(pair: Pair, change: str) -> None:
    # the role to remove is not the user's only one: Keystone revokes the token anyway
    who = pair.ks.person("member", "reader")
    assert pair.net(who["token"]) == 200  # the second server now holds it in its cache
    r = REVOKING[change](pair.ks, who)
    assert r.status_code in (200, 204), r.text
    assert pair.net(who["token"]) == 401
    assert pair.valid(who["token"]) == 404


def test_self_service_password_works_and_the_old_one_not(pair: Pair) -> None:
    who = pair.ks.person()
    r = _self_service(pair.ks, who)
    assert r.status_code == 204, r.text
    user = {"id": who["user"]}
    assert pair.ks.issue(password_auth(user, who["password"])).status_code == 401
    fresh = pair.ks.issue(password_auth(user, "new-pw"))
    assert fresh.status_code == 201, fresh.text
    assert pair.net(fresh.headers["X-Subject-Token"]) == 200


def test_self_service_change_needs_the_original_password(pair: Pair) -> None:
    """Keystone's POST /v3/users/{id}/password needs no token; the original password is
    the credential, so a wrong one is a 401 and changes nothing."""
    who = pair.ks.person()
    r = requests.post(f"{pair.ks.url}/users/{who['user']}/password", timeout=30, json={
        "user": {"original_password": "wrong", "password": "new-pw"}})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "The request you have made requires authentication."
    assert pair.net(who["token"]) == 200
    r = requests.post(f"{pair.ks.url}/users/{who['user']}/password", timeout=30,
                      json={"user": {"password": "new-pw"}})
    assert r.status_code == 400 and "original_password" in r.json()["error"]["message"]
    r = requests.get(f"{pair.ks.url}/users/{who['user']}/password", timeout=30)
    assert r.status_code == 405 and r.json()["error"]["code"] == 405


def test_disabled_domain_ends_its_users_and_projects_tokens(pair: Pair) -> None:
    ks = pair.ks
    domain = ks.make("domains", name=f"d-{uuid.uuid4().hex[:8]}")
    who = ks.person(domain=domain["id"])
    assert pair.net(who["token"]) == 200
    r = ks.admin("PATCH", f"/domains/{domain['id']}", {"domain": {"enabled": False}})
    assert r.status_code == 200, r.text
    assert pair.net(who["token"]) == 401
    assert pair.valid(who["token"]) == 404
    # nor can its users authenticate, by id or by name
    assert ks.issue(password_auth({"id": who["user"]}, "pw")).status_code == 401
    assert ks.issue(password_auth({"name": who["name"], "domain": {"id": domain["id"]}},
                                  "pw")).status_code == 401
    # a domain is deleted with its projects and users (disabled first, as Keystone wants)
    assert ks.admin("DELETE", f"/domains/{domain['id']}").status_code == 204
    assert ks.admin("GET", f"/users/{who['user']}").status_code == 404
    assert ks.admin("GET", f"/projects/{who['project']}").status_code == 404


def test_a_new_role_shows_at_once_in_every_process(pair: Pair) -> None:
    who = pair.ks.person("reader")
    assert requests.post(f"{pair.other.url}/v2.0/networks", json={"network": {"name": "n"}},
                         headers={"X-Auth-Token": who["token"]}, timeout=30).status_code == 403
    r = pair.ks.admin("PUT", f"/projects/{who['project']}/users/{who['user']}/roles/"
                             f"{pair.ks.role_id('member')}")
    assert r.status_code == 204
    made = requests.post(f"{pair.other.url}/v2.0/networks", json={"network": {"name": "n"}},
                         headers={"X-Auth-Token": who["token"]}, timeout=30)
    assert made.status_code == 201, made.text


@pytest.mark.cli
def test_the_openstack_cli_changes_its_own_password(pair: Pair) -> None:
    """``openstack user password set``, as a user (not an admin) runs it (on every
    backend: the revocation it causes is the backend's)."""
    who = pair.ks.person()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=pair.ks.server.url + "/identity", OS_USERNAME=who["name"],
               OS_PASSWORD=who["password"], OS_USER_DOMAIN_NAME="Default",
               OS_PROJECT_ID=who["project"], OS_IDENTITY_API_VERSION="3",
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    done = subprocess.run([str(Path(sys.executable).with_name("openstack")), "user",
                           "password", "set", "--original-password", who["password"],
                           "--password", "changed-by-cli"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert pair.net(who["token"]) == 401
    user = {"id": who["user"]}
    assert pair.ks.issue(password_auth(user, who["password"])).status_code == 401
    assert pair.ks.issue(password_auth(user, "changed-by-cli")).status_code == 201


def test_a_cached_validation_ends_with_its_token(tmp_path: Path, database_factory) -> None:
    """However long validations are cached, none outlives its token's expiry."""
    server = start_server(tmp_path, database_factory("sqlite"), auth="embedded", token_ttl=2,
                          token_cache_seconds=600)
    try:
        server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
        ks = Keystone(server)
        assert ks.net(ks.admin_token, "GET", "/networks").status_code == 200  # cached
        time.sleep(2.5)
        assert ks.net(ks.admin_token, "GET", "/networks").status_code == 401
    finally:
        server.stop()
