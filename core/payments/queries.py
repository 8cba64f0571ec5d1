"""What staff read about orders: the search (indexed, whole phone numbers only) and one order's detail."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, exists, func, or_
from sqlmodel import Session, select

from core import clock
from core.customers import vip
from core.customers.identity import canonical_mobile, format_mobile
from core.errors import NotFound
from core.messaging.default_templates import DEFAULT_TEMPLATES
from core.models import (
    Customer,
    Message,
    Order,
    OrderItem,
    Payment,
    Refund,
    RefundStatus,
)
from core.models.messaging import MESSAGE_STATUS_LABELS
from core.models.orders import GATEWAY_LABELS, PAYMENT_METHOD_LABELS
from core.money import format_krw
from core.safe_text import search_words

SEARCH_LIMIT = 50


def _prefix(column: Any, text: str) -> Any:
    """`column LIKE 'text%'` written as a range, so the column's index is used on SQLite and PostgreSQL."""
    return and_(column >= text, column < text + "\U0010ffff")


def search_orders(
    session: Session,
    *,
    query: str = "",
    status: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    product_id: int | None = None,
    payment_method: str | None = None,
    limit: int = SEARCH_LIMIT,
) -> list[dict[str, Any]]:
    """Newest first: by order number (prefix), customer name (prefix) or phone (7+ digits), with filters.

    Each branch is its own indexed query (order_number; customer name/phone -> their orders by
    customer and date), merged here, so it stays fast on a million orders.
    """
    limit = max(1, min(int(limit), 500))

    def build_filters(indexed: bool) -> list[Any]:
        """indexed=False writes status/date filters so no index serves them: in the order-number and
        customer branches their own index must drive the query (else the planner may walk the
        status/date index over a million rows probing for a handful of matches)."""
        status_column = Order.status if indexed else func.coalesce(Order.status, Order.status)
        date_column = Order.ordered_at if indexed else func.coalesce(Order.ordered_at, Order.ordered_at)
        result: list[Any] = []
        if status:
            result.append(status_column == status)
        if date_from or date_to:
            start, end = clock.kst_day_range(date_from or date(2000, 1, 1), date_to or date(2100, 1, 1))
            result += [date_column >= start, date_column < end]
        if product_id is not None:
            result.append(exists().where(OrderItem.order_id == Order.id, OrderItem.product_id == product_id))
        if payment_method:
            result.append(exists().where(Payment.order_id == Order.id, Payment.method == payment_method))
        return result

    def run(*conditions: Any, indexed: bool = True, index_order: bool = True) -> list[Any]:
        statement = (
            select(
                Order.id,
                Order.order_number,
                Order.status,
                Order.total_amount,
                Order.refunded_amount,
                Order.ordered_at,
                Order.source,
                Order.customer_id,
                Customer.name,
                Customer.phone,
            )
            .join(Customer, Customer.id == Order.customer_id)  # type: ignore[arg-type]
            .where(*conditions, *build_filters(indexed))
            # index_order=False: sorted by ordered_at's index, PostgreSQL walked a million orders
            # backwards looking for an old order number's 50 (3.8 s); the number's index goes first.
            .order_by(
                (
                    Order.ordered_at if index_order else func.coalesce(Order.ordered_at, Order.ordered_at)
                ).desc()
            )  # type: ignore[attr-defined]
            .limit(limit)
        )
        return list(session.exec(statement).all())

    text = search_words(query)
    if not text:
        rows = run()
    else:
        rows = run(_prefix(Order.order_number, text), indexed=False, index_order=False)
        customer_match = _prefix(Customer.name, text)
        mobile = canonical_mobile(text)
        if mobile is not None:
            # The whole number only: a prefix search let staff recover masked numbers digit by digit.
            customer_match = or_(Customer.mobile == mobile, Customer.phone.in_([format_mobile(mobile), mobile]))
        elif sum(ch.isdigit() for ch in text) >= 7:
            customer_match = Customer.phone == text  # a number kept as given (not a mobile): exactly
        customer_ids = list(session.exec(select(Customer.id).where(customer_match).limit(200)).all())
        if customer_ids:
            rows += run(Order.customer_id.in_(customer_ids), indexed=False)  # type: ignore[attr-defined]
        unique = {row.id: row for row in rows}
        rows = sorted(unique.values(), key=lambda row: row.ordered_at, reverse=True)
    vips = vip.vip_ids(session, (r.customer_id for r in rows[:limit]))
    return [
        {
            "id": r.id,
            "order_number": r.order_number,
            "customer_name": r.name,
            "phone": r.phone,
            "total_amount": r.total_amount,
            "refunded_amount": r.refunded_amount,
            "status": r.status,
            "ordered_at": r.ordered_at,
            "source": r.source,
            "vip": r.customer_id in vips,
        }
        for r in rows[:limit]
    ]


TEMPLATE_NAMES = {spec["key"]: spec["name"] for spec in DEFAULT_TEMPLATES}


def order_detail(session: Session, order_id: int) -> dict[str, Any]:
    """Everything the order screen shows: items, payments (with routing), refunds, messages, a timeline."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"없는 주문입니다 (#{order_id})")
    customer = session.get(Customer, order.customer_id)
    items = list(session.exec(select(OrderItem).where(OrderItem.order_id == order_id)).all())
    payments = list(session.exec(select(Payment).where(Payment.order_id == order_id)).all())
    refunds = list(
        session.exec(
            select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)  # type: ignore[arg-type]
        ).all()
    )
    messages = list(
        session.exec(
            select(Message)
            .where(Message.customer_id == order.customer_id, Message.created_at >= order.ordered_at)
            .order_by(Message.created_at)
            .limit(100)  # type: ignore[arg-type]
        ).all()
    )
    timeline: list[dict[str, Any]] = [{"at": order.ordered_at, "event": "주문 접수"}]
    for payment in payments:
        if payment.approved_at:
            timeline.append(
                {
                    "at": payment.approved_at,
                    "event": f"결제 완료 {format_krw(payment.amount)} ("
                    f"{PAYMENT_METHOD_LABELS.get(payment.method or '') or GATEWAY_LABELS.get(payment.gateway, '결제')})",
                }
            )
    if order.subscription_id is not None:  # every try at the subscription charge, with its outcome
        from core.billing.queries import order_attempts  # billing records orders through this module

        timeline.extend(order_attempts(session, order_id))
    for refund in refunds:
        timeline.append(
            {"at": refund.created_at, "event": f"환불 요청 {format_krw(refund.amount)}: {refund.reason}"}
        )
        if refund.completed_at:
            label = "환불 완료" if refund.status == RefundStatus.SUCCEEDED else "환불 실패"
            timeline.append({"at": refund.completed_at, "event": f"{label} {format_krw(refund.amount)}"})
    for message in messages:
        timeline.append(
            {
                "at": message.created_at,
                "event": f"메시지 {TEMPLATE_NAMES.get(message.template_key or '', '안내')} "
                f"({MESSAGE_STATUS_LABELS.get(message.status, '처리 중')})",
            }
        )
    timeline.sort(key=lambda entry: entry["at"])
    return {
        "order": order,
        "customer": customer,
        "items": items,
        "payments": payments,
        "refunds": refunds,
        "messages": messages,
        "timeline": timeline,
        "vip": vip.is_vip_customer(session, order.customer_id),
    }
