"""The demo's reviews beyond the generator's: a few answered, one negative with its inquiry, so every
action on the 리뷰 screen has something to act on (issue 20). A handful of rows: the 1M seed stays fast."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core.demo.catalog import REVIEW_ANSWERS
from core.models import Review, Role, StaffUser
from core.reviews import service

ANSWERED = 4


def seed_reviews(session: Session, now: datetime) -> dict[str, int]:
    owner = session.exec(select(StaffUser.id).where(StaffUser.role == Role.OWNER.value)).first()
    recent = session.exec(
        select(Review)
        .where(col(Review.rating) >= 4)
        .order_by(col(Review.submitted_at).desc())
        .limit(ANSWERED)
    ).all()
    for n, review in enumerate(recent):
        review.answer = REVIEW_ANSWERS[n % len(REVIEW_ANSWERS)]
        review.answered_at = min(now, (review.submitted_at or now) + timedelta(hours=3))
        review.answered_by = owner
        session.add(review)
    negative = session.exec(
        select(Review).where(col(Review.rating) <= 2).order_by(col(Review.submitted_at).desc()).limit(1)
    ).first()
    if negative is not None:
        service.open_negative_inquiry(session, negative)
    session.flush()
    opened = int(negative is not None)
    return {
        "reviews_answered": len(recent),
        "inquiries": opened,
        "inquiry_events": opened,
    }  # its "created" event
