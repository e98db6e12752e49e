"""What protects a port: its security groups, and the two halves of port security.

Upstream has one switch, ``port_security_enabled``: on, a port may only send
from its own addresses (anti-spoofing) and its security groups filter its
traffic; off, neither.  Neutrino keeps that switch with upstream's rules for
clients that know only it, and adds (extension ``port-security-split``) one
override per half:

- ``anti_spoofing_enabled``: the port may only send from its MAC and addresses
  (fixed IPs and allowed address pairs);
- ``security_groups_enabled``: the port's security groups filter its traffic.

Each is ``true``, ``false`` or ``null``; ``null`` (the default) follows
``port_security_enabled``.  The rules, whichever attributes a request uses:

- security groups need filtering on (else 400
  ``PortSecurityAndIPRequiredForSecurityGroups`` when a request names groups,
  409 ``PortSecurityPortHasSecurityGroup`` when groups stay on a port whose
  filtering a request turns off);
- allowed address pairs need anti-spoofing on (409
  ``AddressPairAndPortSecurityRequired``);
- a port gets its project's default group when filtering is on and the request
  names no groups; ``network:*`` ports (DHCP, routers) get neither half, as
  upstream.

See docs/port-security.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from neutrino import errors
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.services.security.security_groups import SecurityGroups

ANTI_SPOOFING = "anti_spoofing_enabled"
FILTERING = "security_groups_enabled"
#: device owners whose ports the cloud itself runs: trusted, as upstream
TRUSTED_PREFIX = "network:"
PSG = t.port_security_groups
_GROUPS_OF = sa.select(PSG.c.security_group_id).where(PSG.c.port_id == sa.bindparam("port"))


def groups_need_filtering(on_port: bool) -> errors.NeutronError:
    if on_port:
        return errors.InUse("Port has security group associated. Cannot disable port "
                            "security or IP address until security group is removed.",
                            type="PortSecurityPortHasSecurityGroup")
    return errors.InvalidInput("Port security must be enabled and port must have an IP "
                               "address in order to use security groups.",
                               type="PortSecurityAndIPRequiredForSecurityGroups")


def effective(override: bool | None, port_security: bool) -> bool:
    return port_security if override is None else override


@dataclass(frozen=True)
class Secured:
    """A new port's protection: its column values and the groups to bind."""

    port_security: bool
    anti_spoofing: bool  # effective
    columns: dict
    groups: list[str]


class PortSecurity:
    def __init__(self, groups: SecurityGroups) -> None:
        self.groups = groups

    def for_create(self, conn: Connection, ctx: Context, body: dict, owner: str,
                   port_security: bool) -> Secured:
        trusted = body.get("device_owner", "").startswith(TRUSTED_PREFIX)
        if trusted:
            port_security = False  # upstream's DHCP and router ports are never filtered
        anti, filtering = body.get(ANTI_SPOOFING), body.get(FILTERING)
        # upstream makes the project's default group on its first port, bound or not
        default = self.groups.ensure_default(conn, owner)
        if "security_groups" in body:
            groups = body["security_groups"] or []  # null is none, as upstream
            if groups and not effective(filtering, port_security):
                raise groups_need_filtering(on_port=False)
        elif effective(filtering, port_security) and not trusted:
            groups = [default]
        else:
            groups = []
        self._check_usable(conn, ctx, owner, groups)
        return Secured(port_security, effective(anti, port_security),
                       {"port_security_enabled": port_security, ANTI_SPOOFING: anti,
                        FILTERING: filtering}, groups)

    @staticmethod
    def anti_spoofing_after(row: Row, body: dict) -> bool:
        """Whether anti-spoofing is on after an update (allowed address pairs need it)."""
        port_security = body.get("port_security_enabled", row.port_security_enabled)
        return effective(body.get(ANTI_SPOOFING, row.anti_spoofing_enabled), port_security)

    def for_update(self, conn: Connection, ctx: Context, row: Row, body: dict,
                   values: dict) -> None:
        """Check a port update; put its column changes in ``values``, rebind the groups
        if they change."""
        port_security = body.get("port_security_enabled", row.port_security_enabled)
        filtering = body.get(FILTERING, row.security_groups_enabled)
        current = list(conn.scalars(_GROUPS_OF, {"port": row.id}))
        if "security_groups" in body:
            groups = body["security_groups"] or []
            if groups and not effective(filtering, port_security):
                raise groups_need_filtering(on_port=False)
            if set(groups) != set(current):
                self._check_usable(conn, ctx, row.project_id, groups)
                conn.execute(PSG.delete().where(PSG.c.port_id == row.id))
                self.bind(conn, row.id, groups)
        elif current and not effective(filtering, port_security):
            raise groups_need_filtering(on_port=True)
        for attr in (ANTI_SPOOFING, FILTERING):
            if attr in body:
                values[attr] = body[attr]

    def _check_usable(self, conn: Connection, ctx: Context, project_id: str,
                      groups: list[str]) -> None:
        """The groups exist for the port's project (its own or shared with it; any for
        admins) and are all stateful or all stateless."""
        if not groups:
            return
        found = self.groups.usable_rows(conn, ctx, project_id, groups)
        # another project's group: its share cannot be taken back while this port is being
        # bound to it (the project's own groups need no lock: the foreign key guards
        # their deletion, and nobody unshares them from their owner)
        lock_rows(conn, t.security_groups,
                  sorted(i for i, r in found.items() if r.project_id != project_id))
        if len({r.stateful for r in found.values()}) > 1:
            raise errors.Conflict("Error Cannot apply both stateful and stateless security "
                                  "groups on the same port at the same time while "
                                  "attempting the operation.", type="SecurityGroupConflict")

    @staticmethod
    def bind(conn: Connection, port_id: str, groups: Iterable[str]) -> None:
        rows = [{"port_id": port_id, "security_group_id": g} for g in dict.fromkeys(groups)]
        if rows:
            conn.execute(PSG.insert(), rows)
