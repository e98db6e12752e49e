"""The OpenAPI 3.1 document of the identity API, made from its operation declarations.

Paths, methods, who may call what, request bodies and query parameters come
from :meth:`neutrino.identity.api.IdentityApi.operations` (the same schemas the
server checks requests against); this module adds what the answers look like.
Every error is Keystone's envelope.  Served at ``/identity/openapi.json`` and
fuzzed by ``tests/api/test_fuzz_identity.py``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neutrino.identity.api import Operation

STR = {"type": "string"}
BOOL = {"type": "boolean"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "title", "message"],
        "properties": {"code": {"type": "integer"}, "title": STR, "message": STR},
    }},
}
REASONS = {400: "the request is malformed or a value is invalid",
           401: "authentication is required, or the credentials are wrong",
           403: "the caller may not do this", 404: "no such resource",
           405: "the resource does not answer this method",
           409: "conflicts with an existing resource", 413: "the request body is too large",
           429: "too many failed authentications: retry after Retry-After seconds"}


def _obj(props: dict, *required: str) -> dict:
    return {"type": "object", "properties": props, "required": list(required)}


def _list(key: str, item: dict) -> dict:
    return _obj({key: {"type": "array", "items": item}, "links": {"type": "object"}}, key)


REF = _obj({"id": STR, "name": STR}, "id")
NAMED = _obj({"id": STR, "name": STR, "domain": REF}, "id", "name")
DOMAIN = _obj({"id": STR, "name": STR, "description": STR, "enabled": BOOL,
               "links": {"type": "object"}}, "id", "name", "enabled")
PROJECT = _obj({"id": STR, "name": STR, "domain_id": STR, "description": STR,
                "enabled": BOOL, "is_domain": BOOL, "parent_id": STR,
                "tags": {"type": "array", "items": STR}}, "id", "name", "domain_id", "enabled")
USER = _obj({"id": STR, "name": STR, "domain_id": STR, "enabled": BOOL, "description": STR,
             "default_project_id": {"type": ["string", "null"]},
             "email": {"type": ["string", "null"]},
             "password_expires_at": {"type": ["string", "null"]},
             "options": {"type": "object"}}, "id", "name", "domain_id", "enabled")
ROLE = _obj({"id": STR, "name": STR, "description": STR,
             "domain_id": {"type": ["string", "null"]}}, "id", "name")
ENDPOINT = _obj({"id": STR, "interface": {"enum": ["public", "internal", "admin"]},
                 "region": STR, "region_id": STR, "url": STR}, "id", "interface", "url")
SERVICE = _obj({"id": STR, "type": STR, "name": STR,
                "endpoints": {"type": "array", "items": ENDPOINT}}, "id", "type")
VERSION = _obj({"id": STR, "status": STR, "updated": STR,
                "links": {"type": "array", "items": _obj({"rel": STR, "href": STR})}},
               "id", "status", "links")
TOKEN = _obj({
    "methods": {"type": "array", "items": STR},
    "user": NAMED, "audit_ids": {"type": "array", "items": STR},
    "issued_at": STR, "expires_at": STR, "roles": {"type": "array", "items": REF},
    "project": NAMED, "domain": REF, "system": _obj({"all": BOOL}),
    "is_domain": BOOL, "catalog": {"type": "array", "items": SERVICE},
}, "methods", "user", "expires_at", "issued_at", "roles")
ASSIGNMENT = _obj({"role": REF, "user": REF, "scope": {"type": "object"}},
                  "role", "user", "scope")

#: response bodies, by the names operations give them in ``returns``
BODIES: dict[str, dict] = {
    "version": _obj({"version": VERSION}, "version"),
    "versions": _obj({"versions": _obj({"values": {"type": "array", "items": VERSION}},
                                       "values")}, "versions"),
    "token": _obj({"token": TOKEN}, "token"),
    "catalog": _list("catalog", SERVICE),
    "services": _list("services", _obj({"id": STR, "type": STR, "name": STR,
                                         "enabled": BOOL}, "id", "type")),
    "endpoints": _list("endpoints", {**ENDPOINT, "properties": {
        **ENDPOINT["properties"], "service_id": STR, "enabled": BOOL}}),
    "role_assignments": _list("role_assignments", ASSIGNMENT),
    "domain": _obj({"domain": DOMAIN}, "domain"), "domains": _list("domains", DOMAIN),
    "project": _obj({"project": PROJECT}, "project"), "projects": _list("projects", PROJECT),
    "user": _obj({"user": USER}, "user"), "users": _list("users", USER),
    "role": _obj({"role": ROLE}, "role"), "roles": _list("roles", ROLE),
}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(op: Operation) -> dict:
    params: list[dict] = []
    for name in re.findall(r"{(\w+)}", op.path):
        params.append({"name": name, "in": "path", "required": True,
                       "schema": op.path_params.get(name, STR)})
    for name, schema in (op.query or {}).items():
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
    for name in op.headers:
        params.append({"name": name, "in": "header", "required": True,
                       "schema": {"type": "string", "maxLength": 1024}})
    ok: dict[str, Any] = {"description": op.summary}
    if op.returns is not None and op.method != "HEAD":
        ok.update(_json({"$ref": f"#/components/schemas/{op.returns}"}))
    responses = {str(op.status): ok}
    for code in op.error_codes():
        responses[str(code)] = {"description": REASONS[code]}
        if op.method != "HEAD":  # a HEAD answer has no body
            responses[str(code)].update(_json({"$ref": "#/components/schemas/KeystoneError"}))
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "responses": responses,
                           "operationId": f"{op.method.lower()}{_op_name(op.path)}"}
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, **_json(op.body)}
    out["security"] = [] if op.auth == "none" else [{"token": []}]
    return out


def _op_name(path: str) -> str:
    words = re.findall(r"[a-z_]+", path.replace("{", "by_").replace("}", ""))
    return "".join(f"_{w}" for w in words) or "_version"


def openapi_document(operations: list[Operation]) -> dict:
    paths: dict[str, dict] = {"/identity": {"get": {
        "summary": "The identity API's versions", "tags": ["discovery"],
        "operationId": "get_identity_versions", "security": [],
        "responses": {"300": {"description": "the versions",
                              **_json({"$ref": "#/components/schemas/versions"})}}}}}
    for op in operations:
        paths.setdefault(f"/identity/v3{op.path}", {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Neutrino identity API (Keystone v3 subset)", "version": "3.14",
                 "description": "The embedded Keystone v3 as Neutrino serves it under "
                                "/identity (and the bare /v3). No string may hold a NUL "
                                "character; errors are Keystone's envelope."},
        "paths": paths,
        "components": {
            "schemas": {**BODIES, "KeystoneError": ERROR},
            "securitySchemes": {"token": {"type": "apiKey", "in": "header",
                                          "name": "X-Auth-Token"}},
        },
    }
