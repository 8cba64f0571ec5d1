"""Worker jobs of the CS desk: the SLA watch and the double-charge sentinel.

Both are `def job(engine, now) -> dict[str, int]`, idempotent across ticks, restarts and workers:
notifications carry a unique dedupe key (inserted with ON CONFLICT DO NOTHING), the sentinel's
inquiry has a dedupe key and its refund an idempotency key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, case, cast, func, literal, not_, null, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core import clock, inquiries, settings_store, sla_config
from core.auth import SYSTEM_ACTOR
from core.db import session_scope
from core.messaging.outbox import enqueue_many
from core.models import (
    Inquiry,
    InquiryStatus,
    InquiryType,
    OrderItem,
    Payment,
    PaymentStatus,
    StaffNotification,
)
from core.models.inquiries import INQUIRY_TYPE_LABELS
from core.models.types import UtcDateTime
from core.money import format_krw

# --------------------------------------------------------------------------- SLA watch

TARGET_LABELS = {"first_response": "첫 응답", "resolution": "해결"}
THRESHOLD_VERBS = {"at_risk": "기한 임박", "breached": "기한 초과"}
SLA_ALERT_TEMPLATE = "sla_alert"


def sla_watch(engine: Engine, now: datetime) -> dict[str, int]:
    """Notify when an open inquiry crosses at-risk or breaches its nearest target, once each.

    Set-based, one transaction: one INSERT .. SELECT of the notifications (ON CONFLICT DO NOTHING on
    their dedupe key, so a threshold is notified exactly once even when two workers tick at once),
    one UPDATE that moves each due row's `sla_next_alert_at` on, and, when the owner configured it
    on 설정 (sla_config.AlertMessage), one bulk enqueue of a message per notification actually
    inserted. Looks only at rows whose cached `sla_next_alert_at` is due (ix_inquiry_status_alert).
    Outside business hours (for business-calendar policies) nothing is sent: the row stays due
    and is notified at the first tick after opening.
    """
    counts = {"due": 0, "at_risk": 0, "breached": 0, "deferred": 0, "messages": 0}
    with session_scope(engine) as session:
        config = sla_config.load(session)
        open_types, closed_types = [], []
        for inquiry_type in [t.value for t in InquiryType]:
            calendar = config.calendar_for(inquiry_type)
            (open_types if calendar.always_open or calendar.is_open_at(now) else closed_types).append(
                inquiry_type
            )
        # An inquiry whose type is not a known one follows the "other" policy (SlaConfig.policy).
        other_open = InquiryType.OTHER.value in open_types
        table = Inquiry.__table__  # type: ignore[attr-defined]
        known = [t.value for t in InquiryType]
        type_is_open = or_(
            table.c.type.in_(open_types or [""]),
            and_(table.c.type.not_in(known), literal(other_open)),
        )
        due = and_(
            table.c.status == InquiryStatus.OPEN.value,
            table.c.sla_next_alert_at <= _bind_utc(now),
        )
        if closed_types or not other_open:
            counts["deferred"] = int(
                session.execute(core_select(func.count()).select_from(table).where(due, not_(type_is_open))).scalar_one()
            )
        inserted = session.execute(_notification_insert(session, table, and_(due, type_is_open), now)).all()
        for row in inserted:
            counts[row.kind.removeprefix("sla_")] += 1
        counts["due"] = counts["deferred"] + _advance_alerts(session, table, and_(due, type_is_open), now)
        alert = sla_config.alert_message(session)
        wanted = [row for row in inserted if alert.wants(row.kind.removeprefix("sla_"))]
        if wanted:
            counts["messages"] = enqueue_many(
                session,
                [
                    {
                        "customer_id": None,
                        "to_phone": alert.phone,
                        "template_key": SLA_ALERT_TEMPLATE,
                        "text": row.text,
                        "variables": {"내용": row.text},
                        "idempotency_key": f"sla_alert:{row.dedupe_key}",
                    }
                    for row in wanted
                ],
                now=now,
            )
    return counts


def _bind_utc(instant: datetime) -> Any:
    """`now` as the UtcDateTime columns store it, for comparisons in Core expressions."""
    return literal(clock.as_utc(instant), type_=UtcDateTime())


def _threshold(table: Any, now: Any) -> Any:
    """'breached' once past the deadline (an answer at the deadline is on time), 'at_risk' from the
    at-risk instant, else NULL (the row was re-timed under us: look again at its at-risk instant)."""
    return case(
        (table.c.sla_due_at < now, literal("breached")),
        (table.c.sla_at_risk_at <= now, literal("at_risk")),
        else_=null(),
    )


def _kst_text(session: Session, column: Any) -> Any:
    """SQL for clock.format_kst(column): 'YYYY-MM-DD HH:MM' in KST, '-' when NULL."""
    if session.get_bind().dialect.name == "postgresql":
        formatted = func.to_char(func.timezone("Asia/Seoul", column), "YYYY-MM-DD HH24:MI")
    else:  # SQLite keeps naive UTC text
        formatted = func.strftime("%Y-%m-%d %H:%M", column, "+9 hours")
    return func.coalesce(formatted, literal("-"))


def _notification_insert(session: Session, table: Any, where: Any, now: datetime) -> Any:
    """INSERT .. SELECT .. ON CONFLICT (dedupe_key) DO NOTHING RETURNING the rows really inserted."""
    now_sql = _bind_utc(now)
    threshold = _threshold(table, now_sql)
    target = case((table.c.first_response_at.is_(None), literal("first_response")), else_=literal("resolution"))
    label = case(
        *((table.c.type == key.value, literal(text)) for key, text in INQUIRY_TYPE_LABELS.items()),
        else_=table.c.type,
    )
    target_label = case(*((target == key, literal(text)) for key, text in TARGET_LABELS.items()))
    verb = case(*((threshold == key, literal(text)) for key, text in THRESHOLD_VERBS.items()))
    message = (
        literal("[") + label + literal("] ") + cast(table.c.id, String) + literal("번 ") + target_label
        + literal(" ") + verb + literal(" (기한 ") + _kst_text(session, table.c.sla_due_at)
        + literal(") · ") + table.c.subject
    )
    rows = (
        core_select(
            table.c.assignee_id,
            literal("sla_") + threshold,
            func.substr(message, 1, 500),
            table.c.id,
            literal("sla:") + cast(table.c.id, String) + literal(":") + target + literal(":") + threshold,
            now_sql,
        )
        .where(where, threshold.is_not(None))
        .order_by(table.c.id)
    )
    notifications = StaffNotification.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return (
        insert(notifications)
        .from_select(["staff_id", "kind", "text", "inquiry_id", "dedupe_key", "created_at"], rows)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(notifications.c.kind, notifications.c.text, notifications.c.dedupe_key)
    )


def _advance_alerts(session: Session, table: Any, where: Any, now: datetime) -> int:
    """Move each due row's next alert on: breached -> none, at risk -> the deadline, else at risk."""
    now_sql = _bind_utc(now)
    following = case(
        (table.c.sla_due_at < now_sql, null()),
        (table.c.sla_at_risk_at <= now_sql, table.c.sla_due_at),
        else_=table.c.sla_at_risk_at,
    )
    result = session.execute(
        update(table).where(where).values(sla_next_alert_at=following).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


# --------------------------------------------------------------------------- double-charge sentinel

SUCCESSFUL = (PaymentStatus.APPROVED.value, PaymentStatus.PARTIALLY_REFUNDED.value)
DEFAULT_WINDOW_MINUTES = 10
LOOKBACK = timedelta(hours=48)


@dataclass(frozen=True)
class PaymentFact:
    """What the sentinel needs to know of one successful payment (pure input for find_duplicates)."""

    id: int
    customer_id: int
    order_id: int | None
    amount: int
    approved_at: datetime
    products: tuple[str, ...]  # product ids (or names when no id) of the order, sorted


@dataclass(frozen=True)
class DoubleCharge:
    original: PaymentFact
    duplicate: PaymentFact
    rule: str  # same_order | same_customer_amount_product


def find_duplicates(payments: Sequence[PaymentFact], window: timedelta) -> list[DoubleCharge]:
    """Pairs (earliest, later) of two successful payments that are one purchase charged twice.

    Rule 1: two payments for the same order. Rule 2: the same customer, amount and products with
    the later one approved within `window` of the earlier. The earliest payment is always kept.
    """
    ordered = sorted(payments, key=lambda p: (p.approved_at, p.id))
    found: dict[int, DoubleCharge] = {}
    by_order: dict[int, PaymentFact] = {}
    by_purchase: dict[tuple[int, int, tuple[str, ...]], PaymentFact] = {}
    for payment in ordered:
        if payment.order_id is not None:
            first = by_order.get(payment.order_id)
            if first is not None:
                found[payment.id] = DoubleCharge(first, payment, "same_order")
                continue
            by_order[payment.order_id] = payment
        if payment.products:
            key = (payment.customer_id, payment.amount, payment.products)
            first = by_purchase.get(key)
            if first is not None and payment.approved_at - first.approved_at <= window:
                found[payment.id] = DoubleCharge(first, payment, "same_customer_amount_product")
                continue
            by_purchase[key] = payment
    return list(found.values())


def _facts(session: Session, now: datetime) -> list[PaymentFact]:
    rows = session.exec(
        select(Payment.id, Payment.customer_id, Payment.order_id, Payment.amount, Payment.approved_at).where(
            col(Payment.status).in_(SUCCESSFUL),
            col(Payment.approved_at) >= now - LOOKBACK,
            col(Payment.approved_at) <= now,
        )
    ).all()
    order_ids = {r[2] for r in rows if r[2] is not None}
    products: dict[int, list[str]] = defaultdict(list)
    ids = sorted(order_ids)
    for start in range(0, len(ids), 1000):
        for order_id, product_id, name in session.exec(
            select(OrderItem.order_id, OrderItem.product_id, OrderItem.product_name).where(
                col(OrderItem.order_id).in_(ids[start : start + 1000])
            )
        ).all():
            products[order_id].append(f"p{product_id}" if product_id is not None else f"n{name}")
    return [
        PaymentFact(
            r[0],
            r[1],
            r[2],
            r[3],
            clock.as_utc(r[4]),
            tuple(sorted(products.get(r[2], ()))) if r[2] is not None else (),
        )
        for r in rows
    ]


def double_charge_sentinel(
    engine: Engine,
    now: datetime,
    refund_fn: inquiries.RefundFn | None = None,
    window: timedelta | None = None,
) -> dict[str, int]:
    """Open an 이중 결제 inquiry with the evidence, refund the later payment once, tell, resolve.

    Each double charge is handled in two transactions keyed by the later payment: (1) the inquiry
    (dedupe_key double_charge:{payment}); (2) refund (idempotency key double_charge_refund:{payment}),
    reply to the customer (outbox) and resolve. A crash between them is finished by the next tick.
    """
    counts = {"found": 0, "opened": 0, "refunded": 0, "resolved": 0, "failed": 0}
    with session_scope(engine) as session:
        if window is None:
            minutes = settings_store.get(session, "double_charge_window_minutes") or DEFAULT_WINDOW_MINUTES
            window = timedelta(minutes=int(minutes))
        pairs = find_duplicates(_facts(session, now), window)
        keys = [f"double_charge:{pair.duplicate.id}" for pair in pairs]
        resolved = set(
            session.exec(
                select(Inquiry.dedupe_key).where(
                    col(Inquiry.dedupe_key).in_(keys or [""]), Inquiry.status == InquiryStatus.RESOLVED
                )
            ).all()
        )
    for pair in pairs:
        key = f"double_charge:{pair.duplicate.id}"
        if key in resolved:
            continue
        counts["found"] += 1
        try:
            with clock.frozen(now), session_scope(engine) as session:
                opened = _open_inquiry(session, pair, key)
                counts["opened"] += int(opened)
            with clock.frozen(now), session_scope(engine) as session:
                refunded = _refund_and_resolve(session, pair, key, refund_fn)
                counts["refunded"] += int(refunded)
                counts["resolved"] += 1
        except Exception:  # noqa: BLE001 - one bad pair must not stop the others; retried next tick
            counts["failed"] += 1
    return counts


def _open_inquiry(session: Session, pair: DoubleCharge, key: str) -> bool:
    if session.exec(select(Inquiry.id).where(Inquiry.dedupe_key == key)).first() is not None:
        return False
    first, later = pair.original, pair.duplicate
    rule = "같은 주문" if pair.rule == "same_order" else "같은 고객·금액·상품"
    body = (
        f"[자동 감지] 이중 결제 ({rule})\n"
        f"원 결제({first.id}번) {format_krw(first.amount)} {clock.format_kst(first.approved_at, True)}\n"
        f"중복 결제({later.id}번) {format_krw(later.amount)} {clock.format_kst(later.approved_at, True)}"
    )
    inquiries.create_inquiry(
        session,
        SYSTEM_ACTOR,
        customer_id=later.customer_id,
        body=body,
        inquiry_type=InquiryType.DOUBLE_CHARGE,
        subject=f"이중 결제 자동 감지 ({later.id}번 결제)",
        order_id=later.order_id,
        payment_id=later.id,
        source="worker",
        dedupe_key=key,
        evidence={
            "rule": pair.rule,
            "original_payment_id": first.id,
            "duplicate_payment_id": later.id,
            "amount": later.amount,
        },
    )
    return True


def _refund_and_resolve(
    session: Session, pair: DoubleCharge, key: str, refund_fn: inquiries.RefundFn | None
) -> bool:
    inquiry = session.exec(select(Inquiry).where(Inquiry.dedupe_key == key)).one()
    if inquiry.status == InquiryStatus.RESOLVED:
        return False
    statement = select(Payment).where(Payment.id == pair.duplicate.id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    payment = session.exec(statement).one()
    refundable = payment.amount - payment.refunded_amount
    refunded = False
    if refundable > 0:
        inquiries.refund(
            session,
            SYSTEM_ACTOR,
            inquiry.id,
            payment_id=payment.id,
            amount=refundable,
            reason="이중 결제 자동 환불",
            idempotency_key=f"double_charge_refund:{payment.id}",
            refund_fn=refund_fn,
        )
        refunded = True
    inquiries.reply(
        session,
        SYSTEM_ACTOR,
        inquiry.id,
        f"고객님, 같은 결제가 두 번 승인된 것을 확인하여 나중 결제 {format_krw(payment.amount)}을(를) 자동으로 "
        "취소했습니다. 카드사에 따라 환불 반영까지 3~7영업일이 걸릴 수 있습니다. 불편을 드려 죄송합니다.",
    )
    inquiries.resolve(session, SYSTEM_ACTOR, inquiry.id, "이중 결제 자동 환불 완료")
    return refunded
