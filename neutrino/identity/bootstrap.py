"""First start of the embedded identity: an admin, and files clients read.

``clouds.yaml`` (cloud ``neutrino``) and ``admin-openrc`` are written to the
data directory, readable by their owner only, so that
``OS_CLIENT_CONFIG_FILE=DATA_DIR/clouds.yaml OS_CLOUD=neutrino openstack ...``
works with nothing else set up.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa

from neutrino.db import tables as t
from neutrino.db.engine import Database
from neutrino.files import write_atomic
from neutrino.identity.store import DEFAULT_DOMAIN, Identity, hash_password


def _write_private(path: Path, text: str) -> None:
    write_atomic(path, text, mode=0o600)  # never readable by others, not even briefly


def client_files(data_dir: Path, url: str, password: str) -> tuple[Path, Path]:
    auth_url = f"{url}/identity"
    clouds = data_dir / "clouds.yaml"
    _write_private(clouds, (
        "clouds:\n"
        "  neutrino:\n"
        "    auth:\n"
        f"      auth_url: {auth_url}\n"
        "      username: admin\n"
        f"      password: {password}\n"
        "      project_name: admin\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
        "    region_name: RegionOne\n"
        "    identity_api_version: 3\n"
        "    interface: public\n"))
    openrc = data_dir / "admin-openrc"
    _write_private(openrc, (
        f"export OS_AUTH_URL={auth_url}\n"
        "export OS_USERNAME=admin\n"
        f"export OS_PASSWORD={password}\n"
        "export OS_PROJECT_NAME=admin\n"
        "export OS_USER_DOMAIN_NAME=Default\n"
        "export OS_PROJECT_DOMAIN_NAME=Default\n"
        "export OS_REGION_NAME=RegionOne\n"
        "export OS_IDENTITY_API_VERSION=3\n"
        "export OS_INTERFACE=public\n"))
    return clouds, openrc


def ensure_admin(db: Database, identity: Identity, data_dir: Path, url: str) -> Path:
    """Bootstrap identity once; (re)write the client files when they are missing.

    The admin password exists only in those files: if they are lost, a new
    password is set, so the operator is never locked out of their own box.
    """
    clouds = data_dir / "clouds.yaml"
    have_files = clouds.exists() and "auth_url" in clouds.read_text() \
        and f"auth_url: {url}/identity\n" in clouds.read_text()
    password = secrets.token_urlsafe(18)
    hashed = hash_password(password)

    def op(conn: sa.Connection) -> bool:
        if identity.bootstrap(conn, hashed):
            return True
        if have_files:
            return False
        admin = conn.scalar(sa.select(t.identity_users.c.id).where(
            t.identity_users.c.name == "admin", t.identity_users.c.domain_id == DEFAULT_DOMAIN))
        if admin is not None:
            identity.set_password(conn, admin, hashed)  # the old admin tokens go too
        return True

    if db.write(op) or not have_files:
        client_files(data_dir, url, password)
    for path in (clouds, data_dir / "admin-openrc"):
        if path.exists():  # an older version may have left them readable by others
            path.chmod(0o600)
    return clouds
