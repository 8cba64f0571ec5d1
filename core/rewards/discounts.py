"""Discounts on a checkout: a coupon or points held on the payment link while it is being paid,
released when that payment is cancelled, fails or is abandoned, and settled with the paid order.

The gateway is asked for the reduced amount only: the link's amount *is* what the customer pays
(start_payment sends it), so applying a discount lowers it and releasing one restores it; the
order records what was paid (net, so 매출 counts net revenue) and the discount beside it. A coupon
is taken by one conditional UPDATE (``redeemed_at IS NULL``): of two tabs at once one gets it, the
other a Korean sentence; points are spent under a lock on the customer's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlmodel import Session

import core.rewards.rules as rules
from core.accounts import audit
from core.accounts.actor import SYSTEM_ACTOR
from core.customers import service as customers
from core.errors import ValidationFailed
from core.models import Coupon, Customer, Order, Payment, PaymentLink, PaymentStatus, PointEntry, RewardReason
from core.payments import links as payment_links

IN_FLIGHT = (PaymentStatus.UNKNOWN.value, PaymentStatus.APPROVED.value)  # an approve sent: hands off


@dataclass(frozen=True)
class CheckoutDiscount:
    coupon_code: str | None = None
    coupon_amount: int = 0
    points: int = 0

    @property
    def total(self) -> int:
        return self.coupon_amount + self.points


def held_discount(session: Session, link_id: int) -> CheckoutDiscount:
    """What is taken off this checkout now (held, or settled with its order)."""
    coupon = session.scalars(
        select(Coupon).where(Coupon.payment_link_id == link_id, Coupon.redeemed_at.is_not(None))  # type: ignore[union-attr]
    ).first()
    points = session.scalar(
        select(func.coalesce(func.sum(PointEntry.amount), 0)).where(PointEntry.payment_link_id == link_id)
    )
    return CheckoutDiscount(
        coupon_code=coupon.code if coupon else None,
        coupon_amount=coupon.amount if coupon else 0,
        points=-int(points or 0),
    )


def _set_link_amount(session: Session, link: PaymentLink, amount: int) -> None:
    """The link's amount (what the gateway is asked for) and its not-yet-sent payment follow."""
    fully_tax_free = link.tax_free_amount == link.amount
    link.amount = amount
    link.tax_free_amount = amount if fully_tax_free else min(link.tax_free_amount, amount)
    session.add(link)
    session.execute(
        update(Payment)
        .where(Payment.idempotency_key == f"link:{link.code}", Payment.status == PaymentStatus.READY.value)  # type: ignore[arg-type]
        .values(amount=link.amount, tax_free_amount=link.tax_free_amount)
    )


def release_discounts(session: Session, link: PaymentLink) -> int:
    """Free what this unpaid checkout holds (the coupon, the points) and restore its amount.

    Returns the amount given back. Nothing is released once the payment's approve was sent
    (UNKNOWN, APPROVED): the order will take the discount, or the reconciliation decides."""
    if _approve_sent(session, link):
        return 0
    held = held_discount(session, link.id)  # type: ignore[arg-type]
    if not held.total:
        return 0
    session.execute(
        update(Coupon)
        .where(Coupon.payment_link_id == link.id, Coupon.redeemed_order_id.is_(None))  # type: ignore[union-attr]
        .values(redeemed_at=None, payment_link_id=None)
    )
    session.execute(
        delete(PointEntry).where(PointEntry.payment_link_id == link.id, PointEntry.order_id.is_(None))  # type: ignore[union-attr]
    )
    _set_link_amount(session, link, link.amount + held.total)
    audit.record(
        session,
        SYSTEM_ACTOR,
        "reward.release",
        "payment_link",
        link.id,
        coupon=held.coupon_code,
        points=held.points,
    )
    return held.total


def _approve_sent(session: Session, link: PaymentLink) -> bool:
    status = session.scalar(select(Payment.status).where(Payment.idempotency_key == f"link:{link.code}"))
    return status in IN_FLIGHT


def points_balance(session: Session, customer_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointEntry.amount), 0)).where(PointEntry.customer_id == customer_id)
        )
        or 0
    )


def apply_discounts(
    session: Session,
    code: str,
    *,
    coupon_code: str | None,
    use_points: bool,
    customer_phone: str | None,
    now: datetime,
) -> CheckoutDiscount:
    """The customer pays with a coupon and/or points: hold them on this checkout, lower its amount.

    Called before the payment starts; what this checkout held before is released first, so the
    customer may change their mind between tries. Refusals (unknown, expired, used, someone else's,
    larger than the order) raise ValidationFailed with a Korean sentence and hold nothing."""
    link = payment_links.get_link(session, code)
    if link.status not in payment_links.OPEN_STATUSES or _approve_sent(session, link):
        return held_discount(session, link.id)  # type: ignore[arg-type]  # start_payment says why not
    release_discounts(session, link)
    typed = (coupon_code or "").strip()
    if not typed and not use_points:
        return CheckoutDiscount()
    buyer = (
        session.get(Customer, link.customer_id)
        if link.customer_id is not None
        else customers.find_by_phone(session, customer_phone)
    )
    coupon_amount, coupon_code_used = 0, None
    if typed:
        normalized = rules.normalize_coupon_code(typed)
        if normalized is None:
            raise ValidationFailed("쿠폰 번호를 확인해 주세요 (예: ABCD-EFGH-JKMN)")
        coupon = session.scalars(select(Coupon).where(Coupon.code == normalized)).first()
        if coupon is None:
            raise ValidationFailed("없는 쿠폰 번호입니다. 받은 쿠폰 번호를 다시 확인해 주세요.")
        refusal = rules.coupon_refusal(
            order_amount=link.amount,
            coupon_amount=coupon.amount,
            coupon_customer_id=coupon.customer_id,
            buyer_id=buyer.id if buyer else -1,
            expires_at=coupon.expires_at,
            redeemed=coupon.redeemed_at is not None,
            now=now,
        )
        if refusal:
            raise ValidationFailed(refusal)
        taken = session.execute(
            update(Coupon)
            .where(Coupon.id == coupon.id, Coupon.redeemed_at.is_(None), Coupon.expires_at > now)  # type: ignore[union-attr,arg-type]
            .values(redeemed_at=now, payment_link_id=link.id)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise ValidationFailed("이미 사용된 쿠폰입니다.")
        coupon_amount, coupon_code_used = coupon.amount, coupon.code
    points = 0
    if use_points and buyer is not None:
        # Under the customer's row lock (PostgreSQL; SQLite writers queue anyway): two checkouts of
        # one customer never spend the same balance.
        session.execute(select(Customer.id).where(Customer.id == buyer.id).with_for_update())
        points = rules.points_to_use(
            order_amount=link.amount,
            coupon_amount=coupon_amount,
            balance=points_balance(session, buyer.id),  # type: ignore[arg-type]
        )
        if points:
            session.add(
                PointEntry(
                    customer_id=buyer.id,
                    amount=-points,
                    reason=RewardReason.REDEMPTION.value,
                    source_key=f"redeem:link:{link.id}",
                    payment_link_id=link.id,
                    created_at=now,
                )
            )
    if use_points and not typed and not points:
        raise ValidationFailed("사용할 수 있는 포인트가 없습니다.")
    held = CheckoutDiscount(coupon_code=coupon_code_used, coupon_amount=coupon_amount, points=points)
    _set_link_amount(session, link, link.amount - held.total)
    audit.record(
        session,
        SYSTEM_ACTOR,
        "reward.hold",
        "payment_link",
        link.id,
        coupon=coupon_code_used,
        coupon_amount=coupon_amount,
        points=points,
        amount=link.amount,
    )
    session.flush()
    return held


def settle_discount(session: Session, link: PaymentLink, order: Order) -> None:
    """The paid order takes what its checkout held, in the payment's transaction.

    Core statements only (no ORM loads): this runs in every link payment's completion."""
    coupons, points = Coupon.__table__, PointEntry.__table__  # type: ignore[attr-defined]
    coupon = session.execute(
        update(coupons)
        .where(
            coupons.c.payment_link_id == link.id,
            coupons.c.redeemed_order_id.is_(None),
            coupons.c.redeemed_at.is_not(None),
        )
        .values(redeemed_order_id=order.id)
        .returning(coupons.c.id, coupons.c.amount)
    ).first()
    spent = (
        session.execute(
            update(points)
            .where(points.c.payment_link_id == link.id, points.c.order_id.is_(None))
            .values(order_id=order.id)
            .returning(points.c.amount)
        )
        .scalars()
        .all()
    )
    discount = (coupon.amount if coupon else 0) - sum(spent)
    if discount:
        order.discount_amount = discount
        order.coupon_id = coupon.id if coupon else None
        session.add(order)
