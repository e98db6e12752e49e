"""The OpenAPI 3 document of the API, derived from the resource declarations."""

from __future__ import annotations

from functools import cache

from neutrino.schema.core import REQUIRED, Resource, json_kind
from neutrino.schema.resources import RESOURCES

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


def _error_responses(*codes: int) -> dict:
    return {str(code): {"description": "error",
                        "content": {"application/json": {"schema": {"$ref":
                                                                     "#/components/schemas/Error"}}}}
            for code in codes}


def _body_schema(resource: Resource, op: str) -> dict:
    props = {}
    required = []
    for f in resource.fields:
        allowed = f.create if op == "create" else f.update
        if not allowed:
            continue
        props[f.name] = json_kind(f.kind)
        if op == "create" and f.default is REQUIRED:
            required.append(f.name)
    inner: dict = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        inner["required"] = required
    return {"type": "object", "required": [resource.name],
            "properties": {resource.name: inner}, "additionalProperties": False}


def _item_schema(resource: Resource) -> dict:
    return {"type": "object", "properties": {f.name: json_kind(f.kind) for f in resource.fields
                                             if f.visible}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _paths_for(resource: Resource) -> dict:
    ref = {"$ref": f"#/components/schemas/{resource.name}"}
    one = {"type": "object", "properties": {resource.name: ref}}
    many = {"type": "object", "properties": {resource.collection: {"type": "array",
                                                                   "items": ref}}}
    filters = [{"name": f.name, "in": "query", "required": False,
                "schema": {"type": "string"}} for f in resource.fields if f.filter]
    paging = [
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0}},
        {"name": "marker", "in": "query", "required": False,
         "schema": {"type": "string", "format": "uuid"}},
        {"name": "sort_key", "in": "query", "required": False,
         "schema": {"type": "string", "enum": [f.name for f in resource.fields if f.sort]}},
        {"name": "sort_dir", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["asc", "desc"]}},
        {"name": "fields", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    ident = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    base = f"/v2.0/{resource.collection}"
    return {
        base: {
            "get": {"operationId": f"list_{resource.collection}", "parameters": filters + paging,
                    "responses": {"200": {"description": "ok", **_json(many)},
                                  **_error_responses(400, 401)}},
            "post": {"operationId": f"create_{resource.name}",
                     "requestBody": {"required": True, **_json(_body_schema(resource, "create"))},
                     "responses": {"201": {"description": "created", **_json(one)},
                                   **_error_responses(400, 401, 403, 404, 409)}},
        },
        base + "/{id}": {
            "parameters": [ident],
            "get": {"operationId": f"show_{resource.name}",
                    "responses": {"200": {"description": "ok", **_json(one)},
                                  **_error_responses(404)}},
            "put": {"operationId": f"update_{resource.name}",
                    "requestBody": {"required": True, **_json(_body_schema(resource, "update"))},
                    "responses": {"200": {"description": "ok", **_json(one)},
                                  **_error_responses(400, 403, 404, 409, 412)}},
            "delete": {"operationId": f"delete_{resource.name}",
                       "responses": {"204": {"description": "deleted"},
                                     **_error_responses(403, 404, 409)}},
        },
    }


@cache
def openapi_document() -> dict:
    paths: dict = {}
    for resource in RESOURCES.values():
        paths.update(_paths_for(resource))
    schemas = {r.name: _item_schema(r) for r in RESOURCES.values()}
    schemas["Error"] = ERROR
    return {
        "openapi": "3.0.3",
        "info": {"title": "Neutrino Networking API", "version": "2.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
