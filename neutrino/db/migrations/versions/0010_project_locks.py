"""project_locks: one row per project, locked by creates that count against a quota

Revision ID: 0010
Revises: 0009

Counting a project's rows after its insert, at READ COMMITTED, does not see another
transaction's uncommitted insert: two creates racing for the last free slot both
passed, and PostgreSQL and MariaDB overshot quotas.  A create now locks its project's
row here (``SELECT ... FOR UPDATE``) before it counts, so one project's quota checks
run one after the other.  Rows are made on a project's first quota'd create.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_locks",
        sa.Column("project_id", sa.String(255), primary_key=True),
    )

