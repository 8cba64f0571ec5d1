"""The owner's billing settings (notice lead days, retry schedule, what ends dunning) and the names
every part of billing shares: template keys, gateway statuses, the charge key and order number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock, settings_store
from core.accounts.actor import Actor, require_role
from core.billing.dates import (
    DEFAULT_NOTICE_LEAD_DAYS,
    DEFAULT_RETRY_DAYS,
    DEFAULT_REVIEW_BACKOFF_MINUTES,
    period_key,
    retry_dates,
)
from core.errors import ValidationFailed
from core.models import Role, Setting
from core.payments.gateways.base import PaymentGateway
from core.payments.gateways.router import PaymentRouter

NEEDS_REVIEW = "NEEDS_REVIEW"  # core.payments.gateways.kakaopay's code: only a person can settle it
LOOKUP_FAILED = "LOOKUP_FAILED"
NOTICE_TEMPLATE = "billing_notice"
RECEIPT_TEMPLATE = "billing_receipt"
FAILED_TEMPLATE = "billing_failed"
# Lookup statuses that mean the money was taken (a later cancel still means it was charged once).
CHARGED_STATUSES = ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")
FINAL_ACTIONS = ("cancel", "pause")
MANAGERS = (Role.OWNER, Role.CS)
GatewayFor = Callable[[Engine], "PaymentGateway | PaymentRouter"]


@dataclass(frozen=True)
class BillingSettings:
    """Owner-editable billing rules (setting keys `billing_*`)."""

    notice_lead_days: int = DEFAULT_NOTICE_LEAD_DAYS
    retry_days: tuple[int, ...] = DEFAULT_RETRY_DAYS
    final_action: str = "cancel"  # after the retry schedule: cancel or pause
    charge_hour: int = 9  # KST hour from which the due date's charges run
    notice_hour: int = 10  # KST hour from which notices may be sent
    lease_minutes: int = 15  # a claimed charge comes due again after this (a killed worker)
    # An unknown outcome is looked up again after 5 min, 15 min, 1 h, 4 h, 1 day; then a person decides.
    review_backoff_minutes: tuple[int, ...] = DEFAULT_REVIEW_BACKOFF_MINUTES


SETTING_KEYS = {
    "notice_lead_days": "billing_notice_lead_days",
    "retry_days": "billing_retry_days",
    "final_action": "billing_final_action",
    "charge_hour": "billing_charge_hour",
    "notice_hour": "billing_notice_hour",
}


def load_settings(session: Session) -> BillingSettings:
    rows = session.exec(select(Setting).where(col(Setting.key).in_(list(SETTING_KEYS.values())))).all()
    stored = {row.key: row.value for row in rows if row.value is not None}
    values: dict[str, Any] = {}
    for name, key in SETTING_KEYS.items():
        if key in stored:
            values[name] = tuple(stored[key]) if name == "retry_days" else stored[key]
    return BillingSettings(**values)


def update_settings(session: Session, actor: Actor, **changes: Any) -> BillingSettings:
    """Change billing rules (owner only); each change is validated and audited."""
    require_role(actor, Role.OWNER)
    current = load_settings(session)
    for name, value in changes.items():
        if name not in SETTING_KEYS:
            raise ValidationFailed(f"알 수 없는 결제 설정입니다: {name}")
        if name == "notice_lead_days" and not (isinstance(value, int) and 0 <= value <= 14):
            raise ValidationFailed("안내 발송은 결제 0~14일 전이어야 합니다")
        if name == "retry_days":
            try:
                value = [d for d in sorted(set(int(v) for v in value))]
                retry_dates(clock.today_kst(), value)
            except (TypeError, ValueError):
                raise ValidationFailed("재시도 일정은 양의 일수 목록이어야 합니다 (예: 1, 3, 7)") from None
        if name == "final_action" and value not in FINAL_ACTIONS:
            raise ValidationFailed("재시도 후 처리는 cancel(해지) 또는 pause(일시정지)여야 합니다")
        if name in ("charge_hour", "notice_hour") and not (isinstance(value, int) and 0 <= value <= 23):
            raise ValidationFailed("시각은 0~23시여야 합니다")
        settings_store.put(session, actor, SETTING_KEYS[name], value)
    del current
    return load_settings(session)


def charge_key(subscription_id: int, period: date) -> str:
    return f"charge:{subscription_id}:{period_key(period)}"


def order_number(subscription_id: int, period: date) -> str:
    """Our order id for the period (KakaoPay partner_order_id): the same on every attempt."""
    return f"S{subscription_id}-{period:%Y%m%d}"


LINK_PAID = "LINK_PAID"
