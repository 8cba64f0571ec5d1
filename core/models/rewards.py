"""Rewards: coupons, the points ledger and referrals (issue 20, seed 004 "지인에게 추천하기").

Every grant carries a unique `source_key` ("review:<id>", "referral:<order id>", "manual:<nonce>"),
so a retried request or a second worker never grants twice; a coupon is redeemed by one conditional
UPDATE (`redeemed_at IS NULL`), so two tabs never spend it twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from core.models.base import utc_field


class RewardReason(StrEnum):
    REVIEW = "review"
    REFERRAL = "referral"
    MANUAL = "manual"
    REDEMPTION = "redemption"  # points only: spent on an order


REWARD_REASON_LABELS = {
    RewardReason.REVIEW: "리뷰 작성",
    RewardReason.REFERRAL: "지인 추천",
    RewardReason.MANUAL: "직접 발급",
    RewardReason.REDEMPTION: "결제에 사용",
}


class Coupon(SQLModel, table=True):
    """A fixed-amount coupon; `payment_link_id` is the checkout holding it while redeemed_at is set
    and no order is recorded yet (released when that payment is cancelled, fails or is abandoned)."""

    __tablename__ = "coupon"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    amount: int = Field(gt=0)
    reason: str = Field(max_length=16)
    source_key: str = Field(max_length=80, unique=True)
    issued_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field(nullable=False)
    redeemed_at: datetime | None = utc_field()
    redeemed_order_id: int | None = Field(default=None, foreign_key="orders.id")
    payment_link_id: int | None = Field(default=None, foreign_key="payment_link.id", index=True)


class PointEntry(SQLModel, table=True):
    """One line of a customer's points ledger (+ granted, - spent); the balance is the sum."""

    __tablename__ = "point_entry"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    amount: int
    reason: str = Field(max_length=16)
    source_key: str = Field(max_length=80, unique=True)
    payment_link_id: int | None = Field(default=None, foreign_key="payment_link.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    created_at: datetime = utc_field(default_now=True)


class ReferralCode(SQLModel, table=True):
    """A customer's one personal referral code (the /r/{code} link)."""

    __tablename__ = "referral_code"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", unique=True)
    code: str = Field(max_length=16, unique=True)
    created_at: datetime = utc_field(default_now=True)


class ReferralStatus(StrEnum):
    VISITED = "visited"  # the link was opened: a checkout exists, nothing bought yet
    CREDITED = "credited"  # a new customer bought: the referrer got the reward
    REFUSED = "refused"  # bought, but no reward (self-referral, existing customer, loop, late)


REFERRAL_STATUS_LABELS = {
    ReferralStatus.VISITED: "방문",
    ReferralStatus.CREDITED: "보상 지급",
    ReferralStatus.REFUSED: "보상 없음",
}


class Referral(SQLModel, table=True):
    """One visit through a referral link: the checkout it opened, and what its purchase led to."""

    __tablename__ = "referral"

    id: int | None = Field(default=None, primary_key=True)
    referrer_id: int = Field(foreign_key="customer.id", index=True)
    payment_link_id: int = Field(foreign_key="payment_link.id", unique=True)
    visited_at: datetime = utc_field(default_now=True)
    status: str = Field(default=ReferralStatus.VISITED, max_length=16)
    referred_customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", unique=True)
    refusal: str | None = Field(default=None, max_length=120)
    credited_at: datetime | None = utc_field(index=True)
