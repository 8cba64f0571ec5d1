"""A payment link's approval: the pg_token approved once, the order and the payment recorded once.

The payment is claimed in the store before the approve goes out, an approve without a definite
answer is looked up at once (never approved blindly twice), and a paid link records its order
exactly once whichever of the return URL, a second tab or the reconciliation (jobs.py) gets there
first. A link that pays a higher domain's row (a dunning link pays a failed subscription charge)
runs that domain's hooks around the approval; billing registers them, so payments never imports
billing. As in link_checkout.py, no transaction is held across a gateway call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.errors import ValidationFailed
from core.models import Customer, Order, PaymentLink, PaymentLinkStatus, PaymentStatus
from core.models.orders import Payment
from core.payments.gateways.base import (
    AlreadyProcessed,
    ApproveRequest,
    PaymentError,
    PermanentPaymentError,
)
from core.payments.gateways.router import NOT_PAID_STATUSES, PAID_STATUSES, PaymentRouter, note
from core.payments.links import (
    attempt_tid,
    check_payable,
    funnel_event,
    get_link,
    link_payment,
    link_router,
    partner_order_id,
)
from core.payments.orders import record_paid_order

# failure_code of a payment whose last answer was a refusal that implies an earlier success (a used
# pg_token): the reconciliation looks every such payment up, whatever its status.
ALREADY_PROCESSED = "ALREADY_PROCESSED"


@dataclass(frozen=True)
class LinkHooks:
    """What a higher domain does around a link's approval when the link pays one of its rows (a dunning
    link pays a failed subscription charge): `claim` before the gateway call (the worker must not
    charge the card too), `release` when the gateway refuses, `settle` when paid, in the same
    transaction. Billing registers them (core/billing/__init__.py), so payments never imports billing."""

    claim: Callable[[Session, PaymentLink], None]
    release: Callable[[Session, PaymentLink, PaymentError], None]
    settle: Callable[[Session, PaymentLink, Order, Payment], None]


_LINK_HOOKS: list[LinkHooks] = []


def register_link_hooks(hooks: LinkHooks) -> None:
    """Register a domain's hooks once (importing core.billing does it)."""
    if hooks not in _LINK_HOOKS:
        _LINK_HOOKS.append(hooks)


def _link_hooks() -> list[LinkHooks]:
    """The registered hooks; none means billing was never imported, and a dunning link paid then could
    be charged by the worker too, so refuse rather than pay blind."""
    if not _LINK_HOOKS:
        raise RuntimeError("core.billing is not imported: the dunning-link hooks are not registered")
    return _LINK_HOOKS


def pay_link(
    session: Session,
    code: str,
    *,
    pg_token: str,
    attempt: str | None = None,
    router: PaymentRouter | None = None,
) -> Order:
    """Approve with the pg_token from the approval return URL; creates the order exactly once.

    The payment is claimed first (READY -> UNKNOWN in one conditional UPDATE), so a double click, a
    reload of the return URL or two tabs send one approve; the others get the order or "checking".
    A pg_token issued for another payment is refused by the gateway. A lost answer leaves the payment
    UNKNOWN for the reconciliation job (lookup by tid); it is never approved blindly twice.
    """
    link = get_link(session, code)
    if link.status == PaymentLinkStatus.PAID and link.order_id is not None:
        order = session.get(Order, link.order_id)
        assert order is not None
        return order
    check_payable(session, link)
    pg_token = (pg_token or "").strip()
    if not pg_token or len(pg_token) > 100:
        raise ValidationFailed("결제 인증 토큰(pg_token)이 없습니다")
    payment = link_payment(session, link)
    if payment is None:
        raise ValidationFailed("결제를 먼저 시작해 주세요")
    tid = attempt_tid(payment, attempt)
    if tid is None:
        raise ValidationFailed("이 링크의 결제 요청이 아닙니다 (attempt)")
    claimed = session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == PaymentStatus.READY)  # type: ignore[arg-type]
        .values(status=PaymentStatus.UNKNOWN, gateway_tid=tid)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.commit()
        session.refresh(link)
        if link.order_id is not None:
            order = session.get(Order, link.order_id)
            assert order is not None
            return order
        raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요")
    link.gateway_tid = tid
    session.add(link)
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    request = ApproveRequest(
        tid=tid,
        partner_order_id=partner_order_id(link),
        partner_user_id=customer.public_id,
        pg_token=pg_token,
    )
    gateway = payment.gateway
    router = link_router(session, router)
    for hooks in _link_hooks():  # a dunning link pays a failed subscription charge: the worker must not too
        hooks.claim(session, link)
    session.commit()  # no transaction is held across the gateway call

    log: list[dict[str, Any]] = []
    try:
        approval = router.approve(gateway, log, request)
    except PaymentError as exc:
        return _approve_unanswered(session, link, payment, router, tid, exc, log)
    payment.routing_log = [*payment.routing_log, *log]
    return complete_link_payment(
        session, link, payment, method=approval.method, approved_at=approval.approved_at
    )


def _approve_unanswered(
    session: Session,
    link: PaymentLink,
    payment: Payment,
    router: PaymentRouter,
    tid: str,
    exc: PaymentError,
    log: list[dict[str, Any]],
) -> Order:
    """An approve without a definite yes: the tid is looked up at once, before anything else.

    Paid per the lookup -> the order is recorded (issue 13: a 5xx after KakaoPay approved, or its
    refusal of the reused pg_token, is how a customer was charged twice). The payment goes back to
    READY (the customer may pay again) only when the lookup says not paid: a terminal failure, or
    after a definite refusal any unpaid state. Otherwise it stays UNKNOWN with its reason, for the
    reconciliation and for staff (주문, 문의).
    """
    from core.payments.refunds import payment_cid

    payment.failure_code = ALREADY_PROCESSED if isinstance(exc, AlreadyProcessed) else exc.code
    payment.failure_message = str(exc)[:500]
    cid = payment_cid(session, payment)
    session.add(payment)
    session.commit()  # UNKNOWN with its reason is on record before the lookup goes out
    try:
        found = router.lookup(payment.gateway, log, tid=tid, cid=cid)
    except PaymentError as lookup_error:
        note(log, payment.gateway, "approve", "still_unknown", error=str(lookup_error))
        found = None
    payment.routing_log = [*payment.routing_log, *log]
    if found is not None and found.status in PAID_STATUSES:
        note(payment.routing_log, payment.gateway, "approve", "paid_per_lookup", tid=tid)
        return complete_link_payment(
            session,
            link,
            payment,
            method=(found.raw or {}).get("payment_method_type"),
            approved_at=found.approved_at,
        )
    refused = isinstance(exc, PermanentPaymentError)
    if found is not None and (found.status in NOT_PAID_STATUSES or refused):
        payment.status = PaymentStatus.READY
        link.status = PaymentLinkStatus.FAILED
        session.add_all([payment, link])
        funnel_event(session, link, "failed", tid=tid, code=exc.code, gateway_status=found.status)
        for hooks in _link_hooks():
            hooks.release(session, link, exc)
        session.commit()
        raise ValidationFailed(f"결제가 승인되지 않았습니다: {exc}") from exc
    session.add(payment)
    session.commit()
    raise ValidationFailed("결제 결과를 확인 중입니다. 잠시 후 다시 확인해 주세요") from exc


def complete_link_payment(
    session: Session, link: PaymentLink, payment: Payment, *, method: str | None, approved_at: datetime | None
) -> Order:
    """Record an approved link payment: the order, its item, the payment and a confirmation; once."""
    session.refresh(link)
    if link.order_id is not None:
        order = session.get(Order, link.order_id)
        assert order is not None
        return order
    now = clock.now()
    order = record_paid_order(
        session,
        order_number=f"PL{clock.to_kst(now):%y%m%d}-{link.code}",
        customer_id=payment.customer_id,
        product_id=link.product_id,
        item_name=link.item_name,
        amount=link.amount,
        tax_free_amount=link.tax_free_amount,
        source="link",
        ordered_at=link.created_at,
        paid_at=approved_at or now,
        payment_link_id=link.id,
    )
    payment.order_id = order.id
    payment.status = PaymentStatus.APPROVED
    payment.method = method
    payment.approved_at = approved_at or now
    payment.failure_code = payment.failure_message = None  # an approval clears the earlier failure
    link.status = PaymentLinkStatus.PAID
    link.paid_at = now
    link.order_id = order.id
    session.add_all([payment, link])
    session.flush()
    from core.messaging.automations import (
        enqueue_order_confirmation,  # the post-purchase flow owns its content
    )

    enqueue_order_confirmation(session, order)
    for hooks in _link_hooks():
        hooks.settle(session, link, order, payment)  # a dunning link: the charge is paid
    from core.accounts.actor import SYSTEM_ACTOR

    audit.record(
        session,
        SYSTEM_ACTOR,
        "payment_link.approved",
        "payment_link",
        link.id,
        order_id=order.id,
        payment_id=payment.id,
        amount=order.total_amount,
    )
    session.commit()
    return order
