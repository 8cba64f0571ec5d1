"""The dunning payment link: the customer pays a failed charge by hand.

core/payments/link_approval.py calls `claim_charge_for_link`, `release_charge_for_link` and
`settle_charge_by_link` around a link's approval through the hook billing registers there; the
charge engine checks open dunning links before it charges a card again.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import SYSTEM_ACTOR
from core.billing.charges import _Claim, _default_gateway
from core.billing.dates import kst_instant, period_key, retry_dates
from core.billing.events import _history, _plan_name
from core.billing.failures import _announce_retry, _next_retry
from core.billing.recording import _advance, _tell_receipt
from core.billing.settings import CHARGED_STATUSES, LINK_PAID, load_settings
from core.db import is_postgres, session_scope
from core.errors import ChannelDeskError, ValidationFailed
from core.models import (
    ChargeAttemptVia,
    ChargeStatus,
    Order,
    Payment,
    PaymentLink,
    Subscription,
    SubscriptionCharge,
    SubscriptionChargeAttempt,
    SubscriptionPlan,
)
from core.payments.gateways.base import PaymentError, PaymentGateway
from core.payments.gateways.router import PaymentRouter
from core.payments.links import code_order_id, create_payment_link


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
