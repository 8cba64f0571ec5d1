"""Recurring plans, subscriptions, their charges and history."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


SUBSCRIPTION_STATUS_LABELS = {
    SubscriptionStatus.ACTIVE: "이용 중",
    SubscriptionStatus.PAUSED: "일시정지",
    SubscriptionStatus.PAST_DUE: "결제 실패",
    SubscriptionStatus.CANCELED: "해지",
}


class IntervalUnit(StrEnum):
    MONTH = "month"
    WEEK = "week"
    DAY = "day"


class SubscriptionPlan(SQLModel, table=True):
    __tablename__ = "subscription_plan"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    product_id: int | None = Field(default=None, foreign_key="product.id")
    amount: int = Field(ge=0)
    tax_free_amount: int = Field(default=0, ge=0)
    interval_unit: str = Field(default=IntervalUnit.MONTH, max_length=8)
    interval_count: int = Field(default=1, ge=1)
    is_active: bool = True


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (Index("ix_subscription_status_next", "status", "next_charge_date"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    plan_id: int = Field(foreign_key="subscription_plan.id", index=True)
    amount: int = Field(ge=0)  # the plan's amount unless changed for this customer
    next_amount: int | None = None  # takes effect from the next period
    next_plan_id: int | None = Field(default=None, foreign_key="subscription_plan.id")  # from the next period
    status: str = Field(default=SubscriptionStatus.ACTIVE, max_length=16)
    anchor_day: int = Field(ge=1, le=31)
    next_charge_date: date | None = None
    instrument_gateway: str | None = Field(default=None, max_length=16)
    instrument_ref: str | None = Field(default=None, max_length=120)  # KakaoPay SID or Toss billing key
    backup_instrument_gateway: str | None = Field(default=None, max_length=16)
    backup_instrument_ref: str | None = Field(default=None, max_length=120)
    paused_until: date | None = None
    cancel_at_period_end: bool = False
    started_at: datetime = utc_field(default_now=True)
    canceled_at: datetime | None = utc_field()
    created_at: datetime = utc_field(default_now=True)


class ChargeStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


class SubscriptionCharge(SQLModel, table=True):
    """One row per subscription and period: the unique constraint is what makes a charge happen once."""

    __tablename__ = "subscription_charge"
    __table_args__ = (
        UniqueConstraint("subscription_id", "period", name="uq_subscription_charge_period"),
        Index("ix_subscription_charge_status_retry", "status", "next_retry_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscription.id")
    period: date  # the scheduled charge date of the period (KST)
    amount: int = Field(ge=0)
    status: str = Field(default=ChargeStatus.PENDING, max_length=16)
    attempt_count: int = 0
    next_retry_at: datetime | None = utc_field()
    idempotency_key: str = Field(max_length=120, unique=True)
    payment_id: int | None = Field(default=None, foreign_key="payment.id")
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    failure_code: str | None = Field(default=None, max_length=64)
    failure_message: str | None = Field(default=None, max_length=500)
    hard_decline: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})  # a permanent failure: never retried by the schedule, only by a person
    payment_link_id: int | None = Field(default=None, foreign_key="payment_link.id")  # to pay by hand
    # Lookups in a row that could not settle an unknown outcome: the next waits longer, then a person.
    unknown_checks: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)


class ChargeAttemptVia(StrEnum):
    SCHEDULE = "schedule"  # the worker, on the due date or a retry date
    MANUAL = "manual"  # a person pressed retry on the 정기결제 page
    LINK = "link"  # the customer paid the dunning payment link


CHARGE_ATTEMPT_VIA_LABELS = {
    ChargeAttemptVia.SCHEDULE: "자동",
    ChargeAttemptVia.MANUAL: "수동 재시도",
    ChargeAttemptVia.LINK: "결제 링크",
}


CHARGE_ATTEMPT_OUTCOME_LABELS = {
    "succeeded": "성공",
    "failed": "실패",
    "unknown": "확인 중",
    "skipped": "결제 안 함",
}


class SubscriptionChargeAttemptBase(SQLModel):
    charge_id: int = Field(foreign_key="subscription_charge.id")
    number: int = Field(ge=1)  # the charge's attempt_count when it was made
    via: str = Field(default=ChargeAttemptVia.SCHEDULE, max_length=16)
    outcome: str = Field(max_length=16)  # succeeded, failed, unknown, skipped
    failure_code: str | None = Field(default=None, max_length=64)
    failure_message: str | None = Field(default=None, max_length=500)
    hard_decline: bool = False
    gateway: str | None = Field(default=None, max_length=16)
    gateway_tid: str | None = Field(default=None, max_length=64)


class SubscriptionChargeAttempt(SubscriptionChargeAttemptBase, table=True):
    """One row per try at a charge, each with its own reason: the charge row only holds the latest."""

    __tablename__ = "subscription_charge_attempt"
    __table_args__ = (UniqueConstraint("charge_id", "number", name="uq_subscription_charge_attempt"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field(default_now=True)
    actor_id: int | None = Field(default=None, foreign_key="staff_user.id")


class SubscriptionEvent(SQLModel, table=True):
    __tablename__ = "subscription_event"

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscription.id", index=True)
    at: datetime = utc_field(default_now=True)
    kind: str = Field(max_length=32)
    actor_id: int | None = Field(default=None, foreign_key="staff_user.id")
    detail: dict[str, Any] = json_field()
