"""Password authentication against real servers: it takes as long for a user that does
not exist as for one that does, it is limited per source address and per user name,
Keystone's lockout holds across server processes, and passwords have a length limit."""

from __future__ import annotations

import http.client
import json
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from neutrino.identity.store import Identity
from tests.api.test_identity import ADMIN_PASSWORD, Keystone, password_auth
from tests.conftest import Server, start_server

DEFAULT = {"name": "Default"}
FAILED = "The request you have made requires authentication."


def _keystone(tmp: Path, url: str, **settings: object) -> Keystone:
    server = start_server(tmp, url, auth="embedded", **settings)
    server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
    return Keystone(server)


@pytest.fixture(scope="module")
def relaxed(tmp_path_factory: pytest.TempPathFactory, database_factory) -> Iterator[Keystone]:
    """A server whose limits stay out of the way of timing."""
    ks = _keystone(tmp_path_factory.mktemp("t"), database_factory("sqlite"),
                   auth_failure_rate_limit=100000)
    yield ks
    ks.server.stop()


def _median_seconds(ks: Keystone, auth: dict, tries: int = 9) -> float:
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        r = ks.issue(auth)
        times.append(time.perf_counter() - start)
        assert r.status_code == 401, r.text
    return statistics.median(times)


def test_an_unknown_user_costs_as_much_as_a_wrong_password(relaxed: Keystone) -> None:
    ks = relaxed
    who = ks.person()
    ks.issue(password_auth({"name": "admin", "domain": DEFAULT}, "warm-up"))
    known = _median_seconds(ks, password_auth({"name": who["name"], "domain": DEFAULT}, "x"))
    unknowns = {
        "unknown name": password_auth({"name": f"nobody-{uuid.uuid4().hex}",
                                       "domain": DEFAULT}, "x"),
        "unknown domain": password_auth({"name": who["name"],
                                         "domain": {"name": "no-such-domain"}}, "x"),
        "unknown id": password_auth({"id": uuid.uuid4().hex}, "x"),
    }
    for what, auth in unknowns.items():
        unknown = _median_seconds(ks, auth)
        assert unknown >= 0.5 * known, f"{what}: {unknown * 1000:.1f} ms, a known user's " \
                                       f"wrong password {known * 1000:.1f} ms"


def test_failures_say_the_same_whatever_failed(relaxed: Keystone) -> None:
    """No error message tells whether a user or a domain exists."""
    ks = relaxed
    who = ks.person()
    answers = set()
    for user in ({"name": who["name"], "domain": DEFAULT},
                 {"name": "no-such-user", "domain": DEFAULT},
                 {"name": who["name"], "domain": {"name": "no-such-domain"}},
                 {"name": who["name"], "domain": {"id": "no-such-domain"}},
                 {"id": who["user"]}, {"id": "no-such-id"}):
        r = ks.issue(password_auth(user, "wrong"))
        answers.add((r.status_code, json.dumps(r.json(), sort_keys=True)))
    for user_id in (who["user"], "no-such-id"):
        r = requests.post(f"{ks.url}/users/{user_id}/password", timeout=30, json={
            "user": {"original_password": "wrong", "password": "new-password"}})
        answers.add((r.status_code, json.dumps(r.json(), sort_keys=True)))
    assert answers == {(401, json.dumps({"error": {"code": 401, "message": FAILED,
                                                   "title": "Unauthorized"}},
                                        sort_keys=True))}


# -- Keystone's lockout, across two server processes ------------------------------------

@pytest.fixture(scope="module")
def lockout(tmp_path_factory: pytest.TempPathFactory, database_factory) \
        -> Iterator[tuple[Keystone, Keystone]]:
    url = database_factory("postgresql")
    limits = {"lockout_failure_attempts": 3, "lockout_duration": 3,
              "auth_failure_rate_limit": 0}
    first = _keystone(tmp_path_factory.mktemp("l1"), url, **limits)
    second = Keystone.__new__(Keystone)  # the same identity, served by a second process
    second.server = start_server(tmp_path_factory.mktemp("l2"), url, auth="embedded",
                                 **limits)
    second.url = second.server.url + "/identity/v3"
    second.admin_token = first.admin_token
    yield first, second
    second.server.stop()
    first.server.stop()


def test_consecutive_failures_lock_the_user_in_every_process(
        lockout: tuple[Keystone, Keystone]) -> None:
    first, second = lockout
    who = first.person()
    user = {"name": who["name"], "domain": DEFAULT}
    for ks in (first, second, first):  # three failures, counted in the database
        assert ks.issue(password_auth(user, "wrong")).status_code == 401
    for ks in (second, first):
        r = ks.issue(password_auth(user, who["password"]))  # the right password, too late
        assert r.status_code == 401
        assert r.json()["error"]["message"] == f"The account is locked for user: {who['user']}."
    # so is the self-service password change, whose original password authenticates
    r = requests.post(f"{second.url}/users/{who['user']}/password", timeout=30, json={
        "user": {"original_password": who["password"], "password": "new-password"}})
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]
    time.sleep(3.2)  # lockout_duration
    assert second.issue(password_auth(user, who["password"])).status_code == 201


def test_concurrent_guesses_cannot_slip_past_the_lockout(
        lockout: tuple[Keystone, Keystone]) -> None:
    """Attempts are counted before their password is checked: of 12 at once, on two
    processes, exactly 3 get a password checked; the rest find the user locked."""
    first, second = lockout
    who = first.person()
    auth = password_auth({"id": who["user"]}, "wrong")
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda n: (first, second)[n % 2].issue(auth).json(),
                                range(12)))
    messages = [a["error"]["message"] for a in answers]
    locked = f"The account is locked for user: {who['user']}."
    assert (messages.count(FAILED), messages.count(locked)) == (3, 9), messages


def test_a_success_starts_the_count_again(lockout: tuple[Keystone, Keystone]) -> None:
    first, second = lockout
    who = first.person()
    user = {"id": who["user"]}
    for ks in (first, second):
        assert ks.issue(password_auth(user, "wrong")).status_code == 401
    assert second.issue(password_auth(user, who["password"])).status_code == 201
    for ks in (first, second):
        assert ks.issue(password_auth(user, "wrong")).status_code == 401
    assert first.issue(password_auth(user, who["password"])).status_code == 201
    for ks in (first, second, first):  # three in a row now
        assert ks.issue(password_auth(user, "wrong")).status_code == 401
    r = second.issue(password_auth(user, who["password"]))
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]


def test_failed_password_changes_count_and_an_admin_unlocks(
        lockout: tuple[Keystone, Keystone]) -> None:
    first, _ = lockout
    who = first.person()
    for _ in range(3):
        r = requests.post(f"{first.url}/users/{who['user']}/password", timeout=30, json={
            "user": {"original_password": "wrong", "password": "new-password"}})
        assert r.status_code == 401
    r = first.issue(password_auth({"id": who["user"]}, who["password"]))
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]
    # Keystone: enabling the user (or setting its password) is how an admin unlocks it
    r = first.admin("PATCH", f"/users/{who['user']}", {"user": {"enabled": True}})
    assert r.status_code == 200
    assert first.issue(password_auth({"id": who["user"]}, who["password"])).status_code == 201


# -- the limit per source address and per user name --------------------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, database_factory) -> Iterator[Keystone]:
    ks = _keystone(tmp_path_factory.mktemp("r"), database_factory("sqlite"),
                   auth_failure_rate_limit=3, auth_failure_rate_window=3)
    yield ks
    ks.server.stop()


def issue_from(server: Server, address: str, auth: dict) -> tuple[int, dict, dict]:
    """POST /v3/auth/tokens from a loopback ``address`` of our choosing."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30,
                                      source_address=(address, 0))
    try:
        conn.request("POST", "/identity/v3/auth/tokens", json.dumps({"auth": auth}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, json.loads(resp.read() or b"{}"), headers
    finally:
        conn.close()


def test_failures_from_one_address_are_limited(limited: Keystone) -> None:
    server = limited.server
    admin = password_auth({"name": "admin", "domain": DEFAULT}, ADMIN_PASSWORD)
    for n in range(3):
        status, _, _ = issue_from(server, "127.0.0.21", password_auth(
            {"name": f"guess-{n}", "domain": DEFAULT}, "guess"))
        assert status == 401
    status, body, headers = issue_from(server, "127.0.0.21", admin)
    assert status == 429, body
    assert body["error"]["code"] == 429 and "retry in" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 3
    assert issue_from(server, "127.0.0.22", admin)[0] == 201  # another address is not
    time.sleep(3.1)  # the window is over
    assert issue_from(server, "127.0.0.21", admin)[0] == 201


@pytest.mark.parametrize("exists", [True, False])
def test_failures_for_one_user_are_limited_from_any_address(limited: Keystone,
                                                            exists: bool) -> None:
    """Whether or not the user exists, which the limit therefore does not tell."""
    who = limited.person()
    name = who["name"] if exists else f"ghost-{uuid.uuid4().hex[:8]}"
    user = {"name": name, "domain": DEFAULT}
    for address in ("127.0.0.31", "127.0.0.32", "127.0.0.33"):
        assert issue_from(limited.server, address, password_auth(user, "guess"))[0] == 401
    status, body, _ = issue_from(limited.server, "127.0.0.34", password_auth(user, "pw"))
    assert status == 429, body
    admin = password_auth({"name": "admin", "domain": DEFAULT}, ADMIN_PASSWORD)
    assert issue_from(limited.server, "127.0.0.34", admin)[0] == 201


def test_only_failures_count(limited: Keystone) -> None:
    who = limited.person()
    right = password_auth({"id": who["user"]}, who["password"])
    wrong = password_auth({"id": who["user"]}, "wrong")
    statuses = [issue_from(limited.server, "127.0.0.41", right)[0] for _ in range(8)]
    assert statuses == [201] * 8
    statuses = [issue_from(limited.server, "127.0.0.41", wrong)[0] for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


# -- password length -------------------------------------------------------------------

def test_passwords_have_a_length_limit(relaxed: Keystone) -> None:
    """Keystone's max_password_length (4096): argon2 never hashes a megabyte."""
    ks = relaxed
    long = "p" * 4097
    r = ks.admin("POST", "/users", {"user": {"name": f"long-{uuid.uuid4().hex[:6]}",
                                             "password": long}})
    assert r.status_code == 400 and "password" in r.json()["error"]["message"]
    user = ks.make("users", name=f"ok-{uuid.uuid4().hex[:6]}", password="p" * 4096)
    assert ks.admin("PATCH", f"/users/{user['id']}", {"user": {"password": long}}) \
        .status_code == 400
    r = requests.post(f"{ks.url}/users/{user['id']}/password", timeout=30, json={
        "user": {"original_password": "p" * 4096, "password": long}})
    assert r.status_code == 400
    assert ks.issue(password_auth({"id": user["id"]}, long)).status_code == 400
    assert ks.issue(password_auth({"id": user["id"]}, "p" * 4096)).status_code == 201
    # a megabyte is refused before it is even parsed (Keystone's max_request_body_size)
    start = time.perf_counter()
    r = ks.issue(password_auth({"name": "admin", "domain": DEFAULT}, "p" * 2**20))
    assert r.status_code == 413 and r.json()["error"]["code"] == 413
    assert time.perf_counter() - start < 2
