"""Campaign read models: one campaign, the open ones, saved segments, product lists, the list page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from core.campaigns.tables import M, P, R
from core.errors import NotFound
from core.models import Campaign, CampaignStatus, Product, Segment


def _get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("캠페인을 찾을 수 없습니다")
    return campaign


def open_campaigns(session: Session) -> list[Campaign]:
    """Campaigns a person can still act on: send, schedule, pick a winner, cancel."""
    table = Campaign.__table__.c
    statuses = [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.TESTING]
    return list(session.scalars(select(Campaign).where(table.status.in_(statuses)).order_by(table.id.desc())))


def saved_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.__table__.c.id.desc())))


def product_categories(session: Session) -> list[str]:
    """The categories of the products on sale: what a campaign can say it advertises."""
    return list(
        session.scalars(select(P.category).where(P.deleted_at.is_(None)).distinct().order_by(P.category))
    )


def products(session: Session) -> list[Product]:
    return list(session.scalars(select(Product).where(P.deleted_at.is_(None)).order_by(P.name)))


@dataclass
class CampaignRow:
    id: int
    name: str
    status: str
    created_at: datetime
    started_at: datetime | None
    scheduled_at: datetime | None
    variants: int
    winner: str | None
    recipients: int
    messages: int


def list_campaigns(session: Session, *, limit: int = 100) -> list[CampaignRow]:
    campaign = Campaign.__table__.c
    recipients = (select(R.campaign_id, func.count().label("n")).group_by(R.campaign_id)).subquery()
    messages = (
        select(M.campaign_id, func.count().label("n"))
        .where(M.campaign_id.is_not(None))
        .group_by(M.campaign_id)
    ).subquery()
    rows = session.execute(
        select(
            campaign.id,
            campaign.name,
            campaign.status,
            campaign.created_at,
            campaign.started_at,
            campaign.scheduled_at,
            campaign.variants,
            campaign.winner_variant,
            func.coalesce(recipients.c.n, 0),
            func.coalesce(messages.c.n, 0),
        )
        .outerjoin(recipients, recipients.c.campaign_id == campaign.id)
        .outerjoin(messages, messages.c.campaign_id == campaign.id)
        .order_by(campaign.id.desc())
        .limit(limit)
    ).all()
    return [CampaignRow(r[0], r[1], r[2], r[3], r[4], r[5], len(r[6] or []), r[7], r[8], r[9]) for r in rows]
