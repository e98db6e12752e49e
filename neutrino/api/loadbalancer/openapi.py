"""The OpenAPI 3.1 document of the load-balancer API (``/load-balancer/openapi.json``),
made from the same declarations the request checks use."""

from __future__ import annotations

from functools import cache
from typing import Any

from neutrino.schema import loadbalancer as s

PREFIX = "/load-balancer/v2/lbaas"
FAULT = {"type": "object", "required": ["faultcode", "faultstring", "debuginfo"],
         "properties": {"faultcode": {"enum": ["Client", "Server"]},
                        "faultstring": {"type": "string"},
                        "debuginfo": {"type": ["string", "null"]}}}
ANY_OBJECT = {"type": "object"}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*codes: int) -> dict:
    out: dict[str, Any] = {str(c): {"description": "refused", "content": {
        "application/json": {"schema": FAULT}}} for c in codes}
    # keystonemiddleware's shape, as the Networking API answers a bad token
    out["401"] = {"description": "no valid token", "content": {
        "application/json": {"schema": ANY_OBJECT}}}
    return out


def _ok(code: int, wrapper: str | None) -> dict:
    if code in (202, 204) and wrapper is None:
        return {str(code): {"description": "accepted"}}
    schema = {"type": "object", "required": [wrapper], "properties": {
        wrapper: ANY_OBJECT}} if wrapper else ANY_OBJECT
    return {str(code): {"description": "done", "content": {
        "application/json": {"schema": schema}}}}


def _op(summary: str, code: int, wrapper: str | None, params: list[dict],
        body: dict | None = None, query: list[dict] | None = None) -> dict:
    op: dict[str, Any] = {"summary": summary,
                          "parameters": [*params, *(query or [])],
                          "responses": {**_ok(code, wrapper),
                                        **_errors(400, 403, 404, 405, 409, 413)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": body}}}
    return op


LIST_QUERY = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
              for n in ("limit", "marker", "page_reverse", "sort", "fields", "name",
                        "tags")]


@cache
def document() -> dict:
    paths: dict[str, dict] = {}
    kinds = {"loadbalancer": ("/loadbalancers", []), "listener": ("/listeners", []),
             "pool": ("/pools", []),
             "member": ("/pools/{pool_id}/members", [_param("pool_id")]),
             "healthmonitor": ("/healthmonitors", []),
             "l7policy": ("/l7policies", []),
             "l7rule": ("/l7policies/{l7policy_id}/rules", [_param("l7policy_id")])}
    for name, (path, parents) in kinds.items():
        kind = s.KINDS[name]
        paths[PREFIX + path] = {
            "get": _op(f"List {kind.collection}", 200, kind.collection, parents,
                       query=LIST_QUERY),
            "post": _op(f"Create a {kind.title}", 201, kind.name, parents,
                        kind.request_schema("POST")),
        }
        item = {
            "get": _op(f"Show a {kind.title}", 200, kind.name, [*parents, ID]),
            "put": _op(f"Update a {kind.title}", 200, kind.name, [*parents, ID],
                       kind.request_schema("PUT")),
            "delete": _op(f"Delete a {kind.title}", 204, None, [*parents, ID],
                          query=[{"name": "cascade", "in": "query", "required": False,
                                  "schema": {"type": "boolean"}}]
                          if name == "loadbalancer" else None),
        }
        paths[PREFIX + path + "/{id}"] = item
    members = {"type": "object", "required": ["members"], "properties": {
        "members": {"type": "array",
                    "items": s.MEMBER.request_schema("POST")["properties"]["member"]}}}
    paths[PREFIX + "/pools/{pool_id}/members"]["put"] = _op(
        "Replace a pool's members", 202, None, [_param("pool_id")], members,
        [{"name": "additive_only", "in": "query", "required": False,
          "schema": {"type": "boolean"}}])
    lb = PREFIX + "/loadbalancers/{id}"
    paths[lb + "/status"] = {"get": _op("Status tree", 200, "statuses", [ID])}
    paths[lb + "/stats"] = {"get": _op("Statistics", 200, "stats", [ID])}
    paths[lb + "/failover"] = {"put": _op("Fail over", 202, None, [ID])}
    paths[PREFIX + "/listeners/{id}/stats"] = {"get": _op("Statistics", 200, "stats", [ID])}
    project = _param("project")
    paths[PREFIX + "/quotas"] = {"get": _op("List quotas", 200, "quotas", [])}
    paths[PREFIX + "/quotas/defaults"] = {"get": _op("Default quotas", 200, "quota", [])}
    paths[PREFIX + "/quotas/{project}"] = {
        "get": _op("Show quotas", 200, "quota", [project]),
        "put": _op("Set quotas", 202, "quota", [project], s.QUOTA.request_schema("PUT")),
        "delete": _op("Reset quotas", 204, None, [project])}
    paths[PREFIX + "/providers"] = {"get": _op("List providers", 200, "providers", [])}
    for what, kind in (("flavorprofiles", s.FLAVOR_PROFILE), ("flavors", s.FLAVOR),
                       ("availabilityzoneprofiles", s.AZ_PROFILE),
                       ("availabilityzones", s.AVAILABILITY_ZONE)):
        paths[f"{PREFIX}/{what}"] = {
            "get": _op(f"List {kind.collection}", 200, kind.collection, []),
            "post": _op(f"Create a {kind.title}", 201, kind.name, [],
                        kind.request_schema("POST"))}
        paths[f"{PREFIX}/{what}/{{id}}"] = {
            "get": _op(f"Show a {kind.title}", 200, kind.name, [ID]),
            "put": _op(f"Update a {kind.title}", 200, kind.name, [ID],
                       kind.request_schema("PUT")),
            "delete": _op(f"Delete a {kind.title}", 204, None, [ID])}
    return {"openapi": "3.1.0",
            "info": {"title": "Neutrino load balancing (Octavia v2)", "version": "2.30"},
            "paths": paths}
