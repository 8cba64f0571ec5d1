"""customer.mobile: the canonical Korean mobile number, one customer per number.

Existing rows get their canonical number and duplicates (one person typed in several shapes) are
merged into one customer (core.customers.merge: every referencing row re-pointed, consent to the
strictest, audited) BEFORE the unique index is created, so the index never meets two rows of one
number. customer.phone widens to 200 ("stored as given", bounded) on PostgreSQL; SQLite does not
enforce VARCHAR lengths, and rebuilding the parent table of a dozen foreign keys there is not safe.

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
    from core.customers.merge import merge_duplicates

    bind = op.get_bind()
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mobile", sa.String(length=11), nullable=True))
    if bind.dialect.name != "sqlite":
        op.alter_column("customer", "phone", type_=sa.String(length=200), existing_nullable=True)
    merge_duplicates(bind)
    op.create_index("ix_customer_mobile", "customer", ["mobile"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_customer_mobile", table_name="customer")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("mobile")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("customer", "phone", type_=sa.String(length=20), existing_nullable=True)
