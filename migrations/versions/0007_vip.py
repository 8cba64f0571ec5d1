"""inquiry.vip: the customer was VIP when the inquiry was written (the VIP SLA targets apply)

Revision ID: 0007
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vip", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.drop_column("vip")
