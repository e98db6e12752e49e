"""Classic identity flaws, checked against real servers on every backend: over-long and
NUL-bearing values, scopes without a role, looking at other users' tokens, tokens in
URLs or logs, and user names that match more than themselves."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa

from neutrino.identity.store import Identity
from tests.api.test_identity import ADMIN_PASSWORD, Keystone, password_auth
from tests.conftest import BACKENDS, MYSQL_ADMIN, _reachable, start_server

DEFAULT = {"name": "Default"}


@pytest.fixture(scope="module", params=BACKENDS)
def ks(request: pytest.FixtureRequest, database_factory,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    server = start_server(tmp_path_factory.mktemp("f"), database_factory(request.param),
                          auth="embedded")
    server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
    yield Keystone(server)
    server.stop()


def _keystone_error(r: requests.Response, status: int) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["title"] and err["message"]
    return err["message"]


#: what the schema declarations now refuse (over-long and NUL-bearing names were a 500 on
#: PostgreSQL, over-long values were stored or a 500 depending on the backend)
BAD_BODIES = {
    "NUL in a name": ("users", {"name": "a\x00b"}, "NUL"),
    "description of 256": ("projects", {"name": "ok", "description": "d" * 256},
                           "description"),
    "e-mail of 256": ("users", {"name": "ok", "email": "e" * 256}, "email"),
    "default project id of 65": ("users", {"name": "ok", "default_project_id": "a" * 65},
                                 "default_project_id"),
    "domain id of 65": ("domains", {"name": "ok", "id": "a" * 65}, "id"),
    "domain id with a slash": ("domains", {"name": "ok", "id": "a/b"}, "id"),
    "domain_id of 65": ("projects", {"name": "ok", "domain_id": "a" * 65}, "domain_id"),
    "enabled neither true nor false": ("users", {"name": "ok", "enabled": "maybe"},
                                       "enabled"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_values_are_400_on_every_backend(ks: Keystone, case: str) -> None:
    kind, body, field = BAD_BODIES[case]
    body = {k: f"ok-{uuid.uuid4().hex[:8]}" if v == "ok" else v for k, v in body.items()}
    message = _keystone_error(ks.admin("POST", f"/{kind}", {kind[:-1]: body}), 400)
    assert field in message


def test_enabled_false_as_a_string_means_false(ks: Keystone) -> None:
    user = ks.make("users", name=f"off-{uuid.uuid4().hex[:8]}", enabled="false",
                   password="pw")
    assert user["enabled"] is False
    assert ks.issue(password_auth({"id": user["id"]}, "pw")).status_code == 401


def test_the_enabled_filter_reads_as_keystone_reads_it(ks: Keystone) -> None:
    """``?enabled`` alone means true (it meant false); ``0`` and ``false`` mean false."""
    on = ks.make("users", name=f"on-{uuid.uuid4().hex[:8]}")
    off = ks.make("users", name=f"off-{uuid.uuid4().hex[:8]}", enabled=False)
    for query, shown, hidden in (("enabled", on, off), ("enabled=True", on, off),
                                 ("enabled=0", off, on), ("enabled=FALSE", off, on)):
        ids = {u["id"] for u in ks.admin("GET", f"/users?{query}").json()["users"]}
        assert shown["id"] in ids and hidden["id"] not in ids, query


@pytest.mark.parametrize("path", ["/users/a%00b", "/projects/a%00b", "/domains/a%00b",
                                  "/roles/a%00b", "/users/a%00b/projects",
                                  "/projects/a%00/users/b/roles"])
def test_a_nul_in_a_path_is_404(ks: Keystone, path: str) -> None:
    _keystone_error(ks.admin("GET", path), 404)


@pytest.mark.parametrize("query", ["/users?name=a%00b", "/projects?domain_id=a%00",
                                   "/role_assignments?user.id=a%00",
                                   "/users?name=" + "n" * 300])
def test_a_bad_filter_is_400(ks: Keystone, query: str) -> None:
    _keystone_error(ks.admin("GET", query), 400)


def test_over_long_ids_are_not_found(ks: Keystone) -> None:
    assert ks.admin("GET", "/users/" + "a" * 5000).status_code == 404
    r = ks.issue(password_auth({"id": "a" * 5000}, "pw"))
    assert r.status_code in (400, 401)


def test_no_scope_without_a_role_there(ks: Keystone) -> None:
    mine = ks.person()
    theirs = ks.person()
    user = {"id": mine["user"]}
    for scope in ({"project": {"id": theirs["project"]}},
                  {"project": {"name": f"p-{theirs['name'][2:]}", "domain": DEFAULT}},
                  {"domain": {"id": "default"}}, {"system": {"all": True}}):
        r = ks.issue(password_auth(user, "pw", scope))
        assert r.status_code == 401, (scope, r.text)
    # nor by rescoping a token of one's own
    r = ks.issue({"identity": {"methods": ["token"], "token": {"id": mine["token"]}},
                  "scope": {"project": {"id": theirs["project"]}}})
    assert r.status_code == 401


def test_only_its_user_or_an_admin_may_look_at_a_token(ks: Keystone) -> None:
    alice, bob = ks.person(), ks.person()
    for method in ("GET", "HEAD"):
        def look(caller: str, subject: str, method: str = method) -> int:
            return requests.request(method, ks.url + "/auth/tokens", timeout=30, headers={
                "X-Auth-Token": caller, "X-Subject-Token": subject}).status_code
        assert look(alice["token"], bob["token"]) == 403
        assert look(alice["token"], alice["token"]) == 200
        assert look(ks.admin_token, bob["token"]) == 200
    r = requests.delete(ks.url + "/auth/tokens", timeout=30, headers={
        "X-Auth-Token": alice["token"], "X-Subject-Token": bob["token"]})
    assert r.status_code == 403
    assert ks.net(bob["token"], "GET", "/networks").status_code == 200


def test_tokens_are_taken_from_headers_only_and_never_logged(
        ks: Keystone, caplog: pytest.LogCaptureFixture) -> None:
    """A token in a query string is no credential (it would end up in access logs), and
    nothing the server logs holds one, even when requests fail."""
    who = ks.person()
    with caplog.at_level(logging.DEBUG):
        r = requests.get(f"{ks.server.url}/v2.0/networks?X-Auth-Token={who['token']}",
                         timeout=30)
        assert r.status_code == 401
        r = requests.get(f"{ks.url}/users?X-Auth-Token={ks.admin_token}", timeout=30)
        assert r.status_code == 401
        ks.net(who["token"], "GET", "/networks")
        ks.net(who["token"], "GET", "/networks/no-such-network")
        ks.net(who["token"], "POST", "/networks", {"network": {"name": 5}})
        requests.get(ks.url + "/auth/tokens", timeout=30, headers={
            "X-Auth-Token": who["token"], "X-Subject-Token": ks.admin_token})
    # what the server logged (urllib3 is the test's own client, logging its URLs)
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if not r.name.startswith("urllib3"))
    assert who["token"] not in logged and ks.admin_token not in logged


# -- user names are matched exactly, on every backend -------------------------------------

@pytest.fixture(scope="module")
def default_collation_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """MariaDB with a database made as an operator would, with the server's default
    (case-insensitive) collation."""
    why = _reachable(MYSQL_ADMIN)
    if why:
        pytest.skip(f"mariadb not reachable: {why}")
    name = f"neutrino_ci_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(MYSQL_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
    server = start_server(tmp_path_factory.mktemp("ci"),
                          f"{MYSQL_ADMIN.rsplit('/', 1)[0]}/{name}?charset=utf8mb4",
                          auth="embedded")
    try:
        server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
        yield Keystone(server)
    finally:
        server.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def _exact_names(ks: Keystone) -> None:
    tag = uuid.uuid4().hex[:8]
    lower = ks.make("users", name=f"alice-{tag}", password="lower-pw")
    upper = ks.make("users", name=f"ALICE-{tag}", password="upper-pw")
    assert lower["id"] != upper["id"]
    for name, password in ((f"alice-{tag}", "lower-pw"), (f"ALICE-{tag}", "upper-pw")):
        r = ks.issue(password_auth({"name": name, "domain": DEFAULT}, password))
        assert r.status_code == 201 and r.json()["token"]["user"]["name"] == name
    for name in (f"Alice-{tag}", f"alice-{tag} ", f"ALICE-{tag}  "):
        r = ks.issue(password_auth({"name": name, "domain": DEFAULT}, "lower-pw"))
        assert r.status_code == 401, name
    found = ks.admin("GET", f"/users?name=alice-{tag}").json()["users"]
    assert [u["id"] for u in found] == [lower["id"]]
    # a name with a trailing space is another name
    spaced = ks.admin("POST", "/users", {"user": {"name": f"alice-{tag} "}})
    assert spaced.status_code == 201, spaced.text


def test_user_names_are_exact(ks: Keystone) -> None:
    _exact_names(ks)


def test_user_names_are_exact_on_a_default_collation_mariadb(
        default_collation_mariadb: Keystone) -> None:
    _exact_names(default_collation_mariadb)
