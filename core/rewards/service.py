"""Rewards that change the store: the owner's reward settings, grants (review, referral, manual),
and referral visits and credits (the discounts a checkout holds: core/rewards/discounts.py).

Nothing is granted or spent twice:
- every grant has a unique source key ("review:<order item>", "referral:<order>", "manual:<nonce>"):
  a second call finds the first row and grants nothing;
- a coupon is taken by one conditional UPDATE (``redeemed_at IS NULL``): of two tabs at once one
  gets it, the other a Korean sentence; points are spent under a lock on the customer's row;
- a discount is held on the checkout (the payment link) while it is being paid, and released
  (the coupon free again, the points back, the link's amount restored) when that payment is
  cancelled, fails or is abandoned; the paid order takes it for good (``settle_checkout``).

The gateway is asked for the reduced amount only: the link's amount *is* what the customer pays
(start_payment sends it), so applying a discount lowers it and releasing one restores it; the
order records what was paid (net, so 매출 counts net revenue) and the discount beside it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

import core.rewards.discounts as discounts
import core.rewards.rules as rules
from core import settings_store
from core.accounts import audit
from core.accounts.actor import SYSTEM_ACTOR, Actor, require_role
from core.errors import NotFound, ValidationFailed
from core.messaging.outbox import enqueue_many
from core.models import (
    Coupon,
    Customer,
    MessageKind,
    Order,
    OrderItem,
    Payment,
    PaymentLink,
    PointEntry,
    Product,
    Referral,
    ReferralCode,
    ReferralStatus,
    Review,
    RewardReason,
    Role,
)
from core.money import format_krw
from core.payments import links as payment_links

SETTINGS_KEY = "rewards"
REFERRAL_ACTOR = Actor(id=None, name="추천 링크", role=Role.STAFF)  # who makes a referral visit's checkout


# ------------------------------------------------------------------ the owner's settings


@dataclass(frozen=True)
class RewardSettings:
    review: rules.RewardChoice
    referral: rules.RewardChoice


def reward_settings(session: Session) -> RewardSettings:
    """The owner's choices from 설정; nothing chosen means no reward (a stored bad value too)."""
    stored = settings_store.get(session, SETTINGS_KEY) or {}

    def choice(key: str) -> rules.RewardChoice:
        try:
            return rules.reward_choice(stored.get(key))
        except ValueError:
            return rules.RewardChoice()

    return RewardSettings(review=choice("review"), referral=choice("referral"))


def save_reward_settings(
    session: Session, actor: Actor, *, review: dict[str, Any], referral: dict[str, Any]
) -> RewardSettings:
    """Owner only, audited (settings_store.put); a wrong value is refused whole with its reason."""
    require_role(actor, Role.OWNER)
    try:
        chosen = RewardSettings(review=rules.reward_choice(review), referral=rules.reward_choice(referral))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    value = {
        name: {"kind": c.kind, "amount": c.amount, "valid_days": c.valid_days}
        for name, c in (("review", chosen.review), ("referral", chosen.referral))
    }
    settings_store.put(session, actor, SETTINGS_KEY, value)
    return chosen


# ------------------------------------------------------------------ grants

Grant = Coupon | PointEntry


def _granted(session: Session, source_key: str) -> Grant | None:
    coupon = session.scalars(select(Coupon).where(Coupon.source_key == source_key)).first()
    if coupon is not None:
        return coupon
    return session.scalars(select(PointEntry).where(PointEntry.source_key == source_key)).first()


def grant(
    session: Session,
    *,
    customer_id: int,
    choice: rules.RewardChoice,
    reason: RewardReason,
    source_key: str,
    now: datetime,
    audited: bool = True,
) -> Grant | None:
    """Give `choice` to the customer once per source key; the existing grant when already given.
    `audited=False`: the caller's own audit row names the grant (a referral credit).

    One INSERT .. ON CONFLICT DO NOTHING (no ORM flush, no savepoint: this runs inside the payment's
    completion, issue 20's < 5 ms); nothing inserted means the key was granted already (or, once in
    10^17, a coupon code clashed: drawn again)."""
    if choice.kind == "none":
        return _granted(session, source_key)
    model = Coupon if choice.kind == "coupon" else PointEntry
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for _ in range(5):
        if choice.kind == "coupon":
            row: Grant = Coupon(
                code=rules.new_coupon_code(),
                customer_id=customer_id,
                amount=choice.amount,
                reason=reason.value,
                source_key=source_key,
                issued_at=now,
                expires_at=now + timedelta(days=choice.valid_days),
            )
        else:
            row = PointEntry(
                customer_id=customer_id,
                amount=choice.amount,
                reason=reason.value,
                source_key=source_key,
                created_at=now,
            )
        values = row.model_dump(exclude={"id"})
        table = model.__table__  # type: ignore[attr-defined]
        inserted = session.execute(
            dialect.insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
        ).scalar()
        if inserted is None:
            existing = _granted(session, source_key)
            if existing is not None:
                return existing
            continue
        row.id = inserted
        if not audited:
            return row
        audit.record(
            session,
            SYSTEM_ACTOR,
            f"reward.{choice.kind}",
            choice.kind,
            row.id,
            customer_id=customer_id,
            amount=choice.amount,
            reason=reason.value,
            source_key=source_key,
        )
        return row
    raise RuntimeError("could not draw a free coupon code")


def issue_coupon(
    session: Session, actor: Actor, *, customer_id: int, amount: Any, valid_days: Any, now: datetime
) -> Coupon:
    """A coupon the owner gives by hand (an apology, a regular): owner only, audited."""
    require_role(actor, Role.OWNER)
    if session.get(Customer, customer_id) is None:
        raise ValidationFailed(f"없는 고객입니다 (#{customer_id})")
    try:
        choice = rules.reward_choice({"kind": "coupon", "amount": amount, "valid_days": valid_days})
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    coupon = grant(
        session,
        customer_id=customer_id,
        choice=choice,
        reason=RewardReason.MANUAL,
        source_key=f"manual:{secrets.token_hex(8)}",
        now=now,
    )
    assert isinstance(coupon, Coupon)
    audit.record(
        session, actor, "coupon.issue", "coupon", coupon.id, customer_id=customer_id, amount=coupon.amount
    )
    return coupon


def review_source_key(review: Review) -> str:
    """One reward per order item (a legacy review of an order without items: per order)."""
    if review.order_item_id is None:
        return f"review:order:{review.order_id}"
    return f"review:{review.order_item_id}"


def reward_for_review(session: Session, *, review_id: int, now: datetime) -> Grant | None:
    """The owner's review reward for a review with text, once (the review page calls it on submit)."""
    review = session.get(Review, review_id)
    if review is None or not (review.body or "").strip():
        return None
    given = _granted(session, review_source_key(review))  # an edit, or the owner switched coupon/points since
    if given is not None:
        return given
    return grant(
        session,
        customer_id=review.customer_id,
        choice=reward_settings(session).review,
        reason=RewardReason.REVIEW,
        source_key=review_source_key(review),
        now=now,
    )


# ------------------------------------------------------------------ a link payment's completion


def settle_checkout(session: Session, link: PaymentLink, order: Order, payment: Payment) -> None:
    """The paid order takes what its checkout held, then a referral visit behind this checkout is
    credited, in the payment's transaction. Registered as a payment-link hook (core.rewards)."""
    discounts.settle_discount(session, link, order)
    credit_referral(session, link, order, now=order.paid_at or payment.approved_at)  # type: ignore[arg-type]


# ------------------------------------------------------------------ referrals


def _referral_product(session: Session, referrer_id: int, product_id: int | None) -> Product:
    if product_id is not None:
        product = session.get(Product, product_id)
    else:  # the product the referrer bought last (a link without ?p=)
        product = session.scalars(
            select(Product)
            .join(OrderItem, OrderItem.product_id == Product.id)
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.customer_id == referrer_id, Product.is_active.is_(True))  # type: ignore[attr-defined]
            .order_by(Order.ordered_at.desc())  # type: ignore[attr-defined]
            .limit(1)
        ).first()
    if product is None or not product.is_active:
        raise NotFound("지금은 판매하지 않는 상품입니다")
    return product


def visit_referral(
    session: Session, code: str, *, product_id: int | None, previous_link: str | None, now: datetime
) -> PaymentLink:
    """Someone opened a referral link: the checkout of the product, remembered as this referral.

    The same browser coming back (its cookie names the checkout it got) gets that checkout again
    while it can still be paid, and the 30 days always count from the first visit."""
    owner = session.scalars(select(ReferralCode).where(ReferralCode.code == code)).first()
    if owner is None:
        raise NotFound("없는 추천 링크입니다")
    previous = None
    if previous_link:
        previous = session.execute(
            select(Referral, PaymentLink)
            .join(PaymentLink, PaymentLink.id == Referral.payment_link_id)
            .where(PaymentLink.code == previous_link, Referral.referrer_id == owner.customer_id)
        ).first()
    product = _referral_product(session, owner.customer_id, product_id)
    if previous is not None:
        visit, link = previous
        if (
            link.product_id == product.id
            and link.status in payment_links.OPEN_STATUSES
            and (link.expires_at is None or link.expires_at > now)
        ):
            return link
    first_visit = previous[0].visited_at if previous is not None else now
    link = payment_links.create_payment_link(session, REFERRAL_ACTOR, product_id=product.id)
    session.add(Referral(referrer_id=owner.customer_id, payment_link_id=link.id, visited_at=first_visit))
    session.commit()
    return link


# Built once: an alias builds its column collection on creation (~0.3 ms each time, issue 20's < 5 ms).
_VISITS = Referral.__table__  # type: ignore[attr-defined]
_OTHER_VISITS = _VISITS.alias("other")
_BUYER = Customer.__table__.alias("buyer")  # type: ignore[attr-defined]
_REFERRER = Customer.__table__.alias("referrer")  # type: ignore[attr-defined]


def credit_referral(session: Session, link: PaymentLink, order: Order, *, now: datetime) -> str | None:
    """The purchase behind a referral visit: the referrer's reward and thanks, once, or the reason not.

    Returns the visit's new status ("credited", "refused"), None when there was no visit to settle
    (none, or settled already). One read (the visit, the buyer's newness, a loop, the referrer's
    contact) and one conditional UPDATE decide it: this runs in every link payment's completion."""
    visits, other, buyer, referrer = _VISITS, _OTHER_VISITS, _BUYER, _REFERRER
    buyer_id = order.customer_id
    found = session.execute(
        select(
            visits.c.id,
            visits.c.referrer_id,
            visits.c.visited_at,
            buyer.c.created_at,
            exists().where(Order.customer_id == buyer_id, Order.id != order.id).label("earlier"),
            exists()
            .where(
                other.c.referrer_id == buyer_id,
                other.c.referred_customer_id == visits.c.referrer_id,
                other.c.status == ReferralStatus.CREDITED.value,
            )
            .label("loop"),
            referrer.c.name,
            referrer.c.phone,
        )
        .select_from(
            visits.join(referrer, referrer.c.id == visits.c.referrer_id).join(buyer, buyer.c.id == buyer_id)
        )
        .where(visits.c.payment_link_id == link.id, visits.c.status == ReferralStatus.VISITED.value)
    ).first()
    if found is None:
        return None
    refusal = rules.referral_refusal(
        referrer_id=found.referrer_id,
        buyer_id=buyer_id,
        buyer_is_new=found.created_at >= found.visited_at and not found.earlier,
        buyer_referred_referrer=bool(found.loop),
        visited_at=found.visited_at,
        paid_at=now,
    )
    status = ReferralStatus.REFUSED if refusal else ReferralStatus.CREDITED
    moved = session.execute(
        update(visits)
        .where(visits.c.id == found.id, visits.c.status == ReferralStatus.VISITED.value)
        .values(
            status=status.value,
            referred_customer_id=buyer_id,
            order_id=order.id,
            refusal=refusal,
            credited_at=None if refusal else now,
        )
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return None
    reward = None
    if refusal is None:
        reward = grant(
            session,
            customer_id=found.referrer_id,
            choice=reward_settings(session).referral,
            reason=RewardReason.REFERRAL,
            source_key=f"referral:{order.id}",
            now=now,
            audited=False,
        )
        _thank(session, found.referrer_id, found.name, found.phone, order, reward)
    audit.record(
        session,
        SYSTEM_ACTOR,
        f"referral.{status.value}",
        "referral",
        found.id,
        order_id=order.id,
        referrer_id=found.referrer_id,
        refusal=refusal,
        reward=_reward_detail(reward),
    )
    return status.value


def _reward_detail(reward: Grant | None) -> dict[str, object] | None:
    if reward is None:
        return None
    kind = "coupon" if isinstance(reward, Coupon) else "points"
    return {"kind": kind, "id": reward.id, "amount": reward.amount}


def reward_text(reward: Grant | None) -> str:
    """How a grant reads in a message: '3,000원 할인 쿠폰(ABCD-EFGH-JKMN, 2027-01-05까지)'."""
    from core import clock

    if isinstance(reward, Coupon):
        until = clock.to_kst(reward.expires_at).strftime("%Y-%m-%d")
        return f"{format_krw(reward.amount)} 할인 쿠폰({reward.code}, {until}까지)"
    if isinstance(reward, PointEntry):
        return f"{reward.amount:,} 포인트"
    return "감사의 마음"


def _thank(
    session: Session,
    referrer_id: int,
    name: str | None,
    phone: str | None,
    order: Order,
    reward: Grant | None,
) -> None:
    """The referrer's thank-you (informational: it tells of a reward already given, asks nothing),
    queued once by its key (outbox.enqueue_many: one INSERT .. ON CONFLICT DO NOTHING)."""
    enqueue_many(
        session,
        [
            {
                "customer_id": referrer_id,
                "to_phone": phone,
                "template_key": "referral_thanks",
                "text": "",
                "variables": {"고객명": name or "고객", "보상": reward_text(reward)},
                "idempotency_key": f"referral_thanks:{order.id}",
                "kind": MessageKind.INFORMATIONAL.value,
            }
        ],
    )
