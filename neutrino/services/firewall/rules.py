"""Firewall rules: what a packet must match (protocol, addresses, ports, IP version) and
what then happens to it (allow, deny, reject)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.schema import firewall as fw
from neutrino.schema.resources import FIREWALL_RULE
from neutrino.services.core import collection as c
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.firewall.defaults import DefaultGroups
from neutrino.services.firewall.realise import Realisation
from neutrino.services.firewall.rows import MATCH, insert_rule

FR = t.firewall_rules
QUOTA = Counter("firewall_rule", FR)
_POLICIES_OF = sa.select(t.firewall_policy_rules.c.firewall_rule_id,
                         t.firewall_policy_rules.c.firewall_policy_id).where(
    c.in_ids(t.firewall_policy_rules.c.firewall_rule_id)).order_by(
    t.firewall_policy_rules.c.firewall_policy_id)


def shared_or_own(table: sa.Table) -> Callable[[Context], ColumnElement[bool] | None]:
    """The scope of a firewall object: its own project's and every shared one."""
    def scope(ctx: Context) -> ColumnElement[bool] | None:
        if ctx.is_admin:
            return None
        return sa.or_(table.c.project_id == ctx.project_id, table.c.shared.is_(True))
    return scope


def rule_not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"Firewall rule {ident} could not be found.",
                           type="FirewallRuleNotFound")


def rule_in_use(ident: str) -> errors.Conflict:
    return errors.InUse(f"Firewall rule {ident} is being used.", type="FirewallRuleInUse")


def _invalid(message: str, type_: str) -> errors.BadRequest:
    return errors.BadRequest(message, type=type_)


def check_rule(rule: dict) -> None:
    """Refuse a rule whose attributes (after a change: all of them) do not agree."""
    protocol = rule.get("protocol")
    has_ports = rule.get("source_port") is not None or rule.get("destination_port") is not None
    if has_ports and protocol is None:
        raise _invalid("Source/destination port requires a protocol.",
                       "FirewallRuleWithPortWithoutProtocolInvalid")
    if has_ports and protocol in ("icmp", "1", "58"):
        raise _invalid("Source, destination port are not allowed when protocol is set to "
                       "ICMP.", "FirewallRuleInvalidICMPParameter")
    if has_ports and protocol not in ("tcp", "udp", "6", "17", "33", "132", "136"):
        raise _invalid(f"Source, destination port are not allowed when protocol is set to "
                       f"{protocol}: only protocols with ports (tcp, udp, dccp, sctp, "
                       f"udplite) have them.", "FirewallRuleInvalidPortValue")
    for key in ("source_ip_address", "destination_ip_address"):
        address = rule.get(key)
        if address is not None and fw.address_version(address) != rule["ip_version"]:
            raise _invalid("Invalid input - IP addresses do not agree with IP Version.",
                           "FirewallIpAddressConflict")


class FirewallRules:
    table = FR
    actions = c.NO_ACTIONS

    def __init__(self, quotas: Quotas, defaults: DefaultGroups,
                 realisation: Realisation) -> None:
        self.quotas = quotas
        self.defaults = defaults
        self.realisation = realisation
        # a list makes the project's default firewall group first (upstream: on its
        # first FWaaS call of any kind)
        self.listing = c.Listing(FIREWALL_RULE, FR, scope=shared_or_own(FR),
                                 render=self.render, not_found=rule_not_found,
                                 prepare=defaults)

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        tags = c.load_tags(conn, ids) if c.wants(fields, "tags") else {}
        policies: dict[str, list[str]] = {}
        if c.wants(fields, "firewall_policy_id"):
            for part in c.chunks(ids):
                for rule_id, policy_id in conn.execute(_POLICIES_OF, {"ids": part}):
                    policies.setdefault(rule_id, []).append(policy_id)
        out = []
        for r in rows:
            m = r._mapping
            item = c.standard_attrs(r, tags.get(r.id, []))
            item.update({k: m[k] for k in MATCH})
            item["shared"] = m["shared"]
            item["firewall_policy_id"] = policies.get(r.id, [])
            out.append(item)
        return out

    def usable_rows(self, conn: Connection, ctx: Context, owner: str,
                    ids: Sequence[str]) -> dict[str, Row]:
        """The rules among ``ids`` a policy of ``owner`` may hold: its own and shared
        ones.  One the caller cannot see is a 404; another project's unshared one an
        admin names is a 409 (upstream's FirewallRuleConflict)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Row] = {}
        for part in c.chunks(wanted):
            stmt = sa.select(FR).where(FR.c.id.in_(part))
            scope = self.listing.scope(ctx)
            if scope is not None:
                stmt = stmt.where(scope)
            found.update({r.id: r for r in conn.execute(stmt)})
        for ident in wanted:
            row = found.get(ident)
            if row is None:
                raise rule_not_found(ident)
            if row.project_id != owner and not row.shared:
                raise errors.Conflict(
                    f"Operation cannot be performed since firewall rule {ident} is not "
                    f"shared and belongs to another project {row.project_id}.",
                    type="FirewallRuleConflict")
        return found

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_firewall_rule")
        owner = policy.owner_for_create(ctx, body, "create_firewall_rule")
        check_rule(body)
        self.defaults.ensure_default(conn, owner)  # the default group first, as upstream
        ident = insert_rule(conn, owner, body)
        self.quotas.check(conn, owner, {"firewall_rule": 1})
        return ident

    def policies_of(self, conn: Connection, ident: str) -> list[str]:
        return list(conn.scalars(sa.select(t.firewall_policy_rules.c.firewall_policy_id).where(
            t.firewall_policy_rules.c.firewall_rule_id == ident)))

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_firewall_rule")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_firewall_rule")
        c.check_revision(row, if_match)
        merged = {**{k: getattr(row, k) for k in MATCH}, **body}
        check_rule(merged)
        values = c.changed(row, {k: body[k] for k in (*MATCH, "name", "description", "shared")
                                 if k in body})
        if values.get("shared") is False:
            self._refuse_unshare(conn, row)
        held_by = self.policies_of(conn, ident)
        self.realisation.refuse_pending(conn, held_by)
        if values:
            c.bump(conn, FR, ident, values)
            for policy_id in held_by:  # what they hold changed: no longer audited
                c.bump(conn, t.firewall_policies, policy_id, {"audited": False})
            if set(values) & set(MATCH):
                self.realisation.policies_changed(conn, held_by)

    @staticmethod
    def _refuse_unshare(conn: Connection, row: Row) -> None:
        """A rule another project's policy holds stays shared (upstream's check)."""
        other = conn.scalar(sa.select(t.firewall_policies.c.id).select_from(
            t.firewall_policy_rules.join(t.firewall_policies)).where(
            t.firewall_policy_rules.c.firewall_rule_id == row.id,
            sa.or_(t.firewall_policies.c.project_id != row.project_id,
                   t.firewall_policies.c.shared.is_(True))).limit(1))
        if other is not None:
            raise rule_in_use(row.id)

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_firewall_rule")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_firewall_rule")
        if self.policies_of(conn, ident):
            raise rule_in_use(ident)
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(FR.delete().where(FR.c.id == ident))
