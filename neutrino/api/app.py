"""The HTTP face of the Networking API v2.0.

Handlers parse, authenticate and render; every operation runs in one
database transaction through :class:`neutrino.db.engine.Database`.  Nothing
here holds a domain rule, nor makes change events: the services record those of
everything they change, in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Connection
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from neutrino import errors, policy
from neutrino.api import query as q
from neutrino.api.auth import Authenticator, NoAuth
from neutrino.api.http import RequestLimits
from neutrino.api.loadbalancer.envelope import PATH as LB_PATH
from neutrino.api.loadbalancer.envelope import fault as lb_fault
from neutrino.api.loadbalancer.routes import LoadBalancerApi
from neutrino.context import Context
from neutrino.db.engine import Database
from neutrino.schema.core import Resource
from neutrino.schema.extensions import BY_ALIAS, EXTENSIONS
from neutrino.schema.kinds import MAX_TAGS, BadValue, ListOf, Tag
from neutrino.schema.openapi import openapi_document
from neutrino.schema.resources import PROJECT_ID, RESOURCES
from neutrino.services import Services
from neutrino.services.core import collection as coll

log = logging.getLogger(__name__)
T = TypeVar("T")
JSON = "application/json"
TAG = Tag()
TAGS = ListOf(TAG, unique=True)


def json_response(body: Any, status: int = 200, request_id: str = "",
                  headers: dict[str, str] | None = None) -> Response:
    if request_id:
        headers = {**(headers or {}), "X-Openstack-Request-Id": request_id}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def error_response(err: errors.NeutronError, request_id: str = "") -> Response:
    # the rest of a body too large is never read: the connection cannot carry on
    headers = {"Connection": "close"} if err.status == 413 else None
    return json_response(err.body(), err.status, request_id, headers)


def _strip_fields(item: dict, fields: list[str]) -> dict:
    if not fields:
        return item
    return {k: item[k] for k in fields if k in item}


def _hide(item: dict, hidden: frozenset[str]) -> dict:
    if not hidden:
        return item
    return {k: v for k, v in item.items() if k not in hidden}


def _if_match(request: Request) -> int | None:
    """The ``revision_number=N`` constraint among the If-Match etags, if any.

    Other etags (``*``, quoted values) are not ours and are ignored, as upstream does.
    """
    header = request.headers.get("if-match")
    if not header:
        return None
    revision = None
    for part in header.split(","):
        etag = part.strip().removeprefix("W/").strip('"')
        if not etag.startswith("revision_number="):
            continue
        if revision is not None:
            raise errors.BadRequest("Bad if-match request: Multiple revision_number etags are "
                                    "not supported.", type="BadRequest")
        try:
            revision = int(etag.removeprefix("revision_number="))
        except ValueError:
            raise errors.BadRequest("Bad if-match request: Revision number etag must be in the "
                                    "format of revision_number=<int>.",
                                    type="BadRequest") from None
    return revision


def _project_param(request: Request) -> str:
    """The ``{project}`` of a quotas path: an id that fits where projects are stored."""
    project = request.path_params["project"]
    try:
        return PROJECT_ID(project)
    except BadValue as exc:
        raise errors.InvalidInput(f"project_id {exc.message}.") from None


class Api:
    def __init__(self, services: Services, db: Database,
                 auth: Authenticator | None = None) -> None:
        self.services = services
        self.db = db
        self.auth = auth or NoAuth()

    # -- plumbing -------------------------------------------------------------

    async def _body(self, request: Request) -> Any:
        try:
            raw = await request.body()
        except ClientDisconnect:  # e.g. the parser refused its body and closed
            raise errors.BadRequest("Body contains invalid data: the client went away "
                                    "before the body arrived") from None
        if not raw:
            raise errors.BadRequest("Body contains invalid data: the request has no body")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.BadRequest("Body contains invalid data") from None

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        if self.db.inline:  # SQLite: see Database.inline
            return self.db.run_read(fn)
        return await run_in_threadpool(self.db.run_read, fn)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        if self.db.inline:
            return self.db.write(fn)
        return await run_in_threadpool(self.db.write, fn)

    def _collection(self, request: Request) -> tuple[coll.Collection, Resource]:
        name = request.path_params["collection"]
        service = self.services.collections.get(name)
        if service is None:
            raise errors.NotFound("The resource could not be found.")
        return service, RESOURCES[name]

    # -- discovery ------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return json_response({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
            {"rel": "self", "href": f"{base}/v2.0/"}]}]})

    async def v2_root(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        resources = [{"name": r.name, "collection": r.collection, "links": [
            {"rel": "self", "href": f"{base}/v2.0/{r.url_path}"}]}
            for r in RESOURCES.values()]
        return json_response({"resources": resources})

    async def extensions(self, request: Request) -> Response:
        return json_response({"extensions": [e.as_dict() for e in EXTENSIONS]})

    async def extension(self, request: Request) -> Response:
        alias = request.path_params["alias"]
        ext = BY_ALIAS.get(alias)
        if ext is None:
            raise errors.NotFound(f"Extension with alias {alias} does not exist",
                                  type="HTTPNotFound")
        return json_response({"extension": ext.as_dict()})

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    # -- generic CRUD ---------------------------------------------------------

    async def list(self, request: Request, ctx: Context) -> Response:
        service, resource = self._collection(request)
        parsed = q.parse(request.url.query)
        if service.listing.prepare is not None:  # e.g. a project's default security group
            await self._prepare_list(service.listing.prepare, ctx, parsed.query)
        page = await self._read(lambda conn: service.listing.list(conn, ctx, parsed.query))
        hidden = resource.hidden_for(ctx.is_admin)
        items = [_strip_fields(_hide(i, hidden), parsed.fields) if (hidden or parsed.fields)
                 else i for i in page.items]
        body: dict[str, Any] = {resource.collection: items}
        if parsed.query.limit:
            base = str(request.base_url).rstrip("/")
            body[f"{resource.collection}_links"] = q.links(
                base, resource.url_path, parsed, page.items, page.has_more)
        return json_response(body, request_id=ctx.request_id)

    async def show(self, request: Request, ctx: Context) -> Response:
        service, resource = self._collection(request)
        ident = request.path_params["id"]
        parsed = q.parse(request.url.query)
        item = await self._read(lambda conn: service.listing.get(conn, ctx, ident,
                                                                 parsed.query.fields))
        item = _strip_fields(_hide(item, resource.hidden_for(ctx.is_admin)), parsed.fields)
        return json_response({resource.name: item}, request_id=ctx.request_id)

    async def create(self, request: Request, ctx: Context) -> Response:
        service, resource = self._collection(request)
        items, bulk = resource.unwrap(await self._body(request), allow_bulk=True)
        bodies = [resource.validate_create(i, is_admin=ctx.is_admin) for i in items]

        def op(conn: Connection) -> list[dict]:
            ids = [service.create(conn, ctx, b) for b in bodies]
            if len(ids) == 1:
                return [service.listing.get(conn, ctx, ids[0])]
            page = service.listing.list(conn, ctx, coll.ListQuery(filters={"id": ids}))
            order = {ident: n for n, ident in enumerate(ids)}
            return sorted(page.items, key=lambda i: order[i["id"]])

        created = await self._write(op)
        hidden = resource.hidden_for(ctx.is_admin)
        created = [_hide(i, hidden) for i in created]
        if bulk:
            return json_response({resource.collection: created}, 201, ctx.request_id)
        return json_response({resource.name: created[0]}, 201, ctx.request_id)

    async def update(self, request: Request, ctx: Context) -> Response:
        service, resource = self._collection(request)
        ident = request.path_params["id"]
        items, _ = resource.unwrap(await self._body(request), allow_bulk=False)
        changes = resource.validate_update(items[0], is_admin=ctx.is_admin)
        if_match = _if_match(request)

        def op(conn: Connection) -> dict:
            service.update(conn, ctx, ident, changes, if_match)
            return service.listing.get(conn, ctx, ident)

        item = await self._write(op)
        item = _hide(item, resource.hidden_for(ctx.is_admin))
        return json_response({resource.name: item}, request_id=ctx.request_id)

    async def delete(self, request: Request, ctx: Context) -> Response:
        service, resource = self._collection(request)
        ident = request.path_params["id"]
        if_match = _if_match(request)

        def op(conn: Connection) -> None:
            # If-Match guards deletes too (upstream answers 412 on a stale revision);
            # resources without revisions (RBAC policies) ignore it, as upstream
            if if_match is not None and "revision_number" in resource.by_name:
                coll.check_revision(service.listing.get_row(conn, ctx, ident), if_match)
            service.delete(conn, ctx, ident)

        await self._write(op)
        return Response(status_code=204)

    async def _prepare_list(self, prepare: coll.ListPreparer, ctx: Context,
                            query: coll.ListQuery) -> None:
        """Write what must exist before a list shows it, in a transaction of its own
        (reads never write); the check is a read, so the common case writes nothing."""
        if await self._read(lambda conn: prepare.list_needs(conn, ctx, query)):
            await self._write(lambda conn: prepare.prepare_list(conn, ctx, query))

    # -- a resource's own verbs ----------------------------------------------

    async def action(self, request: Request, ctx: Context) -> Response:
        """``PUT /{collection}/{id}/{action}`` (add_router_interface, add_extraroutes, ...).

        The body is the action's own (not an envelope); an action that answers with the
        resource shows it as every response does.
        """
        service, resource = self._collection(request)
        perform = service.actions.get(request.path_params["action"])
        if perform is None:
            raise errors.NotFound("The resource could not be found.")
        if request.method != "PUT":
            raise errors.MethodNotAllowed("The method is not allowed for this resource.")
        ident = request.path_params["id"]
        body = await self._body(request)
        result = await self._write(lambda conn: perform(conn, ctx, ident, body))
        if isinstance(result.get(resource.name), dict):
            result = {resource.name: _hide(result[resource.name],
                                           resource.hidden_for(ctx.is_admin))}
        return json_response(result, request_id=ctx.request_id)

    # -- tags -----------------------------------------------------------------

    def _tag_target(self, conn: Connection, request: Request, ctx: Context,
                    action: str | None = None) -> str:
        """The id whose tags are asked for; ``action`` (update, delete) marks a write."""
        service, resource = self._collection(request)
        if "tags" not in resource.by_name:  # agents carry no tags
            raise errors.NotFound("The resource could not be found.")
        ident = request.path_params["id"]
        row = service.listing.get_row(conn, ctx, ident)
        if action is not None:
            rule = f"{action}_{resource.name}:tags"
            policy.check_write(ctx, rule)
            policy.check_owner(ctx, row.project_id, rule)
            coll.check_revision(row, _if_match(request))
        return ident

    def _retag(self, conn: Connection, request: Request, ident: str, current: list[str],
               new: list[str]) -> None:
        """Store ``new`` tags; only a real change is a new revision (as upstream)."""
        if set(new) == set(current):
            return
        service, resource = self._collection(request)
        if len(set(new)) > MAX_TAGS:  # upstream's words
            raise errors.BadRequest(f"Bad {resource.collection} request: The number of tags "
                                    f"exceed the per-resource limit of {MAX_TAGS}.",
                                    type="BadRequest")
        coll.set_tags(conn, ident, new)
        service.listing.touch(conn, ident)

    @staticmethod
    def _tag_param(request: Request) -> str:
        try:
            return TAG(request.path_params["tag"])
        except BadValue as exc:
            raise errors.InvalidInput(f"{exc.message}.") from None

    async def _tags_body(self, request: Request) -> list[str]:
        body = await self._body(request)
        if not isinstance(body, dict) or "tags" not in body or len(body) != 1:
            raise errors.InvalidInput('Invalid tags body: expected {"tags": [...]}.')
        try:
            return TAGS(body["tags"])
        except BadValue as exc:
            raise errors.InvalidInput(f"{exc.message}.") from None

    async def tags(self, request: Request, ctx: Context) -> Response:
        def op(conn: Connection) -> list[str]:
            ident = self._tag_target(conn, request, ctx)
            return coll.load_tags(conn, [ident]).get(ident, [])
        return json_response({"tags": await self._read(op)})

    async def tag_exists(self, request: Request, ctx: Context) -> Response:
        tag = self._tag_param(request)

        def op(conn: Connection) -> bool:
            ident = self._tag_target(conn, request, ctx)
            return tag in coll.load_tags(conn, [ident]).get(ident, [])
        if not await self._read(op):
            raise errors.NotFound(f"Tag {tag} could not be found.", type="TagNotFound")
        return Response(status_code=204)

    async def replace_tags(self, request: Request, ctx: Context) -> Response:
        tags = await self._tags_body(request)

        def op(conn: Connection) -> None:
            ident = self._tag_target(conn, request, ctx, "update")
            self._retag(conn, request, ident, coll.load_tags(conn, [ident]).get(ident, []),
                        tags)
        await self._write(op)
        return json_response({"tags": tags})  # as given, as upstream answers

    async def add_tags(self, request: Request, ctx: Context) -> Response:
        """POST: add several tags at once, keeping the others (upstream has it too)."""
        tags = await self._tags_body(request)

        def op(conn: Connection) -> None:
            ident = self._tag_target(conn, request, ctx, "update")
            current = coll.load_tags(conn, [ident]).get(ident, [])
            self._retag(conn, request, ident, current, [*current, *tags])
        await self._write(op)
        return json_response({"tags": tags})

    async def add_tag(self, request: Request, ctx: Context) -> Response:
        tag = self._tag_param(request)

        def op(conn: Connection) -> None:
            ident = self._tag_target(conn, request, ctx, "update")
            current = coll.load_tags(conn, [ident]).get(ident, [])
            self._retag(conn, request, ident, current, [*current, tag])
        await self._write(op)
        return Response(status_code=201)

    async def delete_tags(self, request: Request, ctx: Context) -> Response:
        def op(conn: Connection) -> None:
            ident = self._tag_target(conn, request, ctx, "delete")
            self._retag(conn, request, ident, coll.load_tags(conn, [ident]).get(ident, []), [])
        await self._write(op)
        return Response(status_code=204)

    async def delete_tag(self, request: Request, ctx: Context) -> Response:
        tag = self._tag_param(request)

        def op(conn: Connection) -> None:
            ident = self._tag_target(conn, request, ctx, "delete")
            current = coll.load_tags(conn, [ident]).get(ident, [])
            if tag not in current:
                raise errors.NotFound(f"Tag {tag} could not be found.", type="TagNotFound")
            self._retag(conn, request, ident, current, [x for x in current if x != tag])
        await self._write(op)
        return Response(status_code=204)

    # -- quotas ---------------------------------------------------------------

    async def quotas_list(self, request: Request, ctx: Context) -> Response:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("get_quota")
        quotas = self.services.quotas
        return json_response({"quotas": await self._read(quotas.list_projects)})

    async def quota_show(self, request: Request, ctx: Context) -> Response:
        project = _project_param(request)
        quotas = self.services.quotas
        return json_response({"quota": await self._read(
            lambda conn: quotas.show(conn, ctx, project))})

    async def quota_default(self, request: Request, ctx: Context) -> Response:
        project = _project_param(request)
        return json_response({"quota": self.services.quotas.default(ctx, project)})

    async def quota_details(self, request: Request, ctx: Context) -> Response:
        project = _project_param(request)
        quotas = self.services.quotas
        return json_response({"quota": await self._read(
            lambda conn: quotas.details(conn, ctx, project))})

    async def quota_update(self, request: Request, ctx: Context) -> Response:
        project = _project_param(request)
        body = await self._body(request)
        quotas = self.services.quotas
        return json_response({"quota": await self._write(
            lambda conn: quotas.update(conn, ctx, project, body))})

    async def quota_reset(self, request: Request, ctx: Context) -> Response:
        project = _project_param(request)
        quotas = self.services.quotas
        await self._write(lambda conn: quotas.reset(conn, ctx, project))
        return Response(status_code=204)

    # -- assembly -------------------------------------------------------------

    def _authed(self, handler: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                ctx = await self.auth.authenticate(request.headers)
            except errors.Unauthorized as err:
                # shaped as keystonemiddleware answers, which clients expect
                return json_response(
                    {"error": {"code": 401, "title": "Unauthorized", "message": err.message}},
                    401, headers={"WWW-Authenticate": f'Keystone uri="{request.base_url}'
                                                      f'identity"'})
            except errors.NeutronError as err:
                return error_response(err)
            if not ctx.request_id:
                ctx = Context(ctx.project_id, ctx.user_id, ctx.roles, ctx.is_admin,
                              f"req-{uuid.uuid4()}")
            try:
                # no stored name or id holds a NUL (PostgreSQL cannot even compare one)
                if any("\x00" in v for v in request.path_params.values()):
                    raise errors.NotFound("The resource could not be found.")
                return await handler(request, ctx)
            except errors.NeutronError as err:
                return error_response(err, ctx.request_id)
        return endpoint

    @staticmethod
    def _under(prefix: str, handler: Callable) -> Callable:
        """``handler`` for collections served below ``/v2.0/<prefix>`` (FWaaS's
        ``fwaas/firewall_groups``): the collection is named with its prefix."""
        async def endpoint(request: Request) -> Response:
            params = request.scope["path_params"]
            request.scope["path_params"] = {**params,
                                            "collection": prefix + params["collection"]}
            return await handler(request)
        return endpoint

    def routes(self) -> list[Route]:
        generic = self._collection_routes("/v2.0/{collection}")
        # before the generic routes, which would take "fwaas" for a collection
        fwaas = [Route(r.path.replace("/v2.0/", "/v2.0/fwaas/", 1),
                       self._under("fwaas/", r.endpoint), methods=r.methods)
                 for r in generic]
        return [*self._discovery_routes(), *fwaas, *generic]

    def _discovery_routes(self) -> list[Route]:
        a = self._authed
        return [
            Route("/", self.versions, methods=["GET"]),
            Route("/v2.0/", self.v2_root, methods=["GET"]),
            Route("/v2.0/extensions", a(lambda r, _c: self.extensions(r)), methods=["GET"]),
            Route("/v2.0/extensions/{alias}", a(lambda r, _c: self.extension(r)),
                  methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v2.0/quotas", a(self.quotas_list), methods=["GET"]),
            Route("/v2.0/quotas/{project}", a(self.quota_show), methods=["GET"]),
            Route("/v2.0/quotas/{project}", a(self.quota_update), methods=["PUT"]),
            Route("/v2.0/quotas/{project}", a(self.quota_reset), methods=["DELETE"]),
            Route("/v2.0/quotas/{project}/default", a(self.quota_default), methods=["GET"]),
            Route("/v2.0/quotas/{project}/details", a(self.quota_details), methods=["GET"]),
        ]

    def _collection_routes(self, c: str) -> list[Route]:
        a = self._authed
        return [
            Route(c, a(self.list), methods=["GET"]),
            Route(c, a(self.create), methods=["POST"]),
            Route(c + "/{id}", a(self.show), methods=["GET"]),
            Route(c + "/{id}", a(self.update), methods=["PUT"]),
            Route(c + "/{id}", a(self.delete), methods=["DELETE"]),
            Route(c + "/{id}/tags", a(self.tags), methods=["GET"]),
            Route(c + "/{id}/tags", a(self.replace_tags), methods=["PUT"]),
            Route(c + "/{id}/tags", a(self.add_tags), methods=["POST"]),
            Route(c + "/{id}/tags", a(self.delete_tags), methods=["DELETE"]),
            Route(c + "/{id}/tags/{tag}", a(self.tag_exists), methods=["GET"]),
            Route(c + "/{id}/tags/{tag}", a(self.add_tag), methods=["PUT"]),
            Route(c + "/{id}/tags/{tag}", a(self.delete_tag), methods=["DELETE"]),
            # after the tag routes, which it would otherwise shadow
            Route(c + "/{id}/{action}", a(self.action),
                  methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]


def _enveloped(request: Request, err: errors.NeutronError) -> Response:
    """``err`` in the envelope of the API the path belongs to."""
    if request.url.path.startswith(LB_PATH):  # Octavia's, even unrouted
        return lb_fault(err)
    return error_response(err)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _enveloped(request, errors.MethodNotAllowed(
            "The method is not allowed for this resource."))
    if exc.status_code == 404:
        return _enveloped(request, errors.NotFound("The resource could not be found."))
    return _enveloped(request, errors.NeutronError(str(exc.detail), type="HTTPError"))


async def _neutron_error(request: Request, exc: Exception) -> Response:
    """A NeutronError no handler caught (the identity API's, a body over the limit)."""
    assert isinstance(exc, errors.NeutronError)
    return _enveloped(request, exc)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _enveloped(request, errors.NeutronError(
        "Request Failed: internal server error while processing your request.",
        type="HTTPInternalServerError"))


def create_app(services: Services, db: Database, auth: Authenticator | None = None,
               extra_routes: list[BaseRoute] | None = None) -> Starlette:
    api = Api(services, db, auth)
    lbaas = LoadBalancerApi(services.loadbalancers, db, api.auth)
    lbaas.start()  # completes what a process that died left PENDING
    settings = services.settings
    limits = Middleware(RequestLimits, max_body=settings.max_request_body_size,
                        max_params=settings.max_query_params)
    routes = [*(extra_routes or []), Mount(LB_PATH, routes=lbaas.routes()),
              *api.routes()]
    return Starlette(routes=routes, middleware=[limits],
                     exception_handlers={HTTPException: _http_error,
                                         errors.NeutronError: _neutron_error,
                                         Exception: _server_error})
