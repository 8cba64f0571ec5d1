"""Per-customer purchase summaries the segment rules read instead of grouping a million orders.

Kept in the same transaction as every write that changes a customer's paid orders
(core.customers.summary.refresh), so they are exact at all times, not eventually: a segment count
is then one indexed query. Definitions (the same as the raw segment rules): a paid order is one in
status paid or partially_refunded; amounts are total minus refunded; times are `ordered_at`.
A customer without a paid order has no row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from core.models.base import utc_field


class CustomerSummary(SQLModel, table=True):
    __tablename__ = "customer_summary"
    __table_args__ = (
        Index("ix_customer_summary_last_ordered", "last_ordered_at"),
        Index("ix_customer_summary_first_ordered", "first_ordered_at"),
        Index("ix_customer_summary_orders", "paid_orders"),
    )

    customer_id: int = Field(primary_key=True, foreign_key="customer.id")
    paid_orders: int = 0
    paid_total: int = 0  # sum of total_amount - refunded_amount over the paid orders
    first_ordered_at: datetime = utc_field(nullable=False)
    last_ordered_at: datetime = utc_field(nullable=False)
    # min(product_name) of the items of the latest paid order(s): the #{최근구매상품} variable.
    last_product_name: str | None = Field(default=None, max_length=120)


class CustomerProductSummary(SQLModel, table=True):
    """When a customer last ordered (and paid for) each product: repurchase, bought-since, and the
    same-kind purchase exception of the advertising law (by the product's category)."""

    __tablename__ = "customer_product_summary"
    __table_args__ = (
        Index("ix_customer_product_summary_product_last", "product_id", "last_ordered_at"),
        Index("ix_customer_product_summary_product_paid", "product_id", "last_paid_at"),
    )

    customer_id: int = Field(primary_key=True, foreign_key="customer.id")
    product_id: int = Field(primary_key=True, foreign_key="product.id")
    last_ordered_at: datetime = utc_field(nullable=False)
    last_paid_at: datetime | None = utc_field()
