"""A customer's personal referral code and the /r/ link that carries it.

Low in the package on purpose: the order confirmation (core.messaging.automations) puts the buyer's
link in its text, so this module imports models and rules only, never messaging.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.config import get_settings
from core.models import ReferralCode
from core.rewards.rules import new_referral_code

PATH = "/r/"


def referral_code_for(session: Session, customer_id: int) -> str:
    """The customer's one referral code, made on first use (two makers at once: the first wins)."""
    found = session.scalars(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id)).first()
    if found is not None:
        return found
    for _ in range(5):  # a clash of random codes is ~1 in 10^12: try again rather than fail
        try:
            with session.begin_nested():
                session.add(ReferralCode(customer_id=customer_id, code=new_referral_code()))
                session.flush()
            break
        except IntegrityError:
            pass
    return session.scalars(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id)).one()


def referral_url(code: str, product_id: int | None = None) -> str:
    """'https://shop.example/r/ABCD2345?p=7': the referral link to one product's checkout."""
    base = f"{get_settings().public_base_url.rstrip('/')}{PATH}{code}"
    return f"{base}?p={product_id}" if product_id is not None else base
