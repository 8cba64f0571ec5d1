"""The embedded sandbox gateway's own state (stands in for KakaoPay's servers).

Kept in the database, not in memory, so the Streamlit app (where the demo customer pays) and the
worker process (which looks payments up and cancels them) see the same payments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.base import json_field, utc_field


class SandboxPayment(SQLModel, table=True):
    __tablename__ = "sandbox_payment"

    tid: str = Field(primary_key=True, max_length=20)
    cid: str = Field(max_length=10)
    partner_order_id: str = Field(max_length=100, index=True)
    partner_user_id: str = Field(max_length=100)
    item_name: str = Field(max_length=120)
    quantity: int = 1
    total_amount: int
    tax_free_amount: int = 0
    vat_amount: int = 0
    status: str = Field(default="READY", max_length=24)
    method: str | None = Field(default=None, max_length=16)
    pg_token: str | None = Field(default=None, max_length=40)
    aid: str | None = Field(default=None, max_length=20)
    sid: str | None = Field(default=None, max_length=20)
    charge_key: str | None = Field(default=None, max_length=160, unique=True)
    canceled_amount: int = 0
    canceled_tax_free_amount: int = 0
    actions: list[dict[str, Any]] = json_field(list)  # payment_action_details, incl. cancel keys
    created_at: datetime = utc_field(default_now=True)
    approved_at: datetime | None = utc_field()


class SandboxInstrument(SQLModel, table=True):
    """A recurring instrument (KakaoPay SID) issued by the sandbox."""

    __tablename__ = "sandbox_instrument"

    sid: str = Field(primary_key=True, max_length=20)
    partner_user_id: str = Field(max_length=100)
    status: str = Field(default="ACTIVE", max_length=16)
    created_at: datetime = utc_field(default_now=True)
    inactivated_at: datetime | None = utc_field()
