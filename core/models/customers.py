"""Customers (KakaoTalk channel people) and the products they buy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlmodel import Field, SQLModel

from core.customers.identity import MAX_RAW_LENGTH, identify
from core.models.base import utc_field


def _opaque_id() -> str:
    return uuid.uuid4().hex[:20]


class CustomerBase(SQLModel):
    name: str = Field(max_length=64, index=True)
    # 010-1234-5678 for a mobile number; anything else as it was given (bounded), see `mobile`.
    phone: str | None = Field(default=None, max_length=MAX_RAW_LENGTH, index=True)
    is_channel_friend: bool = True


class CustomerCreate(CustomerBase):
    ad_consent: bool = False
    night_ad_consent: bool = False


class CustomerUpdate(SQLModel):
    name: str | None = None
    phone: str | None = None
    is_channel_friend: bool | None = None


class Customer(CustomerBase, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    # Sent to gateways as partner_user_id: never personal data.
    public_id: str = Field(default_factory=_opaque_id, max_length=20, unique=True)
    # The canonical Korean mobile number (01012345678, core.customers.identity), one customer per number;
    # None when `phone` is not a mobile number: such a customer is never a message recipient.
    mobile: str | None = Field(default=None, max_length=11, unique=True, index=True)
    # The KakaoTalk channel's key for this person (plusfriendUserKey; "bot:<botUserKey>" when the
    # chatbot gives only that): how the chatbot skill finds them again (core.inquiries.inbound).
    kakao_user_key: str | None = Field(default=None, max_length=80, unique=True, index=True)
    ad_consent_at: datetime | None = utc_field()
    night_ad_consent_at: datetime | None = utc_field()
    ad_opt_out_at: datetime | None = utc_field()
    created_at: datetime = utc_field(default_now=True, index=True)


@event.listens_for(Customer, "before_insert")
@event.listens_for(Customer, "before_update")
def _identify_phone(_mapper: Any, _connection: Any, customer: Customer) -> None:
    """Every ORM write of a phone keeps `phone` and `mobile` in step (core.customers.identity), so no
    path, old or new, can store a number the unique mobile index does not see. Bulk Core inserts
    (seed, import, merge) call identity themselves."""
    state = inspect(customer)
    if (state.pending and customer.phone is not None) or state.attrs.phone.history.has_changes():
        found = identify(customer.phone)
        customer.phone = found.display or None
        customer.mobile = found.mobile


class ProductBase(SQLModel):
    name: str = Field(max_length=120)
    category: str = Field(default="기타", max_length=40, index=True)
    price: int = Field(ge=0)
    is_tax_free: bool = False
    replenishment_days: int | None = Field(default=None, ge=1)
    image_url: str | None = Field(default=None, max_length=500)
    is_subscription: bool = False


class ProductCreate(ProductBase):
    pass


class ProductUpdate(SQLModel):
    name: str | None = None
    price: int | None = None
    replenishment_days: int | None = None
    is_active: bool | None = None


class Product(ProductBase, table=True):
    __tablename__ = "product"

    id: int | None = Field(default=None, primary_key=True)
    # The shop's own product code (스마트스토어 상품번호, a SKU): how an order import finds the product.
    code: str | None = Field(default=None, max_length=64, unique=True)
    is_active: bool = True
    deleted_at: datetime | None = utc_field()
    created_at: datetime = utc_field(default_now=True)
