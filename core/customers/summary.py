"""Keeps core.models.customer_summary exact: call `refresh` in the transaction that changes a
customer's paid orders (a paid order recorded, a refund completed, an import), `rebuild` after a
bulk load. Each refresh recomputes the customers' rows from their own orders (an index range on
orders(customer_id, ordered_at)), so it is right whatever changed, and cheap.

The definitions match the raw segment rules in core.campaigns (`PAID_STATUSES`, total minus
refunded, `ordered_at`); tests/test_customer_summary.py compares both on tables of cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, true, update
from sqlmodel import Session

from core.customers import vip
from core.models import (
    Customer,
    CustomerProductSummary,
    CustomerSummary,
    Order,
    OrderItem,
    OrderStatus,
)

PAID_STATUSES = (OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value)
CHUNK = 5000

ORD = Order.__table__.c
OI = OrderItem.__table__.c
SUMMARY = CustomerSummary.__table__
PRODUCT_SUMMARY = CustomerProductSummary.__table__


def refresh(session: Session, customer_ids: Iterable[int | None]) -> None:
    """Recompute the summaries of these customers from their orders (same transaction as the write)."""
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return
    session.flush()  # the caller's pending order changes must be visible to the recompute
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        if session.get_bind().dialect.name == "postgresql":
            # Two refreshes of one customer run one after the other and the second sees the first's
            # orders (READ COMMITTED takes a new snapshot per statement after the lock). FOR NO KEY
            # UPDATE: it does not wait for the key-share locks that inserts referencing the customer
            # take (a campaign queuing 100,000 recipients must not hold up a payment).
            session.execute(
                select(Customer.__table__.c.id)
                .where(Customer.__table__.c.id.in_(chunk))
                .order_by(Customer.__table__.c.id)
                .with_for_update(key_share=True)
            )
        _recompute(session, chunk)


def rebuild(session: Session) -> None:
    """Every customer's summary from scratch (after a bulk load such as the demo seed)."""
    _recompute(session, None)


def _recompute(session: Session, ids: list[int] | None) -> None:
    """Delete and re-derive the rows of `ids` (None: every customer)."""
    vip.forget_thresholds()  # the VIP rank cut-off is read from these rows

    def of(column: Any) -> ColumnElement[bool]:
        return true() if ids is None else column.in_(ids)

    paid = ORD.status.in_(PAID_STATUSES)
    orders_of = of(ORD.customer_id)
    rows_of = of(SUMMARY.c.customer_id)
    session.execute(delete(SUMMARY).where(rows_of))
    session.execute(delete(PRODUCT_SUMMARY).where(of(PRODUCT_SUMMARY.c.customer_id)))
    session.execute(
        insert(SUMMARY).from_select(
            ["customer_id", "paid_orders", "paid_total", "first_ordered_at", "last_ordered_at"],
            select(
                ORD.customer_id,
                func.count(),
                func.sum(ORD.total_amount - ORD.refunded_amount),
                func.min(ORD.ordered_at),
                func.max(ORD.ordered_at),
            )
            .where(paid, orders_of)
            .group_by(ORD.customer_id),
        )
    )
    latest = Order.__table__.alias("latest")
    session.execute(
        update(SUMMARY)
        .where(rows_of)
        .values(
            last_product_name=select(func.min(OI.product_name))
            .select_from(latest.join(OrderItem.__table__, OI.order_id == latest.c.id))
            .where(
                latest.c.customer_id == SUMMARY.c.customer_id,
                latest.c.ordered_at == SUMMARY.c.last_ordered_at,
                latest.c.status.in_(PAID_STATUSES),
            )
            .scalar_subquery()
        )
    )
    session.execute(
        insert(PRODUCT_SUMMARY).from_select(
            ["customer_id", "product_id", "last_ordered_at", "last_paid_at"],
            select(ORD.customer_id, OI.product_id, func.max(ORD.ordered_at), func.max(ORD.paid_at))
            .select_from(Order.__table__.join(OrderItem.__table__, OI.order_id == ORD.id))
            .where(paid, orders_of, OI.product_id.is_not(None))
            .group_by(ORD.customer_id, OI.product_id),
        )
    )
