"""D-1 notices: tell the customer before every charge, and never charge a period nobody was told about.

The notice text is the `billing_notice` template (core/messaging/default_templates.py) filled by
`notice_variables`; `run_notices` sends them, `hold_unnoticed` moves a charge whose notice did not
go out in time, and `_keep_notice_promise` keeps a date already announced when staff change things.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, cast, func, literal
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import SYSTEM_ACTOR
from core.billing.dates import (
    korean_date,
    kst_instant,
    next_charge_date,
    notice_in_time,
    notice_window,
    noticed_charge_date,
    period_key,
    when_words,
)
from core.billing.events import _history, _interval, _plan_name, _resume_date
from core.billing.settings import NOTICE_TEMPLATE, load_settings
from core.db import session_scope
from core.messaging.default_templates import default_body
from core.messaging.outbox import enqueue_many
from core.messaging.templates import render as render_template
from core.models import (
    ChargeStatus,
    Customer,
    Message,
    Subscription,
    SubscriptionCharge,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.money import format_krw


def notice_variables(plan_name: str, amount: int, charge_date: date, today: date) -> dict[str, str]:
    """The D-1 notice's template variables; the text is the template filled in: the seed's
    '내일(12월 1일) 월회비 39,000원이 결제될 예정입니다. ...'."""
    return {
        "언제": when_words(charge_date, today),
        "결제일": korean_date(charge_date),
        "상품명": plan_name,
        "금액": format_krw(amount),
    }


def notice_key(subscription_id: int, period: date, amount: int) -> str:
    """One notice per period and amount: a changed amount is told again, a repeat is a no-op."""
    return f"billing_notice:{subscription_id}:{period_key(period)}:{amount}"


def _notices_in_time(
    session: Session, wanted: list[tuple[int, date, int]], lead_days: int
) -> set[tuple[int, date, int]]:
    """Which (subscription, period, amount) were told at least the lead before the period (queued
    notices count: the outbox sends them; a notice is queued on the day it may go out)."""
    keys = {notice_key(*w): w for w in wanted}
    names = list(keys)
    told: set[tuple[int, date, int]] = set()
    for start in range(0, len(names), 500):
        for key, send_after in session.execute(
            select(Message.idempotency_key, Message.send_after).where(
                col(Message.idempotency_key).in_(names[start : start + 500])
            )
        ).all():
            if notice_in_time(clock.today_kst(send_after), keys[key][1], lead_days):
                told.add(keys[key])
    return told


def _charge_opened(session: Session, subscription_id: int | None, period: date) -> bool:
    return (
        session.exec(
            select(SubscriptionCharge.id).where(
                SubscriptionCharge.subscription_id == subscription_id, SubscriptionCharge.period == period
            )
        ).first()
        is not None
    )


def _keep_notice_promise(
    session: Session, subscription: Subscription, today: date, lead_days: int
) -> date | None:
    """No charge without its notice: a charge too close for a notice sent today moves to the first
    day that keeps the lead (after a resume, a change of plan or amount, or a missed notice).

    Returns the date it was moved from; None when the promise holds already (far enough away, told
    in time with this amount, or its charge already opened).
    """
    current = subscription.next_charge_date
    if current is None or noticed_charge_date(current, today, lead_days) == current:
        return None
    amount = subscription.next_amount or subscription.amount
    if _charge_opened(session, subscription.id, current) or _notices_in_time(
        session, [(subscription.id or 0, current, amount)], lead_days
    ):
        return None
    subscription.next_charge_date = noticed_charge_date(current, today, lead_days)
    session.add(subscription)
    return current


def _keep_change_told(session: Session, subscription: Subscription) -> date | None:
    """After a change of plan or amount: an active subscription's next charge is told again in time.
    A paused one is checked when it resumes; a past-due one's charge is already open."""
    if subscription.status != SubscriptionStatus.ACTIVE:
        return None
    return _keep_notice_promise(
        session, subscription, clock.today_kst(), load_settings(session).notice_lead_days
    )


def _hold_unnoticed(session: Session, today: date, lead_days: int) -> int:
    """Due or nearly due charges whose notice never went out in time (the worker was down on D-1):
    moved to the first day the lead allows, so they are told today and charged after it.

    Not a subscription that did not exist yet on its notice day (signed up on or just before its
    first charge): that charge is the one the customer agreed to when subscribing. In SQL, one query
    per due date, so the usual answer (every charge was told) costs index probes, not rows.
    """
    due = [
        d
        for d in session.exec(
            select(Subscription.next_charge_date)
            .where(
                Subscription.status == SubscriptionStatus.ACTIVE,
                col(Subscription.next_charge_date) < today + timedelta(days=lead_days),
            )
            .distinct()
        ).all()
        if d is not None
    ]
    moved = 0
    for current in due:
        told_by = kst_instant(current - timedelta(days=lead_days - 1))  # the notice day's end
        opened = (
            select(SubscriptionCharge.id)
            .where(
                col(SubscriptionCharge.subscription_id) == Subscription.id,
                col(SubscriptionCharge.period) == current,
            )
            .exists()
        )
        key = (
            literal("billing_notice:")
            + cast(Subscription.id, String)
            + literal(f":{period_key(current)}:")
            + cast(func.coalesce(Subscription.next_amount, Subscription.amount), String)
        )
        told = (
            select(Message.id)
            .where(col(Message.idempotency_key) == key, col(Message.send_after) < told_by)
            .exists()
        )
        rows = session.exec(
            select(Subscription).where(
                Subscription.status == SubscriptionStatus.ACTIVE,
                col(Subscription.cancel_at_period_end).is_(False),
                col(Subscription.next_charge_date) == current,
                col(Subscription.created_at) < told_by,
                ~opened,
                ~told,
            )
        ).all()
        for subscription in rows:
            subscription.next_charge_date = noticed_charge_date(current, today, lead_days)
            session.add(subscription)
            _history(
                session,
                subscription,
                SYSTEM_ACTOR,
                "charge_moved",
                moved_from=current,
                next_charge_date=subscription.next_charge_date,
                reason="결제 전 안내가 나가지 않아 결제일을 옮겼습니다",
            )
            moved += 1
    return moved


def hold_unnoticed(engine: Engine, now: datetime) -> int:
    """Worker step before notices and charges: no charge opens without its notice sent in time."""
    with session_scope(engine) as session:
        lead = load_settings(session).notice_lead_days
        return _hold_unnoticed(session, clock.today_kst(now), lead)


def run_notices(engine: Engine, now: datetime, *, batch_size: int = 2000) -> dict[str, int]:
    """Queue the D-N notice of every subscription that will be charged within the lead time: active
    ones, and paused ones that resume by their charge.

    A charge too close for its notice (the worker was down on D-1) is moved first (`hold_unnoticed`),
    so it is told today and charged after the lead; the outbox key
    billing_notice:{subscription}:{period}:{amount} makes every repeat a no-op.
    """
    counts = {"notices_queued": 0, "notices_already": 0}
    today = clock.today_kst(now)
    with session_scope(engine) as session:
        config = load_settings(session)
        counts["moved_past_review"] = _move_past_held(session, today, config.notice_lead_days)
        counts["charges_moved"] = _hold_unnoticed(session, today, config.notice_lead_days)
    first, last = notice_window(today, config.notice_lead_days)
    send_after = max(now, kst_instant(today, config.notice_hour))
    with session_scope(engine) as session:
        # One read (a keyset loop re-sorts the due set per batch), then inserts in committed chunks.
        due = session.execute(
            select(
                Subscription.id,
                Subscription.next_charge_date,
                Subscription.next_amount,
                Subscription.amount,
                Subscription.customer_id,
                Customer.name,
                Customer.phone,
                SubscriptionPlan.name,
            )
            .join(
                SubscriptionPlan,
                col(SubscriptionPlan.id) == func.coalesce(Subscription.next_plan_id, Subscription.plan_id),
            )
            .join(Customer, col(Customer.id) == Subscription.customer_id)
            .where(
                Subscription.status == SubscriptionStatus.ACTIVE,
                col(Subscription.cancel_at_period_end).is_(False),
                col(Subscription.next_charge_date) >= first,
                col(Subscription.next_charge_date) <= last,
            )
        ).all()
        due = list(due) + _resuming_due(session, first, last)
    notice_body = default_body(NOTICE_TEMPLATE)
    for start in range(0, len(due), batch_size):
        messages = []
        for sub_id, charge_date, next_amount, current_amount, customer_id, name, phone, plan_name in due[
            start : start + batch_size
        ]:
            variables = notice_variables(plan_name, next_amount or current_amount, charge_date, today)
            messages.append(
                {
                    "customer_id": customer_id,
                    "to_phone": phone,
                    "template_key": NOTICE_TEMPLATE,
                    "idempotency_key": notice_key(sub_id, charge_date, next_amount or current_amount),
                    "text": render_template(notice_body, variables),
                    "variables": {"고객명": name, **variables},
                }
            )
        with session_scope(engine) as session:
            queued = enqueue_many(session, [{**m, "send_after": send_after} for m in messages], now=now)
        counts["notices_queued"] += queued
        counts["notices_already"] += len(messages) - queued
    return counts


def _resuming_due(session: Session, first: date, last: date) -> list[tuple[Any, ...]]:
    """Paused subscriptions that resume by a charge in the window: told like active ones."""
    rows = session.exec(
        select(Subscription, Customer, SubscriptionPlan)
        .join(Customer, col(Customer.id) == Subscription.customer_id)
        .join(SubscriptionPlan, col(SubscriptionPlan.id) == Subscription.plan_id)
        .where(
            Subscription.status == SubscriptionStatus.PAUSED,
            col(Subscription.cancel_at_period_end).is_(False),
            col(Subscription.paused_until).is_not(None),
            col(Subscription.paused_until) <= last,
        )
    ).all()
    due = []
    for subscription, customer, plan in rows:
        assert subscription.paused_until is not None
        charge_date = _resume_date(subscription, _interval(plan), subscription.paused_until)
        if first <= charge_date <= last:
            due.append(
                (
                    subscription.id,
                    charge_date,
                    subscription.next_amount,
                    subscription.amount,
                    subscription.customer_id,
                    customer.name,
                    customer.phone,
                    _plan_name(session, subscription),
                )
            )
    return due


def _move_past_held(session: Session, today: date, lead_days: int) -> int:
    """A charge under review holds only its own period: once the next period's notice is due, the
    subscription moves on to it (told and charged on time); the held charge is settled on its own."""
    rows = session.exec(
        select(Subscription, SubscriptionPlan)
        .join(
            SubscriptionCharge,
            and_(
                col(SubscriptionCharge.subscription_id) == Subscription.id,
                col(SubscriptionCharge.period) == Subscription.next_charge_date,
            ),
        )
        .join(
            SubscriptionPlan,
            col(SubscriptionPlan.id) == func.coalesce(Subscription.next_plan_id, Subscription.plan_id),
        )
        .where(
            Subscription.status == SubscriptionStatus.ACTIVE,
            col(Subscription.cancel_at_period_end).is_(False),
            SubscriptionCharge.status == ChargeStatus.UNKNOWN,
        )
    ).all()
    moved = 0
    for subscription, plan in rows:
        held = subscription.next_charge_date
        assert held is not None
        following = next_charge_date(held, subscription.anchor_day, _interval(plan))
        if following > notice_window(today, lead_days)[1]:
            continue
        subscription.next_charge_date = following
        session.add(subscription)
        _history(
            session,
            subscription,
            SYSTEM_ACTOR,
            "moved_past_review",
            held_period=held,
            next_charge_date=following,
        )
        moved += 1
    return moved
