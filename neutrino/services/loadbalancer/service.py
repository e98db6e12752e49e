"""The load-balancer objects: their operations, each inside its caller's transaction.

Every change locks its load balancer's row and refuses (409) unless the load
balancer is ``ACTIVE`` (a delete: or ``ERROR``); the changed objects go
``PENDING_*`` and the load balancer ``PENDING_UPDATE`` in the same transaction.  Once
it commits the provider is told (``after_commit``); it reports through
``status.StatusStore``, which moves the statuses on in a transaction of its own.
Nothing of it lives in memory: what a process that died left PENDING is completed by
``status.StatusStore.sweep``.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from neutrino import errors
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import after_commit, lock_key, lock_rows
from neutrino.drivers.service.loadbalancer import LoadBalancerDriver
from neutrino.schema import loadbalancer as s
from neutrino.schema.loadbalancer import rules
from neutrino.services.core.collection import Listing
from neutrino.services.l2.ports import Ports
from neutrino.services.loadbalancer import policy, store

log = logging.getLogger(__name__)
DEVICE_OWNER = "Octavia"
#: the address upstream's no-op network driver gives every IPv4 VIP
NOOP_VIP = "198.51.100.1"
MUTABLE = ("ACTIVE",)
DELETABLE = ("ACTIVE", "ERROR")
#: operating status of a new object while no data plane reports on it (upstream no-op)
FIRST_OPERATING = {"loadbalancer": "OFFLINE", "listener": "OFFLINE", "pool": "OFFLINE",
                   "member": "NO_MONITOR", "healthmonitor": "ONLINE", "l7policy": "ONLINE",
                   "l7rule": "ONLINE"}
#: the parent each child's path or body names: kind -> (attribute, parent kind)
PARENT = {"listener": ("loadbalancer_id", "loadbalancer"), "member": ("pool_id", "pool"),
          "healthmonitor": ("pool_id", "pool"), "l7policy": ("listener_id", "listener"),
          "l7rule": ("l7policy_id", "l7policy")}


def not_found(kind: str, ident: str) -> errors.NotFound:
    return errors.NotFound(f"{s.KINDS[kind].title} {ident} not found.",
                           type="NotFound")


def immutable(kind: str, ident: str) -> errors.Conflict:
    return errors.Conflict(f"{s.KINDS[kind].title} {ident} is immutable and cannot be "
                           f"updated.", type="ImmutableObject")


class LoadBalancers:
    def __init__(self, settings: Settings, networks: Listing, subnets: Listing,
                 ports: Ports) -> None:
        self.settings = settings
        self.networks = networks
        self.subnets = subnets
        self.ports = ports
        # a setting that would refuse every create stops the server at start
        if settings.lb_network not in ("neutron", "noop"):
            raise SystemExit(f"lb_network {settings.lb_network!r}: use neutron or noop")
        if settings.lb_default_provider not in settings.lb_providers:
            raise SystemExit(f"lb_default_provider {settings.lb_default_provider!r} is not "
                             f"among lb_providers ({', '.join(settings.lb_providers)})")
        self.noop_network = settings.lb_network == "noop"
        #: provider name -> driver; made by ``status.StatusStore`` (it reports to them)
        self.providers: dict[str, LoadBalancerDriver] = {}

    # -- reads ---------------------------------------------------------------------

    def get_row(self, conn: Connection, ctx: Context, kind: str, ident: str,
                action: str = "get", *, lock: bool = False, parent: str | None = None
                ) -> Row:
        row = store.find(conn, kind, ident, lock=lock) if _is_uuid(ident) else None
        if row is None or row.provisioning_status == "DELETED":
            raise not_found(kind, ident)
        if parent is not None and getattr(row, PARENT[kind][0]) != parent:
            raise not_found(kind, ident)
        policy.check_project(ctx, row.project_id, f"os_load-balancer_api:{kind}:{action}")
        return row

    def show(self, conn: Connection, ctx: Context, kind: str, ident: str,
             parent: str | None = None) -> dict:
        policy.check_read(ctx, f"os_load-balancer_api:{kind}:get_one")
        if parent is not None:
            self._parent_row(conn, ctx, kind, parent)
        return store.render(conn, kind, [self.get_row(conn, ctx, kind, ident,
                                                      parent=parent)])[0]

    def list(self, conn: Connection, ctx: Context, kind: str,
             parent: str | None = None) -> list[dict]:
        """Every object the caller may see (the API filters, sorts and pages them)."""
        policy.check_read(ctx, f"os_load-balancer_api:{kind}:get_all")
        table = store.TABLES[kind]
        where = []
        if parent is not None:
            self._parent_row(conn, ctx, kind, parent)
            where.append(table.c[PARENT[kind][0]] == parent)
        if not ctx.is_admin:
            where.append(table.c.project_id == ctx.project_id)
        return store.render(conn, kind, store.rows(conn, kind, sa.and_(sa.true(), *where)))

    def _parent_row(self, conn: Connection, ctx: Context, kind: str, parent: str) -> Row:
        return self.get_row(conn, ctx, PARENT[kind][1], parent)

    # -- the load balancer's lock --------------------------------------------------

    def _lock_lb(self, conn: Connection, lb_id: str, *, deleting: bool = False) -> Row:
        lock_rows(conn, t.lb_loadbalancers, [lb_id])
        lb = store.find(conn, "loadbalancer", lb_id)
        assert lb is not None  # children go with it
        if lb.provisioning_status not in (DELETABLE if deleting else MUTABLE):
            raise immutable("loadbalancer", lb_id)
        return lb

    def _pending(self, conn: Connection, lb_id: str) -> None:
        store.set_status(conn, "loadbalancer", [lb_id], provisioning_status="PENDING_UPDATE")

    def _tell(self, conn: Connection, lb: Row, method: str, *args: Any) -> None:
        """Call ``method`` of the load balancer's provider with ``args`` (made now, in
        the transaction) once the transaction committed."""
        driver = self.providers.get(lb.provider)
        if driver is None:
            return

        def call() -> None:
            try:
                getattr(driver, method)(*args)
            except Exception:  # the change is committed: it stays pending (the sweep)
                log.exception("provider %s failed on %s", lb.provider, method)
        after_commit(conn, call)

    def admin_view(self, conn: Connection, kind: str, ident: str) -> dict:
        row = store.find(conn, kind, ident)
        return store.render(conn, kind, [row])[0] if row is not None else {"id": ident}

    # -- quotas ----------------------------------------------------------------------

    def _check_quota(self, conn: Connection, project_id: str, kind: str) -> None:
        lock_key(conn, t.project_locks, project_id)
        limit = self.quota_limits(conn, project_id)[kind]
        if limit < 0:
            return
        table = store.TABLES[kind]
        used = conn.scalar(sa.select(sa.func.count()).select_from(table).where(
            table.c.project_id == project_id)) or 0
        if used >= limit:
            raise errors.Forbidden(f"Quota has been met for resources: "
                                   f"{s.KINDS[kind].title}", type="QuotaException")

    def quota_limits(self, conn: Connection, project_id: str) -> dict[str, int]:
        row = conn.execute(sa.select(t.lb_quotas).where(
            t.lb_quotas.c.project_id == project_id)).first()
        defaults = self.settings.lb_quotas
        return {k: (getattr(row, k) if row is not None and getattr(row, k) is not None
                    else defaults.get(k, -1)) for k in s.QUOTA_KINDS}

    # -- load balancers ----------------------------------------------------------------

    def create_loadbalancer(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "os_load-balancer_api:loadbalancer:post")
        project = body.pop("project_id", None) or ctx.project_id
        policy.check_project(ctx, project, "os_load-balancer_api:loadbalancer:post")
        rules.check_vip(body)
        provider = body.get("provider") or self.settings.lb_default_provider
        if provider not in self.settings.lb_providers:
            raise errors.BadRequest(f"Provider '{provider}' is not enabled.",
                                    type="ProviderNotEnabled")
        body["provider"] = provider
        self._check_flavor_and_zone(conn, body)
        self._check_quota(conn, project, "loadbalancer")
        lb_id = store.insert(conn, "loadbalancer", project, {**body, "vip_port_id": None},
                             operating="OFFLINE")
        vip = self._vip(conn, ctx, lb_id, project, body)
        store.update(conn, "loadbalancer", store.find(conn, "loadbalancer", lb_id), vip)
        lb = store.find(conn, "loadbalancer", lb_id)
        self._tell(conn, lb, "loadbalancer_create", self._fresh(conn, "loadbalancer", lb_id))
        return lb_id

    def _check_flavor_and_zone(self, conn: Connection, body: dict) -> None:
        if body.get("flavor_id"):
            flavor = conn.execute(sa.select(t.lb_flavors).where(
                t.lb_flavors.c.id == body["flavor_id"])).first()
            if flavor is None:
                raise errors.BadRequest(f"Validation failure: Invalid flavor_id "
                                        f"{body['flavor_id']}.")
            if not flavor.enabled:
                raise errors.BadRequest(f"The selected flavor is not allowed in this "
                                        f"deployment: {body['flavor_id']}")
        if body.get("availability_zone"):
            zone = conn.execute(sa.select(t.lb_availability_zones).where(
                t.lb_availability_zones.c.name == body["availability_zone"])).first()
            if zone is None:
                raise errors.BadRequest(f"Validation failure: Invalid availability zone "
                                        f"{body['availability_zone']}.")
            if not zone.enabled:
                raise errors.BadRequest(f"The selected availability_zone is not allowed "
                                        f"in this deployment: {body['availability_zone']}")

    def _vip(self, conn: Connection, ctx: Context, lb_id: str, project: str,
             body: dict) -> dict:
        """The VIP's address and port: a real port on the subnet (or network) asked,
        made through the port service; or the port given."""
        address = body.get("vip_address")
        if self.noop_network:
            if address is None:
                address = NOOP_VIP
            return {"vip_address": address,
                    "vip_port_id": body.get("vip_port_id") or str(uuid.uuid4()),
                    "vip_network_id": body.get("vip_network_id") or str(uuid.uuid4()),
                    "vip_subnet_id": body.get("vip_subnet_id")}
        if body.get("vip_port_id"):
            port = self.ports.get_row(conn, ctx, body["vip_port_id"])
            addresses = _addresses(conn, port.id)
            if not addresses:
                raise rules.bad(f"Port {port.id} has no address to serve a VIP on.")
            chosen = address or addresses[0][1]
            if chosen not in {a for _, a in addresses}:
                raise rules.bad(f"{chosen} is not an address of port {port.id}.")
            subnet = next(sid for sid, a in addresses if a == chosen)
            return {"vip_address": chosen, "vip_port_id": port.id,
                    "vip_network_id": port.network_id, "vip_subnet_id": subnet,
                    "_vip_port_owned": False}
        subnet_id = body.get("vip_subnet_id")
        if subnet_id:
            subnet = self.subnets.find_row(conn, ctx, subnet_id)
            if subnet is None:
                raise rules.bad(f"Subnet {subnet_id} not found.")
            network_id = subnet.network_id
            if body.get("vip_network_id") and body["vip_network_id"] != network_id:
                raise rules.bad(f"Subnet {subnet_id} is not on network "
                                f"{body['vip_network_id']}.")
            if address is not None and ipaddress.ip_address(address) not in \
                    ipaddress.ip_network(subnet.cidr):
                raise rules.bad(f"VIP address {address} is not in subnet {subnet_id}.")
            fixed = [{"subnet_id": subnet_id, **({"ip_address": address} if address
                                                 else {})}]
        else:
            network = self.networks.find_row(conn, ctx, body["vip_network_id"])
            if network is None:
                raise rules.bad(f"Network {body['vip_network_id']} not found.")
            network_id = network.id
            subnets = conn.execute(sa.select(t.subnets.c.id, t.subnets.c.ip_version).where(
                t.subnets.c.network_id == network_id).order_by(t.subnets.c.ip_version,
                                                             t.subnets.c.id)).all()
            if not subnets:
                raise rules.bad(f"Network {network_id} has no subnet for a VIP.")
            fixed = [{"subnet_id": subnets[0].id, **({"ip_address": address} if address
                                                     else {})}]
        port_id = self.ports.create_owned(conn, network_id=network_id, project_id=project,
                                          device_owner=DEVICE_OWNER,
                                          device_id=f"lb-{lb_id}", fixed_ips=fixed)
        sid, chosen = _addresses(conn, port_id)[0]
        return {"vip_address": chosen, "vip_port_id": port_id, "vip_network_id": network_id,
                "vip_subnet_id": sid, "_vip_port_owned": True}

    def remove_vip_port(self, conn: Connection, lb: Row) -> None:
        owned = lb.attrs.get("_vip_port_owned") and lb.vip_port_id
        if owned and conn.execute(sa.select(t.ports.c.id).where(
                t.ports.c.id == lb.vip_port_id)).first() is not None:
            self.ports.remove(conn, lb.vip_port_id)

    def update_loadbalancer(self, conn: Connection, ctx: Context, ident: str,
                            changes: dict) -> None:
        policy.check_write(ctx, "os_load-balancer_api:loadbalancer:put")
        row = self.get_row(conn, ctx, "loadbalancer", ident, "put")
        self._lock_lb(conn, ident)
        original = self.admin_view(conn, "loadbalancer", ident)
        store.update(conn, "loadbalancer", row, changes, provisioning_status="PENDING_UPDATE")
        self._tell(conn, row, "loadbalancer_update", original,
                   self._fresh(conn, "loadbalancer", ident))

    def delete_loadbalancer(self, conn: Connection, ctx: Context, ident: str,
                            cascade: bool) -> None:
        policy.check_write(ctx, "os_load-balancer_api:loadbalancer:delete")
        row = self.get_row(conn, ctx, "loadbalancer", ident, "delete")
        self._lock_lb(conn, ident, deleting=True)
        children = any(conn.execute(sa.select(sa.func.count()).select_from(tbl).where(
            tbl.c.loadbalancer_id == ident)).scalar() for tbl in (t.lb_listeners, t.lb_pools))
        if children and not cascade:
            raise errors.BadRequest(f"Cannot delete Load Balancer {ident} - it has "
                                    f"children", type="ValidationException")
        store.set_status(conn, "loadbalancer", [ident], provisioning_status="PENDING_DELETE")
        for kind in ("listener", "pool", "member", "healthmonitor", "l7policy", "l7rule"):
            tbl = store.TABLES[kind]
            conn.execute(tbl.update().where(tbl.c.loadbalancer_id == ident).values(
                provisioning_status="PENDING_DELETE"))
        view = self.admin_view(conn, "loadbalancer", ident)
        self._tell(conn, row, "loadbalancer_delete", view, cascade)

    def failover(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_admin(ctx, "os_load-balancer_api:loadbalancer:put_failover")
        row = self.get_row(conn, ctx, "loadbalancer", ident, "put_failover")
        self._lock_lb(conn, ident)
        self._pending(conn, ident)
        self._tell(conn, row, "loadbalancer_failover", ident)

    def status_tree(self, conn: Connection, ctx: Context, ident: str) -> dict:
        policy.check_read(ctx, "os_load-balancer_api:loadbalancer:get_status")
        lb = self.get_row(conn, ctx, "loadbalancer", ident, "get_status")

        def short(row: Row, **more: Any) -> dict:
            out = {"id": row.id, "provisioning_status": row.provisioning_status,
                   "operating_status": row.operating_status, **more}
            if "name" in row._mapping and row._mapping["name"] is not None:
                out["name"] = row.name
            return out

        def pool_tree(pool: Row) -> dict:
            members = store.rows(conn, "member", t.lb_members.c.pool_id == pool.id)
            item = short(pool, members=[short(m, address=m.address,
                                              protocol_port=m.protocol_port)
                                        for m in members])
            hm = store.rows(conn, "healthmonitor", t.lb_healthmonitors.c.pool_id == pool.id)
            if hm:
                item["health_monitor"] = short(hm[0], type=hm[0].type)
            return item

        listeners = []
        for listener in store.rows(conn, "listener", t.lb_listeners.c.loadbalancer_id == ident):
            pool_ids = [listener.default_pool_id] if listener.default_pool_id else []
            for p in store.rows(conn, "l7policy", t.lb_l7policies.c.listener_id == listener.id):
                if p.redirect_pool_id and p.redirect_pool_id not in pool_ids:
                    pool_ids.append(p.redirect_pool_id)
            pools = [pool_tree(p) for pid in pool_ids
                     if (p := store.find(conn, "pool", pid)) is not None]
            l7 = [short(p, rules=[short(r, type=r.type) for r in store.rows(
                conn, "l7rule", t.lb_l7rules.c.l7policy_id == p.id)], action=p.action)
                for p in store.rows(conn, "l7policy", t.lb_l7policies.c.listener_id
                                    == listener.id)]
            listeners.append(short(listener, pools=pools, l7policies=l7))
        return {"statuses": {"loadbalancer": short(lb, listeners=listeners)}}

    def stats(self, conn: Connection, ctx: Context, kind: str, ident: str) -> dict:
        policy.check_read(ctx, f"os_load-balancer_api:{kind}:get_stats")
        self.get_row(conn, ctx, kind, ident, "get_stats")
        # no data plane yet: nothing has passed
        return {"stats": {"bytes_in": 0, "bytes_out": 0, "active_connections": 0,
                          "total_connections": 0, "request_errors": 0}}

    def _fresh(self, conn: Connection, kind: str, ident: str) -> Mapping[str, Any]:
        """The object as an admin sees it now, for its provider (with its ``kind``)."""
        return {**self.admin_view(conn, kind, ident), "kind": kind}

    # -- listeners -------------------------------------------------------------------

    def create_listener(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "os_load-balancer_api:listener:post")
        lb = self._parent_for_create(conn, ctx, "listener", body)
        self._lock_lb(conn, lb.id)
        rules.check_listener(body)
        rules.check_allowed_cidrs(body.get("allowed_cidrs"), lb.vip_address)
        self._check_port_free(conn, lb.id, body["protocol"], body["protocol_port"])
        if body.get("default_pool_id"):
            self._check_default_pool(conn, lb.id, body["protocol"], body["default_pool_id"])
        self._check_quota(conn, lb.project_id, "listener")
        values = {**body, "transport": rules.transport(body["protocol"])}
        ident = store.insert(conn, "listener", lb.project_id, values,
                             operating=FIRST_OPERATING["listener"])
        self._pending(conn, lb.id)
        self._tell(conn, lb, "listener_create", self._fresh(conn, "listener", ident))
        return ident

    def _parent_for_create(self, conn: Connection, ctx: Context, kind: str, body: dict
                           ) -> Row:
        """The load balancer a new object goes into (the body's parent, read in the
        caller's view; another project's is refused), its project checked."""
        attr, parent_kind = PARENT[kind]
        project = body.pop("project_id", None)
        parent = store.find(conn, parent_kind, body[attr])
        if parent is None:
            raise errors.NotFound(f"{s.KINDS[parent_kind].title} {body[attr]} not found.",
                                  type="NotFound") if kind != "listener" else \
                rules.bad(f"Load Balancer {body[attr]} not found.")
        policy.check_project(ctx, parent.project_id, f"os_load-balancer_api:{kind}:post")
        if project is not None and project != parent.project_id:
            policy.check_admin(ctx, f"os_load-balancer_api:{kind}:post")
        if parent_kind == "loadbalancer":
            return parent
        lb = store.find(conn, "loadbalancer", parent.loadbalancer_id)
        assert lb is not None
        return lb

    def _check_port_free(self, conn: Connection, lb_id: str, protocol: str, port: int,
                         ignore: str | None = None) -> None:
        tbl = t.lb_listeners
        taken = conn.execute(sa.select(tbl.c.id).where(
            tbl.c.loadbalancer_id == lb_id, tbl.c.protocol_port == port,
            tbl.c.transport == rules.transport(protocol))).first()
        if taken is not None and taken.id != ignore:
            raise errors.Conflict(f"Another Listener on this Load Balancer is already using "
                                  f"protocol_port {port}", type="DuplicateListenerEntry")

    def _check_default_pool(self, conn: Connection, lb_id: str, protocol: str,
                            pool_id: str, listener_id: str | None = None) -> None:
        pool = store.find(conn, "pool", pool_id)
        if pool is None or pool.loadbalancer_id != lb_id:
            raise errors.NotFound(f"Pool {pool_id} not found.", type="NotFound")
        if pool.protocol not in rules.POOL_FOR_LISTENER[protocol]:
            raise rules.bad(f"The pool protocol '{pool.protocol}' is invalid while the "
                            f"listener protocol is '{protocol}'.")
        other = conn.execute(sa.select(t.lb_listeners.c.id).where(
            t.lb_listeners.c.default_pool_id == pool_id)).first()
        if other is not None and other.id != listener_id:
            raise errors.Conflict(f"Pool {pool_id} is already in use by another listener.",
                                  type="DuplicatePoolEntry")

    def update_listener(self, conn: Connection, ctx: Context, ident: str, changes: dict
                        ) -> None:
        policy.check_write(ctx, "os_load-balancer_api:listener:put")
        row = self.get_row(conn, ctx, "listener", ident, "put")
        lb = self._lock_lb(conn, row.loadbalancer_id)
        current = store.render(conn, "listener", [row])[0]
        for key in ("timeout_client_data", "timeout_member_connect", "timeout_member_data",
                    "timeout_tcp_inspect", "connection_limit"):
            if key in changes and changes[key] is None:  # null: back to the default
                changes[key] = s.LISTENER.by_name[key].default
        merged = {**current, **changes}
        rules.check_listener(merged)
        rules.check_allowed_cidrs(merged.get("allowed_cidrs"), lb.vip_address)
        if changes.get("default_pool_id"):
            self._check_default_pool(conn, lb.id, row.protocol, changes["default_pool_id"],
                                     ident)
        store.update(conn, "listener", row, changes, provisioning_status="PENDING_UPDATE")
        self._pending(conn, lb.id)
        self._tell(conn, lb, "listener_update", current, self._fresh(conn, "listener", ident))

    # -- generic delete of a child -------------------------------------------------------

    def delete_child(self, conn: Connection, ctx: Context, kind: str, ident: str,
                     parent: str | None = None) -> None:
        policy.check_write(ctx, f"os_load-balancer_api:{kind}:delete")
        if parent is not None:
            self._parent_row(conn, ctx, kind, parent)
        row = self.get_row(conn, ctx, kind, ident, "delete", parent=parent)
        lb = self._lock_lb(conn, row.loadbalancer_id)
        if row.provisioning_status.startswith("PENDING"):
            raise immutable(kind, ident)
        store.set_status(conn, kind, [ident], provisioning_status="PENDING_DELETE")
        self._pending(conn, lb.id)
        view = store.render(conn, kind, [row])[0]
        method = {"listener": "listener_delete", "pool": "pool_delete",
                  "member": "member_delete", "healthmonitor": "health_monitor_delete",
                  "l7policy": "l7policy_delete", "l7rule": "l7rule_delete"}[kind]
        view = {**view, "kind": kind}
        self._tell(conn, lb, method, view)

    # -- pools -------------------------------------------------------------------------

    def create_pool(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "os_load-balancer_api:pool:post")
        project = body.pop("project_id", None)
        listener = None
        if body.get("listener_id"):
            listener = store.find(conn, "listener", body["listener_id"])
            if listener is None:
                raise errors.NotFound(f"Listener {body['listener_id']} not found.",
                                      type="NotFound")
            if body.get("loadbalancer_id") and body["loadbalancer_id"] != \
                    listener.loadbalancer_id:
                raise rules.bad("The listener is not on the load balancer given.")
            lb_id = listener.loadbalancer_id
        elif body.get("loadbalancer_id"):
            lb_id = body["loadbalancer_id"]
        else:
            raise rules.bad("A pool must have a listener_id or a loadbalancer_id.")
        lb = store.find(conn, "loadbalancer", lb_id)
        if lb is None:
            raise rules.bad(f"Load Balancer {lb_id} not found.")
        policy.check_project(ctx, lb.project_id, "os_load-balancer_api:pool:post")
        if project is not None and project != lb.project_id:
            policy.check_admin(ctx, "os_load-balancer_api:pool:post")
        self._lock_lb(conn, lb.id)
        rules.check_persistence(body["protocol"], body.get("session_persistence"))
        rules.check_pool_tls(body)
        if listener is not None:
            if listener.default_pool_id:
                raise errors.Conflict(f"Listener {listener.id} already has a default pool.",
                                      type="DuplicatePoolEntry")
            if body["protocol"] not in rules.POOL_FOR_LISTENER[listener.protocol]:
                raise rules.bad(f"The pool protocol '{body['protocol']}' is invalid while "
                                f"the listener protocol is '{listener.protocol}'.")
        self._check_quota(conn, lb.project_id, "pool")
        values = {k: v for k, v in body.items() if k not in ("listener_id", "loadbalancer_id")}
        ident = store.insert(conn, "pool", lb.project_id, {**values, "loadbalancer_id": lb.id})
        if listener is not None:
            store.update(conn, "listener", listener, {"default_pool_id": ident})
        self._pending(conn, lb.id)
        self._tell(conn, lb, "pool_create", self._fresh(conn, "pool", ident))
        return ident

    def update_pool(self, conn: Connection, ctx: Context, ident: str, changes: dict) -> None:
        policy.check_write(ctx, "os_load-balancer_api:pool:put")
        row = self.get_row(conn, ctx, "pool", ident, "put")
        lb = self._lock_lb(conn, row.loadbalancer_id)
        current = store.render(conn, "pool", [row])[0]
        merged = {**current, **changes}
        rules.check_persistence(row.protocol, merged.get("session_persistence"))
        rules.check_pool_tls(merged)
        store.update(conn, "pool", row, changes, provisioning_status="PENDING_UPDATE")
        self._pending(conn, lb.id)
        self._tell(conn, lb, "pool_update", current, self._fresh(conn, "pool", ident))

    # -- members -----------------------------------------------------------------------

    def _member_values(self, conn: Connection, ctx: Context, pool: Row, body: dict) -> dict:
        body.pop("project_id", None)
        subnet_id = body.get("subnet_id")
        if subnet_id and not self.noop_network:
            subnet = self.subnets.find_row(conn, ctx, subnet_id)
            if subnet is None:
                raise rules.bad(f"Subnet {subnet_id} not found.")
            if ipaddress.ip_address(body["address"]) not in ipaddress.ip_network(subnet.cidr):
                raise rules.bad(f"Member address {body['address']} is not in subnet "
                                f"{subnet_id}.")
        if body.get("monitor_address") is not None and ipaddress.ip_address(
                body["monitor_address"]).version != ipaddress.ip_address(
                    body["address"]).version:
            raise rules.bad("The monitor address must be of the member address' IP version.")
        if body.get("weight") is None:
            body["weight"] = 1
        return {**body, "pool_id": pool.id, "loadbalancer_id": pool.loadbalancer_id}

    def _member_free(self, conn: Connection, pool_id: str, address: str, port: int) -> None:
        tbl = t.lb_members
        if conn.execute(sa.select(tbl.c.id).where(
                tbl.c.pool_id == pool_id, tbl.c.address == address,
                tbl.c.protocol_port == port)).first() is not None:
            raise errors.Conflict(f"Another member on this pool is already using ip "
                                  f"{address} on protocol_port {port}",
                                  type="DuplicateMemberEntry")

    def create_member(self, conn: Connection, ctx: Context, pool_id: str, body: dict) -> str:
        policy.check_write(ctx, "os_load-balancer_api:member:post")
        pool = self.get_row(conn, ctx, "pool", pool_id, "post")
        lb = self._lock_lb(conn, pool.loadbalancer_id)
        values = self._member_values(conn, ctx, pool, body)
        self._member_free(conn, pool.id, values["address"], values["protocol_port"])
        self._check_quota(conn, lb.project_id, "member")
        ident = store.insert(conn, "member", lb.project_id, values,
                             operating=_member_operating(values))
        self._pending(conn, lb.id)
        self._tell(conn, lb, "member_create", self._fresh(conn, "member", ident))
        return ident

    def update_member(self, conn: Connection, ctx: Context, pool_id: str, ident: str,
                      changes: dict) -> None:
        policy.check_write(ctx, "os_load-balancer_api:member:put")
        self.get_row(conn, ctx, "pool", pool_id, "put")
        row = self.get_row(conn, ctx, "member", ident, "put", parent=pool_id)
        lb = self._lock_lb(conn, row.loadbalancer_id)
        current = store.render(conn, "member", [row])[0]
        if changes.get("monitor_address") is not None and ipaddress.ip_address(
                changes["monitor_address"]).version != ipaddress.ip_address(
                    row.address).version:
            raise rules.bad("The monitor address must be of the member address' IP version.")
        if "weight" in changes and changes["weight"] is None:
            changes["weight"] = 1
        status = {"provisioning_status": "PENDING_UPDATE"}
        if "admin_state_up" in changes:
            status["operating_status"] = _member_operating({**current, **changes})
        store.update(conn, "member", row, changes, **status)
        self._pending(conn, lb.id)
        self._tell(conn, lb, "member_update", current, self._fresh(conn, "member", ident))

    def batch_members(self, conn: Connection, ctx: Context, pool_id: str,
                      members: list[dict], additive_only: bool) -> None:
        policy.check_write(ctx, "os_load-balancer_api:member:put")
        pool = self.get_row(conn, ctx, "pool", pool_id, "put")
        lb = self._lock_lb(conn, pool.loadbalancer_id)
        existing = {(m.address, m.protocol_port): m
                    for m in store.rows(conn, "member", t.lb_members.c.pool_id == pool.id)}
        seen: set[tuple[str, int]] = set()
        for body in members:
            key = (body["address"], body["protocol_port"])
            if key in seen:
                raise errors.Conflict(f"Another member on this pool is already using ip "
                                      f"{key[0]} on protocol_port {key[1]}",
                                      type="DuplicateMemberEntry")
            seen.add(key)
            row = existing.get(key)
            if row is None:
                values = self._member_values(conn, ctx, pool, dict(body))
                self._check_quota(conn, lb.project_id, "member")
                store.insert(conn, "member", lb.project_id, values,
                             operating=_member_operating(values))
            else:
                changes = {k: v for k, v in body.items() if s.MEMBER.by_name[k].update}
                store.update(conn, "member", row, changes,
                             provisioning_status="PENDING_UPDATE",
                             operating_status=_member_operating({**row._mapping, **changes}))
        if not additive_only:
            gone = [m.id for k, m in existing.items() if k not in seen]
            store.set_status(conn, "member", gone, provisioning_status="PENDING_DELETE")
        self._pending(conn, lb.id)
        touched = [{"id": m.id, "kind": "member", "provisioning_status": m.provisioning_status}
                   for m in store.rows(conn, "member", t.lb_members.c.pool_id == pool.id)
                   if m.provisioning_status.startswith("PENDING")]
        self._tell(conn, lb, "member_batch_update", pool.id, touched)

    # -- health monitors ---------------------------------------------------------------

    def create_healthmonitor(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "os_load-balancer_api:healthmonitor:post")
        pool = store.find(conn, "pool", body["pool_id"])
        if pool is None:
            raise rules.bad(f"Pool {body['pool_id']} not found.")
        policy.check_project(ctx, pool.project_id, "os_load-balancer_api:healthmonitor:post")
        project = body.pop("project_id", None)
        if project is not None and project != pool.project_id:
            policy.check_admin(ctx, "os_load-balancer_api:healthmonitor:post")
        lb = self._lock_lb(conn, pool.loadbalancer_id)
        if conn.execute(sa.select(t.lb_healthmonitors.c.id).where(
                t.lb_healthmonitors.c.pool_id == pool.id)).first() is not None:
            raise errors.Conflict("This pool already has a health monitor",
                                  type="DuplicateHealthMonitor")
        values = rules.monitor(body, pool.protocol)
        self._check_quota(conn, lb.project_id, "healthmonitor")
        ident = store.insert(conn, "healthmonitor", lb.project_id,
                             {**values, "loadbalancer_id": lb.id},
                             operating=FIRST_OPERATING["healthmonitor"])
        self._pending(conn, lb.id)
        self._tell(conn, lb, "health_monitor_create", self._fresh(conn, "healthmonitor", ident))
        return ident

    def update_healthmonitor(self, conn: Connection, ctx: Context, ident: str,
                             changes: dict) -> None:
        policy.check_write(ctx, "os_load-balancer_api:healthmonitor:put")
        row = self.get_row(conn, ctx, "healthmonitor", ident, "put")
        lb = self._lock_lb(conn, row.loadbalancer_id)
        pool = store.find(conn, "pool", row.pool_id)
        assert pool is not None
        current = store.render(conn, "healthmonitor", [row])[0]
        if row.type not in rules.HTTP_MONITORS:
            for key in ("http_method", "url_path", "expected_codes"):
                if changes.get(key) is not None:
                    raise rules.bad(f"{key} is not allowed for health monitors of type "
                                    f"{row.type}.")
        merged = {**current, **changes}
        for key in ("http_method", "url_path", "expected_codes"):  # null: the default
            if key in changes and changes[key] is None:
                merged.pop(key)
        values = rules.monitor(merged, pool.protocol)
        store.update(conn, "healthmonitor", row,
                     {k: values[k] for k in (*changes, "http_method", "url_path",
                                             "expected_codes") if k in values},
                     provisioning_status="PENDING_UPDATE")
        self._pending(conn, lb.id)
        self._tell(conn, lb, "health_monitor_update", current,
                   self._fresh(conn, "healthmonitor", ident))

    # -- L7 ----------------------------------------------------------------------------

    def _check_redirect_pool(self, conn: Connection, lb_id: str, values: dict) -> None:
        pool_id = values.get("redirect_pool_id")
        if pool_id:
            pool = store.find(conn, "pool", pool_id)
            if pool is None or pool.loadbalancer_id != lb_id:
                raise rules.bad(f"Pool {pool_id} not found on this load balancer.")

    def create_l7policy(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "os_load-balancer_api:l7policy:post")
        listener = store.find(conn, "listener", body["listener_id"])
        if listener is None:
            raise rules.bad(f"Listener {body['listener_id']} not found.")
        policy.check_project(ctx, listener.project_id, "os_load-balancer_api:l7policy:post")
        body.pop("project_id", None)
        lb = self._lock_lb(conn, listener.loadbalancer_id)
        if listener.protocol not in ("HTTP", "TERMINATED_HTTPS"):
            raise rules.bad(f"L7 policies are not supported on {listener.protocol} "
                            f"listeners.")
        values = rules.l7policy(body)
        self._check_redirect_pool(conn, lb.id, values)
        self._check_quota(conn, lb.project_id, "l7policy")
        others = self._policies(conn, listener.id)
        position = min(values.get("position") or len(others) + 1, len(others) + 1)
        ident = store.insert(conn, "l7policy", lb.project_id,
                             {**values, "position": 0, "loadbalancer_id": lb.id},
                             operating=FIRST_OPERATING["l7policy"])
        self._order(conn, listener.id, ident, position)
        self._pending(conn, lb.id)
        self._tell(conn, lb, "l7policy_create", self._fresh(conn, "l7policy", ident))
        return ident

    def _policies(self, conn: Connection, listener_id: str) -> list[Row]:
        tbl = t.lb_l7policies
        return list(conn.execute(sa.select(tbl).where(tbl.c.listener_id == listener_id)
                                 .order_by(tbl.c.position, tbl.c.created_at)))

    def _order(self, conn: Connection, listener_id: str, ident: str | None,
               position: int | None) -> None:
        """Number the listener's policies 1..n, ``ident`` at ``position``."""
        ids = [p.id for p in self._policies(conn, listener_id) if p.id != ident]
        if ident is not None and position is not None:
            ids.insert(min(position, len(ids) + 1) - 1, ident)
        tbl = t.lb_l7policies
        for n, pid in enumerate(ids, 1):
            conn.execute(tbl.update().where(tbl.c.id == pid).values(position=n))

    def update_l7policy(self, conn: Connection, ctx: Context, ident: str, changes: dict
                        ) -> None:
        policy.check_write(ctx, "os_load-balancer_api:l7policy:put")
        row = self.get_row(conn, ctx, "l7policy", ident, "put")
        lb = self._lock_lb(conn, row.loadbalancer_id)
        current = store.render(conn, "l7policy", [row])[0]
        merged = {**current, **changes}
        values = rules.l7policy(merged)
        self._check_redirect_pool(conn, lb.id, values)
        update = {k: values[k] for k in ("action", "redirect_pool_id", "redirect_url",
                                         "redirect_prefix", "redirect_http_code")}
        update.update({k: v for k, v in changes.items() if k not in update and
                       k != "position"})
        store.update(conn, "l7policy", row, update, provisioning_status="PENDING_UPDATE")
        if changes.get("position") is not None:
            self._order(conn, row.listener_id, ident, changes["position"])
        self._pending(conn, lb.id)
        self._tell(conn, lb, "l7policy_update", current, self._fresh(conn, "l7policy", ident))

    def create_l7rule(self, conn: Connection, ctx: Context, policy_id: str, body: dict
                      ) -> str:
        policy.check_write(ctx, "os_load-balancer_api:l7rule:post")
        l7 = self.get_row(conn, ctx, "l7policy", policy_id, "post")
        body.pop("project_id", None)
        lb = self._lock_lb(conn, l7.loadbalancer_id)
        values = rules.l7rule(body)
        self._check_quota(conn, lb.project_id, "l7rule")
        ident = store.insert(conn, "l7rule", lb.project_id,
                             {**values, "l7policy_id": l7.id, "loadbalancer_id": lb.id},
                             operating=FIRST_OPERATING["l7rule"])
        self._pending(conn, lb.id)
        self._tell(conn, lb, "l7rule_create", self._fresh(conn, "l7rule", ident))
        return ident

    def update_l7rule(self, conn: Connection, ctx: Context, policy_id: str, ident: str,
                      changes: dict) -> None:
        policy.check_write(ctx, "os_load-balancer_api:l7rule:put")
        self.get_row(conn, ctx, "l7policy", policy_id, "put")
        row = self.get_row(conn, ctx, "l7rule", ident, "put", parent=policy_id)
        lb = self._lock_lb(conn, row.loadbalancer_id)
        current = store.render(conn, "l7rule", [row])[0]
        rules.l7rule({**current, **changes})
        store.update(conn, "l7rule", row, changes, provisioning_status="PENDING_UPDATE")
        self._pending(conn, lb.id)
        self._tell(conn, lb, "l7rule_update", current, self._fresh(conn, "l7rule", ident))


def _member_operating(values: Mapping[str, Any]) -> str:
    # no health checks run yet (no data plane): nothing is known of any member
    return "NO_MONITOR"


def _addresses(conn: Connection, port_id: str) -> list[tuple[str, str]]:
    tbl = t.ip_allocations
    return [(r.subnet_id, r.ip_address) for r in conn.execute(
        sa.select(tbl.c.subnet_id, tbl.c.ip_address).where(tbl.c.port_id == port_id)
        .order_by(tbl.c.subnet_id))]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
