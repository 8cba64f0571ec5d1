"""The worker's entry point for rewards (registered in core/jobs.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select

from core.db import session_scope
from core.models import Coupon, Payment, PaymentLink, PaymentLinkStatus, PaymentStatus, PointEntry
from core.rewards.discounts import release_discounts

# A KakaoPay tid lives about 15 minutes: a checkout still READY an hour after its discount was held
# was abandoned (the tab closed); its approve can no longer come.
ABANDONED_AFTER = timedelta(hours=1)


def release_abandoned_discounts(engine: Engine, now: datetime) -> dict[str, int]:
    """Coupons and points held by checkouts that expired or were abandoned (no approve an hour after
    the hold) are free again; never one whose approve was sent. (A cancel or fail return releases at
    once, on the page: web/customer/pay.py.)"""
    stale = now - ABANDONED_AFTER

    def holds(since: datetime | None):  # type: ignore[no-untyped-def]
        coupons = select(Coupon.payment_link_id).where(
            Coupon.payment_link_id.is_not(None),
            Coupon.redeemed_order_id.is_(None),  # type: ignore[union-attr]
        )
        points = select(PointEntry.payment_link_id).where(
            PointEntry.payment_link_id.is_not(None),
            PointEntry.order_id.is_(None),  # type: ignore[union-attr]
        )
        if since is not None:
            coupons = coupons.where(Coupon.redeemed_at <= since)  # type: ignore[operator]
            points = points.where(PointEntry.created_at <= since)
        return coupons.union(points)

    released = 0
    with session_scope(engine) as session:
        links = session.scalars(
            select(PaymentLink)
            .outerjoin(Payment, Payment.idempotency_key == "link:" + PaymentLink.code)
            .where(
                PaymentLink.id.in_(holds(None)),  # type: ignore[union-attr]
                PaymentLink.status != PaymentLinkStatus.PAID.value,
                or_(Payment.id.is_(None), Payment.status == PaymentStatus.READY.value),  # type: ignore[union-attr]
                or_(PaymentLink.status == PaymentLinkStatus.EXPIRED.value, PaymentLink.id.in_(holds(stale))),  # type: ignore[attr-defined,union-attr]
            )
            .limit(1000)
        ).all()
        for link in links:
            if release_discounts(session, link):
                released += 1
    return {"released": released}
