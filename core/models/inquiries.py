"""Customer inquiries, their timeline, and the SLA policies that set their deadlines."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class InquiryType(StrEnum):
    PAYMENT_ERROR = "payment_error"
    DOUBLE_CHARGE = "double_charge"
    REFUND_REQUEST = "refund_request"
    RECEIPT_REQUEST = "receipt_request"
    OTHER = "other"


INQUIRY_TYPE_LABELS = {
    InquiryType.PAYMENT_ERROR: "결제 오류",
    InquiryType.DOUBLE_CHARGE: "이중 결제",
    InquiryType.REFUND_REQUEST: "환불 요청",
    InquiryType.RECEIPT_REQUEST: "영수증 요청",
    InquiryType.OTHER: "기타 문의",
}


# Where an inquiry came from (Inquiry.source): typed in by staff, found by the worker, or sent by the
# customer through an inbound channel (core.inquiries.inbound, core.inquiries.toss_events).
INQUIRY_SOURCE_LABELS = {
    "staff": "직원 입력",
    "worker": "자동 감지",
    "kakao": "카카오톡 챗봇",
    "help": "문의 페이지",
    "toss_webhook": "토스 결제 알림",
    "review": "낮은 별점 리뷰",
}


class InquiryStatus(StrEnum):
    OPEN = "open"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"


INQUIRY_STATUS_LABELS = {
    InquiryStatus.OPEN: "처리 중",
    InquiryStatus.WAITING_CUSTOMER: "고객 응답 대기",
    InquiryStatus.RESOLVED: "해결",
}


class InquiryBase(SQLModel):
    customer_id: int = Field(foreign_key="customer.id", index=True)
    type: str = Field(max_length=20)
    subject: str = Field(max_length=200)
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    payment_id: int | None = Field(default=None, foreign_key="payment.id")


class InquiryCreate(InquiryBase):
    body: str = Field(default="", max_length=10000)


class InquiryUpdate(SQLModel):
    type: str | None = None
    assignee_id: int | None = None


class Inquiry(InquiryBase, table=True):
    __tablename__ = "inquiry"
    __table_args__ = (
        Index("ix_inquiry_status_created", "status", "created_at"),
        Index("ix_inquiry_status_due", "status", "sla_due_at"),
        Index("ix_inquiry_status_alert", "status", "sla_next_alert_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=InquiryStatus.OPEN, max_length=20)
    assignee_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    source: str = Field(default="staff", max_length=20)  # INQUIRY_SOURCE_LABELS' keys
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    # The customer was VIP when they wrote (core.customers.vip): the VIP SLA targets apply, kept for
    # the inquiry's life so a deadline never moves because of a purchase made meanwhile.
    vip: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = utc_field(default_now=True)
    first_response_at: datetime | None = utc_field()
    resolved_at: datetime | None = utc_field()
    # Deadlines cached from the SLA engine at each event, so lists need no recomputation.
    first_response_due_at: datetime | None = utc_field()
    resolution_due_at: datetime | None = utc_field()
    # The nearest active target (first response until answered, then resolution): its deadline
    # (queue order; None while waiting on the customer), its at-risk instant, and the next instant
    # the SLA watch must look at this inquiry.
    sla_due_at: datetime | None = utc_field()
    sla_at_risk_at: datetime | None = utc_field()
    sla_next_alert_at: datetime | None = utc_field()
    at_risk_notified_at: datetime | None = utc_field()
    breach_notified_at: datetime | None = utc_field()


class InquiryEvent(SQLModel, table=True):
    __tablename__ = "inquiry_event"

    id: int | None = Field(default=None, primary_key=True)
    inquiry_id: int = Field(foreign_key="inquiry.id", index=True)
    at: datetime = utc_field(default_now=True)
    # customer_message, reply, note, state_change, assign, refund, receipt
    kind: str = Field(max_length=24)
    author_id: int | None = Field(default=None, foreign_key="staff_user.id")
    body: str = Field(default="", max_length=10000)
    detail: dict[str, Any] = json_field()


class SlaPolicy(SQLModel, table=True):
    __tablename__ = "sla_policy"

    id: int | None = Field(default=None, primary_key=True)
    inquiry_type: str = Field(max_length=20, unique=True)
    first_response_minutes: int = Field(gt=0)
    resolution_minutes: int = Field(gt=0)
    calendar: str = Field(default="business", max_length=16)  # "24/7" or "business"
    at_risk_share: float = Field(default=0.8, gt=0, lt=1)


class ClosedDay(SQLModel, table=True):
    """A one-off day the shop is closed (besides public holidays)."""

    __tablename__ = "closed_day"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(unique=True)
    reason: str = Field(default="", max_length=200)


class StaffNotification(SQLModel, table=True):
    """In-app notice for a staff member (SLA at risk / breached, worker findings)."""

    __tablename__ = "staff_notification"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)  # None: all CS
    kind: str = Field(max_length=32)
    text: str = Field(max_length=500)
    inquiry_id: int | None = Field(default=None, foreign_key="inquiry.id")
    dedupe_key: str = Field(max_length=120, unique=True)
    created_at: datetime = utc_field(default_now=True, index=True)
    read_at: datetime | None = utc_field()
