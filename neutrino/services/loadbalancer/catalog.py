"""The admin objects around load balancers: quotas, providers, flavor profiles and
flavors, availability zone profiles and zones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_key
from neutrino.drivers.service.loadbalancer_noop import FLAVOR_KEYS, ZONE_KEYS, ApiOnly
from neutrino.schema.loadbalancer import QUOTA_KINDS
from neutrino.services.core.collection import new_id
from neutrino.services.loadbalancer import policy
from neutrino.services.loadbalancer.service import LoadBalancers

#: the quota names upstream shows besides its own (older spellings)
ALIASES = {"load_balancer": "loadbalancer", "health_monitor": "healthmonitor"}

# table, its key column, the API's word for it
OBJECTS: dict[str, tuple[sa.Table, str]] = {
    "flavorprofile": (t.lb_flavor_profiles, "id"),
    "flavor": (t.lb_flavors, "id"),
    "availability_zone_profile": (t.lb_az_profiles, "id"),
    "availability_zone": (t.lb_availability_zones, "name"),
}
TITLES = {"flavorprofile": "Flavor profile", "flavor": "Flavor",
          "availability_zone_profile": "Availability zone profile",
          "availability_zone": "Availability zone"}
#: what non-admins may read (the profiles are for admins alone)
PUBLIC = ("flavor", "availability_zone")


class Catalog:
    def __init__(self, service: LoadBalancers) -> None:
        self.service = service

    # -- quotas ------------------------------------------------------------------------

    def _quota(self, limits: Mapping[str, int]) -> dict:
        out = dict(limits)
        out.update({alias: limits[name] for alias, name in ALIASES.items()})
        return out

    def quota_defaults(self, ctx: Context) -> dict:
        policy.check_read(ctx, "os_load-balancer_api:quota:get_defaults")
        defaults = self.service.settings.lb_quotas
        return self._quota({k: defaults.get(k, -1) for k in QUOTA_KINDS})

    def quota_show(self, conn: Connection, ctx: Context, project: str) -> dict:
        policy.check_read(ctx, "os_load-balancer_api:quota:get_one")
        policy.check_project(ctx, project, "os_load-balancer_api:quota:get_one")
        return self._quota(self.service.quota_limits(conn, project))

    def quota_list(self, conn: Connection, ctx: Context) -> list[dict]:
        policy.check_read(ctx, "os_load-balancer_api:quota:get_all")
        stmt = sa.select(t.lb_quotas.c.project_id).order_by(t.lb_quotas.c.project_id)
        if not ctx.is_admin:
            stmt = stmt.where(t.lb_quotas.c.project_id == ctx.project_id)
        return [{"project_id": p, "tenant_id": p,
                 **self._quota(self.service.quota_limits(conn, p))}
                for p in conn.scalars(stmt)]

    def quota_update(self, conn: Connection, ctx: Context, project: str, body: dict) -> dict:
        policy.check_admin(ctx, "os_load-balancer_api:quota:put")
        values: dict[str, Any] = {}
        for key, value in body.items():
            values[ALIASES.get(key, key)] = value
        lock_key(conn, t.project_locks, project)
        if conn.execute(sa.select(t.lb_quotas.c.project_id).where(
                t.lb_quotas.c.project_id == project)).first() is None:
            conn.execute(t.lb_quotas.insert().values(project_id=project, **values))
        elif values:
            conn.execute(t.lb_quotas.update().where(
                t.lb_quotas.c.project_id == project).values(**values))
        return self._quota(self.service.quota_limits(conn, project))

    def quota_reset(self, conn: Connection, ctx: Context, project: str) -> None:
        policy.check_admin(ctx, "os_load-balancer_api:quota:delete")
        if conn.execute(t.lb_quotas.delete().where(
                t.lb_quotas.c.project_id == project)).rowcount == 0:
            raise errors.NotFound(f"Quota for project {project} not found.",
                                  type="NotFound")

    # -- providers ---------------------------------------------------------------------

    def providers(self, ctx: Context) -> list[dict]:
        policy.check_read(ctx, "os_load-balancer_api:provider:get_all")
        return [{"name": n, "description": d}
                for n, d in self.service.settings.lb_providers.items()]

    def capabilities(self, ctx: Context, provider: str, what: str) -> list[dict]:
        policy.check_admin(ctx, f"os_load-balancer_api:provider-{what}:get_all")
        if provider not in self.service.settings.lb_providers:
            raise errors.BadRequest(f"Provider '{provider}' is not enabled.",
                                    type="ProviderNotEnabled")
        keys = FLAVOR_KEYS if what == "flavor" else ZONE_KEYS
        return [{"name": k, "description": v} for k, v in keys.items()]

    # -- flavors, zones and their profiles -------------------------------------------

    def _render(self, ctx: Context, what: str, row: sa.Row) -> dict:
        return {str(k): v for k, v in row._mapping.items()}  # plain str keys (orjson)

    def _row(self, conn: Connection, what: str, ident: str) -> sa.Row:
        table, key = OBJECTS[what]
        row = conn.execute(sa.select(table).where(table.c[key] == ident)).first()
        if row is None:
            raise errors.NotFound(f"{TITLES[what]} {ident} not found.", type="NotFound")
        return row

    def list(self, conn: Connection, ctx: Context, what: str) -> list[dict]:
        self._may_read(ctx, what)
        table, key = OBJECTS[what]
        return [self._render(ctx, what, r)
                for r in conn.execute(sa.select(table).order_by(table.c[key]))]

    def show(self, conn: Connection, ctx: Context, what: str, ident: str) -> dict:
        self._may_read(ctx, what)
        return self._render(ctx, what, self._row(conn, what, ident))

    def _may_read(self, ctx: Context, what: str) -> None:
        if what in PUBLIC:
            policy.check_read(ctx, f"os_load-balancer_api:{what}:get_all")
        else:
            policy.check_admin(ctx, f"os_load-balancer_api:{what}:get_all")

    def _check_data(self, what: str, values: dict) -> None:
        field = {"flavorprofile": "flavor_data",
                 "availability_zone_profile": "availability_zone_data"}.get(what)
        if field is None or field not in values:
            return
        provider = values.get("provider_name")
        if provider is not None and provider not in self.service.settings.lb_providers:
            raise errors.BadRequest(f"Provider '{provider}' is not enabled.",
                                    type="ProviderNotEnabled")
        try:
            data = json.loads(values[field])
        except ValueError:
            raise errors.BadRequest(f"Invalid input for field/attribute {field}. "
                                    f"Value: '{values[field]}'. It is not JSON.") from None
        if not isinstance(data, dict):
            raise errors.BadRequest(f"Invalid input for field/attribute {field}. "
                                    f"Value: '{values[field]}'. It is not a JSON object.")
        check = ApiOnly.validate_flavor if what == "flavorprofile" else \
            ApiOnly.validate_availability_zone
        try:
            check(None, data)  # type: ignore[arg-type]
        except ValueError as exc:
            raise errors.BadRequest(f"Provider '{provider}' does not support a requested "
                                    f"option: {exc}", type="ProviderUnsupportedOption") \
                from None

    def _check_refs(self, conn: Connection, values: dict) -> None:
        for field, what in (("flavor_profile_id", "flavorprofile"),
                            ("availability_zone_profile_id", "availability_zone_profile")):
            if field in values:
                try:
                    self._row(conn, what, values[field])
                except errors.NotFound as exc:
                    raise errors.BadRequest(exc.message) from None

    def create(self, conn: Connection, ctx: Context, what: str, body: dict) -> dict:
        policy.check_admin(ctx, f"os_load-balancer_api:{what}:post")
        table, key = OBJECTS[what]
        self._check_data(what, body)
        self._check_refs(conn, body)
        values = dict(body)
        if key == "id":
            values["id"] = new_id()
        if what in ("flavor", "availability_zone") and conn.execute(
                sa.select(table.c[key]).where(table.c.name == values["name"])).first():
            raise errors.Conflict(f"A {TITLES[what].lower()} of name {values['name']} "
                                  f"already exists.", type="RecordAlreadyExists")
        conn.execute(table.insert().values(**values))
        return self._render(ctx, what, self._row(conn, what, values[key]))

    def update(self, conn: Connection, ctx: Context, what: str, ident: str, body: dict
               ) -> dict:
        policy.check_admin(ctx, f"os_load-balancer_api:{what}:put")
        table, key = OBJECTS[what]
        row = self._row(conn, what, ident)
        merged = {**row._mapping, **body}
        self._check_data(what, {k: merged[k] for k in body} | (
            {"provider_name": merged["provider_name"]} if "provider_name" in merged else {}))
        if body:
            conn.execute(table.update().where(table.c[key] == ident).values(**body))
        return self._render(ctx, what, self._row(conn, what, ident))

    def delete(self, conn: Connection, ctx: Context, what: str, ident: str) -> None:
        policy.check_admin(ctx, f"os_load-balancer_api:{what}:delete")
        table, key = OBJECTS[what]
        self._row(conn, what, ident)
        users = {"flavorprofile": (t.lb_flavors.c.flavor_profile_id,),
                 "availability_zone_profile":
                     (t.lb_availability_zones.c.availability_zone_profile_id,),
                 "flavor": (t.lb_loadbalancers.c.flavor_id,),
                 "availability_zone": (t.lb_loadbalancers.c.availability_zone,)}[what]
        for column in users:
            if conn.execute(sa.select(column).where(column == ident).limit(1)).first():
                raise errors.Conflict(f"{TITLES[what]} {ident} is in use and cannot be "
                                      f"deleted.", type="ObjectInUse")
        conn.execute(table.delete().where(table.c[key] == ident))
