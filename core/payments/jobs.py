"""Worker jobs for payments: payment-link reminders and expiry, reconciliation of unknown outcomes.

Each is `job(engine, now) -> counts`, idempotent: a reminder is one outbox row per link (its key),
expiry is a conditional status change, and reconciliation only records what the gateway's lookup
says (it never approves, charges or cancels anything new, except re-sending a REQUESTED refund with
its own idempotency key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, update
from sqlmodel import Session, select

from core import clock
from core.accounts import audit
from core.accounts.actor import SYSTEM_ACTOR, Actor, require_role
from core.db import session_scope
from core.errors import NotFound, ValidationFailed
from core.messaging import outbox
from core.models import (
    Customer,
    PaymentLink,
    PaymentLinkStatus,
    PaymentStatus,
    Refund,
    RefundStatus,
    Role,
)
from core.models.orders import Payment
from core.money import format_krw
from core.payments.gateways.base import PaymentError
from core.payments.gateways.router import NOT_PAID_STATUSES, PAID_STATUSES, PaymentRouter
from core.payments.link_approval import ALREADY_PROCESSED, complete_link_payment
from core.payments.links import GATEWAY_FUNNEL, OPEN_STATUSES, link_settings, link_url
from core.payments.templates import ensure_template

REMINDABLE = (
    PaymentLinkStatus.CREATED,
    PaymentLinkStatus.OPENED,
    PaymentLinkStatus.METHOD_SELECTED,
    PaymentLinkStatus.QUIT,
)
# A readied KakaoPay link whose customer is on KakaoPay's page: its status is read back by tid.
FOLLOWED_LINK_STATUSES = (PaymentLinkStatus.OPENED, PaymentLinkStatus.METHOD_SELECTED)
FOLLOWED_EVENTS = {
    PaymentLinkStatus.METHOD_SELECTED: "method_selected",
    PaymentLinkStatus.QUIT: "cancelled",
    PaymentLinkStatus.FAILED: "failed",
}
PENDING_REFUND_GRACE = timedelta(minutes=1)
# An approve sent this long ago has surely finished at the gateway: a payment page still open then
# means it did not take.
SETTLE_GRACE = timedelta(minutes=2)
OPEN_GATEWAY_STATUSES = ("READY", "SEND_TMS", "OPEN_PAYMENT", "SELECT_METHOD", "ARS_WAITING", "AUTH_PASSWORD")
BATCH = 200


def _router(engine: Engine) -> PaymentRouter:
    from core.payments.gateways.registry import get_router

    return get_router(engine=engine)


def payment_link_reminders(engine: Engine, now: datetime) -> dict[str, int]:
    """One reminder per unpaid link, after the configured hours, while it has not expired."""
    reminded = 0
    with session_scope(engine) as session:
        hours = link_settings(session)["reminder_after_hours"]
        links = session.exec(
            select(PaymentLink)
            .where(
                PaymentLink.status.in_(REMINDABLE),  # type: ignore[attr-defined]
                PaymentLink.reminder_sent_at.is_(None),  # type: ignore[union-attr]
                PaymentLink.customer_id.is_not(None),  # type: ignore[union-attr]
                PaymentLink.created_at <= now - timedelta(hours=hours),
            )
            .limit(BATCH)
        ).all()
        for link in links:
            if link.expires_at is not None and link.expires_at <= now:
                continue
            claimed = session.execute(
                update(PaymentLink)
                .where(PaymentLink.id == link.id, PaymentLink.reminder_sent_at.is_(None))  # type: ignore[arg-type,union-attr]
                .values(reminder_sent_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            customer = session.get(Customer, link.customer_id)
            ensure_template(session, "payment_link_reminder")
            outbox.enqueue(
                session,
                customer_id=link.customer_id,
                template_key="payment_link_reminder",
                variables={
                    "고객명": customer.name if customer else "고객",
                    "상품명": link.item_name,
                    "결제금액": format_krw(link.amount),
                    "결제링크": link_url(link),
                    "만료일시": clock.format_kst(link.expires_at),
                },
                idempotency_key=f"payment_link_reminder:{link.id}",
                send_after=now,
            )
            reminded += 1
    return {"reminded": reminded}


def payment_link_expiry(engine: Engine, now: datetime) -> dict[str, int]:
    with session_scope(engine) as session:
        result = session.execute(
            update(PaymentLink)
            .where(PaymentLink.status.in_(OPEN_STATUSES), PaymentLink.expires_at <= now)  # type: ignore[attr-defined,operator]
            .values(status=PaymentLinkStatus.EXPIRED)
        )
        return {"expired": int(result.rowcount or 0)}  # type: ignore[attr-defined]


def reconcile_payments(engine: Engine, now: datetime) -> dict[str, int]:
    """Settle by lookup every UNKNOWN payment and every one whose last answer was an "already
    processed" refusal; re-send REQUESTED refunds with their key and settle UNKNOWN ones by lookup."""
    counts = {"paid": 0, "failed": 0, "still_unknown": 0, "refunds_settled": 0}
    router = _router(engine)
    with Session(engine, expire_on_commit=False) as session:
        ids = session.exec(
            select(Payment.id)
            .where(
                Payment.gateway_tid.is_not(None),  # type: ignore[union-attr]
                or_(
                    Payment.status == PaymentStatus.UNKNOWN,
                    and_(
                        Payment.failure_code == ALREADY_PROCESSED,
                        Payment.status.in_((PaymentStatus.READY, PaymentStatus.FAILED)),  # type: ignore[attr-defined]
                    ),
                ),
            )
            .order_by(Payment.id)  # type: ignore[arg-type]
            .limit(BATCH)
        ).all()
        session.commit()
        for payment_id in ids:
            outcome = settle_payment(session, payment_id, now, router=router)
            counts[outcome if outcome in counts else "still_unknown"] += 1
    counts["refunds_settled"] = _settle_refunds(engine, now, router)
    counts["links_followed"] = _follow_hosted_links(engine, router)
    return counts


def settle_payment(
    session: Session, payment_id: int, now: datetime, *, router: PaymentRouter, actor: Actor = SYSTEM_ACTOR
) -> str:
    """Look one payment up and record what the gateway says: "paid", "failed" or "still_unknown".

    Used by the reconciliation and by a CS person's "지금 조회" (core.payments.jobs.lookup_payment_now).
    Only the gateway's word moves a payment: paid -> approved (a link's order is recorded, once);
    a terminal failure, or a payment page still open well after the approve was sent (SETTLE_GRACE)
    -> not paid (a link's payment goes back to READY so the customer can pay again). A lookup that
    fails leaves it as it is, its reason kept for staff.
    """
    from core.payments.refunds import payment_cid

    payment = session.get(Payment, payment_id)
    if payment is None or not payment.gateway_tid:
        return "still_unknown"
    gateway, tid, cid = payment.gateway, payment.gateway_tid, payment_cid(session, payment)
    last_attempt = _last_attempt_at(payment)
    session.commit()  # no transaction is held across the gateway call
    log: list[dict[str, Any]] = []
    try:
        found = router.lookup(gateway, log, tid=tid, cid=cid)
    except PaymentError as exc:
        current = session.get(Payment, payment_id)
        if current is not None and current.status == PaymentStatus.UNKNOWN:
            current.failure_message = f"조회 실패: {exc}"[:500]
            session.add(current)
        session.commit()
        return "still_unknown"
    current = session.exec(
        select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True)
    ).one()
    if current.status not in (PaymentStatus.UNKNOWN, PaymentStatus.READY, PaymentStatus.FAILED):
        session.commit()
        return "still_unknown"  # settled meanwhile
    current.routing_log = [*current.routing_log, *log]
    link = session.exec(select(PaymentLink).where(PaymentLink.gateway_tid == tid)).first()
    if found.status in PAID_STATUSES:
        method = (found.raw or {}).get("payment_method_type")
        if link is not None:
            complete_link_payment(session, link, current, method=method, approved_at=found.approved_at)
        else:
            current.status = PaymentStatus.APPROVED
            current.approved_at = found.approved_at or now
            current.failure_code = current.failure_message = None
            session.add(current)
        audit.record(session, actor, "payment.reconciled", "payment", current.id, status="approved")
        session.commit()
        return "paid"
    settled_unpaid = found.status in NOT_PAID_STATUSES or (
        found.status in OPEN_GATEWAY_STATUSES and last_attempt is not None and now - last_attempt >= SETTLE_GRACE
    )
    if not settled_unpaid:
        session.commit()
        return "still_unknown"
    if current.status == PaymentStatus.UNKNOWN:
        current.status = PaymentStatus.READY if link is not None else PaymentStatus.FAILED
        if link is not None and link.status not in (PaymentLinkStatus.PAID, PaymentLinkStatus.EXPIRED):
            link.status = PaymentLinkStatus.FAILED
            session.add(link)
    current.failure_code = "NOT_PAID"  # looked up: no longer an "already processed" to look up again
    current.failure_message = f"조회 결과 결제되지 않았습니다 ({found.status})"
    session.add(current)
    audit.record(session, actor, "payment.reconciled", "payment", current.id, status="not_paid")
    session.commit()
    return "failed"


def lookup_payment_now(session: Session, actor: Actor, payment_id: int, router: PaymentRouter | None = None) -> str:
    """A CS person asks the gateway now about a payment whose outcome is unknown (주문 화면의 버튼)."""
    require_role(actor, Role.OWNER, Role.CS)
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(f"없는 결제입니다 (#{payment_id})")
    if not payment.gateway_tid:
        raise ValidationFailed("결제 대행사에서 조회할 수 없는 결제입니다 (결제 번호 없음)")
    audit.record(session, actor, "payment.lookup_requested", "payment", payment.id, status=payment.status)
    session.commit()
    router = router or _router(session.get_bind())  # type: ignore[arg-type]
    outcome = settle_payment(session, payment_id, clock.now(), router=router, actor=actor)
    from core.payments.refunds import settle_unknown_refunds

    settle_unknown_refunds(session, payment_id, router=router, actor=actor)
    return outcome


def _last_attempt_at(payment: Payment) -> datetime | None:
    """When we last sent the payment's approve (from its routing log)."""
    for entry in reversed(payment.routing_log or []):
        if entry.get("op") == "approve" and entry.get("at"):
            try:
                return clock.parse_instant(entry["at"])
            except ValueError:
                return None
    return None


def _follow_hosted_links(engine: Engine, router: PaymentRouter) -> int:
    """KakaoPay's own page is where a customer picks a method, or gives up and closes the window
    (no return to cancel_url): read that back by tid so the funnel shows it for real links too."""
    moved = 0
    with Session(engine, expire_on_commit=False) as session:
        links = session.exec(
            select(PaymentLink)
            .where(
                PaymentLink.gateway != "sandbox",
                PaymentLink.gateway_tid.is_not(None),  # type: ignore[union-attr]
                PaymentLink.status.in_(FOLLOWED_LINK_STATUSES),  # type: ignore[attr-defined]
            )
            .order_by(PaymentLink.id.desc())  # type: ignore[union-attr]
            .limit(BATCH)
        ).all()
        session.commit()
    for link in links:
        try:
            found = router.lookup(link.gateway or "", [], tid=link.gateway_tid or "")
        except PaymentError:
            continue
        status = GATEWAY_FUNNEL.get(found.status)
        if status not in (
            PaymentLinkStatus.METHOD_SELECTED,
            PaymentLinkStatus.QUIT,
            PaymentLinkStatus.FAILED,
        ):
            continue
        with Session(engine) as session:
            changed = session.execute(
                update(PaymentLink)
                .where(
                    PaymentLink.id == link.id,  # type: ignore[arg-type]
                    PaymentLink.gateway_tid == link.gateway_tid,
                    PaymentLink.status.in_(FOLLOWED_LINK_STATUSES),  # type: ignore[attr-defined]
                    PaymentLink.status != status,
                )
                .values(status=status)
            )
            if changed.rowcount == 1:  # type: ignore[attr-defined]
                audit.record(
                    session,
                    SYSTEM_ACTOR,
                    f"payment_link.{FOLLOWED_EVENTS[status]}",
                    "payment_link",
                    link.id,
                    tid=link.gateway_tid,
                )
                moved += 1
            session.commit()
    return moved


def _settle_refunds(engine: Engine, now: datetime, router: PaymentRouter) -> int:
    from core.payments.refunds import settle_pending_refund

    settled = 0
    with Session(engine, expire_on_commit=False) as session:
        # The last send has surely finished at the gateway by then (a KakaoPay cancel still in flight
        # would not show in the lookup yet): REQUESTED (not sent, or nothing happened) and UNKNOWN.
        ids = session.exec(
            select(Refund.id)
            .where(
                Refund.status.in_((RefundStatus.REQUESTED, RefundStatus.UNKNOWN)),  # type: ignore[attr-defined]
                func.coalesce(Refund.sent_at, Refund.created_at) <= now - PENDING_REFUND_GRACE,
            )
            .order_by(Refund.id)  # type: ignore[arg-type]
            .limit(BATCH)
        ).all()
        session.commit()
        for refund_id in ids:
            try:
                refund = settle_pending_refund(session, refund_id, router=router)
            except Exception:  # noqa: BLE001 - one bad refund must not stop the others; it stays REQUESTED
                session.rollback()
                continue
            settled += refund.status == RefundStatus.SUCCEEDED
    return settled
