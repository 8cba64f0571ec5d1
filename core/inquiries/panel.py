"""The customer panel of an inquiry: every order and payment of the customer, payments that look like
one purchase charged twice side by side, and the refund of the later one.

Look-alike rule (`look_alikes`, pure): two approved payments of the same customer are shown as a
possible double charge when they are for the same order, or for the same amount with the later one
approved within the sentinel window (core.inquiries.sentinel.window_of, 설정) of the earlier. The
earliest payment of a run is the one kept; each later one is paired with it once. This is wider than
the sentinel's automatic rule (which also needs the same products): a person looks at these, the
worker does not refund them on its own.

The refund of the later payment goes through service.refund (role check, audit, the payments refund
service) with the sentinel's own idempotency key `double_charge_refund:{payment}`, so a click here,
a second click, another tab and the sentinel's automatic refund all become one refund at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import Actor, require_role
from core.errors import ValidationFailed
from core.inquiries import sentinel, service
from core.models import Inquiry, Order, Payment, PaymentStatus, Role
from core.money import format_krw

# Payments that took money (refunded ones too: a pair whose later payment is refunded shows as done).
CHARGED = (
    PaymentStatus.APPROVED.value,
    PaymentStatus.PARTIALLY_REFUNDED.value,
    PaymentStatus.REFUNDED.value,
)
MAX_ROWS = 200  # a customer with more than this many orders is a business account: newest first


@dataclass(frozen=True)
class LookAlike:
    original_id: int
    later_id: int
    rule: str  # same_order | same_amount
    gap_seconds: float


def look_alikes(payments: Sequence[Payment], window: timedelta) -> list[LookAlike]:
    """Pairs (earliest, later) of charged payments that look like one purchase charged twice."""
    charged = sorted(
        (p for p in payments if p.approved_at is not None and p.status in CHARGED),
        key=lambda p: (clock.as_utc(p.approved_at), p.id),
    )
    pairs: list[LookAlike] = []
    by_order: dict[int, Payment] = {}
    by_amount: dict[int, Payment] = {}
    for payment in charged:
        at = clock.as_utc(payment.approved_at)
        if payment.order_id is not None:
            first = by_order.get(payment.order_id)
            if first is not None:
                gap = (at - clock.as_utc(first.approved_at)).total_seconds()
                pairs.append(LookAlike(first.id, payment.id, "same_order", gap))  # type: ignore[arg-type]
                continue
            by_order[payment.order_id] = payment
        first = by_amount.get(payment.amount)
        if first is not None and at - clock.as_utc(first.approved_at) <= window:
            gap = (at - clock.as_utc(first.approved_at)).total_seconds()
            pairs.append(LookAlike(first.id, payment.id, "same_amount", gap))  # type: ignore[arg-type]
            continue
        by_amount[payment.amount] = payment
    return pairs


@dataclass(frozen=True)
class CustomerPanel:
    orders: list[Order]
    payments: list[Payment]
    look_alikes: list[LookAlike]
    window: timedelta
    orders_total: int
    payments_total: int

    def payment(self, payment_id: int) -> Payment:
        return next(p for p in self.payments if p.id == payment_id)


def customer_panel(session: Session, customer_id: int) -> CustomerPanel:
    """Every order and payment of the customer (newest first, up to MAX_ROWS each) and the look-alikes."""
    orders = list(
        session.exec(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(col(Order.ordered_at).desc(), col(Order.id).desc())
            .limit(MAX_ROWS)
        ).all()
    )
    payments = list(
        session.exec(
            select(Payment)
            .where(Payment.customer_id == customer_id)
            .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
            .limit(MAX_ROWS)
        ).all()
    )
    orders_total = session.exec(select(func.count()).select_from(Order).where(Order.customer_id == customer_id)).one()
    payments_total = session.exec(
        select(func.count()).select_from(Payment).where(Payment.customer_id == customer_id)
    ).one()
    window = sentinel.window_of(session)
    return CustomerPanel(
        orders, payments, look_alikes(payments, window), window, int(orders_total), int(payments_total)
    )


def refund_key(payment_id: int) -> str:
    """The sentinel's key: the desk and the worker refund a double charge at most once between them."""
    return f"double_charge_refund:{payment_id}"


def refund_later(
    session: Session,
    actor: Actor,
    inquiry_id: int,
    *,
    original_id: int,
    later_id: int,
    refund_fn: service.RefundFn | None = None,
) -> Any:
    """Refund what is left of the later payment of a look-alike pair (cs/owner; audited).

    The pair is checked again here (both the customer's, still a look-alike now), so a stale page
    cannot refund a payment that no longer looks like a duplicate.
    """
    require_role(actor, Role.CS, Role.OWNER)
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None:
        raise ValidationFailed(f"문의를 찾을 수 없습니다 (#{inquiry_id})")
    if original_id == later_id:
        raise ValidationFailed("같은 결제를 두 번 고를 수 없습니다")
    original, later = session.get(Payment, original_id), session.get(Payment, later_id)
    if original is None or later is None or {original.customer_id, later.customer_id} != {inquiry.customer_id}:
        raise ValidationFailed("이 고객의 결제가 아닙니다")
    pair = [p for p in look_alikes([original, later], sentinel.window_of(session)) if p.later_id == later.id]
    if not pair:
        raise ValidationFailed("두 결제가 더 이상 중복으로 보이지 않습니다 (다시 확인하세요)")
    left = later.amount - later.refunded_amount
    if left <= 0:
        raise ValidationFailed("나중 결제는 이미 전액 환불되었습니다")
    return service.refund(
        session,
        actor,
        inquiry_id,
        payment_id=later.id,
        amount=left,
        reason=f"중복 결제 환불 (원 결제 {original.id}번과 같은 {format_krw(original.amount)})",
        idempotency_key=refund_key(later.id),
        refund_fn=refund_fn,
    )


def gap_text(seconds: float) -> str:
    """'3분 12초 뒤' for the side-by-side view."""
    seconds = int(seconds)
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}시간 {minutes}분 뒤"
    if minutes:
        return f"{minutes}분 {rest}초 뒤"
    return f"{rest}초 뒤"


def when(at: datetime | None) -> str:
    return clock.format_kst(at, with_seconds=True) if at else "-"
