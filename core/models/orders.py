"""Orders, their items, payments, refunds, payment links and reviews."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, LargeBinary
from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELED = "canceled"


ORDER_STATUS_LABELS = {
    OrderStatus.PENDING: "결제 대기",
    OrderStatus.PAID: "결제 완료",
    OrderStatus.PARTIALLY_REFUNDED: "부분 환불",
    OrderStatus.REFUNDED: "환불 완료",
    OrderStatus.CANCELED: "취소",
}


class PaymentStatus(StrEnum):
    READY = "ready"
    APPROVED = "approved"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # a timeout: look it up before anything else


PAYMENT_STATUS_LABELS = {
    PaymentStatus.READY: "결제 준비",
    PaymentStatus.APPROVED: "결제 완료",
    PaymentStatus.PARTIALLY_REFUNDED: "부분 환불",
    PaymentStatus.REFUNDED: "환불 완료",
    PaymentStatus.FAILED: "실패",
    PaymentStatus.UNKNOWN: "확인 중",
}


class PaymentLinkStatus(StrEnum):
    CREATED = "created"
    OPENED = "opened"
    METHOD_SELECTED = "method_selected"
    PAID = "paid"
    QUIT = "quit"
    FAILED = "failed"
    EXPIRED = "expired"


# The payment method and gateway codes as a shop says them (ui.labels re-exports these).
PAYMENT_METHOD_LABELS = {"CARD": "카드", "MONEY": "카카오페이머니"}
GATEWAY_LABELS = {"kakaopay": "카카오페이", "toss": "토스페이먼츠", "sandbox": "테스트 결제"}


PAYMENT_LINK_STATUS_LABELS = {
    PaymentLinkStatus.CREATED: "발송",
    PaymentLinkStatus.OPENED: "열람",
    PaymentLinkStatus.METHOD_SELECTED: "수단 선택",
    PaymentLinkStatus.PAID: "결제 완료",
    PaymentLinkStatus.QUIT: "중단",
    PaymentLinkStatus.FAILED: "실패",
    PaymentLinkStatus.EXPIRED: "만료",
}


class OrderBase(SQLModel):
    order_number: str = Field(max_length=40, unique=True)
    customer_id: int = Field(foreign_key="customer.id")
    total_amount: int = Field(ge=0)
    tax_free_amount: int = Field(default=0, ge=0)
    shipping_method: str | None = Field(default=None, max_length=40)
    expected_ship_date: date | None = None
    tracking_url: str | None = Field(default=None, max_length=500)
    source: str = Field(default="chat", max_length=20)  # chat, link, import, subscription


class OrderCreate(OrderBase):
    pass


class OrderUpdate(SQLModel):
    shipping_method: str | None = None
    expected_ship_date: date | None = None
    tracking_url: str | None = None


class Order(OrderBase, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_ordered", "customer_id", "ordered_at"),
        # Covering for a time window's paid orders by buyer (campaign segments, analytics).
        Index(
            "ix_orders_status_ordered", "status", "ordered_at", "customer_id", "total_amount", "refunded_amount"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=OrderStatus.PENDING, max_length=20)
    ordered_at: datetime = utc_field(default_now=True, index=True)
    paid_at: datetime | None = utc_field()
    delivered_at: datetime | None = utc_field()
    refunded_amount: int = 0
    payment_link_id: int | None = Field(default=None, foreign_key="payment_link.id")
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id", index=True)
    # A coupon or points taken off the price (core.rewards): total_amount is what was paid, net.
    discount_amount: int = Field(default=0, ge=0)
    coupon_id: int | None = None  # no FK: coupon already points at orders (avoids a cycle)


class OrderItem(SQLModel, table=True):
    __tablename__ = "order_item"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: int | None = Field(default=None, foreign_key="product.id", index=True)
    product_name: str = Field(max_length=120)  # kept as sold, even if the product changes
    quantity: int = Field(ge=1)
    unit_price: int = Field(ge=0)
    amount: int = Field(ge=0)


class Payment(SQLModel, table=True):
    __tablename__ = "payment"
    __table_args__ = (Index("ix_payment_customer_approved", "customer_id", "approved_at"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    customer_id: int = Field(foreign_key="customer.id")
    gateway: str = Field(max_length=16)
    gateway_tid: str | None = Field(default=None, max_length=64, index=True)
    # The merchant code (KakaoPay CID) the payment was made under: its lookups and cancels must send
    # the same one. None on older rows: core.payments.refunds.payment_cid infers it.
    gateway_cid: str | None = Field(default=None, max_length=20)
    method: str | None = Field(default=None, max_length=16)  # CARD, MONEY
    amount: int = Field(ge=0)
    tax_free_amount: int = Field(default=0, ge=0)
    refunded_amount: int = Field(default=0, ge=0)
    status: str = Field(default=PaymentStatus.READY, max_length=20, index=True)
    idempotency_key: str = Field(max_length=120, unique=True)
    approved_at: datetime | None = utc_field()
    failure_code: str | None = Field(default=None, max_length=64)
    failure_message: str | None = Field(default=None, max_length=500)
    routing_log: list[dict[str, Any]] = json_field(list)
    created_at: datetime = utc_field(default_now=True)


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # reserved; not sent, or sent and nothing happened (safe to send again)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # sent, answer not definite: settled by lookup, never sent again blind


REFUND_STATUS_LABELS = {
    RefundStatus.REQUESTED: "환불 요청",
    RefundStatus.SUCCEEDED: "환불 완료",
    RefundStatus.FAILED: "환불 실패",
    RefundStatus.UNKNOWN: "결제 대행사 응답 확인 중",
}


class Refund(SQLModel, table=True):
    __tablename__ = "refund"

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payment.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    amount: int = Field(gt=0)
    tax_free_amount: int = Field(default=0, ge=0)
    reason: str = Field(max_length=500)
    status: str = Field(default=RefundStatus.REQUESTED, max_length=20)
    idempotency_key: str = Field(max_length=120, unique=True)
    requested_by: int | None = Field(default=None, foreign_key="staff_user.id")
    gateway_response: dict[str, Any] = json_field()
    unknown_reason: str | None = Field(default=None, max_length=500)  # why the outcome is unknown
    sent_at: datetime | None = utc_field()  # the last time the cancel went to the gateway
    created_at: datetime = utc_field(default_now=True, index=True)
    completed_at: datetime | None = utc_field()


class PaymentLink(SQLModel, table=True):
    __tablename__ = "payment_link"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    product_id: int | None = Field(default=None, foreign_key="product.id")
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    inquiry_id: int | None = None  # no FK: inquiry already points at orders (avoids a cycle)
    item_name: str = Field(max_length=120)
    amount: int = Field(gt=0)
    tax_free_amount: int = Field(default=0, ge=0)
    memo: str | None = Field(default=None, max_length=500)
    status: str = Field(default=PaymentLinkStatus.CREATED, max_length=20, index=True)
    gateway: str | None = Field(default=None, max_length=16)
    gateway_tid: str | None = Field(default=None, max_length=64)
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = utc_field(default_now=True, index=True)
    opened_at: datetime | None = utc_field()
    paid_at: datetime | None = utc_field()
    expires_at: datetime | None = utc_field()
    reminder_sent_at: datetime | None = utc_field()
    order_id: int | None = None  # the order the paid link created (orders points back via FK)


class Review(SQLModel, table=True):
    """One review per order item. The row is made when the review request links to it (token, no
    rating yet); the customer's first submission sets the rating (core/reviews says the rules)."""

    __tablename__ = "review"
    __table_args__ = (
        Index("ix_review_product_submitted", "product_id", "submitted_at"),
        Index("ix_review_submitted", "submitted_at"),  # the 리뷰 screen's newest-first list
        # Covering for the 답변 대기 counts (unanswered, visible, submitted before a cutoff).
        Index("ix_review_answer_wait", "answered_at", "hidden", "submitted_at", "rating"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    product_id: int | None = Field(default=None, foreign_key="product.id")
    # None until the customer submits (legacy rows of the one-review-per-order era have no item).
    order_item_id: int | None = Field(default=None, foreign_key="order_item.id", unique=True)
    rating: int | None = Field(default=None, ge=1, le=5)
    body: str = Field(default="", max_length=5000)
    token: str | None = Field(default=None, max_length=64, unique=True)  # the /review?t= link
    token_expires_at: datetime | None = utc_field()
    photo_type: str | None = Field(default=None, max_length=20)  # image/jpeg|png|webp, in review_photo
    created_at: datetime = utc_field(default_now=True)
    submitted_at: datetime | None = utc_field()
    updated_at: datetime | None = utc_field()
    answer: str | None = Field(default=None, max_length=2000)
    answered_at: datetime | None = utc_field()
    answered_by: int | None = Field(default=None, foreign_key="staff_user.id")
    hidden: bool = False
    hidden_reason: str | None = Field(default=None, max_length=200)
    hidden_by: int | None = Field(default=None, foreign_key="staff_user.id")
    hidden_at: datetime | None = utc_field()
    inquiry_id: int | None = Field(default=None, foreign_key="inquiry.id")  # opened for a 1-2 star review


class ReviewPhoto(SQLModel, table=True):
    """A review's photo, in the database (every server sees it; never on the review row, which lists read)."""

    __tablename__ = "review_photo"

    review_id: int = Field(foreign_key="review.id", primary_key=True)
    content_type: str = Field(max_length=20)
    data: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = utc_field(default_now=True)
