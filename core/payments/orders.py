"""Orders and their payments as recorded: one paid order (a payment link, a subscription charge, the
import) written whole, many at once for the import, and the amount rule every money field obeys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.customers import summary as customer_summary
from core.errors import ValidationFailed
from core.models import (
    Order,
    OrderItem,
    OrderStatus,
)
from core.money import format_krw

MAX_AMOUNT = 100_000_000  # 1억원: anything above is a typo, not an order


def record_paid_order(
    session: Session,
    *,
    order_number: str,
    customer_id: int,
    product_id: int | None,
    item_name: str,
    amount: int,
    tax_free_amount: int,
    source: str,
    ordered_at: datetime,
    paid_at: datetime,
    **links: int | None,
) -> Order:
    """A paid order of one item (a paid payment link, a subscription charge); the caller adds its payment.

    `links` are the order's back-references, e.g. payment_link_id or subscription_id.
    """
    order = Order(
        order_number=order_number,
        customer_id=customer_id,
        total_amount=amount,
        tax_free_amount=tax_free_amount,
        source=source,
        status=OrderStatus.PAID,
        ordered_at=ordered_at,
        paid_at=paid_at,
        **links,
    )
    session.add(order)
    session.flush()
    session.add(
        OrderItem(
            order_id=order.id,
            product_id=product_id,
            product_name=item_name,
            quantity=1,
            unit_price=amount,
            amount=amount,
        )
    )
    customer_summary.refresh(session, [customer_id])
    return order


def record_paid_orders(session: Session, orders: list[dict[str, Any]]) -> dict[str, int]:
    """`record_paid_order` for a batch (a day of subscription charges): two Core inserts, no ORM objects.

    Each dict has record_paid_order's arguments (order_number ... paid_at, plus back-references
    such as subscription_id); the customers' summaries are refreshed, as the single version does.
    Returns order_number -> order id. A repeated order number raises
    IntegrityError, like the single version, so the caller's batch rolls back whole.
    """
    if not orders:
        return {}
    order_table, item_table = Order.__table__, OrderItem.__table__  # type: ignore[attr-defined]
    links = ("payment_link_id", "subscription_id")
    rows = [
        {
            "order_number": o["order_number"],
            "customer_id": o["customer_id"],
            "total_amount": o["amount"],
            "tax_free_amount": o["tax_free_amount"],
            "source": o["source"],
            "status": OrderStatus.PAID.value,
            "ordered_at": o["ordered_at"],
            "paid_at": o["paid_at"],
            **{link: o.get(link) for link in links},
        }
        for o in orders
    ]
    returned = session.execute(
        order_table.insert().returning(order_table.c.id, order_table.c.order_number), rows
    ).all()
    ids = {number: order_id for order_id, number in returned}
    session.execute(
        item_table.insert(),
        [
            {
                "order_id": ids[o["order_number"]],
                "product_id": o["product_id"],
                "product_name": o["item_name"],
                "quantity": 1,
                "unit_price": o["amount"],
                "amount": o["amount"],
            }
            for o in orders
        ],
    )
    # Segments and the 6-month purchase exception read the summaries: current in this transaction.
    customer_summary.refresh(session, {o["customer_id"] for o in orders})
    return ids


def check_amount(value: Any, label: str = "금액", *, allow_zero: bool = False) -> int:
    """An amount in whole KRW: no floats, no fractions, no negatives, nothing absurd."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValidationFailed(f"{label}은(는) 원 단위 정수여야 합니다: {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationFailed(f"{label}은(는) {'0 이상이어야' if allow_zero else '0보다 커야'} 합니다: {value:,}")
    if value > MAX_AMOUNT:
        raise ValidationFailed(
            f"{label}이(가) 너무 큽니다: {format_krw(value)} (최대 {format_krw(MAX_AMOUNT)})"
        )
    return value
