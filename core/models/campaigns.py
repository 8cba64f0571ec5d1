"""Saved segments and campaigns (advertising sent by staff)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class Segment(SQLModel, table=True):
    """A saved segment keeps its rules, not a frozen list: it is evaluated when sending."""

    __tablename__ = "segment"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    rules: dict[str, Any] = json_field()
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = utc_field(default_now=True)


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    TESTING = "testing"
    SENDING = "sending"
    SENT = "sent"
    CANCELED = "canceled"


CAMPAIGN_STATUS_LABELS = {
    CampaignStatus.DRAFT: "작성 중",
    CampaignStatus.SCHEDULED: "예약",
    CampaignStatus.TESTING: "테스트 중",
    CampaignStatus.SENDING: "발송 중",
    CampaignStatus.SENT: "발송 완료",
    CampaignStatus.CANCELED: "취소",
}


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    segment_id: int | None = Field(default=None, foreign_key="segment.id")
    segment_rules: dict[str, Any] = json_field()
    # [{"key": "A", "body": "..."}, ...]
    variants: list[dict[str, Any]] = json_field(list)
    status: str = Field(default=CampaignStatus.DRAFT, max_length=16, index=True)
    test_share: float = 0.1
    holdout_share: float = 0.0
    winner_variant: str | None = Field(default=None, max_length=8)
    # Test window, seed, link target, winner rule, attribution window... (see core/campaigns/smart_test.py DEFAULT_OPTIONS)
    options: dict[str, Any] = json_field()
    test_sent_at: datetime | None = utc_field()
    scheduled_at: datetime | None = utc_field()
    started_at: datetime | None = utc_field()
    finished_at: datetime | None = utc_field()
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = utc_field(default_now=True)
