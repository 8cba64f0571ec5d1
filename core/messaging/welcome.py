"""The welcome message: once per customer ever, on their first contact (the first inquiry they write
or the first order they pay), telling the shop's refund policy up front (seed 000: a refund policy
told in the welcome message prevents disputes).

- Informational: the refund policy and how to ask, no offer. It goes through the outbox and the
  sender like every message, under the unique key `welcome:{customer_id}`, so whichever trigger
  fires twice (a payment and a chat at the same moment, a retried tick) it is queued once ever.
- Only a new customer's first contact: a customer with any other inquiry or paid order (a regular
  from before, an imported history, the demo's past) is not new and gets none. Imports and the
  demo seed never call it; only the live inbound channels and a live payment's confirmation do.
- Not at night: it answers nothing, so one triggered in the night hours (21:00~08:00 KST, the same
  hours as the ad ban) waits until 08:00.
- It needs a mobile number: a chat customer without one gets it once they send their number.
- The owner switches it on or off on 설정 (settings key "welcome_message").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import settings_store
from core.accounts.actor import Actor
from core.messaging import compliance
from core.messaging.outbox import enqueue
from core.models import Customer, Inquiry, Message, MessageKind, Order, OrderStatus
from core.payments.checkout import refund_policy

SETTING_KEY = "welcome_message"
DEFAULTS: dict[str, Any] = {"enabled": True}
TEMPLATE_KEY = "welcome"
PAID_STATUSES = (OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value)


def is_first_contact(inquiries: int, paid_orders: int) -> bool:
    """The triggering inquiry or payment is the customer's only contact (it is counted itself)."""
    return inquiries + paid_orders <= 1


def send_at(now: datetime) -> datetime:
    """Now, or 08:00 KST when `now` is in the night hours."""
    return compliance.next_day_start(now) if compliance.in_night_ban(now) else now


def idempotency_key(customer_id: int) -> str:
    return f"welcome:{customer_id}"


def enabled(session: Session) -> bool:
    stored = settings_store.get(session, SETTING_KEY) or {}
    return bool({**DEFAULTS, **stored}["enabled"])


def set_enabled(session: Session, actor: Actor, on: bool) -> None:
    """Owner only, audited (settings_store.put)."""
    settings_store.put(session, actor, SETTING_KEY, {"enabled": bool(on)})


def offer(session: Session, customer_id: int, now: datetime) -> Message | None:
    """Queue the welcome when this is the customer's first contact; None when it is not due."""
    if not enabled(session):
        return None
    customer = session.get(Customer, customer_id)
    if customer is None or not customer.mobile:
        return None
    session.flush()  # the triggering inquiry or order must be counted
    inquiries = len(session.exec(select(Inquiry.id).where(Inquiry.customer_id == customer_id).limit(2)).all())
    paid = len(
        session.exec(
            select(Order.id)
            .where(Order.customer_id == customer_id, col(Order.status).in_(PAID_STATUSES))
            .limit(2)
        ).all()
    )
    if not is_first_contact(inquiries, paid):
        return None
    return enqueue(
        session,
        customer_id=customer_id,
        template_key=TEMPLATE_KEY,
        variables={"고객명": customer.name or "고객", "환불정책": refund_policy(session)},
        idempotency_key=idempotency_key(customer_id),
        kind=MessageKind.INFORMATIONAL,
        send_after=send_at(now),
    )
