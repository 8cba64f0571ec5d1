"""A failed attempt: record it, move the subscription to past_due, and announce the retry date the
owner's schedule gives (core/billing/dates.py `retry_dates`) with a payment link.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from core import clock
from core.accounts.actor import Actor
from core.billing.charges import _Claim
from core.billing.dates import korean_date, kst_instant, period_key, retry_dates
from core.billing.events import _history, _tell
from core.billing.settings import FAILED_TEMPLATE, BillingSettings
from core.models import (
    ChargeStatus,
    Message,
    PaymentLink,
    Subscription,
    SubscriptionCharge,
    SubscriptionStatus,
)
from core.money import format_krw
from core.payments.links import OPEN_STATUSES as LINK_OPEN_STATUSES
from core.payments.links import link_url


def _next_retry(period: date, today: date, config: BillingSettings) -> date | None:
    return next((d for d in retry_dates(period, config.retry_days) if d > today), None)


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
