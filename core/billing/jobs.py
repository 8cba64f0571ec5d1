"""The worker's billing entry points (core/jobs.py registers them): D-1 notices and the charge run.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import SYSTEM_ACTOR
from core.billing.charges import _attempt_all, _claim, _default_gateway, _open_due_charges
from core.billing.dunning import _end_dunning
from core.billing.events import _cancel_now, _history
from core.billing.links import _check_link_payments, _ready_dunning_links
from core.billing.notices import _move_past_held, hold_unnoticed, run_notices
from core.billing.recording import _record_all
from core.billing.settings import GatewayFor, load_settings
from core.billing.subscriptions import _resume
from core.db import session_scope
from core.models import Subscription, SubscriptionStatus
from core.payments.gateways.base import PaymentGateway
from core.payments.gateways.router import PaymentRouter


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
