"""customer.mobile: the canonical Korean mobile number, one customer per number.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mobile", sa.String(length=11), nullable=True))
    # TODO(H1): backfill canonical numbers and merge duplicates before the unique index.
    op.create_index("ix_customer_mobile", "customer", ["mobile"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_customer_mobile", table_name="customer")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("mobile")
