"""CS inquiries: the services staff (and the worker) act through (the queue is in queue.py, the
SLA report in report.py, the SLA inputs in policy.py, the engine in sla.py).

Every service takes an actor, checks the role, writes an InquiryEvent (the timeline) and an audit
row, and re-times the inquiry from its whole timeline with the SLA engine, caching the deadlines on
the row (first_response_due_at, resolution_due_at, sla_due_at, sla_at_risk_at, sla_next_alert_at)
so lists and the SLA watch never recompute. Callers own the transaction (session_scope).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from core import clock, settings_store
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers import vip
from core.errors import NotFound, ValidationFailed
from core.inquiries import macros, policy, sla
from core.messaging import outbox
from core.models import (
    ClosedDay,
    Customer,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
    InquiryType,
    Order,
    Payment,
    Role,
    SlaPolicy,
    StaffNotification,
    StaffUser,
)
from core.models.inquiries import INQUIRY_TYPE_LABELS
from core.safe_text import has_control_chars

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


TYPE_KEYWORDS_SETTING = "inquiry_type_keywords"
MAX_KEYWORDS = 50
MAX_KEYWORD_LENGTH = 30


def suggest_type(text: str, keywords: dict[str, list[str]] | None = None) -> InquiryType:
    """A type from the customer's Korean text by simple keyword rules (staff may change it).

    The owner's own words (설정, `type_keywords`) are read first, in the same type order as the
    built-in rules, so a shop's word ("환불" meaning "교환" there, a product nickname) wins; then the
    built-in patterns. Words are plain text, matched ignoring spaces and case: never a pattern."""
    squeezed = re.sub(r"\s+", "", text or "").lower()
    for inquiry_type, _ in TYPE_RULES:
        for word in (keywords or {}).get(inquiry_type.value, []):
            if word and re.sub(r"\s+", "", word).lower() in squeezed:
                return inquiry_type
    for inquiry_type, pattern in TYPE_RULES:
        if pattern.search(text or ""):
            return inquiry_type
    return InquiryType.OTHER


def type_keywords(session: Session) -> dict[str, list[str]]:
    """The owner's extra words per inquiry type (empty until set on 설정)."""
    return dict(settings_store.get(session, TYPE_KEYWORDS_SETTING, {}) or {})


def save_type_keywords(session: Session, actor: Actor, words: dict[str, str | list[str]]) -> dict[str, list[str]]:
    """Owner only, audited (settings_store). Comma- or line-separated words per type; trimmed, no
    duplicates, at most MAX_KEYWORDS words of MAX_KEYWORD_LENGTH characters per type."""
    require_role(actor, Role.OWNER)
    cleaned: dict[str, list[str]] = {}
    for inquiry_type, _ in TYPE_RULES:
        raw = words.get(inquiry_type.value, [])
        items = re.split(r"[,\n]", raw) if isinstance(raw, str) else list(raw)
        kept: list[str] = []
        for item in items:
            word = " ".join(str(item).split())
            if not word:
                continue
            if has_control_chars(word) or len(word) > MAX_KEYWORD_LENGTH:
                raise ValidationFailed(f"키워드는 제어 문자 없이 {MAX_KEYWORD_LENGTH}자까지입니다: {word[:40]!r}")
            if word not in kept:
                kept.append(word)
        if len(kept) > MAX_KEYWORDS:
            raise ValidationFailed(f"유형마다 키워드는 {MAX_KEYWORDS}개까지입니다")
        if kept:
            cleaned[inquiry_type.value] = kept
    settings_store.put(session, actor, TYPE_KEYWORDS_SETTING, cleaned)
    return cleaned


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
    config: policy.SlaConfig,
    now: datetime | None = None,
) -> sla.InquirySla:
    timeline = [sla.SlaEvent(clock.as_utc(e.at), e.kind) for e in events]
    if not any(e.kind == "created" for e in timeline):
        timeline.append(sla.SlaEvent(clock.as_utc(inquiry.created_at), "created"))
    return sla.evaluate(
        config.policy(inquiry.type, vip=bool(inquiry.vip)), config.business_calendar, timeline, now or clock.now()
    )


def recompute(
    session: Session, inquiry: Inquiry, config: policy.SlaConfig | None = None
) -> sla.InquirySla:
    config = config or policy.load(session)
    session.flush()
    result = evaluate(inquiry, events_of(session, inquiry.id), config)
    apply_sla(inquiry, result)
    session.add(inquiry)
    return result


def recompute_open(session: Session) -> int:
    """Re-time every open inquiry (after a policy, hours or closed-day change)."""
    config = policy.load(session)
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
    chosen = _check_type(inquiry_type or suggest_type(body, type_keywords(session)).value)
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
        vip=vip.is_vip_customer(session, customer_id, now),  # VIP targets for the inquiry's life
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
    left = macros.unfilled(text)
    if left:
        raise ValidationFailed(
            f"채워지지 않은 변수가 있습니다: {', '.join(left)} (값을 직접 써 넣은 뒤 보내세요)"
        )
    inquiry = _load(session, inquiry_id)
    _require_open(inquiry)
    event = _event(session, inquiry, actor, "reply", text)
    if inquiry.first_response_at is None:
        inquiry.first_response_at = event.at
    outbox.enqueue(
        session,
        customer_id=inquiry.customer_id,
        template_key="inquiry_reply",
        variables={"inquiry_id": inquiry.id, "답변": text},
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
    from core.payments.refunds import refund_payment

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
    """Refund (full or partial) a payment of the inquiry's customer through core.payments.refunds.

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


# --------------------------------------------------------------------------- bulk actions

MAX_BULK = 500


def _bulk(
    session: Session,
    actor: Actor,
    inquiry_ids: Sequence[int],
    action: str,
    one: Callable[[int], Any],
    **detail: Any,
) -> int:
    """Apply `one` to every inquiry in the caller's transaction: all or nothing.

    The first failure raises (naming the inquiry) and the caller's session_scope rolls every earlier
    change back, so a bulk action never leaves half the selection changed. Each inquiry gets its own
    event and audit row (from the single-inquiry service) plus one audit row for the batch.
    """
    _staff(actor)
    ids = list(dict.fromkeys(int(i) for i in inquiry_ids))
    if not ids:
        raise ValidationFailed("처리할 문의를 고르세요")
    if len(ids) > MAX_BULK:
        raise ValidationFailed(f"한 번에 {MAX_BULK:,}건까지 처리할 수 있습니다 ({len(ids):,}건 선택)")
    for inquiry_id in ids:
        try:
            one(inquiry_id)
        except (NotFound, ValidationFailed) as exc:
            raise ValidationFailed(
                f"{inquiry_id}번 문의: {exc} · 아무 문의도 바꾸지 않았습니다"
            ) from exc
    audit.record(session, actor, f"inquiry.bulk_{action}", "inquiry", None, ids=ids, count=len(ids), **detail)
    return len(ids)


def bulk_assign(session: Session, actor: Actor, inquiry_ids: Sequence[int], assignee_id: int | None) -> int:
    """Assign every selected inquiry to one staff member (None: unassign); all or nothing."""
    return _bulk(
        session, actor, inquiry_ids, "assign", lambda i: assign(session, actor, i, assignee_id), assignee_id=assignee_id
    )


def bulk_change_type(session: Session, actor: Actor, inquiry_ids: Sequence[int], inquiry_type: str) -> int:
    """Change the type of every selected inquiry (deadlines re-timed); all or nothing."""
    _check_type(inquiry_type)
    return _bulk(
        session, actor, inquiry_ids, "type_change", lambda i: change_type(session, actor, i, inquiry_type),
        type=inquiry_type,
    )


def bulk_resolve(session: Session, actor: Actor, inquiry_ids: Sequence[int]) -> int:
    """Resolve every selected inquiry; one already resolved stops the batch (all or nothing)."""
    return _bulk(session, actor, inquiry_ids, "resolve", lambda i: resolve(session, actor, i))


# --------------------------------------------------------------------------- notifications


def mark_notification_read(session: Session, actor: Actor, notification_id: int) -> None:
    _staff(actor)
    row = session.get(StaffNotification, notification_id)
    if row is None or (row.staff_id is not None and row.staff_id != actor.id):
        raise NotFound("알림을 찾을 수 없습니다")
    row.read_at = clock.now()
    session.add(row)


# --------------------------------------------------------------------------- SLA settings


def save_policy(
    session: Session,
    actor: Actor,
    *,
    inquiry_type: str,
    first_response_minutes: int,
    resolution_minutes: int,
    calendar: str = "business",
    at_risk_share: float = sla.DEFAULT_AT_RISK_SHARE,
) -> SlaPolicy:
    """Create or change one type's targets (owner only); open inquiries are re-timed."""
    row = policy.store_policy(
        session,
        actor,
        inquiry_type=inquiry_type,
        first_response_minutes=first_response_minutes,
        resolution_minutes=resolution_minutes,
        calendar=calendar,
        at_risk_share=at_risk_share,
    )
    recompute_open(session)
    return row


def save_vip_sla(
    session: Session, actor: Actor, *, first_response_minutes: int | None, resolution_minutes: int | None
) -> None:
    """The shorter targets of VIP customers' inquiries (owner only); open inquiries are re-timed."""
    policy.store_vip_sla(
        session, actor, first_response_minutes=first_response_minutes, resolution_minutes=resolution_minutes
    )
    recompute_open(session)


def save_business_hours(
    session: Session, actor: Actor, business_hours: dict[str, list[list[str]]], observe_public_holidays: bool
) -> None:
    """Validate (windows, at least one open hour) before storing; open inquiries are re-timed."""
    policy.store_business_hours(session, actor, business_hours, observe_public_holidays)
    recompute_open(session)


def add_closed_day(session: Session, actor: Actor, day: date, reason: str = "") -> ClosedDay:
    """A shop holiday (owner only); open inquiries are re-timed."""
    row = policy.store_closed_day(session, actor, day, reason)
    recompute_open(session)
    return row


def remove_closed_day(session: Session, actor: Actor, day: date) -> None:
    """Reopen a holiday (owner only); open inquiries are re-timed."""
    policy.delete_closed_day(session, actor, day)
    recompute_open(session)
