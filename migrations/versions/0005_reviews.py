"""reviews: one review per order item behind a token link, answers, hiding, photos, the linked inquiry

Revision ID: 0005
Revises: 0004

Existing reviews (one per order) keep their rating and text: the order's first item becomes theirs
and their submission time is their creation time. They have no token (no link was ever sent).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = core.models.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.alter_column("rating", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("order_item_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("token_expires_at", UTC, nullable=True))
        batch_op.add_column(
            sa.Column("photo_type", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch_op.add_column(sa.Column("submitted_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("updated_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.add_column(sa.Column("answered_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("answered_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column("hidden_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column("hidden_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hidden_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("inquiry_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_review_order_item_id", "order_item", ["order_item_id"], ["id"])
        batch_op.create_foreign_key("fk_review_answered_by", "staff_user", ["answered_by"], ["id"])
        batch_op.create_foreign_key("fk_review_hidden_by", "staff_user", ["hidden_by"], ["id"])
        batch_op.create_foreign_key("fk_review_inquiry_id", "inquiry", ["inquiry_id"], ["id"])
    # The legacy rows: the order's first item, submitted when written (the first review of an order only).
    op.execute(
        "UPDATE review SET submitted_at = created_at, updated_at = created_at, "
        "order_item_id = (SELECT min(order_item.id) FROM order_item WHERE order_item.order_id = review.order_id) "
        "WHERE id = (SELECT min(r2.id) FROM review r2 WHERE r2.order_id = review.order_id)"
    )
    op.execute(
        "UPDATE review SET submitted_at = created_at, updated_at = created_at WHERE submitted_at IS NULL"
    )
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_order_item_id"), ["order_item_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_review_token"), ["token"], unique=True)
        batch_op.create_index("ix_review_product_submitted", ["product_id", "submitted_at"], unique=False)
        batch_op.create_index("ix_review_submitted", ["submitted_at"], unique=False)
        batch_op.create_index(
            "ix_review_answer_wait", ["answered_at", "hidden", "submitted_at", "rating"], unique=False
        )
    op.create_table(
        "review_photo",
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["review.id"]),
        sa.PrimaryKeyConstraint("review_id"),
    )


def downgrade() -> None:
    op.drop_table("review_photo")
    op.execute("DELETE FROM review WHERE rating IS NULL")
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.drop_index("ix_review_answer_wait")
        batch_op.drop_index("ix_review_submitted")
        batch_op.drop_index("ix_review_product_submitted")
        batch_op.drop_index(batch_op.f("ix_review_token"))
        batch_op.drop_index(batch_op.f("ix_review_order_item_id"))
        batch_op.drop_constraint("fk_review_inquiry_id", type_="foreignkey")
        batch_op.drop_constraint("fk_review_hidden_by", type_="foreignkey")
        batch_op.drop_constraint("fk_review_answered_by", type_="foreignkey")
        batch_op.drop_constraint("fk_review_order_item_id", type_="foreignkey")
        for column in (
            "inquiry_id",
            "hidden_at",
            "hidden_by",
            "hidden_reason",
            "hidden",
            "answered_by",
            "answered_at",
            "answer",
            "updated_at",
            "submitted_at",
            "photo_type",
            "token_expires_at",
            "token",
            "order_item_id",
        ):
            batch_op.drop_column(column)
        batch_op.alter_column("rating", existing_type=sa.Integer(), nullable=False)
