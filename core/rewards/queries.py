"""Reads: a customer's rewards (for the timeline on 주문), the 매출 referral panel, the coupon list
on 설정, the share link on the 결제 완료 page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from core.models import (
    Coupon,
    Customer,
    Order,
    OrderItem,
    PointEntry,
    Referral,
    ReferralCode,
    ReferralStatus,
)
from core.models.rewards import REWARD_REASON_LABELS
from core.money import format_krw
from core.rewards.referral import referral_url


def customer_timeline(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """The customer's rewards as timeline entries ({"at", "event"}): coupons issued and used, points,
    referrals credited (or not, with the reason) for them as referrer."""
    entries: list[dict[str, Any]] = []
    for coupon in session.scalars(select(Coupon).where(Coupon.customer_id == customer_id)):
        why = REWARD_REASON_LABELS.get(coupon.reason, coupon.reason)
        entries.append(
            {"at": coupon.issued_at, "event": f"쿠폰 발급 {format_krw(coupon.amount)} ({why}, {coupon.code})"}
        )
        if coupon.redeemed_order_id is not None and coupon.redeemed_at is not None:
            entries.append(
                {"at": coupon.redeemed_at, "event": f"쿠폰 사용 {format_krw(coupon.amount)} ({coupon.code})"}
            )
    for entry in session.scalars(select(PointEntry).where(PointEntry.customer_id == customer_id)):
        why = REWARD_REASON_LABELS.get(entry.reason, entry.reason)
        sign = "적립" if entry.amount > 0 else "사용"
        entries.append({"at": entry.created_at, "event": f"포인트 {sign} {abs(entry.amount):,}P ({why})"})
    referred = session.execute(
        select(Referral, Customer.name)
        .outerjoin(Customer, Customer.id == Referral.referred_customer_id)
        .where(Referral.referrer_id == customer_id, Referral.order_id.is_not(None))  # type: ignore[union-attr]
    ).all()
    for visit, name in referred:
        if visit.status == ReferralStatus.CREDITED:
            entries.append({"at": visit.credited_at, "event": f"추천 보상: {name or '고객'}님 첫 구매"})
        else:
            entries.append({"at": visit.visited_at, "event": f"추천 보상 없음: {visit.refusal}"})
    return sorted(entries, key=lambda e: e["at"])


@dataclass(frozen=True)
class ReferralPanel:
    orders: int  # purchases through a referral link that credited the referrer
    revenue: int  # what those orders paid, net of refunds
    rewards_paid: int  # coupons (face value) and points given to referrers in the period
    top_referrers: list[dict[str, Any]]  # 고객, 추천 주문, 추천 매출


def referral_panel(session: Session, start: datetime, end: datetime, *, top: int = 5) -> ReferralPanel:
    """The 매출 page's referral panel for [start, end): credited referrals by the time of credit."""
    credited = (
        select(Referral.referrer_id, Order.total_amount, Order.refunded_amount)
        .join(Order, Order.id == Referral.order_id)
        .where(
            Referral.status == ReferralStatus.CREDITED.value,
            Referral.credited_at >= start,  # type: ignore[operator]
            Referral.credited_at < end,
        )  # type: ignore[operator]
        .subquery()
    )
    net = credited.c.total_amount - credited.c.refunded_amount
    count, revenue = session.execute(select(func.count(), func.coalesce(func.sum(net), 0))).one()
    coupons = session.scalar(
        select(func.coalesce(func.sum(Coupon.amount), 0)).where(
            Coupon.reason == "referral", Coupon.issued_at >= start, Coupon.issued_at < end
        )
    )
    points = session.scalar(
        select(func.coalesce(func.sum(PointEntry.amount), 0)).where(
            PointEntry.reason == "referral", PointEntry.created_at >= start, PointEntry.created_at < end
        )
    )
    leaders = session.execute(
        select(Customer.name, func.count(), func.sum(net))
        .select_from(credited)
        .join(Customer, Customer.id == credited.c.referrer_id)
        .group_by(Customer.id, Customer.name)
        .order_by(func.count().desc(), func.sum(net).desc())
        .limit(top)
    ).all()
    return ReferralPanel(
        orders=int(count),
        revenue=int(revenue),
        rewards_paid=int(coupons or 0) + int(points or 0),
        top_referrers=[
            {"고객": name, "추천 주문": n, "추천 매출": int(amount or 0)} for name, n, amount in leaders
        ],
    )


def recent_coupons(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Coupons newest first, for 설정 → 리워드 (Korean column names)."""
    rows = session.execute(
        select(Coupon, Customer.name)
        .join(Customer, Customer.id == Coupon.customer_id)
        .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
        .limit(limit)  # type: ignore[union-attr]
    ).all()
    return [
        {
            "쿠폰 번호": c.code,
            "고객": name,
            "금액": c.amount,
            "사유": REWARD_REASON_LABELS.get(c.reason, c.reason),
            "발급": c.issued_at,
            "만료": c.expires_at,
            "상태": "사용" if c.redeemed_order_id else ("결제 중" if c.redeemed_at else "미사용"),
        }
        for c, name in rows
    ]


def share_url(session: Session, customer_id: int, order_id: int) -> str | None:
    """The buyer's referral link to what they bought (the 결제 완료 page's 추천하기), or None when the
    buyer has no code yet (the order confirmation makes it in the payment's transaction) or the order
    is a custom quote of no product (there is nothing a friend could buy through it)."""
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id))
    if code is None:
        return None
    product_id = session.scalar(
        select(OrderItem.product_id)
        .where(OrderItem.order_id == order_id, OrderItem.product_id.is_not(None))  # type: ignore[union-attr]
        .order_by(OrderItem.id)
        .limit(1)
    )
    return referral_url(code, product_id) if product_id is not None else None
