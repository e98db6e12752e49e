"""``/load-balancer``: the Octavia v2 routes.  Handlers parse, authenticate and render;
each operation is one transaction of the load-balancer services."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino import errors
from neutrino.api.auth import Authenticator
from neutrino.api.loadbalancer import query
from neutrino.api.loadbalancer.envelope import fault
from neutrino.context import Context
from neutrino.db.engine import Database
from neutrino.schema import loadbalancer as s
from neutrino.services.loadbalancer.catalog import Catalog
from neutrino.services.loadbalancer.service import LoadBalancers
from neutrino.services.loadbalancer.status import StatusStore

log = logging.getLogger(__name__)
T = TypeVar("T")
Handler = Callable[[Request, Context], Awaitable[Response]]
#: the newest Octavia API version whose behaviour this serves (2.0 .. it, all CURRENT)
VERSIONS = ("2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7", "2.8", "2.9", "2.10",
            "2.11", "2.12", "2.13", "2.14", "2.15", "2.16", "2.17", "2.18", "2.19", "2.20",
            "2.21", "2.22", "2.23", "2.24", "2.25", "2.26", "2.27", "2.28", "2.29", "2.30")
CATALOG_OBJECTS = {"flavorprofiles": "flavorprofile", "flavors": "flavor",
                   "availabilityzoneprofiles": "availability_zone_profile",
                   "availabilityzones": "availability_zone"}
CATALOG_KINDS = {"flavorprofile": s.FLAVOR_PROFILE, "flavor": s.FLAVOR,
                 "availability_zone_profile": s.AZ_PROFILE,
                 "availability_zone": s.AVAILABILITY_ZONE}


def _json(body: Any, status: int = 200, request_id: str = "") -> Response:
    headers = {"X-Openstack-Request-Id": request_id} if request_id else None
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


class LoadBalancerApi:
    def __init__(self, service: LoadBalancers, db: Database, auth: Authenticator) -> None:
        self.service = service
        self.catalog = Catalog(service)
        self.db = db
        self.auth = auth
        self.status = StatusStore(db, service)

    def start(self) -> None:
        self.status.start()

    # -- plumbing ----------------------------------------------------------------------

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        if self.db.inline:
            return self.db.run_read(fn)
        return await run_in_threadpool(self.db.run_read, fn)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        if self.db.inline:
            return self.db.write(fn)
        return await run_in_threadpool(self.db.write, fn)

    @staticmethod
    async def _body(request: Request) -> Any:
        try:
            raw = await request.body()
        except ClientDisconnect:
            raise errors.BadRequest("The client went away before the body arrived.") \
                from None
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise errors.BadRequest("The request body is not valid JSON.") from None

    def _authed(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                ctx = await self.auth.authenticate(request.headers)
            except errors.Unauthorized as err:
                return _json({"error": {"code": 401, "title": "Unauthorized",
                                        "message": err.message}}, 401)
            except errors.NeutronError as err:
                return fault(err)
            if not ctx.request_id:
                ctx = Context(ctx.project_id, ctx.user_id, ctx.roles, ctx.is_admin,
                              f"req-{uuid.uuid4()}")
            try:
                if any("\x00" in v for v in request.path_params.values()):
                    raise errors.NotFound("The resource could not be found.")
                return await handler(request, ctx)
            except errors.NeutronError as err:
                return fault(err, ctx.request_id)
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return fault(errors.NeutronError("Internal server error while processing "
                                                 "the request."), ctx.request_id)
        return endpoint

    # -- discovery ---------------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/") + "/load-balancer"
        return _json({"versions": [
            {"id": f"v{v}", "status": "CURRENT", "updated": "2024-01-01T00:00:00Z",
             "links": [{"href": f"{base}/v2", "rel": "self"}]} for v in VERSIONS]})

    async def v2_root(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/") + "/load-balancer"
        return _json({"version": {"id": f"v{VERSIONS[-1]}", "status": "CURRENT",
                                  "links": [{"href": f"{base}/v2", "rel": "self"}]}})

    async def openapi(self, request: Request) -> Response:
        from neutrino.api.loadbalancer.openapi import document  # only when asked
        return _json(document())

    # -- the objects -----------------------------------------------------------------

    def _page(self, request: Request, kind: str, items: list[dict]) -> dict:
        base = str(request.url).split("?")[0]
        return query.page(items, request.url.query, s.KINDS[kind].collection, base)

    def _one(self, request: Request, kind: str, item: dict, status: int = 200,
             ctx: Context | None = None) -> Response:
        fields = query.fields_of(request.url.query)
        item = {k: item[k] for k in fields if k in item} if fields else query.shown(item)
        return _json({s.KINDS[kind].name: item}, status, ctx.request_id if ctx else "")

    def collection(self, kind: str, parent: str | None = None) -> tuple[Handler, Handler]:
        async def list_(request: Request, ctx: Context) -> Response:
            owner = request.path_params.get(parent) if parent else None
            items = await self._read(lambda c: self.service.list(c, ctx, kind, owner))
            return _json(self._page(request, kind, items), request_id=ctx.request_id)

        async def create(request: Request, ctx: Context) -> Response:
            body = s.KINDS[kind].validate_create(await self._body(request),
                                                 is_admin=ctx.is_admin)
            owner = request.path_params.get(parent) if parent else None
            make = {"loadbalancer": lambda c: self.service.create_loadbalancer(c, ctx, body),
                    "listener": lambda c: self.service.create_listener(c, ctx, body),
                    "pool": lambda c: self.service.create_pool(c, ctx, body),
                    "member": lambda c: self.service.create_member(c, ctx, owner, body),
                    "healthmonitor": lambda c: self.service.create_healthmonitor(c, ctx,
                                                                                  body),
                    "l7policy": lambda c: self.service.create_l7policy(c, ctx, body),
                    "l7rule": lambda c: self.service.create_l7rule(c, ctx, owner, body)}[kind]

            def op(conn: Connection) -> dict:
                ident = make(conn)
                return self.service.show(conn, ctx, kind, ident)
            return self._one(request, kind, await self._write(op), 201, ctx)
        return list_, create

    def item(self, kind: str, parent: str | None = None) -> tuple[Handler, Handler, Handler]:
        async def show(request: Request, ctx: Context) -> Response:
            owner = request.path_params.get(parent) if parent else None
            ident = request.path_params["id"]
            found = await self._read(lambda c: self.service.show(c, ctx, kind, ident, owner))
            return self._one(request, kind, found, ctx=ctx)

        async def update(request: Request, ctx: Context) -> Response:
            changes = s.KINDS[kind].validate_update(await self._body(request),
                                                    is_admin=ctx.is_admin)
            owner = request.path_params.get(parent) if parent else None
            ident = request.path_params["id"]
            svc = self.service
            change = {
                "loadbalancer": lambda c: svc.update_loadbalancer(c, ctx, ident, changes),
                "listener": lambda c: svc.update_listener(c, ctx, ident, changes),
                "pool": lambda c: svc.update_pool(c, ctx, ident, changes),
                "member": lambda c: svc.update_member(c, ctx, owner, ident, changes),
                "healthmonitor": lambda c: svc.update_healthmonitor(c, ctx, ident, changes),
                "l7policy": lambda c: svc.update_l7policy(c, ctx, ident, changes),
                "l7rule": lambda c: svc.update_l7rule(c, ctx, owner, ident, changes)}[kind]

            def op(conn: Connection) -> dict:
                change(conn)
                return svc.show(conn, ctx, kind, ident, owner)
            return self._one(request, kind, await self._write(op), 200, ctx)

        async def delete(request: Request, ctx: Context) -> Response:
            owner = request.path_params.get(parent) if parent else None
            ident = request.path_params["id"]
            if kind == "loadbalancer":
                cascade = request.query_params.get("cascade", "false").lower() in (
                    "true", "1", "yes")
                await self._write(lambda c: self.service.delete_loadbalancer(c, ctx, ident,
                                                                             cascade))
            else:
                await self._write(lambda c: self.service.delete_child(c, ctx, kind, ident,
                                                                      owner))
            return Response(status_code=204)
        return show, update, delete

    async def status_tree(self, request: Request, ctx: Context) -> Response:
        ident = request.path_params["id"]
        return _json(await self._read(lambda c: self.service.status_tree(c, ctx, ident)))

    def stats(self, kind: str) -> Handler:
        async def handler(request: Request, ctx: Context) -> Response:
            ident = request.path_params["id"]
            return _json(await self._read(lambda c: self.service.stats(c, ctx, kind, ident)))
        return handler

    async def failover(self, request: Request, ctx: Context) -> Response:
        ident = request.path_params["id"]
        await self._write(lambda c: self.service.failover(c, ctx, ident))
        return Response(status_code=202)

    async def batch_members(self, request: Request, ctx: Context) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            raise errors.BadRequest("Invalid input for field/attribute members. Value: "
                                    f"'{body}'. Mandatory field missing.")
        members = [s.MEMBER.validate_create({"member": m}, is_admin=ctx.is_admin)
                   for m in body["members"]]
        additive = request.query_params.get("additive_only", "false").lower() in (
            "true", "1", "yes")
        pool_id = request.path_params["pool_id"]
        await self._write(lambda c: self.service.batch_members(c, ctx, pool_id, members,
                                                               additive))
        return Response(status_code=202)

    # -- quotas, providers, flavors, zones, amphorae ---------------------------------

    async def quotas(self, request: Request, ctx: Context) -> Response:
        items = await self._read(lambda c: self.catalog.quota_list(c, ctx))
        return _json({"quotas": items, "quotas_links": []})

    async def quota_defaults(self, request: Request, ctx: Context) -> Response:
        return _json({"quota": self.catalog.quota_defaults(ctx)})

    async def quota_show(self, request: Request, ctx: Context) -> Response:
        project = request.path_params["project"]
        return _json({"quota": await self._read(
            lambda c: self.catalog.quota_show(c, ctx, project))})

    async def quota_update(self, request: Request, ctx: Context) -> Response:
        project = request.path_params["project"]
        body = s.QUOTA.validate_update(await self._body(request), is_admin=True)
        return _json({"quota": await self._write(
            lambda c: self.catalog.quota_update(c, ctx, project, body))}, 202)

    async def quota_reset(self, request: Request, ctx: Context) -> Response:
        project = request.path_params["project"]
        await self._write(lambda c: self.catalog.quota_reset(c, ctx, project))
        return Response(status_code=204)

    async def providers(self, request: Request, ctx: Context) -> Response:
        items = self.catalog.providers(ctx)
        return _json(query.page(items, request.url.query, "providers", "")
                     | {"providers_links": []})

    def capabilities(self, what: str) -> Handler:
        key = f"{what}_capabilities"

        async def handler(request: Request, ctx: Context) -> Response:
            items = self.catalog.capabilities(ctx, request.path_params["provider"], what)
            return _json({key: query.page(items, request.url.query, key, "")[key]})
        return handler

    def catalog_collection(self, what: str) -> tuple[Handler, Handler]:
        kind = CATALOG_KINDS[what]

        async def list_(request: Request, ctx: Context) -> Response:
            items = await self._read(lambda c: self.catalog.list(c, ctx, what))
            if what == "availability_zone":
                for i in items:
                    i.setdefault("id", i["name"])  # paging markers name zones
            body = query.page(items, request.url.query, kind.collection.replace("_", ""),
                              str(request.url).split("?")[0])
            if what == "availability_zone":
                for i in body[kind.collection.replace("_", "")]:
                    i.pop("id", None)
            return _json({kind.collection: body[kind.collection.replace("_", "")],
                          f"{kind.collection}_links":
                              body[f"{kind.collection.replace('_', '')}_links"]})

        async def create(request: Request, ctx: Context) -> Response:
            body = kind.validate_create(await self._body(request), is_admin=True)
            item = await self._write(lambda c: self.catalog.create(c, ctx, what, body))
            return _json({kind.name: item}, 201)
        return list_, create

    def catalog_item(self, what: str) -> tuple[Handler, Handler, Handler]:
        kind = CATALOG_KINDS[what]

        async def show(request: Request, ctx: Context) -> Response:
            ident = request.path_params["id"]
            item = await self._read(lambda c: self.catalog.show(c, ctx, what, ident))
            fields = query.fields_of(request.url.query)
            return _json({kind.name: {k: item[k] for k in fields if k in item}
                          if fields else item})

        async def update(request: Request, ctx: Context) -> Response:
            ident = request.path_params["id"]
            body = kind.validate_update(await self._body(request), is_admin=True)
            item = await self._write(lambda c: self.catalog.update(c, ctx, what, ident, body))
            return _json({kind.name: item})

        async def delete(request: Request, ctx: Context) -> Response:
            ident = request.path_params["id"]
            await self._write(lambda c: self.catalog.delete(c, ctx, what, ident))
            return Response(status_code=204)
        return show, update, delete

    async def amphorae(self, request: Request, ctx: Context) -> Response:
        if not ctx.is_admin:
            raise errors.Forbidden("Policy does not allow this request to be performed.")
        # the API-only provider runs no amphorae (nor will the namespace data plane)
        return _json({"amphorae": [], "amphorae_links": []})

    # -- assembly --------------------------------------------------------------------

    def routes(self) -> list[Route]:
        out = [Route("/", self.versions, methods=["GET"]),
               Route("/openapi.json", self.openapi, methods=["GET"])]
        # upstream serves the same API as /v2 and /v2.0 (clients use either)
        for prefix in ("/v2", "/v2.0"):
            out += [Route(prefix, self.v2_root, methods=["GET"]),
                    Route(prefix + "/", self.v2_root, methods=["GET"]),
                    *self._v2_routes(prefix)]
        # last: whatever no route takes is refused in Octavia's envelope too
        out.append(Route("/{rest:path}", self.unknown, methods=[
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
        return out

    async def unknown(self, request: Request) -> Response:
        return fault(errors.NotFound("The resource could not be found."))

    def _v2_routes(self, prefix: str) -> list[Route]:
        a = self._authed
        lbaas = prefix + "/lbaas"
        out: list[Route] = []
        paths = {"loadbalancer": (f"{lbaas}/loadbalancers", None),
                 "listener": (f"{lbaas}/listeners", None),
                 "pool": (f"{lbaas}/pools", None),
                 "member": (f"{lbaas}/pools/{{pool_id}}/members", "pool_id"),
                 "healthmonitor": (f"{lbaas}/healthmonitors", None),
                 "l7policy": (f"{lbaas}/l7policies", None),
                 "l7rule": (f"{lbaas}/l7policies/{{l7policy_id}}/rules", "l7policy_id")}
        for kind, (path, parent) in paths.items():
            list_, create = self.collection(kind, parent)
            show, update, delete = self.item(kind, parent)
            out += [Route(path, a(list_), methods=["GET"]),
                    Route(path, a(create), methods=["POST"])]
            if kind == "member":
                out.append(Route(path, a(self.batch_members), methods=["PUT"]))
            if kind == "loadbalancer":
                out += [Route(path + "/{id}/status", a(self.status_tree), methods=["GET"]),
                        Route(path + "/{id}/stats", a(self.stats(kind)), methods=["GET"]),
                        Route(path + "/{id}/failover", a(self.failover), methods=["PUT"])]
            if kind == "listener":
                out.append(Route(path + "/{id}/stats", a(self.stats(kind)),
                                 methods=["GET"]))
            out += [Route(path + "/{id}", a(show), methods=["GET"]),
                    Route(path + "/{id}", a(update), methods=["PUT"]),
                    Route(path + "/{id}", a(delete), methods=["DELETE"])]
        out += [Route(f"{lbaas}/quotas", a(self.quotas), methods=["GET"]),
                Route(f"{lbaas}/quotas/defaults", a(self.quota_defaults), methods=["GET"]),
                Route(f"{lbaas}/quotas/{{project}}", a(self.quota_show), methods=["GET"]),
                Route(f"{lbaas}/quotas/{{project}}", a(self.quota_update), methods=["PUT"]),
                Route(f"{lbaas}/quotas/{{project}}", a(self.quota_reset),
                      methods=["DELETE"]),
                Route(f"{lbaas}/providers", a(self.providers), methods=["GET"]),
                Route(f"{lbaas}/providers/{{provider}}/flavor_capabilities",
                      a(self.capabilities("flavor")), methods=["GET"]),
                Route(f"{lbaas}/providers/{{provider}}/availability_zone_capabilities",
                      a(self.capabilities("availability_zone")), methods=["GET"]),
                Route(prefix + "/octavia/amphorae", a(self.amphorae), methods=["GET"])]
        for segment, what in CATALOG_OBJECTS.items():
            list_, create = self.catalog_collection(what)
            show, update, delete = self.catalog_item(what)
            path = f"{lbaas}/{segment}"
            out += [Route(path, a(list_), methods=["GET"]),
                    Route(path, a(create), methods=["POST"]),
                    Route(path + "/{id}", a(show), methods=["GET"]),
                    Route(path + "/{id}", a(update), methods=["PUT"]),
                    Route(path + "/{id}", a(delete), methods=["DELETE"])]
        return out
