"""Turning a request's credentials into a :class:`Context`.

Three ways, chosen by the ``auth`` setting:
- ``noauth``: trust identity headers, as upstream's noauth does;
- ``embedded``: tokens issued by Neutrino's own identity service;
- ``keystone``: tokens issued by an external Keystone, validated against it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from neutrino import errors
from neutrino.context import Context
from neutrino.db.engine import Database
from neutrino.schema.kinds import BadValue
from neutrino.schema.resources import PROJECT_ID

if TYPE_CHECKING:
    from neutrino.identity.store import Identity

NOAUTH_PROJECT = "fake_project_id"
V = TypeVar("V")


class Authenticator(Protocol):
    async def authenticate(self, headers: Headers) -> Context: ...


class NoAuth:
    """Upstream's ``noauth``: trust identity headers; without a project, act as admin.

    ``X-Project-Id`` (or ``X-Tenant-Id``), ``X-User-Id`` and ``X-Roles`` are taken
    as given.  A request naming no project acts as an admin of project
    ``fake_project_id``, as upstream Neutron does in this mode.
    """

    async def authenticate(self, headers: Headers) -> Context:
        project = headers.get("x-project-id") or headers.get("x-tenant-id")
        # no X-Openstack-Request-Id is taken from the client: the server names its requests
        # (as upstream), and never echoes what a client put in a header
        if not project:
            return Context(project_id=NOAUTH_PROJECT, user_id=headers.get("x-user-id"),
                           roles=frozenset({"admin"}), is_admin=True)
        try:  # it is stored as the owner of what the request makes
            PROJECT_ID(project)
        except BadValue as exc:
            raise errors.BadRequest(f"Invalid X-Project-Id header: {exc.message}.") from None
        roles = frozenset(r.strip().lower() for r in headers.get("x-roles", "").split(",")
                          if r.strip())
        return Context(project_id=project, user_id=headers.get("x-user-id"), roles=roles,
                       is_admin="admin" in roles)


def _context(project_id: str, user_id: str, role_names: list[str]) -> Context:
    roles = frozenset(r.lower() for r in role_names)
    return Context(project_id=project_id, user_id=user_id, roles=roles,
                   is_admin="admin" in roles)


class TokenCache(Generic[V]):
    """Validated tokens for a few seconds, so a burst of calls validates once."""

    def __init__(self, ttl: float, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> V | None:
        hit = self._items.get(token)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token: str, value: V, expires_in: float | None = None) -> None:
        ttl = self.ttl if expires_in is None else min(self.ttl, expires_in)
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[token] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _unauthorized() -> errors.Unauthorized:
    return errors.Unauthorized("The request you have made requires authentication.")


class EmbeddedKeystone:
    """Tokens from Neutrino's own identity service (same database).

    A validation is kept for up to ``cache_seconds`` (never past the token's expiry),
    together with the identity revision it was made at; each use reads the revision
    (one primary-key lookup) and validates again if it moved.  Every identity change
    that alters what a token means bumps it, so a revocation made by any server
    process on this database takes effect at once in all of them.
    """

    def __init__(self, identity: Identity, db: Database, cache_seconds: float = 5.0) -> None:
        self.identity = identity
        self.db = db
        self.cache: TokenCache[tuple[int, Context]] = TokenCache(cache_seconds)

    def _validate(self, token: str) -> Context | None:
        hit = self.cache.get(token)
        if hit is not None and hit[0] == self.identity.current_revision(self.db):
            return hit[1]
        with self.db.read() as conn:
            revision = self.identity.revision(conn)  # before the validation it stands for
            info = self.identity.validate(conn, token)
        if info is None or info.project is None:
            return None  # unknown, expired, revoked, or not scoped to a project
        ctx = _context(info.project["id"], info.user["id"], [r["name"] for r in info.roles])
        expires = datetime.strptime(info.expires_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        self.cache.put(token, (revision, ctx),
                       max(0.0, (expires - datetime.now(UTC)).total_seconds()))
        return ctx

    async def authenticate(self, headers: Headers) -> Context:
        token = headers.get("x-auth-token")
        if not token:
            raise _unauthorized()
        # SQLite: on the event loop, as the API's own reads (see Database.inline)
        ctx = self._validate(token) if self.db.inline \
            else await run_in_threadpool(self._validate, token)
        if ctx is None:
            raise _unauthorized()
        return ctx


class ExternalKeystone:
    """Tokens from an external Keystone, validated with ``GET /v3/auth/tokens``.

    Neutrino authenticates itself with a service user; validated tokens are
    cached for ``cache_seconds`` (never past their expiry).
    """

    def __init__(self, url: str, username: str, password: str, project: str,
                 user_domain: str = "Default", project_domain: str = "Default",
                 cache_seconds: float = 60.0, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.credentials = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": user_domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}}}}
        self.cache: TokenCache[Context] = TokenCache(cache_seconds)
        self.timeout = timeout
        self._service_token: str | None = None
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, headers: dict[str, str],
              body: dict | None = None) -> tuple[int, dict, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, {}, dict(exc.headers or {})
        except (urllib.error.URLError, OSError) as exc:
            raise errors.NeutronError(f"The identity service at {self.url} is unreachable: "
                                      f"{exc}", type="ServiceUnavailable") from None

    def _service(self, refresh: bool = False) -> str:
        with self._lock:
            if self._service_token is None or refresh:
                status, _, headers = self._call("POST", "/auth/tokens", {}, self.credentials)
                token = {k.lower(): v for k, v in headers.items()}.get("x-subject-token")
                if status != 201 or not token:
                    raise errors.NeutronError(
                        f"Neutrino cannot authenticate to the identity service at {self.url} "
                        f"(HTTP {status}): check the keystone_* settings",
                        type="ServiceUnavailable")
                self._service_token = token
            return self._service_token

    def _validate(self, token: str) -> tuple[Context, float] | None:
        for refresh in (False, True):
            status, body, _ = self._call("GET", "/auth/tokens", {
                "X-Auth-Token": self._service(refresh), "X-Subject-Token": token})
            if status != 401:
                break
        if status != 200 or "project" not in body.get("token", {}):
            return None
        tok = body["token"]
        ctx = _context(tok["project"]["id"], tok["user"]["id"],
                       [r["name"] for r in tok.get("roles", [])])
        expires_in = self.cache.ttl
        try:
            expires = time.mktime(time.strptime(tok["expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
            expires_in = max(0.0, expires - time.mktime(time.gmtime()))
        except (KeyError, ValueError):
            pass
        return ctx, expires_in

    async def authenticate(self, headers: Headers) -> Context:
        token = headers.get("x-auth-token")
        if not token:
            raise _unauthorized()
        ctx = self.cache.get(token)
        if ctx is None:
            found = await run_in_threadpool(self._validate, token)
            if found is None:
                raise _unauthorized()
            ctx, expires_in = found
            self.cache.put(token, ctx, expires_in)
        return ctx
