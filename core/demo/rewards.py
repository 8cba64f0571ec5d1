"""Demo rewards: the owner's reward choices, a few coupons (one on an open payment link's customer, so
typing it on /pay works at once), some points, and one credited referral (매출 → 추천 성과, the
주문 timeline). Written through core.rewards, like a shop's own."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from core.accounts.actor import CLI_ACTOR
from core.models import (
    Customer,
    Order,
    PaymentLink,
    PaymentLinkStatus,
    Referral,
    ReferralStatus,
    RewardReason,
)
from core.rewards import rules, service
from core.rewards.referral import referral_code_for

COUPON = {"kind": "coupon", "amount": 3_000, "valid_days": 30}
REFERRAL = {"kind": "coupon", "amount": 5_000, "valid_days": 60}


def seed_rewards(session: Session, now: datetime) -> dict[str, int]:
    service.save_reward_settings(session, CLI_ACTOR, review=COUPON, referral=REFERRAL)
    counts = {"coupons": 0, "point_entries": 0, "referrals": 0}
    open_links = session.scalars(
        select(PaymentLink)
        .where(
            PaymentLink.status == PaymentLinkStatus.CREATED.value,
            PaymentLink.customer_id.is_not(None),  # type: ignore[union-attr]
            PaymentLink.amount > COUPON["amount"] + rules.MIN_PAYMENT,
        )
        .order_by(PaymentLink.id)
        .limit(3)
    ).all()
    for link in open_links:  # the customer of an open link holds a coupon: type it on /pay
        service.issue_coupon(
            session,
            CLI_ACTOR,
            customer_id=link.customer_id,
            amount=COUPON["amount"],  # type: ignore[arg-type]
            valid_days=COUPON["valid_days"],
            now=now,
        )
        counts["coupons"] += 1
    if open_links:
        service.grant(
            session,
            customer_id=open_links[0].customer_id,
            choice=rules.reward_choice(  # type: ignore[arg-type]
                {"kind": "points", "amount": 2_000}
            ),
            reason=RewardReason.MANUAL,
            source_key="demo:points",
            now=now,
        )
        counts["point_entries"] += 1
    counts["referrals"] = _one_referral(session)
    counts["coupons"] += counts["referrals"]
    return counts


def _one_referral(session: Session) -> int:
    """The newest customer whose only order came through a payment link was referred by an earlier buyer."""
    single = select(Order.customer_id).group_by(Order.customer_id).having(func.count() == 1).subquery()
    row = session.execute(
        select(Order, Customer)
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            Order.customer_id.in_(select(single.c.customer_id)),
            Order.payment_link_id.is_not(None),  # type: ignore[union-attr]
            Order.paid_at.is_not(None),
        )  # type: ignore[union-attr]
        .order_by(Customer.created_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0
    order, buyer = row
    referrer = session.scalars(
        select(Order.customer_id)
        .where(Order.customer_id != buyer.id, Order.paid_at < order.paid_at)  # type: ignore[operator]
        .order_by(Order.paid_at.desc())
        .limit(1)  # type: ignore[union-attr]
    ).first()
    if referrer is None:
        return 0
    referral_code_for(session, referrer)
    visited = min(buyer.created_at, order.ordered_at) - timedelta(minutes=5)
    session.add(
        Referral(
            referrer_id=referrer,
            payment_link_id=order.payment_link_id,
            visited_at=visited,  # type: ignore[arg-type]
            status=ReferralStatus.CREDITED.value,
            referred_customer_id=buyer.id,
            order_id=order.id,
            credited_at=order.paid_at,
        )
    )
    service.grant(
        session,
        customer_id=referrer,
        choice=rules.reward_choice(REFERRAL),
        reason=RewardReason.REFERRAL,
        source_key=f"referral:{order.id}",
        now=order.paid_at,
    )  # type: ignore[arg-type]
    session.flush()
    return 1
