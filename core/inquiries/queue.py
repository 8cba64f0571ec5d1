"""The read side of the 문의 page: the open queue (nearest deadline first), one inquiry's detail,
the counts per SLA state, the customer search of the new-inquiry form and a live gateway lookup."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from core import clock
from core.accounts.actor import Actor
from core.customers import vip
from core.customers.identity import search_digits
from core.errors import ValidationFailed
from core.inquiries import policy, sla
from core.inquiries.service import OPEN_STATUSES, _load, evaluate, events_of
from core.models import (
    Customer,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    Order,
    Payment,
    Role,
    StaffNotification,
    StaffUser,
)
from core.safe_text import search_words


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
    vip: bool = False  # the customer is VIP now (core.customers.vip): the badge

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
    vips = vip.vip_ids(session, (r[4] for r in found), now)
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
            vip=r[4] in vips,
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
    vip: bool = False  # the customer is VIP now (the badge; inquiry.vip is what timed the SLA)


def detail(session: Session, inquiry_id: int, now: datetime | None = None) -> InquiryDetail:
    inquiry = _load(session, inquiry_id, for_update=False)
    customer = session.get(Customer, inquiry.customer_id)
    events = events_of(session, inquiry.id)
    config = policy.load(session)
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
        inquiry,
        customer,
        events,
        evaluate(inquiry, events, config, now),
        orders,
        payments,
        names,
        vip.is_vip_customer(session, inquiry.customer_id, now),
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
        if wanted := search_digits(query):  # the number in any shape finds its customer
            conditions.append(col(Customer.mobile).contains(wanted))
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
    from core.payments.gateways.base import PaymentError

    payment = session.get(Payment, payment_id)
    if payment is None or not payment.gateway_tid:
        raise ValidationFailed("게이트웨이에서 조회할 수 없는 결제입니다")
    if router is None:
        from core.payments.gateways.registry import get_router

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


@dataclass(frozen=True)
class Signals:
    """What the open 문의 page polls each second: two indexed max() lookups, nothing else."""

    last_inquiry_id: int
    last_event_id: int


def signals(session: Session) -> Signals:
    """The newest inquiry and event ids: a new inquiry raises the first, any change the second."""
    last_inquiry = session.exec(select(func.max(Inquiry.id))).one()
    last_event = session.exec(select(func.max(InquiryEvent.id))).one()
    return Signals(int(last_inquiry or 0), int(last_event or 0))


def new_since(session: Session, after_id: int, limit: int = 20) -> list[tuple[int, str]]:
    """Open inquiries created after `after_id` (id, type), newest last: what the toast announces."""
    rows = session.exec(
        select(Inquiry.id, Inquiry.type)
        .where(Inquiry.id > after_id, col(Inquiry.status).in_(OPEN_STATUSES))
        .order_by(col(Inquiry.id))
        .limit(limit)
    ).all()
    return [(int(r[0]), str(r[1])) for r in rows]
