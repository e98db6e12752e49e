"""The OpenAPI 3.1 document of the API, derived from the resource declarations.

Request bodies say exactly what the declarations accept (the canonical JSON
types; the server is more lenient with some spellings, as upstream is), list
parameters come from the filterable and sortable attributes, and every error
is the ``NeutronError`` envelope.  The document is served at ``/openapi.json``
and fuzzed by ``tests/api/test_fuzz_schemathesis.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from neutrino.schema.core import REQUIRED, Field, Resource, json_kind
from neutrino.schema.kinds import MAX_TAGS, Boolean, Integer, ListOf, OneOf
from neutrino.schema.resources import ACTIONS, PROJECT_ID, RESOURCES

#: marks a request attribute only admins may set (a member's request with it is a 403)
ADMIN_ONLY = "x-neutrino-admin-only"
ERROR_REF = {"$ref": "#/components/schemas/NeutronError"}
ERROR = {
    "type": "object",
    "required": ["NeutronError"],
    "properties": {"NeutronError": {
        "type": "object",
        "required": ["type", "message", "detail"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                       "detail": {"type": "string"}},
    }},
}
LINKS = {"type": "array", "items": {
    "type": "object", "required": ["rel", "href"],
    "properties": {"rel": {"enum": ["next", "previous"]}, "href": {"type": "string"}}}}
TAG = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,/]+$"}
#: what each error status means, for the descriptions
REASONS = {400: "the request is malformed or a value is invalid",
           401: "authentication is required", 403: "the policy forbids it",
           404: "no such resource (or not visible to the caller)",
           409: "conflicts with the current state (in use, no free address, over quota)",
           412: "the If-Match revision_number is not the current one",
           413: "the body is larger than max_request_body_size"}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "description": "``revision_number=<n>``: only if the resource is at revision n",
            "schema": {"type": "string", "pattern": r"^revision_number=\d+$"}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(status: int, description: str, schema: dict | None = None) -> dict:
    return {str(status): {"description": description, **(_json(schema) if schema else {})}}


def _linked(response: dict, links: dict) -> dict:
    (status, body), = response.items()
    return {status: {**body, **links}}


def _errors(*codes: int) -> dict:
    return {str(code): {"description": REASONS[code], **_json(ERROR_REF)} for code in codes}


def _query(name: str, schema: dict, description: str = "") -> dict:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    if description:
        param["description"] = description
    return param


def _path(name: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _not_null(schema: dict) -> dict:
    """The schema without its ``null`` alternative (a query string has no null)."""
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        return rest[0] if len(rest) == 1 else {"anyOf": rest}
    return schema


def _filter_schema(kind: Callable[[Any], Any]) -> dict:
    """The values a filter on an attribute of this kind accepts from the query string.

    Filters are lenient: a value that no resource could hold matches nothing, so
    only booleans and integers are checked (a wrong one is a 400).
    """
    base = kind.item if isinstance(kind, ListOf) else kind
    if isinstance(base, Boolean):
        return {"type": "boolean"}
    if isinstance(base, Integer) or (isinstance(base, OneOf) and all(
            isinstance(c, int) for c in base.choices if c is not None)):
        return {"type": "integer"}
    schema = _not_null(json_kind(base))
    if schema.get("type") == "string":
        schema = {k: v for k, v in schema.items() if k != "maxLength"}
        return schema
    return {"type": "string"}


def _item_schema(resource: Resource) -> dict:
    """A resource as responses carry it (``fields=`` may leave any attribute out)."""
    props = {}
    for f in resource.fields:
        if not f.visible:
            continue
        schema = json_kind(f.kind)
        if f.name == "tags":
            schema = {"type": "array", "items": TAG}
        notes = [f.description] if f.description else []
        if f.admin_only:
            notes.append("Only admins see it.")
        if f.extension:
            notes.append(f"Extension: {f.extension}.")
        if notes:
            schema = {**schema, "description": " ".join(notes)}
        props[f.name] = schema
    return {"type": "object", "properties": props}


def _writable(f: Field, op: str) -> bool:
    return f.create if op == "create" else f.update


def _body_schema(resource: Resource, op: str) -> dict:
    props = {}
    required = []
    for f in resource.fields:
        if not _writable(f, op):
            continue
        schema = json_kind(f.kind)
        if f.name == "tags":
            schema = {"type": "array", "items": TAG, "uniqueItems": True,
                      "maxItems": MAX_TAGS}
        if f.admin_only or f.admin_write:
            schema = {**schema, "description": "Only admins may set it.", ADMIN_ONLY: True}
        props[f.name] = schema
        if op == "create" and f.default is REQUIRED:
            required.append(f.name)
    inner: dict = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        inner["required"] = required
    one = {"type": "object", "required": [resource.name],
           "properties": {resource.name: inner}, "additionalProperties": False}
    if op == "update":
        return one
    bulk = {"type": "object", "required": [resource.collection],
            "properties": {resource.collection: {"type": "array", "minItems": 1,
                                                 "items": inner}},
            "additionalProperties": False}
    return {"oneOf": [one, bulk]}


def _list_parameters(resource: Resource) -> list[dict]:
    filters = []
    for f in resource.fields:
        if not f.filter:
            continue
        note = "Filter: any of the values (repeat the parameter)."
        if f.admin_only:
            note += " Admins only."
        filters.append(_query(f.name, {"type": "array", "items": _filter_schema(f.kind)},
                              note))
    for name in resource.extra_filters:
        filters.append(_query(name, {"type": "array", "items": {
            "type": "string", "pattern": "^(ip_address|subnet_id|ip_address_substr)=.*"}},
            "Filter on a member: ip_address=, subnet_id= or ip_address_substr=."))
    tags = {"type": "array", "items": {"type": "string", "minLength": 1}}
    filters += [
        _query("tags", tags, "Has all these tags (comma-separated)."),
        _query("tags-any", tags, "Has any of these tags (comma-separated)."),
        _query("not-tags", tags, "Has not all of these tags (comma-separated)."),
        _query("not-tags-any", tags, "Has none of these tags (comma-separated)."),
    ]
    sortable = [f.name for f in resource.fields if f.sort]
    return [
        *filters,
        _query("fields", {"type": "array", "items": {"enum": [
            f.name for f in resource.fields if f.visible]}}, "Return only these attributes."),
        _query("sort_key", {"type": "array", "items": {"enum": sortable}},
               "Sort by these attributes; give as many sort_dir as sort_key."),
        _query("sort_dir", {"type": "array", "items": {"enum": ["asc", "desc"]}}),
        _query("limit", {"type": "integer", "minimum": 0}, "Page size (0: no limit)."),
        _query("marker", {"type": "string", "format": "uuid"},
               "The id of the last item of the previous page."),
        _query("page_reverse", {"type": "boolean"}, "Page backwards from the marker."),
    ]


#: what a resource, once made, feeds into another's create (its OpenAPI links): the
#: target's operationId and the body the link merges into the generated one
FEEDS: dict[str, tuple[tuple[str, dict], ...]] = {
    "network": (
        ("create_subnet", {"subnet": {"network_id": "$response.body#/network/id"}}),
        ("create_port", {"port": {"network_id": "$response.body#/network/id"}}),
        ("create_rbac_policy", {"rbac_policy": {"object_type": "network",
                                                "object_id": "$response.body#/network/id"}}),
    ),
    "subnet": (
        ("create_port", {"port": {"network_id": "$response.body#/subnet/network_id",
                                  "fixed_ips": [{"subnet_id": "$response.body#/subnet/id"}]}}),
    ),
    "firewall_rule": (
        ("create_firewall_policy", {"firewall_policy": {
            "firewall_rules": ["$response.body#/firewall_rule/id"]}}),
    ),
    "firewall_policy": (
        ("create_firewall_group", {"firewall_group": {
            "ingress_firewall_policy_id": "$response.body#/firewall_policy/id"}}),
    ),
    "security_group": (
        ("create_security_group_rule", {"security_group_rule": {
            "security_group_id": "$response.body#/security_group/id"}}),
        ("create_rbac_policy", {"rbac_policy": {
            "object_type": "security_group",
            "object_id": "$response.body#/security_group/id"}}),
    ),
}


def _camel(operation_id: str) -> str:
    return "".join(part.capitalize() for part in operation_id.split("_"))


def _links(resource: Resource) -> dict:
    """Links from a create of ``resource``: to its own operations by id and to what it
    feeds.  Schemathesis follows them in its stateful runs: what a create made is
    shown, updated, tagged and deleted (in any order), and a network carries a subnet,
    the subnet a port.  Only creates link: a link from a show or an update would make
    schemathesis start sequences there, with ids that name nothing."""
    name = resource.name
    ident = {"id": f"$response.body#/{name}/id"}
    own = [f"show_{name}", f"update_{name}", f"delete_{name}"]
    if "tags" in resource.by_name:
        own += [f"replace_{name}_tags", f"list_{name}_tags"]
    own += [f"{action}_{name}" for action in ACTIONS.get(resource.url_path, {})]
    links = {_camel(op): {"operationId": op, "parameters": ident} for op in own}
    for op, body in FEEDS.get(name, ()):
        links[_camel(f"{op}_from_{name}")] = {"operationId": op, "requestBody": body}
    return {"links": links}


def _resource_paths(resource: Resource) -> dict:
    name, coll = resource.name, resource.collection
    ref = {"$ref": f"#/components/schemas/{name}"}
    one = {"type": "object", "required": [name], "properties": {name: ref}}
    many = {"type": "object", "required": [coll], "properties": {
        coll: {"type": "array", "items": ref}, f"{coll}_links": LINKS}}
    tags = {"type": "object", "required": ["tags"],
            "properties": {"tags": {"type": "array", "items": TAG}}}
    fields = _query("fields", {"type": "array", "items": {"enum": [
        f.name for f in resource.fields if f.visible]}}, "Return only these attributes.")
    base = f"/v2.0/{resource.url_path}"
    paths = {
        base: {
            "get": {"operationId": f"list_{coll}", "summary": f"List {coll}",
                    "parameters": _list_parameters(resource),
                    "responses": {**_ok(200, "the page", many), **_errors(400, 401, 404)}},
            "post": {"operationId": f"create_{name}",
                     "summary": f"Create a {name} (or several: a bulk body)",
                     "requestBody": {"required": True,
                                     **_json(_body_schema(resource, "create"))},
                     "responses": {**_linked(_ok(201, "created", {"oneOf": [one, many]}),
                                             _links(resource)),
                                   **_errors(400, 401, 403, 404, 409, 413)}},
        },
        base + "/{id}": {
            "parameters": [_path("id")],
            "get": {"operationId": f"show_{name}", "parameters": [fields],
                    "responses": {**_ok(200, "the resource", one),
                                  **_errors(400, 401, 404)}},
            "put": {"operationId": f"update_{name}", "parameters": [IF_MATCH],
                    "requestBody": {"required": True,
                                    **_json(_body_schema(resource, "update"))},
                    "responses": {**_ok(200, "updated", one),
                                  **_errors(400, 401, 403, 404, 409, 412, 413)}},
            "delete": {"operationId": f"delete_{name}", "parameters": [IF_MATCH],
                       "responses": {**_ok(204, "deleted"),
                                     **_errors(400, 401, 403, 404, 409, 412)}},
        },
    }
    if "tags" not in resource.by_name:
        return paths  # e.g. agents: no standard attributes, no tags
    return {
        **paths,
        base + "/{id}/tags": {
            "parameters": [_path("id")],
            "get": {"operationId": f"list_{name}_tags",
                    "responses": {**_ok(200, "the tags", tags), **_errors(401, 404)}},
            "put": {"operationId": f"replace_{name}_tags",
                    "requestBody": {"required": True, **_json({
                        "type": "object", "required": ["tags"], "additionalProperties": False,
                        "properties": {"tags": {"type": "array", "items": TAG,
                                                "uniqueItems": True,
                                                "maxItems": MAX_TAGS}}})},
                    "responses": {**_ok(200, "the new tags", tags),
                                  **_errors(400, 401, 403, 404, 413)}},
            "delete": {"operationId": f"delete_{name}_tags",
                       "responses": {**_ok(204, "all tags removed"),
                                     **_errors(401, 403, 404)}},
        },
        base + "/{id}/tags/{tag}": {
            "parameters": [_path("id"), _path("tag", TAG)],
            "get": {"operationId": f"check_{name}_tag",
                    "responses": {**_ok(204, "the resource has the tag"),
                                  **_errors(400, 401, 404)}},
            "put": {"operationId": f"add_{name}_tag",
                    "responses": {**_ok(201, "added (or already there)"),
                                  **_errors(400, 401, 403, 404)}},
            "delete": {"operationId": f"remove_{name}_tag",
                       "responses": {**_ok(204, "removed"), **_errors(400, 401, 403, 404)}},
        },
    }


def _action_paths(resource: Resource) -> dict:
    """``PUT /{collection}/{id}/{action}``: the body is the action's own (no envelope);
    what it answers is the resource itself, as upstream's verbs answer."""
    ref = {"$ref": f"#/components/schemas/{resource.name}"}
    return {
        f"/v2.0/{resource.url_path}/{{id}}/{action}": {
            "parameters": [_path("id")],
            "put": {"operationId": f"{action}_{resource.name}",
                    "requestBody": {"required": True, **_json(body.json_schema())},
                    "responses": {**_ok(200, "the resource after the action", ref),
                                  **_errors(400, 401, 403, 404, 409, 413)}},
        }
        for action, body in ACTIONS.get(resource.url_path, {}).items()
    }


def _quota_paths() -> dict:
    names = sorted(r.name for r in RESOURCES.values() if "project_id" in r.by_name)
    limit = {"type": "integer", "minimum": -1, "maximum": 2**31 - 1,
             "description": "-1: unlimited"}
    limits = {"type": "object", "properties": {n: limit for n in names}}
    quota = {"type": "object", "required": ["quota"], "properties": {"quota": limits}}
    usage = {"type": "object", "required": ["limit", "used", "reserved"], "properties": {
        k: {"type": "integer"} for k in ("limit", "used", "reserved")}}
    details = {"type": "object", "required": ["quota"], "properties": {"quota": {
        "type": "object", "properties": {n: usage for n in names}}}}
    listed = {"type": "object", "required": ["quotas"], "properties": {"quotas": {
        "type": "array", "items": {"type": "object", "properties": {
            **{n: limit for n in names}, "project_id": {"type": "string"},
            "tenant_id": {"type": "string"}}}}}}
    body = {"type": "object", "required": ["quota"], "additionalProperties": False,
            "properties": {"quota": {"type": "object", "additionalProperties": False,
                                     "properties": {n: limit for n in names}}}}
    # a project id longer than any stored one is a 400
    project = _path("project_id", json_kind(PROJECT_ID))
    return {
        "/v2.0/quotas": {"get": {
            "operationId": "list_quotas", "summary": "Projects with non-default quotas",
            "responses": {**_ok(200, "the quotas", listed), **_errors(401, 403)}}},
        "/v2.0/quotas/{project_id}": {
            "parameters": [project],
            "get": {"operationId": "show_quota",
                    "responses": {**_ok(200, "the limits", quota),
                                  **_errors(400, 401, 403)}},
            "put": {"operationId": "update_quota",
                    "requestBody": {"required": True, **_json(body)},
                    "responses": {**_ok(200, "the new limits", quota),
                                  **_errors(400, 401, 403, 413)}},
            "delete": {"operationId": "reset_quota",
                       "responses": {**_ok(204, "back to the defaults"),
                                     **_errors(400, 401, 403, 404)}},
        },
        "/v2.0/quotas/{project_id}/default": {
            "parameters": [project],
            "get": {"operationId": "show_quota_default",
                    "responses": {**_ok(200, "the default limits", quota),
                                  **_errors(400, 401, 403)}}},
        "/v2.0/quotas/{project_id}/details": {
            "parameters": [project],
            "get": {"operationId": "show_quota_details",
                    "responses": {**_ok(200, "limits and usage", details),
                                  **_errors(400, 401, 403)}}},
    }


def _discovery_paths() -> dict:
    link = {"type": "object", "properties": {"rel": {"type": "string"},
                                             "href": {"type": "string"}}}
    extension = {"type": "object", "required": ["alias", "name"], "properties": {
        "alias": {"type": "string"}, "name": {"type": "string"},
        "description": {"type": "string"}, "updated": {"type": "string"},
        "links": {"type": "array", "items": link}}}
    return {
        "/": {"get": {"operationId": "list_versions", "responses": _ok(200, "API versions", {
            "type": "object", "required": ["versions"], "properties": {"versions": {
                "type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "status": {"type": "string"},
                    "links": {"type": "array", "items": link}}}}}})}},
        "/v2.0/": {"get": {"operationId": "list_resources", "responses": _ok(
            200, "the resources of v2.0", {"type": "object", "required": ["resources"]})}},
        "/v2.0/extensions": {"get": {
            "operationId": "list_extensions",
            "responses": {**_ok(200, "the extensions", {
                "type": "object", "required": ["extensions"],
                "properties": {"extensions": {"type": "array", "items": extension}}}),
                **_errors(401)}}},
        "/v2.0/extensions/{alias}": {
            "parameters": [_path("alias")],
            "get": {"operationId": "show_extension", "responses": {
                **_ok(200, "the extension", {
                    "type": "object", "required": ["extension"],
                    "properties": {"extension": extension}}),
                **_errors(401, 404)}}},
    }


@cache
def openapi_document() -> dict:
    paths: dict = {**_discovery_paths()}
    for resource in RESOURCES.values():
        paths.update(_resource_paths(resource))
        paths.update(_action_paths(resource))
    paths.update(_quota_paths())
    schemas: dict = {r.name: _item_schema(r) for r in RESOURCES.values()}
    schemas["NeutronError"] = ERROR
    return {
        "openapi": "3.1.0",
        "info": {"title": "Neutrino Networking API", "version": "2.0",
                 "description": "The OpenStack Networking API v2.0 as Neutrino serves it."},
        "paths": paths,
        "components": {"schemas": schemas},
    }
