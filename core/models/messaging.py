"""The message outbox and the templates messages are rendered from."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class MessageKind(StrEnum):
    INFORMATIONAL = "informational"
    ADVERTISING = "advertising"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    HELD = "held"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"


MESSAGE_STATUS_LABELS = {
    MessageStatus.QUEUED: "대기",
    MessageStatus.HELD: "보류",
    MessageStatus.SENDING: "발송 중",
    MessageStatus.SENT: "발송",
    MessageStatus.DELIVERED: "전달",
    MessageStatus.FAILED: "실패",
    MessageStatus.SKIPPED: "건너뜀",
}


class Message(SQLModel, table=True):
    """A customer message is a row before it is sent; the idempotency key makes it happen once."""

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_status_send_after", "status", "send_after"),
        Index("ix_message_customer_created", "customer_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    to_phone: str | None = Field(default=None, max_length=20)
    kind: str = Field(default=MessageKind.INFORMATIONAL, max_length=16)
    template_key: str = Field(max_length=64, index=True)
    text: str = Field(default="", max_length=2000)
    variables: dict[str, Any] = json_field()
    idempotency_key: str = Field(max_length=160, unique=True)
    status: str = Field(default=MessageStatus.QUEUED, max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    attempts: int = 0
    send_after: datetime = utc_field(default_now=True)
    provider: str | None = Field(default=None, max_length=16)
    provider_message_id: str | None = Field(default=None, max_length=64)
    provider_group_id: str | None = Field(default=None, max_length=64)
    # A sender owns a 'sending' row while its claim has not expired; an expired claim is recovered.
    claim_token: str | None = Field(default=None, max_length=40, index=True)
    claim_expires_at: datetime | None = utc_field()
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    campaign_variant: str | None = Field(default=None, max_length=8)
    created_at: datetime = utc_field(default_now=True, index=True)
    sent_at: datetime | None = utc_field()
    updated_at: datetime = utc_field(default_now=True)
    # When the provider's delivery report for a 'sent' row was last asked for (see core/messaging/reports.py).
    report_checked_at: datetime | None = utc_field()


class AdSendSlot(SQLModel, table=True):
    """One advertising message counted against its customer's daily limit (KST day).

    The sender inserts the slot in its own transaction before the ad goes out; the unique
    (customer, day, slot) makes two workers that gate ads of the same customer at once serialize on
    the database (on SQLite and PostgreSQL alike), so the limit holds. A slot is released when its
    message goes back to the queue or ends failed/skipped, and kept once the ad was sent."""

    __tablename__ = "ad_send_slot"
    __table_args__ = (
        UniqueConstraint("customer_id", "kst_day", "slot", name="uq_ad_send_slot_customer_day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    kst_day: date
    slot: int  # 1 .. daily_ad_limit
    message_id: int = Field(foreign_key="message.id", unique=True)
    created_at: datetime = utc_field(default_now=True)


class TemplateBase(SQLModel):
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=120)
    kind: str = Field(default=MessageKind.INFORMATIONAL, max_length=16)
    body: str = Field(max_length=1000)
    alimtalk_template_id: str | None = Field(default=None, max_length=64)


class TemplateCreate(TemplateBase):
    pass


class TemplateUpdate(SQLModel):
    name: str | None = None
    body: str | None = None
    alimtalk_template_id: str | None = None
    is_active: bool | None = None


class Template(TemplateBase, table=True):
    __tablename__ = "template"

    id: int | None = Field(default=None, primary_key=True)
    # The body as approved by Kakao; a pre-flight refuses text that drifted from it.
    approved_body: str | None = Field(default=None, max_length=1000)
    is_active: bool = True
    updated_at: datetime = utc_field(default_now=True)
