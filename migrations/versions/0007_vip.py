"""inquiry.vip: the customer was VIP when the inquiry was written (the VIP SLA targets apply)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN, not batch_alter_table: batch mode rebuilds the table for an SQL default,
    # and dropping the old inquiry table fails on a full store (inquiry_event rows point at it).
    # SQLite adds a NOT NULL column with a constant default in place.
    op.add_column("inquiry", sa.Column("vip", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.drop_column("vip")
