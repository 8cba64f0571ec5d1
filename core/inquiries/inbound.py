"""Inquiries that arrive by themselves: the KakaoTalk chatbot skill and the /help form.

What a customer writes becomes an inquiry the moment they write it, so the SLA clock starts then,
not when staff notice. One service for both channels:

- Who: the chatbot knows a person by their channel key (plusfriendUserKey): found, or created as a
  new customer without a phone. A phone given in the chat is linked to that customer only when no
  other customer has it; a phone AND an order number of that phone's order prove the person, and
  link the channel key to the order's customer (moving what the key wrote before). /help proves the
  same way (phone + order number) or, with "주문 없음", files under the phone's customer unproven
  (the event says so); nothing of any customer is ever shown back.
- What: the type from the keyword rules on 문의 (core.inquiries.service.suggest_type); a customer
  with an open inquiry gets the text appended to it (a 기타 one takes the more specific type).
- Once: the same user with the same text within DUPLICATE_WINDOW adds nothing (Kakao delivers
  again after its 5-second timeout); the log row of the first delivery is the proof, written in the
  same transaction as the inquiry, after the customer row is locked.
- Welcome: a new customer's first inquiry (or the number a chat customer sends later) queues the
  welcome message with the refund policy, once ever (core.messaging.welcome).
- The answer: the promise of the SLA policy for the type ("결제 오류 문의가 접수되었습니다. 평일
  30분 안에 답변드릴게요 (오늘 18:00까지 운영)"), from the same calendar the deadline comes from.

Callers (web/hooks, web/customer) own the transaction; every write is an InquiryEvent and an audit
row under a channel actor ("고객 (카카오톡)", "고객 (문의 페이지)").
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.customers.identity import canonical_mobile, format_mobile
from core.errors import ValidationFailed
from core.inquiries import inbound_log, policy, service, sla
from core.messaging import welcome
from core.models import Customer, Inquiry, InquiryType, Order, Role
from core.models.inquiries import INQUIRY_TYPE_LABELS

# Channel actors: the services' role check passes (the customer is allowed to write to their own
# inquiry), the audit log names the channel, author_id stays empty (no staff member wrote it).
KAKAO_ACTOR = Actor(id=None, name="고객 (카카오톡)", role=Role.OWNER)
HELP_ACTOR = Actor(id=None, name="고객 (문의 페이지)", role=Role.OWNER)

DUPLICATE_WINDOW = timedelta(minutes=5)
MAX_TEXT = service.MAX_TEXT
TRUNCATED_MARK = "\n…(이하 생략: 너무 긴 메시지)"
NEW_CUSTOMER_NAME = "카카오톡 고객"
WEEKDAY_NAMES = "월화수목금토일"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ORDER_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{4,39}$")


class NotProven(ValidationFailed):
    """The phone and the order number do not belong together (said the same way whichever is wrong)."""


@dataclass(frozen=True)
class Received:
    """What became of one inbound message: the inquiry, the answer to give, and what happened."""

    outcome: str  # created, appended, duplicate, phone_linked, linked
    customer_id: int
    inquiry_id: int | None
    inquiry_type: str | None
    reply: str
    truncated: bool = False


# --------------------------------------------------------------------------- text and identity


def clean_text(raw: str) -> tuple[str, bool]:
    """Customer text as stored: NFC, control characters (NUL and the like) dropped, newlines kept,
    at most MAX_TEXT characters (longer: cut with a visible mark). HTML and emoji stay verbatim;
    every screen shows text as text."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    if len(text) > MAX_TEXT:
        return text[: MAX_TEXT - len(TRUNCATED_MARK)] + TRUNCATED_MARK, True
    return text, False


def canonical_phone(raw: str | None) -> str | None:
    """A Korean mobile number in its canonical form (01012345678), or None (core.customers.identity)."""
    return canonical_mobile(raw)


def customer_by_phone(session: Session, phone: str) -> Customer | None:
    """The customer of a canonical mobile number (rows from before customer.mobile: by phone)."""
    return session.exec(
        select(Customer)
        .where(or_(Customer.mobile == phone, col(Customer.phone).in_([phone, format_mobile(phone)])))
        .order_by(col(Customer.id))
    ).first()


def _phone_of(customer: Customer) -> str | None:
    return customer.mobile or canonical_phone(customer.phone)


def _set_phone(customer: Customer, phone: str) -> None:
    customer.mobile = phone
    customer.phone = format_mobile(phone)


def proven_order(session: Session, phone: str | None, order_number: str | None) -> Order | None:
    """The order with this number whose customer has this phone, else None (no hint which is wrong)."""
    if not phone or not order_number:
        return None
    number = unicodedata.normalize("NFKC", order_number).strip()
    if not number or len(number) > 40:
        return None
    order = session.exec(select(Order).where(Order.order_number == number)).first()
    if order is None:
        return None
    customer = session.get(Customer, order.customer_id)
    if customer is None or _phone_of(customer) != phone:
        return None
    return order


def _lock(session: Session, customer_id: int) -> Customer:
    """The customer row, locked on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers):
    two deliveries of the same message then run one after the other, and the second sees the first."""
    statement = select(Customer).where(Customer.id == customer_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    return session.exec(statement.execution_options(populate_existing=True)).one()


def customer_for_kakao(session: Session, user_key: str, *, is_friend: bool | None = None) -> Customer:
    """The customer of this channel key, created (no name, no phone yet) on first contact."""
    found = session.exec(select(Customer).where(Customer.kakao_user_key == user_key)).first()
    if found is None:
        try:
            with session.begin_nested():
                found = Customer(name=NEW_CUSTOMER_NAME, kakao_user_key=user_key,
                                 is_channel_friend=bool(is_friend) if is_friend is not None else True)
                session.add(found)
                session.flush()
            audit.record(session, KAKAO_ACTOR, "customer.create", "customer", found.id, source="kakao_skill")
        except IntegrityError:  # the same person's other delivery created it a moment ago
            found = session.exec(select(Customer).where(Customer.kakao_user_key == user_key)).one()
    return _lock(session, found.id)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the promise


def _duration_words(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}시간 {rest}분"
    if hours:
        return f"{hours}시간"
    return f"{max(minutes, 1)}분"


def _when(instant: datetime, now: datetime) -> str:
    local, today = clock.to_kst(instant), clock.to_kst(now).date()
    if local.date() == today:
        return f"오늘 {local:%H:%M}"
    if local.date() == today + timedelta(days=1):
        return f"내일 {local:%H:%M}"
    return f"{local.month}월 {local.day}일({WEEKDAY_NAMES[local.weekday()]}) {local:%H:%M}"


def _hours_word(calendar: sla.Calendar) -> str:
    open_days = [i for i, windows in enumerate(calendar.weekly) if windows]
    return "평일" if open_days == [0, 1, 2, 3, 4] else "운영 시간 중"


def promise(session: Session, inquiry: Inquiry, now: datetime | None = None,
            config: policy.SlaConfig | None = None) -> str:
    """The answer the customer gets: received, and by when a person answers (from the SLA policy)."""
    now = now or clock.now()
    config = config or policy.load(session)
    pol = config.policy(inquiry.type, vip=bool(inquiry.vip))  # a VIP is promised the VIP target
    label = INQUIRY_TYPE_LABELS.get(InquiryType(inquiry.type), "문의")
    head = f"{label} 문의가 접수되었습니다."
    within = _duration_words(pol.first_response)
    if pol.calendar == "24/7":
        return f"{head} {within} 안에 답변드릴게요."
    calendar = config.business_calendar
    if calendar.is_open_at(now):
        day = clock.to_kst(now).date()
        closes = max(end for _start, end in calendar.windows_on(day))
        return f"{head} {_hours_word(calendar)} {within} 안에 답변드릴게요 (오늘 {clock.to_kst(closes):%H:%M}까지 운영)."
    opens = sla.next_open_at(calendar, now)
    due = inquiry.first_response_due_at
    until = f", {_when(due, now)}까지" if due is not None else ""
    return (f"{head} 지금은 운영 시간이 아니에요. {_when(opens, now)}부터 {within} 안에{until} "
            f"답변드릴게요.")


def _appended_reply(session: Session, inquiry: Inquiry, now: datetime) -> str:
    if inquiry.first_response_at is None:
        return promise(session, inquiry, now).replace("문의가 접수되었습니다.", "문의에 내용을 덧붙였어요.", 1)
    return f"{inquiry.id}번 문의에 내용을 덧붙였어요. 담당자가 확인하고 답변드릴게요."


# --------------------------------------------------------------------------- opening / appending


def _open_inquiry_of(session: Session, customer_id: int) -> Inquiry | None:
    return session.exec(
        select(Inquiry)
        .where(Inquiry.customer_id == customer_id, col(Inquiry.status).in_(service.OPEN_STATUSES))
        .order_by(col(Inquiry.created_at).desc(), col(Inquiry.id).desc())
        .limit(1)
    ).first()


def file_message(
    session: Session,
    actor: Actor,
    customer: Customer,
    text: str,
    *,
    source: str,
    inquiry_type: str | None = None,
    order_id: int | None = None,
    evidence: dict[str, object] | None = None,
) -> tuple[str, Inquiry]:
    """Open an inquiry, or append to the customer's open one: ("created" | "appended", inquiry)."""
    suggested = inquiry_type or service.suggest_type(text, service.type_keywords(session)).value
    current = _open_inquiry_of(session, customer.id)  # type: ignore[arg-type]
    if current is not None and (order_id is None or current.order_id in (None, order_id)):
        service.customer_message(session, actor, current.id, text)  # type: ignore[arg-type]
        if current.type == InquiryType.OTHER and suggested != InquiryType.OTHER:
            service.change_type(session, actor, current.id, suggested)  # type: ignore[arg-type]
        if order_id is not None and current.order_id is None:
            current.order_id = order_id
            session.add(current)
        return "appended", current
    inquiry = service.create_inquiry(
        session, actor, customer_id=customer.id, body=text, inquiry_type=suggested,  # type: ignore[arg-type]
        order_id=order_id, source=source, evidence=evidence,
    )
    welcome.offer(session, customer.id, inquiry.created_at)  # type: ignore[arg-type]  # a first inquiry
    return "created", inquiry


def _move_to(session: Session, old: Customer, new: Customer, user_key: str) -> None:
    """A proven channel key joins the order's customer; what it wrote before moves along."""
    if old.id == new.id:
        return
    moved = session.execute(
        update(Inquiry).where(col(Inquiry.customer_id) == old.id).values(customer_id=new.id)
    ).rowcount
    old.kakao_user_key = None
    session.add(old)
    session.flush()
    new.kakao_user_key = user_key
    session.add(new)
    session.flush()
    audit.record(session, KAKAO_ACTOR, "customer.kakao_linked", "customer", new.id, from_customer=old.id,
                 inquiries_moved=int(moved or 0))


def _find_phone_and_order(session: Session, text: str) -> tuple[str | None, Order | None]:
    """A phone in the text (a token, or the whole text), and the order it proves, if any."""
    normal = unicodedata.normalize("NFKC", text)
    if len(normal) > 200:  # a phone and an order number are short; a letter is not a proof
        return None, None
    tokens = [t for t in re.split(r"[\s,/]+", normal) if t]
    phone = canonical_phone(normal.strip()) or next((p for p in map(canonical_phone, tokens) if p), None)
    if phone is None:
        return None, None
    for token in tokens[:10]:
        if _ORDER_TOKEN.match(token) and canonical_phone(token) is None:
            order = proven_order(session, phone, token)
            if order is not None:
                return phone, order
    return phone, None


def receive_kakao(
    session: Session,
    *,
    user_key: str,
    utterance: str,
    is_friend: bool | None = None,
    started: float | None = None,
    address: str = "",
    now: datetime | None = None,
) -> Received:
    """One chatbot utterance: file it (once) and say what happens next. Writes the log row too."""
    started = started if started is not None else time.perf_counter()
    now = now or clock.now()
    request_digest = inbound_log.digest(user_key, utterance)
    text, truncated = clean_text(utterance)
    customer = customer_for_kakao(session, user_key, is_friend=is_friend)
    first = inbound_log.seen_within(session, "kakao_skill", request_digest, DUPLICATE_WINDOW,
                                    ("created", "appended", "phone_linked", "linked"))
    if first is not None:
        inquiry = session.get(Inquiry, first.inquiry_id) if first.inquiry_id else None
        reply = _kakao_reply(session, first.outcome, inquiry, customer, truncated, now) if inquiry else "확인했어요."
        result = Received("duplicate", customer.id, first.inquiry_id,  # type: ignore[arg-type]
                          inquiry.type if inquiry else None, reply, truncated)
        _log_kakao(session, result, request_digest, started, address, len(utterance))
        return result
    if not text.strip():
        raise ValidationFailed("내용이 비어 있습니다")
    phone, order = _find_phone_and_order(session, text)
    outcome_prefix = ""
    order_id = None
    if order is not None:
        owner = _lock(session, order.customer_id)
        _move_to(session, customer, owner, user_key)
        customer, order_id = owner, order.id
        outcome_prefix = "linked"
    elif phone is not None and _phone_of(customer) != phone:
        other = customer_by_phone(session, phone)
        if other is None or other.id == customer.id:
            _set_phone(customer, phone)
            session.add(customer)
            audit.record(session, KAKAO_ACTOR, "customer.phone_linked", "customer", customer.id)
            welcome.offer(session, customer.id, now)  # type: ignore[arg-type]  # wrote before, had no number
            outcome_prefix = "phone_linked"
        else:  # someone else's number: proof needed, nothing linked, nothing shown
            result = Received(
                "phone_linked", customer.id, None, None,  # type: ignore[arg-type]
                "이 번호로 주문하신 적이 있으면 본인 확인을 위해 번호와 주문번호를 함께 보내 주세요 "
                "(예: 010-1234-5678 20261101-0001).",
            )
            _log_kakao(session, result, request_digest, started, address, len(utterance), proof_needed=True)
            return result
    keywords = service.type_keywords(session)
    if outcome_prefix and len(text) <= 200 and service.suggest_type(text, keywords) == InquiryType.OTHER \
            and _open_inquiry_of(session, customer.id) is not None:  # type: ignore[arg-type]
        # Only a number (and an order number) in answer to our question: linked, not a new message.
        current = _open_inquiry_of(session, customer.id)  # type: ignore[arg-type]
        if order_id is not None and current is not None and current.order_id is None:
            current.order_id = order_id
            session.add(current)
        result = Received(outcome_prefix, customer.id, current.id if current else None,  # type: ignore[arg-type]
                          current.type if current else None,
                          "확인했어요. 답변은 이 번호로 알림톡으로도 보내드릴게요.", truncated)
        _log_kakao(session, result, request_digest, started, address, len(utterance))
        return result
    outcome, inquiry = file_message(
        session, KAKAO_ACTOR, customer, text, source="kakao", order_id=order_id,
        evidence={"channel": "kakao_skill", "truncated": truncated, "proven_order": order_id},
    )
    reply = _kakao_reply(session, outcome, inquiry, customer, truncated, now)
    result = Received(outcome, customer.id, inquiry.id, inquiry.type, reply, truncated)  # type: ignore[arg-type]
    _log_kakao(session, result, request_digest, started, address, len(utterance))
    return result


def _kakao_reply(session: Session, outcome: str, inquiry: Inquiry, customer: Customer, truncated: bool,
                 now: datetime) -> str:
    """The chat answer: the promise (or "added to your inquiry"), a request for a phone while we have
    none (the staff reply goes out as AlimTalk), and a note when the text was cut."""
    reply = promise(session, inquiry, now) if outcome == "created" else _appended_reply(session, inquiry, now)
    if not _phone_of(customer):
        reply += "\n답변을 알림톡으로도 받으시려면 휴대폰 번호를 보내 주세요 (예: 010-1234-5678)."
    if truncated:
        reply += f"\n메시지가 너무 길어 앞의 {MAX_TEXT:,}자까지만 접수했어요."
    return reply


def _log_kakao(session: Session, result: Received, request_digest: str, started: float, address: str,
               length: int, **detail: object) -> None:
    inbound_log.record(
        session, channel="kakao_skill", status_code=200, outcome=result.outcome, verified=True,
        started=started, address=address, inquiry_id=result.inquiry_id, customer_id=result.customer_id,
        digest=request_digest, length=length, type=result.inquiry_type, **detail,
    )


def answer_test(session: Session, utterance: str, *, started: float | None = None, address: str = "") -> Received:
    """The 설정 test button's request: classified and answered like a customer's, logged as "test",
    nothing filed (an inquiry that is never saved gives the promise its deadline)."""
    started = started if started is not None else time.perf_counter()
    text, truncated = clean_text(utterance)
    now = clock.now()
    suggested = service.suggest_type(text, service.type_keywords(session)).value
    draft = Inquiry(customer_id=0, type=suggested, subject="", created_at=now)
    config = policy.load(session)
    service.apply_sla(draft, service.evaluate(draft, [], config, now))
    result = Received("test", 0, None, draft.type, promise(session, draft, now), truncated)
    inbound_log.record(session, channel="kakao_skill", status_code=200, outcome="test", verified=True,
                       started=started, address=address, type=draft.type)
    return result


# --------------------------------------------------------------------------- /help


HELP_TYPES = (
    InquiryType.PAYMENT_ERROR,
    InquiryType.DOUBLE_CHARGE,
    InquiryType.REFUND_REQUEST,
    InquiryType.RECEIPT_REQUEST,
    InquiryType.OTHER,
)


def receive_help(
    session: Session,
    *,
    phone_raw: str,
    order_number: str | None,
    inquiry_type: str,
    text: str,
    started: float | None = None,
    address: str = "",
    now: datetime | None = None,
) -> Received:
    """The /help form: proven by phone + order number (or "주문 없음": filed under the phone, marked
    unproven). Raises ValidationFailed / NotProven with the Korean reason; writes the log row."""
    started = started if started is not None else time.perf_counter()
    now = now or clock.now()
    phone = canonical_phone(phone_raw)
    if phone is None:
        raise ValidationFailed("휴대폰 번호를 확인해 주세요 (예: 010-1234-5678)")
    if inquiry_type not in {t.value for t in HELP_TYPES}:
        raise ValidationFailed("문의 유형을 골라 주세요")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"내용은 {MAX_TEXT:,}자까지 쓸 수 있어요 (지금 {len(text):,}자)")
    body, _ = clean_text(text)
    if not body.strip():
        raise ValidationFailed("문의 내용을 써 주세요")
    order = None
    if order_number:
        order = proven_order(session, phone, order_number)
        if order is None:
            raise NotProven("주문번호와 휴대폰 번호가 맞는 주문을 찾지 못했어요. 다시 확인해 주세요.")
        customer = _lock(session, order.customer_id)
    else:
        customer = customer_by_phone(session, phone)
        if customer is None:
            customer = Customer(name="문의 고객")
            _set_phone(customer, phone)
            session.add(customer)
            session.flush()
            audit.record(session, HELP_ACTOR, "customer.create", "customer", customer.id, source="help")
        customer = _lock(session, customer.id)  # type: ignore[arg-type]
    request_digest = inbound_log.digest(phone, order_number or "", inquiry_type, body)
    first = inbound_log.seen_within(session, "help", request_digest, DUPLICATE_WINDOW, ("created", "appended"))
    if first is not None and first.inquiry_id:
        inquiry = session.get(Inquiry, first.inquiry_id)
        assert inquiry is not None
        result = Received("duplicate", customer.id, inquiry.id, inquiry.type, promise(session, inquiry, now))  # type: ignore[arg-type]
        _log_help(session, result, request_digest, phone, started, address, len(text), order is not None)
        return result
    outcome, inquiry = file_message(
        session, HELP_ACTOR, customer, body, source="help", inquiry_type=inquiry_type,
        order_id=order.id if order else None,
        evidence={"channel": "help", "proven": order is not None},
    )
    reply = promise(session, inquiry, now) if outcome == "created" else _appended_reply(session, inquiry, now)
    result = Received(outcome, customer.id, inquiry.id, inquiry.type, reply)  # type: ignore[arg-type]
    _log_help(session, result, request_digest, phone, started, address, len(text), order is not None)
    return result


def phone_subject(phone: str) -> str:
    """The throttle's key for a phone (a digest: the log never holds the number)."""
    return inbound_log.digest("phone", phone)


def _log_help(session: Session, result: Received, request_digest: str, phone: str, started: float,
              address: str, length: int, proven: bool) -> None:
    inbound_log.record(
        session, channel="help", status_code=200, outcome=result.outcome, verified=proven, started=started,
        address=address, inquiry_id=result.inquiry_id, customer_id=result.customer_id, digest=request_digest,
        subject=phone_subject(phone), length=length, type=result.inquiry_type,
    )


# --------------------------------------------------------------------------- /help throttles

# Per address: a person writes a few messages a minute at most; 1,000 a minute is a script.
# Per phone: nobody needs more than this many inquiries in ten minutes (and guessing order numbers
# for someone's phone is slowed to a crawl).
ADDRESS_LIMIT, ADDRESS_WINDOW = 10, timedelta(minutes=1)
PHONE_LIMIT, PHONE_WINDOW = 5, timedelta(minutes=10)


def help_throttled(session: Session, *, address: str, phone: str | None) -> bool:
    """True when this address, or this phone, has sent too many /help posts lately (every post
    counts, refused ones too, so a flood stays refused)."""
    now = clock.now()
    if address and inbound_log.count_since(session, "help", since=now - ADDRESS_WINDOW, address=address) \
            >= ADDRESS_LIMIT:
        return True
    return bool(phone) and inbound_log.count_since(
        session, "help", since=now - PHONE_WINDOW, subject=phone_subject(phone)  # type: ignore[arg-type]
    ) >= PHONE_LIMIT
