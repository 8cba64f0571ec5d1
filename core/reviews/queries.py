"""Review reads: the customer's page behind a link, the 리뷰 screen's list and 답변 대기 count, the
public showcase and its embeddable snippet. Nothing here writes."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import settings_store
from core.clock import as_utc
from core.errors import ValidationFailed
from core.inquiries import policy, sla
from core.models import Order, OrderItem, Product, Review, ReviewPhoto
from core.reviews import labels, rules

SHOWCASE_PAGE = 10
LIST_LIMIT = 500
OTHER_ITEMS_LIMIT = 10


# -- the customer's page ---------------------------------------------------------------------------
@dataclass(frozen=True)
class OtherItem:
    product_name: str
    token: str


@dataclass(frozen=True)
class ReviewLink:
    """What /review?t= shows: the item, the state of the link, the review so far and the shop's answer."""

    state: rules.TokenState
    review_id: int | None = None
    product_name: str = ""
    order_number: str = ""
    rating: int | None = None
    body: str = ""
    has_photo: bool = False
    answer: str | None = None
    editable_until: datetime | None = None
    hidden: bool = False
    others: list[OtherItem] = field(default_factory=list)  # the customer's other items still to review


def link(session: Session, token: str | None, now: datetime) -> ReviewLink:
    if not rules.token_shape_ok(token):
        return ReviewLink(rules.TokenState.MALFORMED)
    review = session.exec(select(Review).where(Review.token == token)).first()
    if review is None:
        return ReviewLink(rules.TokenState.UNKNOWN)
    state = rules.token_state(expires_at=review.token_expires_at, submitted_at=review.submitted_at, now=now)
    item = session.get(OrderItem, review.order_item_id) if review.order_item_id else None
    order = session.get(Order, review.order_id)
    others = session.exec(
        select(OrderItem.product_name, Review.token)
        .join(OrderItem, col(OrderItem.id) == Review.order_item_id)
        .where(
            Review.customer_id == review.customer_id,
            col(Review.submitted_at).is_(None),
            col(Review.token_expires_at) > now,
            Review.id != review.id,
        )
        .order_by(col(Review.id).desc())
        .limit(OTHER_ITEMS_LIMIT)
    ).all()
    return ReviewLink(
        state=state,
        review_id=review.id,
        product_name=item.product_name if item else "",
        order_number=order.order_number if order else "",
        rating=review.rating,
        body=review.body,
        has_photo=review.photo_type is not None,
        answer=review.answer,
        editable_until=rules.edit_until(review.submitted_at) if review.submitted_at else None,
        hidden=review.hidden,
        others=[OtherItem(name, tok) for name, tok in others if tok],
    )


def photo_by_token(session: Session, token: str | None) -> tuple[bytes, str] | None:
    """The photo of the review behind this link (its customer may always see it)."""
    if not rules.token_shape_ok(token):
        return None
    row = session.exec(
        select(ReviewPhoto.data, ReviewPhoto.content_type)
        .join(Review, col(Review.id) == ReviewPhoto.review_id)
        .where(Review.token == token)
    ).first()
    return (row[0], row[1]) if row else None


def public_photo(session: Session, review_id: int) -> tuple[bytes, str] | None:
    """A photo the showcase shows: only of a visible, answered review."""
    row = session.exec(
        select(ReviewPhoto.data, ReviewPhoto.content_type)
        .join(Review, col(Review.id) == ReviewPhoto.review_id)
        .where(Review.id == review_id, *_shown())
    ).first()
    return (row[0], row[1]) if row else None


def _visible() -> tuple[object, ...]:
    return (col(Review.rating).is_not(None), col(Review.hidden).is_(False))


def _shown() -> tuple[object, ...]:
    return (*_visible(), col(Review.answered_at).is_not(None))


# -- the 리뷰 screen ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewFilter:
    ratings: tuple[int, ...] = ()
    product_id: int | None = None
    answered: str = "all"  # labels.ANSWER_FILTERS
    hidden: str = "shown"  # labels.HIDDEN_FILTERS


@dataclass(frozen=True)
class ReviewRow:
    review: Review
    product_name: str
    order_number: str
    customer_name: str
    answer_due_at: datetime | None  # the 답변 대기 deadline (business hours), None once answered


def listing(session: Session, flt: ReviewFilter, now: datetime) -> list[ReviewRow]:
    """Submitted reviews, newest first (at most LIST_LIMIT), with each one's answer deadline."""
    from core.models import Customer

    query = (
        select(Review, OrderItem.product_name, Order.order_number, Customer.name)
        .join(Order, col(Order.id) == Review.order_id)
        .join(Customer, col(Customer.id) == Review.customer_id)
        .outerjoin(OrderItem, col(OrderItem.id) == Review.order_item_id)
        .where(col(Review.rating).is_not(None))
    )
    if flt.ratings:
        query = query.where(col(Review.rating).in_(flt.ratings))
    if flt.product_id is not None:
        query = query.where(Review.product_id == flt.product_id)
    if flt.answered == "waiting":
        query = query.where(col(Review.answered_at).is_(None))
    elif flt.answered == "answered":
        query = query.where(col(Review.answered_at).is_not(None))
    if flt.hidden == "shown":
        query = query.where(col(Review.hidden).is_(False))
    elif flt.hidden == "hidden":
        query = query.where(col(Review.hidden).is_(True))
    rows = session.exec(
        query.order_by(col(Review.submitted_at).desc(), col(Review.id).desc()).limit(LIST_LIMIT)
    ).all()
    target, calendar = answer_target(session)
    return [
        ReviewRow(
            review=review,
            product_name=product or "",
            order_number=number,
            customer_name=name or "",
            answer_due_at=_due(calendar, review.submitted_at, target) if review.answered_at is None else None,
        )
        for review, product, number, name in rows
    ]


def _due(calendar: sla.Calendar, start: datetime | None, target: timedelta) -> datetime | None:
    if start is None:
        return None
    try:
        return sla.deadline(calendar, as_utc(start), target)
    except ValidationFailed:  # a calendar with no open hours: no deadline to show
        return None


def answer_target(session: Session) -> tuple[timedelta, sla.Calendar]:
    """The 답변 대기 target (hours, set on 설정) on the shop's business calendar (the inquiries' one)."""
    hours = settings_store.get(session, rules.ANSWER_TARGET_SETTING, rules.DEFAULT_ANSWER_HOURS)
    return timedelta(hours=int(hours)), policy.load(session).business_calendar


@dataclass(frozen=True)
class Waiting:
    count: int  # visible reviews without an answer
    overdue: int  # of those, past the target
    target_hours: int


def waiting(session: Session, now: datetime) -> Waiting:
    """The 답변 대기 count and how many are past the target, counted like inquiries (business hours).

    The deadline grows with the submission time, so the overdue ones are exactly those submitted at or
    before one cutoff: found by bisection on the SLA engine's own deadline (~45 evaluations, to the
    microsecond the store keeps), then one COUNT, however many reviews wait."""
    target, calendar = answer_target(session)
    base = select(func.count()).select_from(Review).where(*_visible(), col(Review.answered_at).is_(None))
    count = session.exec(base).one()
    cutoff = _overdue_cutoff(calendar, target, now) if count else None
    overdue = session.exec(base.where(col(Review.submitted_at) <= cutoff)).one() if cutoff else 0
    return Waiting(count=count, overdue=overdue, target_hours=int(target.total_seconds() // 3600))


def _overdue_cutoff(calendar: sla.Calendar, target: timedelta, now: datetime) -> datetime | None:
    """The latest submission instant whose deadline has passed at `now` (None when there is none)."""
    low, high = now - target - timedelta(days=400), now  # deadline(low) < now <= deadline(high)
    try:
        if (sla.deadline(calendar, low, target) or now) >= now:
            return None
    except ValidationFailed:
        return None
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        due = sla.deadline(calendar, middle, target)
        if due is not None and due < now:
            low = middle
        else:
            high = middle
    return low


def products_with_reviews(session: Session) -> list[tuple[int, str]]:
    """(product id, name) of every product with a submitted review (the screen's product filter)."""
    rows = session.exec(
        select(Product.id, Product.name)
        .where(
            col(Product.id).in_(select(Review.product_id).where(col(Review.rating).is_not(None)).distinct())
        )
        .order_by(Product.name)
    ).all()
    return [(pid, name) for pid, name in rows if pid is not None]


# -- the showcase ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShownReview:
    id: int
    rating: int
    body: str
    answer: str
    submitted_at: datetime
    has_photo: bool


@dataclass(frozen=True)
class Showcase:
    product_id: int
    product_name: str
    average: float | None  # over every visible review (an unanswered one counts too: the figure is honest)
    count: int
    shown: int  # visible and answered: the ones listed
    page: int
    pages: int
    reviews: list[ShownReview]


def showcase(session: Session, product_id: int, page: int = 1) -> Showcase | None:
    """A product's public reviews page: the visible, answered reviews, newest first, SHOWCASE_PAGE a page."""
    product = session.get(Product, product_id)
    if product is None or product.deleted_at is not None:
        return None
    count, average = session.exec(
        select(func.count(), func.avg(Review.rating)).where(Review.product_id == product_id, *_visible())
    ).one()
    shown = session.exec(
        select(func.count()).select_from(Review).where(Review.product_id == product_id, *_shown())
    ).one()
    pages = max(1, math.ceil(shown / SHOWCASE_PAGE))
    page = min(max(1, page), pages)
    rows = session.exec(
        select(Review.id, Review.rating, Review.body, Review.answer, Review.submitted_at, Review.photo_type)
        .where(Review.product_id == product_id, *_shown())
        .order_by(col(Review.submitted_at).desc(), col(Review.id).desc())
        .offset((page - 1) * SHOWCASE_PAGE)
        .limit(SHOWCASE_PAGE)
    ).all()
    return Showcase(
        product_id=product_id,
        product_name=product.name,
        count=count,
        shown=shown,
        page=page,
        pages=pages,
        average=round(float(average), 1) if average is not None else None,
        reviews=[ShownReview(i, r, b, a or "", s, p is not None) for i, r, b, a, s, p in rows],  # type: ignore[arg-type]
    )


def snippet(view: Showcase, url: str, limit: int = 3) -> str:
    """The embeddable snippet the owner copies: plain HTML, every value escaped, no script, no style
    sheet, no image (a page it is pasted into can neither be broken nor tracked through it)."""
    esc = html.escape
    lines = [
        '<div class="channeldesk-reviews">',
        f"<p><strong>{esc(view.product_name)}</strong> 고객 후기</p>",
    ]
    if view.average is not None:
        lines.append(
            f"<p>{esc(labels.stars(round(view.average)))} {view.average:.1f}점 (후기 {view.count:,}개)</p>"
        )
    lines.append("<ul>")
    for review in view.reviews[:limit]:
        lines.append(f"<li>{esc(labels.stars(review.rating))} {esc(review.body[:200])}</li>")
    lines.append("</ul>")
    lines.append(f'<p><a href="{esc(url, quote=True)}" rel="noopener">후기 모두 보기</a></p>')
    lines.append("</div>")
    return "\n".join(lines)
