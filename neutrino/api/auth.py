"""Turning a request's credentials into a :class:`Context`."""

from __future__ import annotations

from typing import Protocol

from starlette.datastructures import Headers

from neutrino.context import Context

NOAUTH_PROJECT = "fake_project_id"


class Authenticator(Protocol):
    def authenticate(self, headers: Headers) -> Context: ...


class NoAuth:
    """Upstream's ``noauth``: trust identity headers; without a project, act as admin.

    ``X-Project-Id`` (or ``X-Tenant-Id``), ``X-User-Id`` and ``X-Roles`` are taken
    as given.  A request naming no project acts as an admin of project
    ``fake_project_id``, as upstream Neutron does in this mode.
    """

    def authenticate(self, headers: Headers) -> Context:
        project = headers.get("x-project-id") or headers.get("x-tenant-id")
        request_id = headers.get("x-openstack-request-id", "")
        if not project:
            return Context(project_id=NOAUTH_PROJECT, user_id=headers.get("x-user-id"),
                           roles=frozenset({"admin"}), is_admin=True, request_id=request_id)
        roles = frozenset(r.strip().lower() for r in headers.get("x-roles", "").split(",")
                          if r.strip())
        return Context(project_id=project, user_id=headers.get("x-user-id"), roles=roles,
                       is_admin="admin" in roles, request_id=request_id)
