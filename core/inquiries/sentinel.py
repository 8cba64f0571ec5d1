"""The double-charge sentinel: find two successful payments that are one purchase charged twice,
open an 이중 결제 inquiry with the evidence (dedupe key), refund the later payment once
(idempotency key), tell the customer and resolve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core import clock, settings_store
from core.accounts.actor import SYSTEM_ACTOR
from core.inquiries import service
from core.models import Inquiry, InquiryStatus, InquiryType, OrderItem, Payment, PaymentStatus
from core.money import format_krw

SUCCESSFUL = (PaymentStatus.APPROVED.value, PaymentStatus.PARTIALLY_REFUNDED.value)
DEFAULT_WINDOW_MINUTES = 10
LOOKBACK = timedelta(hours=48)


@dataclass(frozen=True)
class PaymentFact:
    """What the sentinel needs to know of one successful payment (pure input for find_duplicates)."""

    id: int
    customer_id: int
    order_id: int | None
    amount: int
    approved_at: datetime
    products: tuple[str, ...]  # product ids (or names when no id) of the order, sorted


@dataclass(frozen=True)
class DoubleCharge:
    original: PaymentFact
    duplicate: PaymentFact
    rule: str  # same_order | same_customer_amount_product


def find_duplicates(payments: Sequence[PaymentFact], window: timedelta) -> list[DoubleCharge]:
    """Pairs (earliest, later) of two successful payments that are one purchase charged twice.

    Rule 1: two payments for the same order. Rule 2: the same customer, amount and products with
    the later one approved within `window` of the earlier. The earliest payment is always kept.
    """
    ordered = sorted(payments, key=lambda p: (p.approved_at, p.id))
    found: dict[int, DoubleCharge] = {}
    by_order: dict[int, PaymentFact] = {}
    by_purchase: dict[tuple[int, int, tuple[str, ...]], PaymentFact] = {}
    for payment in ordered:
        if payment.order_id is not None:
            first = by_order.get(payment.order_id)
            if first is not None:
                found[payment.id] = DoubleCharge(first, payment, "same_order")
                continue
            by_order[payment.order_id] = payment
        if payment.products:
            key = (payment.customer_id, payment.amount, payment.products)
            first = by_purchase.get(key)
            if first is not None and payment.approved_at - first.approved_at <= window:
                found[payment.id] = DoubleCharge(first, payment, "same_customer_amount_product")
                continue
            by_purchase[key] = payment
    return list(found.values())


def window_of(session: Session) -> timedelta:
    """How close two same-purchase payments must be to count as one charged twice (setting)."""
    minutes = settings_store.get(session, "double_charge_window_minutes") or DEFAULT_WINDOW_MINUTES
    return timedelta(minutes=int(minutes))


def unresolved(session: Session, now: datetime, window: timedelta) -> list[DoubleCharge]:
    """The double charges of the last LOOKBACK whose inquiry is not resolved yet."""
    pairs = find_duplicates(_facts(session, now), window)
    keys = [dedupe_key(pair) for pair in pairs]
    resolved = set(
        session.exec(
            select(Inquiry.dedupe_key).where(
                col(Inquiry.dedupe_key).in_(keys or [""]), Inquiry.status == InquiryStatus.RESOLVED
            )
        ).all()
    )
    return [pair for pair in pairs if dedupe_key(pair) not in resolved]


def dedupe_key(pair: DoubleCharge) -> str:
    """One inquiry per later payment."""
    return f"double_charge:{pair.duplicate.id}"


def _facts(session: Session, now: datetime) -> list[PaymentFact]:
    rows = session.exec(
        select(Payment.id, Payment.customer_id, Payment.order_id, Payment.amount, Payment.approved_at).where(
            col(Payment.status).in_(SUCCESSFUL),
            col(Payment.approved_at) >= now - LOOKBACK,
            col(Payment.approved_at) <= now,
        )
    ).all()
    order_ids = {r[2] for r in rows if r[2] is not None}
    products: dict[int, list[str]] = defaultdict(list)
    ids = sorted(order_ids)
    for start in range(0, len(ids), 1000):
        for order_id, product_id, name in session.exec(
            select(OrderItem.order_id, OrderItem.product_id, OrderItem.product_name).where(
                col(OrderItem.order_id).in_(ids[start : start + 1000])
            )
        ).all():
            products[order_id].append(f"p{product_id}" if product_id is not None else f"n{name}")
    return [
        PaymentFact(
            r[0],
            r[1],
            r[2],
            r[3],
            clock.as_utc(r[4]),
            tuple(sorted(products.get(r[2], ()))) if r[2] is not None else (),
        )
        for r in rows
    ]


def open_inquiry(session: Session, pair: DoubleCharge, key: str) -> bool:
    if session.exec(select(Inquiry.id).where(Inquiry.dedupe_key == key)).first() is not None:
        return False
    first, later = pair.original, pair.duplicate
    rule = "같은 주문" if pair.rule == "same_order" else "같은 고객·금액·상품"
    body = (
        f"[자동 감지] 이중 결제 ({rule})\n"
        f"원 결제({first.id}번) {format_krw(first.amount)} {clock.format_kst(first.approved_at, True)}\n"
        f"중복 결제({later.id}번) {format_krw(later.amount)} {clock.format_kst(later.approved_at, True)}"
    )
    service.create_inquiry(
        session,
        SYSTEM_ACTOR,
        customer_id=later.customer_id,
        body=body,
        inquiry_type=InquiryType.DOUBLE_CHARGE,
        subject=f"이중 결제 자동 감지 ({later.id}번 결제)",
        order_id=later.order_id,
        payment_id=later.id,
        source="worker",
        dedupe_key=key,
        evidence={
            "rule": pair.rule,
            "original_payment_id": first.id,
            "duplicate_payment_id": later.id,
            "amount": later.amount,
        },
    )
    return True


def refund_and_resolve(
    session: Session, pair: DoubleCharge, key: str, refund_fn: service.RefundFn | None
) -> bool:
    inquiry = session.exec(select(Inquiry).where(Inquiry.dedupe_key == key)).one()
    if inquiry.status == InquiryStatus.RESOLVED:
        return False
    statement = select(Payment).where(Payment.id == pair.duplicate.id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    payment = session.exec(statement).one()
    refundable = payment.amount - payment.refunded_amount
    refunded = False
    if refundable > 0:
        service.refund(
            session,
            SYSTEM_ACTOR,
            inquiry.id,
            payment_id=payment.id,
            amount=refundable,
            reason="이중 결제 자동 환불",
            idempotency_key=f"double_charge_refund:{payment.id}",
            refund_fn=refund_fn,
        )
        refunded = True
    service.reply(
        session,
        SYSTEM_ACTOR,
        inquiry.id,
        f"고객님, 같은 결제가 두 번 승인된 것을 확인하여 나중 결제 {format_krw(payment.amount)}을(를) 자동으로 "
        "취소했습니다. 카드사에 따라 환불 반영까지 3~7영업일이 걸릴 수 있습니다. 불편을 드려 죄송합니다.",
    )
    service.resolve(session, SYSTEM_ACTOR, inquiry.id, "이중 결제 자동 환불 완료")
    return refunded
