"""The refund path: the service that gives money back, exactly once.

A refund holds no database lock across the gateway call: phase 1 locks the payment row, reserves
the amount with a conditional UPDATE (so two staff at once can never refund more than was paid) and
writes a REQUESTED refund; then the gateway cancel runs (idempotent per refund key); phase 2 records
the answer, updates the order and payment, tells the customer and writes the audit row. A refund
whose answer was lost stays REQUESTED (or UNKNOWN) and is settled by the reconciliation job, never
sent blind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers import summary as customer_summary
from core.db import is_postgres
from core.errors import Conflict, NotFound, ValidationFailed
from core.messaging import outbox
from core.models import (
    Customer,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
)
from core.models.orders import PAYMENT_STATUS_LABELS
from core.money import format_krw
from core.payments.gateways.base import (
    CancelRequest,
    PaymentError,
    PaymentOutcomeUnknown,
    PermanentPaymentError,
)
from core.payments.gateways.router import PaymentRouter, cancel_verdict
from core.payments.orders import check_amount
from core.payments.templates import ensure_template

REFUND_ROLES = (Role.OWNER, Role.CS)
REFUNDABLE_PAYMENT_STATUSES = (PaymentStatus.APPROVED, PaymentStatus.PARTIALLY_REFUNDED)


def _router_for(session: Session, router: PaymentRouter | None) -> PaymentRouter:
    if router is not None:
        return router
    from core.payments.gateways.registry import get_router

    return get_router(engine=session.get_bind())  # type: ignore[arg-type]


def _lock_payment(session: Session, payment_id: int) -> Payment:
    statement = select(Payment).where(Payment.id == payment_id)
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        statement = statement.with_for_update()  # SQLite: BEGIN IMMEDIATE already serializes writers
    payment = session.exec(statement.execution_options(populate_existing=True)).first()
    if payment is None:
        raise NotFound(f"없는 결제입니다 (#{payment_id})")
    return payment


def payment_cid(session: Session, payment: Payment) -> str | None:
    """The merchant code (KakaoPay CID) to send with a payment's lookups and cancels: its own.

    A payment belongs to the CID it was made with (a subscription charge is not found under the
    one-time CID, issue 13 item 7). Rows without one stored are inferred: a subscription's charge
    was made under the subscription CID, anything else under the configured one-time CID. Toss
    finds a payment by its key alone (None).
    """
    if payment.gateway_cid:
        return payment.gateway_cid
    if payment.gateway not in ("kakaopay", "sandbox"):
        return None
    order = session.get(Order, payment.order_id) if payment.order_id else None
    recurring = order is not None and order.subscription_id is not None
    if payment.gateway == "sandbox":
        from core.payments.gateways.sandbox import ONE_TIME_CID, RECURRING_CID

        return RECURRING_CID if recurring else ONE_TIME_CID
    from core.config import get_settings

    settings = get_settings()
    return settings.kakaopay_subscription_cid if recurring else settings.kakaopay_cid


UNKNOWN_OUTCOME_LABEL = "결제 대행사 응답 확인 중"


def unknown_outcome_notes(payments: list[Payment], refunds: list[Refund]) -> list[str]:
    """One Korean line per payment or refund whose outcome the gateway has not settled yet, with the
    reason for staff (주문, 문의): what a CS person checks before telling the customer anything."""
    notes = [
        f"결제 #{p.id} {format_krw(p.amount)}: {UNKNOWN_OUTCOME_LABEL} ({p.failure_message or '사유 없음'})"
        for p in payments
        if p.status == PaymentStatus.UNKNOWN
    ]
    notes += [
        f"환불 #{r.id} {format_krw(r.amount)}: {UNKNOWN_OUTCOME_LABEL} ({r.unknown_reason or '사유 없음'})"
        for r in refunds
        if r.status in (RefundStatus.UNKNOWN, RefundStatus.REQUESTED)
    ]
    return notes


def unknown_outcome_notes_for(session: Session, payments: list[Payment]) -> list[str]:
    """`unknown_outcome_notes` for some payments, their refunds read here (the 문의 screen)."""
    ids = [p.id for p in payments if p.id is not None]
    refunds = (
        list(session.exec(select(Refund).where(Refund.payment_id.in_(ids))).all())  # type: ignore[attr-defined]
        if ids
        else []
    )
    return unknown_outcome_notes(payments, refunds)


def refundable_amount(payment: Payment) -> int:
    return payment.amount - payment.refunded_amount


def order_refunded_amount(total: int, collected: int, given_back: int) -> int:
    """What the customer got back of the order's price, from what its payments took and returned.

    A refund that only returns an extra charge (a double charge: collected twice the price) leaves
    the order paid; the customer still bought it. Clamped to 0..total.
    """
    return min(total, max(0, total - (collected - given_back)))


def refund_payment(
    session: Session,
    actor: Actor,
    *,
    payment_id: int,
    amount: int,
    reason: str,
    idempotency_key: str,
    router: PaymentRouter | None = None,
) -> Refund:
    """Refund all or part of a payment through its gateway; idempotent per key.

    Commits the session (twice: before and after the gateway call). Raises ValidationFailed when the
    gateway refuses (nothing refunded) and returns a REQUESTED refund when the answer was lost or
    the same key is in flight; the reconciliation job settles it (lookup first, then the same key).
    """
    require_role(actor, *REFUND_ROLES)
    amount = check_amount(amount, "환불 금액")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("환불 사유를 입력하세요")
    if len(reason) > 500:
        raise ValidationFailed("환불 사유는 500자 이내로 입력하세요")
    key = (idempotency_key or "").strip()
    if not key or len(key) > 120:
        raise ValidationFailed("환불 요청 키가 올바르지 않습니다 (1~120자)")

    existing = session.exec(select(Refund).where(Refund.idempotency_key == key)).first()
    if existing is not None:
        if existing.payment_id != payment_id or existing.amount != amount:
            raise ValidationFailed("같은 요청 키로 다른 환불을 요청했습니다")
        return existing  # done, failed, or in flight (a REQUESTED one is settled by reconciliation)
    else:
        try:
            refund = _reserve_refund(session, actor, payment_id, amount, reason, key)
            session.commit()
        except IntegrityError:  # the same key was reserved by a concurrent click: use that refund
            session.rollback()
            return session.exec(select(Refund).where(Refund.idempotency_key == key)).one()
    return _send_refund(session, actor, refund, _router_for(session, router))


def refund_tax_free_amount(
    total: int, tax_free_total: int, refunded_before: int, tax_free_before: int, amount: int
) -> int:
    """The tax-free part of a refund of `amount` (KakaoPay's cancel_tax_free_amount).

    Computed from what was refunded before this refund, never from this refund alone: after
    refunds adding up to R of a `total` with `tax_free_total` tax-free, the tax-free refunded is
    floor(R * tax_free_total / total). So the parts of any split add up to the tax-free total (the
    last refund takes the rest because R == total gives exactly tax_free_total) and no refund's
    rounding is lost: 30,000원 with 1,001원 tax-free as 15,000 + 15,000 gives 500 then 501, as
    10,000 x 3 gives 333, 334, 334. Never below 0 nor above the tax-free still refundable.
    """
    due = (refunded_before + amount) * tax_free_total // total - tax_free_before
    return max(0, min(due, tax_free_total - tax_free_before))


def _reserve_refund(
    session: Session, actor: Actor, payment_id: int, amount: int, reason: str, key: str
) -> Refund:
    payment = _lock_payment(session, payment_id)
    if not payment.gateway_tid:  # imported from a CSV: no gateway transaction to cancel here
        raise ValidationFailed(
            "결제 대행사 거래번호가 없는 결제(주문 파일에서 가져온 결제)는 여기서 환불할 수 없습니다: "
            "결제한 곳(쇼핑몰 관리자 화면 등)에서 환불해 주세요"
        )
    if payment.status not in REFUNDABLE_PAYMENT_STATUSES:
        label = PAYMENT_STATUS_LABELS[payment.status]
        raise ValidationFailed(f"환불할 수 없는 결제 상태입니다 ({label})")
    # What was refunded or is being refunded before this one (a FAILED refund gave its money back).
    refunded_before, tax_free_before = session.exec(
        select(
            func.coalesce(func.sum(Refund.amount), 0), func.coalesce(func.sum(Refund.tax_free_amount), 0)
        ).where(Refund.payment_id == payment_id, Refund.status != RefundStatus.FAILED)
    ).one()
    result = session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.refunded_amount + amount <= Payment.amount)  # type: ignore[arg-type]
        .values(refunded_amount=Payment.refunded_amount + amount)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"환불 가능 금액({format_krw(refundable_amount(payment))})보다 많이 환불할 수 없습니다"
        )
    tax_free = refund_tax_free_amount(
        payment.amount, payment.tax_free_amount, int(refunded_before), int(tax_free_before), amount
    )
    refund = Refund(
        payment_id=payment_id,
        order_id=payment.order_id,
        amount=amount,
        tax_free_amount=tax_free,
        reason=reason,
        status=RefundStatus.REQUESTED,
        idempotency_key=key,
        requested_by=actor.id,
    )
    session.add(refund)
    session.flush()
    audit.record(
        session,
        actor,
        "refund.request",
        "refund",
        refund.id,
        payment_id=payment_id,
        amount=amount,
        reason=reason,
    )
    return refund


def _send_refund(
    session: Session, actor: Actor, refund: Refund, router: PaymentRouter, *, look_first: bool = False
) -> Refund:
    """Send a reserved refund's cancel, once; an answer that is not definite makes it UNKNOWN.

    `look_first` (a re-send, or settling an UNKNOWN one): KakaoPay has no idempotency key, so the
    gateway's cancelled total is compared with ours before anything is sent again (issue 13 item 2:
    6,000원 refunded at the gateway while 3,000원 was recorded): grown by this refund -> done;
    unchanged -> sent again (same key; Toss and the sandbox dedupe on it); anything else -> UNKNOWN
    with both totals, for a person.
    """
    payment = session.get(Payment, refund.payment_id)
    assert payment is not None and payment.gateway_tid
    canceled_before = int(
        session.exec(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.payment_id == payment.id, Refund.status == RefundStatus.SUCCEEDED
            )
        ).one()
    )
    gateway, tid, cid = payment.gateway, payment.gateway_tid, payment_cid(session, payment)
    session.commit()  # no transaction (and so no lock) is held across the gateway call
    log: list[dict[str, Any]] = []
    if look_first:
        try:
            found = router.lookup(gateway, log, tid=tid, cid=cid)
        except PaymentError as exc:
            if refund.status == RefundStatus.UNKNOWN:
                _record_refund_unknown(session, actor, refund, log, f"조회 실패: {exc}")
            return refund  # still cannot tell: try again on the next tick
        verdict = cancel_verdict(found, canceled_before, refund.amount)
        if verdict == "done":
            return _record_refund_success(session, actor, refund, log, {"confirmed_by": "lookup"})
        if verdict == "unclear":
            return _record_refund_unknown(
                session,
                actor,
                refund,
                log,
                f"결제 대행사의 취소 합계 {format_krw(found.canceled_amount)}이 기록(완료 "
                f"{format_krw(canceled_before)} + 이 환불 {format_krw(refund.amount)})과 다릅니다",
            )
    refund.sent_at = clock.now()
    session.add(refund)
    session.commit()
    try:
        request = CancelRequest(
            tid=tid,
            cancel_amount=refund.amount,
            cancel_tax_free_amount=refund.tax_free_amount,
            idempotency_key=f"refund:{refund.idempotency_key}",
            reason=refund.reason,
            cid=cid,
        )
        answer = router.cancel(gateway, log, request, canceled_before=canceled_before)
    except PaymentOutcomeUnknown as exc:
        return _record_refund_unknown(session, actor, refund, log, str(exc))
    except PermanentPaymentError as exc:
        _record_refund_failure(session, actor, refund, log, exc)
        raise ValidationFailed(f"결제 대행사가 환불을 거절했습니다: {exc}") from exc
    except PaymentError as exc:  # retriable, still failing: nothing happened, sent again later
        payment = _lock_payment(session, refund.payment_id)
        payment.routing_log = [*payment.routing_log, *log]
        session.add(payment)
        audit.record(session, actor, "refund.pending", "refund", refund.id, error=str(exc))
        session.commit()
        return refund
    return _record_refund_success(session, actor, refund, log, answer.raw)


def _record_refund_unknown(
    session: Session, actor: Actor, refund: Refund, log: list[dict[str, Any]], reason: str
) -> Refund:
    """The cancel may have taken: UNKNOWN with its reason (shown on 주문 and 문의), the money stays reserved."""
    payment = _lock_payment(session, refund.payment_id)
    session.refresh(refund)
    if refund.status not in (RefundStatus.REQUESTED, RefundStatus.UNKNOWN):
        return refund  # settled meanwhile
    payment.routing_log = [*payment.routing_log, *log]
    refund.status = RefundStatus.UNKNOWN
    refund.unknown_reason = reason[:500]
    session.add_all([payment, refund])
    audit.record(session, actor, "refund.unknown", "refund", refund.id, reason=reason[:500])
    session.commit()
    return refund


def _record_refund_failure(
    session: Session, actor: Actor, refund: Refund, log: list[dict[str, Any]], exc: Exception
) -> None:
    payment = _lock_payment(session, refund.payment_id)
    session.execute(
        update(Payment)
        .where(Payment.id == payment.id)  # type: ignore[arg-type]
        .values(refunded_amount=Payment.refunded_amount - refund.amount)
    )
    session.refresh(payment)
    payment.routing_log = [*payment.routing_log, *log]
    refund.status = RefundStatus.FAILED
    refund.completed_at = clock.now()
    refund.gateway_response = {"error": str(exc), "code": getattr(exc, "code", None)}
    session.add_all([payment, refund])
    audit.record(session, actor, "refund.failed", "refund", refund.id, error=str(exc))
    session.commit()


def _record_refund_success(
    session: Session, actor: Actor, refund: Refund, log: list[dict[str, Any]], raw: dict[str, Any]
) -> Refund:
    payment = _lock_payment(session, refund.payment_id)
    session.refresh(refund)
    if refund.status == RefundStatus.SUCCEEDED:  # settled meanwhile (reconciliation); nothing twice
        return refund
    now = clock.now()
    refund.status = RefundStatus.SUCCEEDED
    refund.unknown_reason = None
    refund.completed_at = now
    refund.gateway_response = {k: v for k, v in (raw or {}).items() if isinstance(v, (str, int, float))}
    payment.routing_log = [*payment.routing_log, *log]
    succeeded = (
        int(
            session.exec(
                select(func.coalesce(func.sum(Refund.amount), 0)).where(
                    Refund.payment_id == payment.id,
                    Refund.status == RefundStatus.SUCCEEDED,
                    Refund.id != refund.id,
                )
            ).one()
        )
        + refund.amount
    )
    payment.status = (
        PaymentStatus.REFUNDED if succeeded >= payment.amount else PaymentStatus.PARTIALLY_REFUNDED
    )
    session.add_all([payment, refund])
    order = session.get(Order, payment.order_id) if payment.order_id else None
    if order is not None:
        session.flush()
        collected, given_back = session.execute(
            select(
                func.coalesce(func.sum(Payment.amount), 0),
                select(func.coalesce(func.sum(Refund.amount), 0))
                .join(Payment, Payment.id == Refund.payment_id)  # type: ignore[arg-type]
                .where(Payment.order_id == order.id, Refund.status == RefundStatus.SUCCEEDED)
                .scalar_subquery(),
            ).where(
                Payment.order_id == order.id,
                Payment.status.in_(  # type: ignore[attr-defined]
                    [PaymentStatus.APPROVED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED]
                ),
            )
        ).one()
        order.refunded_amount = order_refunded_amount(order.total_amount, int(collected), int(given_back))
        order.status = (
            OrderStatus.PAID
            if order.refunded_amount == 0
            else OrderStatus.REFUNDED
            if order.refunded_amount >= order.total_amount
            else OrderStatus.PARTIALLY_REFUNDED
        )
        session.add(order)
        customer_summary.refresh(session, [order.customer_id])
    customer = session.get(Customer, payment.customer_id)
    order_number = order.order_number if order else "-"
    ensure_template(session, "refund_completed")
    outbox.enqueue(
        session,
        customer_id=payment.customer_id,
        template_key="refund_completed",
        variables={
            "고객명": customer.name if customer else "고객",
            "주문번호": order_number,
            "환불금액": format_krw(refund.amount),
        },
        idempotency_key=f"refund:{refund.id}",
    )
    audit.record(
        session,
        actor,
        "refund.succeeded",
        "refund",
        refund.id,
        payment_id=payment.id,
        amount=refund.amount,
        order_id=payment.order_id,
    )
    session.commit()
    return refund


def settle_pending_refund(
    session: Session, refund_id: int, router: PaymentRouter | None = None, actor: Actor | None = None
) -> Refund:
    """Settle a REQUESTED or UNKNOWN refund: look it up first, send again (same key) only if it did
    not take (the worker's reconciliation and a CS person's lookup do this)."""
    from core.accounts.actor import SYSTEM_ACTOR

    refund = session.get(Refund, refund_id)
    if refund is None:
        raise NotFound(f"없는 환불입니다 (#{refund_id})")
    if refund.status not in (RefundStatus.REQUESTED, RefundStatus.UNKNOWN):
        return refund
    return _send_refund(session, actor or SYSTEM_ACTOR, refund, _router_for(session, router), look_first=True)


def settle_unknown_refunds(
    session: Session, payment_id: int, router: PaymentRouter | None = None, actor: Actor | None = None
) -> list[Refund]:
    """Every REQUESTED or UNKNOWN refund of a payment, settled by lookup (oldest first)."""
    ids = session.exec(
        select(Refund.id)
        .where(
            Refund.payment_id == payment_id,
            Refund.status.in_((RefundStatus.REQUESTED, RefundStatus.UNKNOWN)),  # type: ignore[attr-defined]
        )
        .order_by(Refund.id)  # type: ignore[arg-type]
    ).all()
    session.commit()
    return [settle_pending_refund(session, refund_id, router=router, actor=actor) for refund_id in ids]
