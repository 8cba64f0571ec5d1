"""Who a campaign went to (per variant or holdout) and the clicks on its tracked link.

Recipients are stored, not re-derived, so results (and lift against the holdout, who get no
message at all) can be computed after the segment has changed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.base import utc_field


class RecipientGroup:
    TEST = "test"  # a variant sent to the random sample
    HOLDOUT = "holdout"  # kept back on purpose: measures the real lift
    REST = "rest"  # the winner (or the only variant) sent to everyone else


class CampaignRecipient(SQLModel, table=True):
    __tablename__ = "campaign_recipient"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_campaign_recipient"),
        Index("ix_campaign_recipient_customer", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    customer_id: int = Field(foreign_key="customer.id")
    group: str = Field(max_length=8)
    variant: str | None = Field(default=None, max_length=8)
    # Set when this person got no message (a #{variable} had no value for them).
    skipped_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_field(default_now=True)


class CampaignClick(SQLModel, table=True):
    """One click on a campaign's tracked link (/go, web/customer/go.py); attribution uses the last click."""

    __tablename__ = "campaign_click"
    __table_args__ = (Index("ix_campaign_click_customer_at", "customer_id", "clicked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    customer_id: int = Field(foreign_key="customer.id")
    variant: str | None = Field(default=None, max_length=8)
    clicked_at: datetime = utc_field(default_now=True)
