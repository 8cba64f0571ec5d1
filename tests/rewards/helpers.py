"""Shared helpers for the rewards tests: products, customers and a checkout paid through the sandbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from core import clock
from core import rewards as _rewards  # noqa: F401 (registers the discount hooks, as the server does)
from core.models import Coupon, Customer, Order, PaymentLink, Product
from core.payments.gateways.router import PaymentRouter
from core.payments.link_approval import pay_link
from core.payments.link_checkout import select_method, start_payment
from core.payments.links import create_payment_link
from core.rewards import discounts, service

PRICE = 39_000


def product(engine: Engine, *, name: str = "수분 크림", price: int = PRICE) -> int:
    with Session(engine) as session:
        row = Product(name=name, price=price)
        session.add(row)
        session.commit()
        return row.id  # type: ignore[return-value]


def customer(engine: Engine, name: str, phone: str) -> int:
    with Session(engine) as session:
        row = Customer(name=name, phone=phone)
        session.add(row)
        session.commit()
        return row.id  # type: ignore[return-value]


def link(
    engine: Engine,
    actor,
    router: PaymentRouter,
    *,
    product_id: int | None = None,  # type: ignore[no-untyped-def]
    amount: int = PRICE,
) -> str:
    with Session(engine, expire_on_commit=False) as session:
        values = (
            {"product_id": product_id} if product_id else {"item_name": "수분 크림 세트", "amount": amount}
        )
        return create_payment_link(session, actor, router=router, **values).code


def coupon(engine: Engine, owner, customer_id: int, *, amount: int = 3_000, days: int = 30) -> str:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        row = service.issue_coupon(
            session, owner, customer_id=customer_id, amount=amount, valid_days=days, now=clock.now()
        )
        session.commit()
        return row.code


def buy(
    engine: Engine,
    router: PaymentRouter,
    code: str,
    *,
    name: str = "김민지",
    phone: str = "010-1234-5678",
    coupon_code: str | None = None,
    points: bool = False,
) -> Order:
    """The /pay flow without HTTP: discounts held, payment readied (reduced), approved, order recorded."""
    with Session(engine, expire_on_commit=False) as session:
        discounts.apply_discounts(
            session, code, coupon_code=coupon_code, use_points=points, customer_phone=phone, now=clock.now()
        )
        start = start_payment(session, code, customer_name=name, customer_phone=phone, router=router)
        token = select_method(session, code, "CARD", router, tid=start.tid)
        return pay_link(session, code, pg_token=token, attempt=start.attempt, router=router)


def coupon_row(engine: Engine, code: str) -> Coupon:
    with Session(engine) as session:
        return session.scalars(select(Coupon).where(Coupon.code == code)).one()


def link_row(engine: Engine, code: str) -> PaymentLink:
    with Session(engine) as session:
        return session.scalars(select(PaymentLink).where(PaymentLink.code == code)).one()


def later(hours: float) -> None:
    """Move the test clock forward."""
    clock.set_now(clock.now() + timedelta(hours=hours))
