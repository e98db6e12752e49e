"""Firewall policies: ordered lists of rules (the first match decides), edited whole or
one rule at a time (``insert_rule``, ``remove_rule``); ``audited`` is the owner's mark
that the list was reviewed, reset by any change of it (as upstream)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.schema.kinds import BadValue, Uuid
from neutrino.schema.resources import FIREWALL_POLICY
from neutrino.services.core import collection as c
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.firewall.defaults import DEFAULT_POLICY_NAMES, DefaultGroups
from neutrino.services.firewall.realise import Realisation
from neutrino.services.firewall.rows import FPR, insert_policy, policy_rules, set_policy_rules
from neutrino.services.firewall.rules import FirewallRules, rule_not_found, shared_or_own

FP = t.firewall_policies
QUOTA = Counter("firewall_policy", FP)
UUID = Uuid()
_RULES_OF = sa.select(FPR.c.firewall_policy_id, FPR.c.firewall_rule_id).where(
    c.in_ids(FPR.c.firewall_policy_id)).order_by(FPR.c.firewall_policy_id, FPR.c.position)


def policy_not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"Firewall policy {ident} could not be found.",
                           type="FirewallPolicyNotFound")


def _holding(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    """Policies holding any of these rules."""
    return FP.c.id.in_(sa.select(FPR.c.firewall_policy_id).where(
        FPR.c.firewall_rule_id.in_(values)))


def _refuse_default_name(name: str | None) -> None:
    if name in DEFAULT_POLICY_NAMES:
        raise errors.Conflict(f"Operation cannot be performed since '{name}' is a reserved "
                              f"name for Firewall Policy.",
                              type="FirewallDefaultParameterExists")


def _rule_info_missing() -> errors.BadRequest:
    return errors.BadRequest("Missing rule info argument for insert/remove rule operation.",
                             type="FirewallRuleInfoMissing")


def _not_associated(rule_id: str, policy_id: str) -> errors.BadRequest:
    return errors.BadRequest(f"Firewall rule {rule_id} is not associated with firewall "
                             f"policy {policy_id}.", type="FirewallRuleNotAssociatedWithPolicy")


def _rule_id(body: Any, key: str, required: bool) -> str | None:
    """A rule id in an action's body; one that is no UUID names no rule (404)."""
    if not isinstance(body, dict) or (required and key not in body):
        raise _rule_info_missing()
    value = body.get(key)
    if value in (None, "") and not required:
        return None  # the CLI sends insert_before "" with insert_after (upstream: unset)
    try:
        return UUID(value)
    except BadValue:
        raise rule_not_found(str(value)[:255]) from None


class FirewallPolicies:
    table = FP

    def __init__(self, rules: FirewallRules, quotas: Quotas, defaults: DefaultGroups,
                 realisation: Realisation) -> None:
        self.rules = rules
        self.quotas = quotas
        self.defaults = defaults
        self.realisation = realisation
        self.listing = c.Listing(FIREWALL_POLICY, FP, scope=shared_or_own(FP),
                                 render=self.render, not_found=policy_not_found,
                                 filters={"firewall_rules": _holding}, prepare=defaults)

    @property
    def actions(self) -> Mapping[str, c.Action]:
        return MappingProxyType({"insert_rule": self.insert_rule,
                                 "remove_rule": self.remove_rule})

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        tags = c.load_tags(conn, ids) if c.wants(fields, "tags") else {}
        held: dict[str, list[str]] = {}
        if c.wants(fields, "firewall_rules"):
            for part in c.chunks(ids):
                for policy_id, rule_id in conn.execute(_RULES_OF, {"ids": part}):
                    held.setdefault(policy_id, []).append(rule_id)
        out = []
        for r in rows:
            item = c.standard_attrs(r, tags.get(r.id, []))
            item.update({"audited": r.audited, "shared": r.shared,
                         "firewall_rules": held.get(r.id, [])})
            out.append(item)
        return out

    def usable_rows(self, conn: Connection, ctx: Context, owner: str,
                    ids: Sequence[str | None]) -> dict[str, Row]:
        """The policies a group of ``owner`` may use: its own and shared ones (404 for
        what the caller cannot see; 409 for another project's unshared one)."""
        found = {}
        for ident in dict.fromkeys(i for i in ids if i is not None):
            row = self.listing.find_row(conn, ctx, ident)
            if row is None:
                raise policy_not_found(ident)
            if row.project_id != owner and not row.shared:
                # upstream's is a 404 too (the policy is not there for the project)
                raise errors.NotFound(
                    f"Operation cannot be performed since firewall policy {ident} for your "
                    f"project could not be found. Please confirm if the firewall policy "
                    f"exists and is shared.", type="FirewallPolicyConflict")
            found[ident] = row
        return found

    def _check_rules(self, conn: Connection, ctx: Context, owner: str, shared: bool,
                     ident: str, rule_ids: Sequence[str]) -> None:
        rows = self.rules.usable_rows(conn, ctx, owner, rule_ids)
        if shared:
            for rule_id in rule_ids:
                if not rows[rule_id].shared:
                    raise errors.NotFound(  # a 404, as upstream's
                        f"Operation cannot be performed since firewall policy {ident} could "
                        f"not find the firewall rule {rule_id}. Please confirm if the "
                        f"firewall rule exists and is shared.",
                        type="FirewallRuleSharingConflict")

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_firewall_policy")
        owner = policy.owner_for_create(ctx, body, "create_firewall_policy")
        _refuse_default_name(body.get("name"))
        self.defaults.ensure_default(conn, owner)
        self._check_rules(conn, ctx, owner, body["shared"], "(new)", body["firewall_rules"])
        ident = insert_policy(conn, owner, body)
        self.quotas.check(conn, owner, {"firewall_policy": 1})
        return ident

    def _writable(self, conn: Connection, ctx: Context, ident: str, action: str) -> Row:
        policy.check_write(ctx, action)
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, action)
        lock_rows(conn, FP, [ident])  # one edit of its rule list at a time
        return self.listing.get_row(conn, ctx, ident)  # as it is under the lock

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        row = self._writable(conn, ctx, ident, "update_firewall_policy")
        c.check_revision(row, if_match)
        if row.name in DEFAULT_POLICY_NAMES:
            raise errors.Conflict(f"Operation cannot be performed on default object "
                                  f"'{ident}' of type Firewall Policy.",
                                  type="FirewallDefaultObjectUpdateRestricted")
        _refuse_default_name(body.get("name"))
        self.realisation.refuse_pending(conn, [ident])
        values = c.changed(row, {k: body[k] for k in ("name", "description", "shared",
                                                      "audited") if k in body})
        shared = values.get("shared", row.shared)
        rules_changed = False
        if "firewall_rules" in body:
            rules_changed = body["firewall_rules"] != policy_rules(conn, ident)
            self._check_rules(conn, ctx, row.project_id, shared, ident,
                              body["firewall_rules"])
        elif values.get("shared"):
            current = policy_rules(conn, ident)
            unshared = [r.id for r in conn.execute(sa.select(t.firewall_rules.c.id).where(
                t.firewall_rules.c.id.in_(current), t.firewall_rules.c.shared.is_(False)))]
            if unshared:
                raise errors.Conflict(
                    f"Operation cannot be performed. Before sharing firewall policy "
                    f"{ident}, share associated firewall rule {sorted(unshared)[0]}.",
                    type="FirewallPolicySharingConflict")
        if values.get("shared") is False and self._used_elsewhere(conn, row):
            raise errors.InUse(f"Firewall policy {ident} is being used.",
                               type="FirewallPolicyInUse")
        if rules_changed:
            set_policy_rules(conn, ident, body["firewall_rules"])
        if body and "audited" not in body and row.audited:
            values["audited"] = False  # changed, so no longer audited (as upstream)
        if values or rules_changed:
            c.bump(conn, FP, ident, values)
        if rules_changed:
            self.realisation.policies_changed(conn, [ident])

    @staticmethod
    def _used_elsewhere(conn: Connection, row: Row) -> bool:
        """Whether another project's group uses the policy (it must stay shared)."""
        fg = t.firewall_groups
        return conn.scalar(sa.select(fg.c.id).where(
            sa.or_(fg.c.ingress_firewall_policy_id == row.id,
                   fg.c.egress_firewall_policy_id == row.id),
            fg.c.project_id != row.project_id).limit(1)) is not None

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        self._writable(conn, ctx, ident, "delete_firewall_policy")
        if self.in_use(conn, ident):
            raise errors.InUse(f"Firewall policy {ident} is being used.",
                               type="FirewallPolicyInUse")
        self.remove_unused(conn, ident)

    @staticmethod
    def in_use(conn: Connection, ident: str) -> bool:
        """Whether a group uses the policy, either way."""
        fg = t.firewall_groups
        return conn.scalar(sa.select(fg.c.id).where(sa.or_(
            fg.c.ingress_firewall_policy_id == ident,
            fg.c.egress_firewall_policy_id == ident)).limit(1)) is not None

    @staticmethod
    def remove_unused(conn: Connection, ident: str) -> None:
        """Remove a policy no group uses (its rules stay)."""
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(FP.delete().where(FP.c.id == ident))

    # -- the actions: one rule in or out ---------------------------------------------

    def insert_rule(self, conn: Connection, ctx: Context, ident: str, body: Any) -> dict:
        """Insert before ``insert_before``, else after ``insert_after``, else first."""
        row = self._writable(conn, ctx, ident, "insert_rule")
        self.realisation.refuse_pending(conn, [ident])
        rule_id = _rule_id(body, "firewall_rule_id", required=True)
        before = _rule_id(body, "insert_before", required=False)
        after = _rule_id(body, "insert_after", required=False)
        assert rule_id is not None
        rules = policy_rules(conn, ident)
        if rule_id in rules:
            raise errors.Conflict(
                f"Operation cannot be performed since firewall rule {rule_id} is already "
                f"associated with firewall policy {ident}.",
                type="FirewallRuleAlreadyAssociated")
        self._check_rules(conn, ctx, row.project_id, False, ident, [rule_id])
        position = 0
        for ref, offset in ((before, 0), (after, 1)):
            if ref is not None:
                if ref not in rules:
                    raise _not_associated(ref, ident)
                position = rules.index(ref) + offset
                break
        rules.insert(position, rule_id)
        return self._store(conn, ctx, ident, rules)

    def remove_rule(self, conn: Connection, ctx: Context, ident: str, body: Any) -> dict:
        self._writable(conn, ctx, ident, "remove_rule")
        self.realisation.refuse_pending(conn, [ident])
        rule_id = _rule_id(body, "firewall_rule_id", required=True)
        assert rule_id is not None
        rules = policy_rules(conn, ident)
        if rule_id not in rules:
            if self.rules.listing.find_row(conn, ctx, rule_id) is None:
                raise rule_not_found(rule_id)
            raise _not_associated(rule_id, ident)
        rules.remove(rule_id)
        return self._store(conn, ctx, ident, rules)

    def _store(self, conn: Connection, ctx: Context, ident: str, rules: list[str]) -> dict:
        set_policy_rules(conn, ident, rules)
        c.bump(conn, FP, ident, {"audited": False})
        self.realisation.policies_changed(conn, [ident])
        # upstream answers with the policy itself, not in an envelope
        return self.listing.get(conn, ctx, ident)
