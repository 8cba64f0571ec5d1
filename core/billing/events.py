"""What every billing service does to a subscription: load it, write its history row, tell the
customer through the outbox, and the small rules (plan name, interval, resume date) they share.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, select

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.billing.dates import Interval, charge_date_on_or_after, first_charge_date
from core.db import is_postgres
from core.errors import NotFound, ValidationFailed
from core.messaging.default_templates import default_body
from core.messaging.outbox import enqueue
from core.messaging.templates import render as render_template
from core.models import Message, Subscription, SubscriptionEvent, SubscriptionPlan, SubscriptionStatus


def _check_amount(amount: int, tax_free_amount: int = 0) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationFailed("금액은 원 단위 정수여야 합니다")
    if amount <= 0:
        raise ValidationFailed("정기결제 금액은 0원보다 커야 합니다")
    if tax_free_amount < 0 or tax_free_amount > amount:
        raise ValidationFailed("면세 금액은 0원 이상, 결제 금액 이하여야 합니다")


def _interval(plan: SubscriptionPlan) -> Interval:
    return Interval(plan.interval_unit, plan.interval_count)


def _get_subscription(session: Session, subscription_id: int, *, lock: bool = False) -> Subscription:
    statement = select(Subscription).where(Subscription.id == subscription_id)
    if lock and is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    subscription = session.exec(statement).first()
    if subscription is None:
        raise NotFound("없는 구독입니다")
    return subscription


def _history(
    session: Session, subscription: Subscription, actor: Actor, kind: str, **detail: Any
) -> SubscriptionEvent:
    """One history row and one audit row, in the caller's transaction."""
    event = SubscriptionEvent(
        subscription_id=subscription.id,
        kind=kind,
        actor_id=actor.id,
        detail={k: audit._jsonable(v) for k, v in detail.items()},
        at=clock.now(),
    )
    session.add(event)
    audit.record(session, actor, f"subscription.{kind}", "subscription", subscription.id, **detail)
    return event


def _tell(
    session: Session, subscription: Subscription, key: str, template_key: str, **variables: Any
) -> Message:
    """Queue a billing message; its text is the default template's body filled in (one wording)."""
    values = {k: audit._jsonable(v) for k, v in variables.items()}
    return enqueue(
        session,
        customer_id=subscription.customer_id,
        template_key=template_key,
        variables=values,
        idempotency_key=key,
        text=render_template(default_body(template_key), values),
    )


def _plan_name(session: Session, subscription: Subscription) -> str:
    plan = session.get(SubscriptionPlan, subscription.next_plan_id or subscription.plan_id)
    return plan.name if plan else "정기결제"


def _resume_date(subscription: Subscription, interval: Interval, day: date) -> date:
    """The first charge of a subscription resumed on `day`: its schedule walked on, skipping the pause."""
    current = subscription.next_charge_date or first_charge_date(day, subscription.anchor_day, interval)
    return charge_date_on_or_after(current, day, subscription.anchor_day, interval)


def _cancel_now(subscription: Subscription) -> None:
    subscription.status = SubscriptionStatus.CANCELED
    subscription.canceled_at = clock.now()
    subscription.next_charge_date = None
    subscription.cancel_at_period_end = False
