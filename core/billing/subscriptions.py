"""Plans and subscriptions, and the staff actions on them: create, pause, resume, cancel, change the
amount or the plan, set the card. Each checks the role, writes history and the audit log in the
caller's transaction and tells the customer.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.billing.dates import Interval, first_charge_date, korean_date
from core.billing.events import (
    _cancel_now,
    _check_amount,
    _get_subscription,
    _history,
    _interval,
    _plan_name,
    _resume_date,
    _tell,
)
from core.billing.notices import _keep_change_told, _keep_notice_promise
from core.billing.settings import MANAGERS, load_settings
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Customer, IntervalUnit, Role, Subscription, SubscriptionPlan, SubscriptionStatus
from core.money import format_krw


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
