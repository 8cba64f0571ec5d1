"""Campaign results: clicks, conversions attributed to a variant, per-variant figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel import Session

from core import clock
from core.campaigns.queries import _get
from core.campaigns.segments import _paid
from core.campaigns.tables import ORD, C, K, M, R
from core.models import Campaign, CampaignClick, CampaignRecipient, MessageStatus, Order, RecipientGroup

# ---------------------------------------------------------------------------------------------
# Clicks and results
# ---------------------------------------------------------------------------------------------


def record_click(
    session: Session, *, campaign_id: Any, public_id: Any, variant: Any = None, now: datetime | None = None
) -> str | None:
    """A click on a tracked link (public page, no login): returns where to send the person.

    The target always comes from the campaign, never from the URL, so the link cannot be turned into
    an open redirect; and it is given only for a link that was really sent: the campaign id is
    sequential, but the recipient's public id (80 random bits) is not, so walking ids reveals no
    draft's target. A forwarded message still works (it carries the recipient's id).
    """
    try:
        campaign = session.get(Campaign, int(campaign_id))
    except (TypeError, ValueError):
        return None
    if campaign is None:
        return None
    target = campaign.options.get("link_url")
    row = session.execute(
        select(C.id, R.variant)
        .join(CampaignRecipient.__table__, and_(R.customer_id == C.id, R.campaign_id == campaign.id))
        .where(C.public_id == str(public_id or ""))
    ).first()
    if row is None:
        return None
    session.add(
        CampaignClick(
            campaign_id=campaign.id,
            customer_id=row.id,
            variant=row.variant,
            clicked_at=now or clock.now(),
        )
    )
    return target


@dataclass
class VariantResult:
    variant: str  # "A".."E", or "대조군"
    group: str
    recipients: int = 0
    skipped: int = 0
    queued: int = 0
    held: int = 0  # held by the sender (night ban, daily ad limit): goes out later, not dropped
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    clicks: int = 0
    clickers: int = 0
    orders: int = 0
    revenue: int = 0
    converted: int = 0  # recipients who ordered within the window (any cause): base of the lift

    @property
    def click_rate(self) -> float:
        base = self.delivered or self.sent
        return self.clickers / base if base else 0.0

    @property
    def conversion_rate(self) -> float:
        base = self.recipients - self.skipped
        return self.converted / base if base else 0.0


@dataclass
class CampaignResults:
    campaign_id: int
    variants: list[VariantResult]
    holdout: VariantResult | None
    lift: float | None  # relative: (treated rate - holdout rate) / holdout rate
    attribution_days: int

    @property
    def total(self) -> VariantResult:
        total = VariantResult("전체", "all")
        for row in self.variants:
            for name in (
                "recipients",
                "skipped",
                "queued",
                "held",
                "sent",
                "delivered",
                "failed",
                "clicks",
                "clickers",
                "orders",
                "revenue",
                "converted",
            ):
                setattr(total, name, getattr(total, name) + getattr(row, name))
            for reason, count in row.failed_by_reason.items():
                total.failed_by_reason[reason] = total.failed_by_reason.get(reason, 0) + count
        return total


def results(session: Session, campaign_id: int, *, now: datetime | None = None) -> CampaignResults:
    """Per variant: recipients, sent, delivered, failed by reason, clicks, orders and revenue
    attributed to a last click within the window, and the lift against the holdout."""
    now = now or clock.now()
    campaign = _get(session, campaign_id)
    window = timedelta(days=int(campaign.options.get("attribution_days", 7)))
    rows: dict[str, VariantResult] = {v["key"]: VariantResult(v["key"], "variant") for v in campaign.variants}
    holdout = VariantResult("대조군", RecipientGroup.HOLDOUT)

    def row_for(variant: str | None, group: str) -> VariantResult:
        return (
            holdout
            if group == RecipientGroup.HOLDOUT
            else rows.setdefault(variant or "-", VariantResult(variant or "-", "variant"))
        )

    for group, variant, skipped, count in session.execute(
        select(R.group, R.variant, R.skipped_reason.is_not(None), func.count())
        .where(R.campaign_id == campaign_id)
        .group_by(R.group, R.variant, R.skipped_reason.is_not(None))
    ).all():
        row = row_for(variant, group)
        row.recipients += count
        if skipped:
            row.skipped += count
    for variant, status, reason, count in session.execute(
        select(M.campaign_variant, M.status, M.reason, func.count())
        .where(M.campaign_id == campaign_id)
        .group_by(M.campaign_variant, M.status, M.reason)
    ).all():
        row = row_for(variant, "variant")
        if status in (MessageStatus.SENT, MessageStatus.DELIVERED):
            row.sent += count
            if status == MessageStatus.DELIVERED:
                row.delivered += count
        elif status in (MessageStatus.FAILED, MessageStatus.SKIPPED):
            row.failed += count
            label = reason or status
            row.failed_by_reason[label] = row.failed_by_reason.get(label, 0) + count
        elif status == MessageStatus.HELD:
            row.held += count
        else:
            row.queued += count
    for variant, clicks, clickers in session.execute(
        select(K.variant, func.count(), func.count(func.distinct(K.customer_id)))
        .where(K.campaign_id == campaign_id)
        .group_by(K.variant)
    ).all():
        row = row_for(variant, "variant")
        row.clicks += clicks
        row.clickers += clickers
    _attribute_orders(session, campaign_id, window, row_for)
    _conversions(session, campaign, window, row_for)
    lift = None
    treated = [r for r in rows.values()]
    base = sum(r.recipients - r.skipped for r in treated)
    converted = sum(r.converted for r in treated)
    if holdout.recipients and base:
        holdout_rate = holdout.conversion_rate
        treated_rate = converted / base
        lift = (treated_rate - holdout_rate) / holdout_rate if holdout_rate else None
    return CampaignResults(
        campaign_id, list(rows.values()), holdout if holdout.recipients else None, lift, window.days
    )


def _attribute_orders(session: Session, campaign_id: int, window: timedelta, row_for: Callable) -> None:
    """Last click wins: an order counts for this campaign when the person's latest click (on any
    campaign) before it was on this campaign and within the window."""
    clickers = select(K.customer_id).where(K.campaign_id == campaign_id).distinct()
    clicks = session.execute(
        select(K.customer_id, K.clicked_at, K.campaign_id, K.variant)
        .where(K.customer_id.in_(clickers))
        .order_by(K.customer_id, K.clicked_at)
    ).all()
    if not clicks:
        return
    first = min(c.clicked_at for c in clicks)
    by_customer: dict[int, list[Any]] = defaultdict(list)
    for click in clicks:
        by_customer[click.customer_id].append(click)
    orders = session.execute(
        select(ORD.customer_id, ORD.ordered_at, ORD.total_amount - ORD.refunded_amount).where(
            _paid(), ORD.customer_id.in_(clickers), ORD.ordered_at >= first
        )
    ).all()
    for customer_id, ordered_at, amount in orders:
        before = [c for c in by_customer[customer_id] if c.clicked_at <= ordered_at]
        if not before:
            continue
        last = before[-1]
        if last.campaign_id == campaign_id and ordered_at - last.clicked_at <= window:
            row = row_for(last.variant, "variant")
            row.orders += 1
            row.revenue += int(amount)


def _conversions(session: Session, campaign: Campaign, window: timedelta, row_for: Callable) -> None:
    """Recipients (and holdout) who ordered within the window after their group was sent."""
    starts = {
        RecipientGroup.TEST: campaign.test_sent_at or campaign.started_at,
        RecipientGroup.HOLDOUT: campaign.started_at,
        RecipientGroup.REST: (
            datetime.fromisoformat(campaign.options["rest_sent_at"])
            if campaign.options.get("rest_sent_at")
            else campaign.started_at
        ),
    }
    for group, start in starts.items():
        if start is None:
            continue
        for variant, count in session.execute(
            select(R.variant, func.count(func.distinct(R.customer_id)))
            .join(Order.__table__, ORD.customer_id == R.customer_id)
            .where(
                R.campaign_id == campaign.id,
                R.group == group,
                R.skipped_reason.is_(None),
                _paid(),
                ORD.ordered_at >= start,
                ORD.ordered_at < start + window,
            )
            .group_by(R.variant)
        ).all():
            row_for(variant, group).converted += count
