"""The billing engine: plans, subscriptions, D-1 notices, charges exactly once, dunning, pause and cancel.

KakaoPay has no scheduler and no retry, so ChannelDesk is the billing engine (like Stripe Billing):

- A charge is a `SubscriptionCharge` row per subscription and period; the unique constraint
  `uq_subscription_charge_period` means there is never a second row, whatever workers run.
- A worker claims a row before it calls the gateway by committing status `unknown` with a lease
  (`next_retry_at`): from that moment the outcome *is* unknown until we record it. If the worker dies,
  the row comes due again when the lease ends, and any row with an earlier attempt is looked up by our
  order id (`find_by_order`) before the gateway is asked again, so a success is recorded once and a
  card is never charged twice. The Payment's unique idempotency key (`charge:{subscription}:{period}`)
  and the Order's unique number are the last line of defence.
- Failure moves the subscription to past_due, tells the customer with a payment link, and retries on
  the owner's schedule (default +1, +3, +7 days after the due date); a hard decline is not retried by
  the schedule (a person may retry). When the schedule is spent the subscription is canceled or
  paused, as the owner chose.

Services take an `actor`, check the role, write `SubscriptionEvent` history and the audit log in the
caller's transaction, and tell the customer through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, bindparam, cast, func, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import audit, clock, settings_store
from core.auth import SYSTEM_ACTOR, Actor, require_role
from core.billing_dates import (
    DEFAULT_NOTICE_LEAD_DAYS,
    DEFAULT_RETRY_DAYS,
    DEFAULT_REVIEW_BACKOFF_MINUTES,
    Interval,
    charge_date_on_or_after,
    first_charge_date,
    korean_date,
    kst_instant,
    moved_words,
    next_charge_date,
    notice_in_time,
    notice_window,
    noticed_charge_date,
    period_key,
    retry_dates,
    review_delay,
    when_words,
)
from core.db import is_postgres, session_scope
from core.errors import ChannelDeskError, Conflict, NotFound, ValidationFailed
from core.messaging.default_templates import default_body
from core.messaging.outbox import enqueue, enqueue_many
from core.messaging.templates import render as render_template
from core.models import (
    ChargeAttemptVia,
    ChargeStatus,
    Customer,
    IntervalUnit,
    Message,
    Order,
    Payment,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    Role,
    Setting,
    Subscription,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionEvent,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.models.subscriptions import CHARGE_ATTEMPT_OUTCOME_LABELS, CHARGE_ATTEMPT_VIA_LABELS
from core.money import format_krw
from core.orders import record_paid_order, record_paid_orders
from core.payment_links import OPEN_STATUSES as LINK_OPEN_STATUSES
from core.payment_links import code_order_id, create_payment_link, link_url
from core.payments.base import (
    ApprovalResult,
    LookupResult,
    PaymentError,
    PaymentGateway,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
)
from core.payments.router import PaymentRouter, find_charge, note

NEEDS_REVIEW = "NEEDS_REVIEW"  # core.payments.kakaopay's code: only a person can settle it
LOOKUP_FAILED = "LOOKUP_FAILED"
NOTICE_TEMPLATE = "billing_notice"
RECEIPT_TEMPLATE = "billing_receipt"
FAILED_TEMPLATE = "billing_failed"
# Lookup statuses that mean the money was taken (a later cancel still means it was charged once).
CHARGED_STATUSES = ("SUCCESS_PAYMENT", "PART_CANCEL_PAYMENT", "CANCEL_PAYMENT")
FINAL_ACTIONS = ("cancel", "pause")
MANAGERS = (Role.OWNER, Role.CS)

GatewayFor = Callable[[Engine], "PaymentGateway | PaymentRouter"]


# -- settings ---------------------------------------------------------------------------------


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


# -- plans and subscriptions ------------------------------------------------------------------


def _check_amount(amount: int, tax_free_amount: int = 0) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationFailed("금액은 원 단위 정수여야 합니다")
    if amount <= 0:
        raise ValidationFailed("정기결제 금액은 0원보다 커야 합니다")
    if tax_free_amount < 0 or tax_free_amount > amount:
        raise ValidationFailed("면세 금액은 0원 이상, 결제 금액 이하여야 합니다")


def create_plan(
    session: Session,
    actor: Actor,
    *,
    name: str,
    amount: int,
    interval_unit: str = IntervalUnit.MONTH,
    interval_count: int = 1,
    tax_free_amount: int = 0,
    product_id: int | None = None,
) -> SubscriptionPlan:
    require_role(actor, Role.OWNER)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("요금제 이름은 1~120자여야 합니다")
    _check_amount(amount, tax_free_amount)
    try:
        Interval(str(interval_unit), interval_count)
    except ValueError:
        raise ValidationFailed("결제 주기는 month / week / day 와 1 이상의 횟수여야 합니다") from None
    plan = SubscriptionPlan(
        name=name,
        amount=amount,
        tax_free_amount=tax_free_amount,
        interval_unit=str(interval_unit),
        interval_count=interval_count,
        product_id=product_id,
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor,
        "plan.create",
        "subscription_plan",
        plan.id,
        name=name,
        amount=amount,
        interval=f"{interval_count} {interval_unit}",
    )
    return plan


def _interval(plan: SubscriptionPlan) -> Interval:
    return Interval(plan.interval_unit, plan.interval_count)


def create_subscription(
    session: Session,
    actor: Actor,
    *,
    customer_id: int,
    plan_id: int,
    start: date,
    anchor_day: int | None = None,
    instrument_gateway: str | None = None,
    instrument_ref: str | None = None,
    amount: int | None = None,
) -> Subscription:
    """Subscribe a customer; the first charge is the anchor day on or after `start`."""
    require_role(actor, *MANAGERS)
    if session.get(Customer, customer_id) is None:
        raise NotFound("없는 고객입니다")
    plan = session.get(SubscriptionPlan, plan_id)
    if plan is None or not plan.is_active:
        raise NotFound("없거나 중지된 요금제입니다")
    anchor = anchor_day or start.day
    if not 1 <= anchor <= 31:
        raise ValidationFailed("결제일은 1~31일이어야 합니다")
    amount = plan.amount if amount is None else amount
    _check_amount(amount)
    subscription = Subscription(
        customer_id=customer_id,
        plan_id=plan_id,
        amount=amount,
        anchor_day=anchor,
        next_charge_date=first_charge_date(start, anchor, _interval(plan)),
        instrument_gateway=instrument_gateway,
        instrument_ref=instrument_ref,
    )
    session.add(subscription)
    session.flush()
    _history(
        session,
        subscription,
        actor,
        "created",
        plan=plan.name,
        amount=amount,
        next_charge_date=subscription.next_charge_date,
        has_instrument=bool(instrument_ref),
    )
    return subscription


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


def pause(
    session: Session, actor: Actor, subscription_id: int, *, resume_on: date | None = None, reason: str = ""
) -> Subscription:
    """Stop notices and charges until `resume_on` (or until a person resumes it)."""
    require_role(actor, *MANAGERS)
    subscription = _get_subscription(session, subscription_id, lock=True)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise Conflict("해지된 구독은 일시정지할 수 없습니다")
    today = clock.today_kst()
    if resume_on is not None and resume_on <= today:
        raise ValidationFailed("재개일은 오늘 이후여야 합니다")
    subscription.status = SubscriptionStatus.PAUSED
    subscription.paused_until = resume_on
    session.add(subscription)
    event = _history(session, subscription, actor, "paused", resume_on=resume_on, reason=reason)
    session.flush()
    until = f" {korean_date(resume_on)}에 다시 시작됩니다." if resume_on else ""
    _tell(
        session,
        subscription,
        f"subscription_paused:{subscription.id}:{event.id}",
        "subscription_paused",
        상품명=_plan_name(session, subscription),
        재개안내=until,
    )
    return subscription


def resume(session: Session, actor: Actor, subscription_id: int) -> Subscription:
    """Resume a paused subscription: the next charge is the first anchored date from today."""
    require_role(actor, *MANAGERS)
    subscription = _get_subscription(session, subscription_id, lock=True)
    if subscription.status != SubscriptionStatus.PAUSED:
        raise Conflict("일시정지된 구독만 재개할 수 있습니다")
    _resume(session, subscription, actor, clock.today_kst())
    return subscription


def _resume_date(subscription: Subscription, interval: Interval, day: date) -> date:
    """The first charge of a subscription resumed on `day`: its schedule walked on, skipping the pause."""
    current = subscription.next_charge_date or first_charge_date(day, subscription.anchor_day, interval)
    return charge_date_on_or_after(current, day, subscription.anchor_day, interval)


def _resume(session: Session, subscription: Subscription, actor: Actor, today: date) -> None:
    plan = session.get(SubscriptionPlan, subscription.plan_id)
    assert plan is not None
    subscription.next_charge_date = _resume_date(subscription, _interval(plan), today)
    moved_from = _keep_notice_promise(session, subscription, today, load_settings(session).notice_lead_days)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.paused_until = None
    session.add(subscription)
    event = _history(
        session,
        subscription,
        actor,
        "resumed",
        next_charge_date=subscription.next_charge_date,
        moved_from=moved_from,
    )
    session.flush()
    _tell(
        session,
        subscription,
        f"subscription_resumed:{subscription.id}:{event.id}",
        "subscription_resumed",
        상품명=_plan_name(session, subscription),
        다음결제일=korean_date(subscription.next_charge_date),
    )


def cancel(
    session: Session, actor: Actor, subscription_id: int, *, at_period_end: bool = True, reason: str = ""
) -> Subscription:
    """Cancel now, or at the end of the paid period (no further charge either way)."""
    require_role(actor, *MANAGERS)
    subscription = _get_subscription(session, subscription_id, lock=True)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise Conflict("이미 해지된 구독입니다")
    if at_period_end and subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED):
        subscription.cancel_at_period_end = True
        event = _history(
            session,
            subscription,
            actor,
            "cancel_scheduled",
            reason=reason,
            ends_on=subscription.next_charge_date,
        )
        state, ends = (
            "접수되었습니다",
            korean_date(subscription.next_charge_date) if subscription.next_charge_date else "다음 결제일",
        )
    else:
        _cancel_now(subscription)
        event = _history(session, subscription, actor, "canceled", reason=reason)
        state, ends = "완료되었습니다", "지금"
    session.add(subscription)
    session.flush()
    _tell(
        session,
        subscription,
        f"subscription_canceled:{subscription.id}:{event.id}",
        "subscription_canceled",
        상품명=_plan_name(session, subscription),
        해지상태=state,
        종료일=ends,
    )
    return subscription


def _cancel_now(subscription: Subscription) -> None:
    subscription.status = SubscriptionStatus.CANCELED
    subscription.canceled_at = clock.now()
    subscription.next_charge_date = None
    subscription.cancel_at_period_end = False


def change_amount(session: Session, actor: Actor, subscription_id: int, amount: int) -> Subscription:
    """A new amount from the next period (the notice and the next charge use it)."""
    require_role(actor, *MANAGERS)
    _check_amount(amount)
    subscription = _get_subscription(session, subscription_id, lock=True)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise Conflict("해지된 구독은 변경할 수 없습니다")
    old = subscription.next_amount or subscription.amount
    subscription.next_amount = amount
    moved_from = _keep_change_told(session, subscription)
    session.add(subscription)
    event = _history(
        session,
        subscription,
        actor,
        "amount_changed",
        old=old,
        new=amount,
        from_date=subscription.next_charge_date,
        moved_from=moved_from,
    )
    session.flush()
    _tell(
        session,
        subscription,
        f"subscription_changed:{subscription.id}:{event.id}",
        "subscription_changed",
        상품명=_plan_name(session, subscription),
        금액=format_krw(amount),
    )
    return subscription


def change_plan(session: Session, actor: Actor, subscription_id: int, plan_id: int) -> Subscription:
    """Another plan (and its amount) from the next period."""
    require_role(actor, *MANAGERS)
    subscription = _get_subscription(session, subscription_id, lock=True)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise Conflict("해지된 구독은 변경할 수 없습니다")
    plan = session.get(SubscriptionPlan, plan_id)
    if plan is None or not plan.is_active:
        raise NotFound("없거나 중지된 요금제입니다")
    _check_amount(plan.amount, plan.tax_free_amount)
    subscription.next_plan_id = plan.id
    subscription.next_amount = plan.amount
    moved_from = _keep_change_told(session, subscription)
    session.add(subscription)
    event = _history(
        session,
        subscription,
        actor,
        "plan_changed",
        plan=plan.name,
        amount=plan.amount,
        from_date=subscription.next_charge_date,
        moved_from=moved_from,
    )
    session.flush()
    _tell(
        session,
        subscription,
        f"subscription_changed:{subscription.id}:{event.id}",
        "subscription_changed",
        상품명=plan.name,
        금액=format_krw(plan.amount),
    )
    return subscription


def set_instrument(
    session: Session, actor: Actor, subscription_id: int, *, gateway: str, instrument_ref: str
) -> Subscription:
    """Store a new KakaoPay SID / Toss billing key (after the customer registered it again)."""
    require_role(actor, *MANAGERS)
    if not instrument_ref.strip():
        raise ValidationFailed("결제수단(SID)을 입력하세요")
    subscription = _get_subscription(session, subscription_id, lock=True)
    subscription.instrument_gateway = gateway
    subscription.instrument_ref = instrument_ref.strip()
    session.add(subscription)
    _history(session, subscription, actor, "instrument_changed", gateway=gateway)
    return subscription


# -- notices ----------------------------------------------------------------------------------


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


def charge_key(subscription_id: int, period: date) -> str:
    return f"charge:{subscription_id}:{period_key(period)}"


def order_number(subscription_id: int, period: date) -> str:
    """Our order id for the period (KakaoPay partner_order_id): the same on every attempt."""
    return f"S{subscription_id}-{period:%Y%m%d}"


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


# -- charges ----------------------------------------------------------------------------------


@dataclass
class _Claim:
    """A charge this worker owns until it records the outcome (or the lease ends)."""

    charge_id: int
    subscription_id: int
    period: date
    amount: int
    tax_free_amount: int
    key: str
    attempt: int  # this attempt's number (1 = first call)
    # Before this claim: unknown means an earlier attempt may have charged (look it up first);
    # failed (a definite refusal) or pending means nothing was charged, so no lookup is needed,
    # which matters for KakaoPay, whose lookup needs a tid we never got.
    previous_status: str
    instrument_ref: str | None
    partner_user_id: str
    item_name: str
    subscription_status: str
    outcome: str = ""  # succeeded, failed, unknown, skipped
    approval: dict[str, Any] = field(default_factory=dict)
    failure_code: str | None = None
    failure_message: str | None = None
    hard: bool = False
    via_lookup: bool = False
    instruments: dict[str, str] = field(default_factory=dict)  # gateway name -> SID / billing key
    gateway_used: str | None = None
    routing_log: list[dict[str, Any]] = field(default_factory=list)
    opened_at: datetime | None = None  # the charge row's creation: no earlier attempt was approved before it
    last_attempt_at: datetime | None = None  # when the previous attempt was claimed or recorded
    customer_id: int = 0
    via: str = ChargeAttemptVia.SCHEDULE
    actor_id: int | None = None
    payment_link_id: int | None = None  # the dunning link, once the charge failed
    link_code: str | None = None  # set when an unknown outcome may be the customer's link payment
    link_gateway: str | None = None
    new_link: PaymentLink | None = None  # a dunning link readied for this failure, to attach
    already_recorded: bool = False  # another worker recorded this charge first: nothing to do
    previous_code: str | None = None  # the recorded reason before this claim (kept when nothing new is known)
    previous_message: str | None = None
    unknown_checks: int = 0  # unsettled lookups in a row before this claim

    def lookup_failed(self, error: PaymentError) -> None:
        """The gateway could not say whether an earlier attempt charged: unknown, never charged blindly.

        A NEEDS_REVIEW answer is kept as it is (it says what a person must check); a lookup that
        merely failed does not overwrite an earlier NEEDS_REVIEW.
        """
        self.outcome = "unknown"
        if error.code == NEEDS_REVIEW:
            self.failure_code, self.failure_message = NEEDS_REVIEW, str(error)[:500]
        elif self.previous_code == NEEDS_REVIEW:
            self.failure_code, self.failure_message = NEEDS_REVIEW, self.previous_message
        else:
            self.failure_code, self.failure_message = LOOKUP_FAILED, str(error)[:500]

    @property
    def unchanged_unknown(self) -> bool:
        """Still unknown for the same reason as before this claim: nothing to add to history or audit."""
        return (
            self.outcome == "unknown"
            and self.previous_status == ChargeStatus.UNKNOWN
            and self.previous_code is not None
            and self.failure_code == self.previous_code
        )

    @property
    def counted_as(self) -> str:
        return "skipped" if self.already_recorded else self.outcome


def _default_gateway(engine: Engine) -> PaymentRouter:
    """The configured gateway router (sandbox by default, with failover to an enrolled backup)."""
    from core.payments.registry import get_router

    return get_router(engine=engine)


def _charge(gateway: PaymentGateway | PaymentRouter, claim: _Claim, **kwargs: Any) -> ApprovalResult:
    """Through the router (retries, failover to an enrolled backup instrument) or one plain gateway."""
    if isinstance(gateway, PaymentRouter):
        routed = gateway.charge(claim.routing_log, instruments=claim.instruments, **kwargs)
        claim.gateway_used = routed.gateway
        return routed.result
    claim.gateway_used = gateway.name
    return gateway.charge(instrument_ref=claim.instrument_ref or "", **kwargs)


def _find_by_order(
    gateway: PaymentGateway | PaymentRouter, claim: _Claim, partner_order_id: str
) -> LookupResult | None:
    """Look our order id up on every gateway the subscription has an instrument with.

    Hook into core.payments.router.find_charge: KakaoPay cannot look an order id up, so it also
    gets the instrument and the attempt's times (it judges by the SID's last approval, or says
    NEEDS_REVIEW, which stays UNKNOWN with that message on the subscriptions page).
    """
    times = {"not_before": claim.opened_at, "last_attempt_at": claim.last_attempt_at}
    if not isinstance(gateway, PaymentRouter):
        claim.gateway_used = gateway.name
        return find_charge(
            gateway, partner_order_id=partner_order_id, instrument_ref=claim.instrument_ref, **times
        )
    for name in claim.instruments or {gateway.primary.name: ""}:
        found = find_charge(
            gateway.gateway(name),
            partner_order_id=partner_order_id,
            instrument_ref=claim.instruments.get(name),
            **times,
        )
        note(
            claim.routing_log,
            name,
            "find_by_order",
            "found" if found else "not_found",
            status=found.status if found else None,
        )
        if found is not None and found.status in CHARGED_STATUSES:
            claim.gateway_used = name
            return found
    return None


def billing_notices(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job: D-1 notices (as of `now`: history and messages carry the worker's instant)."""
    with clock.frozen(now):
        return run_notices(engine, now)


def billing_charges(engine: Engine, now: datetime) -> dict[str, int]:
    """Worker job: resume / end subscriptions, open the due charges, charge, retry, end dunning.

    First the notice check (the notice job may not have run since the worker came back): a charge
    whose notice did not go out in time is moved, never opened.
    """
    with clock.frozen(now):
        moved = hold_unnoticed(engine, now)
        return {**run_charges(engine, now), "charges_moved": moved}


def run_charges(
    engine: Engine,
    now: datetime,
    *,
    gateway: PaymentGateway | PaymentRouter | None = None,
    gateway_for: GatewayFor | None = None,
    batch_size: int = 500,
) -> dict[str, int]:
    counts: dict[str, int] = {
        "moved_past_review": 0,
        "resumed": 0,
        "ended": 0,
        "opened": 0,
        "succeeded": 0,
        "failed": 0,
        "unknown": 0,
        "recovered_by_lookup": 0,
        "skipped": 0,
        "dunning_ended": 0,
    }
    today = clock.today_kst(now)
    with session_scope(engine) as session:
        config = load_settings(session)
        counts["moved_past_review"] = _move_past_held(session, today, config.notice_lead_days)
        counts["resumed"] = _resume_due(session, today)
        counts["ended"] = _end_canceled_at_period_end(session, today)
    with session_scope(engine) as session:
        counts["opened"] = _open_due_charges(session, now, today, config)
    with session_scope(engine) as session:
        counts["dunning_ended"] = _end_dunning(session, now, today, config)
    resolved: PaymentGateway | PaymentRouter | None = gateway
    while True:
        with session_scope(engine) as session:
            claims = _claim(session, now, config, batch_size)
        if not claims:
            break
        if resolved is None:
            resolved = (gateway_for or _default_gateway)(engine)
        _check_link_payments(engine, resolved, claims)
        _attempt_all(resolved, claims)
        _ready_dunning_links(engine, resolved, claims)
        _record_all(
            engine, claims, now, config, SYSTEM_ACTOR, gateway_name=getattr(resolved, "name", "gateway")
        )
        for claim in claims:
            counts[claim.counted_as] = counts.get(claim.counted_as, 0) + 1
            if claim.via_lookup and claim.counted_as == "succeeded":
                counts["recovered_by_lookup"] += 1
    return counts


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


def _resume_due(session: Session, today: date) -> int:
    due = session.exec(
        select(Subscription).where(
            Subscription.status == SubscriptionStatus.PAUSED,
            col(Subscription.paused_until).is_not(None),
            col(Subscription.paused_until) <= today,
        )
    ).all()
    for subscription in due:
        _resume(session, subscription, SYSTEM_ACTOR, today)
    return len(due)


def _end_canceled_at_period_end(session: Session, today: date) -> int:
    due = session.exec(
        select(Subscription).where(
            col(Subscription.cancel_at_period_end).is_(True),
            col(Subscription.status).in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED]),
            or_(col(Subscription.next_charge_date).is_(None), col(Subscription.next_charge_date) <= today),
        )
    ).all()
    for subscription in due:
        _cancel_now(subscription)
        session.add(subscription)
        _history(session, subscription, SYSTEM_ACTOR, "canceled", reason="기간 종료 해지")
    return len(due)


def _open_due_charges(session: Session, now: datetime, today: date, config: BillingSettings) -> int:
    """One INSERT .. SELECT .. ON CONFLICT DO NOTHING: a charge row per due active subscription.

    Charges of a day open at the owner's charge hour (KST); the unique (subscription, period)
    makes a second worker's insert, or a retried tick's, a no-op.
    """
    last_day = today if now >= kst_instant(today, config.charge_hour) else today - timedelta(days=1)
    key = (
        literal("charge:")
        + cast(Subscription.id, String)
        + literal(":")
        + cast(Subscription.next_charge_date, String)
    )
    source = select(  # type: ignore[call-overload]
        Subscription.id,
        Subscription.next_charge_date,
        func.coalesce(Subscription.next_amount, Subscription.amount),
        literal(ChargeStatus.PENDING.value),
        literal(0),
        key,
        literal(False),
        literal(now, type_=SubscriptionCharge.__table__.c.created_at.type),
        literal(now, type_=SubscriptionCharge.__table__.c.updated_at.type),
    ).where(
        Subscription.status == SubscriptionStatus.ACTIVE,
        col(Subscription.cancel_at_period_end).is_(False),
        col(Subscription.next_charge_date) <= last_day,
    )
    table = SubscriptionCharge.__table__
    dialect = postgresql if is_postgres(session.get_bind()) else sqlite
    statement = (
        dialect.insert(table)
        .from_select(
            [
                "subscription_id",
                "period",
                "amount",
                "status",
                "attempt_count",
                "idempotency_key",
                "hard_decline",
                "created_at",
                "updated_at",
            ],
            source,
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    return len(session.execute(statement).all())


def _is_due(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        or_(
            SubscriptionCharge.status == ChargeStatus.PENDING,
            and_(
                SubscriptionCharge.status == ChargeStatus.UNKNOWN,
                col(SubscriptionCharge.next_retry_at) <= now,
            ),
            and_(
                SubscriptionCharge.status == ChargeStatus.FAILED,
                col(SubscriptionCharge.hard_decline).is_(False),
                col(SubscriptionCharge.next_retry_at) <= now,
            ),
        ),
        or_(col(SubscriptionCharge.payment_link_id).is_(None), ~_link_payment_unresolved()),
    )


def _link_payment_unresolved():  # type: ignore[no-untyped-def]
    """The customer's payment of the dunning link has an unknown outcome: charging the SID could charge twice.

    The reconciliation job settles it (paid: `settle_charge_by_link`; not paid: the charge is due again).
    """
    return (
        select(Payment.id)
        .join(PaymentLink, col(Payment.idempotency_key) == literal("link:") + col(PaymentLink.code))
        .where(
            col(PaymentLink.id) == SubscriptionCharge.payment_link_id,
            Payment.status == PaymentStatus.UNKNOWN,
        )
        .exists()
    )


def _next_retry(period: date, today: date, config: BillingSettings) -> date | None:
    return next((d for d in retry_dates(period, config.retry_days) if d > today), None)


def _schedule_spent(charge: SubscriptionCharge, config: BillingSettings) -> bool:
    """The last failure was recorded on or after the schedule's last retry day."""
    return clock.today_kst(charge.updated_at) >= retry_dates(charge.period, config.retry_days)[-1]


def _end_dunning(session: Session, now: datetime, today: date, config: BillingSettings) -> int:
    """Failed charges whose schedule is spent (or hard declines at the schedule's end): cancel or pause."""
    rows = session.exec(
        select(SubscriptionCharge, Subscription)
        .join(Subscription, col(Subscription.id) == SubscriptionCharge.subscription_id)
        .where(SubscriptionCharge.status == ChargeStatus.FAILED, col(SubscriptionCharge.next_retry_at) <= now)
    ).all()
    ended = 0
    for charge, subscription in rows:
        if not charge.hard_decline and not _schedule_spent(charge, config):
            continue  # a retry is due: the claim below takes it
        charge.next_retry_at = None
        charge.updated_at = now
        session.add(charge)
        _expire_dunning_link(session, charge)
        if subscription.status != SubscriptionStatus.PAST_DUE:
            continue
        if config.final_action == "pause":
            subscription.status = SubscriptionStatus.PAUSED
            subscription.paused_until = None
            final_action = "일시정지"
        else:
            _cancel_now(subscription)
            final_action = "해지"
        session.add(subscription)
        _history(
            session,
            subscription,
            SYSTEM_ACTOR,
            "dunning_ended",
            final_action=config.final_action,
            period=charge.period,
            reason=charge.failure_message,
        )
        _tell(
            session,
            subscription,
            f"billing_dunning_end:{subscription.id}:{period_key(charge.period)}",
            "billing_dunning_end",
            상품명=_plan_name(session, subscription),
            조치=final_action,
        )
        ended += 1
    return ended


def _claim(
    session: Session,
    now: datetime,
    config: BillingSettings,
    limit: int,
    charge_id: int | None = None,
    *,
    via: str = ChargeAttemptVia.SCHEDULE,
    actor: Actor = SYSTEM_ACTOR,
) -> list[_Claim]:
    """Take due charges: status unknown + a lease, committed before any gateway call."""
    statement = (
        select(SubscriptionCharge.id).where(_is_due(now)).order_by(col(SubscriptionCharge.id)).limit(limit)
    )
    if charge_id is not None:
        statement = select(SubscriptionCharge.id).where(
            SubscriptionCharge.id == charge_id,
            or_(
                SubscriptionCharge.status == ChargeStatus.FAILED,
                and_(  # a recorded unknown outcome, or a claim whose lease is over; never one in flight
                    SubscriptionCharge.status == ChargeStatus.UNKNOWN,
                    or_(
                        col(SubscriptionCharge.failure_code).is_not(None),
                        col(SubscriptionCharge.next_retry_at) <= now,
                    ),
                ),
            ),
        )
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update(skip_locked=True)
    ids = list(session.exec(statement).all())
    if not ids:
        return []
    rows = session.execute(
        select(  # type: ignore[call-overload]
            SubscriptionCharge.id,
            SubscriptionCharge.period,
            SubscriptionCharge.amount,
            SubscriptionCharge.idempotency_key,
            SubscriptionCharge.attempt_count,
            SubscriptionCharge.status,
            SubscriptionCharge.payment_link_id,
            SubscriptionCharge.created_at,
            SubscriptionCharge.updated_at,
            SubscriptionCharge.failure_code,
            SubscriptionCharge.failure_message,
            SubscriptionCharge.unknown_checks,
            Subscription.id,
            Subscription.status,
            Subscription.customer_id,
            Subscription.instrument_gateway,
            Subscription.instrument_ref,
            Subscription.backup_instrument_gateway,
            Subscription.backup_instrument_ref,
            Customer.public_id,
            SubscriptionPlan.name,
            SubscriptionPlan.tax_free_amount,
        )
        .join(Subscription, col(Subscription.id) == SubscriptionCharge.subscription_id)
        .join(Customer, col(Customer.id) == Subscription.customer_id)
        .join(
            SubscriptionPlan,
            col(SubscriptionPlan.id) == func.coalesce(Subscription.next_plan_id, Subscription.plan_id),
        )
        .where(col(SubscriptionCharge.id).in_(ids))
        .order_by(col(SubscriptionCharge.id))
    ).all()
    claims = [
        _Claim(
            charge_id=charge_id,
            subscription_id=subscription_id,
            period=period,
            amount=amount,
            tax_free_amount=min(plan_tax_free, amount),
            key=key,
            attempt=attempt_count + 1,
            opened_at=charge_created_at,
            last_attempt_at=charge_updated_at,
            previous_status=charge_status,
            instrument_ref=instrument_ref,
            partner_user_id=public_id,
            item_name=plan_name,
            subscription_status=status,
            instruments=_instruments(instrument_gateway, instrument_ref, backup_gateway, backup_ref),
            customer_id=customer_id,
            via=via,
            actor_id=actor.id,
            payment_link_id=payment_link_id,
            previous_code=previous_code,
            previous_message=previous_message,
            unknown_checks=unknown_checks,
        )
        for (
            charge_id,
            period,
            amount,
            key,
            attempt_count,
            charge_status,
            payment_link_id,
            charge_created_at,
            charge_updated_at,
            previous_code,
            previous_message,
            unknown_checks,
            subscription_id,
            status,
            customer_id,
            instrument_gateway,
            instrument_ref,
            backup_gateway,
            backup_ref,
            public_id,
            plan_name,
            plan_tax_free,
        ) in rows
    ]
    unsure = {
        c.payment_link_id: c
        for c in claims
        if c.payment_link_id and c.previous_status == ChargeStatus.UNKNOWN
    }
    if unsure:
        for link_id, code, link_gateway in session.execute(
            select(PaymentLink.id, PaymentLink.code, PaymentLink.gateway).where(
                col(PaymentLink.id).in_(unsure)
            )
        ).all():
            unsure[link_id].link_code, unsure[link_id].link_gateway = code, link_gateway
    session.execute(
        update(SubscriptionCharge)
        .where(col(SubscriptionCharge.id).in_(ids))
        .values(
            status=ChargeStatus.UNKNOWN,
            attempt_count=SubscriptionCharge.attempt_count + 1,
            next_retry_at=now + timedelta(minutes=config.lease_minutes),
            failure_code=None,  # in flight: no reason yet (each attempt keeps its own in the attempts)
            failure_message=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return claims


def _instruments(
    gateway: str | None, ref: str | None, backup_gateway: str | None, backup_ref: str | None
) -> dict[str, str]:
    found: dict[str, str] = {}
    if ref:
        found[gateway or "sandbox"] = ref
    if backup_ref and backup_gateway:
        found.setdefault(backup_gateway, backup_ref)
    return found


def _attempt(gateway: PaymentGateway | PaymentRouter, claim: _Claim) -> None:
    """Ask the gateway, once; an attempt whose outcome is unknown is looked up first (never charge twice)."""
    if claim.outcome:  # decided before the call (the customer paid the dunning link)
        return
    partner_order_id = order_number(claim.subscription_id, claim.period)
    if claim.previous_status == ChargeStatus.UNKNOWN:  # an earlier attempt may have charged
        try:
            found = _find_by_order(gateway, claim, partner_order_id)
        except PaymentError as exc:
            claim.lookup_failed(exc)
            return
        if found is not None and found.status in CHARGED_STATUSES:
            claim.outcome, claim.via_lookup = "succeeded", True
            claim.approval = {
                "tid": found.tid,
                "total_amount": found.total_amount,
                "approved_at": found.approved_at,
                "method": None,
            }
            return
    paused_by_schedule = (
        claim.subscription_status == SubscriptionStatus.PAUSED and claim.via != ChargeAttemptVia.MANUAL
    )
    if claim.subscription_status == SubscriptionStatus.CANCELED or paused_by_schedule:
        # A person may still collect the period of a paused subscription (after the dunning paused it).
        claim.outcome, claim.failure_code = "skipped", "NOT_ACTIVE"
        claim.failure_message = "구독이 해지 또는 일시정지되어 결제하지 않았습니다"
        return
    if claim.amount <= 0:
        claim.outcome, claim.hard, claim.failure_code = "failed", True, "ZERO_AMOUNT"
        claim.failure_message = "결제 금액이 0원이라 청구하지 않았습니다 (요금을 확인하세요)"
        return
    if not claim.instrument_ref:
        claim.outcome, claim.hard, claim.failure_code = "failed", True, "NO_INSTRUMENT"
        claim.failure_message = "등록된 결제수단(SID)이 없습니다"
        return
    # A fresh gateway key after a definite failure; the same one after an unknown outcome.
    gateway_key = claim.key if claim.attempt == 1 else f"{claim.key}:{claim.attempt}"
    try:
        result = _charge(
            gateway,
            claim,
            partner_order_id=partner_order_id,
            partner_user_id=claim.partner_user_id,
            item_name=claim.item_name,
            total_amount=claim.amount,
            tax_free_amount=claim.tax_free_amount,
            idempotency_key=gateway_key,
        )
    except PaymentOutcomeUnknown as exc:
        claim.outcome, claim.failure_code, claim.failure_message = "unknown", "TIMEOUT", str(exc)[:500]
    except PermanentPaymentError as exc:
        claim.outcome, claim.hard = "failed", True
        claim.failure_code, claim.failure_message = str(exc.code or "DECLINED")[:64], str(exc)[:500]
    except PaymentError as exc:  # retriable: busy, locked, 5xx
        claim.outcome, claim.failure_code, claim.failure_message = (
            "failed",
            str(exc.code or "RETRY")[:64],
            str(exc)[:500],
        )
    else:
        claim.outcome = "succeeded"
        claim.approval = {
            "tid": result.tid,
            "total_amount": result.total_amount,
            "approved_at": result.approved_at,
            "method": result.method,
        }


def _attempt_all(gateway: PaymentGateway | PaymentRouter, claims: list[_Claim]) -> None:
    """Every claim's gateway call: in turn for the in-process sandbox, on a thread pool for a remote one.

    A remote gateway spends its time waiting on the network, so `max_concurrent_charges` calls
    overlap (each claim is owned by this worker alone, so the calls are independent).
    """
    primary = gateway.primary if isinstance(gateway, PaymentRouter) else gateway
    workers = min(int(getattr(primary, "max_concurrent_charges", 1) or 1), len(claims))
    if workers <= 1:
        for claim in claims:
            _attempt(gateway, claim)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charge") as pool:
        for _ in pool.map(lambda claim: _attempt(gateway, claim), claims):
            pass


LINK_PAID = "LINK_PAID"


def _check_link_payments(
    engine: Engine, gateway: PaymentGateway | PaymentRouter, claims: list[_Claim]
) -> None:
    """An unknown outcome on a charge with a dunning link may be the customer's own payment of it.

    If the process that approved the link died before recording it, the link's payment is still
    READY here but paid at the gateway: look the link's order up, and if it is paid, do not charge
    the SID; the record step hands the payment to the reconciliation job, which settles the charge.
    """
    unsure = [c for c in claims if c.link_code is not None]
    if not unsure:
        return
    router = gateway if isinstance(gateway, PaymentRouter) else _default_gateway(engine)
    for claim in unsure:
        try:
            found = router.gateway(claim.link_gateway or router.primary.name).find_by_order(
                partner_order_id=code_order_id(claim.link_code)
            )
        except PaymentError as exc:
            claim.lookup_failed(exc)
            continue
        if found is not None and found.status in CHARGED_STATUSES:
            claim.outcome, claim.failure_code = "unknown", LINK_PAID
            claim.failure_message = "고객이 결제 링크로 결제했습니다 (기록을 확인하는 중)"


def _ready_dunning_links(
    engine: Engine, gateway: PaymentGateway | PaymentRouter, claims: list[_Claim]
) -> None:
    """A payment link, readied at the gateway, for each first failure of a period (outside any transaction).

    The failure notice carries it; paying it settles the charge (`claim_charge_for_link` /
    `settle_charge_by_link`). If the gateway cannot ready one, the notice goes without a link.
    """
    router = gateway if isinstance(gateway, PaymentRouter) else None  # else the configured one
    for claim in claims:
        if claim.outcome != "failed" or claim.payment_link_id is not None or claim.amount <= 0:
            continue
        try:
            with session_scope(engine) as session:
                claim.new_link = create_payment_link(
                    session,
                    SYSTEM_ACTOR,
                    item_name=claim.item_name,
                    amount=claim.amount,
                    tax_free_amount=claim.tax_free_amount,
                    memo=f"정기결제 {period_key(claim.period)} 미결제 ({claim.key})",
                    customer_id=claim.customer_id,
                    router=router,
                )
        except ChannelDeskError:  # create_payment_link wraps the gateway's refusal in ValidationFailed
            claim.new_link = None


def _record_all(
    engine: Engine,
    claims: list[_Claim],
    now: datetime,
    config: BillingSettings,
    actor: Actor,
    *,
    gateway_name: str,
) -> None:
    """Record a batch in one transaction; on a conflict, row by row so one bad row spoils nothing."""
    try:
        with session_scope(engine) as session:
            _record_batch(session, claims, now, config, actor, gateway_name)
    except IntegrityError:
        for claim in claims:
            claim.already_recorded = False
            try:
                with session_scope(engine) as session:
                    _record(session, claim, now, config, actor, gateway_name)
            except IntegrityError:
                claim.already_recorded = True  # recorded by someone else already: once is enough


def _record_batch(
    session: Session,
    claims: list[_Claim],
    now: datetime,
    config: BillingSettings,
    actor: Actor,
    gateway_name: str,
) -> None:
    """Successes in bulk (Core inserts and updates), the rarer outcomes one by one, in one transaction."""
    recorded = set(
        session.exec(
            select(SubscriptionCharge.id).where(
                col(SubscriptionCharge.id).in_([c.charge_id for c in claims]),
                SubscriptionCharge.status == ChargeStatus.SUCCEEDED,
            )
        ).all()
    )
    for claim in claims:
        claim.already_recorded = claim.charge_id in recorded
    fresh = [c for c in claims if not c.already_recorded]
    successes = [c for c in fresh if c.outcome == "succeeded"]
    _record_successes(session, successes, now, actor, gateway_name)
    for claim in fresh:
        if claim.outcome != "succeeded":
            _record(session, claim, now, config, actor, gateway_name)


def _approved_at(claim: _Claim, now: datetime) -> datetime:
    approved_at = claim.approval.get("approved_at") or now
    return approved_at.replace(tzinfo=clock.KST) if approved_at.tzinfo is None else approved_at


def _attempt_row(claim: _Claim, now: datetime) -> dict[str, Any]:
    return {
        "charge_id": claim.charge_id,
        "number": claim.attempt,
        "via": str(claim.via),
        "outcome": claim.outcome,
        "failure_code": claim.failure_code,
        "failure_message": claim.failure_message,
        "hard_decline": claim.hard,
        "gateway": claim.gateway_used,
        "gateway_tid": claim.approval.get("tid"),
        "at": now,
        "actor_id": claim.actor_id,
    }


def _record_successes(
    session: Session, claims: list[_Claim], now: datetime, actor: Actor, gateway_name: str
) -> None:
    """What `_record_success` does, for a batch: orders, payments, charges, dates, history, receipts."""
    if not claims:
        return
    subscriptions = {
        row.id: row
        for row in session.execute(
            select(  # type: ignore[call-overload]
                Subscription.id,
                Subscription.customer_id,
                Subscription.status,
                Subscription.paused_until,
                Subscription.next_charge_date,
                Subscription.anchor_day,
                Subscription.plan_id,
                Subscription.instrument_gateway,
                SubscriptionPlan.id.label("effective_plan_id"),  # type: ignore[union-attr]
                SubscriptionPlan.name.label("plan_name"),  # type: ignore[attr-defined]
                SubscriptionPlan.product_id,
                SubscriptionPlan.interval_unit,
                SubscriptionPlan.interval_count,
                Customer.phone,
            )
            .join(
                SubscriptionPlan,
                col(SubscriptionPlan.id) == func.coalesce(Subscription.next_plan_id, Subscription.plan_id),
            )
            .join(Customer, col(Customer.id) == Subscription.customer_id)
            .where(col(Subscription.id).in_({c.subscription_id for c in claims}))
        ).all()
    }
    order_ids = record_paid_orders(
        session,
        [
            {
                "order_number": order_number(c.subscription_id, c.period),
                "customer_id": subscriptions[c.subscription_id].customer_id,
                "product_id": subscriptions[c.subscription_id].product_id,
                "item_name": subscriptions[c.subscription_id].plan_name,
                "amount": c.amount,
                "tax_free_amount": c.tax_free_amount,
                "source": "subscription",
                "ordered_at": now,
                "paid_at": _approved_at(c, now),
                "subscription_id": c.subscription_id,
            }
            for c in claims
        ],
    )
    payment_table = Payment.__table__  # type: ignore[attr-defined]
    payment_ids = dict(
        (key, payment_id)
        for payment_id, key in session.execute(
            payment_table.insert().returning(payment_table.c.id, payment_table.c.idempotency_key),
            [
                {
                    "order_id": order_ids[order_number(c.subscription_id, c.period)],
                    "customer_id": subscriptions[c.subscription_id].customer_id,
                    "gateway": c.gateway_used
                    or subscriptions[c.subscription_id].instrument_gateway
                    or gateway_name,
                    "gateway_tid": c.approval.get("tid"),
                    "routing_log": c.routing_log,
                    "method": c.approval.get("method"),
                    "amount": c.amount,
                    "tax_free_amount": c.tax_free_amount,
                    "refunded_amount": 0,
                    "status": PaymentStatus.APPROVED.value,
                    "idempotency_key": c.key,
                    "approved_at": _approved_at(c, now),
                    "created_at": now,
                }
                for c in claims
            ],
        ).all()
    )
    charge_table = SubscriptionCharge.__table__  # type: ignore[attr-defined]
    session.execute(
        charge_table.update()
        .where(charge_table.c.id == bindparam("b_id"), charge_table.c.status != ChargeStatus.SUCCEEDED.value)
        .values(
            status=ChargeStatus.SUCCEEDED.value,
            payment_id=bindparam("b_payment_id"),
            order_id=bindparam("b_order_id"),
            next_retry_at=None,
            failure_code=None,  # approved: an earlier attempt's failure is history (the attempts keep it)
            failure_message=None,
            unknown_checks=0,
            updated_at=now,
        ),
        [
            {
                "b_id": c.charge_id,
                "b_payment_id": payment_ids[c.key],
                "b_order_id": order_ids[order_number(c.subscription_id, c.period)],
            }
            for c in claims
        ],
    )
    moved: list[dict[str, Any]] = []
    next_dates: dict[int, date | None] = {}
    for c in claims:
        sub = subscriptions[c.subscription_id]
        if sub.next_charge_date == c.period and _continues_when_paid(sub.status, sub.paused_until):
            following = next_charge_date(
                c.period, sub.anchor_day, Interval(sub.interval_unit, sub.interval_count)
            )
            next_dates[c.subscription_id] = following
            moved.append(
                {
                    "b_id": c.subscription_id,
                    "b_plan_id": sub.effective_plan_id,
                    "b_amount": c.amount,
                    "b_next_charge_date": following,
                }
            )
    if moved:
        sub_table = Subscription.__table__  # type: ignore[attr-defined]
        session.execute(
            sub_table.update()
            .where(sub_table.c.id == bindparam("b_id"))
            .values(
                plan_id=bindparam("b_plan_id"),
                amount=bindparam("b_amount"),
                next_plan_id=None,
                next_amount=None,
                next_charge_date=bindparam("b_next_charge_date"),
                status=SubscriptionStatus.ACTIVE.value,
            ),
            moved,
        )
    details = [
        (
            c.subscription_id,
            {
                "period": str(c.period),
                "amount": c.amount,
                "tid": c.approval.get("tid"),
                "attempt": c.attempt,
                "via_lookup": c.via_lookup,
            },
        )
        for c in claims
    ]
    session.execute(
        SubscriptionEvent.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "subscription_id": sub_id,
                "kind": "charge_succeeded",
                "actor_id": actor.id,
                "detail": detail,
                "at": now,
            }
            for sub_id, detail in details
        ],
    )
    audit.record_many(session, actor, "subscription.charge_succeeded", "subscription", details)
    links = [c.payment_link_id for c in claims if c.payment_link_id is not None]
    if links:
        session.execute(
            update(PaymentLink)
            .where(col(PaymentLink.id).in_(links), col(PaymentLink.status).in_(LINK_OPEN_STATUSES))
            .values(status=PaymentLinkStatus.EXPIRED)
        )
    session.execute(
        SubscriptionChargeAttempt.__table__.insert(),  # type: ignore[attr-defined]
        [_attempt_row(c, now) for c in claims],
    )
    receipts = []
    for c in claims:
        sub = subscriptions[c.subscription_id]
        number = order_number(c.subscription_id, c.period)
        following = next_dates.get(c.subscription_id)
        next_words = f" 다음 결제일은 {korean_date(following)}입니다." if following else ""
        variables = {
            "상품명": sub.plan_name,
            "금액": format_krw(c.amount),
            "주문번호": number,
            "다음결제안내": next_words,
        }
        receipts.append(
            {
                "customer_id": sub.customer_id,
                "to_phone": sub.phone,
                "template_key": RECEIPT_TEMPLATE,
                "idempotency_key": f"billing_receipt:{c.subscription_id}:{period_key(c.period)}",
                "text": render_template(default_body(RECEIPT_TEMPLATE), variables),
                "variables": variables,
            }
        )
    enqueue_many(session, receipts, now=now)


def _record(
    session: Session, claim: _Claim, now: datetime, config: BillingSettings, actor: Actor, gateway_name: str
) -> None:
    """One claim's outcome through the ORM (the rare outcomes, and every outcome after a batch conflict)."""
    charge = session.get(SubscriptionCharge, claim.charge_id)
    subscription = session.get(Subscription, claim.subscription_id)
    assert charge is not None and subscription is not None
    if charge.status == ChargeStatus.SUCCEEDED:
        claim.already_recorded = True
        return
    charge.updated_at = now
    if claim.outcome == "succeeded":
        _record_success(session, charge, subscription, claim, now, actor, gateway_name)
    elif claim.outcome == "unknown":
        charge.status = ChargeStatus.UNKNOWN
        charge.failure_code, charge.failure_message = claim.failure_code, claim.failure_message
        # A person's retry starts the ladder again; the schedule's lookups climb it, then stop.
        checks = 1 if claim.via == ChargeAttemptVia.MANUAL else claim.unknown_checks + 1
        charge.unknown_checks = checks
        delay = review_delay(checks, config.review_backoff_minutes)
        charge.next_retry_at = None if delay is None else now + delay
        if claim.failure_code == LINK_PAID:  # the reconciliation job records it (settle_charge_by_link)
            session.execute(
                update(Payment)
                .where(
                    col(Payment.idempotency_key) == f"link:{claim.link_code}",
                    col(Payment.status) == PaymentStatus.READY,
                )
                .values(status=PaymentStatus.UNKNOWN)
            )
        if delay is None:  # the ladder is spent: waits for a person, its reason kept
            _history(
                session,
                subscription,
                actor,
                "charge_needs_person",
                period=charge.period,
                code=claim.failure_code,
                reason=claim.failure_message,
                lookups=checks,
            )
        elif not claim.unchanged_unknown:
            _history(
                session,
                subscription,
                actor,
                "charge_unknown",
                period=charge.period,
                code=claim.failure_code,
                reason=claim.failure_message,
            )
        else:  # one more lookup that told nothing new: no history, audit or attempt row
            session.add(charge)
            return
    elif claim.outcome == "skipped":
        charge.status = ChargeStatus.FAILED
        charge.failure_code, charge.failure_message = claim.failure_code, claim.failure_message
        charge.hard_decline, charge.next_retry_at = True, None
    else:
        _record_failure(session, charge, subscription, claim, now, config, actor)
    session.add(charge)
    session.add(SubscriptionChargeAttempt(**_attempt_row(claim, now)))


def _record_success(
    session: Session,
    charge: SubscriptionCharge,
    subscription: Subscription,
    claim: _Claim,
    now: datetime,
    actor: Actor,
    gateway_name: str,
) -> None:
    approved_at = _approved_at(claim, now)
    plan = session.get(SubscriptionPlan, subscription.next_plan_id or subscription.plan_id)
    assert plan is not None
    order = record_paid_order(
        session,
        order_number=order_number(subscription.id or 0, charge.period),
        customer_id=subscription.customer_id,
        product_id=plan.product_id,
        item_name=plan.name,
        amount=charge.amount,
        tax_free_amount=claim.tax_free_amount,
        source="subscription",
        ordered_at=now,
        paid_at=approved_at,
        subscription_id=subscription.id,
    )
    payment = Payment(
        order_id=order.id,
        customer_id=subscription.customer_id,
        gateway=claim.gateway_used or subscription.instrument_gateway or gateway_name,
        gateway_tid=claim.approval.get("tid"),
        routing_log=claim.routing_log,
        method=claim.approval.get("method"),
        amount=charge.amount,
        tax_free_amount=claim.tax_free_amount,
        status=PaymentStatus.APPROVED,
        idempotency_key=charge.idempotency_key,
        approved_at=approved_at,
    )
    session.add(payment)
    session.flush()
    charge.status, charge.payment_id, charge.order_id, charge.next_retry_at = (
        ChargeStatus.SUCCEEDED,
        payment.id,
        order.id,
        None,
    )
    charge.failure_code = charge.failure_message = None  # approved: the attempts keep earlier reasons
    charge.unknown_checks = 0
    _advance(session, subscription, charge, plan)
    _expire_dunning_link(session, charge)
    _history(
        session,
        subscription,
        actor,
        "charge_succeeded",
        period=charge.period,
        amount=charge.amount,
        tid=claim.approval.get("tid"),
        attempt=claim.attempt,
        via_lookup=claim.via_lookup,
    )
    _tell_receipt(session, subscription, charge, plan, order)


def _tell_receipt(
    session: Session,
    subscription: Subscription,
    charge: SubscriptionCharge,
    plan: SubscriptionPlan,
    order: Order,
    lead: str = "",
) -> None:
    """The period's one receipt (key billing_receipt:{subscription}:{period}), with the next date."""
    next_words = (
        f" 다음 결제일은 {korean_date(subscription.next_charge_date)}입니다."
        if subscription.next_charge_date and subscription.status == SubscriptionStatus.ACTIVE
        else ""
    )
    _tell(
        session,
        subscription,
        f"billing_receipt:{subscription.id}:{period_key(charge.period)}",
        RECEIPT_TEMPLATE,
        상품명=plan.name,
        금액=format_krw(charge.amount),
        주문번호=order.order_number,
        다음결제안내=f"{lead}{next_words}",
    )


def _advance(
    session: Session, subscription: Subscription, charge: SubscriptionCharge, plan: SubscriptionPlan
) -> None:
    """The period is paid: the next date moves and a change of plan or amount takes effect."""
    if subscription.next_charge_date == charge.period and _continues_when_paid(
        subscription.status, subscription.paused_until
    ):
        subscription.plan_id = plan.id or subscription.plan_id
        subscription.amount = charge.amount
        subscription.next_plan_id = subscription.next_amount = None
        subscription.next_charge_date = next_charge_date(
            charge.period, subscription.anchor_day, _interval(plan)
        )
        subscription.status = SubscriptionStatus.ACTIVE
    session.add(subscription)


def _continues_when_paid(status: str, paused_until: date | None) -> bool:
    """Paying the period the subscription waits on makes it active: past_due, or paused by the dunning."""
    return status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE) or (
        status == SubscriptionStatus.PAUSED and paused_until is None
    )


def _expire_dunning_link(session: Session, charge: SubscriptionCharge) -> None:
    """The charge is settled (or its dunning is over): its payment link can no longer be paid."""
    if charge.payment_link_id is not None:
        session.execute(
            update(PaymentLink)
            .where(
                col(PaymentLink.id) == charge.payment_link_id,
                col(PaymentLink.status).in_(LINK_OPEN_STATUSES),
            )
            .values(status=PaymentLinkStatus.EXPIRED)
        )


def _record_failure(
    session: Session,
    charge: SubscriptionCharge,
    subscription: Subscription,
    claim: _Claim,
    now: datetime,
    config: BillingSettings,
    actor: Actor,
) -> None:
    today = clock.today_kst(now)
    retry_on = None if claim.hard else _next_retry(charge.period, today, config)
    charge.status = ChargeStatus.FAILED
    charge.unknown_checks = 0
    charge.failure_code, charge.failure_message, charge.hard_decline = (
        claim.failure_code,
        claim.failure_message,
        claim.hard,
    )
    if retry_on is not None:
        charge.next_retry_at = kst_instant(retry_on, config.charge_hour)
    else:  # hard decline or schedule spent: the dunning ends at the schedule's last day
        end = retry_dates(charge.period, config.retry_days)[-1]
        # Not `now`: this tick's claim loop must not take it again; the next tick ends the dunning.
        charge.next_retry_at = max(now + timedelta(seconds=1), kst_instant(end, config.charge_hour))
    if subscription.status == SubscriptionStatus.ACTIVE:
        subscription.status = SubscriptionStatus.PAST_DUE
        session.add(subscription)
    _history(
        session,
        subscription,
        actor,
        "charge_failed",
        period=charge.period,
        code=claim.failure_code,
        reason=claim.failure_message,
        hard=claim.hard,
        next_retry_on=retry_on,
        attempt=claim.attempt,
    )
    first_notice = charge.payment_link_id is None and charge.amount > 0
    if first_notice:
        first_notice = _tell_failure(session, charge, subscription, claim, config, retry_on)
    if retry_on is not None and not first_notice:
        _announce_retry(session, charge, subscription, claim.item_name, claim.failure_message, retry_on)


def _tell_failure(
    session: Session,
    charge: SubscriptionCharge,
    subscription: Subscription,
    claim: _Claim,
    config: BillingSettings,
    retry_on: date | None,
) -> bool:
    """The period's one failure notice, with the readied link to pay by hand (valid while the dunning
    runs) and the first retry date. Returns whether it was queued now (not sent before)."""
    key = f"billing_failed:{subscription.id}:{period_key(charge.period)}"
    if session.exec(select(Message.id).where(Message.idempotency_key == key)).first() is not None:
        return False
    plan_name = claim.item_name
    retry_text = retry_words(retry_on) if retry_on else ""
    link = session.get(PaymentLink, claim.new_link.id) if claim.new_link is not None else None
    if link is not None:
        link.expires_at = kst_instant(retry_dates(charge.period, config.retry_days)[-1] + timedelta(days=1))
        session.add(link)
        charge.payment_link_id = link.id
        url = link_url(link)
        pay_words = f" 아래 링크에서 직접 결제하실 수 있습니다: {url}"
    else:  # the gateway could not ready a link: say how else to pay
        url = ""
        pay_words = " 결제수단을 확인하시거나 채널로 문의해 주세요."
    _tell(
        session,
        subscription,
        key,
        FAILED_TEMPLATE,
        상품명=plan_name,
        금액=format_krw(charge.amount),
        사유=claim.failure_message or "결제 실패",
        재시도안내=retry_text,
        결제안내=pay_words,
        링크=url,
    )
    return True


def retry_words(retry_on: date) -> str:
    return f" {korean_date(retry_on)}에 다시 결제를 시도합니다."


def _announce_retry(
    session: Session,
    charge: SubscriptionCharge,
    subscription: Subscription,
    plan_name: str,
    reason: str | None,
    retry_on: date,
) -> None:
    """Every retry date is told before it is tried: after each failed retry, the next date, in the
    failure template (approved wording), once per retry (key billing_retry:{sub}:{period}:{date}).
    Not again for the date the period's first failure notice already gave."""
    first = session.exec(
        select(Message).where(
            Message.idempotency_key == f"billing_failed:{subscription.id}:{period_key(charge.period)}"
        )
    ).first()
    if first is not None and (first.variables or {}).get("재시도안내") == retry_words(retry_on):
        return
    link = session.get(PaymentLink, charge.payment_link_id) if charge.payment_link_id else None
    if link is not None and link.status in LINK_OPEN_STATUSES:
        url, pay_words = link_url(link), f" 아래 링크에서 직접 결제하실 수 있습니다: {link_url(link)}"
    else:
        url, pay_words = "", " 결제수단을 확인하시거나 채널로 문의해 주세요."
    _tell(
        session,
        subscription,
        f"billing_retry:{subscription.id}:{period_key(charge.period)}:{period_key(retry_on)}",
        FAILED_TEMPLATE,
        상품명=plan_name,
        금액=format_krw(charge.amount),
        사유=reason or "결제 실패",
        재시도안내=retry_words(retry_on),
        결제안내=pay_words,
        링크=url,
    )


def retry_charge(
    engine: Engine,
    actor: Actor,
    charge_id: int,
    *,
    gateway: PaymentGateway | PaymentRouter | None = None,
    now: datetime | None = None,
) -> str:
    """A person retries a failed charge now (also a hard decline, after checking with the customer).

    Same path as the worker: claim, look up first, charge at most once. Returns the outcome.
    """
    require_role(actor, *MANAGERS)
    now = now or clock.now()
    with session_scope(engine) as session:
        config = load_settings(session)
        charge = session.get(SubscriptionCharge, charge_id)
        if charge is None:
            raise NotFound("없는 결제 건입니다")
        if charge.status == ChargeStatus.SUCCEEDED:
            raise Conflict("이미 결제된 건입니다")
        if (
            charge.status == ChargeStatus.UNKNOWN
            and charge.next_retry_at
            and charge.next_retry_at > now
            and charge.attempt_count
            and charge.failure_code is None
        ):
            raise Conflict("다른 작업자가 결제 중입니다. 잠시 후 다시 시도하세요")
        subscription = session.get(Subscription, charge.subscription_id)
        if subscription is not None and subscription.status == SubscriptionStatus.CANCELED:
            raise Conflict("해지된 구독은 재시도할 수 없습니다")
        claims = _claim(
            session, now, config, 1, charge_id=charge_id, via=ChargeAttemptVia.MANUAL, actor=actor
        )
        if not claims:
            raise Conflict("재시도할 수 없는 상태입니다")
        audit.record(session, actor, "subscription.charge_retry", "subscription_charge", charge_id)
    claim = claims[0]
    resolved = gateway or _default_gateway(engine)
    _check_link_payments(engine, resolved, claims)
    _attempt(resolved, claim)
    _ready_dunning_links(engine, resolved, claims)
    _record_all(engine, claims, now, config, actor, gateway_name=getattr(resolved, "name", "gateway"))
    return claim.counted_as


# -- the dunning link: the customer pays the failed charge by hand ------------------------------
# payment_links calls these three around a link's approval; they do nothing for other links.


def _charge_of_link(session: Session, link: PaymentLink) -> SubscriptionCharge | None:
    if link.id is None:
        return None
    statement = select(SubscriptionCharge).where(SubscriptionCharge.payment_link_id == link.id)
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    return session.exec(statement.execution_options(populate_existing=True)).first()


def claim_charge_for_link(session: Session, link: PaymentLink) -> None:
    """Before the gateway approves a dunning link: take the charge, as a worker would, in the caller's transaction.

    While the customer's payment is in flight the worker cannot claim the charge (and so cannot
    charge the SID too); while the worker is charging it, or once it is paid, the link is refused.
    """
    charge = _charge_of_link(session, link)
    if charge is None:
        return
    if charge.status == ChargeStatus.SUCCEEDED:
        raise ValidationFailed("이미 결제된 정기결제입니다. 다시 결제하지 않으셔도 됩니다")
    now = clock.now()
    config = load_settings(session)
    claimed = session.execute(
        update(SubscriptionCharge)
        .where(col(SubscriptionCharge.id) == charge.id, SubscriptionCharge.status == ChargeStatus.FAILED)
        .values(
            status=ChargeStatus.UNKNOWN,
            attempt_count=SubscriptionCharge.attempt_count + 1,
            next_retry_at=now + timedelta(minutes=config.lease_minutes),
            failure_code=None,
            failure_message=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationFailed("자동 결제가 진행 중입니다. 잠시 후 다시 시도해 주세요")
    session.add(
        SubscriptionChargeAttempt(
            charge_id=charge.id or 0,
            number=charge.attempt_count + 1,
            via=ChargeAttemptVia.LINK,
            outcome="unknown",
            gateway=link.gateway,
            at=now,
        )
    )


def _link_attempt(session: Session, charge: SubscriptionCharge) -> SubscriptionChargeAttempt | None:
    return session.exec(
        select(SubscriptionChargeAttempt)
        .where(
            SubscriptionChargeAttempt.charge_id == charge.id,
            SubscriptionChargeAttempt.via == ChargeAttemptVia.LINK,
            SubscriptionChargeAttempt.outcome == "unknown",
        )
        .order_by(col(SubscriptionChargeAttempt.number).desc())
    ).first()


def release_charge_for_link(session: Session, link: PaymentLink, error: PaymentError) -> None:
    """The gateway refused the link's payment: the charge is failed again and the dunning goes on as planned."""
    charge = _charge_of_link(session, link)
    if charge is None or charge.status != ChargeStatus.UNKNOWN:
        return
    now = clock.now()
    config = load_settings(session)
    today = clock.today_kst(now)
    retry_on = None if charge.hard_decline else _next_retry(charge.period, today, config)
    end = retry_dates(charge.period, config.retry_days)[-1]
    charge.status = ChargeStatus.FAILED
    charge.failure_code, charge.failure_message = str(error.code or "LINK_FAILED")[:64], str(error)[:500]
    charge.next_retry_at = (
        kst_instant(retry_on, config.charge_hour)
        if retry_on is not None
        else max(now + timedelta(seconds=1), kst_instant(end, config.charge_hour))
    )
    charge.updated_at = now
    session.add(charge)
    attempt = _link_attempt(session, charge)
    if attempt is not None:
        attempt.outcome = "failed"
        attempt.failure_code, attempt.failure_message = charge.failure_code, charge.failure_message
        session.add(attempt)
    subscription = session.get(Subscription, charge.subscription_id)
    assert subscription is not None
    _history(
        session,
        subscription,
        SYSTEM_ACTOR,
        "charge_failed",
        period=charge.period,
        code=charge.failure_code,
        reason=charge.failure_message,
        via=ChargeAttemptVia.LINK,
        next_retry_on=retry_on,
    )
    if retry_on is not None:
        _announce_retry(
            session, charge, subscription, _plan_name(session, subscription), charge.failure_message, retry_on
        )


def settle_charge_by_link(session: Session, link: PaymentLink, order: Order, payment: Payment) -> None:
    """The customer paid the dunning link: the failed charge is paid, once (in the link's transaction).

    The subscription is active again, its next date moves, the retries stop. If the charge was
    somehow paid already, the second payment is put on the history for a refund, never hidden.
    """
    charge = _charge_of_link(session, link)
    if charge is None:
        return
    subscription = session.get(Subscription, charge.subscription_id)
    assert subscription is not None
    now = clock.now()
    if charge.status == ChargeStatus.SUCCEEDED:
        _history(
            session,
            subscription,
            SYSTEM_ACTOR,
            "charge_paid_twice",
            period=charge.period,
            order_id=order.id,
            payment_id=payment.id,
            reason="결제 링크로도 결제되었습니다. 환불이 필요합니다",
        )
        return
    plan = session.get(SubscriptionPlan, subscription.next_plan_id or subscription.plan_id)
    assert plan is not None
    charge.status, charge.payment_id, charge.order_id, charge.next_retry_at = (
        ChargeStatus.SUCCEEDED,
        payment.id,
        order.id,
        None,
    )
    charge.failure_code = charge.failure_message = None
    charge.unknown_checks = 0
    charge.updated_at = now
    session.add(charge)
    # The link's payment is approved: a refusal of an earlier try of it is history (its attempt row).
    payment.failure_code = payment.failure_message = None
    session.add(payment)
    order.subscription_id = subscription.id
    session.add(order)
    _advance(session, subscription, charge, plan)
    attempt = _link_attempt(session, charge)
    if attempt is None:  # approved after our claim's record was lost: still one row per attempt
        attempt = SubscriptionChargeAttempt(
            charge_id=charge.id or 0,
            number=charge.attempt_count,
            via=ChargeAttemptVia.LINK,
            outcome="unknown",
        )
    attempt.outcome, attempt.gateway, attempt.gateway_tid = "succeeded", payment.gateway, payment.gateway_tid
    session.add(attempt)
    _history(
        session,
        subscription,
        SYSTEM_ACTOR,
        "charge_succeeded",
        period=charge.period,
        amount=charge.amount,
        tid=payment.gateway_tid,
        via=ChargeAttemptVia.LINK,
        order_id=order.id,
    )
    _tell_receipt(session, subscription, charge, plan, order, lead=" 정기결제가 정상 이용 중입니다.")


# -- reads for the page -----------------------------------------------------------------------


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
