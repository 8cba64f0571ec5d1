"""Review writes: the links a review request carries, the customer's submission and edits, the
staff's answer and hiding, the answer's SLA target. Callers own the transaction (session_scope).

Nothing twice, without read-then-write: a link row per order item (unique order_item_id and token),
the first submission is a conditional UPDATE (`submitted_at IS NULL`), so two tabs posting at once
make one review (the second becomes an edit); the answer's message has the unique key
`review_answer:{id}`; the inquiry of a 1-2 star review has the dedupe key `review:{id}` and is looked
for only after our UPDATE holds the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import settings_store
from core.accounts import audit
from core.accounts.actor import SYSTEM_ACTOR, Actor, require_role
from core.clock import format_kst
from core.config import get_settings
from core.errors import NotFound, ValidationFailed
from core.inquiries import service as inquiries
from core.messaging import outbox
from core.models import Customer, MessageKind, Order, OrderItem, Review, ReviewPhoto, Role
from core.models.inquiries import InquiryType
from core.reviews import labels, photos, rules
from core.rewards import service as rewards


class LinkRefused(ValidationFailed):
    """The review link cannot take a submission now; `state` says why (the page picks the status)."""

    def __init__(self, state: rules.TokenState) -> None:
        super().__init__(labels.LINK_REFUSALS[state])
        self.state = state


# -- the links a review request carries ------------------------------------------------------------
def issue_links(session: Session, orders: Sequence[Order], now: datetime) -> str | None:
    """Make sure every item of these paid orders has its review link; return the token the message
    links to (the latest order's first item still without a review; its page lists the others).

    Called by the review request and its reminder (core.messaging.automations, passed in by
    core.reviews.jobs). A second call returns the same tokens: the row per item is unique."""
    order_ids = [o.id for o in orders if o.id is not None and o.paid_at is not None]
    if not order_ids:
        return None
    items = session.exec(select(OrderItem).where(col(OrderItem.order_id).in_(order_ids))).all()
    by_item = {
        r.order_item_id: r
        for r in session.exec(
            select(Review).where(col(Review.order_item_id).in_([i.id for i in items]))
        ).all()
    }
    paid = {o.id: o for o in orders}
    for item in items:
        if item.id in by_item:
            continue
        order = paid[item.order_id]
        row = Review(
            order_id=item.order_id,
            customer_id=order.customer_id,
            product_id=item.product_id,
            order_item_id=item.id,
            token=rules.new_token(),
            token_expires_at=rules.token_expires_at(order.paid_at),
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another worker made this item's link first: use theirs
            row = session.exec(select(Review).where(Review.order_item_id == item.id)).one()
        by_item[item.id] = row
    for order in sorted(orders, key=lambda o: o.id or 0, reverse=True):
        for item in sorted((i for i in items if i.order_id == order.id), key=lambda i: i.id or 0):
            review = by_item.get(item.id)
            if review is not None and review.rating is None and review.token:
                return review.token
    return None


# -- the customer's submission ---------------------------------------------------------------------
@dataclass(frozen=True)
class Submitted:
    review_id: int
    first: bool  # the first submission (False: an edit, or the second of two tabs)
    inquiry_id: int | None  # the inquiry a 1-2 star review opened (now or before)


def submit(
    session: Session,
    *,
    token: str,
    rating: object,
    text: str | None,
    photo: bytes | None = None,
    remove_photo: bool = False,
    now: datetime,
) -> Submitted:
    """The customer's review through their link: checked whole before anything is written."""
    if not rules.token_shape_ok(token):
        raise LinkRefused(rules.TokenState.MALFORMED)
    stars = rules.check_rating(rating)
    body = rules.check_text(text)
    cleaned = photos.clean_photo(photo) if photo else None
    review = session.exec(select(Review).where(Review.token == token)).first()
    if review is None:
        raise LinkRefused(rules.TokenState.UNKNOWN)
    state = rules.token_state(expires_at=review.token_expires_at, submitted_at=review.submitted_at, now=now)
    if state in (rules.TokenState.EXPIRED, rules.TokenState.LOCKED):
        raise LinkRefused(state)
    values = {"rating": stars, "body": body, "updated_at": now}
    if cleaned is not None:
        values["photo_type"] = cleaned[1]
    elif remove_photo:
        values["photo_type"] = None
    first = _update(session, review.id, values | {"submitted_at": now}, col(Review.submitted_at).is_(None))
    # Already submitted (earlier, or by the other tab a moment ago): an edit, inside the 7 days only.
    if not first and not _update(
        session, review.id, values, col(Review.submitted_at) >= rules.edit_window_start(now)
    ):
        raise LinkRefused(rules.TokenState.LOCKED)
    if cleaned is not None or remove_photo:
        session.execute(delete(ReviewPhoto).where(col(ReviewPhoto.review_id) == review.id))
    if cleaned is not None:
        session.add(
            ReviewPhoto(review_id=review.id, content_type=cleaned[1], data=cleaned[0], created_at=now)
        )
    session.flush()
    session.refresh(review)  # our UPDATE holds the row: what we read now no other submission can change
    inquiry_id = review.inquiry_id
    if inquiry_id is None and rules.is_negative(stars):
        inquiry_id = open_negative_inquiry(session, review)
    if body:
        # The owner's reward for a review with text, once per order item: also when the text comes
        # in an edit (a first submission of stars only earns nothing yet).
        rewards.reward_for_review(session, review_id=review.id, now=now)  # type: ignore[arg-type]
    return Submitted(review_id=review.id, first=first, inquiry_id=inquiry_id)  # type: ignore[arg-type]


def _update(session: Session, review_id: int | None, values: dict[str, object], condition: object) -> bool:
    result = session.execute(update(Review).where(col(Review.id) == review_id, condition).values(**values))  # type: ignore[arg-type]
    return result.rowcount == 1  # type: ignore[attr-defined]


def open_negative_inquiry(session: Session, review: Review) -> int:
    """A 1-2 star review becomes an inquiry on the 문의 desk, once (dedupe key), linked both ways.
    (submit calls it holding the review's row; the demo seed calls it for its one negative review.)"""
    item = session.get(OrderItem, review.order_item_id) if review.order_item_id else None
    order = session.get(Order, review.order_id)
    name = item.product_name if item else "상품"
    body = labels.negative_inquiry_body(
        stars=review.rating or 0,
        product=name,
        order_number=order.order_number if order else "-",
        text=review.body,
    )
    inquiry = inquiries.create_inquiry(
        session,
        SYSTEM_ACTOR,
        customer_id=review.customer_id,
        body=body,
        inquiry_type=InquiryType.OTHER.value,
        subject=f"낮은 별점 리뷰 ({review.rating}점) · {name}"[:200],
        order_id=review.order_id,
        source="review",
        dedupe_key=f"review:{review.id}",
    )
    session.execute(update(Review).where(col(Review.id) == review.id).values(inquiry_id=inquiry.id))
    return inquiry.id  # type: ignore[return-value]


# -- the staff's answer and hiding -----------------------------------------------------------------
def _staff(actor: Actor) -> None:
    require_role(actor, Role.CS, Role.OWNER)


def _submitted(session: Session, review_id: int) -> Review:
    review = session.get(Review, review_id)
    if review is None or review.rating is None:
        raise NotFound(f"리뷰를 찾을 수 없습니다 (#{review_id})")
    return review


def review_url(token: str | None, path: str = "/review?t=") -> str:
    """The public address of a review link (PUBLIC_BASE_URL + /review?t=…)."""
    return f"{get_settings().public_base_url.rstrip('/')}{path}{token or ''}"


def answer(session: Session, actor: Actor, review_id: int, text: str, *, now: datetime) -> Review:
    """The shop's answer: shown on the customer's review page and sent to them once as an
    informational message (key review_answer:{id}; a corrected answer shows on the page, is not resent)."""
    _staff(actor)
    body = rules.check_text(text, limit=rules.MAX_ANSWER, what="답변")
    if not body:
        raise ValidationFailed("답변을 써 주세요.")
    review = _submitted(session, review_id)
    first = review.answered_at is None
    review.answer = body
    review.answered_by = actor.id
    if first:
        review.answered_at = now
    session.add(review)
    item = session.get(OrderItem, review.order_item_id) if review.order_item_id else None
    customer = session.get(Customer, review.customer_id)
    link = (
        review_url(review.token)
        if review.token
        else review_url(str(review.product_id or ""), "/reviews?product=")
    )
    words = {
        "customer": customer.name if customer else "고객",
        "product": item.product_name if item else "상품",
    }
    outbox.enqueue(
        session,
        customer_id=review.customer_id,
        template_key="review_answer",
        kind=MessageKind.INFORMATIONAL,
        variables={"고객명": words["customer"], "상품명": words["product"], "답변": body, "리뷰링크": link},
        text=labels.answer_message(**words, answer=body, review_url=link),
        idempotency_key=f"review_answer:{review.id}",
        send_after=now,
    )
    audit.record(session, actor, "review.answer", "review", review.id, first=first, length=len(body))
    return review


def set_hidden(
    session: Session, actor: Actor, review_id: int, hidden: bool, reason: str = "", *, now: datetime
) -> Review:
    """Hide an abusive review from every public page (a reason is required), or show it again; audited."""
    _staff(actor)
    why = rules.check_text(reason, limit=rules.MAX_HIDE_REASON, what="사유")
    if hidden and not why:
        raise ValidationFailed("숨기는 사유를 써 주세요 (예: 욕설, 개인정보 노출).")
    review = _submitted(session, review_id)
    review.hidden = hidden
    review.hidden_reason = why if hidden else review.hidden_reason
    review.hidden_by = actor.id
    review.hidden_at = now
    session.add(review)
    audit.record(
        session,
        actor,
        "review.hide" if hidden else "review.show",
        "review",
        review.id,
        reason=why,
        at=format_kst(now),
    )
    return review


def save_answer_target(session: Session, actor: Actor, hours: object) -> int:
    """The 답변 대기 SLA target in business hours (owner only, audited by the settings store)."""
    value = rules.check_answer_hours(hours)
    settings_store.put(session, actor, rules.ANSWER_TARGET_SETTING, value)
    return value
