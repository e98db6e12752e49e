"""What each host should realise, and what the hosts report back.

The server side of the agents' bus calls, as domain logic over the database:

- ``host_state``: the desired state of one host (or of some of its networks): the
  networks with ports bound there, the networks whose DHCP it serves, their
  segments, subnets and ports;
- ``dhcp_port``: the DHCP port a host's DHCP agent needs on a network, made or
  completed through the port service (as upstream's DHCP agent asks for it);
- ``report_ports``: realisation reports.  A port is ACTIVE once its host's L2 agent
  wired it and, where it takes addresses from our DHCP, the DHCP agent knows it
  (upstream's provisioning blocks); DOWN when unplugged.  A status write records no
  change event: it is what the hosts said, and asks nothing new of them.

Realisation is data: each report is a row of ``port_realisations`` (port, component,
host: revision, up), written in the report's transaction, and the port's status is
derived from those rows in that transaction, so every server and worker answers alike
and a restarted one knows what it knew.  A report counts only for the revision the
port has to be realised at (its *desired revision*, see :func:`desired_revision`).

Generations order the desired state: the one counter row of ``bus_generation`` is
bumped at the end of every transaction that records change events
(:mod:`neutrino.services.core.events`), and a snapshot carries the value it read before
reading the state (see docs/architecture.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino.bus.messages import HostState
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.drivers.types import segments as segment_rows
from neutrino.schema.resources import PORT
from neutrino.services.core import collection as c
from neutrino.services.core.events import generation
from neutrino.services.l2.networks import SUBNET_ORDER
from neutrino.services.l2.ports import DHCP_OWNER, Ports
from neutrino.services.l2.subnets import Subnets
from neutrino.services.realisation.agents import DHCP_AGENT, Agents
from neutrino.services.realisation.l3hosts import L3Hosts, report_revision

L2 = "l2"
DHCP = "dhcp"
ACTIVE, DOWN = "ACTIVE", "DOWN"


def desired_revision(revision_number: int, write: Row | None) -> int:
    """The revision of the port the hosts must have realised for their reports to count.

    Every change of a port bumps its ``revision_number``, status writes included (as
    upstream); but a status write asks nothing new of the hosts.  So when the port's
    revision is still the one its last status write made, the revision to realise is
    the one recorded with that write; otherwise something else changed the port since
    (an API write, a binding) and it is the port's revision itself."""
    if write is not None and write.written_revision == revision_number:
        return int(write.desired_revision)
    return int(revision_number)


def dhcp_device_id(host: str, network_id: str) -> str:
    """As upstream: ``dhcp<uuid5 of the host>-<network id>``."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


class Hosts:
    def __init__(self, agents: Agents, subnets: Subnets, ports: Ports, l3: L3Hosts) -> None:
        self.agents = agents
        self.subnets = subnets
        self.ports = ports
        #: routers and floating IPs: scheduling, desired state, status reports
        self.l3 = l3

    # -- desired state ---------------------------------------------------------

    def _dhcp_host_of(self, conn: Connection, network_ids: list[str]) -> dict[str, str]:
        """network -> the host serving its DHCP: the holder of its DHCP port, else the
        oldest live DHCP agent (every network has at most one DHCP server)."""
        held = dict(conn.execute(sa.select(t.ports.c.network_id, t.ports.c.binding_host_id)
                                 .where(t.ports.c.device_owner == DHCP_OWNER,
                                        t.ports.c.network_id.in_(network_ids))).all())
        live = [r.host for r in self.agents.live(conn, DHCP_AGENT) if r.admin_state_up]
        out = {}
        for net in network_ids:
            if net in held and held[net] in live:
                out[net] = held[net]
            elif live:
                out[net] = live[0]
        return out

    def dhcp_networks(self, conn: Connection, host: str) -> list[str]:
        """The networks whose DHCP ``host`` serves now (as ``host_state`` decides it)."""
        candidates = sorted(set(conn.scalars(
            sa.select(t.subnets.c.network_id).where(t.subnets.c.enable_dhcp).distinct())))
        return sorted(n for n, h in self._dhcp_host_of(conn, candidates).items() if h == host)

    def host_state(self, conn: Connection, host: str, network_ids: list[str] | None = None,
                   router_ids: list[str] | None = None) -> HostState:
        # read first: the state read after it holds every change up to this generation
        current = generation(conn)
        routers = self.l3.routers_state(
            conn, host, None if network_ids is None else (router_ids or []))
        bound = sa.select(t.ports.c.network_id).where(t.ports.c.binding_host_id == host,
                                                      t.ports.c.binding_vif_type == "bridge")
        dhcp_enabled = sa.select(t.subnets.c.network_id).where(t.subnets.c.enable_dhcp)
        if network_ids is not None:
            bound = bound.where(t.ports.c.network_id.in_(network_ids))
            dhcp_enabled = dhcp_enabled.where(t.subnets.c.network_id.in_(network_ids))
        l2_nets = set(conn.scalars(bound.distinct()))
        candidates = sorted(set(conn.scalars(dhcp_enabled.distinct())))
        dhcp_nets = {n for n, h in self._dhcp_host_of(conn, candidates).items() if h == host}
        wanted = sorted(l2_nets | dhcp_nets)
        groups = _security_groups(conn, host)  # whole on every sync: members live anywhere
        if not wanted:
            return HostState(current, routers=routers, security_groups=groups)
        admin = Context.admin()
        nets = conn.execute(sa.select(t.networks).where(t.networks.c.id.in_(wanted))).all()
        segments = segment_rows.load(conn, wanted)
        subnet_rows = conn.execute(sa.select(t.subnets).where(
            t.subnets.c.network_id.in_(wanted)).order_by(*SUBNET_ORDER)).all()
        subnets: dict[str, list[dict]] = {}
        for s in self.subnets.render(conn, admin, subnet_rows):
            subnets.setdefault(s["network_id"], []).append(_subnet(s))
        networks = []
        for n in nets:
            seg = segments.get(n.id)
            networks.append({
                "id": n.id, "mtu": n.mtu, "admin_state_up": n.admin_state_up,
                "segment": seg.as_attrs() if seg else None,
                "subnets": subnets.get(n.id, []),
                "l2": n.id in l2_nets, "dhcp": n.id in dhcp_nets,
            })
        port_filter = sa.or_(
            sa.and_(t.ports.c.network_id.in_(sorted(l2_nets)),
                    t.ports.c.binding_host_id == host),
            t.ports.c.network_id.in_(sorted(dhcp_nets)))
        rows = conn.execute(sa.select(t.ports).where(port_filter)
                            .order_by(t.ports.c.id)).all()
        ports = [_port(p, host) for p in self.ports.render(conn, admin, rows)]
        return HostState(current, networks, ports, routers, groups)

    # -- DHCP ports --------------------------------------------------------------

    def dhcp_port(self, conn: Connection, host: str, network_id: str,
                  release: bool = False) -> tuple[dict | None, bool]:
        """The host's DHCP port on the network, with an address on every DHCP subnet;
        made or completed if needed.  ``release`` (or no DHCP subnet left) removes it.
        Also says whether anything changed."""
        admin = Context.admin()
        # one at a time per network: a request delivered twice (or to two servers at
        # once) finds the port the first one made
        lock_rows(conn, t.networks, [network_id])
        existing = conn.execute(sa.select(t.ports).where(
            _host_dhcp(host, network_id))).first()
        infos = {s.id: s for s in self.subnets.infos(conn, network_id)}
        enabled = set(conn.scalars(sa.select(t.subnets.c.id).where(
            t.subnets.c.network_id == network_id, t.subnets.c.enable_dhcp)))
        if release or not enabled:
            if existing is not None:
                self.ports.delete(conn, admin, existing.id)
            return None, existing is not None
        # SLAAC subnets give their address by themselves
        wanted = [sid for sid in infos if sid in enabled and not infos[sid].auto_address]
        if existing is None:
            network = conn.execute(sa.select(t.networks.c.project_id).where(
                t.networks.c.id == network_id)).first()
            if network is None:
                return None, False
            body = PORT.validate_create({
                "network_id": network_id, "device_owner": DHCP_OWNER,
                "device_id": dhcp_device_id(host, network_id), "binding:host_id": host,
                "project_id": network.project_id,
                "fixed_ips": [{"subnet_id": sid} for sid in wanted]}, is_admin=True)
            ident = self.ports.create(conn, admin, body)
            changed = True
        else:
            changed = False
            ident = existing.id
            have = set(conn.scalars(sa.select(t.ip_allocations.c.subnet_id).where(
                t.ip_allocations.c.port_id == ident)))
            missing = [sid for sid in wanted if sid not in have]
            if missing:
                current = [{"subnet_id": s, "ip_address": ip} for s, ip in conn.execute(
                    sa.select(t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address)
                    .where(t.ip_allocations.c.port_id == ident))]
                self.ports.update(conn, admin, ident, {"fixed_ips": current + [
                    {"subnet_id": sid} for sid in missing]}, None)
                changed = True
        return _port(self.ports.get(conn, admin, ident), host), changed

    # -- realisation ---------------------------------------------------------------

    def report_ports(self, conn: Connection, host: str, reports: list[dict]) -> list[str]:
        """Record what ``host`` realised (in the caller's transaction) and derive the
        ports' status; returns the ports whose status changed.  Idempotent: the same
        reports again change nothing, and a report older than the one recorded for its
        port, component and host (a late redelivery) is left out."""
        latest: dict[tuple[str, str], tuple[int, bool]] = {}
        for r in reports:
            pid, component = r.get("port_id"), r.get("component")
            revision = report_revision(r.get("revision"))
            if isinstance(pid, str) and pid and component in (L2, DHCP) \
                    and revision is not None:
                latest[(pid, component)] = (revision, bool(r.get("up")))
        if not latest:
            return []
        ports = _lock_ports(conn, sorted({pid for pid, _ in latest}))  # gone: left out
        ids = sorted(ports)
        pr = t.port_realisations
        recorded = {(x.port_id, x.component): x for x in _realisations(conn, ids)
                    if x.host == host}
        now = c.now()
        for (pid, component), (revision, up) in latest.items():
            if pid not in ports:
                continue
            old = recorded.get((pid, component))
            if old is None:
                conn.execute(pr.insert().values(port_id=pid, component=component, host=host,
                                                revision=revision, up=up, updated_at=now))
            elif revision >= old.revision and (revision, up) != (old.revision, old.up):
                conn.execute(pr.update().where(
                    pr.c.port_id == pid, pr.c.component == component, pr.c.host == host)
                    .values(revision=revision, up=up, updated_at=now))
        return self._refresh_status(conn, [ports[pid] for pid in ids])

    def _refresh_status(self, conn: Connection, rows: Sequence[Row]) -> list[str]:
        """Set ACTIVE/DOWN on these (locked) ports from their realisation rows; the ids
        of those that changed."""
        ids = [r.id for r in rows]
        on_dhcp_subnets = set(conn.scalars(
            sa.select(t.ip_allocations.c.port_id).join(
                t.subnets, t.subnets.c.id == t.ip_allocations.c.subnet_id)
            .where(t.ip_allocations.c.port_id.in_(ids), t.subnets.c.enable_dhcp)))
        dhcp_served = bool(self.agents.live(conn, DHCP_AGENT))
        seen: dict[str, list[Row]] = {}
        for x in _realisations(conn, ids):
            seen.setdefault(x.port_id, []).append(x)
        sw = t.port_status_writes
        writes = {w.port_id: w for w in conn.execute(sa.select(sw).where(sw.c.port_id.in_(ids)))}
        changed = []
        for row in rows:
            desired = desired_revision(row.revision_number, writes.get(row.id))
            # what was realised of an older revision does not count
            up = {(x.component, x.host): x.up for x in seen.get(row.id, ())
                  if x.revision >= desired}
            # only the bound host's L2 agent speaks for the wiring; any DHCP server for DHCP
            wired = up.get((L2, row.binding_host_id), False)
            needs_dhcp = (dhcp_served and row.device_owner != DHCP_OWNER
                          and row.id in on_dhcp_subnets)
            known = not needs_dhcp or any(v for (comp, _), v in up.items() if comp == DHCP)
            status = ACTIVE if wired and known and row.admin_state_up else DOWN
            if status == row.status:
                continue
            c.bump(conn, t.ports, row.id, {"status": status})
            # the port's row is locked: its new revision is exactly one more
            values = {"written_revision": row.revision_number + 1, "desired_revision": desired}
            if row.id in writes:
                conn.execute(sw.update().where(sw.c.port_id == row.id).values(**values))
            else:
                conn.execute(sw.insert().values(port_id=row.id, **values))
            changed.append(row.id)
        return changed

    @staticmethod
    def realised(conn: Connection, port_id: str) -> dict[str, Any]:
        """What is known of a port's realisation (for diagnostics and tests)."""
        return {f"{x.component}@{x.host}": {"revision": x.revision, "up": x.up,
                                            "updated_at": x.updated_at}
                for x in _realisations(conn, [port_id])}


def _lock_ports(conn: Connection, ids: list[str]) -> dict[str, Row]:
    """The ports of ``ids`` that exist, locked for the transaction in id order (so that
    concurrent reports, whatever hosts they come from, queue instead of deadlocking,
    and each derives status from what the one before it wrote)."""
    out: dict[str, Row] = {}
    for chunk in c.chunks(ids):
        stmt = sa.select(t.ports).where(t.ports.c.id.in_(chunk)).order_by(t.ports.c.id)
        out.update((r.id, r) for r in conn.execute(stmt.with_for_update()))
    return out


def _realisations(conn: Connection, port_ids: list[str]) -> list[Row]:
    pr = t.port_realisations
    out: list[Row] = []
    for chunk in c.chunks(port_ids):
        out += conn.execute(sa.select(pr).where(pr.c.port_id.in_(chunk))).all()
    return out


def _subnet(s: dict) -> dict:
    keep = ("id", "ip_version", "cidr", "gateway_ip", "enable_dhcp", "ipv6_ra_mode",
            "ipv6_address_mode", "dns_nameservers", "host_routes", "allocation_pools")
    return {k: s[k] for k in keep}


def _port(p: dict, host: str) -> dict:
    keep = ("id", "network_id", "mac_address", "fixed_ips", "device_owner", "device_id",
            "revision_number", "admin_state_up", "status", "extra_dhcp_opts",
            "port_security_enabled", "allowed_address_pairs", "security_groups",
            "anti_spoofing_enabled", "security_groups_enabled",
            "binding:host_id", "binding:vif_type", "name")
    out = {k: p[k] for k in keep if k in p}
    out["local"] = p.get("binding:host_id") == host and p.get("binding:vif_type") == "bridge"
    out["host_dhcp"] = (p.get("binding:host_id") == host and p["device_owner"] == DHCP_OWNER
                        and p["device_id"] == dhcp_device_id(host, p["network_id"]))
    return out


def _host_dhcp(host: str, network_id: str) -> ColumnElement[bool]:
    """The DHCP port this server made for ``host`` on the network: its owner, its host
    and the device id it was given, so that no other port passes for it."""
    return sa.and_(t.ports.c.network_id == network_id, t.ports.c.device_owner == DHCP_OWNER,
                   t.ports.c.binding_host_id == host,
                   t.ports.c.device_id == dhcp_device_id(host, network_id))


def _security_groups(conn: Connection, host: str) -> list[dict]:
    """The groups of the host's bound ports and the remote groups their rules name:
    each with its rules and its members' addresses (fixed IPs and address pairs)."""
    psg = t.port_security_groups
    local = sa.select(psg.c.security_group_id).join(
        t.ports, t.ports.c.id == psg.c.port_id).where(t.ports.c.binding_host_id == host)
    used = set(conn.scalars(local.distinct()))
    if not used:
        return []
    r = t.security_group_rules
    rules = conn.execute(sa.select(r).where(r.c.security_group_id.in_(sorted(used)))
                         .order_by(r.c.id)).all()
    groups = used | {x.remote_group_id for x in rules if x.remote_group_id}
    members: dict[str, set[str]] = {g: set() for g in groups}
    for gid, ip in conn.execute(
            sa.select(psg.c.security_group_id, t.ip_allocations.c.ip_address)
            .join(t.ip_allocations, t.ip_allocations.c.port_id == psg.c.port_id)
            .where(psg.c.security_group_id.in_(sorted(groups)))):
        members[gid].add(ip)
    for gid, ip in conn.execute(
            sa.select(psg.c.security_group_id, t.address_pairs.c.ip_address)
            .join(t.address_pairs, t.address_pairs.c.port_id == psg.c.port_id)
            .where(psg.c.security_group_id.in_(sorted(groups)))):
        members[gid].add(ip)
    by_group: dict[str, list[dict]] = {}
    for x in rules:
        by_group.setdefault(x.security_group_id, []).append({
            "id": x.id, "direction": x.direction, "ethertype": x.ethertype,
            "protocol_number": x.protocol_number, "port_range_min": x.port_range_min,
            "port_range_max": x.port_range_max, "normalized_cidr": x.normalized_cidr,
            "remote_group_id": x.remote_group_id})
    return [{"id": g, "rules": by_group.get(g, []), "members": sorted(members[g])}
            for g in sorted(groups)]
