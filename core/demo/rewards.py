"""Demo rewards: the owner's reward choices, a few coupons (one on an open payment link's customer, so
typing it on /pay works at once), some points, and one credited referral (매출 → 추천 성과, the
주문 timeline). Written through core.rewards, like a shop's own."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from core.models import (
    Coupon,
    Customer,
    Order,
    PaymentLink,
    PaymentLinkStatus,
    Referral,
    ReferralCode,
    ReferralStatus,
    RewardReason,
    Setting,
)
from core.rewards import rules, service
from core.rewards.referral import referral_code_for

COUPON = {"kind": "coupon", "amount": 3_000, "valid_days": 30}
REFERRAL = {"kind": "coupon", "amount": 5_000, "valid_days": 60}


def seed_rewards(session: Session, now: datetime, seed: int) -> dict[str, int]:
    """Rewards on the seeded shop; the same seed gives the same rows (codes drawn from `seed`)."""
    # The seed writes one audit row for all it made (core.demo.seed): no per-row audit here.
    session.merge(
        Setting(key=service.SETTINGS_KEY, value={"review": COUPON, "referral": REFERRAL}, updated_at=now)
    )
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
        service.grant(
            session,
            customer_id=link.customer_id,  # type: ignore[arg-type]
            choice=rules.reward_choice(COUPON),
            reason=RewardReason.MANUAL,
            source_key=f"manual:demo:{link.id}",
            now=now,
            audited=False,
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
            audited=False,
        )
        counts["point_entries"] += 1
    counts["referrals"] = _one_referral(session)
    counts["coupons"] += counts["referrals"]
    _same_codes_for_the_same_seed(session, now, random.Random(seed))
    return counts


def _same_codes_for_the_same_seed(session: Session, now: datetime, rng: random.Random) -> None:
    """Codes are secret random draws in a shop; in the demo they follow the seed (a seed gives one store)."""

    def draw(length: int) -> str:
        return "".join(rng.choice(rules.ALPHABET) for _ in range(length))

    for coupon in session.scalars(select(Coupon).order_by(Coupon.id)).all():
        raw = draw(rules.COUPON_CODE_LENGTH)
        coupon.code = "-".join(raw[i : i + 4] for i in range(0, rules.COUPON_CODE_LENGTH, 4))
    for referral_code in session.scalars(select(ReferralCode).order_by(ReferralCode.id)).all():
        referral_code.code, referral_code.created_at = draw(rules.REFERRAL_CODE_LENGTH), now
    session.flush()


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
        now=order.paid_at,  # type: ignore[arg-type]
        audited=False,
    )
    session.flush()
    return 1
