"""The inbound request log: every call an outside system or a customer makes to our HTTP endpoints
(the KakaoTalk chatbot skill, Toss webhooks, the /help form), what we made of it and how fast.

Owner-visible on 설정 → 연동. Never holds a secret, a whole message or a phone number: the text's
length and a digest (for the duplicate check) are enough to tell what happened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class InboundRequest(SQLModel, table=True):
    __tablename__ = "inbound_request"
    __table_args__ = (
        # The duplicate check (same channel and digest within a short window) and the throttles
        # (per address, per phone digest within a minute) read by these.
        Index("ix_inbound_request_channel_digest", "channel", "digest", "received_at"),
        Index("ix_inbound_request_channel_address", "channel", "address", "received_at"),
        Index("ix_inbound_request_channel_subject", "channel", "subject", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)  # kakao_skill, toss, help
    received_at: datetime = utc_field(default_now=True, index=True)
    verified: bool = False  # the secret / the order proof held (toss: the lookup answered)
    status_code: int = 200
    outcome: str = Field(default="", max_length=32)  # created, appended, duplicate, refused, ...
    inquiry_id: int | None = Field(default=None, index=True)  # no FK: a log outlives what it names
    customer_id: int | None = None
    elapsed_ms: int = 0
    address: str = Field(default="", max_length=64)
    # sha256 of what makes two requests "the same" (user key + text; the Toss event), for the
    # duplicate check; and of the customer identity (a phone) for throttling.
    digest: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = json_field()
