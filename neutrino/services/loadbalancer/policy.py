"""Who may do what with load balancers: Octavia's ``keystone_default_roles``.

- ``reader`` (or ``member``) reads its own project's objects, ``member`` changes them,
  ``admin`` reads and changes every project's and the admin objects (quotas of
  others, flavor and zone profiles, failover);
- a token with none of these roles may do nothing (403);
- another project's object is refused with 403, as upstream answers (lists never
  show it).
"""

from __future__ import annotations

from neutrino import errors
from neutrino.context import Context

READ_ROLES = frozenset({"reader", "member", "admin", "load-balancer_observer",
                        "load-balancer_member", "load-balancer_global_observer",
                        "load-balancer_admin"})
WRITE_ROLES = frozenset({"member", "admin", "load-balancer_member", "load-balancer_admin"})


def denied(action: str) -> errors.Forbidden:
    return errors.Forbidden(f"Policy does not allow this request to be performed: "
                            f"{action}", type="PolicyForbidden")


def check_read(ctx: Context, action: str) -> None:
    if not ctx.is_admin and not (ctx.roles & READ_ROLES):
        raise denied(action)


def check_write(ctx: Context, action: str) -> None:
    if not ctx.is_admin and not (ctx.roles & WRITE_ROLES):
        raise denied(action)


def check_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise denied(action)


def check_project(ctx: Context, project_id: str, action: str) -> None:
    """An object of ``project_id`` (its own, or one a request names) is the caller's."""
    if not ctx.is_admin and project_id != ctx.project_id:
        raise denied(action)
