"""The 정기결제 read models: lists, counts, upcoming and failed charges, a subscription's history and
the words the page shows for a move or an attempt.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from core.billing.dates import moved_words
from core.billing.events import _get_subscription
from core.billing.settings import load_settings
from core.models import (
    ChargeAttemptVia,
    ChargeStatus,
    Customer,
    Message,
    Subscription,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionEvent,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.models.subscriptions import CHARGE_ATTEMPT_OUTCOME_LABELS, CHARGE_ATTEMPT_VIA_LABELS


def last_move_words(session: Session, subscription_id: int) -> str | None:
    """The screen's words when the latest change moved the next charge for its notice, else None."""
    event = session.exec(
        select(SubscriptionEvent)
        .where(SubscriptionEvent.subscription_id == subscription_id)
        .order_by(col(SubscriptionEvent.id).desc())
    ).first()
    if event is None or not event.detail.get("moved_from"):
        return None
    subscription = _get_subscription(session, subscription_id)
    if subscription.next_charge_date is None:
        return None
    return moved_words(subscription.next_charge_date, load_settings(session).notice_lead_days)


def attempt_words(attempt: SubscriptionChargeAttempt) -> str:
    """One attempt as the order timeline says it: '정기결제 2회차 시도 (수동 재시도): 실패 · 카드가 거절되었습니다'."""
    via = CHARGE_ATTEMPT_VIA_LABELS.get(ChargeAttemptVia(attempt.via), attempt.via)
    outcome = CHARGE_ATTEMPT_OUTCOME_LABELS.get(attempt.outcome, attempt.outcome)
    reason = (
        f" · {attempt.failure_message}" if attempt.failure_message and attempt.outcome != "succeeded" else ""
    )
    return f"정기결제 {attempt.number}회차 시도 ({via}): {outcome}{reason}"


def order_attempts(session: Session, order_id: int) -> list[dict[str, Any]]:
    """Every try at the subscription charge an order records, with its outcome, for the order timeline."""
    attempts = session.exec(
        select(SubscriptionChargeAttempt)
        .join(SubscriptionCharge, col(SubscriptionCharge.id) == SubscriptionChargeAttempt.charge_id)
        .where(SubscriptionCharge.order_id == order_id)
        .order_by(col(SubscriptionChargeAttempt.number))
    ).all()
    return [{"at": a.at, "event": attempt_words(a)} for a in attempts]


def list_subscriptions(
    session: Session, status: str | None = None
) -> list[tuple[Subscription, Customer, str]]:
    statement = (
        select(Subscription, Customer, SubscriptionPlan.name)
        .join(Customer, col(Customer.id) == Subscription.customer_id)
        .join(SubscriptionPlan, col(SubscriptionPlan.id) == Subscription.plan_id)
        .order_by(col(Subscription.next_charge_date), col(Subscription.id))
    )
    if status:
        statement = statement.where(Subscription.status == status)
    return list(session.exec(statement).all())  # type: ignore[arg-type]


def status_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(Subscription.status, func.count()).group_by(Subscription.status)).all()
    return {status: count for status, count in rows}


def upcoming_charges(session: Session, today: date, days: int = 7) -> list[dict[str, Any]]:
    """Charges due in the next `days` days (today included), per day with totals."""
    rows = session.exec(
        select(
            Subscription.next_charge_date,
            func.count(),
            func.sum(func.coalesce(Subscription.next_amount, Subscription.amount)),
        )
        .where(
            Subscription.status == SubscriptionStatus.ACTIVE,
            col(Subscription.cancel_at_period_end).is_(False),
            col(Subscription.next_charge_date) >= today,
            col(Subscription.next_charge_date) < today + timedelta(days=days),
        )
        .group_by(Subscription.next_charge_date)
        .order_by(Subscription.next_charge_date)
    ).all()
    return [{"date": day, "count": count, "amount": int(total or 0)} for day, count, total in rows]


def failed_charges(session: Session) -> list[tuple[SubscriptionCharge, Subscription, Customer]]:
    """The queue for people: failed or unknown charges of subscriptions not yet settled."""
    return list(
        session.exec(
            select(SubscriptionCharge, Subscription, Customer)
            .join(Subscription, col(Subscription.id) == SubscriptionCharge.subscription_id)
            .join(Customer, col(Customer.id) == Subscription.customer_id)
            .where(col(SubscriptionCharge.status).in_([ChargeStatus.FAILED, ChargeStatus.UNKNOWN]))
            .order_by(col(SubscriptionCharge.period).desc(), col(SubscriptionCharge.id))
        ).all()
    )  # type: ignore[arg-type]


def history(session: Session, subscription_id: int) -> dict[str, list[Any]]:
    """Everything billing did for one subscription: events, charges, each attempt and the messages sent."""
    events = session.exec(
        select(SubscriptionEvent)
        .where(SubscriptionEvent.subscription_id == subscription_id)
        .order_by(col(SubscriptionEvent.at), col(SubscriptionEvent.id))
    ).all()
    charges = session.exec(
        select(SubscriptionCharge)
        .where(SubscriptionCharge.subscription_id == subscription_id)
        .order_by(col(SubscriptionCharge.period))
    ).all()
    subscription = _get_subscription(session, subscription_id)
    prefixes = [
        f"{p}:{subscription_id}:"
        for p in (
            "billing_notice",
            "billing_receipt",
            "billing_failed",
            "billing_retry",
            "billing_dunning_end",
        )
    ]
    messages = session.exec(
        select(Message)
        .where(
            Message.customer_id == subscription.customer_id,
            or_(*[col(Message.idempotency_key).startswith(p) for p in prefixes]),
        )
        .order_by(col(Message.created_at), col(Message.id))
    ).all()
    attempts = session.exec(
        select(SubscriptionChargeAttempt)
        .join(SubscriptionCharge, col(SubscriptionCharge.id) == SubscriptionChargeAttempt.charge_id)
        .where(SubscriptionCharge.subscription_id == subscription_id)
        .order_by(col(SubscriptionCharge.period), col(SubscriptionChargeAttempt.number))
    ).all()
    return {
        "events": list(events),
        "charges": list(charges),
        "attempts": list(attempts),
        "messages": list(messages),
    }
