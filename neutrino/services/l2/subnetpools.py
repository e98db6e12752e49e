"""Subnet pools: address space that subnets are carved from.

A pool holds prefixes of one IP version (stored merged, so 10.0.0.0/24 plus
10.0.1.0/24 is one 10.0.0.0/23) and the bounds of what may be allocated from
them.  A subnet names a pool (``subnetpool_id``, or ``use_default_subnetpool``)
and gets either the range it asks for, if that is free in the pool, or the
lowest free prefix of the requested length.  Which pool a subnet came from is
kept in ``subnet_pool_allocations``; a pool with allocations cannot be deleted
nor lose the prefixes they live in.  Allocations lock the pool row, so two
servers cannot hand out the same prefix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.schema.resources import SUBNETPOOL
from neutrino.services.core import collection as c
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2.ipam import IPNetwork

#: the address width of each IP version: the longest prefix
MAX_PREFIXLEN = {4: 32, 6: 128}
#: upstream's default shortest prefix a pool hands out
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
ALLOCATIONS = t.subnet_pool_allocations
#: no configured default: unlimited, as upstream
QUOTA = Counter("subnetpool", t.subnetpools)


def bad_subnet_request(reason: str) -> errors.BadRequest:
    """Upstream's wording for a subnet request that cannot be served as asked."""
    return errors.BadRequest(f"Bad subnets request: {reason}", type="BadRequest")


def allocation_error(reason: str, status: int = 409) -> errors.NeutronError:
    # upstream answers 500 here; it is the request (or the pool's fill), not the server
    err: errors.NeutronError = errors.Conflict(f"Failed to allocate subnet: {reason}",
                                               type="SubnetAllocationError")
    if status == 400:
        err = errors.BadRequest(err.message, type=err.type)
    return err


def merge(prefixes: Iterable[str]) -> list[IPNetwork]:
    """The prefixes as the fewest networks covering exactly the same addresses.

    Refuses a mix of IP versions (a pool has one).
    """
    nets = [ipaddress.ip_network(p) for p in prefixes]
    if len({n.version for n in nets}) > 1:
        raise errors.BadRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                                type="PrefixVersionMismatch")
    return sorted(ipaddress.collapse_addresses(nets),  # type: ignore[type-var]
                  key=lambda n: (n.network_address, n.prefixlen))


def covered(net: IPNetwork, prefixes: Sequence[IPNetwork]) -> bool:
    """Whether ``net`` lies inside one of the (merged) prefixes."""
    return any(net.version == p.version and net.subnet_of(p) for p in prefixes)  # type: ignore


def free_blocks(prefixes: Sequence[IPNetwork], used: Iterable[IPNetwork]) -> list[IPNetwork]:
    """The aligned blocks of the prefixes that no used range touches, lowest first."""
    free = list(prefixes)
    for u in used:
        nxt: list[IPNetwork] = []
        for block in free:
            if block.version != u.version or not block.overlaps(u):
                nxt.append(block)
            elif u.subnet_of(block) and u != block:  # type: ignore[arg-type]
                nxt.extend(block.address_exclude(u))  # type: ignore[arg-type]
            # else: the block lies inside the used range, nothing of it is free
        free = nxt
    return sorted(free, key=lambda n: (n.network_address, n.prefixlen))


def lowest_free(prefixes: Sequence[IPNetwork], used: Iterable[IPNetwork],
                prefixlen: int) -> IPNetwork | None:
    """The lowest free network of ``prefixlen`` in the prefixes, if any."""
    for block in free_blocks(prefixes, used):
        if block.prefixlen <= prefixlen:
            # free blocks are aligned, so the first piece of the size starts the block
            return ipaddress.ip_network(f"{block.network_address}/{prefixlen}")
    return None


def quota_units(version: int, prefixlen: int) -> int:
    """What a subnet costs against a pool's ``default_quota``: IPv4 addresses, IPv6 /64s."""
    if version == 4:
        return 2 ** (32 - prefixlen)
    return 2 ** max(0, 64 - prefixlen)


def check_bounds(version: int, default: int, minimum: int, maximum: int) -> None:
    """min <= default <= max <= the address width, in upstream's order of complaint."""
    def illegal(detail: str) -> errors.BadRequest:
        return errors.BadRequest(f"Illegal prefix bounds: {detail}.",
                                 type="IllegalSubnetPoolPrefixBounds")
    width = MAX_PREFIXLEN[version]
    if maximum > width:
        raise illegal(f"max_prefixlen={maximum}, ip_version_max={width}")
    if minimum > maximum:
        raise illegal(f"min_prefixlen={minimum}, max_prefixlen={maximum}")
    if default < minimum:
        raise illegal(f"default_prefixlen={default}, min_prefixlen={minimum}")
    if default > maximum:
        raise illegal(f"default_prefixlen={default}, max_prefixlen={maximum}")


@dataclass(frozen=True, slots=True)
class Allocation:
    """The range a subnet gets from a pool."""

    pool_id: str
    cidr: str


# built once: every subnet render asks which pool its subnets came from
_POOL_OF = sa.select(ALLOCATIONS.c.subnet_id, ALLOCATIONS.c.subnetpool_id).where(
    c.in_ids(ALLOCATIONS.c.subnet_id))


def pools_of(conn: Connection, subnet_ids: Sequence[str]) -> dict[str, str]:
    """subnet id -> the pool it was allocated from (subnets from no pool are absent)."""
    out: dict[str, str] = {}
    for part in c.chunks(subnet_ids):
        out.update((sid, pid) for sid, pid in conn.execute(_POOL_OF, {"ids": list(part)}))
    return out


def scope(ctx: Context) -> ColumnElement[bool] | None:
    """A project sees its own pools and the shared ones."""
    if ctx.is_admin:
        return None
    return sa.or_(t.subnetpools.c.project_id == ctx.project_id,
                  t.subnetpools.c.shared.is_(True))


def not_found(ident: str) -> errors.NotFound:
    # upstream's spelling: "Subnet pool <id> ...", SubnetPoolNotFound
    return errors.ResourceNotFound("subnet_pool", ident)


class SubnetPools:
    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas
        self.listing = c.Listing(SUBNETPOOL, t.subnetpools, scope=scope, render=self.render,
                                 not_found=not_found)
        self.actions: dict[str, c.Action] = {
            "add_prefixes": lambda conn, ctx, ident, body: self.change_prefixes(
                conn, ctx, ident, body, add=True),
            "remove_prefixes": lambda conn, ctx, ident, body: self.change_prefixes(
                conn, ctx, ident, body, add=False)}

    @staticmethod
    def prefixes(conn: Connection, ids: Sequence[str]) -> dict[str, list[IPNetwork]]:
        out: dict[str, list[IPNetwork]] = {}
        for part in c.chunks(ids):
            for pid, cidr in conn.execute(sa.select(
                    t.subnetpool_prefixes.c.subnetpool_id, t.subnetpool_prefixes.c.cidr)
                    .where(t.subnetpool_prefixes.c.subnetpool_id.in_(part))):
                out.setdefault(pid, []).append(ipaddress.ip_network(cidr))
        return {pid: sorted(nets, key=lambda n: (n.network_address, n.prefixlen))
                for pid, nets in out.items()}

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        prefixes = self.prefixes(conn, ids)
        tags: dict[str, list[str]] = {}
        for part in c.chunks(ids):
            tags.update(c.load_tags(conn, part))
        out = []
        for r in rows:
            item = c.standard_attrs(r, tags.get(r.id, []))
            m = r._mapping
            item.update({
                # strings, as upstream answers them (clients accept both)
                "default_prefixlen": str(m["default_prefixlen"]),
                "min_prefixlen": str(m["min_prefixlen"]),
                "max_prefixlen": str(m["max_prefixlen"]),
                "is_default": m["is_default"], "shared": m["shared"],
                "prefixes": [str(n) for n in prefixes.get(r.id, [])],
                "ip_version": m["ip_version"], "default_quota": m["default_quota"],
                "address_scope_id": m["address_scope_id"],
            })
            out.append(item)
        return out

    # -- writes -------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_subnetpool")
        owner = policy.owner_for_create(ctx, body, "create_subnetpool")
        if not body["prefixes"]:
            raise errors.BadRequest("Empty subnet pool prefix list.",
                                    type="EmptySubnetPoolPrefixList")
        nets = merge(body["prefixes"])
        version = nets[0].version
        minimum = body.get("min_prefixlen", DEFAULT_MIN_PREFIXLEN[version])
        maximum = body.get("max_prefixlen", MAX_PREFIXLEN[version])
        default = body.get("default_prefixlen", minimum)
        check_bounds(version, default, minimum, maximum)
        _check_address_scope(body.get("address_scope_id"))
        if body.get("is_default"):
            self._check_single_default(conn, version, None)
        row = c.standard_row(owner, body)
        row.update({
            "ip_version": version, "default_prefixlen": default, "min_prefixlen": minimum,
            "max_prefixlen": maximum, "shared": body.get("shared", False),
            "is_default": body.get("is_default", False),
            "default_quota": body.get("default_quota"), "address_scope_id": None,
        })
        conn.execute(t.subnetpools.insert().values(row))
        self._write_prefixes(conn, row["id"], nets)
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"subnetpool": 1})
        return row["id"]

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_subnetpool")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_subnetpool")
        c.check_revision(row, if_match)
        lock_rows(conn, t.subnetpools, [ident])
        values = {k: body[k] for k in ("name", "description", "default_prefixlen",
                                       "min_prefixlen", "max_prefixlen", "is_default",
                                       "default_quota") if k in body}
        check_bounds(row.ip_version, values.get("default_prefixlen", row.default_prefixlen),
                     values.get("min_prefixlen", row.min_prefixlen),
                     values.get("max_prefixlen", row.max_prefixlen))
        if "address_scope_id" in body:
            _check_address_scope(body["address_scope_id"])
        if values.get("is_default") and not row.is_default:
            self._check_single_default(conn, row.ip_version, ident)
        prefixes_changed = False
        if "prefixes" in body:
            current = self.prefixes(conn, [ident]).get(ident, [])
            new = self._same_version(row, merge(body["prefixes"]))
            if not all(covered(old, new) for old in current):
                raise errors.BadRequest("Illegal update to prefixes: Existing prefixes must be "
                                        "a subset of the new prefixes.",
                                        type="IllegalSubnetPoolPrefixUpdate")
            if new != current:
                self._write_prefixes(conn, ident, new)
                prefixes_changed = True
        values = c.changed(row, values)
        if values or prefixes_changed:
            c.bump(conn, t.subnetpools, ident, values)

    def change_prefixes(self, conn: Connection, ctx: Context, ident: str, body: object,
                        add: bool) -> dict[str, list[str]]:
        """``PUT .../add_prefixes`` and ``.../remove_prefixes`` (subnetpool-prefix-ops):
        the pool's prefixes after the change."""
        action = "add_prefixes" if add else "remove_prefixes"
        if not isinstance(body, dict) or set(body) != {"prefixes"} \
                or not isinstance(body["prefixes"], list) or not body["prefixes"]:
            raise errors.BadRequest("Request body contains invalid data: expected "
                                    '{"prefixes": [<cidr>, ...]}')
        requested = SUBNETPOOL.by_name["prefixes"].convert(body["prefixes"])
        policy.check_write(ctx, f"{action}_subnetpool")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, f"{action}_subnetpool")
        lock_rows(conn, t.subnetpools, [ident])
        current = self.prefixes(conn, [ident]).get(ident, [])
        changes = self._same_version(row, merge(requested))
        if add:
            new = merge(str(n) for n in [*current, *changes])
        else:
            used = self._allocated(conn, ident)
            if any(u.overlaps(n) for u in used for n in changes):
                raise errors.BadRequest("Illegal update to prefixes: One or more of the "
                                        "prefixes to be removed is in use by a subnet.",
                                        type="IllegalSubnetPoolPrefixUpdate")
            new = merge(str(n) for n in free_blocks(current, changes))
        if new != current:
            self._write_prefixes(conn, ident, new)
            c.bump(conn, t.subnetpools, ident)
        return {"prefixes": [str(n) for n in new]}

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_subnetpool")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_subnetpool")
        lock_rows(conn, t.subnetpools, [ident])
        if conn.scalar(sa.select(ALLOCATIONS.c.subnet_id).where(
                ALLOCATIONS.c.subnetpool_id == ident).limit(1)) is not None:
            # upstream's status: 400, not 409
            raise errors.BadRequest("Unable to delete subnet pool: Subnet pool has existing "
                                    "allocations.", type="SubnetPoolDeleteError")
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(t.subnetpool_prefixes.delete().where(
            t.subnetpool_prefixes.c.subnetpool_id == ident))
        conn.execute(t.subnetpools.delete().where(t.subnetpools.c.id == ident))

    # -- what subnets need --------------------------------------------------

    def pool_for(self, conn: Connection, ctx: Context, body: dict) -> Row | None:
        """The pool a new subnet asks for (by id, or the default one), if any."""
        use_default = body.get("use_default_subnetpool", False)
        pool_id = body.get("subnetpool_id")
        if use_default and pool_id is not None:
            raise bad_subnet_request("subnetpool_id and use_default_subnetpool cannot both be "
                                     "specified.")
        if pool_id is not None:
            return self.listing.get_row(conn, ctx, pool_id)
        if not use_default:
            return None
        version = body.get("ip_version")
        stmt = sa.select(t.subnetpools).where(t.subnetpools.c.is_default.is_(True),
                                              t.subnetpools.c.ip_version == version)
        visible = scope(ctx)
        if visible is not None:
            stmt = stmt.where(visible)
        row = conn.execute(stmt.limit(1)).first()
        if row is None:
            raise bad_subnet_request(f"No default subnetpool found for IPv{version}.")
        return row

    def allocate(self, conn: Connection, pool: Row, body: dict, owner: str) -> Allocation:
        """Choose the subnet's range in ``pool``: the one asked for or the lowest free one.

        Called with the pool visible to the caller; locks it until the transaction ends.
        """
        if body["ip_version"] != pool.ip_version:
            raise bad_subnet_request(f"Cannot allocate IPv{body['ip_version']} subnet from "
                                     f"IPv{pool.ip_version} subnet pool.")
        lock_rows(conn, t.subnetpools, [pool.id])
        # read again under the lock: bounds or quota may have changed since it was looked up
        pool = conn.execute(c.by_id(t.subnetpools), {"ident": pool.id}).first()
        if pool is None:
            raise errors.ResourceNotFound("subnet_pool", body.get("subnetpool_id") or "")
        requested = ipaddress.ip_network(body["cidr"]) if body.get("cidr") else None
        prefixlen = requested.prefixlen if requested is not None \
            else body.get("prefixlen", pool.default_prefixlen)
        if prefixlen < pool.min_prefixlen:
            raise errors.BadRequest(f"Unable to allocate subnet with prefix length {prefixlen}, "
                                    f"minimum allowed prefix is {pool.min_prefixlen}.",
                                    type="MinPrefixSubnetAllocationError")
        if prefixlen > pool.max_prefixlen:
            raise errors.BadRequest(f"Unable to allocate subnet with prefix length {prefixlen}, "
                                    f"maximum allowed prefix is {pool.max_prefixlen}.",
                                    type="MaxPrefixSubnetAllocationError")
        rows = conn.execute(sa.select(t.subnets.c.cidr, t.subnets.c.project_id)
                            .join(ALLOCATIONS, ALLOCATIONS.c.subnet_id == t.subnets.c.id)
                            .where(ALLOCATIONS.c.subnetpool_id == pool.id)).all()
        used = [ipaddress.ip_network(cidr) for cidr, _ in rows]
        if pool.default_quota is not None:
            mine = sum(quota_units(net.version, net.prefixlen)
                       for net, (_, project) in zip(used, rows, strict=True) if project == owner)
            if mine + quota_units(pool.ip_version, prefixlen) > pool.default_quota:
                raise errors.Conflict("Per-project subnet pool prefix quota exceeded.",
                                      type="SubnetPoolQuotaExceeded")
        prefixes = self.prefixes(conn, [pool.id]).get(pool.id, [])
        if requested is not None:
            if not covered(requested, prefixes):
                raise allocation_error("Cannot allocate requested subnet from the available "
                                       "set of prefixes.", status=400)
            if any(requested.overlaps(u) for u in used):  # type: ignore[arg-type]
                raise allocation_error("Cannot allocate requested subnet from the available "
                                       "set of prefixes.")
            return Allocation(pool.id, str(requested))
        found = lowest_free(prefixes, used, prefixlen)
        if found is None:
            raise allocation_error(f"Insufficient prefix space to allocate subnet size "
                                   f"/{prefixlen}.")
        return Allocation(pool.id, str(found))

    @staticmethod
    def check_affinity(conn: Connection, network_id: str, version: int,
                       pool_id: str | None) -> None:
        """All subnets of one IP version on a network come from one pool (or none)."""
        others = conn.execute(
            sa.select(ALLOCATIONS.c.subnetpool_id)
            .select_from(t.subnets.outerjoin(ALLOCATIONS,
                                             ALLOCATIONS.c.subnet_id == t.subnets.c.id))
            .where(t.subnets.c.network_id == network_id, t.subnets.c.ip_version == version)
        ).scalars().all()
        if any(other != pool_id for other in others):
            raise errors.BadRequest("Subnets hosted on the same network must be allocated "
                                    "from the same subnet pool.",
                                    type="NetworkSubnetPoolAffinityError")

    @staticmethod
    def record(conn: Connection, subnet_id: str, allocation: Allocation) -> None:
        conn.execute(ALLOCATIONS.insert().values(subnet_id=subnet_id,
                                                 subnetpool_id=allocation.pool_id))

    # -- helpers ------------------------------------------------------------

    def _check_single_default(self, conn: Connection, version: int,
                              ident: str | None) -> None:
        stmt = sa.select(t.subnetpools.c.id).where(t.subnetpools.c.is_default.is_(True),
                                                   t.subnetpools.c.ip_version == version)
        if ident is not None:
            stmt = stmt.where(t.subnetpools.c.id != ident)
        if conn.scalar(stmt.limit(1)) is not None:
            raise errors.InvalidInput("A default subnetpool for this IP family has already "
                                      "been set. Only one default may exist per IP family.")

    @staticmethod
    def _same_version(row: Row, nets: list[IPNetwork]) -> list[IPNetwork]:
        if any(n.version != row.ip_version for n in nets):
            raise errors.BadRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                                    type="PrefixVersionMismatch")
        return nets

    @staticmethod
    def _allocated(conn: Connection, ident: str) -> list[IPNetwork]:
        return [ipaddress.ip_network(cidr) for cidr in conn.scalars(
            sa.select(t.subnets.c.cidr).join(ALLOCATIONS,
                                             ALLOCATIONS.c.subnet_id == t.subnets.c.id)
            .where(ALLOCATIONS.c.subnetpool_id == ident))]

    @staticmethod
    def _write_prefixes(conn: Connection, ident: str, nets: Sequence[IPNetwork]) -> None:
        conn.execute(t.subnetpool_prefixes.delete().where(
            t.subnetpool_prefixes.c.subnetpool_id == ident))
        if nets:
            conn.execute(t.subnetpool_prefixes.insert(), [
                {"subnetpool_id": ident, "cidr": str(n)} for n in nets])


def _check_address_scope(scope_id: str | None) -> None:
    if scope_id is not None:  # there are no address scopes yet
        raise errors.NotFound(f"Address scope {scope_id} could not be found.",
                              type="AddressScopeNotFound")
