"""A customer's personal referral code and the /r/ link that carries it.

Low in the package on purpose: the order confirmation (core.messaging.automations) puts the buyer's
link in its text, so this module imports models and rules only, never messaging.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core import clock
from core.config import get_settings
from core.models import ReferralCode
from core.rewards.rules import new_referral_code

PATH = "/r/"


def referral_code_for(session: Session, customer_id: int) -> str:
    """The customer's one referral code, made on first use (two makers at once: the first wins).

    Core statements (a read, at most one INSERT .. ON CONFLICT DO NOTHING): the order confirmation
    asks for it inside every payment's completion."""
    codes = ReferralCode.__table__  # type: ignore[attr-defined]
    found = session.execute(select(codes.c.code).where(codes.c.customer_id == customer_id)).scalar()
    if found is not None:
        return found
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for _ in range(5):  # a clash of random codes is ~1 in 10^12: draw again
        made = session.execute(
            dialect.insert(codes)
            .values(customer_id=customer_id, code=new_referral_code(), created_at=clock.now())
            .on_conflict_do_nothing()
            .returning(codes.c.code)
        ).scalar()
        if made is not None:
            return made
        found = session.execute(select(codes.c.code).where(codes.c.customer_id == customer_id)).scalar()
        if found is not None:
            return found
    raise RuntimeError("could not draw a free referral code")


def referral_url(code: str, product_id: int | None = None) -> str:
    """'https://shop.example/r/ABCD2345?p=7': the referral link to one product's checkout."""
    base = f"{get_settings().public_base_url.rstrip('/')}{PATH}{code}"
    return f"{base}?p={product_id}" if product_id is not None else base
