"""Keystone v3 over HTTP, served by Neutrino itself under ``/identity``.

``/identity`` is the identity root (as in devstack), ``/identity/v3`` the
v3 API; ``/v3`` answers the same for clients configured with the bare host.
Errors use Keystone's envelope, ``{"error": {"code", "title", "message"}}``,
for every path under both (unknown paths and methods too).

Every operation is declared once, in :meth:`IdentityApi.operations`: its path,
who may call it, the JSON Schema of its body and query (checked before the
handler runs) and what it answers.  The routes and the OpenAPI document served
at ``/identity/openapi.json`` are both made from those declarations.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from neutrino import errors
from neutrino.db.engine import Database
from neutrino.identity import schema as s
from neutrino.identity.errors import IdentityError, forbidden, unauthorized
from neutrino.identity.store import Identity, TokenInfo, hash_password

log = logging.getLogger(__name__)
T = TypeVar("T")
REGION = "RegionOne"
VERSION = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
           "media-types": [{"base": "application/json",
                            "type": "application/vnd.openstack.identity-v3+json"}]}
_TARGETS = {"projects": "project", "domains": "domain"}
_NS = uuid.UUID("0a7c41a4-5d36-4bd1-9a5e-6a8a37c2c6f1")
#: Keystone's [DEFAULT] max_request_body_size
MAX_BODY = 114688
ENTITIES = ("domains", "projects", "users", "roles")


def _json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def _error(err: IdentityError, base: str = "") -> Response:
    headers = dict(err.headers or {})
    if err.code == 401:
        headers["WWW-Authenticate"] = f'Keystone uri="{base}/identity"'
    return _json(err.body(), err.code, headers or None)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def catalog(base: str) -> list[dict]:
    services = (("network", "neutron", base), ("identity", "keystone", f"{base}/identity"),
                ("load-balancer", "octavia", f"{base}/load-balancer"))
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


def is_admin(info: TokenInfo) -> bool:
    return any(r["name"] == "admin" for r in info.roles)


class _App:
    """An ASGI callable as a class instance, which Starlette routes every method to."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Operation:
    """One operation of the identity API, as the routes and the OpenAPI document see it."""

    method: str
    path: str  # under /v3
    handler: Callable[[Request], Awaitable[Response]]
    summary: str
    #: who may call it: "none", "token" (any valid token), "admin", or "owner" (a token;
    #: the handler lets its own user or an admin through)
    auth: str
    status: int  # on success
    returns: str | None = None  # the response body (a schema in the OpenAPI document)
    body: dict | None = None  # JSON Schema of the request body
    query: dict[str, dict] | None = None  # the query parameters it reads
    headers: tuple[str, ...] = ()  # request headers it reads, besides X-Auth-Token
    errors: tuple[int, ...] = ()  # besides those its auth, body and path imply
    tag: str = "identity"
    path_params: dict[str, dict] = field(default_factory=dict)

    def error_codes(self) -> list[int]:
        codes = set(self.errors)
        if self.body is not None or self.query:
            codes.add(400)
        if self.body is not None:
            codes.add(413)
        if self.auth != "none":
            codes.add(401)
        if self.auth in ("admin", "owner"):
            codes.add(403)
        if "{" in self.path:
            codes.add(404)
        return sorted(codes)


class IdentityApi:
    def __init__(self, identity: Identity, db: Database,
                 on_change: Callable[[], None] | None = None) -> None:
        self.identity = identity
        self.db = db
        #: called after every change, so this process drops its cached validations at once
        #: (other processes see the change through the identity revision)
        self.on_change = on_change or (lambda: None)

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        return await run_in_threadpool(self.db.run_read, fn)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        result = await run_in_threadpool(self.db.write, fn)
        self.on_change()
        return result

    @staticmethod
    async def _body(request: Request, schema: dict) -> Any:
        declared = request.headers.get("content-length", "")
        too_large = IdentityError(413, "Request is too large.")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise too_large
            chunks.append(chunk)
        try:
            body = orjson.loads(b"".join(chunks) or b"null")
        except orjson.JSONDecodeError:
            raise IdentityError(400, "The request body is not valid JSON.") from None
        s.check(schema, body)
        return body

    async def caller(self, request: Request) -> TokenInfo:
        token = request.headers.get("x-auth-token")
        info = await self._read(lambda conn: self.identity.validate(conn, token))
        if info is None:
            raise unauthorized()
        return info

    @staticmethod
    def _require_admin(info: TokenInfo) -> None:
        if not is_admin(info):
            raise forbidden("You are not authorized to perform the requested action: "
                            "it needs the admin role.")

    @staticmethod
    def _address(request: Request) -> str:
        return request.client.host if request.client else ""

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
        auth = request.state.body["auth"]
        token, info = await run_in_threadpool(self.identity.authenticate, self.db, auth,
                                              self._address(request))
        nocatalog = "nocatalog" in request.query_params
        return _json({"token": token_body(info, base_url(request), with_catalog=not nocatalog)},
                     201, {"X-Subject-Token": token})

    async def _subject(self, request: Request) -> tuple[str, TokenInfo]:
        """The X-Subject-Token, which only its own user or an admin may look at (Keystone's
        ``rule:token_subject``)."""
        caller = request.state.caller
        subject = request.headers.get("x-subject-token") or ""
        target = await self._read(lambda conn: self.identity.validate(conn, subject))
        if target is None:
            raise IdentityError(404, "Could not find token.")
        if not is_admin(caller) and target.user["id"] != caller.user["id"]:
            raise forbidden("Only an admin or the token's own user may look at a token.")
        return subject, target

    async def check(self, request: Request) -> Response:
        subject, info = await self._subject(request)
        if request.method == "HEAD":
            return Response(status_code=200, headers={"X-Subject-Token": subject})
        nocatalog = "nocatalog" in request.query_params
        return _json({"token": token_body(info, base_url(request), with_catalog=not nocatalog)},
                     200, {"X-Subject-Token": subject})

    async def revoke(self, request: Request) -> Response:
        subject, _ = await self._subject(request)
        await self._write(lambda conn: self.identity.revoke_token(conn, subject))
        return Response(status_code=204)

    async def auth_catalog(self, request: Request) -> Response:
        return _json({"catalog": catalog(base_url(request)), "links": {}})

    async def auth_projects(self, request: Request) -> Response:
        user_id = request.state.caller.user["id"]
        return _json({"projects": await self._read(
            lambda conn: self._user_projects(conn, user_id)), "links": {}})

    def _user_projects(self, conn: Connection, user_id: str) -> list[dict]:
        ids = {a["scope"]["project"]["id"]
               for a in self.identity.assignments(conn, {"user.id": user_id})
               if "project" in a["scope"]}
        return [p for p in self.identity.list(conn, "projects", {}) if p["id"] in ids]

    # -- the admin API ---------------------------------------------------------

    def _link(self, request: Request, kind: str, item: dict) -> dict:
        item["links"] = {"self": f"{base_url(request)}/identity/v3/{kind}/{item['id']}"}
        return item

    @staticmethod
    async def _hashed(body: dict) -> dict:
        """The body with its password hashed here, not inside the transaction."""
        if isinstance(body.get("password"), str):
            return {**body, "password": await run_in_threadpool(hash_password,
                                                                body["password"])}
        return body

    def _entity_handlers(self, kind: str) -> dict[str, Callable]:
        singular = kind[:-1]

        async def listing(request: Request) -> Response:
            filters = request.state.query
            items = await self._read(lambda conn: self.identity.list(conn, kind, filters))
            return _json({kind: [self._link(request, kind, i) for i in items],
                          "links": {"self": str(request.url), "next": None,
                                    "previous": None}})

        async def create(request: Request) -> Response:
            body = await self._hashed(request.state.body[singular])
            maker = getattr(self.identity, f"create_{singular}")
            item = await self._write(lambda conn: maker(conn, body))
            return _json({singular: self._link(request, kind, item)}, 201)

        async def show(request: Request) -> Response:
            ident = request.path_params["id"]
            if not (kind == "users" and ident == request.state.caller.user["id"]):
                self._require_admin(request.state.caller)
            item = await self._read(lambda conn: self.identity.get(conn, kind, ident))
            return _json({singular: self._link(request, kind, item)})

        async def update(request: Request) -> Response:
            ident = request.path_params["id"]
            body = await self._hashed(request.state.body[singular])
            item = await self._write(lambda conn: self.identity.update(conn, kind, ident, body))
            return _json({singular: self._link(request, kind, item)})

        async def delete(request: Request) -> Response:
            ident = request.path_params["id"]
            await self._write(lambda conn: self.identity.delete(conn, kind, ident))
            return Response(status_code=204)

        return {"list": listing, "create": create, "show": show, "update": update,
                "delete": delete}

    async def user_projects(self, request: Request) -> Response:
        user_id = request.path_params["id"]
        if user_id != request.state.caller.user["id"]:
            self._require_admin(request.state.caller)
        return _json({"projects": await self._read(
            lambda conn: self._user_projects(conn, user_id)), "links": {}})

    async def change_password(self, request: Request) -> Response:
        user = request.state.body["user"]
        await run_in_threadpool(self.identity.change_password, self.db,
                                request.path_params["id"], user["original_password"],
                                user["password"], self._address(request))
        self.on_change()
        return Response(status_code=204)

    async def grant(self, request: Request) -> Response:
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
        p = request.path_params
        target_type = _TARGETS.get(p["target_type"], "")
        if not target_type:
            raise IdentityError(404, "Role assignments exist on projects and domains only.")
        roles = await self._read(lambda conn: self.identity.roles_of(
            conn, target_type, p["target"], p["user"], expand=False))
        return _json({"roles": roles, "links": {}})

    async def role_assignments(self, request: Request) -> Response:
        filters = request.state.query
        return _json({"role_assignments": await self._read(
            lambda conn: self.identity.assignments(conn, filters)), "links": {}})

    async def services(self, request: Request) -> Response:
        return _json({"services": [
            {"id": sv["id"], "type": sv["type"], "name": sv["name"], "enabled": True}
            for sv in catalog(base_url(request))], "links": {}})

    async def endpoints(self, request: Request) -> Response:
        return _json({"endpoints": [
            {**e, "service_id": sv["id"], "enabled": True}
            for sv in catalog(base_url(request)) for e in sv["endpoints"]], "links": {}})

    async def openapi(self, request: Request) -> Response:
        from neutrino.identity.openapi import openapi_document

        return _json(openapi_document(self.operations()))

    # -- the declarations -------------------------------------------------------

    def operations(self) -> list[Operation]:
        """Every operation under ``/v3``, in routing order."""
        Op = Operation  # a table reads better short
        pw = self.identity.security.max_password_length
        subject = ("X-Subject-Token",)
        nocatalog = {"nocatalog": {"type": "string", "maxLength": 16}}
        target = {"target_type": {"type": "string", "enum": list(_TARGETS)}}
        ops = [
            Op("GET", "", self.v3, "The v3 version document", "none", 200, "version",
              tag="discovery"),
            Op("GET", "/", self.v3, "The v3 version document", "none", 200, "version",
              tag="discovery"),
            Op("POST", "/auth/tokens", self.issue, "Authenticate: issue a token", "none", 201,
              "token", body=s.auth_request(pw), query=nocatalog, errors=(401, 429),
              tag="tokens"),
            Op("GET", "/auth/tokens", self.check, "Validate a token and show it", "owner",
              200, "token", query=nocatalog, headers=subject, errors=(404,), tag="tokens"),
            Op("HEAD", "/auth/tokens", self.check, "Check a token", "owner", 200,
              headers=subject, errors=(404,), tag="tokens"),
            Op("DELETE", "/auth/tokens", self.revoke, "Revoke a token", "owner", 204,
              headers=subject, errors=(404,), tag="tokens"),
            Op("GET", "/auth/catalog", self.auth_catalog, "The service catalog", "token", 200,
              "catalog", tag="tokens"),
            Op("GET", "/auth/projects", self.auth_projects,
              "The projects the token's user has a role on", "token", 200, "projects",
              tag="tokens"),
            Op("GET", "/users/{id}/projects", self.user_projects,
              "The projects a user has a role on", "owner", 200, "projects", tag="users"),
            Op("POST", "/users/{id}/password", self.change_password,
              "Change one's own password (the original one authenticates)", "none", 204,
              body=s.password_change(pw), errors=(401, 429), tag="users"),
            Op("GET", "/{target_type}/{target}/users/{user}/roles", self.list_grants,
              "The roles a user holds on a project or a domain", "admin", 200, "roles",
              path_params=target, tag="roles"),
        ]
        for method, status, summary in (("PUT", 204, "Grant a role"),
                                         ("DELETE", 204, "Remove a role assignment"),
                                         ("HEAD", 204, "Check a role assignment"),
                                         ("GET", 204, "Check a role assignment")):
            ops.append(Op(method, "/{target_type}/{target}/users/{user}/roles/{role}",
                         self.grant, f"{summary} on a project or a domain", "admin", status,
                         path_params=target, tag="roles"))
            ops.append(Op(method, "/system/users/{user}/roles/{role}", self.grant,
                         f"{summary} on the system", "admin", status, tag="roles"))
        ops += [
            Op("GET", "/role_assignments", self.role_assignments, "List role assignments",
              "admin", 200, "role_assignments", query=s.ASSIGNMENT_FILTERS, tag="roles"),
            Op("GET", "/services", self.services, "The catalog's services", "token", 200,
              "services", tag="catalog"),
            Op("GET", "/endpoints", self.endpoints, "The catalog's endpoints", "token", 200,
              "endpoints", tag="catalog"),
        ]
        for kind in ENTITIES:
            h = self._entity_handlers(kind)
            one = kind[:-1]
            ops += [
                Op("GET", f"/{kind}", h["list"], f"List {kind}", "admin", 200, kind,
                  query=s.FILTERS[kind], tag=kind),
                Op("POST", f"/{kind}", h["create"], f"Create a {one}", "admin", 201, one,
                  body=s.entity_create(kind, pw),  # 404: no such domain
                  errors=(404, 409) if kind in ("projects", "users") else (409,), tag=kind),
                Op("GET", f"/{kind}/{{id}}", h["show"], f"Show a {one}",
                  "owner" if kind == "users" else "admin", 200, one, tag=kind),
                Op("PATCH", f"/{kind}/{{id}}", h["update"], f"Update a {one}", "admin", 200,
                  one, body=s.entity_update(kind, pw), errors=(409,), tag=kind),
                Op("DELETE", f"/{kind}/{{id}}", h["delete"], f"Delete a {one}", "admin", 204,
                  errors=(403,), tag=kind),
            ]
        return ops

    # -- assembly --------------------------------------------------------------

    def _endpoint(self, op: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                # no stored id holds a NUL (PostgreSQL cannot even compare one)
                if any("\x00" in v for v in request.path_params.values()):
                    raise IdentityError(404, "The resource could not be found.")
                if op.auth != "none":
                    request.state.caller = await self.caller(request)
                if op.auth == "admin":
                    self._require_admin(request.state.caller)
                if op.body is not None:
                    request.state.body = await self._body(request, op.body)
                if op.query is not None:
                    request.state.query = s.check_query(op.query, dict(request.query_params))
                return await op.handler(request)
            except IdentityError as err:
                return _error(err, base_url(request))
            except errors.NeutronError as err:  # from the database layer: a lost race
                return _error(IdentityError(err.status, err.message), base_url(request))
            except Exception:  # a bug: still in Keystone's envelope
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return _error(IdentityError(500, "An unexpected error prevented the server "
                                                 "from fulfilling your request."),
                              base_url(request))
        return endpoint

    def _fallback(self, ops: list[Operation]) -> ASGIApp:
        """Keystone's 404 and 405 for what no operation answers (any method at all)."""
        known = [("/identity", "GET"), ("/identity/", "GET"), ("/identity/openapi.json", "GET")]
        known += [(f"{prefix}/v3{op.path}", op.method) for op in ops
                  for prefix in ("", "/identity")]
        routes = [Route(path, self.root, methods=[method]) for path, method in known]

        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            # an ASGI app, not a function: Starlette routes every method to it
            request = Request(scope, receive)
            allowed = sorted({m for r in routes if r.path_regex.match(request.url.path)
                              for m in (r.methods or ())})
            if allowed:
                err = IdentityError(405, f"The method {request.method} is not allowed for "
                                         f"this resource.", {"Allow": ", ".join(allowed)})
            else:
                err = IdentityError(404, "The resource could not be found.")
            await _error(err, base_url(request))(scope, receive, send)
        return _App(endpoint)

    def routes(self) -> list[BaseRoute]:
        """``/identity`` (root, v3, its OpenAPI document) and the bare ``/v3`` alias; every
        other method or path under them is Keystone's 405 or 404."""
        ops = self.operations()
        fallback = self._fallback(ops)
        root = self._endpoint(Operation("GET", "", self.root, "", "none", 300))
        routes: list[BaseRoute] = [
            Route("/identity", root, methods=["GET"]),
            Route("/identity/", root, methods=["GET"]),
            Route("/identity/openapi.json", self.openapi, methods=["GET"]),
        ]
        for prefix in ("/identity/v3", "/v3"):
            routes += [Route(f"{prefix}{op.path}", self._endpoint(op), methods=[op.method])
                       for op in ops]
        # last, for any method: a Mount or a {path} parameter would miss a path with a
        # newline in it, which then got the Networking API's 404
        routes += [Route(path, fallback) for path in (
            "/identity", "/identity/{rest:anything}", "/v3/{rest:anything}")]
        return routes


class _Anything(Convertor[str]):
    """The rest of a path, newlines included (``{x:path}`` stops at one)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anything", _Anything())
