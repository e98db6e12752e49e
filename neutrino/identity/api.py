"""Keystone v3 over HTTP, served by Neutrino itself under ``/identity``.

``/identity`` is the identity root (as in devstack), ``/identity/v3`` the
v3 API; ``/v3`` answers the same for clients configured with the bare host.
Errors use Keystone's envelope, ``{"error": {"code", "title", "message"}}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from neutrino.db.engine import Database
from neutrino.identity.store import Identity, IdentityError, TokenInfo, unauthorized

T = TypeVar("T")
REGION = "RegionOne"
VERSION = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
           "media-types": [{"base": "application/json",
                            "type": "application/vnd.openstack.identity-v3+json"}]}
_TARGETS = {"projects": "project", "domains": "domain"}
_NS = uuid.UUID("0a7c41a4-5d36-4bd1-9a5e-6a8a37c2c6f1")


def _json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def _error(err: IdentityError, base: str = "") -> Response:
    headers = {"WWW-Authenticate": f'Keystone uri="{base}/identity"'} if err.code == 401 \
        else None
    return _json(err.body(), err.code, headers)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def catalog(base: str) -> list[dict]:
    services = (("network", "neutron", base), ("identity", "keystone", f"{base}/identity"))
    out = []
    for kind, name, url in services:
        endpoints = [{"id": uuid.uuid5(_NS, f"{kind}/{iface}").hex, "interface": iface,
                      "region": REGION, "region_id": REGION, "url": url}
                     for iface in ("public", "internal", "admin")]
        out.append({"type": kind, "name": name, "id": uuid.uuid5(_NS, kind).hex,
                    "endpoints": endpoints})
    return out


def token_body(info: TokenInfo, base: str, *, with_catalog: bool = True) -> dict:
    body: dict[str, Any] = {
        "methods": info.methods, "user": info.user, "audit_ids": [info.audit_id],
        "issued_at": info.issued_at, "expires_at": info.expires_at, "roles": info.roles,
    }
    if info.project:
        body["project"] = info.project
        body["is_domain"] = False
    elif info.domain:
        body["domain"] = info.domain
    elif info.system:
        body["system"] = {"all": True}
    if with_catalog and (info.project or info.domain or info.system):
        body["catalog"] = catalog(base)
    return body


class IdentityApi:
    def __init__(self, identity: Identity, db: Database,
                 on_change: Callable[[], None] | None = None) -> None:
        self.identity = identity
        self.db = db
        #: called after every change, so cached token validations are dropped
        self.on_change = on_change or (lambda: None)

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.db.read() as conn:
                return fn(conn)
        return await run_in_threadpool(run)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        result = await run_in_threadpool(self.db.write, fn)
        self.on_change()
        return result

    @staticmethod
    async def _body(request: Request, key: str | None = None) -> Any:
        try:
            body = orjson.loads(await request.body() or b"null")
        except orjson.JSONDecodeError:
            raise IdentityError(400, "The request body is not valid JSON.") from None
        if key is not None:
            if not isinstance(body, dict) or not isinstance(body.get(key), dict):
                raise IdentityError(400, f"Expecting to find {key} in the request body.")
            return body[key]
        return body

    async def caller(self, request: Request) -> TokenInfo:
        token = request.headers.get("x-auth-token")
        info = await self._read(lambda conn: self.identity.validate(conn, token))
        if info is None:
            raise unauthorized()
        return info

    async def admin(self, request: Request) -> TokenInfo:
        info = await self.caller(request)
        if not any(r["name"] == "admin" for r in info.roles):
            raise IdentityError(403, "You are not authorized to perform the requested action: "
                                     "it needs the admin role.")
        return info

    # -- discovery and tokens -------------------------------------------------

    async def root(self, request: Request) -> Response:
        version = {**VERSION, "links": [{"rel": "self", "href": f"{base_url(request)}"
                                                              f"/identity/v3/"}]}
        return _json({"versions": {"values": [version]}}, 300)

    async def v3(self, request: Request) -> Response:
        version = {**VERSION, "links": [{"rel": "self", "href": f"{base_url(request)}"
                                                              f"/identity/v3/"}]}
        return _json({"version": version})

    async def issue(self, request: Request) -> Response:
        body = await self._body(request, "auth")
        token, info = await self._write(lambda conn: self.identity.authenticate(conn, body))
        nocatalog = "nocatalog" in request.query_params
        return _json({"token": token_body(info, base_url(request), with_catalog=not nocatalog)},
                     201, {"X-Subject-Token": token})

    async def check(self, request: Request) -> Response:
        await self.caller(request)
        subject = request.headers.get("x-subject-token")
        info = await self._read(lambda conn: self.identity.validate(conn, subject))
        if info is None:
            raise IdentityError(404, "Could not find token.")
        if request.method == "HEAD":
            return Response(status_code=200, headers={"X-Subject-Token": subject or ""})
        nocatalog = "nocatalog" in request.query_params
        return _json({"token": token_body(info, base_url(request), with_catalog=not nocatalog)},
                     200, {"X-Subject-Token": subject or ""})

    async def revoke(self, request: Request) -> Response:
        caller = await self.caller(request)
        subject = request.headers.get("x-subject-token")
        target = await self._read(lambda conn: self.identity.validate(conn, subject))
        if target is None:
            raise IdentityError(404, "Could not find token.")
        is_admin = any(r["name"] == "admin" for r in caller.roles)
        if not is_admin and target.user["id"] != caller.user["id"]:
            raise IdentityError(403, "Only an admin or the token's owner may revoke it.")
        await self._write(lambda conn: self.identity.revoke_token(conn, subject))
        return Response(status_code=204)

    async def auth_catalog(self, request: Request) -> Response:
        await self.caller(request)
        return _json({"catalog": catalog(base_url(request)), "links": {}})

    async def auth_projects(self, request: Request) -> Response:
        info = await self.caller(request)
        return _json({"projects": await self._read(
            lambda conn: self._user_projects(conn, info.user["id"])), "links": {}})

    def _user_projects(self, conn: Connection, user_id: str) -> list[dict]:
        ids = {a["scope"]["project"]["id"]
               for a in self.identity.assignments(conn, {"user.id": user_id})
               if "project" in a["scope"]}
        return [p for p in self.identity.list(conn, "projects", {}) if p["id"] in ids]

    # -- the admin API ---------------------------------------------------------

    def _entity_routes(self, kind: str) -> list[Route]:
        singular = kind[:-1]

        async def listing(request: Request) -> Response:
            await self.admin(request)
            filters = dict(request.query_params)
            items = await self._read(lambda conn: self.identity.list(conn, kind, filters))
            for item in items:
                item["links"] = {"self": f"{base_url(request)}/identity/v3/{kind}/{item['id']}"}
            return _json({kind: items, "links": {"self": str(request.url), "next": None,
                                                 "previous": None}})

        async def create(request: Request) -> Response:
            await self.admin(request)
            body = await self._body(request, singular)
            maker = getattr(self.identity, f"create_{singular}")
            item = await self._write(lambda conn: maker(conn, body))
            item["links"] = {"self": f"{base_url(request)}/identity/v3/{kind}/{item['id']}"}
            return _json({singular: item}, 201)

        async def show(request: Request) -> Response:
            caller = await self.caller(request)
            ident = request.path_params["id"]
            if not (kind == "users" and ident == caller.user["id"]):
                await self.admin(request)
            item = await self._read(lambda conn: self.identity.get(conn, kind, ident))
            item["links"] = {"self": f"{base_url(request)}/identity/v3/{kind}/{ident}"}
            return _json({singular: item})

        async def update(request: Request) -> Response:
            await self.admin(request)
            ident = request.path_params["id"]
            body = await self._body(request, singular)
            item = await self._write(lambda conn: self.identity.update(conn, kind, ident, body))
            return _json({singular: item})

        async def delete(request: Request) -> Response:
            await self.admin(request)
            ident = request.path_params["id"]
            await self._write(lambda conn: self.identity.delete(conn, kind, ident))
            return Response(status_code=204)

        return [
            Route(f"/v3/{kind}", listing, methods=["GET"]),
            Route(f"/v3/{kind}", create, methods=["POST"]),
            Route(f"/v3/{kind}/{{id}}", show, methods=["GET"]),
            Route(f"/v3/{kind}/{{id}}", update, methods=["PATCH"]),
            Route(f"/v3/{kind}/{{id}}", delete, methods=["DELETE"]),
        ]

    async def user_projects(self, request: Request) -> Response:
        caller = await self.caller(request)
        user_id = request.path_params["id"]
        if user_id != caller.user["id"]:
            await self.admin(request)
        return _json({"projects": await self._read(
            lambda conn: self._user_projects(conn, user_id)), "links": {}})

    async def grant(self, request: Request) -> Response:
        await self.admin(request)
        p = request.path_params
        if "target_type" in p:
            target_type = _TARGETS.get(p["target_type"], "")
            if not target_type:
                raise IdentityError(404, "Role assignments exist on projects, domains and the "
                                         "system only.")
        else:
            target_type = "system"
        target_id = p.get("target", "all")
        user, role = p["user"], p["role"]
        identity = self.identity
        if request.method == "PUT":
            await self._write(lambda conn: identity.grant(conn, target_type, target_id, user,
                                                          role))
            return Response(status_code=204)
        if request.method == "DELETE":
            await self._write(lambda conn: identity.revoke(conn, target_type, target_id, user,
                                                           role))
            return Response(status_code=204)
        found = await self._read(lambda conn: identity.has_grant(conn, target_type, target_id,
                                                                 user, role))
        if not found:
            raise IdentityError(404, f"Could not find role assignment of role {role}.")
        return Response(status_code=204)

    async def list_grants(self, request: Request) -> Response:
        await self.admin(request)
        p = request.path_params
        target_type = _TARGETS.get(p["target_type"], "")
        if not target_type:
            raise IdentityError(404, "Role assignments exist on projects and domains only.")
        roles = await self._read(lambda conn: self.identity.roles_of(
            conn, target_type, p["target"], p["user"], expand=False))
        return _json({"roles": roles, "links": {}})

    async def role_assignments(self, request: Request) -> Response:
        await self.admin(request)
        filters = dict(request.query_params)
        return _json({"role_assignments": await self._read(
            lambda conn: self.identity.assignments(conn, filters)), "links": {}})

    async def services(self, request: Request) -> Response:
        await self.caller(request)
        return _json({"services": [
            {"id": s["id"], "type": s["type"], "name": s["name"], "enabled": True}
            for s in catalog(base_url(request))], "links": {}})

    async def endpoints(self, request: Request) -> Response:
        await self.caller(request)
        return _json({"endpoints": [
            {**e, "service_id": s["id"], "enabled": True}
            for s in catalog(base_url(request)) for e in s["endpoints"]], "links": {}})

    # -- assembly --------------------------------------------------------------

    def _guard(self, handler: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except IdentityError as err:
                return _error(err, base_url(request))
        return endpoint

    def v3_routes(self) -> list[Route]:
        g = self._guard
        routes = [
            Route("/v3", g(self.v3), methods=["GET"]),
            Route("/v3/", g(self.v3), methods=["GET"]),
            Route("/v3/auth/tokens", g(self.issue), methods=["POST"]),
            Route("/v3/auth/tokens", g(self.check), methods=["GET", "HEAD"]),
            Route("/v3/auth/tokens", g(self.revoke), methods=["DELETE"]),
            Route("/v3/auth/catalog", g(self.auth_catalog), methods=["GET"]),
            Route("/v3/auth/projects", g(self.auth_projects), methods=["GET"]),
            Route("/v3/users/{id}/projects", g(self.user_projects), methods=["GET"]),
            Route("/v3/{target_type:str}/{target}/users/{user}/roles",
                  g(self.list_grants), methods=["GET"]),
            Route("/v3/{target_type:str}/{target}/users/{user}/roles/{role}", g(self.grant),
                  methods=["PUT", "DELETE", "HEAD", "GET"]),
            Route("/v3/system/users/{user}/roles/{role}", g(self.grant),
                  methods=["PUT", "DELETE", "HEAD", "GET"]),
            Route("/v3/role_assignments", g(self.role_assignments), methods=["GET"]),
            Route("/v3/services", g(self.services), methods=["GET"]),
            Route("/v3/endpoints", g(self.endpoints), methods=["GET"]),
        ]
        for kind in ("domains", "projects", "users", "roles"):
            routes.extend(Route(r.path, g(r.endpoint), methods=list(r.methods or []))
                          for r in self._entity_routes(kind))
        return routes

    def routes(self) -> list[BaseRoute]:
        """``/identity`` (root + v3) and the bare ``/v3`` alias."""
        v3 = self.v3_routes()
        return [
            Route("/identity", self._guard(self.root), methods=["GET"]),
            Mount("/identity", routes=[Route("/", self._guard(self.root), methods=["GET"]),
                                       *v3]),
            *v3,
        ]
