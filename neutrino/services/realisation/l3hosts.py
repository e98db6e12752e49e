"""The L3 side of the hosts: which host realises each router, what it should make of
it, and what its L3 agent reports back (router and floating IP status).

Scheduling keeps no table of its own: a router is realised where its ports are
bound, and a router none of whose ports is bound yet goes to the oldest live L3
agent, which gets the router's ports bound to its host (upstream's L3 agent has the
server do the same in ``sync_routers``).  Bound router ports are ordinary ports of
that host: its L2 agent plugs their taps and they go ACTIVE like an instance's.

Status: a router shows ``ACTIVE`` on creation (as upstream), then what its host
reports: ``ACTIVE`` once realised, ``ERROR`` when realising failed, ``DOWN`` while
``admin_state_up`` is false.  A floating IP is ``ACTIVE`` once its NAT is in place,
``DOWN`` otherwise.  Reports are rows (``router_realisations``,
``floatingip_realisations``: object, component ``l3``, host -> revision, status),
written in the report's transaction; a status is that of the row of the host that
realises the object (its router's, for a floating IP), so every server derives the
same.  Reports name the revision realised (the router's, the floating IP's, from the
snapshot); a report older than the one recorded is a late one and changes nothing, and
a report without one (an older agent) is never taken for a late one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.l2.ports import Ports
from neutrino.services.l3.routers import load_routes
from neutrino.services.realisation.agents import Agents

L3_AGENT = "L3 agent"
ROUTER_GATEWAY = "network:router_gateway"
STATUSES = ("ACTIVE", "DOWN", "ERROR")
L3 = "l3"


def report_revision(value: object) -> int | None:
    """The revision a report names (missing: 0, which an agent that does not say sends);
    None if it is no revision at all."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class L3Hosts:
    def __init__(self, agents: Agents, ports: Ports) -> None:
        self.agents = agents
        self.ports = ports

    # -- scheduling ----------------------------------------------------------------

    def router_hosts(self, conn: Connection,
                     router_ids: Iterable[str] | None = None) -> dict[str, str | None]:
        """Router -> the host realising it: where its ports are bound, else the oldest
        live L3 agent's (None when there is none)."""
        stmt = sa.select(t.routers.c.id)
        if router_ids is not None:
            stmt = stmt.where(t.routers.c.id.in_(sorted(set(router_ids))))
        ids = list(conn.scalars(stmt.order_by(t.routers.c.id)))
        if not ids:
            return {}
        held: dict[str, str] = {}
        for rid, host in conn.execute(
                sa.select(t.router_ports.c.router_id, t.ports.c.binding_host_id)
                .join(t.ports, t.ports.c.id == t.router_ports.c.port_id)
                .where(t.router_ports.c.router_id.in_(ids), t.ports.c.binding_host_id != "")
                .order_by(t.router_ports.c.router_id, t.ports.c.binding_host_id)):
            held.setdefault(rid, host)
        default = next((r.host for r in self.agents.live(conn, L3_AGENT) if r.admin_state_up),
                       None)
        return {rid: held.get(rid, default) for rid in ids}

    def _bind_ports(self, conn: Connection, router_id: str, host: str) -> list[str]:
        """Bind the router's unbound ports to ``host``; the ports bound."""
        rows = conn.execute(
            sa.select(t.ports.c.id, t.ports.c.network_id)
            .join(t.router_ports, t.router_ports.c.port_id == t.ports.c.id)
            .where(t.router_ports.c.router_id == router_id, t.ports.c.binding_host_id == "")
            .order_by(t.ports.c.id)).all()
        for pid, _ in rows:
            self.ports.bind_host(conn, pid, host)
        return [r.id for r in rows]

    def schedule(self, conn: Connection, router_id: str) -> str | None:
        """The host realising the router, its ports bound there (in the caller's
        transaction); None if no L3 agent can take it now."""
        host = self.router_hosts(conn, [router_id]).get(router_id)
        if host:
            self._bind_ports(conn, router_id, host)
        return host

    def schedule_host(self, conn: Connection, host: str) -> list[str]:
        """An L3 agent came (back) to life on ``host``: bind the ports of the routers
        that are now its own (the port service records their events) and record the
        routers'; returns those routers."""
        taken = []
        for rid, chosen in self.router_hosts(conn).items():
            if chosen == host and self._bind_ports(conn, rid, host):
                events.router(conn, rid, host)
                taken.append(rid)
        return taken

    # -- desired state -------------------------------------------------------------------

    def routers_state(self, conn: Connection, host: str,
                      router_ids: Iterable[str] | None) -> list[dict]:
        """What ``host`` should make of the routers it realises (of ``router_ids``;
        None: all of them): ports with addresses and MTU, routes, floating IPs."""
        hosts = self.router_hosts(conn, router_ids)
        mine = sorted(r for r, h in hosts.items() if h == host)
        if not mine:
            return []
        routers = conn.execute(sa.select(t.routers).where(t.routers.c.id.in_(mine))
                               .order_by(t.routers.c.id)).all()
        ports = conn.execute(
            sa.select(t.router_ports.c.router_id, t.router_ports.c.port_type, t.ports.c.id,
                      t.ports.c.network_id, t.ports.c.mac_address, t.ports.c.admin_state_up,
                      t.networks.c.mtu)
            .join(t.ports, t.ports.c.id == t.router_ports.c.port_id)
            .join(t.networks, t.networks.c.id == t.ports.c.network_id)
            .where(t.router_ports.c.router_id.in_(mine))
            .order_by(t.ports.c.id)).all()
        addresses: dict[str, list[dict]] = {}
        if ports:
            for pid, sid, ip, cidr, gateway in conn.execute(
                    sa.select(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id,
                              t.ip_allocations.c.ip_address, t.subnets.c.cidr,
                              t.subnets.c.gateway_ip)
                    .join(t.subnets, t.subnets.c.id == t.ip_allocations.c.subnet_id)
                    .where(t.ip_allocations.c.port_id.in_([p.id for p in ports]))
                    .order_by(t.ip_allocations.c.subnet_id)):
                addresses.setdefault(pid, []).append(
                    {"subnet_id": sid, "ip_address": ip, "cidr": cidr, "gateway_ip": gateway})
        routes = load_routes(conn, mine)
        fips: dict[str, list[dict]] = {}
        for f in conn.execute(
                sa.select(t.floatingips.c.id, t.floatingips.c.router_id,
                          t.floatingips.c.floating_ip_address,
                          t.floatingips.c.fixed_ip_address, t.floatingips.c.fixed_port_id,
                          t.floatingips.c.revision_number)
                .where(t.floatingips.c.router_id.in_(mine),
                       t.floatingips.c.fixed_port_id.is_not(None))
                .order_by(t.floatingips.c.id)):
            fips.setdefault(f.router_id, []).append({
                "id": f.id, "floating_ip_address": f.floating_ip_address,
                "fixed_ip_address": f.fixed_ip_address, "port_id": f.fixed_port_id,
                "revision_number": f.revision_number})
        out = []
        for r in routers:
            mine_ports = [{"id": p.id, "network_id": p.network_id,
                           "mac_address": p.mac_address, "mtu": p.mtu,
                           "admin_state_up": p.admin_state_up,
                           "fixed_ips": addresses.get(p.id, []), "port_type": p.port_type}
                          for p in ports if p.router_id == r.id]
            gateway = next((p for p in mine_ports if p["id"] == r.gw_port_id), None)
            out.append({
                "id": r.id, "admin_state_up": r.admin_state_up,
                "revision_number": r.revision_number, "enable_snat": r.enable_snat,
                "gateway": gateway,
                "interfaces": [p for p in mine_ports if p["port_type"] != ROUTER_GATEWAY],
                "routes": routes.get(r.id, []), "floatingips": fips.get(r.id, []),
            })
        return out

    # -- realisation ---------------------------------------------------------------------

    def report(self, conn: Connection, host: str, routers: list[dict],
               floatingips: list[dict]) -> list[str]:
        """Record what ``host``'s L3 agent realised (in the caller's transaction) and
        derive the statuses; the ids whose status changed.  Idempotent under
        redelivery: the same reports again change nothing."""
        def parse(items: list[dict], key: str) -> dict[str, tuple[int, str]]:
            out = {}
            for item in items:
                ident, status = item.get(key), item.get("status")
                revision = report_revision(item.get("revision"))
                if isinstance(ident, str) and status in STATUSES and revision is not None:
                    out[ident] = (revision, status)
            return out

        changed: list[str] = []
        router_reports = parse(routers, "router_id")
        if router_reports:
            rows = _locked(conn, t.routers, sorted(router_reports))
            hosts = self.router_hosts(conn, rows)
            for rid, row in rows.items():
                taken = _record(conn, t.router_realisations, "router_id", rid, host,
                                router_reports[rid])
                # only the router's own host speaks for it
                if taken and hosts.get(rid) == host and row.status != taken:
                    c.bump(conn, t.routers, rid, {"status": taken})
                    changed.append(rid)
        fip_reports = parse(floatingips, "floatingip_id")
        if fip_reports:
            rows = _locked(conn, t.floatingips, sorted(fip_reports))
            hosts = self.router_hosts(conn, {r.router_id for r in rows.values() if r.router_id})
            for fid, row in rows.items():
                taken = _record(conn, t.floatingip_realisations, "floatingip_id", fid, host,
                                fip_reports[fid])
                if not taken or (row.router_id and hosts.get(row.router_id) != host):
                    continue  # a late report, or not from the host forwarding it
                if taken == "ACTIVE" and row.fixed_port_id is None:
                    continue  # disassociated since: a late report
                if row.status != taken:
                    c.bump(conn, t.floatingips, fid, {"status": taken})
                    changed.append(fid)
        return changed


def _locked(conn: Connection, table: sa.Table, ids: list[str]) -> dict[str, Any]:
    """The rows of ``ids`` that exist, locked in id order: reports about one object
    from several servers take their turns."""
    lock_rows(conn, table, ids)
    return {r.id: r for r in conn.execute(
        sa.select(table).where(table.c.id.in_(ids)).order_by(table.c.id))}


def _record(conn: Connection, table: sa.Table, key: str, ident: str, host: str,
            report: tuple[int, str]) -> str | None:
    """Write ``host``'s report on ``ident`` into its realisation row (the object's row
    is locked); the status it now records, None if the report is older than the one
    recorded (a redelivery after a later report)."""
    revision, status = report
    where = (table.c[key] == ident, table.c.component == L3, table.c.host == host)
    old = conn.execute(sa.select(table.c.revision, table.c.status).where(*where)).first()
    if old is None:
        conn.execute(table.insert().values({key: ident, "component": L3, "host": host,
                                            "revision": revision, "status": status,
                                            "updated_at": c.now()}))
    elif revision and revision < old.revision:
        return None
    elif (revision, status) != (old.revision, old.status):
        conn.execute(table.update().where(*where).values(
            revision=revision or old.revision, status=status, updated_at=c.now()))
    return status
