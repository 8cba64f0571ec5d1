"""The charge engine's second half: record each claimed attempt's outcome exactly once (a paid order,
the receipt, the next period), in batches; failures go to core/billing/failures.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.billing.charges import _Claim
from core.billing.dates import Interval, korean_date, next_charge_date, period_key, review_delay
from core.billing.events import _history, _interval, _tell
from core.billing.failures import _record_failure
from core.billing.settings import LINK_PAID, RECEIPT_TEMPLATE, BillingSettings, order_number
from core.db import session_scope
from core.messaging.default_templates import default_body
from core.messaging.outbox import enqueue_many
from core.messaging.templates import render as render_template
from core.models import (
    ChargeAttemptVia,
    ChargeStatus,
    Customer,
    Order,
    Payment,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    Subscription,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionEvent,
    SubscriptionPlan,
    SubscriptionStatus,
)
from core.money import format_krw
from core.payments.links import OPEN_STATUSES as LINK_OPEN_STATUSES
from core.payments.orders import record_paid_order, record_paid_orders


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
