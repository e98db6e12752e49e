"""Schemathesis fuzzes every operation of the identity API's OpenAPI document.

The document the server serves at ``/identity/openapi.json`` (made from the same
declarations as the routes and the request checks) is checked against the OpenAPI
3.1 meta-schema, then every operation in it gets a bounded, deterministic run of
generated requests.  Whatever comes in, the server must never answer 5xx, every
4xx must be Keystone's ``{"error": {"code", "title", "message"}}``, and status
codes, content types and bodies must be the ones the document declares.  Run it
on another backend with ``NEUTRINO_FUZZ_BACKEND=postgresql`` (or ``mariadb``).

Random strings never name a real user, project or token, so most cases would stop
at a 401 or a 404.  A case is "deepened" before it is sent, as the Networking
API's fuzzing does: most carry the admin's token (some a member's, some none),
a stable share of the path ids, subject tokens and credentials are replaced with
real ones made for the run, and a DELETE (or a password change) gets a fresh
throwaway.  The admin's own user, project and roles are never a target, so its
token lasts the run.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from neutrino.identity.api import IdentityApi
from neutrino.identity.openapi import openapi_document
from neutrino.identity.store import Identity
from tests.api.test_identity import ADMIN_PASSWORD, Keystone, password_auth
from tests.conftest import Server, start_server

#: examples per operation; with ~45 operations the module runs in well under a minute
MAX_EXAMPLES = int(os.environ.get("NEUTRINO_FUZZ_EXAMPLES", "25"))
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(database_factory: Callable[[str], str],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = os.environ.get("NEUTRINO_FUZZ_BACKEND", "sqlite")
    # generated credentials fail by the hundred: the limit would stop them at a 429
    srv = start_server(tmp_path_factory.mktemp("fuzz-id"), database_factory(backend),
                       auth="embedded", auth_failure_rate_limit=100000)
    srv.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
    yield srv
    srv.stop()


class Seeds:
    """Real identities that deepened cases point at (never the admin's own)."""

    def __init__(self, server: Server) -> None:
        self.ks = Keystone(server)
        tag = uuid.uuid4().hex[:6]
        self.domain = self.ks.make("domains", name=f"fuzz-{tag}")
        self.member = self.ks.person()
        self.role = self.ks.make("roles", name=f"fuzz-role-{tag}")
        self.ids = {"users": self.member["user"], "projects": self.member["project"],
                    "domains": self.domain["id"], "roles": self.role["id"]}

    def throwaway(self, kind: str) -> str:
        tag = uuid.uuid4().hex[:8]
        if kind == "domains":  # only a disabled domain may be deleted
            return self.ks.make("domains", name=f"gone-{tag}", enabled=False)["id"]
        return self.ks.make(kind, name=f"gone-{tag}", **(
            {"password": "pw"} if kind == "users" else {}))["id"]

    def fresh_token(self) -> str:
        return self.ks.person()["token"]


@pytest.fixture(scope="module")
def seeds(fuzz_server: Server) -> Seeds:
    return Seeds(fuzz_server)


# The document is built in-process to parametrise at collection time; the first test
# proves the server serves exactly this document.  Building the operations touches
# neither the database nor the handlers.
_built = openapi_document(IdentityApi(Identity(), None).operations())  # type: ignore[arg-type]
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(_built)))


def test_document_is_valid_openapi_and_served_as_built(fuzz_server: Server) -> None:
    served_schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/identity/openapi.json")
    served_schema.validate()  # raises on a document the OpenAPI 3.1 meta-schema refuses
    served = served_schema.raw_schema
    assert served == schema.raw_schema
    paths = served["paths"]
    for kind in ("domains", "projects", "users", "roles"):
        assert {"get", "post"} <= set(paths[f"/identity/v3/{kind}"])
        assert {"get", "patch", "delete"} <= set(paths[f"/identity/v3/{kind}/{{id}}"])
    assert {"get", "head", "post", "delete"} <= set(paths["/identity/v3/auth/tokens"])
    change = paths["/identity/v3/users/{id}/password"]["post"]
    user = change["requestBody"]["content"]["application/json"]["schema"]["properties"]["user"]
    assert user["required"] == ["original_password", "password"]
    assert change["security"] == []  # the original password is the credential
    create = paths["/identity/v3/users"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"]["properties"]["user"]["properties"]["name"]["maxLength"] == 255


def _stable(case: Any) -> int:
    """A number fixed by the case's content, so a replayed case is deepened the same way."""
    text = repr((case.method, case.path, case.path_parameters, case.query, case.body))
    return zlib.crc32(text.encode())


def deepen(case: Any, seeds: Seeds) -> None:
    roll = _stable(case)
    method, path = case.method.upper(), case.path.removeprefix("/identity/v3")
    token = (seeds.ks.admin_token, seeds.ks.admin_token, seeds.ks.admin_token,
             seeds.member["token"], None)[roll % 5]
    case.headers = {k: v for k, v in (case.headers or {}).items()
                    if k.lower() != "x-auth-token"}
    if token is not None:
        case.headers["X-Auth-Token"] = token
    if roll % 4 == 0:
        return  # a quarter of the cases go as generated (but for the token)
    params = case.path_parameters or {}
    kind = path.split("/")[1] if path.count("/") >= 1 else ""
    if "id" in params and kind in seeds.ids:
        if method == "DELETE" or path.endswith("/password"):
            params["id"] = seeds.throwaway(kind)
        else:
            params["id"] = seeds.ids[kind]
    if "target" in params:
        params["target_type"] = ("projects", "domains")[roll % 2]
        params["target"] = seeds.ids[params["target_type"]]
    if "user" in params:
        params["user"] = seeds.ids["users"]
    if "role" in params:
        params["role"] = seeds.ids["roles"]
    if "X-Subject-Token" in (case.headers or {}):
        case.headers["X-Subject-Token"] = seeds.fresh_token() if method == "DELETE" \
            else seeds.member["token"]
    body = case.body
    if path == "/auth/tokens" and method == "POST" and roll % 3 == 0:
        case.body = password_auth({"id": seeds.member["user"]}, seeds.member["password"],
                                  body["auth"].get("scope") if isinstance(body, dict)
                                  and isinstance(body.get("auth"), dict) else None)
    if path.endswith("/password") and isinstance(body, dict) \
            and isinstance(body.get("user"), dict):
        body["user"]["original_password"] = "pw"  # the throwaway's


def assert_keystone_error(what: str, response: requests.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"{what}: the error body is not JSON: {response.text[:200]!r}")
    assert isinstance(body, dict) and set(body) == {"error"}, f"{what}: {body}"
    err = body["error"]
    assert set(err) == {"code", "title", "message"}, f"{what}: {body}"
    assert err["code"] == response.status_code, f"{what}: {body}"
    assert isinstance(err["title"], str) and err["title"], f"{what}: {body}"
    assert isinstance(err["message"], str) and err["message"], f"{what}: {body}"


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzz(case: Any, fuzz_server: Server, seeds: Seeds) -> None:
    deepen(case, seeds)
    response = case.call(base_url=fuzz_server.url, timeout=30)
    what = (f"{case.method} {case.formatted_path} query={case.query} body={case.body!r} "
            f"headers={case.headers} -> {response.status_code}")
    assert response.status_code < 500, f"{what} {response.text[:500]}"
    if 400 <= response.status_code < 500 and case.method.upper() != "HEAD":
        assert_keystone_error(what, response)
    case.validate_response(response, checks=CHECKS)
