"""The embedded identity service: domains, projects, users, roles, tokens.

A subset of Keystone v3, enough for the OpenStack clients and for tempest's
credential provisioning.  Passwords are kept as argon2id hashes; tokens are
random 256-bit strings of which only a SHA-256 is stored, with an expiry.
Keystone's implied roles hold: ``admin`` implies ``member``, which implies
``reader``.

A token means what the database says at the moment it is validated: its user,
the user's domain, its project and the project's domain must be enabled, and
its roles are read from the assignments.  Changes Keystone revokes tokens for
(a password change, disabling or deleting a user, a project or a domain,
removing a role assignment or a role) mark the tokens revoked too, and bump
``identity_state.revision`` so that every process drops what it cached.

Password authentication costs the same whether or not the user exists (an
unknown user is verified against a dummy hash made with the same parameters),
and is limited: Keystone's lockout (``lockout_failure_attempts`` consecutive
failures lock the user for ``lockout_duration`` seconds) and a limit of failed
attempts per source address and per user name (``auth_failure_rate_*``, not in
Keystone).  Both are counted in the database, before the password is checked,
so that server processes sharing it and concurrent attempts all count.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Row

from neutrino.db import tables as t
from neutrino.identity.errors import AUTH_FAILED, IdentityError, unauthorized
from neutrino.identity.schema import query_bool, to_bool

if TYPE_CHECKING:
    from neutrino.config import Settings
    from neutrino.db.engine import Database

__all__ = ["DEFAULT_DOMAIN", "Hashed", "Identity", "IdentityError", "Security", "TokenInfo",
           "hash_password", "unauthorized", "verify_password"]

DEFAULT_DOMAIN = "default"
STANDARD_ROLES = ("admin", "member", "reader")
IMPLIED = {"admin": ("member", "reader"), "member": ("reader",)}

# argon2id at OWASP's minimum cost (19 MiB, 2 passes): a verification costs
# tens of milliseconds, not the default 64 MiB that would spike server memory.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
REVISION = sa.select(t.identity_state.c.revision).where(t.identity_state.c.id == 1)


class Hashed(str):
    """A password already hashed (outside the transaction, which must stay short)."""


def hash_password(password: str) -> Hashed:
    return Hashed(_HASHER.hash(password))


@cache
def _dummy_hash() -> str:
    # what an unknown user's password is verified against, so that it costs the same
    return _HASHER.hash(secrets.token_urlsafe(24))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches; as costly when there is nothing to match."""
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and bool(stored)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _address_block(address: str) -> str:
    """The unit an address is limited by: itself, or its /64 (one IPv6 host has many)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


@dataclass(frozen=True, slots=True)
class Security:
    """How password authentication is limited (see ``docs/configuration.md``)."""

    #: Keystone's [security_compliance] lockout_failure_attempts; 0 is off (Keystone: unset)
    lockout_failure_attempts: int = 0
    #: Keystone's [security_compliance] lockout_duration, seconds; 0 locks until an admin
    #: enables the user or sets its password
    lockout_duration: int = 1800
    #: Keystone's [identity] max_password_length
    max_password_length: int = 4096
    #: failed password authentications per source address, and per user name, in a window
    auth_failure_rate_limit: int = 20
    auth_failure_rate_window: int = 60

    @classmethod
    def from_settings(cls, settings: Settings) -> Security:
        return cls(settings.lockout_failure_attempts, settings.lockout_duration,
                   settings.max_password_length, settings.auth_failure_rate_limit,
                   settings.auth_failure_rate_window)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A validated token: who, on what scope, with which (expanded) roles."""

    user: dict
    project: dict | None
    domain: dict | None
    system: bool
    roles: list[dict]
    methods: list[str]
    audit_id: str
    issued_at: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A password authentication, counted as failed until the password proves right."""

    user: Row | None  # None: no such user (or its domain is disabled)
    keys: tuple[str, ...]  # the throttle rows it was counted in
    counted_user: bool  # counted in the user's lockout count


class Identity:
    def __init__(self, token_ttl: int = 3600, security: Security | None = None) -> None:
        self.token_ttl = token_ttl
        self.security = security or Security()

    # -- bootstrap -----------------------------------------------------------

    def bootstrap(self, conn: Connection, admin_password: str) -> bool:
        """Create the Default domain, the standard roles and admin; True if it did."""
        if conn.scalar(sa.select(t.identity_domains.c.id).where(
                t.identity_domains.c.id == DEFAULT_DOMAIN)) is not None:
            return False
        conn.execute(t.identity_domains.insert().values(
            id=DEFAULT_DOMAIN, name="Default", description="The default domain", enabled=True))
        for role in STANDARD_ROLES:
            self.create_role(conn, {"name": role})
        project = self.create_project(conn, {"name": "admin", "domain_id": DEFAULT_DOMAIN,
                                             "description": "Bootstrap project for admins"})
        user = self.create_user(conn, {"name": "admin", "domain_id": DEFAULT_DOMAIN,
                                       "password": admin_password,
                                       "default_project_id": project["id"]})
        admin_role = self.find_one(conn, "roles", {"name": "admin"})
        self.grant(conn, "project", project["id"], user["id"], admin_role["id"])
        return True

    # -- the revision every process checks its cached validations against -----------

    @staticmethod
    def revision(conn: Connection) -> int:
        return conn.scalar(REVISION) or 0

    @staticmethod
    def current_revision(db: Database) -> int:
        """The revision, read on every request: as cheaply as the driver can."""
        return int(db.read_scalar(REVISION) or 0)

    @staticmethod
    def _bump(conn: Connection) -> None:
        s = t.identity_state
        done = conn.execute(s.update().where(s.c.id == 1).values(revision=s.c.revision + 1))
        if done.rowcount == 0:
            conn.execute(s.insert().values(id=1, revision=1))

    def _revoke_tokens(self, conn: Connection, *where: Any) -> None:
        conn.execute(t.identity_tokens.update().where(
            t.identity_tokens.c.revoked.is_(False), *where).values(revoked=True))
        self._bump(conn)

    def _revoke_on(self, conn: Connection, target_type: str, target_id: str,
                   user_id: str) -> None:
        """Revoke the user's tokens scoped to a target (a role there went away)."""
        c = t.identity_tokens.c
        scope = {"project": c.project_id == target_id, "domain": c.domain_id == target_id,
                 "system": c.system.is_(True)}[target_type]
        self._revoke_tokens(conn, c.user_id == user_id, scope)

    # -- generic reads ---------------------------------------------------------

    TABLES = {"domains": t.identity_domains, "projects": t.identity_projects,
              "users": t.identity_users, "roles": t.identity_roles}
    #: stored, never shown
    PRIVATE = ("password_hash", "failed_auth_count", "failed_auth_at")

    @classmethod
    def render(cls, kind: str, row: Row | dict) -> dict:
        # str(): column keys are str subclasses, which JSON encoders refuse as keys
        items = row._mapping.items() if isinstance(row, Row) else row.items()
        data = {str(k): v for k, v in items if str(k) not in cls.PRIVATE}
        if kind == "projects":
            data.update(is_domain=False, parent_id=data["domain_id"], tags=[])
        if kind == "users":
            data["password_expires_at"] = None
            data.setdefault("options", {})
        if kind == "roles":
            data["domain_id"] = None
        return data

    def list(self, conn: Connection, kind: str, filters: dict[str, str]) -> list[dict]:
        table = self.TABLES[kind]
        stmt = sa.select(table).order_by(table.c.name)
        for key, value in filters.items():
            if key in table.c and key not in self.PRIVATE:
                column = table.c[key]
                if isinstance(column.type, sa.Boolean):
                    stmt = stmt.where(column.is_(query_bool(value)))
                else:
                    stmt = stmt.where(column == value)
        return [self.render(kind, r) for r in conn.execute(stmt)]

    def get(self, conn: Connection, kind: str, ident: str) -> dict:
        table = self.TABLES[kind]
        row = conn.execute(sa.select(table).where(table.c.id == ident)).first()
        if row is None:
            raise IdentityError(404, f"Could not find {kind[:-1]}: {ident}.")
        return self.render(kind, row)

    def find_one(self, conn: Connection, kind: str, where: dict[str, str]) -> dict:
        found = self.list(conn, kind, where)
        if not found:
            raise IdentityError(404, f"Could not find {kind[:-1]}: {where}.")
        return found[0]

    @staticmethod
    def _domain_row(conn: Connection, ref: dict) -> Row | None:
        table = t.identity_domains
        if ref.get("id"):
            return conn.execute(sa.select(table).where(table.c.id == ref["id"])).first()
        return conn.execute(sa.select(table).where(table.c.name == ref.get("name"))).first()

    def _domain_ref(self, conn: Connection, ref: Any) -> dict:
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
            raise IdentityError(400, "Expecting to find id or name in domain.")
        row = self._domain_row(conn, ref)
        if row is None or not row.enabled:
            raise unauthorized(f"Could not find domain: {ref.get('id') or ref.get('name')}.")
        return dict(row._mapping)

    # -- writes ----------------------------------------------------------------

    def _unique(self, conn: Connection, kind: str, where: dict) -> None:
        if self.list(conn, kind, where):
            raise IdentityError(409, f"Conflict occurred attempting to store {kind[:-1]} - "
                                     f"Duplicate entry {where}.")

    def _check_domain(self, conn: Connection, domain_id: str) -> None:
        self.get(conn, "domains", domain_id)

    @staticmethod
    def _password_hash(password: str | None) -> str | None:
        if not password:
            return None
        return password if isinstance(password, Hashed) else hash_password(password)

    def create_domain(self, conn: Connection, body: dict) -> dict:
        name = _required_name(body)
        self._unique(conn, "domains", {"name": name})
        ident = body.get("id") or new_id()
        if conn.scalar(sa.select(t.identity_domains.c.id).where(
                t.identity_domains.c.id == ident)) is not None:
            raise IdentityError(409, f"Conflict occurred attempting to store domain - "
                                     f"Duplicate ID, {ident}.")
        row = {"id": ident, "name": name, "description": body.get("description") or "",
               "enabled": to_bool(body.get("enabled", True))}
        conn.execute(t.identity_domains.insert().values(row))
        return self.render("domains", row)

    def create_project(self, conn: Connection, body: dict) -> dict:
        name = _required_name(body)
        domain_id = body.get("domain_id") or DEFAULT_DOMAIN
        self._check_domain(conn, domain_id)
        self._unique(conn, "projects", {"name": name, "domain_id": domain_id})
        row = {"id": new_id(), "name": name, "domain_id": domain_id,
               "description": body.get("description") or "",
               "enabled": to_bool(body.get("enabled", True))}
        conn.execute(t.identity_projects.insert().values(row))
        return self.render("projects", row)

    def create_user(self, conn: Connection, body: dict) -> dict:
        name = _required_name(body)
        domain_id = body.get("domain_id") or DEFAULT_DOMAIN
        self._check_domain(conn, domain_id)
        self._unique(conn, "users", {"name": name, "domain_id": domain_id})
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise IdentityError(400, "Invalid input for field 'password': not a string.")
        row = {"id": new_id(), "name": name, "domain_id": domain_id,
               "password_hash": self._password_hash(password),
               "enabled": to_bool(body.get("enabled", True)),
               "default_project_id": body.get("default_project_id"),
               "email": body.get("email"), "description": body.get("description") or ""}
        conn.execute(t.identity_users.insert().values(row))
        return self.render("users", row)

    def create_role(self, conn: Connection, body: dict) -> dict:
        name = _required_name(body)
        self._unique(conn, "roles", {"name": name})
        row = {"id": new_id(), "name": name, "description": body.get("description") or ""}
        conn.execute(t.identity_roles.insert().values(row))
        return self.render("roles", row)

    UPDATABLE = {"domains": {"name", "description", "enabled"},
                 "projects": {"name", "description", "enabled"},
                 "users": {"name", "description", "enabled", "email", "default_project_id"},
                 "roles": {"name", "description"}}

    def update(self, conn: Connection, kind: str, ident: str, body: dict) -> dict:
        current = self.get(conn, kind, ident)
        table = self.TABLES[kind]
        values = {k: v for k, v in body.items() if k in self.UPDATABLE[kind]}
        if "enabled" in values:
            values["enabled"] = to_bool(values["enabled"])
        if values.get("description", "") is None:
            values["description"] = ""
        if "name" in values and values["name"] != current["name"]:
            where = {"name": values["name"]}
            if "domain_id" in current and kind != "domains":
                where["domain_id"] = current["domain_id"]
            self._unique(conn, kind, where)
        if values:
            conn.execute(table.update().where(table.c.id == ident).values(values))
        if kind == "users" and "password" in body:
            self.set_password(conn, ident, self._password_hash(body["password"]))
        if kind == "users" and values.get("enabled") is True:
            self._reset_lockout(conn, ident)  # enabling a user is how Keystone unlocks it
        if values.get("enabled") is False:
            self._revoke_disabled(conn, kind, ident)
        self._bump(conn)
        return self.get(conn, kind, ident)

    def _revoke_disabled(self, conn: Connection, kind: str, ident: str) -> None:
        c = t.identity_tokens.c
        if kind == "users":
            self._revoke_tokens(conn, c.user_id == ident)
        elif kind == "projects":
            self._revoke_tokens(conn, c.project_id == ident)
        elif kind == "domains":
            # Keystone: a disabled domain's users, projects and domain tokens all stop
            users = sa.select(t.identity_users.c.id).where(t.identity_users.c.domain_id == ident)
            projects = sa.select(t.identity_projects.c.id).where(
                t.identity_projects.c.domain_id == ident)
            self._revoke_tokens(conn, sa.or_(c.user_id.in_(users), c.project_id.in_(projects),
                                             c.domain_id == ident))

    def set_password(self, conn: Connection, user_id: str, password_hash: str | None) -> None:
        """A new password (or none): the user's tokens are revoked, as Keystone does."""
        conn.execute(t.identity_users.update().where(t.identity_users.c.id == user_id).values(
            password_hash=password_hash))
        self._reset_lockout(conn, user_id)
        self._revoke_tokens(conn, t.identity_tokens.c.user_id == user_id)

    @staticmethod
    def _reset_lockout(conn: Connection, user_id: str) -> None:
        conn.execute(t.identity_users.update().where(t.identity_users.c.id == user_id).values(
            failed_auth_count=0, failed_auth_at=None))

    def delete(self, conn: Connection, kind: str, ident: str) -> None:
        current = self.get(conn, kind, ident)
        table = self.TABLES[kind]
        if kind == "domains":
            if current["enabled"]:
                raise IdentityError(403, "Cannot delete a domain that is enabled, please "
                                         "disable it first.")
            if ident == DEFAULT_DOMAIN:
                raise IdentityError(403, "The default domain cannot be deleted.")
            self._delete_domain_contents(conn, ident)
        if kind == "projects":
            self._delete_project_refs(conn, [ident])
        if kind == "roles":
            a = t.identity_assignments
            for held in conn.execute(sa.select(a).where(a.c.role_id == ident)).all():
                self._revoke_on(conn, held.target_type, held.target_id, held.user_id)
            conn.execute(a.delete().where(a.c.role_id == ident))
        if kind == "users":
            self._delete_users(conn, [ident])
        conn.execute(table.delete().where(table.c.id == ident))
        self._bump(conn)

    def _delete_users(self, conn: Connection, ids: list[str]) -> None:
        if ids:
            conn.execute(t.identity_tokens.delete().where(t.identity_tokens.c.user_id.in_(ids)))
            conn.execute(t.identity_assignments.delete().where(
                t.identity_assignments.c.user_id.in_(ids)))

    def _delete_project_refs(self, conn: Connection, ids: list[str]) -> None:
        if not ids:
            return
        a = t.identity_assignments.c
        conn.execute(t.identity_assignments.delete().where(a.target_type == "project",
                                                           a.target_id.in_(ids)))
        self._revoke_tokens(conn, t.identity_tokens.c.project_id.in_(ids))
        # Keystone: a user whose default project is gone has none
        conn.execute(t.identity_users.update().where(
            t.identity_users.c.default_project_id.in_(ids)).values(default_project_id=None))

    def _delete_domain_contents(self, conn: Connection, domain_id: str) -> None:
        """Keystone deletes a domain with its projects and users."""
        users = conn.scalars(sa.select(t.identity_users.c.id).where(
            t.identity_users.c.domain_id == domain_id)).all()
        projects = conn.scalars(sa.select(t.identity_projects.c.id).where(
            t.identity_projects.c.domain_id == domain_id)).all()
        self._delete_users(conn, list(users))
        self._delete_project_refs(conn, list(projects))
        a = t.identity_assignments.c
        conn.execute(t.identity_assignments.delete().where(a.target_type == "domain",
                                                           a.target_id == domain_id))
        self._revoke_tokens(conn, t.identity_tokens.c.domain_id == domain_id)
        conn.execute(t.identity_users.delete().where(t.identity_users.c.domain_id == domain_id))
        conn.execute(t.identity_projects.delete().where(
            t.identity_projects.c.domain_id == domain_id))

    # -- role assignments -----------------------------------------------------

    def grant(self, conn: Connection, target_type: str, target_id: str, user_id: str,
              role_id: str) -> None:
        self._check_assignment_refs(conn, target_type, target_id, user_id, role_id)
        exists = conn.scalar(sa.select(t.identity_assignments.c.role_id).where(
            *self._assignment_key(target_type, target_id, user_id, role_id)))
        if exists is None:
            conn.execute(t.identity_assignments.insert().values(
                target_type=target_type, target_id=target_id, user_id=user_id,
                role_id=role_id))
            self._bump(conn)  # cached validations must show the new role

    def revoke(self, conn: Connection, target_type: str, target_id: str, user_id: str,
               role_id: str) -> None:
        self._check_assignment_refs(conn, target_type, target_id, user_id, role_id)
        gone = conn.execute(t.identity_assignments.delete().where(
            *self._assignment_key(target_type, target_id, user_id, role_id)))
        if gone.rowcount == 0:
            raise IdentityError(404, f"Could not find role assignment: role {role_id} of "
                                     f"user {user_id} on {target_type} {target_id}.")
        # Keystone revokes the user's tokens on that target
        self._revoke_on(conn, target_type, target_id, user_id)

    def has_grant(self, conn: Connection, target_type: str, target_id: str, user_id: str,
                  role_id: str) -> bool:
        self._check_assignment_refs(conn, target_type, target_id, user_id, role_id)
        return conn.scalar(sa.select(t.identity_assignments.c.role_id).where(
            *self._assignment_key(target_type, target_id, user_id, role_id))) is not None

    @staticmethod
    def _assignment_key(target_type: str, target_id: str, user_id: str,
                        role_id: str) -> list:
        a = t.identity_assignments.c
        return [a.target_type == target_type, a.target_id == target_id, a.user_id == user_id,
                a.role_id == role_id]

    def _check_assignment_refs(self, conn: Connection, target_type: str, target_id: str,
                               user_id: str, role_id: str) -> None:
        if target_type == "project":
            self.get(conn, "projects", target_id)
        elif target_type == "domain":
            self.get(conn, "domains", target_id)
        self.get(conn, "users", user_id)
        self.get(conn, "roles", role_id)

    def roles_of(self, conn: Connection, target_type: str, target_id: str,
                 user_id: str, *, expand: bool = True) -> list[dict]:
        a = t.identity_assignments.c
        rows = conn.execute(sa.select(t.identity_roles.c.id, t.identity_roles.c.name).join(
            t.identity_assignments, a.role_id == t.identity_roles.c.id).where(
            a.target_type == target_type, a.target_id == target_id,
            a.user_id == user_id)).all()
        roles = {name: rid for rid, name in rows}
        if expand:
            for name in list(roles):
                for implied in IMPLIED.get(name, ()):
                    if implied not in roles:
                        rid = conn.scalar(sa.select(t.identity_roles.c.id).where(
                            t.identity_roles.c.name == implied))
                        if rid is not None:
                            roles[implied] = rid
        return [{"id": rid, "name": name} for name, rid in sorted(roles.items())]

    def assignments(self, conn: Connection, filters: dict[str, str]) -> list[dict]:
        a = t.identity_assignments.c
        stmt = sa.select(t.identity_assignments)
        if "user.id" in filters:
            stmt = stmt.where(a.user_id == filters["user.id"])
        if "role.id" in filters:
            stmt = stmt.where(a.role_id == filters["role.id"])
        if "scope.project.id" in filters:
            stmt = stmt.where(a.target_type == "project",
                              a.target_id == filters["scope.project.id"])
        if "scope.domain.id" in filters:
            stmt = stmt.where(a.target_type == "domain", a.target_id == filters["scope.domain.id"])
        names = filters.get("include_names", "false").lower() in ("", "1", "true")
        out = []
        for r in conn.execute(stmt):
            scope = {"system": {"all": True}} if r.target_type == "system" \
                else {r.target_type: {"id": r.target_id}}
            item = {"role": {"id": r.role_id}, "user": {"id": r.user_id}, "scope": scope}
            if names:
                self._add_names(conn, item, r.target_type)
            out.append(item)
        return out

    def _add_names(self, conn: Connection, item: dict, target_type: str) -> None:
        """``include_names``: what the openstack CLI shows with ``--names``."""
        domains = {d["id"]: d["name"] for d in self.list(conn, "domains", {})}
        role = self.get(conn, "roles", item["role"]["id"])
        item["role"]["name"] = role["name"]
        user = self.get(conn, "users", item["user"]["id"])
        item["user"].update(name=user["name"], domain={"id": user["domain_id"],
                                                       "name": domains.get(user["domain_id"])})
        if target_type == "project":
            project = self.get(conn, "projects", item["scope"]["project"]["id"])
            item["scope"]["project"].update(
                name=project["name"], domain={"id": project["domain_id"],
                                              "name": domains.get(project["domain_id"])})
        elif target_type == "domain":
            item["scope"]["domain"]["name"] = domains.get(item["scope"]["domain"]["id"])

    # -- password authentication ------------------------------------------------------
    # These run several short transactions (count the attempt, settle it) around the
    # password check, which runs outside any: call them from a worker thread.

    def authenticate(self, db: Database, auth: Any, address: str = "") \
            -> tuple[str, TokenInfo]:
        """Check credentials and issue a token for the requested scope."""
        if not isinstance(auth, dict) or not isinstance(auth.get("identity"), dict):
            raise IdentityError(400, "Expecting to find identity in auth - the server could "
                                     "not comply with the request since it is either "
                                     "malformed or otherwise incorrect.")
        identity = auth["identity"]
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods:
            raise IdentityError(400, "Expecting to find methods in identity.")
        previous: TokenInfo | None = None
        if "password" in methods:
            password = identity.get("password")
            if not isinstance(password, dict) or not isinstance(password.get("user"), dict):
                raise IdentityError(400, "Expecting to find user in password.")
            user_id = self.check_password(db, password["user"], address)
            methods = ["password"]
        elif "token" in methods:
            token = (identity.get("token") or {}).get("id")
            previous = db.run_read(lambda conn: self.validate(conn, token)) \
                if isinstance(token, str) else None
            if previous is None:
                raise unauthorized("Could not find token.")
            user_id = previous.user["id"]
            methods = ["token"]
        else:
            raise unauthorized(f"Unsupported authentication method: {methods}.")
        return db.write(lambda conn: self._issue(conn, auth, user_id, methods, previous))

    def check_password(self, db: Database, ref: dict, address: str) -> str:
        """The id of the user ``ref`` names if ``ref["password"]`` is its password."""
        secret = ref.get("password")
        if not isinstance(secret, str):
            raise IdentityError(400, "Expecting to find password in user.")
        if not (ref.get("id") or ref.get("name")):
            raise IdentityError(400, "Expecting to find id or name in user.")
        if not ref.get("id") and not (isinstance(ref.get("domain"), dict)
                                      and (ref["domain"].get("id") or ref["domain"].get("name"))):
            raise IdentityError(400, "Expecting to find domain in user.")
        attempt = db.write(lambda conn: self._begin_attempt(conn, ref, address))
        stored = attempt.user.password_hash if attempt.user is not None else None
        ok = verify_password(stored, secret)
        if ok and (attempt.keys or attempt.counted_user):
            db.write(lambda conn: self._settle(conn, attempt))
        if not ok or attempt.user is None:
            raise unauthorized(AUTH_FAILED)
        if not attempt.user.enabled:
            # Keystone's message; only a caller who knows the password gets it
            raise unauthorized(f"The account is disabled for user: {attempt.user.id}.")
        return attempt.user.id

    def change_password(self, db: Database, user_id: str, original: str, new: str,
                        address: str = "") -> None:
        """Keystone's self-service ``POST /v3/users/{id}/password``: the original password
        authenticates (throttled and locked out like any), the user's tokens are revoked."""
        self.check_password(db, {"id": user_id, "password": original}, address)
        hashed = hash_password(new)
        db.write(lambda conn: self.set_password(conn, user_id, hashed))

    def _find_password_user(self, conn: Connection, ref: dict) -> Row | None:
        users = t.identity_users
        if ref.get("id"):
            row = conn.execute(sa.select(users).where(users.c.id == ref["id"])).first()
        else:
            domain = self._domain_row(conn, ref["domain"])
            row = None if domain is None else conn.execute(sa.select(users).where(
                users.c.name == ref["name"], users.c.domain_id == domain.id)).first()
        if row is not None and not conn.scalar(sa.select(t.identity_domains.c.enabled).where(
                t.identity_domains.c.id == row.domain_id)):
            return None  # a disabled domain's users cannot authenticate (Keystone)
        return row

    def _begin_attempt(self, conn: Connection, ref: dict, address: str) -> _Attempt:
        """Count the attempt as failed, unless it is over a limit (429) or the user is
        locked out (401): then nothing is counted and no password is checked."""
        sec = self.security
        user = self._find_password_user(conn, ref)
        now = datetime.now(UTC)
        keys: tuple[str, ...] = ()
        if sec.auth_failure_rate_limit > 0:
            who = f"user:{user.id}" if user is not None else "user:?" + repr(
                (ref.get("id"), ref.get("name"), ref.get("domain")))
            keys = tuple(_key(k) for k in ([who] + ([f"address:{_address_block(address)}"]
                                                     if address else [])))
            self._count_failures(conn, keys, now)
        counted = False
        if user is not None and sec.lockout_failure_attempts > 0:
            # locked: concurrent attempts must each see the others' counts
            user = conn.execute(sa.select(t.identity_users).where(
                t.identity_users.c.id == user.id).with_for_update()).one()
            count = user.failed_auth_count
            if count >= sec.lockout_failure_attempts:
                if not sec.lockout_duration or user.failed_auth_at is None or \
                        _parse(user.failed_auth_at) + timedelta(seconds=sec.lockout_duration) \
                        > now:
                    raise unauthorized(f"The account is locked for user: {user.id}.")
                count = 0  # the lockout is over
            conn.execute(t.identity_users.update().where(t.identity_users.c.id == user.id)
                         .values(failed_auth_count=count + 1, failed_auth_at=_stamp(now)))
            counted = True
        return _Attempt(user, keys, counted)

    def _count_failures(self, conn: Connection, keys: tuple[str, ...], now: datetime) -> None:
        f = t.identity_auth_failures
        window = self.security.auth_failure_rate_window
        expired = _stamp(now - timedelta(seconds=window))
        if secrets.randbelow(32) == 0:  # now and then, forget windows long over
            conn.execute(f.delete().where(f.c.window_start <= expired))
        for key in keys:
            row = conn.execute(sa.select(f).where(f.c.key_hash == key).with_for_update()).first()
            if row is None:
                # a concurrent first failure makes this an IntegrityError: Database.write
                # retries the whole attempt, which then finds the row
                conn.execute(f.insert().values(key_hash=key, window_start=_stamp(now),
                                               failures=1))
            elif row.window_start <= expired:
                conn.execute(f.update().where(f.c.key_hash == key).values(
                    window_start=_stamp(now), failures=1))
            elif row.failures >= self.security.auth_failure_rate_limit:
                left = _parse(row.window_start) + timedelta(seconds=window) - now
                wait = max(1, math.ceil(left.total_seconds()))
                raise IdentityError(429, f"Too many failed authentication attempts from this "
                                         f"address or for this user: retry in {wait} "
                                         f"seconds.", {"Retry-After": str(wait)})
            else:
                conn.execute(f.update().where(f.c.key_hash == key).values(
                    failures=f.c.failures + 1))

    @staticmethod
    def _settle(conn: Connection, attempt: _Attempt) -> None:
        """The password was right: the attempt was no failure after all."""
        f = t.identity_auth_failures
        for key in attempt.keys:
            conn.execute(f.update().where(f.c.key_hash == key, f.c.failures > 0).values(
                failures=f.c.failures - 1))
        if attempt.counted_user and attempt.user is not None:
            Identity._reset_lockout(conn, attempt.user.id)

    # -- tokens ----------------------------------------------------------------

    def _issue(self, conn: Connection, auth: dict, user_id: str, methods: list[str],
               previous: TokenInfo | None) -> tuple[str, TokenInfo]:
        user = conn.execute(sa.select(t.identity_users).where(
            t.identity_users.c.id == user_id)).first()
        if user is None or not user.enabled:
            raise unauthorized()  # changed since its credentials were checked
        scope = auth.get("scope")
        project_id = domain_id = None
        system = False
        if scope is None and previous is not None:
            project_id = previous.project["id"] if previous.project else None
        elif scope is None:
            project_id = user.default_project_id
            if project_id and not self._enabled_project(conn, project_id):
                project_id = None
            if project_id and not self.roles_of(conn, "project", project_id, user.id):
                project_id = None
        elif scope == "unscoped":
            pass
        elif isinstance(scope, dict) and "project" in scope:
            project_id = self._project_ref(conn, scope["project"])["id"]
        elif isinstance(scope, dict) and "domain" in scope:
            domain_id = self._domain_ref(conn, scope["domain"])["id"]
        elif isinstance(scope, dict) and "system" in scope:
            system = True
        else:
            raise IdentityError(400, "Invalid scope.")
        target = ("project", project_id) if project_id else ("domain", domain_id) \
            if domain_id else ("system", "all") if system else None
        if target and not self.roles_of(conn, target[0], target[1], user.id):
            raise unauthorized(f"User {user.id} has no access to {target[0]} {target[1]}.")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.token_ttl)
        if previous is not None:
            expires = min(expires, _parse(previous.expires_at))
        if secrets.randbelow(64) == 0:
            self.purge_expired(conn)  # expired tokens are no use to anyone
        conn.execute(t.identity_tokens.insert().values(
            token_hash=token_hash(token), user_id=user.id, project_id=project_id,
            domain_id=domain_id, system=system, methods=",".join(methods),
            audit_id=secrets.token_urlsafe(16)[:22], issued_at=_stamp(now),
            expires_at=_stamp(expires), revoked=False))
        info = self.validate(conn, token)
        if info is None:
            raise unauthorized()
        return token, info

    @staticmethod
    def _enabled_project(conn: Connection, project_id: str) -> bool:
        p, d = t.identity_projects, t.identity_domains
        return conn.scalar(sa.select(p.c.id).join(d, d.c.id == p.c.domain_id).where(
            p.c.id == project_id, p.c.enabled.is_(True), d.c.enabled.is_(True))) is not None

    def _project_ref(self, conn: Connection, ref: Any) -> dict:
        if not isinstance(ref, dict):
            raise IdentityError(400, "Invalid project scope.")
        projects = t.identity_projects
        if ref.get("id"):
            row = conn.execute(sa.select(projects).where(projects.c.id == ref["id"])).first()
        elif ref.get("name"):
            domain = self._domain_ref(conn, ref.get("domain"))
            row = conn.execute(sa.select(projects).where(
                projects.c.name == ref["name"], projects.c.domain_id == domain["id"])).first()
        else:
            raise IdentityError(400, "Expecting to find id or name in project.")
        if row is None or not self._enabled_project(conn, row.id):
            raise unauthorized(f"Could not find project: {ref.get('id') or ref.get('name')}.")
        return dict(row._mapping)

    def validate(self, conn: Connection, token: str | None) -> TokenInfo | None:
        """The token's current meaning, or None if unknown, expired or revoked, or if its
        user, project or one of their domains is disabled."""
        if not token:
            return None
        row = conn.execute(sa.select(t.identity_tokens).where(
            t.identity_tokens.c.token_hash == token_hash(token))).first()
        if row is None or row.revoked or row.expires_at <= _stamp(datetime.now(UTC)):
            return None
        user = conn.execute(sa.select(t.identity_users).where(
            t.identity_users.c.id == row.user_id)).first()
        if user is None or not user.enabled:
            return None
        domains = {d.id: d for d in conn.execute(sa.select(t.identity_domains))}

        def domain_of(ident: str) -> dict | None:
            d = domains.get(ident)
            return {"id": d.id, "name": d.name} if d is not None and d.enabled else None

        user_domain = domain_of(user.domain_id)
        if user_domain is None:
            return None
        project = domain = None
        roles: list[dict] = []
        if row.project_id:
            p = conn.execute(sa.select(t.identity_projects).where(
                t.identity_projects.c.id == row.project_id)).first()
            if p is None or not p.enabled or domain_of(p.domain_id) is None:
                return None
            project = {"id": p.id, "name": p.name, "domain": domain_of(p.domain_id)}
            roles = self.roles_of(conn, "project", p.id, user.id)
        elif row.domain_id:
            domain = domain_of(row.domain_id)
            if domain is None:
                return None
            roles = self.roles_of(conn, "domain", row.domain_id, user.id)
        elif row.system:
            roles = self.roles_of(conn, "system", "all", user.id)
        if (project or domain or row.system) and not roles:
            return None
        return TokenInfo(
            user={"id": user.id, "name": user.name, "password_expires_at": None,
                  "domain": user_domain},
            project=project, domain=domain, system=row.system, roles=roles,
            methods=row.methods.split(","), audit_id=row.audit_id, issued_at=row.issued_at,
            expires_at=row.expires_at)

    def revoke_token(self, conn: Connection, token: str | None) -> bool:
        if not token:
            return False
        done = conn.execute(t.identity_tokens.update().where(
            t.identity_tokens.c.token_hash == token_hash(token),
            t.identity_tokens.c.revoked.is_(False)).values(revoked=True))
        self._bump(conn)
        return done.rowcount > 0

    def purge_expired(self, conn: Connection) -> int:
        gone = conn.execute(t.identity_tokens.delete().where(
            t.identity_tokens.c.expires_at <= _stamp(datetime.now(UTC))))
        return gone.rowcount


def _required_name(body: Any) -> str:
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise IdentityError(400, "Invalid input for field 'name': a non-empty string of at "
                                 "most 255 characters is required.")
    return name
