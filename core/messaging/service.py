"""Services the 메시지 page and 설정 use: list and count messages, resend a failed one,
edit templates (with the approved-body pre-flight) and preview them for a real customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.customers.identity import search_digits
from core.errors import NotFound, ValidationFailed
from core.messaging import templates
from core.messaging.outbox import enqueue
from core.models import Customer, Message, MessageKind, MessageStatus, Role, Template
from core.safe_text import search_words

RESENDABLE = (MessageStatus.FAILED.value, MessageStatus.SKIPPED.value)


@dataclass(frozen=True)
class MessageFilter:
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    template_keys: tuple[str, ...] = ()
    customer_query: str = ""  # name or phone, partial
    first_day: date | None = None  # KST
    last_day: date | None = None
    limit: int = 500


def list_messages(session: Session, flt: MessageFilter) -> list[tuple[Message, str | None]]:
    """Messages newest first with the customer's name."""
    stmt = select(Message, Customer.name).outerjoin(Customer, Customer.id == Message.customer_id)
    if flt.statuses:
        stmt = stmt.where(Message.status.in_(flt.statuses))
    if flt.kinds:
        stmt = stmt.where(Message.kind.in_(flt.kinds))
    if flt.template_keys:
        stmt = stmt.where(Message.template_key.in_(flt.template_keys))
    query = search_words(flt.customer_query)  # % and _ match themselves; no NUL; at most 100 characters
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        conditions = [Customer.name.contains(query, autoescape=True)]
        if digits:
            conditions += [Customer.phone.like(f"%{digits}%"), Message.to_phone.like(f"%{digits[-4:]}%")]
        if wanted := search_digits(query):  # the number in any shape finds its customer
            conditions.append(Customer.mobile.contains(wanted))
        stmt = stmt.where(or_(*conditions))
    if flt.first_day or flt.last_day:
        start, end = clock.kst_day_range(flt.first_day or date(2000, 1, 1), flt.last_day or date(2100, 1, 1))
        stmt = stmt.where(Message.created_at >= start, Message.created_at < end)
    stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(flt.limit)
    return [(m, name) for m, name in session.execute(stmt).all()]


def daily_counts(session: Session, days: int = 14, today: date | None = None) -> list[dict[str, Any]]:
    """Messages created per KST day and status over the last `days` days (for the chart/table)."""
    today = today or clock.today_kst()
    first = today - timedelta(days=days - 1)
    start, end = clock.kst_day_range(first, today)
    rows = session.execute(
        select(Message.created_at, Message.status).where(
            Message.created_at >= start, Message.created_at < end
        )
    ).all()
    table: dict[date, dict[str, Any]] = {
        first + timedelta(days=i): {"day": first + timedelta(days=i), **{s.value: 0 for s in MessageStatus}}
        for i in range(days)
    }
    for created_at, status in rows:
        table[clock.today_kst(clock.as_utc(created_at))][status] += 1
    return list(table.values())


def resend(session: Session, actor: Actor, message_id: int) -> Message:
    """Queue a failed (or skipped) message again under a new key; the old row stays as it was."""
    require_role(actor, Role.OWNER, Role.CS, Role.STAFF)
    original = session.get(Message, message_id)
    if original is None:
        raise NotFound(f"메시지를 찾을 수 없습니다: {message_id}")
    if original.status not in RESENDABLE:
        raise ValidationFailed("실패하거나 건너뛴 메시지만 다시 보낼 수 있습니다")
    base = original.idempotency_key.split(":resend:")[0]
    count = session.execute(
        select(func.count()).where(Message.idempotency_key.like(f"{base}:resend:%"))
    ).scalar_one()
    new_key = f"{base}:resend:{count + 1}"
    customer = session.get(Customer, original.customer_id) if original.customer_id else None
    # Advertising keeps its text (campaigns); informational is rendered again from the template.
    text = original.text if original.kind == MessageKind.ADVERTISING else ""
    message = enqueue(
        session,
        customer_id=original.customer_id,
        template_key=original.template_key,
        variables=dict(original.variables or {}),
        idempotency_key=new_key,
        kind=MessageKind(original.kind),
        text=text,
        campaign_id=original.campaign_id,
        campaign_variant=original.campaign_variant,
    )
    if customer is not None and customer.phone:
        message.to_phone = customer.phone  # the phone may have been corrected since
        session.add(message)
    session.flush()
    audit.record(
        session,
        actor,
        "message.resend",
        "message",
        message.id,
        original_id=original.id,
        original_key=original.idempotency_key,
        new_key=new_key,
    )
    return message


def update_template(
    session: Session,
    actor: Actor,
    key: str,
    *,
    body: str | None = None,
    name: str | None = None,
    alimtalk_template_id: str | None = None,
    mark_approved: bool = False,
    is_active: bool | None = None,
) -> Template:
    """Edit a template (owner). Editing the body of an AlimTalk template does not approve it:
    messages are refused until the owner marks the new body approved (after Kakao approves it)."""
    require_role(actor, Role.OWNER)
    template = session.execute(select(Template).where(Template.key == key)).scalars().first()
    if template is None:
        raise NotFound(f"템플릿을 찾을 수 없습니다: {key}")
    before = {
        "body": template.body,
        "approved_body": template.approved_body,
        "alimtalk_template_id": template.alimtalk_template_id,
        "is_active": template.is_active,
    }
    if body is not None:
        try:
            templates.check_body(body)
        except templates.TemplateError as exc:
            raise ValidationFailed(str(exc)) from None
        template.body = body
    if name is not None:
        template.name = name.strip() or template.name
    if alimtalk_template_id is not None:
        template.alimtalk_template_id = alimtalk_template_id.strip() or None
    if is_active is not None:
        template.is_active = is_active
    if mark_approved:
        template.approved_body = template.body
    template.updated_at = clock.now()
    session.add(template)
    audit.record(
        session,
        actor,
        "template.update",
        "template",
        template.key,
        before=before,
        body=template.body,
        approved=template.approved_body == template.body,
        alimtalk_template_id=template.alimtalk_template_id,
    )
    if template.alimtalk_template_id:
        # Messages held for want of this id go on the sender's next tick.
        session.execute(
            update(Message)
            .where(
                Message.template_key == template.key,
                Message.status == MessageStatus.HELD.value,
                Message.reason == templates.not_registered_reason(template.key),
            )
            .values(send_after=clock.now())
        )
    return template


def template_registry(session: Session) -> list[dict[str, Any]]:
    """Every template with its AlimTalk registration state, for the list on 설정."""
    rows = session.execute(select(Template).order_by(Template.key)).scalars()
    return [
        {
            "템플릿": t.name,
            "구분": "광고" if t.kind == MessageKind.ADVERTISING else "정보성 (알림톡)",
            "알림톡 등록": "광고 (친구톡)"
            if t.kind == MessageKind.ADVERTISING
            else ("등록됨: " + t.alimtalk_template_id if t.alimtalk_template_id else "미등록"),
            "승인 본문": "일치"
            if t.kind == MessageKind.ADVERTISING or t.approved_body == t.body
            else "재승인 필요",
        }
        for t in rows
    ]


def preview(
    session: Session, key: str, customer_id: int | None, body: str | None = None
) -> tuple[str, str | None]:
    """Render a template (or an unsaved body) for a real customer with sample order values.
    Returns (text, problem): problem is the reason the sender would refuse it, or None."""
    from core.messaging.automations import sample_variables

    template = session.execute(select(Template).where(Template.key == key)).scalars().first()
    if template is None:
        raise NotFound(f"템플릿을 찾을 수 없습니다: {key}")
    customer = session.get(Customer, customer_id) if customer_id else None
    variables = sample_variables(session, key, customer)
    draft = Template.model_validate(template.model_dump()) if body is not None else template
    if body is not None:
        draft.body = body
    try:
        return templates.preflight(draft, variables), None
    except templates.TemplateError as exc:
        try:
            return templates.render(draft.body, variables), str(exc)
        except templates.TemplateError as inner:
            return draft.body, str(inner)


def latest_instant(session: Session) -> datetime | None:
    return session.execute(select(func.max(Message.created_at))).scalar_one_or_none()
