"""Ports: addresses (IPAM), MAC addresses, address pairs, DHCP options, binding.

The addresses ports hold (``ip_allocations``) are this service's to write, also when a
subnet asks (a new SLAAC subnet, a subnet going away).  Binding and every change of a
port go through the mechanism drivers (:mod:`neutrino.drivers.mechanism`), and each
records its events (:mod:`neutrino.services.core.events`): the port's, and those of the
security groups whose members it changes (a member's addresses are in its groups'
rules elsewhere), whichever service asked for the change.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.drivers.mechanism import (
    BINDING_FAILED,
    UNBOUND,
    NetworkContext,
    PortContext,
    freeze,
)
from neutrino.drivers.mechanism.manager import Change, MechanismDrivers
from neutrino.drivers.types import segments
from neutrino.policy import sharing
from neutrino.schema.resources import PORT
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2 import ipam
from neutrino.services.l2.device_owners import (
    DHCP_OWNER,
    ROUTER_HA_INTERFACE,
    SERVICE_MANAGED_OWNERS,
    is_router,
)
from neutrino.services.l2.subnets import SubnetInfo, subnet_infos
from neutrino.services.security.port_security import PortSecurity

QUOTA = Counter("port", t.ports)
MAC_PREFIX = "fa:16:3e"
MAC_ATTEMPTS = 16
#: an address a port asks for: ``ip`` (None: any free one) on the first of ``subnets``
#: that can give it (a default address may come from any subnet of its IP version)
AddressRequest = tuple[tuple[SubnetInfo, ...], str | None]
#: what a port holds in other tables whose change is a new revision of the port
RELATED = frozenset(("fixed_ips", "allowed_address_pairs", "extra_dhcp_opts",
                     "security_groups"))
ADMIN = Context.admin()
_GROUPS_OF_PORT = sa.select(t.port_security_groups.c.security_group_id).where(
    t.port_security_groups.c.port_id == sa.bindparam("port_id"))
_GROUPS_OF_PORTS = sa.select(t.port_security_groups.c.security_group_id).where(
    c.in_ids(t.port_security_groups.c.port_id))


def random_mac() -> str:
    tail = secrets.token_bytes(3)
    return MAC_PREFIX + "".join(f":{b:02x}" for b in tail)


def pairs_need_port_security() -> errors.Conflict:
    """Allowed address pairs on a port whose anti-spoofing is (being turned) off."""
    return errors.Conflict("Port Security must be enabled in order to have allowed address "
                           "pairs on a port.", type="AddressPairAndPortSecurityRequired")


def scope(ctx: Context) -> ColumnElement[bool] | None:
    """A project sees its own ports and the ports on its networks."""
    if ctx.is_admin:
        return None
    return sa.or_(t.ports.c.project_id == ctx.project_id,
                  t.ports.c.network_id.in_(sa.select(t.networks.c.id).where(
                      t.networks.c.project_id == ctx.project_id)))


def network_context(conn: Connection, networks: c.Listing, network_id: str,
                    original: NetworkContext | None = None) -> NetworkContext:
    """A network as the mechanism drivers see it (``original``: before this change)."""
    row = conn.execute(c.by_id(t.networks), {"ident": network_id}).first()
    assert row is not None
    segment = segments.load(conn, [network_id]).get(network_id)
    return NetworkContext(freeze(networks.render(conn, ADMIN, [row], None)[0]),
                          original.current if original is not None else None,
                          (segment,) if segment is not None else ())


# the render queries, built once (see collection.in_ids)
_IPS_OF = sa.select(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id,
                    t.ip_allocations.c.ip_address).where(c.in_ids(t.ip_allocations.c.port_id))
_GROUPS_OF = sa.select(t.port_security_groups.c.port_id,
                       t.port_security_groups.c.security_group_id).where(
    c.in_ids(t.port_security_groups.c.port_id)).order_by(
    t.port_security_groups.c.security_group_id)
_PAIRS_OF = sa.select(t.address_pairs.c.port_id, t.address_pairs.c.ip_address,
                      t.address_pairs.c.mac_address).where(c.in_ids(t.address_pairs.c.port_id))
_OPTS_OF = sa.select(t.dhcp_options.c.port_id, t.dhcp_options.c.opt_name,
                     t.dhcp_options.c.opt_value, t.dhcp_options.c.ip_version
                     ).where(c.in_ids(t.dhcp_options.c.port_id))
# and the create path's
_INSERT_PORT = t.ports.insert()
_MAC_IN_USE = sa.select(t.ports.c.id).where(t.ports.c.network_id == sa.bindparam("network_id"),
                                            t.ports.c.mac_address == sa.bindparam("mac"))
_ADDRESSES_ON = sa.select(t.ip_allocations.c.ip_address).where(
    t.ip_allocations.c.subnet_id == sa.bindparam("subnet_id"))


def _filter_fixed_ips(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    # As upstream: values of one key are alternatives, different keys must all
    # hold (each on any of the port's addresses).
    wanted: dict[str, list[str]] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep:
            raise errors.InvalidInput(f"'{value}' is not of the form <key>=[value].")
        if key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise errors.BadRequest(f"Invalid fixed_ips filter '{value}': use "
                                    f"ip_address=, subnet_id= or ip_address_substr=")
        wanted.setdefault(key, []).append(text)
    col = t.ip_allocations.c
    conds = []
    if "ip_address" in wanted:
        conds.append(col.ip_address.in_([_normal_ip(v) for v in wanted["ip_address"]]))
    if "subnet_id" in wanted:
        conds.append(col.subnet_id.in_(wanted["subnet_id"]))
    if "ip_address_substr" in wanted:
        conds.append(sa.or_(*[col.ip_address.contains(v, autoescape=True)
                              for v in wanted["ip_address_substr"]]))
    return sa.and_(*[t.ports.c.id.in_(sa.select(col.port_id).where(cond))
                     for cond in conds])


def _filter_security_groups(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    psg = t.port_security_groups
    return t.ports.c.id.in_(sa.select(psg.c.port_id).where(
        psg.c.security_group_id.in_(values)))


def render(conn: Connection, ctx: Context, rows: Sequence[Row],
           fields: c.Fields = None) -> list[dict]:
    ids = [r._mapping["id"] for r in rows]
    # each list attribute is a table of its own: read only those shown
    want_ips, want_pairs, want_opts, want_groups, want_tags = (
        c.wants(fields, name) for name in ("fixed_ips", "allowed_address_pairs",
                                           "extra_dhcp_opts", "security_groups", "tags"))
    ips: dict[str, list[dict]] = {}
    pairs: dict[str, list[dict]] = {}
    opts: dict[str, list[dict]] = {}
    tags: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    for part in c.chunks(ids):
        if want_ips:
            for pid, sid, ip in conn.execute(_IPS_OF, {"ids": part}):
                ips.setdefault(pid, []).append({"subnet_id": sid, "ip_address": ip})
        if want_pairs:
            for pid, ip, mac in conn.execute(_PAIRS_OF, {"ids": part}):
                pairs.setdefault(pid, []).append({"ip_address": ip, "mac_address": mac})
        if want_opts:
            for pid, name, value, version in conn.execute(_OPTS_OF, {"ids": part}):
                opts.setdefault(pid, []).append(
                    {"opt_name": name, "opt_value": value, "ip_version": version})
        if want_groups:
            for pid, gid in conn.execute(_GROUPS_OF, {"ids": part}):
                groups.setdefault(pid, []).append(gid)
        if want_tags:
            tags.update(c.load_tags(conn, part))
    out = []
    admin = ctx.is_admin
    for r in rows:
        m = r._mapping  # faster than attribute access (see collection.standard_attrs)
        pid = m["id"]
        item = c.standard_attrs(r, tags.get(pid, []) if want_tags else None)
        item.update({
            "network_id": m["network_id"], "mac_address": m["mac_address"],
            "admin_state_up": m["admin_state_up"], "status": m["status"],
            "device_id": m["device_id"], "device_owner": m["device_owner"],
        })
        if want_ips:
            item["fixed_ips"] = _ordered_ips(ips.get(pid, []))
        item["port_security_enabled"] = m["port_security_enabled"]
        if want_groups:
            item["security_groups"] = groups.get(pid, [])
        item["anti_spoofing_enabled"] = m["anti_spoofing_enabled"]
        item["security_groups_enabled"] = m["security_groups_enabled"]
        if want_pairs:
            item["allowed_address_pairs"] = pairs.get(pid, [])
        if want_opts:
            item["extra_dhcp_opts"] = opts.get(pid, [])
        item["binding:vnic_type"] = m["binding_vnic_type"]
        if admin:
            item.update({
                "binding:host_id": m["binding_host_id"],
                "binding:profile": m["binding_profile"],
                "binding:vif_type": m["binding_vif_type"],
                "binding:vif_details": m["binding_vif_details"],
            })
        out.append(item)
    return out


class Ports:
    actions = c.NO_ACTIONS

    def __init__(self, settings: Settings, networks: c.Listing, subnets: c.Listing,
                 quotas: Quotas, security: PortSecurity, mechanism: MechanismDrivers,
                 guards: c.Guards = c.NO_GUARDS) -> None:
        self.settings = settings
        #: the networks and subnets ports are on (read through their listings: both
        #: services hold this one)
        self.networks = networks
        self.subnets = subnets
        self.quotas = quotas
        #: security groups and the port-security split
        self.security = security
        self.mechanism = mechanism
        self.guards = guards
        self.listing = c.Listing(
            PORT, t.ports, scope=scope, render=render, touched=_touched,
            columns={"binding:host_id": t.ports.c.binding_host_id,
                     "binding:vnic_type": t.ports.c.binding_vnic_type,
                     "binding:vif_type": t.ports.c.binding_vif_type},
            filters={"fixed_ips": _filter_fixed_ips,
                     "security_groups": _filter_security_groups})

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        return render(conn, ctx, rows, fields)

    def get_row(self, conn: Connection, ctx: Context, ident: str) -> Row:
        return self.listing.get_row(conn, ctx, ident)

    def get(self, conn: Connection, ctx: Context, ident: str, fields: c.Fields = None) -> dict:
        return self.listing.get(conn, ctx, ident, fields)

    # -- binding and the mechanism drivers -------------------------------------------

    def _binding(self, conn: Connection, port_id: str, host: str, network_id: str,
                 vnic_type: str = "normal", profile: dict | None = None) -> dict:
        """The port's binding columns for ``host``."""
        b = self.mechanism.bind(conn, port_id, host, network_id, vnic_type, profile)
        return {"binding_vif_type": b.vif_type, "binding_vif_details": b.vif_details}

    def _context(self, conn: Connection, port_id: str,
                 original: PortContext | None = None) -> PortContext:
        row = conn.execute(c.by_id(t.ports), {"ident": port_id}).first()
        assert row is not None
        network = network_context(conn, self.networks, row.network_id)
        return PortContext(freeze(render(conn, ADMIN, [row])[0]),
                           original.current if original is not None else None, network,
                           row.binding_host_id, original.host if original is not None else "")

    def _changed(self, conn: Connection, change: Change, port_id: str,
                 original: PortContext | None = None) -> None:
        """Tell the mechanism drivers (``original``: the port before this update)."""
        if self.mechanism.follow_changes:
            self.mechanism.changed(conn, change, self._context(conn, port_id, original))

    def _before(self, conn: Connection, port_id: str) -> PortContext | None:
        """The port as it is, for the drivers to compare an update with (if they follow)."""
        return self._context(conn, port_id) if self.mechanism.follow_changes else None

    def rebind_host(self, conn: Connection, host: str) -> list[str]:
        """Bind again the ports on ``host`` that failed to bind (its agent just came up);
        returns their ids."""
        rows = conn.execute(sa.select(t.ports).where(
            t.ports.c.binding_host_id == host,
            t.ports.c.binding_vif_type == BINDING_FAILED)).all()
        done = []
        for row in rows:
            values = self._binding(conn, row.id, host, row.network_id, row.binding_vnic_type,
                                   row.binding_profile)
            if values["binding_vif_type"] != BINDING_FAILED:
                original = self._before(conn, row.id)
                c.bump(conn, t.ports, row.id, values)
                self._changed(conn, "update_port", row.id, original)
                events.port(conn, row.id, row.network_id, host)
                done.append(row.id)
        return done

    def bind_host(self, conn: Connection, port_id: str, host: str) -> None:
        """Put a service's port (a router's) on ``host``: bound there, DOWN until that
        host's agent wires it."""
        row = conn.execute(c.by_id(t.ports), {"ident": port_id}).first()
        assert row is not None
        original = self._before(conn, port_id)
        values = {"binding_host_id": host, "status": "DOWN",
                  **self._binding(conn, port_id, host, row.network_id, row.binding_vnic_type,
                                  row.binding_profile)}
        c.bump(conn, t.ports, port_id, values)
        self._changed(conn, "update_port", port_id, original)
        events.port(conn, port_id, row.network_id, host)
        if row.binding_host_id and row.binding_host_id != host:
            events.port(conn, port_id, row.network_id, row.binding_host_id)

    # -- writes -------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_port")
        network = self.networks.get_row(conn, ctx, body["network_id"])
        sharing.check_usable_network(conn, ctx, network, "create_port")
        owner = policy.owner_for_create(ctx, body, "create_port")
        net_owner = ctx.is_admin or network.project_id == ctx.project_id
        if not net_owner:
            _check_net_owner_attrs(body, "create_port")
        # One writer per network at a time: address choice and the MAC check see
        # every committed port (a no-op on SQLite, whose writers are serial anyway).
        lock_rows(conn, t.networks, [network.id])
        mac = body.get("mac_address") or self._free_mac(conn, network.id)
        if "mac_address" in body:
            self._check_mac_free(conn, network.id, mac)
        port_security = body.get("port_security_enabled", network.port_security_enabled)
        # security groups, and the port-security split
        secured = self.security.for_create(conn, ctx, body, owner, port_security)
        port_security, anti_spoofing = secured.port_security, secured.anti_spoofing
        pairs = self._address_pairs(body.get("allowed_address_pairs", []), mac, anti_spoofing)
        _check_cloud_owner(ctx, body.get("device_owner", ""), "create_port")
        _check_device_id(conn, ctx, owner, body.get("device_owner", ""),
                         body.get("device_id", ""))
        # 1, not 0: upstream's port is changed once more (its binding) as it is made
        row = c.standard_row(owner, body, revision=1)
        host = body.get("binding:host_id") or ""
        row.update({
            "network_id": network.id, "mac_address": mac,
            "admin_state_up": body.get("admin_state_up", True), "status": "DOWN",
            "device_id": body.get("device_id", ""), "device_owner": body.get("device_owner", ""),
            "port_security_enabled": port_security, "binding_host_id": host,
            "binding_vnic_type": body.get("binding:vnic_type", "normal"),
            "binding_profile": body.get("binding:profile") or {},
            **self._binding(conn, row["id"], host, network.id,
                            body.get("binding:vnic_type", "normal"), body.get("binding:profile")),
            **secured.columns,
        })
        conn.execute(_INSERT_PORT, row)
        if secured.groups:
            self.security.bind(conn, row["id"], secured.groups)
        subnets = subnet_infos(conn, network.id)
        if "fixed_ips" in body:
            wanted = self._resolve_fixed_ips(conn, ctx, body["fixed_ips"], subnets, network.id,
                                             row["device_owner"])
            # SLAAC subnets give their address whatever was asked (as upstream)
            asked = {s.id for s, _ in wanted}
            if not is_router(row["device_owner"]):
                wanted += [(s, None) for s in subnets if s.auto_address and s.id not in asked]
            requests = _each(wanted)
        else:
            requests = self._default_fixed_ips(subnets, row["device_owner"])
        self._allocate(conn, row["id"], network.id, mac, requests)
        if pairs:  # a new port has nothing to replace
            self._write_pairs(conn, row["id"], pairs)
        opts = _merge_opts([], body.get("extra_dhcp_opts", []))
        if opts:
            self._write_dhcp_opts(conn, row["id"], opts)
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"port": 1})
        self._changed(conn, "create_port", row["id"])
        events.port(conn, row["id"], network.id, host)
        events.security_groups(conn, secured.groups)  # a new member
        return row["id"]

    def create_owned(self, conn: Connection, *, network_id: str, project_id: str,
                     device_owner: str, device_id: str, fixed_ips: list[dict] | None = None,
                     status: str = "DOWN") -> str:
        """A port another service makes for itself (a router's interface or gateway, a
        floating IP's address holder).

        No policy and no port quota apply: upstream's service plugins create these
        past the API too.  Port security is off, as upstream has it for ``network:``
        device owners.
        """
        lock_rows(conn, t.networks, [network_id])
        mac = self._free_mac(conn, network_id)
        row = c.standard_row(project_id, {}, revision=1)
        row.update({
            "network_id": network_id, "mac_address": mac, "admin_state_up": True,
            "status": status, "device_id": device_id, "device_owner": device_owner,
            "port_security_enabled": False, "binding_host_id": "",
            "binding_vnic_type": "normal", "binding_profile": {},
            "binding_vif_type": UNBOUND, "binding_vif_details": {},
        })
        conn.execute(_INSERT_PORT, row)
        subnets = subnet_infos(conn, network_id)
        if fixed_ips is None:
            requests = self._default_fixed_ips(subnets, device_owner)
        else:
            requests = _each(self._resolve_fixed_ips(conn, ADMIN, fixed_ips, subnets,
                                                     network_id, device_owner))
        self._allocate(conn, row["id"], network_id, mac, requests)
        self._changed(conn, "create_port", row["id"])
        events.port(conn, row["id"], network_id)  # no groups: port security is off
        return row["id"]

    def remove(self, conn: Connection, port_id: str) -> None:
        """Delete a port another service owns (a router's, a floating IP's, a network's
        DHCP port as the network goes), past the guards that keep such ports from the
        port API; its addresses and router_ports row go with it."""
        self._remove(conn, port_id)

    def _remove(self, conn: Connection, port_id: str) -> None:
        if self.mechanism.follow_changes:
            self.mechanism.changed(conn, "delete_port", self._context(conn, port_id))
        # read before the rows go: the key agents reconcile by, and the groups it leaves
        row = conn.execute(c.by_id(t.ports), {"ident": port_id}).first()
        assert row is not None
        events.port(conn, port_id, row.network_id, row.binding_host_id)
        events.security_groups(conn, conn.scalars(_GROUPS_OF_PORT, {"port_id": port_id}))
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == port_id))
        conn.execute(t.ports.delete().where(t.ports.c.id == port_id))

    # addresses a subnet change asks for (subnets.PortAddresses)

    def add_auto_addresses(self, conn: Connection, subnet: SubnetInfo) -> None:
        """A new SLAAC subnet gives every existing port on the network its address
        (routers' ports take theirs through the router)."""
        rows = conn.execute(sa.select(t.ports.c.id, t.ports.c.mac_address).where(
            t.ports.c.network_id == subnet.network_id,
            sa.not_(t.ports.c.device_owner.startswith("network:router")))).all()
        if rows:
            conn.execute(t.ip_allocations.insert(), [
                {"subnet_id": subnet.id, "ip_address": ipam.eui64(subnet.cidr, mac),
                 "port_id": pid, "network_id": subnet.network_id} for pid, mac in rows])
            _addresses_changed(conn, [pid for pid, _ in rows])

    @staticmethod
    def release_subnet(conn: Connection, subnet_id: str) -> None:
        holders = conn.scalars(sa.select(t.ip_allocations.c.port_id).distinct().where(
            t.ip_allocations.c.subnet_id == subnet_id)).all()
        conn.execute(t.ip_allocations.delete().where(t.ip_allocations.c.subnet_id == subnet_id))
        _addresses_changed(conn, sorted(holders))

    # MAC addresses

    @staticmethod
    def _check_mac_free(conn: Connection, network_id: str, mac: str,
                        except_port: str | None = None) -> None:
        stmt = sa.select(t.ports.c.id).where(t.ports.c.network_id == network_id,
                                             t.ports.c.mac_address == mac)
        if except_port:
            stmt = stmt.where(t.ports.c.id != except_port)
        if conn.scalar(stmt) is not None:
            raise errors.Conflict(f"Unable to complete operation for network {network_id}. "
                                  f"The mac address {mac} is in use.", type="MacAddressInUse")

    @staticmethod
    def _free_mac(conn: Connection, network_id: str) -> str:
        for _ in range(MAC_ATTEMPTS):
            mac = random_mac()
            if conn.scalar(_MAC_IN_USE, {"network_id": network_id, "mac": mac}) is None:
                return mac
        raise errors.Conflict("Unable to generate a unique mac address on network "
                              f"{network_id}.", type="MacAddressGenerationFailure")

    # fixed IPs

    def _resolve_fixed_ips(self, conn: Connection, ctx: Context, requested: list[dict],
                           subnets: list[SubnetInfo], network_id: str,
                           device_owner: str) -> list[tuple[SubnetInfo, str | None]]:
        """(subnet, address or None for "any") for each requested fixed IP."""
        if len(requested) > self.settings.max_fixed_ips_per_port:
            raise errors.BadRequest(f"Exceeded maximum amount of fixed ips per port "
                                    f"({self.settings.max_fixed_ips_per_port}).",
                                    type="InvalidInput")
        addresses = [f["ip_address"] for f in requested if "ip_address" in f]
        for ip in addresses:
            if addresses.count(ip) > 1:
                raise errors.BadRequest(f"Invalid input for fixed_ips. Reason: Duplicate IP "
                                        f"address '{ip}'.")
        if requested and not subnets:
            raise errors.InvalidInput("IP allocation requires subnets for network.")
        by_id = {s.id: s for s in subnets}
        out: list[tuple[SubnetInfo, str | None]] = []
        for spec in requested:
            sid, ip = spec.get("subnet_id"), spec.get("ip_address")
            if sid is None and ip is None:
                raise errors.InvalidInput("IP allocation requires subnet_id or ip_address.")
            if sid is not None:
                subnet = by_id.get(sid)
                if subnet is None:
                    # a subnet that does not exist (for the caller) is a 404, as upstream
                    self.subnets.get_row(conn, ctx, sid)
                    raise errors.InvalidInput(
                        f"Failed to create port on network {network_id}, because fixed_ips "
                        f"included invalid subnet {sid}.")
                if ip is not None and not _valid_on(subnet, ip):
                    raise errors.BadRequest(
                        f"IP address {ip} is not a valid IP for the specified subnet.",
                        type="InvalidIpForSubnet")
            else:
                matches = [s for s in subnets if _valid_on(s, ip)]
                if not matches:
                    raise errors.BadRequest(
                        f"IP address {ip} is not a valid IP for any of the subnets on the "
                        f"specified network.", type="InvalidIpForNetwork")
                subnet = matches[0]
            if ip is not None and subnet.auto_address and not is_router(device_owner):
                raise errors.BadRequest(
                    f"IPv6 address {ip} cannot be directly assigned to a port on subnet "
                    f"{subnet.id} as the subnet is configured for automatic addresses",
                    type="AllocationOnAutoAddressSubnet")
            out.append((subnet, ip))
        return out

    @staticmethod
    def _default_fixed_ips(subnets: list[SubnetInfo],
                           device_owner: str) -> list[AddressRequest]:
        """One address per IP version, from the first subnet of that version with one
        free (in the order the subnets were made), plus one on every SLAAC subnet: as
        upstream."""
        out: list[AddressRequest] = []
        v4 = tuple(s for s in subnets if s.ip_version == 4)
        v6 = tuple(s for s in subnets if s.ip_version == 6 and not s.auto_address)
        out.extend((group, None) for group in (v4, v6) if group)
        if not is_router(device_owner):
            out.extend(((s,), None) for s in subnets if s.auto_address)
        return out

    def _allocate(self, conn: Connection, port_id: str, network_id: str, mac: str,
                  wanted: list[AddressRequest]) -> None:
        """Insert ip_allocations for ``wanted``; choose addresses where none was asked."""
        rows = []
        explicit = [(group[0], ip) for group, ip in wanted if ip is not None]
        for subnet, ip in explicit:
            holder = conn.scalar(sa.select(t.ip_allocations.c.port_id).where(
                t.ip_allocations.c.subnet_id == subnet.id,
                t.ip_allocations.c.ip_address == ip))
            if holder is not None and holder != port_id:
                raise errors.Conflict(f"IP address {ip} already allocated in subnet {subnet.id}",
                                      type="IpAddressAlreadyAllocated")
            if holder is None:
                rows.append({"subnet_id": subnet.id, "ip_address": ip})
        chosen = {(r["subnet_id"], r["ip_address"]) for r in rows}
        for group, ip in wanted:
            if ip is not None:
                continue
            picked = _pick(conn, group, mac, chosen)
            if picked is None:  # the same words whether one subnet or several were full
                raise errors.Conflict(f"No more IP addresses available on network "
                                      f"{network_id}.", type="IpAddressGenerationFailure")
            subnet, address = picked
            if (subnet.id, address) not in chosen:
                rows.append({"subnet_id": subnet.id, "ip_address": address})
                chosen.add((subnet.id, address))
        if rows:
            conn.execute(t.ip_allocations.insert(), [
                {**r, "port_id": port_id, "network_id": network_id} for r in rows])

    # address pairs and DHCP options

    def _address_pairs(self, pairs: list[dict], mac: str, port_security: bool) -> list[dict]:
        # every pair is rules in the port's firewall: a cap, before anything else
        # looks at them (upstream's validator; CVE-2014-3555)
        cap = self.settings.max_allowed_address_pair
        if len(pairs) > cap:
            raise errors.BadRequest(f"The number of allowed address pair exceeds the "
                                    f"maximum {cap}.", type="AllowedAddressPairExhausted")
        if pairs and not port_security:
            raise pairs_need_port_security()
        out: list[dict] = []
        for pair in pairs:
            item = {"ip_address": pair["ip_address"], "mac_address": pair.get("mac_address", mac)}
            if item in out:
                raise errors.BadRequest("Request contains duplicate address pair: mac_address "
                                        f"{item['mac_address']} ip_address "
                                        f"{item['ip_address']}.",
                                        type="DuplicateAddressPairInRequest")
            out.append(item)
        return out

    @staticmethod
    def _write_pairs(conn: Connection, port_id: str, pairs: list[dict]) -> None:
        conn.execute(t.address_pairs.delete().where(t.address_pairs.c.port_id == port_id))
        if pairs:
            conn.execute(t.address_pairs.insert(), [{"port_id": port_id, **p} for p in pairs])

    @staticmethod
    def _write_dhcp_opts(conn: Connection, port_id: str, opts: list[dict]) -> None:
        conn.execute(t.dhcp_options.delete().where(t.dhcp_options.c.port_id == port_id))
        if opts:
            conn.execute(t.dhcp_options.insert(), [{"port_id": port_id, **o} for o in opts])

    # update and delete

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_port")
        row = self.listing.get_row(conn, ctx, ident)
        network = self.networks.get_row(conn, ADMIN, row.network_id)
        net_owner = ctx.is_admin or network.project_id == ctx.project_id
        # the network's owner sees others' ports on it, but only their owner changes them
        if not ctx.is_admin and row.project_id != ctx.project_id:
            raise errors.PolicyNotAuthorized("update_port")
        if not net_owner:
            _check_net_owner_attrs(body, "update_port")
        if not ctx.is_admin and "mac_address" in body:  # even unchanged, as upstream
            raise errors.PolicyNotAuthorized("update_port:mac_address")
        c.check_revision(row, if_match)
        if "device_owner" in body:
            _check_cloud_owner(ctx, body["device_owner"], "update_port")
        if "device_id" in body or "device_owner" in body:
            _check_device_id(conn, ctx, row.project_id,
                             body.get("device_owner", row.device_owner),
                             body.get("device_id", row.device_id))
        lock_rows(conn, t.networks, [row.network_id])
        self.guards.update(conn, ctx, row, body)
        original = self._before(conn, ident)
        values: dict = {}
        for attr, column in (("name", "name"), ("description", "description"),
                             ("admin_state_up", "admin_state_up"), ("device_id", "device_id"),
                             ("device_owner", "device_owner"),
                             ("binding:vnic_type", "binding_vnic_type")):
            if attr in body:
                values[column] = body[attr]
        if "binding:profile" in body:
            values["binding_profile"] = body["binding:profile"] or {}
        if "binding:host_id" in body:
            host = body["binding:host_id"] or ""
            values["binding_host_id"] = host
            if host != row.binding_host_id or row.binding_vif_type == BINDING_FAILED:
                values.update(self._binding(
                    conn, ident, host, row.network_id,
                    body.get("binding:vnic_type", row.binding_vnic_type),
                    values.get("binding_profile", row.binding_profile)))
            if host != row.binding_host_id:
                values["status"] = "DOWN"  # until the new host's agent wires it
        # to tell a change from a no-op (the row's own columns are compared below)
        before = render(conn, ctx, [row], RELATED)[0]
        mac = row.mac_address
        if "mac_address" in body and body["mac_address"] != mac:
            if row.binding_vif_type not in (UNBOUND, BINDING_FAILED):
                raise errors.Conflict(f"Port {ident} is bound; its MAC address cannot change.",
                                      type="PortBound")
            self._check_mac_free(conn, row.network_id, body["mac_address"], except_port=ident)
            mac = values["mac_address"] = body["mac_address"]
            self._renumber_auto_addresses(conn, ident, mac)
        port_security = body.get("port_security_enabled", row.port_security_enabled)
        if "port_security_enabled" in body:
            values["port_security_enabled"] = port_security
        # from here on: whether anti-spoofing is on, which address pairs need
        port_security = self.security.anti_spoofing_after(row, body)
        if "allowed_address_pairs" in body:
            pairs = self._address_pairs(body["allowed_address_pairs"] or [], mac, port_security)
            self._write_pairs(conn, ident, pairs)
        elif not port_security and conn.scalar(sa.select(t.address_pairs.c.port_id).where(
                t.address_pairs.c.port_id == ident).limit(1)):
            raise pairs_need_port_security()
        # after the pairs: upstream checks them first
        self.security.for_update(conn, ctx, row, body, values)
        if "extra_dhcp_opts" in body:
            current = [{"opt_name": r.opt_name, "opt_value": r.opt_value,
                        "ip_version": r.ip_version}
                       for r in conn.execute(sa.select(t.dhcp_options).where(
                           t.dhcp_options.c.port_id == ident))]
            self._write_dhcp_opts(conn, ident, _merge_opts(current, body["extra_dhcp_opts"]))
        if "fixed_ips" in body:
            self._replace_fixed_ips(conn, ctx, ident, row.network_id, mac, body["fixed_ips"],
                                    body.get("device_owner", row.device_owner))
        after = render(conn, ctx, [row], RELATED)[0]
        if c.changed(row, values) or any(before[k] != after[k] for k in RELATED):
            c.bump(conn, t.ports, ident, values)
            self._record_update(conn, row, values, before, after)
        self._changed(conn, "update_port", ident, original)

    @staticmethod
    def _record_update(conn: Connection, row: Row, values: dict, before: dict,
                       after: dict) -> None:
        """The events of a port update: the port's (on its old host too, if it moved),
        and its groups' whose members changed: those it joined or left, or all of its
        groups when its addresses changed."""
        host = values.get("binding_host_id", row.binding_host_id)
        events.port(conn, row.id, row.network_id, host)
        if row.binding_host_id and row.binding_host_id != host:
            events.port(conn, row.id, row.network_id, row.binding_host_id)
        was, now = set(before["security_groups"]), set(after["security_groups"])
        addresses = ("fixed_ips", "allowed_address_pairs")
        if any(before[k] != after[k] for k in addresses):
            events.security_groups(conn, was | now)
        else:
            events.security_groups(conn, was ^ now)

    @staticmethod
    def _renumber_auto_addresses(conn: Connection, port_id: str, mac: str) -> None:
        """A new MAC means new EUI-64 addresses on the port's SLAAC subnets."""
        rows = conn.execute(
            sa.select(t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address, t.subnets)
            .join(t.subnets, t.subnets.c.id == t.ip_allocations.c.subnet_id)
            .where(t.ip_allocations.c.port_id == port_id)).all()
        for r in rows:
            if ipam.auto_address(r.ip_version, r.ipv6_ra_mode, r.ipv6_address_mode):
                conn.execute(t.ip_allocations.update().where(
                    t.ip_allocations.c.subnet_id == r.subnet_id,
                    t.ip_allocations.c.ip_address == r.ip_address,
                ).values(ip_address=ipam.eui64(r.cidr, mac)))

    def _replace_fixed_ips(self, conn: Connection, ctx: Context, port_id: str,
                           network_id: str, mac: str, requested: list[dict],
                           device_owner: str) -> None:
        subnets = subnet_infos(conn, network_id)
        wanted = self._resolve_fixed_ips(conn, ctx, requested, subnets, network_id,
                                         device_owner)
        current = {(sid, ip) for sid, ip in conn.execute(
            sa.select(t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address)
            .where(t.ip_allocations.c.port_id == port_id))}
        # a port keeps its SLAAC addresses whatever fixed_ips says (as upstream)
        auto = {s.id for s in subnets if s.auto_address and not is_router(device_owner)}
        keep: set[tuple[str, str]] = {(sid, ip) for sid, ip in current if sid in auto}
        resolved: list[tuple[SubnetInfo, str | None]] = []
        for subnet, ip in wanted:
            if ip is None and subnet.id in auto and any(s == subnet.id for s, _ in keep):
                continue  # its SLAAC address, kept above
            if ip is None:
                # "an address on this subnet": keep one the port already has there
                mine = [a for s, a in current if s == subnet.id and (s, a) not in keep]
                if mine:
                    keep.add((subnet.id, mine[0]))
                    continue
            elif (subnet.id, ip) in current:
                keep.add((subnet.id, ip))
                continue
            resolved.append((subnet, ip))
        for sid, ip in current:
            if (sid, ip) not in keep:
                conn.execute(t.ip_allocations.delete().where(
                    t.ip_allocations.c.subnet_id == sid, t.ip_allocations.c.ip_address == ip))
        self._allocate(conn, port_id, network_id, mac, _each(resolved))

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_port")
        row = self.listing.get_row(conn, ctx, ident)
        if not ctx.is_admin:
            # the port's or the network's owner, but instances' ports are their service's
            # to remove (upstream's default policy)
            if row.device_owner.startswith(SERVICE_MANAGED_OWNERS):
                raise errors.PolicyNotAuthorized("delete_port")
            if row.project_id != ctx.project_id:
                network = self.networks.get_row(conn, ADMIN, row.network_id)
                if network.project_id != ctx.project_id:
                    raise errors.PolicyNotAuthorized("delete_port")
        self.guards.delete(conn, ctx, row)
        self._remove(conn, ident)


def _touched(conn: Connection, port_id: str) -> None:
    """A new revision of the port for what it holds elsewhere (its tags)."""
    row = conn.execute(sa.select(t.ports.c.network_id, t.ports.c.binding_host_id).where(
        t.ports.c.id == port_id)).first()
    if row is not None:
        events.port(conn, port_id, row.network_id, row.binding_host_id)


def _addresses_changed(conn: Connection, port_ids: Sequence[str]) -> None:
    """These ports' addresses changed (a subnet came or went): their events, and their
    groups' (whose members' addresses they are)."""
    if not port_ids:
        return
    groups: set[str] = set()
    for part in c.chunks(port_ids):
        for pid, network_id, host in conn.execute(
                sa.select(t.ports.c.id, t.ports.c.network_id, t.ports.c.binding_host_id)
                .where(t.ports.c.id.in_(part))):
            events.port(conn, pid, network_id, host)
        groups.update(conn.scalars(_GROUPS_OF_PORTS, {"ids": list(part)}))
    events.security_groups(conn, groups)


def _each(wanted: list[tuple[SubnetInfo, str | None]]) -> list[AddressRequest]:
    """Requests on one subnet each."""
    return [((subnet,), ip) for subnet, ip in wanted]


def _pick(conn: Connection, group: Sequence[SubnetInfo], mac: str,
          chosen: set[tuple[str, str]]) -> tuple[SubnetInfo, str] | None:
    """The first subnet of ``group`` with an address free (beyond ``chosen``), and the
    address; None when all are full."""
    for subnet in group:
        if subnet.auto_address:
            return subnet, ipam.eui64(subnet.cidr, mac)
        taken = set(conn.scalars(_ADDRESSES_ON, {"subnet_id": subnet.id}))
        taken.update(ip for sid, ip in chosen if sid == subnet.id)
        if subnet.gateway_ip:
            taken.add(subnet.gateway_ip)
        address = ipam.first_free(subnet.pools, taken)
        if address is not None:
            return subnet, address
    return None


def _check_net_owner_attrs(body: dict, action: str) -> None:
    """Refuse what only the network's owner (or an admin) may set on a port."""
    for attr in ("mac_address", "port_security_enabled", "anti_spoofing_enabled",
                 "security_groups_enabled", "allowed_address_pairs", "fixed_ips"):
        if attr not in body or (attr == "allowed_address_pairs" and not body[attr]):
            continue
        if attr == "fixed_ips":
            if action == "update_port":
                raise errors.PolicyNotAuthorized("update_port:fixed_ips")
            if any("ip_address" in f for f in body["fixed_ips"]):
                raise errors.PolicyNotAuthorized("create_port:fixed_ips:ip_address")
            continue
        if attr == "mac_address" and action == "update_port":
            continue  # admins only, checked by the caller
        raise errors.PolicyNotAuthorized(f"{action}:{attr}")
    if body.get("device_owner", "").startswith("network:"):
        raise errors.PolicyNotAuthorized(f"{action}:device_owner")


def _check_cloud_owner(ctx: Context, device_owner: str, action: str) -> None:
    """A DHCP port is the cloud's own: the server makes one per serving host, and the
    server and the agents know it by its owner.  A project's port renamed so (its
    network's owner may set other ``network:`` owners, as upstream) could be taken for
    the host's DHCP port and go unfiltered, or be completed and released by the server:
    only admins give a port this owner (a deliberate difference from upstream)."""
    if device_owner == DHCP_OWNER and not ctx.is_admin:
        raise errors.PolicyNotAuthorized(f"{action}:device_owner")


_ROUTER_OWNER = sa.select(t.routers.c.project_id).where(t.routers.c.id == sa.bindparam("id"))


def _check_device_id(conn: Connection, ctx: Context, port_owner: str, device_owner: str,
                     device_id: str) -> None:
    """A project's router port may not name another project's router as its device: it
    would pass for that router's port (upstream's rule, CVE-2014-0056, which checks the
    interface owners; Neutrino checks the gateway and SNAT owners too).  An id that is
    no router is any device's."""
    if ctx.is_admin or not device_id:
        return
    if not (is_router(device_owner) or device_owner == ROUTER_HA_INTERFACE):
        return
    router_owner = conn.scalar(_ROUTER_OWNER, {"id": device_id})
    if router_owner is not None and router_owner != port_owner:
        raise errors.Conflict(f"The following device_id {device_id} is not owned by your "
                              f"project or matches another project router.",
                              type="DeviceIDNotOwnedByTenant")


def _valid_on(subnet: SubnetInfo, ip: str) -> bool:
    """Whether ``ip`` may be a port's address on ``subnet`` (never an IPv4 subnet's
    network or broadcast address)."""
    addr = ipaddress.ip_address(ip)
    net = ipam.network(subnet.cidr)
    if addr not in net:
        return False
    return not (net.version == 4 and net.prefixlen < 31 and addr in ipam.reserved(net))


def _normal_ip(text: str) -> str:
    """The stored spelling of an address; text that is no address matches nothing."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _ordered_ips(ips: list[dict]) -> list[dict]:
    if len(ips) < 2:
        return ips
    return sorted(ips, key=lambda f: (ipaddress.ip_address(f["ip_address"]).version,
                                      f["subnet_id"]))


def _merge_opts(current: list[dict], changes: list[dict]) -> list[dict]:
    """Apply extra_dhcp_opts changes: a null value removes that option."""
    merged = {(o["opt_name"], o.get("ip_version") or 4): o for o in current}
    for change in changes:
        key = (change["opt_name"], change.get("ip_version") or 4)
        if change.get("opt_value") is None:
            merged.pop(key, None)
        else:
            merged[key] = {"opt_name": change["opt_name"], "opt_value": change["opt_value"],
                           "ip_version": key[1]}
    return list(merged.values())
