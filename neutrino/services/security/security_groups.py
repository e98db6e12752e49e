"""Security groups, their rules, and the admin-defined rules new groups start with.

A rule names its remote group once (``remote_group_id``); which ports are in
that group is looked up when the rule is compiled, so a rule is one row
whatever the size of its remote group.

Every project has a ``default`` group, made on first use (the first list or
create of groups or rules, the first port) from the templates marked
``used_in_default_sg``; other new groups get the templates marked
``used_in_non_default_sg``.  The templates are seeded with upstream's four
(migration 0005): ingress from the group itself and egress anywhere, IPv4 and
IPv6.

Every change of a group or of its rules records the group's event (agents refilter
the ports of the groups they hold); the port service records those of the groups
whose members change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.policy import sharing
from neutrino.schema import rules
from neutrino.schema.resources import (
    DEFAULT_SECURITY_GROUP_RULE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
)
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.core.quotas import Counter, Quotas

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"
#: a template's stand-in for the group it is copied into
PARENT = "PARENT"
#: what a rule is, for duplicate checks (besides the protocol, compared by number, and
#: the remote prefix, compared as a network)
RULE_KEY = ("direction", "ethertype", "port_range_min", "port_range_max", "remote_group_id")
#: the prefixes that mean "anywhere", the same as none
ANYWHERE = ("0.0.0.0/0", "::/0")

SGR = t.security_group_rules
QUOTAS = (Counter("security_group", t.security_groups), Counter("security_group_rule", SGR))
_RULES_OF = sa.select(SGR).where(c.in_ids(SGR.c.security_group_id)).order_by(
    SGR.c.created_at, SGR.c.id)
_DEFAULT_GROUP_OF = sa.select(t.default_security_groups.c.security_group_id).where(
    t.default_security_groups.c.project_id == sa.bindparam("project_id"))


def group_scope(ctx: Context) -> ColumnElement[bool] | None:
    """A project sees its own groups and those shared with it."""
    return None if ctx.is_admin else usable_by(ctx.project_id)


def usable_by(project_id: str) -> ColumnElement[bool]:
    """Groups a port of ``project_id`` may be in: its own and those shared with it."""
    return sa.or_(t.security_groups.c.project_id == project_id,
                  t.security_groups.c.id.in_(sharing.shared_security_group_ids(project_id)))


def rule_scope(ctx: Context) -> ColumnElement[bool] | None:
    """A rule is seen by its own project and by its group's owner (upstream's policy)."""
    if ctx.is_admin:
        return None
    return sa.or_(SGR.c.project_id == ctx.project_id,
                  SGR.c.security_group_id.in_(sa.select(t.security_groups.c.id).where(
                      t.security_groups.c.project_id == ctx.project_id)))


def group_not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"Security group {ident} does not exist", type="SecurityGroupNotFound")


def group_in_use(ident: str) -> errors.Conflict:
    return errors.InUse(f"Security Group {ident} in use.", type="SecurityGroupInUse")


def _invalid(message: str, type_: str) -> errors.BadRequest:
    return errors.BadRequest(message, type=type_)


def check_rule(rule: dict) -> dict:
    """Normalise and check one rule's match (for rules and templates alike).

    In upstream's order: IPv6 ICMP spelled one way, the full port range as none,
    then the port range, the remote prefix, the ethertype and the remote entities.
    """
    rule = dict(rule)
    ethertype, protocol = rule["ethertype"], rule.get("protocol")
    if ethertype == "IPv6" and protocol in ("icmp", "icmpv6", "1"):
        # the legacy spellings of ICMPv6, rewritten as upstream does
        protocol = rule["protocol"] = "58" if protocol == "1" else "ipv6-icmp"
    number = rule["protocol_number"] = rules.protocol_number(protocol)
    rule["normalized_cidr"] = rules.normalized_cidr(rule.get("remote_ip_prefix"))
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if (low, high) == (1, 65535):
        low = high = rule["port_range_min"] = rule["port_range_max"] = None
    if low is not None or high is not None:
        _check_ports(number, low, high)
    prefix = rule.get("remote_ip_prefix")
    if prefix is not None and f"IPv{rules.ip_prefix(prefix).version}" != ethertype:
        raise _invalid(f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                       "SecurityGroupRuleParameterConflict")
    if ethertype == "IPv4" and number in rules.IPV6_ONLY:
        raise _invalid(f"Invalid ethertype {ethertype} for protocol {protocol}.",
                       "SecurityGroupEthertypeConflictWithProtocol")
    remotes = ("remote_ip_prefix", "remote_group_id", "remote_address_group_id")
    if len([k for k in remotes if rule.get(k)]) > 1:
        raise _invalid("Only one of remote_ip_prefix or remote_group_id or "
                       "remote_address_group_id may be provided.",
                       "SecurityGroupMultipleRemoteEntites")
    group = rule.get("remote_address_group_id")
    if group:  # address groups are not implemented: none exists
        raise errors.NotFound(f"Address group {group} could not be found.",
                              type="AddressGroupNotFound")
    return rule


def _check_ports(protocol: int | None, low: int | None, high: int | None) -> None:
    if protocol is None:
        raise _invalid("Must also specify protocol if port range is given.",
                       "SecurityGroupProtocolRequiredWithPorts")
    if protocol in rules.PORT_NUMBERS:
        if low == 0 or high == 0:
            raise _invalid("Invalid value for port 0", "SecurityGroupInvalidPortValue")
        if low is None or high is None or low > high:
            raise _invalid("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                           "SecurityGroupInvalidPortRange")
    elif protocol in rules.ICMP_NUMBERS:
        for value, field, attr in ((low, "type", "port_range_min"),
                                   (high, "code", "port_range_max")):
            if value is not None and not 0 <= value <= 255:
                raise _invalid(f"Invalid value for ICMP {field} ({attr}) {value}. It must be "
                               f"0 to 255.", "SecurityGroupInvalidIcmpValue")
        if low is None:
            raise _invalid(f"ICMP code (port-range-max) {high} is provided but ICMP type "
                           f"(port-range-min) is missing.", "SecurityGroupMissingIcmpType")
    else:
        listed = ", ".join(p.upper() for p in rules.PORT_PROTOCOLS)
        raise _invalid(f"Ports cannot be specified for protocol {protocol}. Ports are only "
                       f"supported for {listed}.", "SecurityGroupInvalidProtocolForPort")


def _prefix_key(prefix: str | None) -> str | None:
    network = rules.normalized_cidr(prefix)
    return None if network in ANYWHERE else network


def _same_match(table: sa.Table, rule: dict, keys: Iterable[str] = RULE_KEY) \
        -> ColumnElement[bool]:
    """Rows that match ``rule`` on these keys."""
    return sa.and_(*[table.c[k].is_(None) if rule.get(k) is None else table.c[k] == rule[k]
                     for k in keys])


def _same_protocol(stored: str | None, rule: dict) -> bool:
    return rules.protocol_number(stored) == rule["protocol_number"]


def _same_network(column: sa.Column, network: str | None) -> ColumnElement[bool]:
    """Rows whose remote network is ``network`` (anywhere and none are the same)."""
    if network is None or network in ANYWHERE:
        return sa.or_(column.is_(None), column.in_(ANYWHERE))
    return column == network


def _rule_attrs(r: Row | dict) -> dict:
    m = r._mapping if isinstance(r, Row) else r
    return {"direction": m["direction"], "ethertype": m["ethertype"],
            "protocol": m["protocol"], "port_range_min": m["port_range_min"],
            "port_range_max": m["port_range_max"], "remote_ip_prefix": m["remote_ip_prefix"],
            "remote_group_id": m["remote_group_id"],
            "remote_address_group_id": m.get("remote_address_group_id")}


def _template_not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"Default Security Group rule {ident} does not exist",
                           type="DefaultSecurityGroupRuleNotFound")


class DefaultRules:
    """``/v2.0/default-security-group-rules``: what new groups start with (admins write)."""

    table = t.default_security_group_rules
    actions = c.NO_ACTIONS

    def __init__(self) -> None:
        # every project may read them (upstream: any reader); they belong to no project
        self.listing = c.Listing(DEFAULT_SECURITY_GROUP_RULE, self.table,
                                 scope=policy.everyone, render=self.render,
                                 not_found=_template_not_found)

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        return [{"id": r.id, **_rule_attrs(r), "description": r.description,
                 "used_in_default_sg": r.used_in_default_sg,
                 "used_in_non_default_sg": r.used_in_non_default_sg} for r in rows]

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("create_default_security_group_rule")
        remote = body.get("remote_group_id")
        if remote is not None and remote != PARENT:
            # a template naming one group would outlive it and break every new group
            raise errors.InvalidInput(f"remote_group_id of a default rule must be "
                                      f"'{PARENT}' (the group it is copied into) or null, "
                                      f"not '{remote}'.")
        rule = check_rule(body)
        for flag in ("used_in_default_sg", "used_in_non_default_sg"):
            if not rule[flag]:
                continue
            for other in conn.execute(sa.select(self.table).where(
                    _same_match(self.table, rule), self.table.c[flag].is_(True))):
                if _same_protocol(other.protocol, rule) and _prefix_key(
                        other.remote_ip_prefix) == _prefix_key(rule["remote_ip_prefix"]):
                    raise errors.InUse(f"Default Security group rule already exists. Rule id "
                                       f"is {other.id}.", type="DefaultSecurityGroupRuleExists")
        ident = c.new_id()
        conn.execute(self.table.insert().values(
            id=ident, description=rule["description"], **_rule_attrs(rule),
            used_in_default_sg=rule["used_in_default_sg"],
            used_in_non_default_sg=rule["used_in_non_default_sg"]))
        return ident

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        # every attribute is read-only (the schema refuses them); an empty body is a no-op
        self.listing.get_row(conn, ctx, ident)
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("update_default_security_group_rule")

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        self.listing.get_row(conn, ctx, ident)
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("delete_default_security_group_rule")
        conn.execute(self.table.delete().where(self.table.c.id == ident))

    def for_group(self, conn: Connection, default: bool) -> list[Row]:
        flag = self.table.c.used_in_default_sg if default else self.table.c.used_in_non_default_sg
        return conn.execute(sa.select(self.table).where(flag.is_(True))
                            .order_by(self.table.c.id)).all()


def _filter_shared(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    """``shared`` means shared with the caller."""
    wanted = {SECURITY_GROUP.by_name["shared"].convert_query(v) for v in values}
    shared = t.security_groups.c.id.in_(sharing.shared_security_group_ids(ctx.project_id))
    if wanted == {True}:
        return shared
    if wanted == {False}:
        return sa.not_(shared)
    return sa.true()


class SecurityGroups:
    table = t.security_groups
    actions = c.NO_ACTIONS

    def __init__(self, quotas: Quotas, templates: DefaultRules) -> None:
        self.quotas = quotas
        self.templates = templates
        # a list makes the project's default group first (prepare_list)
        self.listing = c.Listing(SECURITY_GROUP, self.table, scope=group_scope,
                                 touched=lambda conn, ident: events.security_groups(
                                     conn, [ident]),
                                 render=self.render, filters={"shared": _filter_shared},
                                 not_found=group_not_found, prepare=self)

    def usable_rows(self, conn: Connection, ctx: Context, project_id: str,
                    ids: Iterable[str]) -> dict[str, Row]:
        """The groups among ``ids`` a port or rule of ``project_id`` may use: the
        project's own and those shared with it; any for admins.  Missing ones -> 404."""
        wanted = list(dict.fromkeys(ids))
        stmt = sa.select(self.table).where(self.table.c.id.in_(wanted))
        if not ctx.is_admin:
            stmt = stmt.where(usable_by(project_id))
        found = {r.id: r for r in conn.execute(stmt)}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise group_not_found(", ".join(missing))
        return found

    # -- the default group ----------------------------------------------------

    def _list_project(self, ctx: Context, q: c.ListQuery) -> str | None:
        """Whose default group a list ensures: the filtered project (admins) or the
        caller's own, as upstream."""
        wanted = q.filters.get("project_id") or q.filters.get("tenant_id")
        project = wanted[0] if wanted else ctx.project_id
        if project != ctx.project_id and not ctx.is_admin:
            return None
        return project

    def list_needs(self, conn: Connection, ctx: Context, q: c.ListQuery) -> bool:
        project = self._list_project(ctx, q)
        return project is not None and self.default_of(conn, project) is None

    def prepare_list(self, conn: Connection, ctx: Context, q: c.ListQuery) -> None:
        project = self._list_project(ctx, q)
        if project is not None:
            self.ensure_default(conn, project)

    @staticmethod
    def default_of(conn: Connection, project_id: str) -> str | None:
        return conn.scalar(_DEFAULT_GROUP_OF, {"project_id": project_id})

    def ensure_default(self, conn: Connection, project_id: str) -> str:
        """The project's default group, made now if it has none.

        Two transactions making it at once collide on the project's row in
        ``default_security_groups``; the loser is retried and finds the winner's.
        """
        existing = self.default_of(conn, project_id)
        if existing is not None:
            return existing
        row = c.standard_row(project_id, {"name": DEFAULT_NAME,
                                          "description": DEFAULT_DESCRIPTION})
        conn.execute(self.table.insert().values(**row, stateful=True))
        conn.execute(t.default_security_groups.insert().values(
            project_id=project_id, security_group_id=row["id"]))
        self._copy_templates(conn, row["id"], project_id, default=True)
        events.security_groups(conn, [row["id"]])
        return row["id"]

    def _copy_templates(self, conn: Connection, group_id: str, project_id: str,
                        default: bool) -> int:
        stamp = c.now()
        made = [{"id": c.new_id(), "project_id": project_id, "description": "",
                 "created_at": stamp, "updated_at": stamp, "revision_number": 0,
                 "security_group_id": group_id, **_rule_attrs(tpl),
                 "protocol_number": rules.protocol_number(tpl.protocol),
                 "normalized_cidr": rules.normalized_cidr(tpl.remote_ip_prefix),
                 "remote_group_id": group_id if tpl.remote_group_id == PARENT
                 else tpl.remote_group_id}
                for tpl in self.templates.for_group(conn, default)]
        if made:
            conn.execute(SGR.insert(), made)
        return len(made)

    # -- reads ----------------------------------------------------------------

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        tags: dict[str, list[str]] = {}
        shared: set[str] = set()
        defaults: set[str] = set()
        group_rules: dict[str, list[Row]] = {}
        for part in c.chunks(ids):
            tags.update(c.load_tags(conn, part))
            shared.update(conn.scalars(sharing.shared_security_group_ids(ctx.project_id).where(
                t.securitygroup_rbacs.c.object_id.in_(part))))
            defaults.update(conn.scalars(sa.select(
                t.default_security_groups.c.security_group_id).where(
                t.default_security_groups.c.security_group_id.in_(part))))
            for r in conn.execute(_RULES_OF, {"ids": part}):
                group_rules.setdefault(r.security_group_id, []).append(r)
        rule_rows = [r for rows_ in group_rules.values() for r in rows_]
        rendered = {d["id"]: d for d in render_rules(conn, rule_rows, defaults)}
        out = []
        for r in rows:
            item = c.standard_attrs(r, tags.get(r.id, []))
            item.update({"stateful": r.stateful, "shared": r.id in shared,
                         "security_group_rules": [rendered[x.id]
                                                  for x in group_rules.get(r.id, [])]})
            out.append(item)
        return out

    # -- writes ---------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_security_group")
        owner = policy.owner_for_create(ctx, body, "create_security_group")
        _refuse_default_name(body.get("name", ""))
        self.ensure_default(conn, owner)  # as upstream: the default comes first
        row = c.standard_row(owner, body)
        conn.execute(self.table.insert().values(**row, stateful=body.get("stateful", True)))
        made = self._copy_templates(conn, row["id"], owner, default=False)
        if made:
            # upstream's group is changed once per rule batch as it is made
            c.bump(conn, self.table, row["id"])
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"security_group": 1, "security_group_rule": made})
        events.security_groups(conn, [row["id"]])
        return row["id"]

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_security_group")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_security_group")
        c.check_revision(row, if_match)
        if "name" in body:
            if self.is_default(conn, ident):
                raise errors.InUse("Updating default security group not allowed.",
                                   type="SecurityGroupCannotUpdateDefault")
            _refuse_default_name(body["name"])
        values = c.changed(row, {k: body[k] for k in ("name", "description", "stateful")
                                 if k in body})
        if "stateful" in values and conn.scalar(sa.select(
                t.port_security_groups.c.port_id).where(
                t.port_security_groups.c.security_group_id == ident).limit(1)):
            raise group_in_use(ident)
        if values:
            c.bump(conn, self.table, ident, values)
            events.security_groups(conn, [ident])

    def changed(self, conn: Connection, ident: str) -> None:
        """What the group holds changed (a rule, an RBAC policy on it): a new revision,
        and its event."""
        self.listing.touch(conn, ident)

    @staticmethod
    def is_default(conn: Connection, ident: str) -> bool:
        return conn.scalar(sa.select(t.default_security_groups.c.project_id).where(
            t.default_security_groups.c.security_group_id == ident)) is not None

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_security_group")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_security_group")
        lock_rows(conn, self.table, [ident])
        if conn.scalar(sa.select(t.port_security_groups.c.port_id).where(
                t.port_security_groups.c.security_group_id == ident).limit(1)):
            raise group_in_use(ident)
        if not ctx.is_admin and self.is_default(conn, ident):
            # admins may (upstream's clean-up of a deleted project); a new one comes with
            # the project's next use
            raise errors.InUse("Insufficient rights for removing default security group.",
                               type="SecurityGroupCannotRemoveDefault")
        # rules of this group and rules elsewhere naming it as their remote group go with
        # it (the foreign keys cascade); their tags and the other groups' revisions too
        gone = conn.execute(sa.select(SGR.c.id, SGR.c.security_group_id).where(
            sa.or_(SGR.c.security_group_id == ident, SGR.c.remote_group_id == ident))).all()
        rule_ids = [r.id for r in gone]
        for part in c.chunks(rule_ids):
            conn.execute(t.tags.delete().where(t.tags.c.resource_id.in_(part)))
        conn.execute(SGR.delete().where(SGR.c.remote_group_id == ident))
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(self.table.delete().where(self.table.c.id == ident))
        for other in sorted({r.security_group_id for r in gone} - {ident}):
            c.bump(conn, self.table, other)
        events.security_groups(conn, {ident} | {r.security_group_id for r in gone})


def _refuse_default_name(name: str) -> None:
    if name.lower() == DEFAULT_NAME:
        # every project has exactly one, made for it
        raise errors.InUse("Default security group already exists.",
                           type="SecurityGroupDefaultAlreadyExists")


def render_rules(conn: Connection, rows: Sequence[Row], default_groups: set[str] | None = None,
                 tags: dict[str, list[str]] | None = None) -> list[dict]:
    """Rules as the API shows them; ``default_groups`` (ids) saves a lookup if known."""
    ids = [r.id for r in rows]
    if tags is None:
        tags = {}
        for part in c.chunks(ids):
            tags.update(c.load_tags(conn, part))
    if default_groups is None:
        groups = list({r.security_group_id for r in rows})
        default_groups = set()
        for part in c.chunks(groups):
            default_groups.update(conn.scalars(sa.select(
                t.default_security_groups.c.security_group_id).where(
                t.default_security_groups.c.security_group_id.in_(part))))
    out = []
    for r in rows:
        m = r._mapping
        out.append({
            "id": m["id"], "project_id": m["project_id"], "tenant_id": m["project_id"],
            "security_group_id": m["security_group_id"], **_rule_attrs(r),
            "normalized_cidr": m["normalized_cidr"],
            "belongs_to_default_sg": m["security_group_id"] in default_groups,
            "description": m["description"], "tags": tags.get(m["id"], []),
            "created_at": m["created_at"], "updated_at": m["updated_at"],
            "revision_number": m["revision_number"],
        })
    return out


def _filter_belongs_to_default(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    wanted = {SECURITY_GROUP_RULE.by_name["belongs_to_default_sg"].convert_query(v)
              for v in values}
    is_default = SGR.c.security_group_id.in_(
        sa.select(t.default_security_groups.c.security_group_id))
    if wanted == {True}:
        return is_default
    if wanted == {False}:
        return sa.not_(is_default)
    return sa.true()


def _filter_protocol(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    # by what the protocol means: protocol=6 finds the rules spelled "tcp" too
    numbers, anything = [], False
    for v in values:
        try:
            number = rules.protocol_number(rules.canonical_protocol(v))
        except errors.BadRequest:
            continue  # matches nothing
        if number is None:
            anything = True
        else:
            numbers.append(number)
    return sa.or_(SGR.c.protocol_number.in_(numbers),
                  SGR.c.protocol_number.is_(None) if anything else sa.false())


def _rule_not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"Security group rule {ident} does not exist",
                           type="SecurityGroupRuleNotFound")


def _render_rules(conn: Connection, ctx: Context, rows: Sequence[Row],
                  fields: c.Fields = None) -> list[dict]:
    return render_rules(conn, rows)


class SecurityGroupRules:
    actions = c.NO_ACTIONS

    def __init__(self, groups: SecurityGroups, quotas: Quotas) -> None:
        self.groups = groups
        self.quotas = quotas
        # upstream makes the caller's default group on rule lists too
        self.listing = c.Listing(
            SECURITY_GROUP_RULE, SGR, scope=rule_scope, render=_render_rules,
            filters={"belongs_to_default_sg": _filter_belongs_to_default,
                     "protocol": _filter_protocol},
            not_found=_rule_not_found, prepare=groups)

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_security_group_rule")
        owner = policy.owner_for_create(ctx, body, "create_security_group_rule")
        group_id = body["security_group_id"]
        group = self.groups.usable_rows(conn, ctx, owner, [group_id])[group_id]
        if not ctx.is_admin and group.project_id != ctx.project_id:
            # a group shared with the project is used, not changed, by it
            raise errors.PolicyNotAuthorized("create_security_group_rule")
        rule = check_rule(body)
        if rule.get("remote_group_id"):
            self.groups.usable_rows(conn, ctx, owner, [rule["remote_group_id"]])
        lock_rows(conn, t.security_groups, [group_id])
        self._refuse_duplicate(conn, group_id, rule)
        row = {k: v for k, v in c.standard_row(owner, body).items() if k != "name"}
        conn.execute(SGR.insert().values(**row, security_group_id=group_id,
                                         **_rule_attrs(rule),
                                         protocol_number=rule["protocol_number"],
                                         normalized_cidr=rule["normalized_cidr"]))
        self.groups.changed(conn, group_id)
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"security_group_rule": 1})
        return row["id"]

    @staticmethod
    def _refuse_duplicate(conn: Connection, group_id: str, rule: dict) -> None:
        # one index lookup (ix_security_group_rules_match), however big the group
        other = conn.scalar(sa.select(SGR.c.id).where(
            SGR.c.security_group_id == group_id,
            _same_match(SGR, rule, (*RULE_KEY, "protocol_number")),
            _same_network(SGR.c.normalized_cidr, rule["normalized_cidr"])).limit(1))
        if other is not None:
            raise errors.InUse(f"Security group rule already exists. Rule id is {other}.",
                               type="SecurityGroupRuleExists")

    def _check_may_change(self, conn: Connection, ctx: Context, row: Row, action: str) -> None:
        """The rule's project or its group's owner (upstream: the group's owner)."""
        if ctx.is_admin or row.project_id == ctx.project_id:
            return
        owner = conn.scalar(sa.select(t.security_groups.c.project_id).where(
            t.security_groups.c.id == row.security_group_id))
        if owner != ctx.project_id:
            raise errors.PolicyNotAuthorized(action)

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_security_group_rule")
        row = self.listing.get_row(conn, ctx, ident)
        self._check_may_change(conn, ctx, row, "update_security_group_rule")
        c.check_revision(row, if_match)
        values = c.changed(row, {k: body[k] for k in ("description",) if k in body})
        if values:
            c.bump(conn, SGR, ident, values)
            events.security_groups(conn, [row.security_group_id])

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_security_group_rule")
        row = self.listing.get_row(conn, ctx, ident)
        self._check_may_change(conn, ctx, row, "delete_security_group_rule")
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(SGR.delete().where(SGR.c.id == ident))
        self.groups.changed(conn, row.security_group_id)

