"""identity: lockout counters, failed-authentication throttle, revision; exact names

Revision ID: 0009
Revises: 0008

- ``identity_users.failed_auth_count`` / ``failed_auth_at``: Keystone's lockout
  (``lockout_failure_attempts``, ``lockout_duration``), kept in the database so
  every server process sees the same count;
- ``identity_auth_failures``: failed password authentications per source address
  and per user name in a fixed window (the ``auth_failure_rate_*`` settings);
- ``identity_state``: one row whose ``revision`` every identity change bumps, so
  a cached token validation is trusted only while the revision is unchanged;
- on MySQL/MariaDB the identity tables get a binary, no-pad collation: a database
  made with the server's default (``utf8mb4_general_ci``) would otherwise make user
  names case-insensitive and blind to trailing spaces there, and only there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

IDENTITY_TABLES = ("identity_domains", "identity_roles", "identity_projects", "identity_users",
                   "identity_assignments", "identity_tokens", "identity_auth_failures",
                   "identity_state")
#: (name, table, column, referred table, ondelete) of the keys between identity tables
FOREIGN_KEYS = (
    ("fk_identity_projects_domain_id_identity_domains", "identity_projects", "domain_id",
     "identity_domains", None),
    ("fk_identity_users_domain_id_identity_domains", "identity_users", "domain_id",
     "identity_domains", None),
    ("fk_identity_assignments_user_id_identity_users", "identity_assignments", "user_id",
     "identity_users", "CASCADE"),
    ("fk_identity_assignments_role_id_identity_roles", "identity_assignments", "role_id",
     "identity_roles", "CASCADE"),
    ("fk_identity_tokens_user_id_identity_users", "identity_tokens", "user_id",
     "identity_users", "CASCADE"),
)


def _binary_collation(bind: sa.Connection) -> str:
    if bind.dialect.is_mariadb:
        return "utf8mb4_nopad_bin"
    version = bind.dialect.server_version_info or (0,)
    return "utf8mb4_0900_bin" if version >= (8,) else "utf8mb4_bin"


def upgrade() -> None:
    with op.batch_alter_table("identity_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_auth_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("failed_auth_at", sa.String(length=32), nullable=True))
    op.create_table(
        "identity_auth_failures",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.String(length=32), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_identity_auth_failures")),
    )
    state = op.create_table(
        "identity_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_state")),
    )
    op.bulk_insert(state, [{"id": 1, "revision": 0}])

    bind = op.get_bind()
    if bind.dialect.name == "mysql":
        collation = _binary_collation(bind)
        # a column a foreign key points at cannot change collation: drop them meanwhile
        for name, table, *_ in FOREIGN_KEYS:
            op.drop_constraint(name, table, type_="foreignkey")
        for table in IDENTITY_TABLES:
            op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 "
                       f"COLLATE {collation}")
        for name, table, column, target, ondelete in FOREIGN_KEYS:
            op.create_foreign_key(name, table, target, [column], ["id"], ondelete=ondelete)
