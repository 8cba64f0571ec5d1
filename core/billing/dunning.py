"""The end of dunning (cancel or pause once the retry schedule is spent) and the staff's
"retry now" (`retry_charge`), which runs the charge engine for one charge.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.accounts import audit
from core.accounts.actor import SYSTEM_ACTOR, Actor, require_role
from core.billing.charges import _attempt, _claim, _default_gateway
from core.billing.dates import period_key, retry_dates
from core.billing.events import _cancel_now, _history, _plan_name, _tell
from core.billing.links import _check_link_payments, _ready_dunning_links
from core.billing.recording import _expire_dunning_link, _record_all
from core.billing.settings import MANAGERS, BillingSettings, load_settings
from core.db import session_scope
from core.errors import Conflict, NotFound
from core.models import ChargeAttemptVia, ChargeStatus, Subscription, SubscriptionCharge, SubscriptionStatus
from core.payments.gateways.base import PaymentGateway
from core.payments.gateways.router import PaymentRouter


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
