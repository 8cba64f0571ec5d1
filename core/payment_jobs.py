"""Worker jobs for payments: payment-link reminders and expiry, reconciliation of unknown outcomes.

Each is `job(engine, now) -> counts`, idempotent: a reminder is one outbox row per link (its key),
expiry is a conditional status change, and reconciliation only records what the gateway's lookup
says (it never approves, charges or cancels anything new, except re-sending a REQUESTED refund with
its own idempotency key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from core import audit, clock
from core.auth import SYSTEM_ACTOR
from core.db import session_scope
from core.messaging import outbox
from core.models import Customer, PaymentLink, PaymentLinkStatus, PaymentStatus, Refund, RefundStatus
from core.models.orders import Payment
from core.money import format_krw
from core.payment_links import (
    GATEWAY_FUNNEL,
    OPEN_STATUSES,
    complete_link_payment,
    link_settings,
    link_url,
)
from core.payment_templates import ensure_template
from core.payments.base import PaymentError
from core.payments.router import NOT_PAID_STATUSES, PAID_STATUSES, PaymentRouter

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
BATCH = 200


def _router(engine: Engine) -> PaymentRouter:
    from core.payments.registry import get_router

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
    """Settle UNKNOWN payments by looking them up, and re-send REQUESTED refunds with their key."""
    counts = {"paid": 0, "failed": 0, "still_unknown": 0, "refunds_settled": 0}
    router = _router(engine)
    with Session(engine, expire_on_commit=False) as session:
        unknown = session.exec(
            select(Payment)
            .where(Payment.status == PaymentStatus.UNKNOWN, Payment.gateway_tid.is_not(None))  # type: ignore[union-attr]
            .limit(BATCH)
        ).all()
        session.commit()
    for payment in unknown:
        log: list[dict[str, Any]] = []
        try:
            found = router.lookup(payment.gateway, log, tid=payment.gateway_tid or "")
        except PaymentError:
            counts["still_unknown"] += 1
            continue
        with Session(engine, expire_on_commit=False) as session:
            current = session.get(Payment, payment.id)
            if current is None or current.status != PaymentStatus.UNKNOWN:
                continue
            current.routing_log = [*current.routing_log, *log]
            if found.status in PAID_STATUSES:
                link = session.exec(
                    select(PaymentLink).where(PaymentLink.gateway_tid == current.gateway_tid)
                ).first()
                method = (found.raw or {}).get("payment_method_type")
                if link is not None:
                    complete_link_payment(
                        session, link, current, method=method, approved_at=found.approved_at
                    )
                else:
                    current.status = PaymentStatus.APPROVED
                    current.approved_at = found.approved_at or now
                    session.add(current)
                audit.record(
                    session, SYSTEM_ACTOR, "payment.reconciled", "payment", current.id, status="approved"
                )
                session.commit()
                counts["paid"] += 1
            elif found.status in NOT_PAID_STATUSES:
                current.status = PaymentStatus.FAILED
                current.failure_message = f"조회 결과 {found.status}"
                session.add(current)
                audit.record(
                    session, SYSTEM_ACTOR, "payment.reconciled", "payment", current.id, status="failed"
                )
                session.commit()
                counts["failed"] += 1
            else:
                session.commit()
                counts["still_unknown"] += 1
    counts["refunds_settled"] = _settle_refunds(engine, now, router)
    counts["links_followed"] = _follow_hosted_links(engine, router)
    return counts


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
    from core.orders import settle_pending_refund

    settled = 0
    with Session(engine, expire_on_commit=False) as session:
        ids = session.exec(
            select(Refund.id)
            .where(Refund.status == RefundStatus.REQUESTED, Refund.created_at <= now - PENDING_REFUND_GRACE)
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
