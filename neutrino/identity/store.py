"""The embedded identity service: domains, projects, users, roles, tokens.

A subset of Keystone v3, enough for the OpenStack clients and for tempest's
credential provisioning.  Passwords are kept as argon2id hashes; tokens are
random 256-bit strings of which only a SHA-256 is stored, with an expiry.
Roles are read from the assignments each time a token is validated, so
removing a role takes effect at once.  Keystone's implied roles hold:
``admin`` implies ``member``, which implies ``reader``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Row

from neutrino.db import tables as t

DEFAULT_DOMAIN = "default"
STANDARD_ROLES = ("admin", "member", "reader")
IMPLIED = {"admin": ("member", "reader"), "member": ("reader",)}

# argon2id at OWASP's minimum cost (19 MiB, 2 passes): a verification costs
# tens of milliseconds, not the default 64 MiB that would spike server memory.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class IdentityError(Exception):
    """A Keystone-shaped error: ``{"error": {"code", "title", "message"}}``."""

    TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
              409: "Conflict"}

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "title": self.TITLES.get(self.code, "Error"),
                          "message": self.message}}


def unauthorized(message: str = "The request you have made requires authentication.") \
        -> IdentityError:
    return IdentityError(401, message)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def new_id() -> str:
    return uuid.uuid4().hex


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


class Identity:
    def __init__(self, token_ttl: int = 3600) -> None:
        self.token_ttl = token_ttl

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

    # -- generic reads ---------------------------------------------------------

    TABLES = {"domains": t.identity_domains, "projects": t.identity_projects,
              "users": t.identity_users, "roles": t.identity_roles}

    @staticmethod
    def render(kind: str, row: Row | dict) -> dict:
        # str(): column keys are str subclasses, which JSON encoders refuse as keys
        items = row._mapping.items() if isinstance(row, Row) else row.items()
        data = {str(k): v for k, v in items}
        data.pop("password_hash", None)
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
            if key in table.c and key != "password_hash":
                column = table.c[key]
                if isinstance(column.type, sa.Boolean):
                    stmt = stmt.where(column.is_(value.lower() in ("true", "1")))
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

    def _domain_ref(self, conn: Connection, ref: Any) -> dict:
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
            raise unauthorized("A domain needs an id or a name.")
        table = t.identity_domains
        col = table.c.id if ref.get("id") else table.c.name
        row = conn.execute(sa.select(table).where(col == (ref.get("id") or ref["name"]))) \
            .first()
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

    def create_domain(self, conn: Connection, body: dict) -> dict:
        name = _required_name(body)
        self._unique(conn, "domains", {"name": name})
        row = {"id": body.get("id") or new_id(), "name": name,
               "description": body.get("description") or "",
               "enabled": bool(body.get("enabled", True))}
        conn.execute(t.identity_domains.insert().values(row))
        return self.render("domains", row)

    def create_project(self, conn: Connection, body: dict) -> dict:
        name = _required_name(body)
        domain_id = body.get("domain_id") or DEFAULT_DOMAIN
        self._check_domain(conn, domain_id)
        self._unique(conn, "projects", {"name": name, "domain_id": domain_id})
        row = {"id": new_id(), "name": name, "domain_id": domain_id,
               "description": body.get("description") or "",
               "enabled": bool(body.get("enabled", True))}
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
               "password_hash": hash_password(password) if password else None,
               "enabled": bool(body.get("enabled", True)),
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

    def update(self, conn: Connection, kind: str, ident: str, body: dict) -> dict:
        current = self.get(conn, kind, ident)
        table = self.TABLES[kind]
        allowed = {"name", "description", "enabled", "email", "default_project_id"}
        values = {k: v for k, v in body.items() if k in allowed and k in table.c}
        if kind == "users" and body.get("password"):
            values["password_hash"] = hash_password(body["password"])
        if "name" in values and values["name"] != current["name"]:
            where = {"name": values["name"]}
            if "domain_id" in current and kind != "domains":
                where["domain_id"] = current["domain_id"]
            self._unique(conn, kind, where)
        if values:
            conn.execute(table.update().where(table.c.id == ident).values(values))
        if kind in ("users", "projects") and values.get("enabled") is False:
            col = t.identity_tokens.c.user_id if kind == "users" \
                else t.identity_tokens.c.project_id
            conn.execute(t.identity_tokens.update().where(col == ident).values(revoked=True))
        return self.get(conn, kind, ident)

    def delete(self, conn: Connection, kind: str, ident: str) -> None:
        self.get(conn, kind, ident)
        table = self.TABLES[kind]
        if kind == "domains":
            if self.get(conn, "domains", ident)["enabled"]:
                raise IdentityError(403, "Cannot delete a domain that is enabled, please "
                                         "disable it first.")
            if ident == DEFAULT_DOMAIN:
                raise IdentityError(403, "The default domain cannot be deleted.")
        if kind == "projects":
            conn.execute(t.identity_assignments.delete().where(
                t.identity_assignments.c.target_type == "project",
                t.identity_assignments.c.target_id == ident))
            conn.execute(t.identity_tokens.update().where(
                t.identity_tokens.c.project_id == ident).values(revoked=True))
        if kind == "roles":
            conn.execute(t.identity_assignments.delete().where(
                t.identity_assignments.c.role_id == ident))
        if kind == "users":
            conn.execute(t.identity_tokens.delete().where(t.identity_tokens.c.user_id == ident))
            conn.execute(t.identity_assignments.delete().where(
                t.identity_assignments.c.user_id == ident))
        conn.execute(table.delete().where(table.c.id == ident))

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

    def revoke(self, conn: Connection, target_type: str, target_id: str, user_id: str,
               role_id: str) -> None:
        self._check_assignment_refs(conn, target_type, target_id, user_id, role_id)
        gone = conn.execute(t.identity_assignments.delete().where(
            *self._assignment_key(target_type, target_id, user_id, role_id)))
        if gone.rowcount == 0:
            raise IdentityError(404, f"Could not find role assignment: role {role_id} of "
                                     f"user {user_id} on {target_type} {target_id}.")

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

    # -- tokens ----------------------------------------------------------------

    def authenticate(self, conn: Connection, auth: Any) -> tuple[str, TokenInfo]:
        """Check credentials and issue a token for the requested scope."""
        if not isinstance(auth, dict) or not isinstance(auth.get("identity"), dict):
            raise IdentityError(400, "Expecting to find identity in auth - the server could "
                                     "not comply with the request since it is either "
                                     "malformed or otherwise incorrect.")
        identity = auth["identity"]
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods:
            raise IdentityError(400, "Expecting to find methods in identity.")
        if "password" in methods:
            user = self._password_user(conn, identity.get("password"))
            methods = ["password"]
            previous = None
        elif "token" in methods:
            token = (identity.get("token") or {}).get("id")
            previous = self.validate(conn, token) if isinstance(token, str) else None
            if previous is None:
                raise unauthorized("Could not find token.")
            user = self.get(conn, "users", previous.user["id"])
            methods = ["token"]
        else:
            raise unauthorized(f"Unsupported authentication method: {methods}.")
        scope = auth.get("scope")
        project_id = domain_id = None
        system = False
        if scope is None and previous is not None:
            project_id = previous.project["id"] if previous.project else None
        elif scope is None:
            project_id = user.get("default_project_id")
            if project_id and not self.roles_of(conn, "project", project_id, user["id"]):
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
        if target and not self.roles_of(conn, target[0], target[1], user["id"]):
            raise unauthorized(f"User {user['id']} has no access to {target[0]} {target[1]}.")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.token_ttl)
        if previous is not None:
            expires = min(expires, datetime.strptime(previous.expires_at,
                                                     "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC))
        conn.execute(t.identity_tokens.insert().values(
            token_hash=token_hash(token), user_id=user["id"], project_id=project_id,
            domain_id=domain_id, system=system, methods=",".join(methods),
            audit_id=secrets.token_urlsafe(16)[:22], issued_at=_stamp(now),
            expires_at=_stamp(expires), revoked=False))
        info = self.validate(conn, token)
        assert info is not None
        return token, info

    def _password_user(self, conn: Connection, password: Any) -> dict:
        if not isinstance(password, dict) or not isinstance(password.get("user"), dict):
            raise IdentityError(400, "Expecting to find user in password.")
        ref = password["user"]
        secret = ref.get("password")
        if not isinstance(secret, str):
            raise IdentityError(400, "Expecting to find password in user.")
        users = t.identity_users
        if ref.get("id"):
            row = conn.execute(sa.select(users).where(users.c.id == ref["id"])).first()
        elif ref.get("name"):
            domain = self._domain_ref(conn, ref.get("domain"))
            row = conn.execute(sa.select(users).where(users.c.name == ref["name"],
                                                      users.c.domain_id == domain["id"])).first()
        else:
            raise IdentityError(400, "Expecting to find id or name in user.")
        # one message for every failure, so it tells an attacker nothing
        if row is None or not row.enabled or not verify_password(row.password_hash, secret):
            raise unauthorized("The request you have made requires authentication.")
        return self.render("users", row)

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
        if row is None or not row.enabled:
            raise unauthorized(f"Could not find project: {ref.get('id') or ref.get('name')}.")
        return dict(row._mapping)

    def validate(self, conn: Connection, token: str | None) -> TokenInfo | None:
        """The token's current meaning, or None if unknown, expired or revoked."""
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
        domains = {d.id: d.name for d in conn.execute(sa.select(t.identity_domains))}
        project = domain = None
        roles: list[dict] = []
        if row.project_id:
            p = conn.execute(sa.select(t.identity_projects).where(
                t.identity_projects.c.id == row.project_id)).first()
            if p is None or not p.enabled:
                return None
            project = {"id": p.id, "name": p.name,
                       "domain": {"id": p.domain_id, "name": domains.get(p.domain_id)}}
            roles = self.roles_of(conn, "project", p.id, user.id)
        elif row.domain_id:
            domain = {"id": row.domain_id, "name": domains.get(row.domain_id)}
            roles = self.roles_of(conn, "domain", row.domain_id, user.id)
        elif row.system:
            roles = self.roles_of(conn, "system", "all", user.id)
        if (project or domain or row.system) and not roles:
            return None
        return TokenInfo(
            user={"id": user.id, "name": user.name, "password_expires_at": None,
                  "domain": {"id": user.domain_id, "name": domains.get(user.domain_id)}},
            project=project, domain=domain, system=row.system, roles=roles,
            methods=row.methods.split(","), audit_id=row.audit_id, issued_at=row.issued_at,
            expires_at=row.expires_at)

    def revoke_token(self, conn: Connection, token: str | None) -> bool:
        if not token:
            return False
        done = conn.execute(t.identity_tokens.update().where(
            t.identity_tokens.c.token_hash == token_hash(token),
            t.identity_tokens.c.revoked.is_(False)).values(revoked=True))
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
