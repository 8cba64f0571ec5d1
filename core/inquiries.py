"""CS inquiries: the services staff (and the worker) act through, the queue, and the SLA report.

Every service takes an actor, checks the role, writes an InquiryEvent (the timeline) and an audit
row, and re-times the inquiry from its whole timeline with the SLA engine, caching the deadlines on
the row (first_response_due_at, resolution_due_at, sla_due_at, sla_at_risk_at, sla_next_alert_at)
so lists and the SLA watch never recompute. Callers own the transaction (session_scope).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from core import audit, clock, sla, sla_config
from core.auth import Actor, require_role
from core.errors import NotFound, ValidationFailed
from core.messaging import outbox
from core.models import (
    Customer,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    InquiryType,
    Order,
    Payment,
    Role,
    StaffNotification,
    StaffUser,
)
from core.models.inquiries import INQUIRY_TYPE_LABELS
from core.safe_text import csv_text, search_words

MAX_TEXT = 10_000
OPEN_STATUSES = (InquiryStatus.OPEN.value, InquiryStatus.WAITING_CUSTOMER.value)

# --------------------------------------------------------------------------- type suggestion

# Checked in order: the first rule that matches wins (double charge before refund, because
# "이중 결제 환불해 주세요" is a double charge; receipt before refund for "취소 영수증").
TYPE_RULES: list[tuple[InquiryType, re.Pattern[str]]] = [
    (
        InquiryType.DOUBLE_CHARGE,
        re.compile(
            r"이중|중복\s*(결제|청구|출금)|(두|2)\s*번\s*(결제|빠|나갔|청구|됐|되었)"
            r"|결제[가이]?\s*(두|2)\s*번"
        ),
    ),
    (InquiryType.RECEIPT_REQUEST, re.compile(r"영수증|증빙|세금\s*계산서")),
    (InquiryType.REFUND_REQUEST, re.compile(r"환불|취소|반품|돌려\s*(받|주)")),
    (InquiryType.PAYMENT_ERROR, re.compile(r"결제\s*(오류|실패|에러)|오류|에러|실패|안\s*(돼|되|됨)")),
]


def suggest_type(text: str) -> InquiryType:
    """A type from the customer's Korean text by simple keyword rules (staff may change it)."""
    for inquiry_type, pattern in TYPE_RULES:
        if pattern.search(text or ""):
            return inquiry_type
    return InquiryType.OTHER


# --------------------------------------------------------------------------- helpers


def _check_text(text: str, *, allow_empty: bool = True, what: str = "내용") -> str:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ValidationFailed(f"{what}은(는) 문자열이어야 합니다")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"{what}이(가) 너무 깁니다 ({len(text):,}자, 최대 {MAX_TEXT:,}자)")
    if not allow_empty and not text.strip():
        raise ValidationFailed(f"{what}을(를) 입력해 주세요")
    return text  # verbatim: never trimmed, escaped or rewritten


def _check_type(inquiry_type: str) -> str:
    valid = {t.value for t in InquiryType}
    if inquiry_type not in valid:
        raise ValidationFailed(f"알 수 없는 문의 유형입니다: {inquiry_type!r}")
    return inquiry_type


def _load(session: Session, inquiry_id: int, *, for_update: bool = True) -> Inquiry:
    statement = select(Inquiry).where(Inquiry.id == inquiry_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    inquiry = session.exec(statement).first()
    if inquiry is None:
        raise NotFound(f"문의를 찾을 수 없습니다 (#{inquiry_id})")
    return inquiry


def _event(
    session: Session,
    inquiry: Inquiry,
    actor: Actor,
    kind: str,
    body: str = "",
    at: datetime | None = None,
    **detail: Any,
) -> InquiryEvent:
    event = InquiryEvent(
        inquiry_id=inquiry.id,
        at=at or clock.now(),
        kind=kind,
        author_id=actor.id,
        body=body,
        detail={k: audit._jsonable(v) for k, v in detail.items()},
    )
    session.add(event)
    session.flush()
    return event


def events_of(session: Session, inquiry_id: int) -> list[InquiryEvent]:
    return list(
        session.exec(
            select(InquiryEvent)
            .where(InquiryEvent.inquiry_id == inquiry_id)
            .order_by(InquiryEvent.at, InquiryEvent.id)
        ).all()
    )


def apply_sla(inquiry: Inquiry, result: sla.InquirySla) -> None:
    """Cache the engine's answer on the row (pure: no session)."""
    inquiry.first_response_due_at = result.first_response.due_at
    inquiry.resolution_due_at = result.resolution.due_at
    if inquiry.status == InquiryStatus.RESOLVED:
        inquiry.sla_due_at = inquiry.sla_at_risk_at = inquiry.sla_next_alert_at = None
        return
    nearest = result.nearest
    inquiry.sla_due_at = nearest.due_at
    inquiry.sla_at_risk_at = nearest.at_risk_at if nearest.due_at is not None else None
    inquiry.sla_next_alert_at = inquiry.sla_at_risk_at


def evaluate(
    inquiry: Inquiry,
    events: Sequence[InquiryEvent],
    config: sla_config.SlaConfig,
    now: datetime | None = None,
) -> sla.InquirySla:
    timeline = [sla.SlaEvent(clock.as_utc(e.at), e.kind) for e in events]
    if not any(e.kind == "created" for e in timeline):
        timeline.append(sla.SlaEvent(clock.as_utc(inquiry.created_at), "created"))
    return sla.evaluate(config.policy(inquiry.type), config.business_calendar, timeline, now or clock.now())


def recompute(
    session: Session, inquiry: Inquiry, config: sla_config.SlaConfig | None = None
) -> sla.InquirySla:
    config = config or sla_config.load(session)
    session.flush()
    result = evaluate(inquiry, events_of(session, inquiry.id), config)
    apply_sla(inquiry, result)
    session.add(inquiry)
    return result


def recompute_open(session: Session) -> int:
    """Re-time every open inquiry (after a policy, hours or closed-day change)."""
    config = sla_config.load(session)
    inquiries = session.exec(select(Inquiry).where(col(Inquiry.status).in_(OPEN_STATUSES))).all()
    if not inquiries:
        return 0
    by_inquiry: dict[int, list[InquiryEvent]] = defaultdict(list)
    ids = [i.id for i in inquiries]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for event in session.exec(
            select(InquiryEvent)
            .where(col(InquiryEvent.inquiry_id).in_(chunk))
            .order_by(InquiryEvent.at, InquiryEvent.id)
        ).all():
            by_inquiry[event.inquiry_id].append(event)
    for inquiry in inquiries:
        apply_sla(inquiry, evaluate(inquiry, by_inquiry[inquiry.id], config))
        session.add(inquiry)
    return len(inquiries)


def _staff(actor: Actor) -> None:
    require_role(actor, Role.CS, Role.OWNER)


# --------------------------------------------------------------------------- services


def create_inquiry(
    session: Session,
    actor: Actor,
    *,
    customer_id: int,
    body: str,
    inquiry_type: str | None = None,
    subject: str | None = None,
    order_id: int | None = None,
    payment_id: int | None = None,
    source: str = "staff",
    dedupe_key: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Inquiry:
    """Record an inquiry a customer made (typed in by staff from the chat, or opened by the worker).

    The type defaults to the keyword suggestion. With a dedupe_key, a second call returns the first
    inquiry instead of opening another one.
    """
    _staff(actor)
    body = _check_text(body)
    if dedupe_key:
        existing = session.exec(select(Inquiry).where(Inquiry.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return existing
    if session.get(Customer, customer_id) is None:
        raise ValidationFailed(f"고객을 찾을 수 없습니다 (#{customer_id})")
    if order_id is not None and session.get(Order, order_id) is None:
        raise ValidationFailed(f"주문을 찾을 수 없습니다 (#{order_id})")
    if payment_id is not None and session.get(Payment, payment_id) is None:
        raise ValidationFailed(f"결제를 찾을 수 없습니다 (#{payment_id})")
    chosen = _check_type(inquiry_type or suggest_type(body).value)
    if subject is None or not subject.strip():
        first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
        subject = first_line[:80] or INQUIRY_TYPE_LABELS[InquiryType(chosen)]
    now = clock.now()
    inquiry = Inquiry(
        customer_id=customer_id,
        type=chosen,
        subject=subject[:200],
        order_id=order_id,
        payment_id=payment_id,
        source=source,
        dedupe_key=dedupe_key,
        created_at=now,
    )
    session.add(inquiry)
    session.flush()
    _event(session, inquiry, actor, "created", body, at=now, type=chosen, source=source, **(evidence or {}))
    audit.record(
        session,
        actor,
        "inquiry.create",
        "inquiry",
        inquiry.id,
        type=chosen,
        source=source,
        customer_id=customer_id,
    )
    recompute(session, inquiry)
    return inquiry


def assign(session: Session, actor: Actor, inquiry_id: int, assignee_id: int | None) -> Inquiry:
    """Assign to a CS/owner staff member (None: unassign)."""
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    if assignee_id is not None:
        user = session.get(StaffUser, assignee_id)
        if user is None or not user.is_active or user.role not in (Role.CS.value, Role.OWNER.value):
            raise ValidationFailed("CS 담당자나 사장님에게만 배정할 수 있습니다")
    old = inquiry.assignee_id
    inquiry.assignee_id = assignee_id
    session.add(inquiry)
    _event(session, inquiry, actor, "assign", old=old, new=assignee_id)
    audit.record(session, actor, "inquiry.assign", "inquiry", inquiry.id, old=old, new=assignee_id)
    return inquiry


def claim(session: Session, actor: Actor, inquiry_id: int) -> Inquiry:
    return assign(session, actor, inquiry_id, actor.id)


def change_type(session: Session, actor: Actor, inquiry_id: int, inquiry_type: str) -> Inquiry:
    """Correct the type; the deadlines follow the new type's policy from the start."""
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    old = inquiry.type
    inquiry.type = _check_type(inquiry_type)
    _event(session, inquiry, actor, "type_change", old=old, new=inquiry.type)
    audit.record(session, actor, "inquiry.type_change", "inquiry", inquiry.id, old=old, new=inquiry.type)
    recompute(session, inquiry)
    return inquiry


def reply(session: Session, actor: Actor, inquiry_id: int, text: str) -> InquiryEvent:
    """Answer the customer: recorded on the timeline and queued in the outbox (sent once)."""
    _staff(actor)
    text = _check_text(text, allow_empty=False, what="답변")
    inquiry = _load(session, inquiry_id)
    _require_open(inquiry)
    event = _event(session, inquiry, actor, "reply", text)
    if inquiry.first_response_at is None:
        inquiry.first_response_at = event.at
    outbox.enqueue(
        session,
        customer_id=inquiry.customer_id,
        template_key="inquiry_reply",
        variables={"inquiry_id": inquiry.id},
        text=text,
        idempotency_key=f"inquiry_reply:{event.id}",
    )
    audit.record(session, actor, "inquiry.reply", "inquiry", inquiry.id, event_id=event.id)
    recompute(session, inquiry)
    return event


def add_note(session: Session, actor: Actor, inquiry_id: int, text: str) -> InquiryEvent:
    """An internal note: staff only, never sent, does not stop any clock."""
    _staff(actor)
    text = _check_text(text, allow_empty=False, what="메모")
    inquiry = _load(session, inquiry_id)
    event = _event(session, inquiry, actor, "note", text)
    audit.record(session, actor, "inquiry.note", "inquiry", inquiry.id, event_id=event.id)
    return event


def wait_on_customer(session: Session, actor: Actor, inquiry_id: int, reason: str = "") -> Inquiry:
    """Pause the clocks until the customer writes again."""
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    if inquiry.status != InquiryStatus.OPEN:
        raise ValidationFailed("처리 중인 문의만 고객 응답 대기로 바꿀 수 있습니다")
    inquiry.status = InquiryStatus.WAITING_CUSTOMER
    _event(session, inquiry, actor, "wait_customer", _check_text(reason))
    audit.record(session, actor, "inquiry.wait_customer", "inquiry", inquiry.id)
    recompute(session, inquiry)
    return inquiry


def customer_message(session: Session, actor: Actor, inquiry_id: int, text: str) -> InquiryEvent:
    """The customer wrote again (typed in by staff from the chat): resumes a paused clock, reopens."""
    _staff(actor)
    text = _check_text(text)
    inquiry = _load(session, inquiry_id)
    if inquiry.status == InquiryStatus.RESOLVED:
        inquiry.status = InquiryStatus.OPEN
        inquiry.resolved_at = None
        _event(session, inquiry, actor, "reopen", "", reason="customer_message")
    inquiry.status = InquiryStatus.OPEN
    event = _event(session, inquiry, actor, "customer_message", text)
    audit.record(session, actor, "inquiry.customer_message", "inquiry", inquiry.id, event_id=event.id)
    recompute(session, inquiry)
    return event


def send_receipt(
    session: Session, actor: Actor, inquiry_id: int, payment_id: int | None = None
) -> InquiryEvent:
    """Queue the electronic receipt of a payment to the customer (once per inquiry and payment)."""
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    _require_open(inquiry)
    payment_id = payment_id or inquiry.payment_id
    payment = session.get(Payment, payment_id) if payment_id else None
    if payment is None:
        raise ValidationFailed("영수증을 보낼 결제를 골라 주세요")
    if payment.customer_id != inquiry.customer_id:
        raise ValidationFailed("이 고객의 결제가 아닙니다")
    if payment.approved_at is None:
        raise ValidationFailed("승인된 결제만 영수증을 보낼 수 있습니다")
    event = _event(session, inquiry, actor, "receipt", "", payment_id=payment.id, amount=payment.amount)
    if inquiry.first_response_at is None:
        inquiry.first_response_at = event.at
    outbox.enqueue(
        session,
        customer_id=inquiry.customer_id,
        template_key="receipt",
        variables={"payment_id": payment.id, "amount": payment.amount, "tid": payment.gateway_tid or ""},
        idempotency_key=f"inquiry_receipt:{inquiry.id}:{payment.id}",
    )
    audit.record(session, actor, "inquiry.receipt", "inquiry", inquiry.id, payment_id=payment.id)
    recompute(session, inquiry)
    return event


RefundFn = Callable[..., Any]


def _default_refund_fn() -> RefundFn:
    from core.orders import refund_payment  # type: ignore[attr-defined]  # the payments engineer's service

    return refund_payment


def refund(
    session: Session,
    actor: Actor,
    inquiry_id: int,
    *,
    payment_id: int,
    amount: int,
    reason: str,
    idempotency_key: str | None = None,
    refund_fn: RefundFn | None = None,
) -> Any:
    """Refund (full or partial) a payment of the inquiry's customer through core.orders.

    The amount check against what is refundable is repeated by refund_payment under a row lock;
    this one gives the early, readable error.
    """
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    payment = session.get(Payment, payment_id)
    if payment is None or payment.customer_id != inquiry.customer_id:
        raise ValidationFailed("이 고객의 결제가 아닙니다")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationFailed("환불 금액은 1원 이상의 정수여야 합니다")
    refundable = payment.amount - payment.refunded_amount
    if amount > refundable:
        raise ValidationFailed(f"환불 가능 금액({refundable:,}원)보다 큰 금액은 환불할 수 없습니다")
    refund_fn = refund_fn or _default_refund_fn()
    key = idempotency_key or f"inquiry_refund:{inquiry.id}:{payment.id}:{amount}:{payment.refunded_amount}"
    result = refund_fn(
        session, actor, payment_id=payment.id, amount=amount, reason=reason, idempotency_key=key
    )
    _event(
        session,
        inquiry,
        actor,
        "refund",
        reason,
        payment_id=payment.id,
        amount=amount,
        refund_id=getattr(result, "id", None),
    )
    audit.record(
        session, actor, "inquiry.refund", "inquiry", inquiry.id, payment_id=payment.id, amount=amount
    )
    return result


def resolve(session: Session, actor: Actor, inquiry_id: int, note: str = "") -> Inquiry:
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    _require_open(inquiry)
    now = clock.now()
    inquiry.status = InquiryStatus.RESOLVED
    inquiry.resolved_at = now
    if inquiry.first_response_at is None:
        inquiry.first_response_at = now
    _event(session, inquiry, actor, "resolve", _check_text(note), at=now)
    audit.record(session, actor, "inquiry.resolve", "inquiry", inquiry.id)
    recompute(session, inquiry)
    return inquiry


def reopen(session: Session, actor: Actor, inquiry_id: int, reason: str = "") -> Inquiry:
    """Open a resolved inquiry again; the resolution clock resumes where it stopped."""
    _staff(actor)
    inquiry = _load(session, inquiry_id)
    if inquiry.status != InquiryStatus.RESOLVED:
        raise ValidationFailed("해결된 문의만 다시 열 수 있습니다")
    inquiry.status = InquiryStatus.OPEN
    inquiry.resolved_at = None
    _event(session, inquiry, actor, "reopen", _check_text(reason))
    audit.record(session, actor, "inquiry.reopen", "inquiry", inquiry.id)
    recompute(session, inquiry)
    return inquiry


def _require_open(inquiry: Inquiry) -> None:
    if inquiry.status == InquiryStatus.RESOLVED:
        raise ValidationFailed("이미 해결된 문의입니다 (다시 열기 후 진행하세요)")


# --------------------------------------------------------------------------- queue


@dataclass(frozen=True)
class QueueRow:
    id: int
    type: str
    subject: str
    status: str
    customer_id: int
    customer_name: str
    assignee_id: int | None
    assignee_name: str | None
    created_at: datetime
    target: str  # first_response | resolution
    due_at: datetime | None
    at_risk_at: datetime | None

    def state(self, now: datetime) -> sla.SlaState:
        return cached_state(self.due_at, self.at_risk_at, now)

    def seconds_left(self, now: datetime) -> float | None:
        return None if self.due_at is None else (self.due_at - now).total_seconds()


def cached_state(due_at: datetime | None, at_risk_at: datetime | None, now: datetime) -> sla.SlaState:
    """The live state from cached instants alone (what the countdown recomputes every second)."""
    if due_at is None:
        return sla.SlaState.PAUSED
    if now > due_at:
        return sla.SlaState.BREACHED
    if at_risk_at is not None and now >= at_risk_at:
        return sla.SlaState.AT_RISK
    return sla.SlaState.ON_TRACK


QUEUE_STATES = ("on_track", "at_risk", "breached", "paused")


def queue(
    session: Session,
    now: datetime | None = None,
    *,
    types: Sequence[str] = (),
    states: Sequence[str] = (),
    assignee_id: int | None = None,
    unassigned: bool = False,
    limit: int = 200,
) -> tuple[list[QueueRow], int]:
    """Open inquiries, nearest deadline first (breached first, waiting on the customer last).

    Returns (rows up to `limit`, total matching). Uses ix_inquiry_status_due.
    """
    now = now or clock.now()
    conditions = [col(Inquiry.status).in_(OPEN_STATUSES)]
    if types:
        conditions.append(col(Inquiry.type).in_(list(types)))
    if assignee_id is not None:
        conditions.append(Inquiry.assignee_id == assignee_id)
    elif unassigned:
        conditions.append(col(Inquiry.assignee_id).is_(None))
    if states:
        state_conditions = []
        if "breached" in states:
            state_conditions.append(col(Inquiry.sla_due_at) < now)
        if "at_risk" in states:
            state_conditions.append(and_(col(Inquiry.sla_due_at) >= now, col(Inquiry.sla_at_risk_at) <= now))
        if "on_track" in states:
            state_conditions.append(col(Inquiry.sla_at_risk_at) > now)
        if "paused" in states:
            state_conditions.append(col(Inquiry.sla_due_at).is_(None))
        conditions.append(or_(*state_conditions))
    total = session.exec(select(func.count()).select_from(Inquiry).where(*conditions)).one()
    columns = (
        Inquiry.id,
        Inquiry.type,
        Inquiry.subject,
        Inquiry.status,
        Inquiry.customer_id,
        Customer.name,
        Inquiry.assignee_id,
        StaffUser.display_name,
        Inquiry.created_at,
        Inquiry.first_response_at,
        Inquiry.sla_due_at,
        Inquiry.sla_at_risk_at,
    )

    def _page(status: str, remaining: int) -> list[Any]:
        # One status at a time so ix_inquiry_status_due delivers rows already in deadline order.
        statement = (
            select(*columns)
            .join(Customer, Customer.id == Inquiry.customer_id)
            .outerjoin(StaffUser, StaffUser.id == Inquiry.assignee_id)
            .where(*conditions, Inquiry.status == status)
            .order_by(col(Inquiry.sla_due_at), col(Inquiry.id))
            .limit(remaining)
        )
        return list(session.exec(statement).all())

    found = _page(InquiryStatus.OPEN.value, limit)
    if len(found) < limit:
        found += _page(InquiryStatus.WAITING_CUSTOMER.value, limit - len(found))
    rows = [
        QueueRow(
            id=r[0],
            type=r[1],
            subject=r[2],
            status=r[3],
            customer_id=r[4],
            customer_name=r[5],
            assignee_id=r[6],
            assignee_name=r[7],
            created_at=clock.as_utc(r[8]),
            target="first_response" if r[9] is None else "resolution",
            due_at=clock.as_utc(r[10]) if r[10] else None,
            at_risk_at=clock.as_utc(r[11]) if r[11] else None,
        )
        for r in found
    ]
    return rows, int(total)


@dataclass(frozen=True)
class InquiryDetail:
    inquiry: Inquiry
    customer: Customer
    events: list[InquiryEvent]
    sla: sla.InquirySla
    orders: list[Order]
    payments: list[Payment]
    staff_names: dict[int, str]


def detail(session: Session, inquiry_id: int, now: datetime | None = None) -> InquiryDetail:
    inquiry = _load(session, inquiry_id, for_update=False)
    customer = session.get(Customer, inquiry.customer_id)
    events = events_of(session, inquiry.id)
    config = sla_config.load(session)
    orders = list(
        session.exec(
            select(Order)
            .where(Order.customer_id == inquiry.customer_id)
            .order_by(col(Order.ordered_at).desc())
            .limit(10)
        ).all()
    )
    payments = list(
        session.exec(
            select(Payment)
            .where(Payment.customer_id == inquiry.customer_id)
            .order_by(col(Payment.created_at).desc())
            .limit(10)
        ).all()
    )
    names = {u.id: u.display_name for u in session.exec(select(StaffUser)).all()}
    return InquiryDetail(
        inquiry, customer, events, evaluate(inquiry, events, config, now), orders, payments, names
    )


def assignable_staff(session: Session) -> list[StaffUser]:
    return list(
        session.exec(
            select(StaffUser)
            .where(
                col(StaffUser.role).in_([Role.CS.value, Role.OWNER.value]),
                StaffUser.is_active == True,  # noqa: E712
            )
            .order_by(StaffUser.display_name)
        ).all()
    )


def notifications_for(
    session: Session, actor: Actor, *, unread_only: bool = True, limit: int = 50
) -> list[StaffNotification]:
    """The actor's own notices plus those for all CS (staff_id None)."""
    statement = select(StaffNotification).where(
        or_(StaffNotification.staff_id == actor.id, col(StaffNotification.staff_id).is_(None))
    )
    if unread_only:
        statement = statement.where(col(StaffNotification.read_at).is_(None))
    return list(session.exec(statement.order_by(col(StaffNotification.created_at).desc()).limit(limit)).all())


def mark_notification_read(session: Session, actor: Actor, notification_id: int) -> None:
    _staff(actor)
    row = session.get(StaffNotification, notification_id)
    if row is None or (row.staff_id is not None and row.staff_id != actor.id):
        raise NotFound("알림을 찾을 수 없습니다")
    row.read_at = clock.now()
    session.add(row)


# --------------------------------------------------------------------------- report


@dataclass
class Bucket:
    total: int = 0
    within: int = 0
    first_response_seconds: list[float] = field(default_factory=list)
    resolution_seconds: list[float] = field(default_factory=list)

    @property
    def share_within(self) -> float | None:
        return None if self.total == 0 else self.within / self.total

    @property
    def median_first_response(self) -> float | None:
        return statistics.median(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def median_resolution(self) -> float | None:
        return statistics.median(self.resolution_seconds) if self.resolution_seconds else None


@dataclass(frozen=True)
class Miss:
    inquiry_id: int
    type: str
    assignee: str
    target: str
    due_at: datetime
    done_at: datetime | None  # None: still open (breached)
    late_seconds: float


@dataclass
class Report:
    start: datetime
    end: datetime
    overall: Bucket
    by_type: dict[str, Bucket]
    by_staff: dict[str, Bucket]
    by_week: dict[str, Bucket]
    misses: list[Miss]


def report(session: Session, start: datetime, end: datetime, now: datetime | None = None) -> Report:
    """SLA results of inquiries created in [start, end), from the cached deadlines.

    The cached deadlines of a stopped target are fixed by its timeline, so "answered after the
    cached deadline" is exactly the engine's miss; an open target past its deadline counts as a miss
    too (breached, not yet answered).
    """
    now = now or clock.now()
    rows = session.exec(
        select(
            Inquiry.id,
            Inquiry.type,
            Inquiry.assignee_id,
            Inquiry.created_at,
            Inquiry.first_response_at,
            Inquiry.resolved_at,
            Inquiry.first_response_due_at,
            Inquiry.resolution_due_at,
        ).where(Inquiry.created_at >= start, Inquiry.created_at < end)
    ).all()
    names = {u.id: u.display_name for u in session.exec(select(StaffUser)).all()}
    result = Report(start, end, Bucket(), defaultdict(Bucket), defaultdict(Bucket), defaultdict(Bucket), [])
    for (
        inquiry_id,
        inquiry_type,
        assignee_id,
        created,
        first_at,
        resolved_at,
        first_due,
        resolution_due,
    ) in rows:
        created = clock.as_utc(created)
        assignee = names.get(assignee_id, "미배정") if assignee_id else "미배정"
        iso = clock.to_kst(created).isocalendar()
        week = f"{iso.year}-W{iso.week:02d}"
        misses = [
            miss
            for miss in (
                _miss(inquiry_id, inquiry_type, assignee, "first_response", first_due, first_at, now),
                _miss(inquiry_id, inquiry_type, assignee, "resolution", resolution_due, resolved_at, now),
            )
            if miss is not None
        ]
        result.misses.extend(misses)
        for bucket in (
            result.overall,
            result.by_type[inquiry_type],
            result.by_staff[assignee],
            result.by_week[week],
        ):
            bucket.total += 1
            bucket.within += 0 if misses else 1
            if first_at is not None:
                bucket.first_response_seconds.append((clock.as_utc(first_at) - created).total_seconds())
            if resolved_at is not None:
                bucket.resolution_seconds.append((clock.as_utc(resolved_at) - created).total_seconds())
    result.misses.sort(key=lambda m: -m.late_seconds)
    return result


def _miss(
    inquiry_id: int,
    inquiry_type: str,
    assignee: str,
    target: str,
    due: datetime | None,
    done: datetime | None,
    now: datetime,
) -> Miss | None:
    if due is None:
        return None
    due = clock.as_utc(due)
    moment = clock.as_utc(done) if done is not None else now
    if moment <= due:
        return None
    return Miss(
        inquiry_id,
        inquiry_type,
        assignee,
        target,
        due,
        clock.as_utc(done) if done else None,
        (moment - due).total_seconds(),
    )


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def report_csv(data: Report) -> str:
    """The report as CSV text (UTF-8; the page adds a BOM for Excel); names as text, never formulas."""
    rows: list[list[Any]] = []
    rows.append(
        [
            "구분",
            "항목",
            "문의 수",
            "목표 내 처리",
            "목표 내 비율(%)",
            "첫 응답 중앙값(분)",
            "해결 중앙값(분)",
        ]
    )
    groups = [
        ("전체", {"전체": data.overall}),
        ("유형", data.by_type),
        ("담당자", data.by_staff),
        ("주", data.by_week),
    ]
    for group, buckets in groups:
        for key in sorted(buckets):
            bucket = buckets[key]
            label = INQUIRY_TYPE_LABELS.get(key, key) if group == "유형" else key
            share = "" if bucket.share_within is None else f"{bucket.share_within * 100:.1f}"
            rows.append(
                [
                    group,
                    label,
                    bucket.total,
                    bucket.within,
                    share,
                    _minutes(bucket.median_first_response),
                    _minutes(bucket.median_resolution),
                ]
            )
    rows.append([])
    rows.append(["미준수 문의", "유형", "담당자", "목표", "기한(KST)", "처리(KST)", "지연(분)"])
    for miss in data.misses:
        rows.append(
            [
                miss.inquiry_id,
                INQUIRY_TYPE_LABELS.get(miss.type, miss.type),
                miss.assignee,
                "첫 응답" if miss.target == "first_response" else "해결",
                clock.format_kst(miss.due_at),
                clock.format_kst(miss.done_at) if miss.done_at else "미처리",
                _minutes(miss.late_seconds),
            ]
        )
    return csv_text(None, rows)


def open_count_by_state(session: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    rows = session.exec(
        select(Inquiry.sla_due_at, Inquiry.sla_at_risk_at).where(col(Inquiry.status).in_(OPEN_STATUSES))
    ).all()
    counts = {state: 0 for state in QUEUE_STATES}
    for due, at_risk in rows:
        state = cached_state(
            clock.as_utc(due) if due else None, clock.as_utc(at_risk) if at_risk else None, now
        )
        counts[state.value] += 1
    return counts


def find_customers(session: Session, query: str, limit: int = 20) -> list[Customer]:
    """Customers whose name or phone contains `query` (for the new-inquiry form)."""
    query = search_words(query)  # % and _ match themselves; no NUL; at most 100 characters
    statement = select(Customer)
    if query:
        digits = re.sub(r"\D", "", query)
        conditions = [col(Customer.name).contains(query, autoescape=True)]
        if digits:
            conditions.append(col(Customer.phone).contains(digits))
        statement = statement.where(or_(*conditions))
    return list(session.exec(statement.order_by(col(Customer.id).desc()).limit(limit)).all())


GATEWAY_STATUS_LABELS = {
    "SUCCESS_PAYMENT": "결제 완료",
    "PART_CANCEL_PAYMENT": "부분 취소",
    "CANCEL_PAYMENT": "전액 취소",
    "READY": "결제 준비",
    "FAIL_PAYMENT": "결제 실패",
    "QUIT_PAYMENT": "결제 중단",
}


def live_payment_status(session: Session, payment_id: int, router: Any = None) -> dict[str, Any]:
    """Ask the payment's gateway for its current state (on a staff click, never on every rerun)."""
    from core.payments.base import PaymentError

    payment = session.get(Payment, payment_id)
    if payment is None or not payment.gateway_tid:
        raise ValidationFailed("게이트웨이에서 조회할 수 없는 결제입니다")
    if router is None:
        from core.payments.registry import get_router

        router = get_router(engine=session.get_bind())  # type: ignore[arg-type]
    gateway, tid = payment.gateway, payment.gateway_tid
    session.commit()  # hold no transaction (SQLite: no write lock) across the outside call
    try:
        result = router.lookup(gateway, [], tid=tid)
    except PaymentError as exc:
        raise ValidationFailed(f"결제 대행사 조회에 실패했습니다: {exc}") from exc
    return {
        "status": GATEWAY_STATUS_LABELS.get(result.status, result.status),
        "total": result.total_amount,
        "canceled": result.canceled_amount,
        "cancel_available": result.cancel_available_amount,
    }
